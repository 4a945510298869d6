"""Each user's calendars on their homepage: ICS feed addresses and uploaded ICS files.

A calendar source belongs to one dashboard account (its e-mail address) and only that
account can list or remove it. Adding and removing write an audit row in the same
transaction (``calendar.add``, ``calendar.remove``). A feed's address is kept in the ops
store (it is needed to fetch the feed) but never written to the audit log, which names
only its server: a calendar's secret address is as good as a password. Uploaded files
are checked to be calendars before they are stored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from reports.calendar import (
    CalendarError,
    calendar_name,
    normalise_url,
    parse_calendar,
    server_name,
)
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AuditEntry, CalendarSource, utcnow

MAX_SOURCES = 10  # per user
MAX_FILE_BYTES = 2_000_000
MAX_NAME = 255
SOURCE_KINDS = ("url", "file")


class CalendarProblem(ValueError):
    """A calendar cannot be added or removed as asked; the message says why and what to do."""


def _actor(actor: str) -> str:
    text = (actor or "").strip()
    if not text:
        raise ValueError("actor must name who acted (the signed-in user's e-mail)")
    return text


def _owner(user_email: str) -> str:
    text = (user_email or "").strip().lower()
    if not text:
        raise CalendarProblem("Sign in to keep calendars on your homepage.")
    return text


def _name(name: str, fallback: str) -> str:
    text = (name or "").strip() or fallback.strip() or "Calendar"
    return text[:MAX_NAME]


def _audit(session: Any, actor: str, action: str, source_id: int, details: dict) -> None:
    session.add(
        AuditEntry(
            at=utcnow(), actor=actor, action=action, target=f"calendar:{source_id}", details=details
        )
    )


def calendar_sources(engine: Engine, user_email: str) -> list[dict[str, Any]]:
    """The user's calendars, oldest first: id, name, kind, url, content, updated_at."""
    owner = _owner(user_email)
    query = (
        select(CalendarSource).where(CalendarSource.user_email == owner).order_by(CalendarSource.id)
    )
    with session_scope(engine, immediate=False) as session:
        return [
            {
                "id": row.id,
                "name": row.name,
                "kind": row.kind,
                "url": row.url,
                "content": row.content,
                "updated_at": row.updated_at,
            }
            for row in session.scalars(query)
        ]


def _check_room(session: Any, owner: str) -> None:
    query = select(func.count()).where(CalendarSource.user_email == owner)
    count = int(session.scalar(query) or 0)
    if count >= MAX_SOURCES:
        raise CalendarProblem(
            f"You already have {count} calendars on your homepage; remove one before adding "
            "another."
        )


def add_calendar_url(
    engine: Engine, *, user_email: str, url: str, actor: str, name: str = ""
) -> int:
    """Add a feed address (https:// or webcal://) to the user's calendars; return its id.

    The address is checked to be a web address, not fetched: the feed may be down now
    and fine later, and its problems are shown with its events.
    """
    actor, owner = _actor(actor), _owner(user_email)
    try:
        address = normalise_url(url)
    except CalendarError as exc:
        raise CalendarProblem(str(exc)) from exc
    host = server_name(address)
    label = _name(name, host)
    with session_scope(engine) as session:
        _check_room(session, owner)
        known = select(CalendarSource.id).where(
            CalendarSource.user_email == owner, CalendarSource.url == address
        )
        if session.scalar(known) is not None:
            raise CalendarProblem("That calendar address is already on your homepage.")
        row = CalendarSource(
            user_email=owner, name=label, kind="url", url=address, updated_at=utcnow()
        )
        session.add(row)
        session.flush()
        details = {"user": owner, "name": label, "kind": "url", "server": host}
        _audit(session, actor, "calendar.add", row.id, details)
        return row.id


def add_calendar_file(
    engine: Engine, *, user_email: str, content: str | bytes, actor: str, name: str = ""
) -> int:
    """Store an uploaded ICS file as one of the user's calendars; return its id.

    The file must be a readable calendar (:class:`CalendarProblem` says what is wrong);
    its ``X-WR-CALNAME`` names it when ``name`` is blank.
    """
    actor, owner = _actor(actor), _owner(user_email)
    size = len(content.encode("utf-8") if isinstance(content, str) else content)
    if size > MAX_FILE_BYTES:
        raise CalendarProblem(
            f"The file is larger than {MAX_FILE_BYTES // 1_000_000} MB; export a shorter "
            "period, or add the calendar's address instead."
        )
    try:
        calendar = parse_calendar(content)
    except CalendarError as exc:
        raise CalendarProblem(str(exc)) from exc
    text = content.decode("utf-8-sig", "replace") if isinstance(content, bytes) else content
    label = _name(name, calendar_name(calendar))
    with session_scope(engine) as session:
        _check_room(session, owner)
        row = CalendarSource(
            user_email=owner, name=label, kind="file", content=text, updated_at=utcnow()
        )
        session.add(row)
        session.flush()
        details = {"user": owner, "name": label, "kind": "file", "bytes": size}
        _audit(session, actor, "calendar.add", row.id, details)
        return row.id


def remove_calendar(engine: Engine, source_id: int, *, user_email: str, actor: str) -> None:
    """Remove one of the user's calendars (:class:`CalendarProblem` if it is not theirs)."""
    actor, owner = _actor(actor), _owner(user_email)
    with session_scope(engine) as session:
        row = session.get(CalendarSource, source_id)
        if row is None or row.user_email != owner:
            raise CalendarProblem("That calendar is not on your homepage (any more).")
        details = {"user": owner, "name": row.name, "kind": row.kind}
        session.delete(row)
        _audit(session, actor, "calendar.remove", source_id, details)
