"""Grades: reports.grades and the "Grades" page with its grade-queries inbox (AppTest).

A small school with grades is loaded into a real warehouse; queries, notices and audit
rows are written to the real SQLite ops store by senders.queries through the page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from conftest import minimal_school, sign_in, write_extracts
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from pipelines.load import load_paths
from reports import grades as grade_reports
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Notice, StaffQuery
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse
from senders.queries import ask_grade_query

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "grades.py")
TIMEOUT = 60
PASTORAL = "pastoral@school.example.org"


def grade(gid: str, student: str, class_id: str, subject: str, assessment: str, **kw: str) -> dict:
    return {
        "grade_id": gid,
        "student_id": student,
        "class_id": class_id,
        "subject": subject,
        "assessment": assessment,
        "grade": kw.get("grade", "5"),
        "comment": kw.get("comment", ""),
        "entered_by": kw.get("by", "T1"),
        "entered_at": kw.get("at", "2026-10-01 10:00"),
    }


GRADES = [
    grade("G1", "S1", "10A/Ma", "Maths", "Autumn test", grade="6", comment="Good work"),
    grade("G2", "S2", "10A/Ma", "Maths", "Autumn test", grade="4"),
    grade("G3", "S3", "8B/En", "English", "Autumn test", grade="B", by="T2"),
    grade("G4", "S1", "10A/Ma", "Maths", "Spring test", grade="7", at="2026-11-01 10:00"),
]


def load(settings: Settings, folder: Path) -> Settings:
    tables = minimal_school()
    tables["grades"] = GRADES
    report = load_paths(write_extracts(folder, tables), settings)
    assert report.ok, [p.as_text() for p in report.problems]
    return settings


# ------------------------------------------------------------------------ the reports


def test_grades_for_everyone_and_for_a_teachers_own_classes(
    settings: Settings, tmp_path: Path
) -> None:
    warehouse = Warehouse.from_settings(load(settings, tmp_path / "school"))
    every = grade_reports.grades(warehouse)
    assert every["grade_id"].tolist() == ["G4", "G3", "G1", "G2"]  # newest first
    g3 = every.set_index("grade_id").loc["G3"]
    assert (g3["name"], g3["teacher"], g3["entered_by_name"]) == (
        "Cat Baker",
        "Mr Tom Tutor",
        "Mr Tom Tutor",
    )
    own = grade_reports.grades(warehouse, teacher_staff_id="T1")
    assert sorted(own["grade_id"]) == ["G1", "G2", "G4"]
    assert grade_reports.grades(warehouse, teacher_staff_id="T9").empty


def test_filters_and_options(settings: Settings, tmp_path: Path) -> None:
    frame = grade_reports.grades(Warehouse.from_settings(load(settings, tmp_path / "school")))
    options = grade_reports.grade_options(frame)
    assert options == {
        "subjects": ["English", "Maths"],
        "classes": ["8B/En", "10A/Ma"],
        "assessments": ["Autumn test", "Spring test"],
        "year_groups": ["8", "10"],
    }

    def ids(**kw: Any) -> list[str]:
        return sorted(grade_reports.filter_grades(frame, **kw)["grade_id"])

    assert ids(subjects=["Maths"], assessments=["Autumn test"]) == ["G1", "G2"]
    assert ids(year_groups=["8"]) == ["G3"]
    assert ids(classes=["10A/Ma"], pupil="ann") == ["G1", "G4"]
    assert ids(pupil="s2") == ["G2"]
    assert ids(pupil="nobody") == []
    counts = grade_reports.grade_counts(frame)
    assert counts.set_index(["subject", "grade"])["grades"].to_dict() == {
        ("English", "B"): 1,
        ("Maths", "4"): 1,
        ("Maths", "6"): 1,
        ("Maths", "7"): 1,
    }
    assert grade_reports.grade_label(frame.iloc[0].to_dict()) == "Ann Able · Maths · Spring test: 7"


# ------------------------------------------------------------------------------ the page


@pytest.fixture
def page_data(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
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
    return load(page_data, tmp_path / "school")


def start(*roles: str, **kw: Any) -> AppTest:
    return run(sign_in(AppTest.from_file(PAGE, default_timeout=TIMEOUT), *roles, **kw))


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def grades_table(at: AppTest) -> pd.DataFrame:
    for element in at.dataframe:
        if "grade_id" in element.value.columns:
            return element.value
    raise AssertionError("no grades table")


def query_tables(at: AppTest) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe if "question" in d.value.columns]


def select_rows(at: AppTest, rows: list[int]) -> None:
    at.session_state["grades_table"] = {"selection": {"rows": rows, "columns": []}}


def stored_queries(settings: Settings) -> list[StaffQuery]:
    with session_scope(open_ops(settings), immediate=False) as session:
        return list(session.scalars(select(StaffQuery).order_by(StaffQuery.id)))


def test_a_teacher_sees_only_the_grades_of_their_classes(school: Settings) -> None:
    at = start("teacher", email="t1@school.example.org", staff_id="T1")
    assert at.title[0].value == "Grades"
    assert sorted(grades_table(at)["grade_id"]) == ["G1", "G2", "G4"]
    assert "The grades of your classes." in texts(at.caption)
    at.multiselect(key="grades_assessments").set_value(["Spring test"])
    run(at)
    assert grades_table(at)["grade_id"].tolist() == ["G4"]


def test_a_teacher_without_a_staff_link_is_told_what_to_do(school: Settings) -> None:
    at = start("teacher", email="nolink@school.example.org")
    assert "not linked to a staff member" in texts(at.warning)
    assert not [d for d in at.dataframe if "grade_id" in d.value.columns]


def test_query_a_grade_answer_it_and_see_the_answer(school: Settings) -> None:
    at = start("pastoral")
    assert sorted(grades_table(at)["grade_id"]) == ["G1", "G2", "G3", "G4"]
    assert at.button(key="grades_ask").disabled
    shown = grades_table(at)
    select_rows(at, [shown["grade_id"].tolist().index("G3")])
    run(at)
    assert "Cat Baker · English · Autumn test: B" in "\n".join(m.value for m in at.markdown)
    at.text_area(key="grades_question").set_value("Should this be an A?")
    run(at)
    at.button(key="grades_ask").click()
    run(at)
    assert "1 query(ies) sent to the teacher(s)." in texts(at.success)
    assert at.text_area(key="grades_question").value == ""
    (query,) = stored_queries(school)
    assert (query.kind, query.subject_ref, query.to_staff_id, query.created_by) == (
        "grade",
        "G3",
        "T2",
        PASTORAL,
    )
    assert query.current_value == "B" and query.status == "open"
    with session_scope(open_ops(school), immediate=False) as session:
        notice = session.scalars(select(Notice).where(Notice.staff_id == "T2")).one()
    assert "Should this be an A?" in notice.body
    assert len(recent_audit(open_ops(school), action="query.grade")) == 1
    (asked,) = query_tables(at)
    assert asked["status"].tolist() == ["open"]

    # The other teacher has nothing; T2 answers it.
    other = start("teacher", email="t1@school.example.org", staff_id="T1")
    assert "No grade queries for you" in texts(other.info)
    teacher = start("teacher", email="t2@school.example.org", staff_id="T2")
    assert "Waiting for your answer: 1" in "\n".join(m.value for m in teacher.markdown)
    assert teacher.button(key=f"grades_answer_send_{query.id}").disabled
    teacher.text_area(key=f"grades_answer_{query.id}").set_value("No: B is right.")
    run(teacher)
    teacher.button(key=f"grades_answer_send_{query.id}").click()
    run(teacher)
    assert f"Answer sent to {PASTORAL}." in texts(teacher.success)
    (query,) = stored_queries(school)
    assert (query.status, query.answer, query.answered_by) == (
        "answered",
        "No: B is right.",
        "t2@school.example.org",
    )
    assert "Waiting for your answer: 0" in "\n".join(m.value for m in teacher.markdown)

    again = start("pastoral")
    (asked,) = query_tables(again)
    assert asked[["status", "answer"]].values.tolist() == [["answered", "No: B is right."]]
    assert "1 query(ies), 1 answered." in texts(again.caption)


def test_changing_the_filters_drops_the_selection(school: Settings) -> None:
    at = start("senior_leader")
    select_rows(at, [0])
    at.text_area(key="grades_question").set_value("Why?")
    run(at)
    assert not at.button(key="grades_ask").disabled
    at.multiselect(key="grades_subjects").set_value(["English"])
    run(at)
    assert at.button(key="grades_ask").disabled
    assert stored_queries(school) == []


def test_an_admin_may_answer_any_grade_query(school: Settings) -> None:
    query_id = ask_grade_query(
        open_ops(school),
        school,
        Warehouse.from_settings(school),
        grade_id="G1",
        question="Is 6 right?",
        actor="someone@school.example.org",
    )
    at = start("admin")
    assert "every grade query" in texts(at.caption)
    at.text_area(key=f"grades_answer_{query_id}").set_value("Yes.")
    run(at)
    at.button(key=f"grades_answer_send_{query_id}").click()
    run(at)
    assert stored_queries(school)[0].status == "answered"


def test_roles_without_the_grades_page_cannot_open_it(school: Settings) -> None:
    for role in ("office", "data_manager", "attendance_officer"):
        at = start(role)
        assert "cannot open this page" in texts(at.error)
        assert not at.dataframe and not at.button


def test_nothing_loaded_still_shows_the_inbox(page_data: Settings) -> None:
    at = start("pastoral")
    assert "No data loaded yet" in texts(at.info)
    assert "You have not queried a grade yet" in texts(at.info)


def offered_csvs(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Each download button's file as the page offers it (key -> bytes or a callable)."""
    offered: dict[str, Any] = {}
    real = st.download_button

    def download_button(label: str, data: Any = None, **kw: Any) -> Any:
        offered[kw.get("key") or label] = data
        return real(label, data, **kw)

    monkeypatch.setattr(st, "download_button", download_button)
    return offered


def test_a_long_list_shows_its_first_rows_and_the_csv_has_them_all(
    page_data: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import common

    formula = grade("G5", "S2", "10A/Ma", "Maths", "Spring test", comment='=HYPERLINK("x")')
    tables = minimal_school()
    tables["grades"] = [*GRADES, formula]
    assert load_paths(write_extracts(tmp_path / "school", tables), page_data).ok
    monkeypatch.setattr(common, "MAX_ROWS_SHOWN", 2)
    offered = offered_csvs(monkeypatch)
    at = start("pastoral")
    assert len(grades_table(at)) == 2
    assert "Showing the first 2 of 5 grades" in texts(at.caption)
    assert "The CSV download has all 5." in texts(at.caption)
    # The file is built when the button is pressed, with every grade the filters match.
    build = offered["grades_download"]
    assert callable(build)
    lines = build().decode("utf-8-sig").splitlines()
    assert len(lines) == 1 + 5
    assert any(line.startswith("G5,") and "'=HYPERLINK" in line for line in lines)
    assert not any(",=" in line for line in lines)

    at.multiselect(key="grades_subjects").set_value(["English"])
    run(at)
    assert grades_table(at)["grade_id"].tolist() == ["G3"]
    assert "Showing the first" not in texts(at.caption)
    assert offered["grades_download"]().decode("utf-8-sig").count("\r\n") == 1 + 1


def test_a_new_load_shows_in_the_same_session(school: Settings, tmp_path: Path) -> None:
    at = start("pastoral")
    assert sorted(grades_table(at)["grade_id"]) == ["G1", "G2", "G3", "G4"]
    assert "Science" not in at.multiselect(key="grades_subjects").options
    extra = grade("G9", "S3", "8B/En", "Science", "Autumn test", grade="A")
    tables = minimal_school()
    tables["grades"] = [*GRADES, extra]
    assert load_paths(write_extracts(tmp_path / "second", tables), school).ok
    run(at)  # the same session: the grades and the filter choices of the new generation
    assert sorted(grades_table(at)["grade_id"]) == ["G1", "G2", "G3", "G4", "G9"]
    assert "Science" in at.multiselect(key="grades_subjects").options
