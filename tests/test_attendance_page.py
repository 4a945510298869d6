"""The Attendance page and its reads (reports/attendance_today.py), on a real data folder.

Two days of AM/PM registration sessions are loaded for the minimal school; the clock is
moved to the second day (time_machine). Rows are selected through session_state;
"Message parents" must leave the Compose prefill and "Query marks" must store queries
and notices in the real SQLite ops store.
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

from dashboard import attendance_ui  # noqa: F401  (before any page puts pages/ on sys.path)
from pipelines.load import load_paths
from reports import attendance_today as today
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Notice, StaffQuery
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse
from senders.compose import Composition, enqueue_plan, plan_send
from senders.logbook import record_contact

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "attendance.py")
UK = ZoneInfo("Europe/London")
DAY = dt.date(2026, 11, 20)  # a Friday
TIMEOUT = 60
OFFICER = "attendance_officer@school.example.org"  # conftest.sign_in's address


def session(lid: str, day: str, period: str, staff: str) -> dict[str, str]:
    start = "09:00" if period == "AM" else "13:30"
    return {
        "lesson_id": lid,
        "date": day,
        "start_time": start,
        "end_time": f"{int(start[:2]) + 1:02d}:{start[3:]}",
        "kind": "session",
        "period": period,
        "class_id": "",
        "subject": "",
        "staff_id": staff,
        "room": "",
        "register_taken_at": f"{day} {start}",
    }


def marks(lid: str, day: str, staff: str, **codes: str) -> list[dict[str, str]]:
    return [
        {"lesson_id": lid, "student_id": s, "mark": code, "recorded_at": f"{day} 09:10"}
        | {"recorded_by": staff}
        for s, code in codes.items()
    ]


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
    """S1 present on the 19th, N all day on the 20th; S2 ill both days (and an older N);
    S3 present on the 19th and the 20th's AM, O in the PM (whose register has no teacher:
    T1 recorded the marks)."""
    tables = minimal_school()
    tables["lessons"] += [
        session("OLD", "2026-11-10", "AM", "T2"),
        session("AM19", "2026-11-19", "AM", "T2"),
        session("AM20", "2026-11-20", "AM", "T2"),
        session("PM20", "2026-11-20", "PM", ""),
    ]
    tables["marks"] += [
        *marks("OLD", "2026-11-10", "T2", S2="N"),
        *marks("AM19", "2026-11-19", "T2", S1="/", S2="I", S3="/"),
        *marks("AM20", "2026-11-20", "T2", S1="N", S2="I", S3="/"),
        *marks("PM20", "2026-11-20", "T1", S1="N", S2="I", S3="O"),
    ]
    report = load_paths(write_extracts(tmp_path / "days", tables), page_data)
    assert report.ok, [p.as_text() for p in report.problems]
    return page_data


@pytest.fixture
def at_noon() -> Iterator[None]:
    with time_machine.travel(dt.datetime(2026, 11, 20, 12, 0, tzinfo=UK), tick=True):
        yield


def run(at: AppTest | None = None, *roles: str, **state: object) -> AppTest:
    if at is None:
        at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
        sign_in(at, *(roles or ("attendance_officer",)))
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at: AppTest, key: str) -> pd.DataFrame:
    for element in at.dataframe:
        if element.proto.id.endswith(f"-{key}"):
            return element.value
    raise AssertionError(f"no dataframe with key {key!r}")


def select_rows(at: AppTest, key: str, rows: list[int]) -> None:
    at.session_state[key] = {"selection": {"rows": rows, "columns": []}}


def buttons(at: AppTest) -> list[str]:
    return [b.key for b in at.button]


def send_sms_about(settings: Settings, student_ids: list[str]) -> None:
    engine = open_ops(settings)
    composition = Composition("sms", student_ids, created_by="ms.office@s.org", body="Hi")
    enqueue_plan(
        engine,
        settings,
        plan_send(settings, Warehouse.from_settings(settings), engine, composition),
    )


# ---- the reads ----------------------------------------------------------------------------


def test_the_days_absences_first_days_and_n_codes(school: Settings) -> None:
    warehouse = Warehouse.from_settings(school)
    pupils = today.absences_on(warehouse, DAY)
    assert pupils["student_id"].tolist() == ["S3", "S1", "S2"]  # year 8 first
    assert pupils["codes"].tolist() == ["O", "N", "I"]
    assert pupils["whole_day"].tolist() == [False, True, True]
    assert pupils["marks"].tolist()[0] == "PM session: O"
    assert pupils["first_absent"].tolist() == ["13:30", "09:00", "09:00"]
    assert pupils[["unauthorised", "authorised"]].values.tolist() == [[1, 0], [2, 0], [0, 2]]
    first = today.first_day_absences(warehouse, DAY)
    assert first["student_id"].tolist() == ["S3", "S1"]  # S2 was off on the 19th too
    assert [d.date() for d in first["previous_day"]] == [dt.date(2026, 11, 19)] * 2
    assert first["previous"].tolist() == ["present", "present"]
    assert today.first_day_absences(warehouse, dt.date(2026, 11, 10))["previous"].tolist() == [
        "no earlier register"
    ]
    marks_ = today.absence_marks(warehouse, DAY)
    assert marks_[["student_id", "lesson_id"]].values.tolist() == [
        ["S3", "PM20"],
        ["S1", "AM20"],
        ["S1", "PM20"],
        ["S2", "AM20"],
        ["S2", "PM20"],
    ]
    chase = today.unexplained_marks(warehouse, DAY, 14)
    assert chase[["student_id", "lesson_id", "days_old"]].values.tolist() == [
        ["S2", "OLD", 10],
        ["S1", "AM20", 0],
        ["S1", "PM20", 0],
    ]
    # The lesson's teacher, else who recorded the mark (PM20 has no teacher).
    assert chase["teacher"].tolist() == ["Mr Tom Tutor", "Mr Tom Tutor", "Ms Tara Teach"]
    assert today.unexplained_marks(warehouse, DAY, 5)["lesson_id"].tolist() == ["AM20", "PM20"]
    with pytest.raises(ValueError, match="at least one day"):
        today.unexplained_marks(warehouse, DAY, 0)


def test_daily_trends_count_sessions_as_the_percentages_do(school: Settings) -> None:
    warehouse = Warehouse.from_settings(school)
    daily = today.daily_attendance(warehouse, dt.date(2026, 9, 1), DAY)
    # Sessions exist, so the lessons of 3 and 4 September do not count.
    assert daily["date"].dt.date.tolist() == [
        dt.date(2026, 11, 10),
        dt.date(2026, 11, 19),
        DAY,
    ]
    assert daily["percent"].tolist() == [0.0, 66.7, 16.7]
    by_year = today.daily_attendance(warehouse, DAY, DAY, by_year_group=True)
    assert by_year[["year_group", "possible", "attended"]].values.tolist() == [
        ["10", 4, 0],
        ["8", 2, 1],
    ]
    assert today.term_start(DAY) == dt.date(2026, 9, 1)
    assert today.term_start(dt.date(2027, 2, 1)) == dt.date(2027, 1, 1)
    assert today.term_start(dt.date(2027, 5, 1)) == dt.date(2027, 4, 14)
    assert today.latest_register_day(warehouse, dt.date(2026, 11, 22)) == DAY
    assert today.latest_register_day(warehouse, dt.date(2026, 8, 1)) is None


def test_who_was_contacted_and_how(school: Settings, at_noon: None) -> None:
    engine, warehouse = open_ops(school), Warehouse.from_settings(school)
    send_sms_about(school, ["S2", "S3"])  # one text to Mr Baker about both children
    record_contact(
        engine,
        student_id="S1",
        method="phone",
        actor="ms.ao@s.org",
        contact_name="Mrs Able",
        outcome="ill",
    )
    found = today.contacted_on(engine, warehouse, ["S1", "S2", "S3"], DAY)
    assert found["student_id"].tolist() == ["S1", "S2", "S3"]
    assert found["contacts"].tolist() == [1, 1, 1]
    s1, s2, s3 = found["contacted"].tolist()
    assert s1 == "Phone call 12:00 with Mrs Able by ms.ao@s.org: ill"
    assert s2 == s3 == "SMS 12:00 message (queued)"
    assert today.contacted_on(engine, warehouse, ["S1"], dt.date(2026, 11, 19)).empty
    assert today.contacted_on(engine, warehouse, [], DAY).empty


# ---- the page -----------------------------------------------------------------------------


def test_nothing_loaded_shows_the_empty_state(page_data: Settings) -> None:
    at = run()
    assert "No data loaded yet" in texts(at.info)


def test_who_may_open_the_page(school: Settings, at_noon: None) -> None:
    teacher = run(None, "teacher")
    assert "cannot open this page" in texts(teacher.error) and not teacher.metric
    leader = run(None, "senior_leader")
    assert metrics(leader)["Pupils absent"] == "3"
    # A senior leader cannot open Compose, so there is nothing to message parents with.
    assert "attendance_absences_message" not in buttons(leader)
    officer = run()
    assert "attendance_absences_message" in buttons(officer)


def test_todays_absences_with_contacts_and_message_parents(school: Settings, at_noon: None) -> None:
    engine = open_ops(school)
    record_contact(engine, student_id="S1", method="phone", actor="ms.ao@s.org")
    at = run()
    assert at.title[0].value == "Attendance"
    assert at.date_input(key="attendance_day").value == DAY
    shown = metrics(at)
    assert shown == {
        "Attendance": "16.7%",
        "Pupils absent": "3",
        "With unauthorised absence": "2",
        "Absent all day": "2",
    }
    absent = table(at, "attendance_absences")
    assert absent["student_id"].tolist() == ["S3", "S1", "S2"]
    assert absent["contacted"].tolist() == ["", "Phone call 12:00 by ms.ao@s.org", ""]
    assert at.button(key="attendance_absences_message").disabled

    select_rows(at, "attendance_absences", [0, 2])
    at.selectbox(key="attendance_absences_channel").set_value("email")
    run(at)
    at.button(key="attendance_absences_message").click()
    run(at)
    assert at.session_state["compose_prefill"] == {
        "student_ids": ["S3", "S2"],
        "channel": "email",
        "source": "Attendance",
        "note": "absent on 20/11/2026",
    }
    assert "2 pupil(s) are ready in Compose" in texts(at.info)


def test_query_a_days_mark_with_the_teacher(school: Settings, at_noon: None) -> None:
    at = run()
    assert "attendance_marks" not in [e.proto.id.rsplit("-", 1)[-1] for e in at.dataframe]
    at.toggle(key="attendance_show_marks").set_value(True)
    run(at)
    assert table(at, "attendance_marks")["lesson_id"].tolist()[0] == "PM20"
    select_rows(at, "attendance_marks", [0])  # S3's O in the PM: recorded by T1
    run(at)
    assert at.button(key="attendance_marks_query").disabled is False
    at.text_area(key="attendance_marks_question").set_value("She was at the dentist?")
    at.button(key="attendance_marks_query").click()
    run(at)
    assert "1 query(ies) sent to Ms Tara Teach" in texts(at.success)
    with session_scope(open_ops(school), immediate=False) as s:
        [query] = s.scalars(select(StaffQuery)).all()
        notices = s.scalars(select(Notice)).all()
    assert (query.student_id, query.subject_ref, query.to_staff_id) == ("S3", "PM20", "T1")
    assert query.created_by == OFFICER and query.question == "She was at the dentist?"
    assert [(n.staff_id, n.key) for n in notices] == [("T1", f"query:{query.id}:asked")]


def test_a_blank_question_is_refused_in_words(school: Settings, at_noon: None) -> None:
    at = run(None, "attendance_officer", attendance_view="unexplained")
    select_rows(at, "attendance_unexplained", [0])
    run(at)
    at.button(key="attendance_unexplained_query").click()
    run(at)
    assert "Write the question first." in texts(at.error)
    with session_scope(open_ops(school), immediate=False) as s:
        assert s.scalars(select(StaffQuery)).all() == []


def test_first_day_of_absence(school: Settings, at_noon: None) -> None:
    send_sms_about(school, ["S1"])
    at = run(None, "attendance_officer", attendance_view="first_day")
    first = table(at, "attendance_first_day")
    assert first["student_id"].tolist() == ["S3", "S1"]
    assert first["contacted"].tolist() == ["", "SMS 12:00 message (queued)"]
    assert metrics(at)["Not contacted yet"] == "1"
    select_rows(at, "attendance_first_day", [0])
    run(at)
    at.button(key="attendance_first_day_message").click()
    run(at)
    assert at.session_state["compose_prefill"]["student_ids"] == ["S3"]
    assert at.session_state["compose_prefill"]["channel"] == "sms"


def test_n_codes_to_chase_and_my_queries(school: Settings, at_noon: None) -> None:
    at = run(None, "attendance_officer", attendance_view="unexplained")
    chase = table(at, "attendance_unexplained")
    assert chase["lesson_id"].tolist() == ["OLD", "AM20", "PM20"]
    assert chase["teacher"].tolist() == ["Mr Tom Tutor", "Mr Tom Tutor", "Ms Tara Teach"]
    assert chase["days_old"].tolist() == [10, 0, 0]
    assert len(at.get("vega_lite_chart")) == 1
    at.number_input(key="attendance_n_days").set_value(3)
    run(at)
    assert table(at, "attendance_unexplained")["lesson_id"].tolist() == ["AM20", "PM20"]

    select_rows(at, "attendance_unexplained", [0, 1])
    run(at)
    at.text_area(key="attendance_unexplained_question").set_value("Any reason yet?")
    at.button(key="attendance_unexplained_query").click()
    run(at)
    assert "2 query(ies) sent to Mr Tom Tutor, Ms Tara Teach" in texts(at.success)
    assert len(recent_audit(open_ops(school), action="query.mark")) == 2

    at.radio(key="attendance_view").set_value("queries")
    run(at)
    mine = table(at, "attendance_queries")
    assert mine["status"].tolist() == ["open", "open"]
    assert mine["to_name"].tolist() == ["Ms Tara Teach", "Mr Tom Tutor"]
    select_rows(at, "attendance_queries", [0])
    run(at)
    at.button(key="attendance_queries_close").click()
    run(at)
    assert table(at, "attendance_queries")["status"].tolist() == ["closed", "open"]


def test_persistent_absence_and_trends(school: Settings, at_noon: None) -> None:
    at = run(None, "attendance_officer", attendance_view="persistent")
    persistent = table(at, "attendance_persistent")
    assert persistent["student_id"].tolist() == ["S2", "S1", "S3"]  # lowest first
    assert persistent["percent"].tolist() == [0.0, 33.3, 66.7]
    assert "below 90%" in texts(at.subheader)
    select_rows(at, "attendance_persistent", [0, 1])
    run(at)
    at.button(key="attendance_persistent_message").click()
    run(at)
    assert at.session_state["compose_prefill"]["student_ids"] == ["S2", "S1"]

    at.radio(key="attendance_view").set_value("trends")
    run(at)
    assert len(at.get("vega_lite_chart")) == 2
    assert not at.error


def test_another_day_and_a_day_without_registers(school: Settings, at_noon: None) -> None:
    at = run(None, "attendance_officer", attendance_day=dt.date(2026, 11, 19))
    assert table(at, "attendance_absences")["student_id"].tolist() == ["S2"]
    assert metrics(at)["Attendance"] == "66.7%"
    at.date_input(key="attendance_day").set_value(dt.date(2026, 11, 21))
    run(at)
    assert "No registers were taken on Saturday 21 November 2026" in texts(at.info)
    assert "The last day with registers is Friday 20 November 2026" in texts(at.info)
    assert metrics(at)["Pupils absent"] == "0" and metrics(at)["Attendance"] == "–"
    assert "Nobody is marked absent on this day." in texts(at.success)
