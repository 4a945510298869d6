"""Staff notices: shown on homepages (pop-up when urgent) and e-mailed, each once.

A notice is addressed to one staff member (``staff_id``, e-mailed to their address from
the staff extract) or to a dashboard role (``audience``, e.g. ``data_manager``, e-mailed
to the setting ``data_manager_emails``). Its ``key`` names it for ever: delivering a key
that is already stored does nothing, so a rule fires once per crossing and a register
reminder goes once, whatever re-runs, restarts or concurrent schedulers happen. The
notice row and its e-mail are written in one transaction.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import Notice, utcnow
from schoolcomms.settings import Settings
from senders.outbox import NewMessage, enqueue_in, insert_ignoring_conflicts

AUDIENCES: tuple[str, ...] = (
    "data_manager",
    "senior_leader",
    "admin",
    "office",
    "attendance_officer",
    "pastoral",
    "teacher",
)
ACTOR = "scheduler"


@dataclass(frozen=True)
class StaffNotice:
    """A notice to deliver. Exactly one of ``staff_id`` and ``audience`` is set."""

    key: str
    title: str
    body: str
    source: str
    staff_id: str | None = None
    audience: str | None = None
    urgent: bool = False
    email: str | None = None
    rule_id: int | None = None
    student_id: str | None = None
    lesson_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.staff_id is None) == (self.audience is None):
            raise ValueError("A notice goes to a staff member or to an audience, not both")
        if self.audience is not None and self.audience not in AUDIENCES:
            raise ValueError(f"Unknown audience {self.audience!r}; use one of {AUDIENCES}")

    def as_json(self) -> dict[str, Any]:
        """The notice as plain JSON (for ``--json`` previews)."""
        return {
            "key": self.key,
            "to_staff_id": self.staff_id,
            "to_audience": self.audience,
            "email": self.email,
            "title": self.title,
            "body": self.body,
            "urgent": self.urgent,
            "source": self.source,
            "rule_id": self.rule_id,
            "student_id": self.student_id,
            "lesson_id": self.lesson_id,
        }


def data_manager_emails(settings: Settings) -> list[str]:
    """The addresses in the setting ``data_manager_emails`` (blank: none)."""
    return [a.strip() for a in str(settings["data_manager_emails"]).split(",") if a.strip()]


def email_message(notice: StaffNotice, to: str) -> NewMessage:
    """The e-mail that goes with ``notice`` to ``to`` (subject, text and escaped HTML)."""
    marker = "[Urgent] " if notice.urgent else ""
    body = f"{notice.body}\n\n— schoolcomms (this notice is also on your dashboard homepage)"
    paragraphs = "".join(
        f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>" for part in notice.body.split("\n\n")
    )
    return NewMessage(
        "email",
        to,
        body,
        subject=f"{marker}{notice.title}",
        html=f"{paragraphs}<p><small>schoolcomms: this notice is also on your dashboard "
        "homepage.</small></p>",
        template_name=f"notice:{notice.source}",
        student_id=notice.student_id,
        idempotency_key=f"notice:{notice.key}:{to.lower()}",
    )


def deliver(
    engine: Engine,
    settings: Settings,
    notices: Sequence[StaffNotice],
    *,
    actor: str = ACTOR,
    now: dt.datetime | None = None,
) -> list[StaffNotice]:
    """Store each new notice and queue its e-mail; return the notices that were new.

    A notice whose key is already stored is skipped (with its e-mail). E-mail goes when
    the setting ``alert_emails`` is on: to ``notice.email`` for a staff member, to
    ``data_manager_emails`` for the data-manager audience.
    """
    with session_scope(engine) as session:
        return deliver_in(session, settings, notices, actor=actor, now=now)


def deliver_in(
    session: Session,
    settings: Settings,
    notices: Sequence[StaffNotice],
    *,
    actor: str = ACTOR,
    now: dt.datetime | None = None,
) -> list[StaffNotice]:
    """:func:`deliver` inside the caller's transaction (e.g. with an alert's firing row)."""
    now = now or utcnow()
    send_email = bool(settings["alert_emails"])
    delivered: list[StaffNotice] = []
    stmt = insert_ignoring_conflicts(session, Notice.__table__, ["key"]).returning(Notice.id)
    for notice in notices:
        row = {
            "key": notice.key,
            "staff_id": notice.staff_id,
            "audience": notice.audience,
            "source": notice.source,
            "title": notice.title[:255],
            "body": notice.body,
            "urgent": notice.urgent,
            "rule_id": notice.rule_id,
            "student_id": notice.student_id,
            "lesson_id": notice.lesson_id,
            "details": notice.details,
            "created_at": now,
            "created_by": actor,
        }
        notice_id = session.connection().execute(stmt, row).scalar()
        if notice_id is None:
            continue
        delivered.append(notice)
        addresses: list[str] = []
        if send_email and notice.email:
            addresses = [notice.email]
        elif send_email and notice.audience == "data_manager":
            addresses = data_manager_emails(settings)
        if addresses:
            ids = enqueue_in(session, [email_message(notice, a) for a in addresses], actor)
            if ids:
                session.execute(
                    update(Notice).where(Notice.id == notice_id).values(message_id=ids[0])
                )
    return delivered


def notices_for(
    engine: Engine,
    *,
    staff_id: str | None = None,
    audiences: Iterable[str] = (),
    everyone: bool = False,
    unread_only: bool = False,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The newest notices for a staff member and/or their audiences (``everyone``: all)."""
    query = select(Notice).order_by(Notice.created_at.desc(), Notice.id.desc()).limit(limit)
    if not everyone:
        conditions = []
        if staff_id:
            conditions.append(Notice.staff_id == staff_id)
        audiences = list(audiences)
        if audiences:
            conditions.append(Notice.audience.in_(audiences))
        if not conditions:
            return []
        query = query.where(or_(*conditions))
    if unread_only:
        query = query.where(Notice.read_at.is_(None))
    with session_scope(engine, immediate=False) as session:
        return [
            {
                "id": n.id,
                "created_at": n.created_at,
                "to": n.staff_id or n.audience,
                "source": n.source,
                "title": n.title,
                "body": n.body,
                "urgent": n.urgent,
                "student_id": n.student_id,
                "lesson_id": n.lesson_id,
                "read_at": n.read_at,
                "key": n.key,
            }
            for n in session.scalars(query)
        ]


def mark_read(engine: Engine, notice_ids: Iterable[int], actor: str) -> int:
    """Mark notices read by ``actor``; return how many were unread."""
    ids = list(notice_ids)
    if not ids:
        return 0
    with session_scope(engine) as session:
        result = session.execute(
            update(Notice)
            .where(Notice.id.in_(ids), Notice.read_at.is_(None))
            .values(read_at=utcnow(), read_by=actor)
        )
        return int(getattr(result, "rowcount", 0) or 0)
