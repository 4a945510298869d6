"""The "Missing registers" page, driven with AppTest against a real data folder.

A tiny school day with missing registers is loaded; the clock is moved to that day
(time_machine), rows are selected through session_state and "Remind selected" must
store notices (and their e-mails) in the real SQLite ops store.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import streamlit as st
import time_machine
from conftest import minimal_school, sign_in, write_extracts
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

# Imported here, before any page runs: AppTest puts dashboard/pages/ first on sys.path,
# where a page named scheduler.py would otherwise shadow the scheduler package.
from dashboard import registers_ui  # noqa: F401
from pipelines.load import load_paths
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Message, Notice
from schoolcomms.settings import DATA_DIR_ENV, Settings

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "missing_registers.py")
UK = ZoneInfo("Europe/London")
TIMEOUT = 60
DAY = "2026-11-20"  # a Friday


def lesson(lid: str, start: str, staff: str, subject: str, class_id: str, **kw: str) -> dict:
    row = {
        "lesson_id": lid,
        "date": kw.get("day", DAY),
        "start_time": start,
        "end_time": f"{int(start[:2]) + 1:02d}:{start[3:]}",
        "kind": "lesson",
        "period": "1",
        "class_id": class_id,
        "subject": subject,
        "staff_id": staff,
        "room": "R1",
        "register_taken_at": kw.get("taken", ""),
    }
    return row


@pytest.fixture
def page_data(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app pointed at ``settings``' data folder, nothing of the developer's set-up."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(settings.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    return settings


@pytest.fixture
def school(page_data: Settings, tmp_path: Path) -> Settings:
    tables = minimal_school()
    tables["lessons"] = [
        lesson("MA", "09:00", "T1", "Maths", "10A/Ma"),
        lesson("EN", "09:00", "T2", "English", "8B/En"),
        lesson("OK", "09:00", "T1", "Maths", "10A/Ma", taken=f"{DAY} 09:05"),
        lesson("NEW", "09:35", "T1", "Maths", "10A/Ma"),  # under 10 minutes at 09:40
        lesson("MON", "09:00", "T1", "Maths", "10A/Ma", day="2026-11-16"),
    ]
    tables["marks"] = [
        {"lesson_id": "OK", "student_id": "S1", "mark": "/", "recorded_at": f"{DAY} 09:30"}
    ]
    write_extracts(tmp_path / "day", tables)
    report = load_paths([tmp_path / "day"], page_data)
    assert report.ok, [p.as_text() for p in report.problems]
    return page_data


@pytest.fixture
def at_0940() -> Iterator[None]:
    with time_machine.travel(dt.datetime(2026, 11, 20, 9, 40, tzinfo=UK), tick=True):
        yield


def run(at: AppTest | None = None) -> AppTest:
    at = at or sign_in(AppTest.from_file(PAGE, default_timeout=TIMEOUT))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no dataframe with columns {columns}")


def stored(settings: Settings) -> list[Notice]:
    with session_scope(open_ops(settings), immediate=False) as session:
        return list(session.scalars(select(Notice).order_by(Notice.key)))


def test_nothing_loaded_shows_the_empty_state(page_data: Settings) -> None:
    at = run()
    assert "No data loaded yet" in texts(at.info)
    assert not at.button


def test_today_by_teacher_and_department_and_remind_selected(
    school: Settings, at_0940: None
) -> None:
    at = run()
    assert at.title[0].value == "Missing registers"
    assert "Friday 20 November 2026, 09:40" in texts(at.caption)
    assert not at.warning  # a mark at 09:30: fresh
    assert metrics(at)["Missing registers"] == "2" and metrics(at)["Teachers"] == "2"
    lessons = table_with(at, "lesson_id", "minutes_missing")
    assert lessons["lesson_id"].tolist() == ["MA", "EN"]
    assert lessons["minutes_missing"].tolist() == [40, 40]
    teachers = table_with(at, "teacher", "department", "missing")
    assert sorted(teachers["teacher"]) == ["Mr Tom Tutor", "Ms Tara Teach"]
    departments = table_with(at, "department", "teachers")
    assert sorted(departments["department"]) == ["English", "Maths"]
    assert len(at.get("vega_lite_chart")) == 2
    assert at.button(key="registers_remind").disabled

    at.session_state["registers_lessons"] = {"selection": {"rows": [0, 1], "columns": []}}
    run(at)
    assert not at.button(key="registers_remind").disabled
    at.button(key="registers_remind").click()
    run(at)
    assert "2 reminder(s) sent." in texts(at.success)
    sent = table_with(at, "to", "lesson", "email")
    assert sent["to"].tolist() == ["Ms Tara Teach", "Mr Tom Tutor"]
    assert sent["email"].tolist() == ["t.teach@school.example.com", "t.tutor@school.example.com"]
    notices = stored(school)
    assert [(n.key, n.staff_id) for n in notices] == [
        ("register:EN:manual:admin@school.example.org:2026-11-20T09:40", "T2"),
        ("register:MA:manual:admin@school.example.org:2026-11-20T09:40", "T1"),
    ]
    assert all(n.created_by == "admin@school.example.org" and n.message_id for n in notices)
    with session_scope(open_ops(school), immediate=False) as session:
        assert len(session.scalars(select(Message)).all()) == 2
    assert len(recent_audit(open_ops(school), action="register.remind")) == 1

    at.button(key="registers_remind").click()  # again in the same minute: nothing new
    run(at)
    assert "2 selected lesson(s) not reminded" in texts(at.info)
    assert len(stored(school)) == 2


def test_this_week_includes_earlier_days(school: Settings, at_0940: None) -> None:
    at = run()
    at.radio(key="registers_period").set_value("week")
    run(at)
    lessons = table_with(at, "lesson_id", "minutes_missing")
    assert lessons["lesson_id"].tolist() == ["MON", "MA", "EN"]
    teachers = table_with(at, "teacher", "department", "missing")
    assert teachers.iloc[0].tolist() == ["Ms Tara Teach", "Maths", 2]
    assert metrics(at)["Longest missing"] == "96 h 40 min"


def test_stale_registers_are_flagged(school: Settings) -> None:
    with time_machine.travel(dt.datetime(2026, 11, 20, 11, 0, tzinfo=UK), tick=True):
        at = run()
    warning = texts(at.warning)
    assert warning.startswith("Registers are stale") and "09:30" in warning
    assert "may have been taken but not yet extracted" in warning
    assert metrics(at)["Missing registers"] == "3"  # NEW has been missing 85 minutes now


def test_no_missing_registers_is_said_plainly(school: Settings) -> None:
    with time_machine.travel(dt.datetime(2026, 11, 20, 9, 5, tzinfo=UK), tick=True):
        at = run()
    assert "No missing registers today." in texts(at.success)


def test_remind_selected_is_checked_again_when_it_runs(
    school: Settings, at_0940: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every role that may open the page may remind: the page gate is opened for a
    # teacher here, so what must refuse is the check when "Remind selected" runs.
    from dashboard import common
    from schoolcomms.roles import ACTION_ROLES, PAGE_ROLES

    assert set(ACTION_ROLES["registers.remind"]) == set(PAGE_ROLES["missing_registers"])
    monkeypatch.setattr(common, "check_page", lambda roles, page: None)
    at = sign_in(AppTest.from_file(PAGE, default_timeout=TIMEOUT), "teacher").run()
    assert not at.exception, [e.value for e in at.exception]
    assert metrics(at)["Missing registers"] == "2"
    assert "registers_remind" not in {b.key for b in at.button}
    assert "Select lessons to remind" not in texts(at.caption)

    monkeypatch.setattr(common, "user_can", lambda action: True)
    at.session_state["registers_lessons"] = {"selection": {"rows": [0, 1], "columns": []}}
    run(at)
    at.button(key="registers_remind").click()
    run(at)
    assert "Could not send the reminders: Your account may not do this (registers.remind)" in (
        texts(at.error)
    )
    assert stored(school) == []
    assert recent_audit(open_ops(school), action="register.remind").empty


def test_every_table_downloads_as_csv(school: Settings, at_0940: None) -> None:
    at = run()
    ids = [b.proto.id for b in at.get("download_button")]
    assert [i.rsplit("-", 1)[-1] for i in ids] == [
        "registers_by_teacher_csv",
        "registers_by_dept_csv",
        "registers_lessons_csv",
    ]
    at.session_state["registers_lessons"] = {"selection": {"rows": [0], "columns": []}}
    run(at)
    at.button(key="registers_remind").click()
    run(at)
    assert len(at.get("download_button")) == 4  # and the reminders just sent
