"""Queries about attendance marks and grades, sent to the teacher who entered them.

A member of staff who doubts a mark ("Was Ann really absent from period 2?") or a
grade asks the teacher who entered it: :func:`ask_mark_query` / :func:`ask_grade_query`
store a :class:`~schoolcomms.ops.models.StaffQuery` with the mark or grade as it was
and its context, and deliver a notice to that teacher (homepage, e-mailed to their
address in the staff extract when ``alert_emails`` is on), with an audit row, in one
transaction. The teacher of a mark is the one who took the register: the lesson's
``staff_id``, else the mark's ``recorded_by``; of a grade, its ``entered_by``.

Asking the same question about the same mark again while the first is open returns
the first query (a double click sends one notice). Only the query's teacher (or an
administrator) may answer it (:func:`answer_query`); the asker then gets a notice with
the answer. The asker, the teacher or an administrator may close it. :func:`queries_for`
is the inbox. Problems the user can fix raise :class:`QueryProblem` in words; a refusal
raises :class:`~schoolcomms.roles.PermissionDenied`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from reports.staff import staff_by_id
from schoolcomms.codes import code_table
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import QUERY_KINDS, QUERY_STATES, AuditEntry, StaffQuery, User, utcnow
from schoolcomms.roles import PermissionDenied
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders.notices import StaffNotice, deliver_in
from senders.outbox import NewMessage, enqueue_in

MAX_TEXT = 4000
SOURCE = "query"
# What deliver_in reads of the settings, for an answer given without them: no e-mail.
_NO_EMAIL: dict[str, Any] = {"alert_emails": False}
QUERY_COLUMNS = (
    "id",
    "kind",
    "student_id",
    "subject_ref",
    "current_value",
    "about",
    "to_staff_id",
    "to_name",
    "question",
    "answer",
    "status",
    "created_at",
    "created_by",
    "answered_at",
    "answered_by",
    "context",
)

MARK_SQL = """
SELECT m.student_id, m.lesson_id, m.mark, m.comment, m.minutes_late, m.recorded_at,
       m.recorded_by, l.date, l.start_time, l.end_time, coalesce(nullif(l.kind, ''), 'lesson')
           AS kind, l.period, l.subject, l.class_id, l.room, l.staff_id AS lesson_staff_id,
       trim(concat_ws(' ', coalesce(nullif(s.preferred_forename, ''), s.forename), s.surname))
           AS name, s.form, s.year_group
FROM marks m
JOIN lessons l ON l.lesson_id = m.lesson_id
LEFT JOIN students s ON s.student_id = m.student_id
WHERE m.student_id = $student_id AND m.lesson_id = $lesson_id
"""
GRADE_SQL = """
SELECT g.grade_id, g.student_id, g.class_id, g.subject, g.assessment, g.grade, g.comment,
       g.entered_by, g.entered_at,
       trim(concat_ws(' ', coalesce(nullif(s.preferred_forename, ''), s.forename), s.surname))
           AS name, s.form, s.year_group
FROM grades g LEFT JOIN students s ON s.student_id = g.student_id
WHERE g.grade_id = $grade_id
"""


class QueryProblem(ValueError):
    """A query cannot be asked, answered or closed as given; the message says why."""


def _text(value: Any, what: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise QueryProblem(f"Write the {what} first.")
    if len(text) > MAX_TEXT:
        raise QueryProblem(f"The {what} is too long: at most {MAX_TEXT:,} characters.")
    return text


def _actor(actor: str) -> str:
    text = (actor or "").strip()
    if not text:
        raise ValueError("actor must name who acted (a user's e-mail address)")
    return text


def _blank(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value)) or str(value) == ""


def _plain(value: Any) -> Any:
    """A warehouse value as JSON: None for NULL, ISO text for dates and times."""
    if _blank(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _pupil(row: dict[str, Any]) -> str:
    form = f", {row['form']}" if not _blank(row.get("form")) else ""
    name = row.get("name") or row["student_id"]
    return f"{name} ({row['student_id']}{form})"


def _audit(session: Session, actor: str, action: str, target: str, details: Any) -> None:
    session.add(AuditEntry(at=utcnow(), actor=actor, action=action, target=target, details=details))


def _open_duplicate(
    session: Session, kind: str, student_id: str, ref: str, question: str, actor: str
) -> int | None:
    return session.scalar(
        select(StaffQuery.id).where(
            StaffQuery.kind == kind,
            StaffQuery.student_id == student_id,
            StaffQuery.subject_ref == ref,
            StaffQuery.question == question,
            StaffQuery.created_by == actor,
            StaffQuery.status == "open",
        )
    )


def _ask(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse,
    *,
    kind: str,
    row: dict[str, Any],
    ref: str,
    current: str,
    context: dict[str, Any],
    to_staff_id: str,
    question: str,
    actor: str,
    title: str,
    body: str,
) -> int:
    teacher = staff_by_id(warehouse, [to_staff_id]).get(to_staff_id) or {}
    context = {**context, "to_name": teacher.get("name") or to_staff_id}
    with session_scope(engine) as session:
        earlier = _open_duplicate(session, kind, row["student_id"], ref, question, actor)
        if earlier is not None:
            return int(earlier)
        query = StaffQuery(
            kind=kind,
            student_id=row["student_id"],
            subject_ref=ref,
            current_value=current[:255],
            context=context,
            to_staff_id=to_staff_id,
            question=question,
            created_by=actor,
        )
        session.add(query)
        session.flush()
        notice = StaffNotice(
            f"query:{query.id}:asked",
            title,
            f"{body}\n\nQuestion from {actor}: {question}\n\nPlease answer it from your queries "
            "in the dashboard (and correct the MIS if it is wrong).",
            SOURCE,
            staff_id=to_staff_id,
            email=teacher.get("email"),
            student_id=row["student_id"],
            lesson_id=ref if kind == "mark" else None,
            details={"query_id": query.id, "kind": kind},
        )
        deliver_in(session, settings, [notice], actor=actor)
        _audit(
            session,
            actor,
            f"query.{kind}",
            f"query:{query.id}",
            {"student_id": row["student_id"], "ref": ref, "to_staff_id": to_staff_id},
        )
        return int(query.id)


def ask_mark_query(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse,
    *,
    student_id: str,
    lesson_id: str,
    question: str,
    actor: str,
) -> int:
    """Ask the teacher who took the register about a pupil's mark; return the query id.

    The teacher is the lesson's ``staff_id``, else the mark's ``recorded_by``. The mark
    and its lesson (date, times, register, class, room, comment, who recorded it and
    when) are stored with the query. Raises :class:`QueryProblem` for a blank question,
    a mark that is not in the loaded data, or a register nobody is named as taking.
    """
    actor = _actor(actor)
    question = _text(question, "question")
    found = warehouse.query(MARK_SQL, {"student_id": student_id, "lesson_id": lesson_id})
    if found.empty:
        raise QueryProblem(
            f"There is no mark for pupil {student_id} in lesson {lesson_id} in the loaded "
            "data; choose a mark from the tables on the Attendance page."
        )
    row = {k: _plain(v) for k, v in found.iloc[0].to_dict().items()}
    teacher = row["lesson_staff_id"] or row["recorded_by"]
    if not teacher:
        raise QueryProblem(
            f"Nobody is named as taking the register of lesson {lesson_id} (no teacher on "
            "the lesson and no recorded_by on the mark), so there is nobody to ask. Ask the "
            "data manager to check the timetable in the MIS."
        )
    meanings = {c: m for c, _cat, m, _o in code_table(str(settings["extra_attendance_codes"]))}
    mark = str(row["mark"])
    start = str(row["start_time"] or "")[:5]
    day = dt.date.fromisoformat(str(row["date"])[:10])
    if row["kind"] == "session":
        register = f"the {row['period'] or 'registration'} session"
    else:
        period = f"period {row['period']} " if row["period"] else ""
        register = f"{period}{row['subject'] or 'lesson'} ({row['class_id'] or lesson_id})"
    when = f"{day:%a %d %b %Y} at {start}"
    about = f"{_pupil(row)}: {register}, {when} — mark {mark}"
    context = {
        **{k: row[k] for k in row if k not in ("name",)},
        "pupil": row["name"],
        "meaning": meanings.get(mark.upper(), "unknown code"),
        "teacher_from": "lesson" if row["lesson_staff_id"] else "recorded_by",
        "about": about,
    }
    comment = f' Comment: "{row["comment"]}".' if row["comment"] else ""
    room = f", room {row['room']}" if row["room"] else ""
    body = (
        f"{_pupil(row)} is marked {mark} ({context['meaning']}) in {register}{room}, "
        f"{when}.{comment}"
    )
    return _ask(
        engine,
        settings,
        warehouse,
        kind="mark",
        row=row,
        ref=lesson_id,
        current=mark,
        context=context,
        to_staff_id=str(teacher),
        question=question,
        actor=actor,
        title=f"Query about a mark: {row['name'] or student_id}, {register}, {day:%d/%m}",
        body=body,
    )


def ask_grade_query(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse,
    *,
    grade_id: str,
    question: str,
    actor: str,
) -> int:
    """Ask the teacher who entered a grade (``grades.entered_by``) about it; return the id.

    The grade, its assessment, subject, class and comment are stored with the query.
    Raises :class:`QueryProblem` for a blank question, an unknown grade, or a grade with
    no ``entered_by``.
    """
    actor = _actor(actor)
    question = _text(question, "question")
    found = warehouse.query(GRADE_SQL, {"grade_id": grade_id})
    if found.empty:
        raise QueryProblem(
            f"There is no grade {grade_id} in the loaded data; choose one from the Grades page."
        )
    row = {k: _plain(v) for k, v in found.iloc[0].to_dict().items()}
    if not row["entered_by"]:
        raise QueryProblem(
            f"Grade {grade_id} does not say who entered it (entered_by is blank), so there "
            "is nobody to ask. Ask the data manager to include entered_by in the extract."
        )
    what = " ".join(str(row[k]) for k in ("subject", "assessment") if row[k]) or "assessment"
    grade = "" if row["grade"] is None else str(row["grade"])
    about = f"{_pupil(row)}: {what} — grade {grade or '(blank)'}"
    context = {**{k: row[k] for k in row if k != "name"}, "pupil": row["name"], "about": about}
    comment = f' Comment: "{row["comment"]}".' if row["comment"] else ""
    class_id = f" (class {row['class_id']})" if row["class_id"] else ""
    body = f"{_pupil(row)} has grade {grade or '(blank)'} for {what}{class_id}.{comment}"
    return _ask(
        engine,
        settings,
        warehouse,
        kind="grade",
        row=row,
        ref=grade_id,
        current=grade,
        context=context,
        to_staff_id=str(row["entered_by"]),
        question=question,
        actor=actor,
        title=f"Query about a grade: {row['name'] or row['student_id']}, {what}",
        body=body,
    )


def _get(session: Session, query_id: int) -> StaffQuery:
    query = session.get(StaffQuery, int(query_id))
    if query is None:
        raise QueryProblem(f"There is no query {query_id}.")
    return query


def answer_query(
    engine: Engine,
    query_id: int,
    answer: str,
    *,
    actor: str,
    staff_id: str | None,
    is_admin: bool,
    settings: Settings | None = None,
) -> None:
    """Answer an open query; the asker gets a notice with the answer (audit ``query.answer``).

    Only the query's teacher (``to_staff_id == staff_id``) or an admin (``is_admin``) may
    answer; anyone else gets :class:`~schoolcomms.roles.PermissionDenied`. The asker's
    notice goes to the staff member their account is linked to (homepage); with
    ``settings`` it is also e-mailed to the asker when ``alert_emails`` is on (an asker
    with no staff link gets the e-mail only).
    """
    actor = _actor(actor)
    text = _text(answer, "answer")
    with session_scope(engine) as session:
        query = _get(session, query_id)
        if not is_admin and (not staff_id or query.to_staff_id != staff_id):
            raise PermissionDenied(
                "Only the teacher the query was sent to, or an administrator, may answer it."
            )
        if query.status != "open":
            by = f" by {query.answered_by}" if query.answered_by else ""
            raise QueryProblem(f"Query {query_id} is already {query.status}{by}.")
        query.answer, query.status = text, "answered"
        query.answered_at, query.answered_by = utcnow(), actor
        asker = query.created_by
        about = (query.context or {}).get("about") or f"{query.kind} of {query.student_id}"
        title = f"Answer to your query about a {query.kind}: {about}"[:255]
        body = f"{about}\n\nYou asked: {query.question}\n\n{actor} answered: {text}"
        asker_staff = session.scalar(select(User.staff_id).where(User.email == asker.lower()))
        emails = bool(settings["alert_emails"]) if settings is not None else False
        address = asker if emails and "@" in asker else None
        if asker_staff:
            notice = StaffNotice(
                f"query:{query.id}:answered",
                title,
                body,
                SOURCE,
                staff_id=asker_staff,
                email=address,
                student_id=query.student_id,
                lesson_id=query.subject_ref if query.kind == "mark" else None,
                details={"query_id": query.id, "kind": query.kind},
            )
            deliver_in(session, settings or _NO_EMAIL, [notice], actor=actor)  # type: ignore[arg-type]
        elif address:
            message = NewMessage(
                "email",
                address,
                body,
                subject=title,
                template_name=f"notice:{SOURCE}",
                student_id=query.student_id,
                idempotency_key=f"notice:query:{query.id}:answered:{address.lower()}",
            )
            enqueue_in(session, [message], actor)
        _audit(session, actor, "query.answer", f"query:{query.id}", {"answer": text})


def close_query(
    engine: Engine,
    query_id: int,
    *,
    actor: str,
    staff_id: str | None = None,
    is_admin: bool = False,
) -> None:
    """Close an open or answered query (audit ``query.close``).

    The asker (``actor`` is who asked), the query's teacher (``staff_id``) or an admin
    may close it; anyone else gets :class:`~schoolcomms.roles.PermissionDenied`.
    """
    actor = _actor(actor)
    with session_scope(engine) as session:
        query = _get(session, query_id)
        mine = query.created_by.lower() == actor.lower()
        theirs = bool(staff_id) and query.to_staff_id == staff_id
        if not (is_admin or mine or theirs):
            raise PermissionDenied(
                "Only who asked the query, the teacher it was sent to, or an administrator "
                "may close it."
            )
        if query.status == "closed":
            raise QueryProblem(f"Query {query_id} is already closed.")
        before, query.status = query.status, "closed"
        _audit(session, actor, "query.close", f"query:{query.id}", {"from": before})


def _check(value: str | Sequence[str] | None, allowed: Sequence[str], what: str) -> list[str]:
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise QueryProblem(
            f"Unknown query {what} {', '.join(unknown)}; use one of {', '.join(allowed)}."
        )
    return values


def queries_for(
    engine: Engine,
    *,
    to_staff_id: str | None = None,
    asked_by: str | None = None,
    kind: str | None = None,
    status: str | Sequence[str] | None = None,
    limit: int = 1000,
) -> pd.DataFrame:
    """Queries, newest first: to a teacher, asked by someone, of a kind, in a status.

    ``kind`` is ``mark`` or ``grade``; ``status`` one or more of ``open``, ``answered``,
    ``closed``. Columns :data:`QUERY_COLUMNS` (``about`` and ``to_name`` come from the
    stored context; times aware UTC).
    """
    kinds = _check(kind, QUERY_KINDS, "kind")
    states = _check(status, QUERY_STATES, "status")
    query = select(StaffQuery).order_by(StaffQuery.created_at.desc(), StaffQuery.id.desc())
    if to_staff_id is not None:
        query = query.where(StaffQuery.to_staff_id == to_staff_id)
    if asked_by is not None:
        query = query.where(StaffQuery.created_by == asked_by)
    if kinds:
        query = query.where(StaffQuery.kind.in_(kinds))
    if states:
        query = query.where(StaffQuery.status.in_(states))
    with session_scope(engine, immediate=False) as session:
        rows = [
            {
                **{c: getattr(q, c) for c in QUERY_COLUMNS if hasattr(StaffQuery, c)},
                "about": (q.context or {}).get("about", ""),
                "to_name": (q.context or {}).get("to_name", q.to_staff_id),
            }
            for q in session.scalars(query.limit(limit))
        ]
    frame = pd.DataFrame(rows, columns=list(QUERY_COLUMNS))
    for column in ("created_at", "answered_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["id"] = frame["id"].astype("int64")
    return frame


__all__ = [
    "QUERY_COLUMNS",
    "QueryProblem",
    "answer_query",
    "ask_grade_query",
    "ask_mark_query",
    "close_query",
    "queries_for",
]
