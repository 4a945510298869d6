"""Detentions and Homework: their reads, follow-ups and pages (AppTest, real data folder)."""

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
from streamlit.testing.v1 import AppTest

# Imported before any page runs (AppTest puts dashboard/pages/ first on sys.path).
from dashboard import behaviour_ui as ui
from dashboard import messaging
from pipelines.load import load_paths
from reports import detentions, homework
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse

PAGES = Path(__file__).resolve().parent.parent / "dashboard" / "pages"
UK = ZoneInfo("Europe/London")
TIMEOUT = 60
TODAY = dt.date(2026, 11, 20)  # a Friday


def detention(did: str, student: str, day: str, status: str, **kw: str) -> dict[str, str]:
    return {
        "detention_id": did,
        "student_id": student,
        "date": day,
        "start_time": kw.get("start", "15:05"),
        "end_time": kw.get("end", "15:35"),
        "location": kw.get("place", "Room H12"),
        "reason": kw.get("reason", "Late"),
        "status": status,
        "incident_id": kw.get("incident", ""),
    }


def assignment(aid: str, class_id: str, title: str, due: str, staff: str) -> dict[str, str]:
    set_date = (dt.date.fromisoformat(due) - dt.timedelta(days=7)).isoformat()
    return {
        "assignment_id": aid,
        "class_id": class_id,
        "title": title,
        "set_date": set_date,
        "due_date": due,
        "staff_id": staff,
    }


@pytest.fixture
def school(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(settings.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    tables = minimal_school()
    left = dict(tables["students"][1], student_id="S4", upn="", forename="Lee", surname="Left")
    tables["students"].append(left | {"status": "L01", "adno": "1004"})
    tables["behaviour"] = [
        {
            "incident_id": "I1",
            "student_id": "S1",
            "occurred_at": "2026-11-19 10:15",
            "type": "Disruption",
            "polarity": "negative",
        }
    ]
    tables["detentions"] = [
        detention("D1", "S1", "2026-11-20", "scheduled", reason="Disruption", incident="I1"),
        detention("D2", "S2", "2026-11-20", ""),
        detention("D3", "S3", "2026-11-23", "Scheduled", end="16:05", place="Main hall"),
        detention("D4", "S2", "2026-11-18", "missed"),
        detention("D5", "S1", "2026-11-17", "attended"),
        detention("D6", "S3", "2026-12-20", "scheduled"),
        detention("D7", "S3", "2026-11-19", "cancelled"),
    ]
    tables["homework"] = [
        assignment("H1", "10A/Ma", "Fractions", "2026-11-13", "T1"),
        assignment("H2", "10A/Ma", "Algebra", "2026-11-23", "T1"),
        assignment("H3", "8B/En", "Poetry", "2026-11-17", "T2"),
        assignment("H4", "10A/Ma", "Old work", "2026-09-10", "T1"),
    ]
    tables["homework_status"] = [
        {"assignment_id": a, "student_id": s, "status": status}
        for a, s, status in (
            ("H1", "S1", "outstanding"),
            ("H1", "S2", "submitted"),
            ("H1", "S4", "outstanding"),
            ("H2", "S1", "outstanding"),
            ("H2", "S2", "Outstanding"),
            ("H3", "S3", "late"),
            ("H4", "S1", "outstanding"),
        )
    ]
    report = load_paths(write_extracts(tmp_path / "school", tables), settings)
    assert report.ok, [p.as_text() for p in report.problems if p.severity == "error"]
    return settings


@pytest.fixture
def warehouse(school: Settings) -> Warehouse:
    return Warehouse.from_settings(school)


@pytest.fixture
def friday_noon() -> Iterator[None]:
    with time_machine.travel(dt.datetime(2026, 11, 20, 12, 0, tzinfo=UK), tick=True):
        yield


# ---- detentions: reads and follow-ups ------------------------------------------------------


def test_upcoming_and_missed_detentions(warehouse: Warehouse) -> None:
    upcoming = detentions.upcoming(warehouse, TODAY)
    assert list(upcoming.columns) == list(detentions.DETENTION_COLUMNS)
    assert upcoming["detention_id"].tolist() == ["D1", "D2", "D3"]
    assert upcoming["status"].tolist() == ["scheduled"] * 3  # blank and capitalised too
    first = upcoming.iloc[0]
    assert (first["start_time"], first["end_time"], first["name"]) == ("15:05", "15:35", "Ann Able")
    assert (first["incident_type"], first["form"]) == ("Disruption", "10A")
    assert detentions.upcoming(warehouse, TODAY, days=40)["detention_id"].tolist()[-1] == "D6"
    missed = detentions.missed(warehouse, dt.date(2026, 11, 1), TODAY)
    assert missed["detention_id"].tolist() == ["D4"]
    every = detentions.detentions(warehouse, start=dt.date(2026, 11, 17), end=TODAY)
    assert every["status"].tolist() == ["attended", "missed", "cancelled", "scheduled", "scheduled"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"locations": ("Main hall",)}, ["D3"]),
        ({"year_groups": ("10",)}, ["D1", "D2"]),
        ({"forms": ("8B",)}, ["D3"]),
        ({"search": "baker"}, ["D2", "D3"]),
    ],
)
def test_detention_filters(warehouse: Warehouse, filters: dict, expected: list[str]) -> None:
    assert detentions.upcoming(warehouse, TODAY, **filters)["detention_id"].tolist() == expected


def test_detention_sessions_counts_and_choices(warehouse: Warehouse) -> None:
    upcoming = detentions.upcoming(warehouse, TODAY)
    sessions = detentions.sessions(upcoming)
    assert [tuple(r)[1:] for r in sessions.itertuples(index=False)] == [
        ("15:05", "15:35", "Room H12", 2, 2),
        ("15:05", "16:05", "Main hall", 1, 1),
    ]
    daily = detentions.daily_counts(upcoming)
    assert daily["detentions"].tolist() == [2, 1]
    assert detentions.filter_options(warehouse)["locations"] == ["Main hall", "Room H12"]
    with pytest.raises(ValueError, match="Unknown detention status"):
        detentions.detentions(warehouse, statuses=("pending",))
    with pytest.raises(ValueError, match="ends"):
        detentions.detentions(warehouse, start=TODAY, end=dt.date(2026, 11, 1))


def test_detention_follow_ups_are_one_per_session(school: Settings, warehouse) -> None:
    upcoming = detentions.upcoming(warehouse, TODAY)
    follow_ups = ui.detention_follow_ups(upcoming, "scheduled")
    assert [(f.label, f.student_ids) for f in follow_ups] == [
        ("Friday 20 November, 15:05–15:35, Room H12 (2 pupils)", ("S1", "S2")),
        ("Monday 23 November, 15:05–16:05, Main hall (1 pupil)", ("S3",)),
        ("All 3 pupils, without the details", ("S1", "S2", "S3")),
    ]
    assert follow_ups[0].event["reason"] == ""  # the two reasons differ
    assert follow_ups[1].event["reason"] == "Late"
    assert ui.detention_follow_ups(upcoming.head(1), "missed")[0].bases == ("Detention: missed",)


# ---- homework: reads and follow-ups --------------------------------------------------------


def test_outstanding_homework_of_current_pupils(warehouse: Warehouse) -> None:
    frame = homework.outstanding(warehouse, TODAY)
    assert list(frame.columns) == list(homework.HOMEWORK_COLUMNS)
    assert list(zip(frame["assignment_id"], frame["student_id"], strict=True)) == [
        ("H4", "S1"),
        ("H1", "S1"),
        ("H3", "S3"),
        ("H2", "S1"),
        ("H2", "S2"),
    ]
    assert frame["days_overdue"].tolist() == [71, 7, 3, 0, 0]
    assert frame["status"].tolist() == ["outstanding", "outstanding", "late"] + ["outstanding"] * 2
    row = frame.iloc[2]
    assert (row["subject"], row["class_id"], row["teacher"]) == ("English", "8B/En", "Mr Tom Tutor")
    assert frame.iloc[0]["pupil_email"] == "ann@pupils.example.com"
    assert pd.isna(frame.iloc[2]["pupil_email"])


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"overdue_only": True}, ["H4", "H1", "H3"]),
        ({"due_from": dt.date(2026, 11, 1)}, ["H1", "H3", "H2", "H2"]),
        ({"due_to": dt.date(2026, 11, 13)}, ["H4", "H1"]),
        ({"statuses": ("late",)}, ["H3"]),
        ({"staff_id": "T2"}, ["H3"]),
        ({"subjects": ("Maths",), "search": "ben"}, ["H2"]),
        ({"class_ids": ("8B/En",)}, ["H3"]),
        ({"year_groups": ("8",)}, ["H3"]),
        ({"forms": ("10A",), "overdue_only": True}, ["H4", "H1"]),
    ],
)
def test_homework_filters(warehouse: Warehouse, filters: dict, expected: list[str]) -> None:
    assert homework.outstanding(warehouse, TODAY, **filters)["assignment_id"].tolist() == expected


def test_homework_by_pupil_class_and_subject(warehouse: Warehouse) -> None:
    frame = homework.outstanding(warehouse, TODAY)
    pupils = homework.by_pupil(frame)
    assert [tuple(r) for r in pupils[["student_id", "outstanding", "overdue", "late"]].values] == [
        ("S1", 3, 2, 0),
        ("S3", 1, 1, 1),
        ("S2", 1, 0, 0),
    ]
    classes = homework.by_class(frame)
    assert classes[["class_id", "assignments", "pupils", "outstanding"]].values.tolist() == [
        ["10A/Ma", 3, 2, 4],
        ["8B/En", 1, 1, 1],
    ]
    subjects = homework.by_subject(frame)
    assert subjects[["subject", "outstanding", "overdue"]].values.tolist() == [
        ["Maths", 4, 2],
        ["English", 1, 1],
    ]
    assert homework.by_pupil(frame.head(0)).empty and homework.by_subject(frame.head(0)).empty
    assert homework.filter_options(warehouse)["classes"] == ["10A/Ma", "8B/En"]
    with pytest.raises(ValueError, match="Unknown homework status"):
        homework.outstanding(warehouse, TODAY, statuses=("submitted",))
    with pytest.raises(ValueError, match="due dates end"):
        homework.outstanding(warehouse, TODAY, due_from=TODAY, due_to=dt.date(2026, 1, 1))


def test_homework_follow_ups_fill_in_the_assignment(school: Settings, warehouse) -> None:
    frame = homework.outstanding(warehouse, TODAY, due_from=dt.date(2026, 11, 1))
    follow_ups = ui.homework_follow_ups(frame, "pupils")
    assert [(f.label, f.student_ids) for f in follow_ups] == [
        ("Fractions (10A/Ma, 1 pupil)", ("S1",)),
        ("Poetry (8B/En, 1 pupil)", ("S3",)),
        ("Algebra (10A/Ma, 2 pupils)", ("S1", "S2")),
        ("All 3 pupils, without the details", ("S1", "S3", "S2")),
    ]
    out = ui.prefill(
        follow_ups[2],
        "email",
        pd.DataFrame(columns=["name", "channel", "archived"]),
        school,
        source="Homework",
        today=TODAY,
        recipients="pupils",
    )
    assert out["recipients"] == "pupils" and out["student_ids"] == ["S1", "S2"]
    assert out["body"].startswith("Dear {{ student.preferred_forename }},\n\nYou have not handed")
    assert "Maths homework “Algebra”, due Monday 23 November." in out["body"]
    assert out["context"] == {
        "homework": {
            "assignment_id": "H2",
            "title": "Algebra",
            "subject": "Maths",
            "class_id": "10A/Ma",
            "set_date": "2026-11-16",
            "due_date": "2026-11-23",
        }
    }


# ---- the pages -----------------------------------------------------------------------------


def run(page: str | AppTest, *roles: str, staff_id: str | None = None) -> AppTest:
    at = page
    if isinstance(page, str):
        at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=TIMEOUT)
        sign_in(at, *roles, staff_id=staff_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def tables_with(at: AppTest, column: str) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe if column in d.value.columns]


def select(at: AppTest, key: str, *rows: int) -> AppTest:
    at.session_state[key] = {"selection": {"rows": list(rows), "columns": []}}
    return run(at)


@pytest.mark.parametrize(
    ("page", "role"), [("detentions", "teacher"), ("homework", "data_manager")]
)
def test_the_pages_turn_away_other_roles(school, friday_noon, page: str, role: str) -> None:
    at = run(page, role)
    assert "cannot open this page" in texts(at.error)


def test_detentions_page_notifies_parents_of_a_session(school, friday_noon) -> None:
    at = run("detentions", "pastoral")
    assert at.title[0].value == "Detentions"
    upcoming, missed = tables_with(at, "detention_id")
    assert upcoming["detention_id"].tolist() == ["D1", "D2", "D3"]
    assert missed["detention_id"].tolist() == ["D4"]
    metrics = [(m.label, m.value) for m in at.metric]
    assert metrics[:3] == [("Detentions", "3"), ("Pupils", "3"), ("Sessions", "2")]
    assert len(at.get("download_button")) == 4  # sessions and detentions, in each tab
    select(at, "det_scheduled", 0, 1)
    assert at.radio(key="det_scheduled_msg_ch").options == ["Text (SMS)", "E-mail", "Letter"]
    at.button(key="det_scheduled_msg_go").click()
    run(at)
    sent = at.session_state["compose_prefill"]
    assert (sent["student_ids"], sent["channel"], sent["source"]) == (
        ["S1", "S2"],
        "sms",
        "Detentions",
    )
    assert sent["body"] == (
        "{{ student.preferred_forename }} has a detention on Friday 20 November from 15:05 "
        "to 15:35 in Room H12. Please make sure {{ student.preferred_forename }} attends. "
        "Sample School"
    )
    assert sent["context"]["detention"]["date"] == "2026-11-20"
    taken = messaging.read_prefill(sent)
    assert (taken.body, taken.template, taken.problems) == (sent["body"], None, ())
    assert taken.arrival == (
        "2 pupils from Detentions: scheduled detention, Friday 20 November, 15:05–15:35, Room H12"
    )


def test_missed_detentions_and_letters_for_the_office(school, friday_noon) -> None:
    at = run("detentions", "office")
    select(at, "det_missed", 0)
    at.radio(key="det_missed_msg_ch").set_value("letter")
    run(at)
    at.button(key="det_missed_msg_go").click()
    run(at)
    sent = at.session_state["compose_prefill"]
    assert (sent["student_ids"], sent["channel"]) == (["S2"], "letter")
    assert sent["body"].startswith(
        "{{ student.preferred_forename }} did not attend a detention on Wednesday 18 "
        "November from 15:05 to 15:35 in Room H12 (reason: Late)."
    )
    assert sent["subject"] == "Missed detention: {{ student.name }} ({{ student.form }})"


def test_a_senior_leader_sees_detentions_but_cannot_message(school, friday_noon) -> None:
    at = run("detentions", "senior_leader")
    at.multiselect(key="det_places").set_value(["Main hall"])
    run(at)
    upcoming, _ = (*tables_with(at, "detention_id"), None)[:2]
    assert upcoming["detention_id"].tolist() == ["D3"]
    assert "No missed detentions match" in texts(at.info)
    select(at, "det_scheduled", 0)
    assert "Your account cannot message parents." in texts(at.info)
    assert not [b for b in at.button if b.key == "det_scheduled_msg_go"]


def test_homework_page_for_a_teacher_starts_with_their_classes(school, friday_noon) -> None:
    at = run("homework", "teacher", staff_id="T2")
    assert at.title[0].value == "Homework"
    [rows] = tables_with(at, "assignment_id")
    assert rows["assignment_id"].tolist() == ["H3"]
    at.checkbox(key="hw_mine").uncheck()
    run(at)
    [rows] = tables_with(at, "assignment_id")
    assert rows["assignment_id"].tolist() == ["H1", "H3", "H2", "H2"]  # H4 is due too long ago
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Pieces outstanding": "4",
        "Pupils": "3",
        "Overdue": "2",
        "Assignments": "3",
    }
    select(at, "hw_rows", 2, 3)  # Algebra: two pupils, and a teacher sends one at a time
    assert at.button(key="hw_email_go").disabled
    select(at, "hw_rows", 1)
    at.button(key="hw_email_go").click()
    run(at)
    sent = at.session_state["compose_prefill"]
    assert (sent["student_ids"], sent["channel"], sent["recipients"]) == (
        ["S3"],
        "email",
        "parents",
    )
    assert "has not handed in English homework “Poetry”, due Tuesday 17 November." in (sent["body"])
    assert sent["subject"] == "Homework: {{ student.preferred_forename }}"


def test_homework_page_summaries_and_e_mail_to_pupils(school, friday_noon) -> None:
    at = run("homework", "pastoral")
    assert not [c for c in at.checkbox if c.key == "hw_mine"]  # no staff link, no "mine"
    [summary] = tables_with(at, "outstanding")
    assert summary["student_id"].tolist() == ["S1", "S3", "S2"]
    at.radio(key="hw_view").set_value("class")
    run(at)
    [summary] = tables_with(at, "outstanding")
    assert summary["class_id"].tolist() == ["10A/Ma", "8B/En"]
    assert len(at.get("download_button")) == 2
    assert len(at.get("vega_lite_chart")) == 1
    select(at, "hw_rows", 0, 1)  # two assignments: one follow-up each, then all
    at.radio(key="hw_to").set_value("pupils")
    run(at)
    assert at.selectbox(key="hw_email_group").options[-1] == "All 2 pupils, without the details"
    at.selectbox(key="hw_email_group").set_value(2)
    run(at)
    at.button(key="hw_email_go").click()
    run(at)
    sent = at.session_state["compose_prefill"]
    assert (sent["student_ids"], sent["recipients"]) == (["S1", "S3"], "pupils")
    assert sent["template"] == "Homework: outstanding, to pupils" and "body" not in sent
    assert "Message pupils in Compose" in [b.label for b in at.button]
    # Compose takes the prefill and writes to the pupils themselves.
    taken = messaging.read_prefill(sent)
    assert (taken.template, taken.channel, taken.source) == (sent["template"], "email", "Homework")
    assert taken.to_pupils and taken.problems == ()
