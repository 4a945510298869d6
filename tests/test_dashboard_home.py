"""The Home page (staff notices, urgent pop-up) and the Scheduler page, with AppTest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import streamlit as st
from conftest import MINIMAL_SCHOOL, sign_in, write_extracts
from streamlit.testing.v1 import AppTest

from pipelines.load import load_paths
from scheduler.runs import finish_run, start_run
from schoolcomms.ops.db import open_ops
from schoolcomms.settings import DATA_DIR_ENV, Settings
from senders.notices import StaffNotice, deliver, notices_for

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "dashboard" / "pages" / "home.py")
SCHEDULER = str(ROOT / "dashboard" / "pages" / "scheduler_jobs.py")
APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 60


@pytest.fixture
def school(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The minimal school loaded into a data folder the app uses; nothing of the developer's."""
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


def run(path: str, **state: object) -> AppTest:
    at = sign_in(AppTest.from_file(path, default_timeout=TIMEOUT))
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def notice(key: str, **kw: object) -> StaffNotice:
    fields: dict = {"title": f"Notice {key}", "body": f"Body of {key}", "source": "alert"}
    fields.update(kw)
    return StaffNotice(key, **fields)


def markdown(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def test_home_shows_a_staff_members_notices_and_marks_them_read(school: Settings) -> None:
    engine = open_ops(school)
    deliver(engine, school, [notice("a", staff_id="T1"), notice("b", staff_id="T2")])
    at = run(HOME, home_view="Ms Tara Teach (T1)")
    assert "Notice a" in markdown(at) and "Notice b" not in markdown(at)
    assert at.metric[0].value == "1"
    at.button(key=f"read_{notices_for(engine, staff_id='T1')[0]['id']}").click().run()
    assert notices_for(engine, staff_id="T1")[0]["read_at"] is not None
    assert at.metric[0].value == "0"


def test_the_staff_list_and_everyone_view(school: Settings) -> None:
    engine = open_ops(school)
    deliver(engine, school, [notice("a", staff_id="T1"), notice("d", audience="data_manager")])
    at = run(HOME)
    options = at.selectbox(key="home_view").options
    assert options[:2] == ["Everyone (all notices)", "Data managers"]
    assert "Mr Tom Tutor (T2)" in options
    assert "Notice a" in markdown(at) and "Notice d" in markdown(at)
    at.selectbox(key="home_view").set_value("Data managers").run()
    assert "Notice d" in markdown(at) and "Notice a" not in markdown(at)


def test_urgent_unread_notices_pop_up_once(school: Settings) -> None:
    engine = open_ops(school)
    deliver(engine, school, [notice("u", staff_id="T1", urgent=True, title="Truancy: Ann Able")])
    at = run(HOME, home_view="Ms Tara Teach (T1)")
    assert at.button(key="popup_read").label == "Mark as read"
    at.button(key="popup_read").click().run()
    assert notices_for(engine, staff_id="T1", unread_only=True) == []
    assert not [b for b in at.button if b.key == "popup_read"]


def test_scheduler_page_lists_every_job_and_the_newest_error(school: Settings) -> None:
    engine = open_ops(school)
    slot = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    run_id = start_run(engine, "dispatch", slot, slot, "test:1")
    assert run_id is not None
    finish_run(engine, run_id, "error", slot, error="RuntimeError: gateway exploded")
    at = run(SCHEDULER)
    table = at.dataframe[0].value
    assert {"dispatch", "absence_texts", "load_drop_folder", "delivery"} <= set(table["job"])
    assert "dispatch" in "\n".join(str(e.value) for e in at.error)
    runs = at.dataframe[1].value
    assert runs["outcome"].tolist() == ["error"] and "gateway exploded" in runs["error"].iloc[0]


def test_app_opens_on_home_once_data_is_loaded(school: Settings) -> None:
    at = run(APP)
    assert at.selectbox(key="home_view") is not None
