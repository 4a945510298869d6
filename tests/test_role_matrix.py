"""Every page of the navigation against the role matrix (schoolcomms.roles.PAGE_ROLES).

Each page is run with AppTest against the minimal school in a real data folder and a
real SQLite ops store, signed in twice: as a role the matrix allows (the page draws
without an exception or a refusal) and as a role it does not (the refusal in words and
nothing else of the page: no title, table, chart or button). Roles are chosen from the
matrix, so a page added to the navigation is covered here without writing a test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from conftest import sign_in
from streamlit.testing.v1 import AppTest

# Imported before any page runs: AppTest puts dashboard/pages/ first on sys.path.
from dashboard import home_ui, registers_ui  # noqa: F401
from dashboard.navigation import PAGES, PageEntry
from schoolcomms.roles import PAGE_ROLES, ROLES
from schoolcomms.settings import DATA_DIR_ENV, Settings

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"
TIMEOUT = 60
REFUSED = "cannot open this page"
# The allowed role tried is the narrowest one the matrix allows (a teacher before an
# admin), where a page is most likely to assume more than it was given; the refused
# role is the broadest one it refuses.
NARROWEST_FIRST = (
    "teacher",
    "office",
    "pastoral",
    "data_manager",
    "attendance_officer",
    "senior_leader",
    "admin",
)
BROADEST_FIRST = tuple(reversed(NARROWEST_FIRST))


def allowed_role(key: str) -> str:
    """The narrowest role that may open page ``key``."""
    return next(r for r in NARROWEST_FIRST if r in PAGE_ROLES[key])


def refused_role(key: str) -> str | None:
    """The broadest role that may not open page ``key`` (None: everyone may)."""
    return next((r for r in BROADEST_FIRST if r not in PAGE_ROLES[key]), None)


def page_id(entry: PageEntry) -> str:
    return entry.key


@pytest.fixture
def school(loaded: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The minimal school loaded (a copy per test), and the app using its data folder."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(loaded.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield loaded
    st.cache_resource.clear()  # close this folder's stores before the next copy


def open_page(entry: PageEntry, role: str) -> AppTest:
    at = AppTest.from_file(str(DASHBOARD / entry.path), default_timeout=TIMEOUT)
    sign_in(at, role, staff_id="T1")  # T1: Ms Tara Teach, a teacher and form tutor
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def elements(node: Any) -> Iterator[Any]:
    """Every element drawn under ``node`` (blocks such as columns are walked through)."""
    children = getattr(node, "children", None)
    if children:
        for child in children.values():
            yield from elements(child)
    elif getattr(node, "type", None) not in (None, "main", "sidebar"):
        yield node


def errors(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in at.error)


def test_every_page_key_has_a_role_on_each_side() -> None:
    assert {p.key for p in PAGES} == set(PAGE_ROLES)
    assert set(NARROWEST_FIRST) == set(ROLES)
    everyone = [p.key for p in PAGES if refused_role(p.key) is None]
    assert everyone == ["home"], "only Home is open to every role"
    assert allowed_role("home") == "teacher" and refused_role("compose") == "senior_leader"


@pytest.mark.parametrize("entry", PAGES, ids=page_id)
def test_an_allowed_role_sees_the_page(school: Settings, entry: PageEntry) -> None:
    at = open_page(entry, allowed_role(entry.key))
    assert REFUSED not in errors(at)
    assert at.title, f"{entry.path} drew no title for {allowed_role(entry.key)}"
    assert "sign_in_email" not in {w.key for w in at.text_input}, "not asked to sign in"


@pytest.mark.parametrize(
    "entry", [p for p in PAGES if refused_role(p.key) is not None], ids=page_id
)
def test_a_role_not_allowed_sees_only_the_refusal(school: Settings, entry: PageEntry) -> None:
    role = refused_role(entry.key)
    assert role is not None
    at = open_page(entry, role)
    drawn = [*elements(at.main), *elements(at.sidebar)]
    assert [e.type for e in drawn] == ["error"], f"{entry.path} drew more for {role}"
    assert REFUSED in errors(at)
    for allowed in PAGE_ROLES[entry.key]:
        assert allowed.replace("_", " ") in errors(at), "the refusal names who may open it"
