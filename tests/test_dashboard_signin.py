"""Sign-in, session expiry and role gating in the dashboard (AppTest, real ops store)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import streamlit as st
from conftest import MINIMAL_SCHOOL, sign_in, write_extracts
from streamlit.testing.v1 import AppTest

from dashboard.auth_ui import SESSION
from dashboard.navigation import PAGES, permitted_pages, unlisted_page_keys
from pipelines.load import load_paths
from schoolcomms import auth
from schoolcomms.ops.db import open_ops
from schoolcomms.ops.history import recent_audit
from schoolcomms.settings import DATA_DIR_ENV, Settings

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
PAGE_DIR = ROOT / "dashboard" / "pages"
TIMEOUT = 60
PASSWORD = "a long enough passphrase"


@pytest.fixture
def school(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    import os

    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    settings = Settings(data, env={}, secrets_file=tmp_path / "no-secrets.toml")
    assert load_paths(write_extracts(tmp_path / "school", MINIMAL_SCHOOL), settings).ok
    return settings


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def page(name: str) -> AppTest:
    return AppTest.from_file(str(PAGE_DIR / f"{name}.py"), default_timeout=TIMEOUT)


def errors(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in at.error)


def nav_titles(at: AppTest) -> list[str]:
    return (
        [p["title"] for p in at.get("navigation")[0].proto.app_pages]
        if at.get("navigation")
        else []
    )


def submit(at: AppTest, email: str, password: str) -> AppTest:
    at.text_input(key="sign_in_email").input(email)
    at.text_input(key="sign_in_password").input(password)
    for button in at.button:
        if button.label == "Sign in":
            button.click()
    return at.run()


def test_signing_in_with_a_password_opens_home(school: Settings) -> None:
    auth.create_user(
        open_ops(school),
        email="ao@s.org",
        roles=["attendance_officer"],
        actor="t",
        password=PASSWORD,
    )
    at = app().run()
    assert not at.exception and at.text_input(key="sign_in_email") is not None
    submit(at, "ao@s.org", "not the password")
    assert "do not match an account" in errors(at)
    submit(at, "ao@s.org", PASSWORD)
    assert not at.exception
    assert [t.value for t in at.title] == ["Sample School"]
    assert SESSION in at.session_state
    assert "login.ok" in recent_audit(open_ops(school))["action"].tolist()


def test_five_wrong_passwords_lock_the_account(school: Settings) -> None:
    auth.create_user(
        open_ops(school), email="t@s.org", roles=["teacher"], actor="t", password=PASSWORD
    )
    at = app().run()
    for _ in range(5):
        submit(at, "t@s.org", "wrong wrong wrong")
    assert "locked" in errors(at)
    submit(at, "t@s.org", PASSWORD)
    assert "locked" in errors(at) and SESSION not in at.session_state


def test_a_reset_password_must_be_changed_first(school: Settings) -> None:
    engine = open_ops(school)
    auth.create_user(engine, email="o@s.org", roles=["office"], actor="t", password=PASSWORD)
    new = auth.reset_password(engine, "o@s.org", "admin")
    at = app().run()
    submit(at, "o@s.org", new)
    assert [t.value for t in at.title] == ["Choose a new password"]
    at.text_input(key="old_password").input(new)
    inputs = [i for i in at.text_input if i.key != "old_password"]
    inputs[0].input("my own new passphrase")
    inputs[1].input("my own new passphrase")
    next(b for b in at.button if b.label == "Change password").click()
    at.run()
    assert [t.value for t in at.title] == ["Sample School"]


def test_an_idle_session_is_signed_out(school: Settings) -> None:
    at = sign_in(app(), "teacher")
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31)).isoformat()
    at.session_state[SESSION] = {**at.session_state[SESSION], "last_seen": old}
    at.run()
    assert "signed out after 30 idle minutes" in "\n".join(str(i.value) for i in at.info)
    assert at.text_input(key="sign_in_email") is not None


def test_a_disabled_account_is_signed_out_at_once(school: Settings) -> None:
    at = sign_in(app(), "office", email="off@s.org").run()
    assert [t.value for t in at.title] == ["Sample School"]
    auth.set_disabled(open_ops(school), "off@s.org", True, "admin")
    at.run()
    assert "no longer active" in "\n".join(str(i.value) for i in at.info)


@pytest.mark.parametrize(
    ("roles", "page_name", "allowed"),
    [
        (("teacher",), "data_loads", False),
        (("teacher",), "audit_log", False),
        (("teacher",), "users", False),
        (("teacher",), "contact_details", False),
        (("senior_leader",), "compose", False),
        (("senior_leader",), "weekly_reports", True),
        (("data_manager",), "data_loads", True),
        (("data_manager",), "compose", False),
        (("office",), "compose", True),
        (("admin",), "audit_log", True),
    ],
)
def test_each_page_checks_the_role_on_the_server(school, roles, page_name, allowed) -> None:
    at = sign_in(page(page_name), *roles).run()
    assert not at.exception, [e.value for e in at.exception]
    denied = "cannot open this page" in errors(at)
    assert denied is not allowed


def test_navigation_shows_only_permitted_pages(school: Settings) -> None:
    assert unlisted_page_keys() == set(), "every page in the role matrix is in the navigation"
    teacher = {p.key for p in permitted_pages(["teacher"])}
    assert teacher == {"home", "compose", "record_contact", "behaviour", "homework", "grades"}
    assert {p.key for p in permitted_pages(["admin"])} == {p.key for p in PAGES}
    for entry in PAGES:
        assert (ROOT / "dashboard" / entry.path).is_file(), entry.path
    at = sign_in(app(), "teacher").run()
    assert not at.exception and [t.value for t in at.title] == ["Sample School"]
    with pytest.raises(ValueError, match="Known pages") as offered:
        at.switch_page("pages/data_loads.py")
    assert "compose.py" in str(offered.value) and "users.py" not in str(offered.value)


def test_the_users_page_adds_an_account_and_shows_its_password_once(school: Settings) -> None:
    at = sign_in(page("users"), "admin").run()
    form_inputs = {i.label: i for i in at.text_input}
    form_inputs["E-mail address"].input("new@s.org")
    form_inputs["Name"].input("New Person")
    at.multiselect[0].set_value(["pastoral"])
    next(b for b in at.button if b.label == "Add account").click()
    at.run()
    shown = "\n".join(str(s.value) for s in at.success)
    assert "Added new@s.org" in shown and "first password" in shown
    password = shown.split("**")[1]
    signed = auth.authenticate(open_ops(school), school, "new@s.org", password)
    assert signed.roles == ("pastoral",) and signed.must_change_password
    at.run()
    assert "first password" not in "\n".join(str(s.value) for s in at.success)


def test_the_audit_log_page_lists_sign_ins(school: Settings) -> None:
    engine = open_ops(school)
    auth.create_user(engine, email="x@s.org", roles=["teacher"], actor="t", password=PASSWORD)
    with pytest.raises(auth.BadCredentials):
        auth.authenticate(engine, school, "x@s.org", "wrong wrong wrong")
    at = sign_in(page("audit_log"), "admin").run()
    table = at.dataframe[0].value
    assert "login.BadCredentials" in set(table["action"]) and "user.create" in set(table["action"])


def test_single_sign_on_matches_the_account_by_email(school: Settings) -> None:
    auth.create_user(open_ops(school), email="head@s.org", roles=["senior_leader"], actor="t")
    at = app()
    at.user = {"is_logged_in": True, "email": "Head@S.org", "name": "Mrs Head"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Sample School"]
    assert "senior_leader" in "\n".join(str(c.value) for c in at.sidebar.caption)


def test_single_sign_on_without_an_account_gets_no_access(school: Settings) -> None:
    at = app()
    at.user = {"is_logged_in": True, "email": "stranger@elsewhere.org"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "no dashboard account for stranger@elsewhere.org" in errors(at)
    assert [b.label for b in at.button] == ["Sign out"], "nothing but a way out"
    assert not at.metric and not at.dataframe


def test_account_changes_are_checked_again_when_they_run(
    school: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only admins may open Users, and they may manage accounts: the page gate is opened
    # for a senior leader here, so what must refuse is the check when each change runs.
    from dashboard import common
    from schoolcomms.roles import ACTION_ROLES, PAGE_ROLES

    assert set(ACTION_ROLES["users.manage"]) == set(PAGE_ROLES["users"])
    engine = open_ops(school)
    auth.create_user(engine, email="t@s.org", roles=["teacher"], actor="t", password=PASSWORD)
    monkeypatch.setattr(common, "check_page", lambda roles, page: None)
    at = sign_in(page("users"), "senior_leader").run()
    assert not at.exception and [t.value for t in at.title] == ["Users"]
    assert not at.button and not at.text_input  # no add form, no changes
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV"]
    assert set(at.dataframe[0].value["email"]) == {"t@s.org", "senior_leader@school.example.org"}

    monkeypatch.setattr(common, "user_can", lambda action: True)
    at.run()
    at.selectbox(key="users_pick").set_value("t@s.org")
    at.run()
    for key in ("users_save", "users_reset", "users_disable"):
        at.button(key=key).click()
        at.run()
        assert "may not do this (users.manage)" in errors(at), key
        at.run()  # a refusal stops that part of the page: draw it all again
    inputs = {i.label: i for i in at.text_input}
    inputs["E-mail address"].input("new@s.org")
    at.multiselect[0].set_value(["pastoral"])
    next(b for b in at.button if b.label == "Add account").click()
    at.run()
    assert "may not do this (users.manage)" in errors(at)
    assert {u["email"] for u in auth.list_users(engine)} == {
        "t@s.org",
        "senior_leader@school.example.org",
    }
    assert not auth.list_users(engine)[1]["disabled"]
    assert auth.audit_count(engine, "user.update") == 0
    assert auth.audit_count(engine, "user.reset_password") == 0
