"""Queries about marks and grades (senders/queries.py) against a real warehouse and ops store."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import minimal_school, write_extracts
from sqlalchemy import select

from pipelines.load import load_paths
from schoolcomms import auth
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Message, Notice, StaffQuery
from schoolcomms.roles import PermissionDenied
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders import queries
from senders.queries import QueryProblem

ASKER = "ms.office@school.example.org"
# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store


@pytest.fixture
def school(settings: Settings, tmp_path: Path) -> Settings:
    """The minimal school plus a lesson recorded by T2 with no teacher, one with nobody,
    and two grades (one with no entered_by)."""
    tables = minimal_school()
    base = dict(tables["lessons"][0], register_taken_at="")
    tables["lessons"] += [
        dict(
            base,
            lesson_id="L4",
            staff_id="",
            subject="Art",
            period="3",
            start_time="11:00",
            end_time="12:00",
        ),
        dict(
            base,
            lesson_id="L5",
            staff_id="",
            subject="PE",
            period="4",
            start_time="12:00",
            end_time="13:00",
        ),
    ]
    mark = dict(tables["marks"][1], mark="N", comment="")
    tables["marks"] += [
        dict(mark, lesson_id="L4", recorded_by="T2"),
        dict(mark, lesson_id="L5", recorded_by=""),
    ]
    tables["grades"] = [
        {
            "grade_id": "G1",
            "student_id": "S1",
            "class_id": "10A/Ma",
            "subject": "Maths",
            "assessment": "Autumn test",
            "grade": "4",
            "comment": "Revise algebra",
            "entered_by": "T2",
            "entered_at": "2026-10-09 18:24",
        },
        {"grade_id": "G2", "student_id": "S2", "subject": "Maths", "grade": "5", "entered_by": ""},
    ]
    report = load_paths(write_extracts(tmp_path / "school", tables), settings)
    assert report.ok, [p.as_text() for p in report.problems]
    return settings


def stored(settings: Settings, model: type) -> list:
    with session_scope(open_ops(settings), immediate=False) as session:
        return list(session.scalars(select(model).order_by(model.id)))


def ask_mark(settings: Settings, lesson_id: str = "L1", question: str = "Was Ben out?") -> int:
    return queries.ask_mark_query(
        open_ops(settings),
        settings,
        Warehouse.from_settings(settings),
        student_id="S2",
        lesson_id=lesson_id,
        question=question,
        actor=ASKER,
    )


def test_a_mark_query_goes_to_the_lessons_teacher_once(school: Settings) -> None:
    query_id = ask_mark(school)
    [query] = stored(school, StaffQuery)
    assert (query.id, query.kind, query.student_id, query.subject_ref) == (
        query_id,
        "mark",
        "S2",
        "L1",
    )
    assert (query.to_staff_id, query.current_value, query.status) == ("T1", "O", "open")
    assert query.context["date"].startswith("2026-09-03")
    assert query.context["subject"] == "Maths" and query.context["teacher_from"] == "lesson"
    assert query.context["to_name"] == "Ms Tara Teach"
    assert "Ben Baker (S2, 10A)" in query.context["about"]
    [notice] = stored(school, Notice)
    assert notice.key == f"query:{query_id}:asked" and notice.staff_id == "T1"
    assert notice.title.startswith("Query about a mark: Ben Baker")
    assert "marked O (Absent in other or unknown circumstances)" in notice.body
    assert "Was Ben out?" in notice.body and ASKER in notice.body
    assert (notice.student_id, notice.lesson_id) == ("S2", "L1")
    [email] = stored(school, Message)
    assert email.to_address == "t.teach@school.example.com" and email.channel == "email"
    assert recent_audit(open_ops(school), action="query.mark")["target"].tolist() == [
        f"query:{query_id}"
    ]
    # The same question again (a double click): the first query, no second notice.
    assert ask_mark(school) == query_id
    assert len(stored(school, Notice)) == 1 and len(stored(school, StaffQuery)) == 1
    # Another question about the same mark is a new query.
    assert ask_mark(school, question="And the reason?") != query_id


def test_with_no_teacher_on_the_lesson_the_query_goes_to_who_recorded_the_mark(
    school: Settings,
) -> None:
    ask_mark(school, "L4")
    [query] = stored(school, StaffQuery)
    assert (query.to_staff_id, query.current_value) == ("T2", "N")
    assert query.context["teacher_from"] == "recorded_by"
    assert stored(school, Notice)[0].staff_id == "T2"


def test_mark_queries_refused_in_words(school: Settings) -> None:
    with pytest.raises(QueryProblem, match="Write the question"):
        ask_mark(school, question="  ")
    with pytest.raises(QueryProblem, match="no mark for pupil S2 in lesson NOPE"):
        ask_mark(school, "NOPE")
    with pytest.raises(QueryProblem, match="Nobody is named as taking the register"):
        ask_mark(school, "L5")
    with pytest.raises(QueryProblem, match="too long"):
        ask_mark(school, question="x" * 5000)
    assert stored(school, StaffQuery) == [] and stored(school, Notice) == []


def test_only_the_teacher_or_an_admin_answers_and_the_asker_hears(school: Settings) -> None:
    engine = open_ops(school)
    auth.create_user(engine, email=ASKER, roles=["office"], actor="t", staff_id="T2")
    query_id = ask_mark(school)
    with pytest.raises(PermissionDenied, match="Only the teacher"):
        queries.answer_query(
            engine, query_id, "Yes", actor="x@s.org", staff_id="T2", is_admin=False
        )
    with pytest.raises(PermissionDenied):
        queries.answer_query(
            engine, query_id, "Yes", actor="x@s.org", staff_id=None, is_admin=False
        )
    with pytest.raises(QueryProblem, match="Write the answer"):
        queries.answer_query(engine, query_id, "", actor="t@s.org", staff_id="T1", is_admin=False)
    queries.answer_query(
        engine,
        query_id,
        "Yes, absent all lesson.",
        actor="t.teach@school.example.com",
        staff_id="T1",
        is_admin=False,
        settings=school,
    )
    [query] = stored(school, StaffQuery)
    assert (query.status, query.answer) == ("answered", "Yes, absent all lesson.")
    assert query.answered_by == "t.teach@school.example.com" and query.answered_at is not None
    answer = [n for n in stored(school, Notice) if n.key == f"query:{query_id}:answered"]
    assert [n.staff_id for n in answer] == ["T2"]
    assert "Yes, absent all lesson." in answer[0].body and "Was Ben out?" in answer[0].body
    assert ASKER in [m.to_address for m in stored(school, Message)]
    assert len(recent_audit(engine, action="query.answer")) == 1
    with pytest.raises(QueryProblem, match="already answered"):
        queries.answer_query(
            engine, query_id, "Again", actor="a@s.org", staff_id=None, is_admin=True
        )


def test_an_admin_answers_and_an_asker_with_no_staff_link_gets_an_email(school: Settings) -> None:
    engine = open_ops(school)
    query_id = ask_mark(school)
    queries.answer_query(
        engine,
        query_id,
        "Checked.",
        actor="admin@s.org",
        staff_id=None,
        is_admin=True,
        settings=school,
    )
    assert [n.key for n in stored(school, Notice)] == [f"query:{query_id}:asked"]
    [email] = [m for m in stored(school, Message) if m.to_address == ASKER]
    assert "Checked." in email.body and email.subject.startswith("Answer to your query")


def test_without_settings_the_answer_is_a_notice_only(school: Settings) -> None:
    engine = open_ops(school)
    auth.create_user(engine, email=ASKER, roles=["office"], actor="t", staff_id="T2")
    query_id = ask_mark(school)
    queries.answer_query(engine, query_id, "Fine.", actor="t@s.org", staff_id="T1", is_admin=False)
    assert [n.staff_id for n in stored(school, Notice)] == ["T1", "T2"]
    assert ASKER not in [m.to_address for m in stored(school, Message)]


def test_closing_a_query(school: Settings) -> None:
    engine = open_ops(school)
    first, second = ask_mark(school), ask_mark(school, "L4")
    with pytest.raises(PermissionDenied, match="Only who asked"):
        queries.close_query(engine, first, actor="someone@s.org", staff_id="T2")
    queries.close_query(engine, first, actor=ASKER)
    queries.close_query(engine, second, actor="t.tutor@s.org", staff_id="T2")
    assert [q.status for q in stored(school, StaffQuery)] == ["closed", "closed"]
    with pytest.raises(QueryProblem, match="already closed"):
        queries.close_query(engine, first, actor="admin@s.org", is_admin=True)
    with pytest.raises(QueryProblem, match="no query 99"):
        queries.close_query(engine, 99, actor=ASKER)
    assert len(recent_audit(engine, action="query.close")) == 2


def test_the_inbox_filters(school: Settings) -> None:
    engine = open_ops(school)
    mark_id = ask_mark(school, "L4")
    grade_id = queries.ask_grade_query(
        engine,
        school,
        Warehouse.from_settings(school),
        grade_id="G1",
        question="Is a 4 right?",
        actor="head@s.org",
    )
    inbox = queries.queries_for(engine, to_staff_id="T2")
    assert inbox["id"].tolist() == [grade_id, mark_id]  # newest first
    assert list(inbox.columns) == list(queries.QUERY_COLUMNS)
    assert inbox["to_name"].tolist() == ["Mr Tom Tutor", "Mr Tom Tutor"]
    assert queries.queries_for(engine, kind="grade")["id"].tolist() == [grade_id]
    assert queries.queries_for(engine, asked_by=ASKER)["id"].tolist() == [mark_id]
    assert queries.queries_for(engine, status=["answered", "closed"]).empty
    assert queries.queries_for(engine, to_staff_id="T1").empty
    with pytest.raises(QueryProblem, match="Unknown query kind"):
        queries.queries_for(engine, kind="homework")
    with pytest.raises(QueryProblem, match="Unknown query status"):
        queries.queries_for(engine, status="pending")


def test_a_grade_query_goes_to_who_entered_the_grade(school: Settings) -> None:
    engine, warehouse = open_ops(school), Warehouse.from_settings(school)
    query_id = queries.ask_grade_query(
        engine, school, warehouse, grade_id="G1", question="Is a 4 right?", actor=ASKER
    )
    [query] = stored(school, StaffQuery)
    assert (query.kind, query.subject_ref, query.student_id) == ("grade", "G1", "S1")
    assert (query.to_staff_id, query.current_value) == ("T2", "4")
    assert query.context["assessment"] == "Autumn test" and query.context["class_id"] == "10A/Ma"
    [notice] = stored(school, Notice)
    assert notice.staff_id == "T2" and notice.lesson_id is None
    assert notice.title == "Query about a grade: Ann Able, Maths Autumn test"
    assert 'has grade 4 for Maths Autumn test (class 10A/Ma). Comment: "Revise algebra"' in (
        notice.body
    )
    assert stored(school, Message)[0].to_address == "t.tutor@school.example.com"
    assert len(recent_audit(engine, action="query.grade")) == 1
    queries.answer_query(engine, query_id, "Yes.", actor="t2@s.org", staff_id="T2", is_admin=False)
    assert stored(school, StaffQuery)[0].status == "answered"
    with pytest.raises(QueryProblem, match="no grade NOPE"):
        queries.ask_grade_query(engine, school, warehouse, grade_id="NOPE", question="?", actor="a")
    with pytest.raises(QueryProblem, match="does not say who entered it"):
        queries.ask_grade_query(engine, school, warehouse, grade_id="G2", question="?", actor="a")
    with pytest.raises(QueryProblem, match="Write the question"):
        queries.ask_grade_query(engine, school, warehouse, grade_id="G1", question="", actor="a")
