"""The contact log (calls and meetings with parents that staff record) and the pastoral log."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.history import audit
from schoolcomms.ops.models import ContactEntry, PastoralEntry, utcnow

METHODS = ("phone", "meeting", "email", "letter", "other")
DIRECTIONS = ("out", "in")


class LogbookError(ValueError):
    """An entry cannot be recorded as given; the message says what to change."""


def record_contact(
    engine: Engine,
    *,
    student_id: str,
    method: str,
    actor: str,
    happened_at: dt.datetime | None = None,
    contact_id: str | None = None,
    contact_name: str = "",
    direction: str = "out",
    outcome: str = "",
    notes: str = "",
    follow_up_on: dt.datetime | None = None,
) -> int:
    """Record a phone call, meeting or other contact with a parent; returns its id."""
    if not student_id.strip():
        raise LogbookError("Choose the pupil the contact was about.")
    if method not in METHODS:
        raise LogbookError(f"How was the contact made? Choose one of: {', '.join(METHODS)}.")
    if direction not in DIRECTIONS:
        raise LogbookError("Direction must be 'out' (we contacted them) or 'in' (they did).")
    when = happened_at or utcnow()
    if when.tzinfo is None:
        raise LogbookError("The time of the contact needs a time zone.")
    if when > utcnow() + dt.timedelta(minutes=5):
        raise LogbookError("The contact cannot have happened in the future.")
    with session_scope(engine) as session:
        entry = ContactEntry(
            happened_at=when,
            student_id=student_id.strip(),
            contact_id=contact_id,
            contact_name=contact_name.strip(),
            method=method,
            direction=direction,
            outcome=outcome.strip(),
            notes=notes.strip(),
            follow_up_on=follow_up_on,
            created_by=actor,
        )
        session.add(entry)
        session.flush()
        entry_id = entry.id
    audit(
        engine,
        actor,
        "contact.record",
        f"student:{student_id}",
        {"method": method, "contact_log_id": entry_id},
    )
    return entry_id


def contact_history(
    engine: Engine, student_id: str | None = None, limit: int = 500
) -> pd.DataFrame:
    """Recorded contacts, newest first; all pupils or one."""
    query = select(ContactEntry).order_by(ContactEntry.happened_at.desc()).limit(limit)
    if student_id:
        query = query.where(ContactEntry.student_id == student_id)
    columns = [
        "id",
        "happened_at",
        "student_id",
        "contact_id",
        "contact_name",
        "method",
        "direction",
        "outcome",
        "notes",
        "follow_up_on",
        "created_by",
    ]
    with session_scope(engine, immediate=False) as session:
        rows = [{c: getattr(e, c) for c in columns} for e in session.scalars(query)]
    return pd.DataFrame(rows, columns=columns)


def add_pastoral(
    engine: Engine,
    *,
    student_id: str,
    kind: str,
    summary: str,
    actor: str,
    details: dict[str, Any] | None = None,
    message_id: int | None = None,
    session: Any = None,
) -> None:
    """Add a pastoral log entry (inside ``session`` when given, so it commits with it)."""
    entry = PastoralEntry(
        student_id=student_id,
        kind=kind,
        summary=summary,
        details=details,
        message_id=message_id,
        created_by=actor,
    )
    if session is not None:
        session.add(entry)
        return
    with session_scope(engine) as own:
        own.add(entry)


def pastoral_history(
    engine: Engine, student_id: str | None = None, limit: int = 500
) -> pd.DataFrame:
    """Pastoral log entries, newest first."""
    query = select(PastoralEntry).order_by(PastoralEntry.at.desc()).limit(limit)
    if student_id:
        query = query.where(PastoralEntry.student_id == student_id)
    columns = ["id", "at", "student_id", "kind", "summary", "message_id", "created_by"]
    with session_scope(engine, immediate=False) as session:
        rows = [{c: getattr(e, c) for c in columns} for e in session.scalars(query)]
    return pd.DataFrame(rows, columns=columns)
