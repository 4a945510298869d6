"""Automatic absence texts to parents (the rule in DESIGN.md, "Automatic absence texts").

For each active 16–19 student (status LIKE ``absence_text_status_pattern``, cohort
``absence_text_cohort``), take the first lesson of today marked ``O`` among the marks
known at the run time. If that mark was recorded by the end of the lesson (a mark with no
``recorded_at`` never proves it), and the run is at least ``absence_text_delay_minutes``
after the lesson's end but not after ``absence_text_latest``, text every portal account
linked to the student with an active, registered link and a mobile. At most one
notification per student per day: an ``absence_notices`` row, written in the same
transaction as the texts and their pastoral log entries, makes re-runs, restarts and
concurrent runs harmless. A mark recorded after its lesson ended means no text that day,
even for a later ``O`` lesson.

:func:`plan` is pure and previews exactly what :func:`send` would queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine, select

from reports.absence import first_absences, portal_accounts
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AbsenceNotice
from schoolcomms.settings import Settings, SettingsError
from schoolcomms.warehouse import Warehouse
from senders import segments
from senders.logbook import add_pastoral
from senders.outbox import NewMessage, enqueue_in, insert_ignoring_conflicts

UK = ZoneInfo("Europe/London")
ACTOR = "absence-texts"
FIELDS = ("student_id", "lesson_start", "link", "forename", "surname")


@dataclass(frozen=True)
class AbsenceText:
    """One text to one portal account about one student's first absence today."""

    student_id: str
    lesson_id: str
    lesson_start: str  # HH:MM
    account_id: str
    mobile: str  # E.164
    text: str

    def as_json(self) -> dict[str, str]:
        """The documented JSON shape of `schoolcomms absence-texts --json`."""
        return asdict(self)


@dataclass(frozen=True)
class Rule:
    delay: dt.timedelta
    latest: dt.time
    status_pattern: str
    cohort: str
    template: str
    link: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Rule:
        try:
            latest = dt.time.fromisoformat(str(settings["absence_text_latest"]))
        except ValueError as exc:
            raise SettingsError(
                f"absence_text_latest is {settings['absence_text_latest']!r}; write a time "
                "as HH:MM, e.g. 18:00."
            ) from exc
        template = str(settings["absence_text_template"])
        try:
            template.format(**dict.fromkeys(FIELDS, ""))
        except (KeyError, IndexError, ValueError) as exc:
            raise SettingsError(
                f"absence_text_template uses a field it cannot fill ({exc}); the fields are "
                f"{', '.join('{' + f + '}' for f in FIELDS)}."
            ) from exc
        return cls(
            dt.timedelta(minutes=int(settings["absence_text_delay_minutes"])),
            latest,
            str(settings["absence_text_status_pattern"]),
            str(settings["absence_text_cohort"]),
            template,
            str(settings["absence_text_link"]),
        )


def _hhmm(value: Any) -> str:
    return value.strftime("%H:%M") if hasattr(value, "strftime") else str(value)[:5]


def _timestamp(value: Any) -> dt.datetime | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """``frame``'s rows as tuples of ``columns`` (None for a column it lacks).

    The same values ``to_dict("records")`` gives, from whole columns: per-row boxing of
    Arrow-backed strings was most of the planning time for a large college.
    """
    return zip(
        *(frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in columns),
        strict=True,
    )


def plan(
    candidates: pd.DataFrame,
    accounts: pd.DataFrame,
    *,
    at: dt.datetime,
    rule: Rule,
    already_notified: set[str],
) -> list[AbsenceText]:
    """The texts due at ``at`` (naive UK local time) for today's first absences.

    ``candidates`` are :func:`reports.absence.first_absences` rows for ``at``'s date;
    ``accounts`` the :func:`reports.absence.portal_accounts` rows of those students;
    ``already_notified`` the students texted (or queued) today already.
    """
    if at.time() > rule.latest:
        return []
    by_student: dict[str, list[tuple[Any, ...]]] = {}
    for link in _rows(
        accounts, ("student_id", "account_id", "mobile_e164", "link_status", "registered")
    ):
        by_student.setdefault(link[0], []).append(link)
    texts: list[AbsenceText] = []
    for student, lesson_id, start_time, end_time, recorded_at, forename, surname in _rows(
        candidates,
        ("student_id", "lesson_id", "start_time", "end_time", "recorded_at", "forename", "surname"),
    ):
        if student in already_notified:
            continue
        end = dt.datetime.combine(at.date(), end_time)
        recorded = _timestamp(recorded_at)
        if recorded is None or recorded > end or at < end + rule.delay:
            continue
        start = _hhmm(start_time)
        words = rule.template.format(
            student_id=student,
            lesson_start=start,
            link=rule.link,
            forename=forename or "",
            surname=surname or "",
        )
        for _, account_id, mobile, link_status, registered in by_student.get(student, []):
            if link_status != "active" or registered is False or not isinstance(mobile, str):
                continue
            texts.append(AbsenceText(student, lesson_id, start, account_id, mobile, words))
    return texts


def notified_today(engine: Engine, day: dt.date) -> set[str]:
    """Students already notified (texts sent or queued) on ``day``."""
    with session_scope(engine, immediate=False) as session:
        rows = session.execute(select(AbsenceNotice.student_id).where(AbsenceNotice.day == day))
        return {student for (student,) in rows}


def plan_at(
    settings: Settings, warehouse: Warehouse, engine: Engine, at: dt.datetime
) -> list[AbsenceText]:
    """Plan the absence texts due at ``at`` (naive UK local time): today's lessons only."""
    rule = Rule.from_settings(settings)
    candidates = first_absences(
        warehouse, day=at.date(), at=at, status_pattern=rule.status_pattern, cohort=rule.cohort
    )
    accounts = portal_accounts(warehouse, candidates["student_id"].tolist())
    return plan(
        candidates, accounts, at=at, rule=rule, already_notified=notified_today(engine, at.date())
    )


def send(
    engine: Engine, settings: Settings, texts: list[AbsenceText], day: dt.date, actor: str = ACTOR
) -> list[AbsenceText]:
    """Queue the planned texts and their pastoral log entries; return those queued.

    Per student, one transaction: claim the (day, student) notice row, then queue every
    text and log it. A student someone else already notified is skipped whole.
    """
    price = float(settings["sms_pence_per_segment"])
    queued: list[AbsenceText] = []
    by_student: dict[str, list[AbsenceText]] = {}
    for text in texts:
        by_student.setdefault(text.student_id, []).append(text)
    for student, group in by_student.items():
        with session_scope(engine) as session:
            # RETURNING, not rowcount: psycopg reports -1 rows for this INSERT on
            # PostgreSQL, which read as "won" and let a second scheduler log again.
            claim = insert_ignoring_conflicts(
                session, AbsenceNotice.__table__, ["day", "student_id"]
            ).returning(AbsenceNotice.__table__.c.id)
            won = (
                session.connection()
                .execute(
                    claim,
                    {
                        "day": day,
                        "student_id": student,
                        "lesson_id": group[0].lesson_id,
                        "texts": len(group),
                        "created_by": actor,
                        "created_at": dt.datetime.now(dt.UTC),
                    },
                )
                .first()
            )
            if won is None:
                continue
            for text in group:
                counted = segments.count(text.text)
                message = NewMessage(
                    "sms",
                    text.mobile,
                    text.text,
                    template_name="absence text",
                    student_id=student,
                    contact_id=f"portal:{text.account_id}",
                    segments=counted.segments,
                    encoding=counted.encoding,
                    cost_pence=segments.cost_pence(counted.segments, price),
                    idempotency_key=f"absence:{day.isoformat()}:{student}:{text.account_id}",
                )
                ids = enqueue_in(session, [message], actor)
                add_pastoral(
                    engine,
                    student_id=student,
                    kind="absence_text",
                    summary=f"Absence text to portal account {text.account_id} about "
                    f"the lesson at {text.lesson_start} ({text.lesson_id})",
                    actor=actor,
                    details=text.as_json(),
                    message_id=ids[0] if ids else None,
                    session=session,
                )
                queued.append(text)
    return queued


def local_now() -> dt.datetime:
    """The current UK local time, naive (as the warehouse stores times)."""
    return dt.datetime.now(UK).replace(tzinfo=None, second=0, microsecond=0)
