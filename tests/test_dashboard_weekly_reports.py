"""The Weekly reports page, driven with Streamlit's AppTest against a real data folder.

The hand-made school of tests/test_attendance_reports.py is loaded into a real
warehouse; schedules and queued e-mails land in the real SQLite ops store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from conftest import sign_in
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from test_attendance_reports import load_school

from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Message
from schoolcomms.settings import DATA_DIR_ENV, Settings
from senders.report_schedules import create_schedule, list_schedules

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "weekly_reports.py")
TIMEOUT = 60
WEEK_DAY = dt.date(2026, 11, 18)  # a Wednesday of the hand-made week


def use_data_dir(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the app at ``data``, with nothing of the developer's set-up."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def school(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    load_school(settings)
    use_data_dir(settings.data_dir, tmp_path, monkeypatch)
    return settings


@pytest.fixture
def empty(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    use_data_dir(settings.data_dir, tmp_path, monkeypatch)
    return settings


def run(at: AppTest | None = None) -> AppTest:
    at = (at or sign_in(AppTest.from_file(PAGE, default_timeout=TIMEOUT))).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: Any) -> str:
    return "\n".join(str(e.value) for e in elements)


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no dataframe with columns {columns}")


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec).get("title", "") for c in at.get("vega_lite_chart")]


def add(settings: Settings, report: str, **fields: Any) -> int:
    values = {"recipients": ["head@school.example.org"], "weekday": 0, "time_of_day": "07:00"}
    return create_schedule(open_ops(settings), report=report, actor="t", **{**values, **fields}).id


def preview(at: AppTest, report: str) -> AppTest:
    at.selectbox(key="wr_preview_report").select(report)
    at.date_input(key="wr_week").set_value(WEEK_DAY)
    return run(at)


def test_the_schedules_are_listed(school: Settings) -> None:
    add(school, "attendance", recipients=["head@school.example.org", "dm@school.example.org"])
    add(school, "behaviour", weekday=4, time_of_day="16:30", enabled=False, recipients=[])
    at = run()
    assert [t.value for t in at.title] == ["Weekly reports"]
    shown = table_with(at, "title", "recipients", "day", "time", "enabled")
    assert shown[["title", "recipients", "day", "time", "enabled"]].values.tolist() == [
        [
            "Weekly attendance",
            "head@school.example.org, dm@school.example.org",
            "Monday",
            "07:00",
            True,
        ],
        ["Weekly behaviour summary", "", "Friday", "16:30", False],
    ]
    assert pd.isna(shown["next_send"].iloc[1])  # switched off: no next send


def test_no_schedules_offers_the_defaults(empty: Settings) -> None:
    at = run()
    assert "No weekly reports are scheduled yet" in texts(at.info)
    run(at.button(key="wr_seed").click())
    schedules = list_schedules(open_ops(empty))
    assert [s.report for s in schedules] == [
        "attendance",
        "behaviour",
        "missing_registers",
        "messages",
    ]
    assert not any(s.enabled for s in schedules)  # no data_manager_emails: off, for filling in
    assert "Added 4 schedule(s)" in texts(at.success)


def test_add_a_schedule_and_see_every_problem_first(school: Settings) -> None:
    at = run()
    at.selectbox(key="wr_report").select("behaviour")
    at.text_area(key="wr_recipients").input("head@school.example.org\nnot an address")
    at.selectbox(key="wr_day").select("Friday")
    at.text_input(key="wr_time").input("25:00")
    run(at.button(key="wr_save").click())
    problems = texts(at.error)
    assert "Not saved" in problems and "'25:00' is not a time of day" in problems
    assert "'not' is not an e-mail address" in problems
    assert list_schedules(open_ops(school)) == []

    at.text_area(key="wr_recipients").input("head@school.example.org, deputy@school.example.org")
    at.text_input(key="wr_time").input("16:30")
    run(at.button(key="wr_save").click())
    [saved] = list_schedules(open_ops(school))
    assert (saved.report, saved.weekday, saved.time_of_day, saved.enabled) == (
        "behaviour",
        4,
        "16:30",
        True,
    )
    assert saved.recipients == ("head@school.example.org", "deputy@school.example.org")
    assert "Saved: behaviour, Friday 16:30, to 2 recipient(s)" in texts(at.success)
    assert at.selectbox(key="wr_choice").value == saved.id  # the editor now shows it
    [audit] = recent_audit(open_ops(school), action="report_schedule.create").to_dict("records")
    assert audit["actor"] == "admin@school.example.org"


def test_change_and_delete_a_schedule(school: Settings) -> None:
    schedule_id = add(school, "attendance")
    at = run()
    run(at.selectbox(key="wr_choice").select(schedule_id))
    assert at.text_area(key="wr_recipients").value == "head@school.example.org"
    at.checkbox(key="wr_enabled").uncheck()
    at.text_input(key="wr_time").input("08:15")
    run(at.button(key="wr_save").click())
    [changed] = list_schedules(open_ops(school))
    assert (changed.enabled, changed.time_of_day) == (False, "08:15")
    run(at.button(key="wr_delete").click())
    assert list_schedules(open_ops(school)) == []
    assert "deleted" in texts(at.success)


def test_preview_shows_the_tables_and_chart_of_a_week(school: Settings) -> None:
    at = preview(run(), "behaviour")
    assert "#### Weekly behaviour summary" in texts(at.markdown)
    assert "6 behaviour incident(s) were recorded in the week 16–22 November 2026" in texts(
        at.markdown
    )
    by_type = table_with(at, "Type", "Polarity", "Incidents")
    assert by_type.values.tolist()[0] == ["Disruption", "negative", 3, 2, -3]
    assert chart_titles(at) == ["Behaviour incidents by type, 16–22 November 2026"]
    at = preview(at, "attendance")
    years = table_with(at, "Year group", "Attendance % (week)")
    assert years["Attendance % (week)"].tolist() == [89.7, 100.0]


def test_send_now_queues_the_previewed_report(school: Settings) -> None:
    schedule_id = add(school, "behaviour")
    at = preview(run(), "behaviour")
    assert at.text_input(key="wr_send_to").value == "head@school.example.org"
    at.text_input(key="wr_send_to").input("head@school.example.org, x@school.example.org")
    run(at.button(key="wr_send_now").click())
    assert "Queued 2 e-mail(s) of weekly behaviour summary for 16–22 November 2026" in texts(
        at.success
    )
    with session_scope(open_ops(school), immediate=False) as s:
        keys = s.scalars(select(Message.idempotency_key).order_by(Message.id)).all()
    assert len(keys) == 2
    assert all(k.startswith(f"report:{schedule_id}:now:2026-11-16:") for k in keys)

    at.text_input(key="wr_send_to").input("nobody")
    run(at.button(key="wr_send_now").click())
    assert "Not sent" in texts(at.error) and "'nobody' is not an e-mail address" in texts(at.error)


def test_without_data_the_warehouse_reports_say_so_and_messages_still_preview(empty) -> None:
    at = run()
    assert "No data loaded yet" in texts(at.info)
    at = preview(at, "messages")
    assert "No messages were created in the week 16–22 November 2026." in texts(at.markdown)
    assert not at.error


def test_every_change_and_send_is_checked_again_when_it_runs(
    school: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every role that may open the page may schedule and send: the page gate is opened
    # for a teacher here, so what must refuse is the check when each action runs.
    from dashboard import common
    from schoolcomms.roles import ACTION_ROLES, PAGE_ROLES

    for action in ("reports.schedule", "reports.send_now"):
        assert set(ACTION_ROLES[action]) == set(PAGE_ROLES["weekly_reports"])
    engine = open_ops(school)
    monkeypatch.setattr(common, "check_page", lambda roles, page: None)
    at = sign_in(AppTest.from_file(PAGE, default_timeout=TIMEOUT), "teacher").run()
    assert not at.exception and [t.value for t in at.title] == ["Weekly reports"]
    assert not {b.key for b in at.button} & {"wr_seed", "wr_save", "wr_delete", "wr_send_now"}
    assert not [w for w in at.text_input if w.key == "wr_send_to"]
    assert len(at.get("download_button")) >= 1  # the report itself may still be downloaded

    monkeypatch.setattr(common, "user_can", lambda action: True)
    run(at)
    run(at.button(key="wr_seed").click())
    assert "may not do this (reports.schedule)" in texts(at.error)
    run(at)
    at.text_area(key="wr_recipients").input("head@school.example.org")
    run(at.button(key="wr_save").click())
    assert "may not do this (reports.schedule)" in texts(at.error)
    assert list_schedules(engine) == []

    schedule_id = add(school, "behaviour")
    run(at)
    run(at.selectbox(key="wr_choice").select(schedule_id))
    run(at.button(key="wr_delete").click())
    assert "may not do this (reports.schedule)" in texts(at.error)
    assert [s.id for s in list_schedules(engine)] == [schedule_id]
    at = preview(run(at), "behaviour")
    at.text_input(key="wr_send_to").input("head@school.example.org")
    run(at.button(key="wr_send_now").click())
    assert "may not do this (reports.send_now)" in texts(at.error)
    with session_scope(engine, immediate=False) as session:
        assert session.scalars(select(Message)).all() == []


def test_the_schedules_and_each_preview_table_download_as_csv(school: Settings) -> None:
    add(school, "attendance")
    at = preview(run(), "behaviour")
    keys = [b.proto.id.rsplit("-", 1)[-1] for b in at.get("download_button")]
    assert keys[0] == "wr_schedules_csv" and keys[-1] == "wr_csv"
    tables = [k for k in keys if k.startswith("wr_table_")]
    assert tables == [f"wr_table_{i}_csv" for i in range(len(at.dataframe) - 1)]
    assert tables, "the behaviour report shows at least one table"
