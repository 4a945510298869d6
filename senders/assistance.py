"""Assistance requests: a member of staff asks the office for help now (e.g. in a classroom).

A request is stored with an urgent notice to the ``office`` audience in one transaction,
so it pops up on every office homepage; the homepages of people who may acknowledge
requests also poll :func:`open_requests` every few seconds and show each open request
until someone acknowledges it. Acknowledging marks the request and its notice done for
everyone (the first person to acknowledge wins) and is audited. The ``office`` audience
has no e-mail addresses, so no e-mail goes: a request is for now, not for the inbox.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Select, or_, select, update

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AssistanceRequest, AuditEntry, Notice, User, utcnow
from schoolcomms.settings import Settings
from senders.notices import StaffNotice, deliver_in

UK = ZoneInfo("Europe/London")
AUDIENCE = "office"
SOURCE = "assistance"
MAX_LOCATION = 255
MAX_MESSAGE = 1000


class AssistanceProblem(ValueError):
    """A request that cannot be sent as given; the message says what to change."""


def notice_key(request_id: int) -> str:
    """The key of the office notice raised by request ``request_id``."""
    return f"assistance:{request_id}"


def _as_dict(row: AssistanceRequest, name: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "location": row.location,
        "message": row.message,
        "requested_by": row.requested_by,
        "requester": (name or "").strip() or row.requested_by,
        "staff_id": row.staff_id,
        "created_at": row.created_at,
        "acknowledged_at": row.acknowledged_at,
        "acknowledged_by": row.acknowledged_by,
    }


def _with_names() -> Select[tuple[AssistanceRequest, str | None]]:
    """Requests with the requesting account's name (from the users table, if any)."""
    return select(AssistanceRequest, User.name).outerjoin(
        User, User.email == AssistanceRequest.requested_by
    )


def _checked(location: str, message: str, actor: str) -> tuple[str, str, str]:
    place = " ".join((location or "").split())
    text = (message or "").strip()
    who = (actor or "").strip()
    if not who:
        raise ValueError("actor must name who asked (the signed-in user's e-mail)")
    if not place:
        raise AssistanceProblem("Say where help is needed, e.g. “Room M1” or “Sports hall”.")
    if len(place) > MAX_LOCATION:
        raise AssistanceProblem(f"The location is too long: at most {MAX_LOCATION} characters.")
    if len(text) > MAX_MESSAGE:
        raise AssistanceProblem(
            f"The message is too long: at most {MAX_MESSAGE} characters; say the rest in person."
        )
    return place, text, who


def request_assistance(
    engine: Engine,
    settings: Settings,
    *,
    location: str,
    message: str = "",
    actor: str,
    staff_id: str | None = None,
    requester_name: str = "",
    now: dt.datetime | None = None,
) -> int:
    """Store a request and its urgent office notice (one transaction); return its id.

    ``actor`` is the requesting account's e-mail, ``requester_name`` how to name them in
    the notice (default: the e-mail). Raises :class:`AssistanceProblem` for a blank or
    over-long location or message.
    """
    place, text, who = _checked(location, message, actor)
    now = now or utcnow()
    name = (requester_name or "").strip() or who
    with session_scope(engine) as session:
        row = AssistanceRequest(
            location=place, message=text, requested_by=who, staff_id=staff_id, created_at=now
        )
        session.add(row)
        session.flush()
        local = now.astimezone(UK)
        body = f"{name} asked for help at {place} at {local:%H:%M}."
        if text:
            body += f"\n\n{text}"
        body += "\n\nAcknowledge it on your homepage when someone is on the way."
        notice = StaffNotice(
            notice_key(row.id),
            title=f"Assistance needed: {place}",
            body=body,
            source=SOURCE,
            audience=AUDIENCE,
            urgent=True,
            details={"request_id": row.id, "requested_by": who},
        )
        deliver_in(session, settings, [notice], actor=who, now=now)
        session.add(
            AuditEntry(
                at=now,
                actor=who,
                action="assistance.request",
                target=f"assistance:{row.id}",
                details={"location": place, "staff_id": staff_id},
            )
        )
        return row.id


def open_requests(engine: Engine) -> list[dict[str, Any]]:
    """Requests nobody has acknowledged yet, oldest first (the longest wait on top).

    Each is a dict: id, location, message, requested_by (e-mail), requester (the
    account's name, else the e-mail), staff_id, created_at, acknowledged_at,
    acknowledged_by (times aware UTC).
    """
    query = (
        _with_names()
        .where(AssistanceRequest.acknowledged_at.is_(None))
        .order_by(AssistanceRequest.created_at, AssistanceRequest.id)
    )
    with session_scope(engine, immediate=False) as session:
        return [_as_dict(row, name) for row, name in session.execute(query)]


def requests_by(
    engine: Engine, actor: str, *, since: dt.datetime, limit: int = 20
) -> list[dict[str, Any]]:
    """``actor``'s own requests that are still open or were made since ``since``, newest first.

    So the person who asked sees that help is on the way (or not yet).
    """
    query = (
        _with_names()
        .where(
            AssistanceRequest.requested_by == (actor or "").strip(),
            or_(
                AssistanceRequest.acknowledged_at.is_(None),
                AssistanceRequest.created_at >= since,
            ),
        )
        .order_by(AssistanceRequest.created_at.desc(), AssistanceRequest.id.desc())
        .limit(limit)
    )
    with session_scope(engine, immediate=False) as session:
        return [_as_dict(row, name) for row, name in session.execute(query)]


def acknowledge(
    engine: Engine, request_id: int, actor: str, *, now: dt.datetime | None = None
) -> bool:
    """Acknowledge a request for everyone; False if someone already had (nothing changes).

    The office notice of the request is marked read at the same time, so it stops popping
    up on other homepages. Audited as ``assistance.acknowledge``. ``LookupError`` if there
    is no such request.
    """
    who = (actor or "").strip()
    if not who:
        raise ValueError("actor must name who acknowledged (the signed-in user's e-mail)")
    now = now or utcnow()
    with session_scope(engine) as session:
        if session.get(AssistanceRequest, request_id) is None:
            raise LookupError(f"There is no assistance request {request_id}.")
        changed = session.execute(
            update(AssistanceRequest)
            .where(
                AssistanceRequest.id == request_id,
                AssistanceRequest.acknowledged_at.is_(None),
            )
            .values(acknowledged_at=now, acknowledged_by=who)
        )
        if not getattr(changed, "rowcount", 0):
            return False
        session.execute(
            update(Notice)
            .where(Notice.key == notice_key(request_id), Notice.read_at.is_(None))
            .values(read_at=now, read_by=who)
        )
        session.add(
            AuditEntry(
                at=now,
                actor=who,
                action="assistance.acknowledge",
                target=f"assistance:{request_id}",
                details=None,
            )
        )
        return True
