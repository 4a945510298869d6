"""Notices sent by staff to staff: chosen people, staff groups or dashboard roles.

A notice shows on each recipient's homepage (as a pop-up when ``popup``), and is
e-mailed when the sender asks for it: to a staff member's address from the staff
extract, and for a role to the accounts holding it (plus ``data_manager_emails`` for
the data managers). The sender's explicit choice decides the e-mail, not the setting
``alert_emails`` (which is about automatic alerts).

Each send has an id; every notice key is ``staff_notice:<send id>:staff:<id>`` or
``staff_notice:<send id>:role:<role>``, so sending the same send id twice (a double
click, a retry) stores and e-mails nothing new. Planning (:func:`plan_notice`) is pure
and previews exactly what :func:`send_notice` writes: the notices, their e-mails and
the audit row, in one transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select, update

from reports.staff import staff_by_id
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import Message, Notice, User, utcnow
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders.alerts.groups import audit_in, groups_by_name
from senders.notices import AUDIENCES, StaffNotice, data_manager_emails, deliver_in, email_message
from senders.outbox import enqueue_in

SOURCE = "staff_notice"
KEY_PREFIX = f"{SOURCE}:"
MAX_TITLE = 200
MAX_BODY = 5000
AUDIENCE_LABELS: dict[str, str] = {
    "admin": "Administrators",
    "senior_leader": "Senior leaders",
    "attendance_officer": "Attendance officers",
    "data_manager": "Data managers",
    "pastoral": "Pastoral staff",
    "teacher": "Teachers",
    "office": "Office staff",
}
SENT_COLUMNS = [
    "sent_at",
    "title",
    "shown_as",
    "recipients",
    "notices",
    "read",
    "emails",
    "send_id",
]
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class NoticeProblem(ValueError):
    """A notice that cannot be sent as asked; the message says what to change."""


@dataclass(frozen=True)
class NoticePlan:
    """What a send would do: the notices, each with the e-mail addresses it goes to."""

    send_id: str
    notices: tuple[StaffNotice, ...]
    emails: tuple[tuple[str, ...], ...]
    without_email: tuple[str, ...]  # staff ids with no address (homepage only)

    @property
    def email_count(self) -> int:
        """How many e-mails the send queues."""
        return sum(len(a) for a in self.emails)


def new_send_id() -> str:
    """A fresh id for one send (keep it across reruns so a second click sends nothing)."""
    return uuid.uuid4().hex[:16]


def _looks_like_address(value: Any) -> bool:
    return isinstance(value, str) and bool(_ADDRESS.match(value.strip()))


def _check(title: str, body: str, recipients: bool) -> tuple[str, str]:
    title, body = (title or "").strip(), (body or "").strip()
    problems = []
    if not title:
        problems.append("Give the notice a title, e.g. 'Staff briefing moved to 8:15'.")
    elif len(title) > MAX_TITLE:
        problems.append(f"The title is too long: at most {MAX_TITLE} characters.")
    if not body:
        problems.append("Write the notice itself in the message box.")
    elif len(body) > MAX_BODY:
        problems.append(f"The message is too long: at most {MAX_BODY} characters.")
    if not recipients:
        problems.append("Choose who gets the notice: staff members, staff groups or roles.")
    if problems:
        raise NoticeProblem(" ".join(problems))
    return title, body


def plan_notice(
    *,
    send_id: str,
    title: str,
    body: str,
    staff: Mapping[str, str | None],
    audiences: Sequence[str],
    popup: bool,
    email: bool,
    role_emails: Mapping[str, Sequence[str]],
) -> NoticePlan:
    """The notices of one send, without writing anything.

    ``staff`` is ``{staff_id: e-mail address or None}`` (chosen people and the members
    of chosen groups, already resolved); ``role_emails`` gives the addresses each chosen
    role is e-mailed at. Raises :class:`NoticeProblem` for a notice with no title, no
    message, no recipient or an unknown role.
    """
    title, body = _check(title, body, bool(staff or audiences))
    unknown = [a for a in audiences if a not in AUDIENCES]
    if unknown:
        raise NoticeProblem(
            f"Unknown role(s) {', '.join(unknown)}; choose from {', '.join(AUDIENCES)}."
        )
    details = {"send_id": send_id}
    notices: list[StaffNotice] = []
    emails: list[tuple[str, ...]] = []
    without: list[str] = []
    for staff_id in sorted(staff):
        address = staff[staff_id]
        good = address.strip() if email and address and _looks_like_address(address) else None
        notices.append(
            StaffNotice(
                f"{KEY_PREFIX}{send_id}:staff:{staff_id}",
                title,
                body,
                SOURCE,
                staff_id=staff_id,
                urgent=popup,
                email=good,
                details=details,
            )
        )
        emails.append((good,) if good else ())
        if email and not good:
            without.append(staff_id)
    for audience in dict.fromkeys(audiences):
        notices.append(
            StaffNotice(
                f"{KEY_PREFIX}{send_id}:role:{audience}",
                title,
                body,
                SOURCE,
                audience=audience,
                urgent=popup,
                details=details,
            )
        )
        found = [a.strip() for a in role_emails.get(audience, ()) if _looks_like_address(a)]
        emails.append(tuple(dict.fromkeys(a.lower() for a in found)) if email else ())
    return NoticePlan(send_id, tuple(notices), tuple(emails), tuple(without))


def account_emails(engine: Engine, roles: Iterable[str]) -> dict[str, list[str]]:
    """``{role: [address, …]}``: the enabled dashboard accounts holding each role."""
    wanted = set(roles)
    out: dict[str, list[str]] = {r: [] for r in wanted}
    if not wanted:
        return out
    with session_scope(engine, immediate=False) as session:
        for address, held, disabled in session.execute(
            select(User.email, User.roles, User.disabled).order_by(User.email)
        ):
            if disabled:
                continue
            for role in wanted & set(held or ()):
                out[role].append(address)
    return out


def resolve_staff(
    engine: Engine,
    warehouse: Warehouse | None,
    staff_ids: Iterable[str],
    groups: Iterable[str],
) -> dict[str, str | None]:
    """``{staff_id: address}`` for the chosen staff and every member of the chosen groups.

    A chosen staff id not in the staff extract, or an unknown group, is refused; a
    group member missing from the extract still gets the homepage notice (no e-mail).
    """
    chosen = [str(s).strip() for s in staff_ids if str(s).strip()]
    names = [g for g in dict.fromkeys(groups) if g]
    found_groups = groups_by_name(engine, names)
    missing_groups = [g for g in names if g not in found_groups]
    if missing_groups:
        raise NoticeProblem(
            f"There is no staff group called {', '.join(missing_groups)}; it may have been "
            "renamed or deleted on the Alert rules page. Choose the groups again."
        )
    members = [m for g in names for m in found_groups[g]]
    ids = list(dict.fromkeys([*chosen, *members]))
    if not ids:
        return {}
    if warehouse is None:
        directory: dict[str, dict[str, str | None]] = {}
    else:
        directory = staff_by_id(warehouse, ids)
    unknown = [s for s in chosen if s not in directory]
    if unknown:
        raise NoticeProblem(
            f"Staff id(s) {', '.join(unknown)} are not in the staff extract; load the "
            "staff list again or choose other people."
        )
    return {s: (directory.get(s) or {}).get("email") for s in ids}


def preview_notice(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse | None,
    *,
    title: str,
    body: str,
    staff_ids: Iterable[str],
    groups: Iterable[str],
    audiences: Sequence[str],
    popup: bool,
    email: bool,
    send_id: str | None = None,
) -> NoticePlan:
    """The plan :func:`send_notice` would carry out now (reads only)."""
    staff = resolve_staff(engine, warehouse, staff_ids, groups)
    role_emails = account_emails(engine, audiences) if email else {}
    if email and "data_manager" in audiences:
        role_emails["data_manager"] = [
            *role_emails.get("data_manager", []),
            *data_manager_emails(settings),
        ]
    return plan_notice(
        send_id=send_id or new_send_id(),
        title=title,
        body=body,
        staff=staff,
        audiences=list(audiences),
        popup=popup,
        email=email,
        role_emails=role_emails,
    )


def send_notice(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse | None,
    *,
    title: str,
    body: str,
    staff_ids: Iterable[str],
    groups: Iterable[str],
    audiences: Sequence[str],
    popup: bool,
    email: bool,
    actor: str,
    send_id: str | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Send a notice to staff, staff groups and roles; return how many notices were new.

    Stores one notice per staff member and per role (keys unique per send and
    recipient, see the module notes), queues the e-mails asked for and writes the
    audit row ``notice.send``, all in one transaction. Sending the same ``send_id``
    again adds nothing and returns 0.
    """
    if not (actor or "").strip():
        raise ValueError("actor must name who sends the notice")
    plan = preview_notice(
        engine,
        settings,
        warehouse,
        title=title,
        body=body,
        staff_ids=staff_ids,
        groups=groups,
        audiences=audiences,
        popup=popup,
        email=email,
        send_id=send_id,
    )
    now = now or utcnow()
    addresses = dict(zip((n.key for n in plan.notices), plan.emails, strict=True))
    with session_scope(engine) as session:
        # E-mail is queued here, not by deliver_in: the sender chose it explicitly.
        quiet = [replace(n, email=None) for n in plan.notices]
        delivered = deliver_in(session, settings, quiet, actor=actor, now=now)
        emailed = 0
        for notice in delivered:
            messages = [email_message(notice, a) for a in addresses[notice.key]]
            ids = enqueue_in(session, messages, actor, now=now) if messages else []
            emailed += len(ids)
            if ids:
                session.execute(
                    update(Notice).where(Notice.key == notice.key).values(message_id=ids[0])
                )
        if delivered:
            audit_in(
                session,
                actor,
                "notice.send",
                f"notice:{plan.send_id}",
                {
                    "title": plan.notices[0].title,
                    "staff_ids": [n.staff_id for n in delivered if n.staff_id],
                    "groups": list(dict.fromkeys(groups)),
                    "audiences": [n.audience for n in delivered if n.audience],
                    "popup": popup,
                    "emails": emailed,
                },
            )
    return len(delivered)


def _recipient(row: Notice, names: Mapping[str, str]) -> str:
    if row.audience:
        return AUDIENCE_LABELS.get(row.audience, row.audience)
    return names.get(row.staff_id or "", row.staff_id or "")


def notices_sent_by(
    engine: Engine, actor: str, *, names: Mapping[str, str] | None = None, limit: int = 500
) -> pd.DataFrame:
    """The notices ``actor`` sent, one row per send, newest first.

    Columns: :data:`SENT_COLUMNS` — ``sent_at`` (aware UTC), ``title``, ``shown_as``
    ("Pop-up" or "Homepage"), ``recipients`` (names, or ``names`` lookups of staff
    ids), ``notices``, ``read`` (how many of them have been read), ``emails``
    (queued with them) and ``send_id``.
    """
    names = names or {}
    query = (
        select(Notice)
        .where(Notice.source == SOURCE, Notice.created_by == actor)
        .order_by(Notice.created_at.desc(), Notice.id)
        .limit(limit)
    )
    sends: dict[str, dict[str, Any]] = {}
    with session_scope(engine, immediate=False) as session:
        for row in session.scalars(query):
            send_id = row.key.removeprefix(KEY_PREFIX).split(":", 1)[0]
            entry = sends.setdefault(
                send_id,
                {
                    "sent_at": row.created_at,
                    "title": row.title,
                    "shown_as": "Pop-up" if row.urgent else "Homepage",
                    "recipients": [],
                    "notices": 0,
                    "read": 0,
                    "emails": 0,
                    "send_id": send_id,
                },
            )
            entry["recipients"].append(_recipient(row, names))
            entry["notices"] += 1
            entry["read"] += row.read_at is not None
        queued = select(Message.idempotency_key).where(
            Message.idempotency_key.like(f"notice:{KEY_PREFIX}%"), Message.created_by == actor
        )
        for key in session.scalars(queued):
            send_id = key.removeprefix(f"notice:{KEY_PREFIX}").split(":", 1)[0]
            if send_id in sends:
                sends[send_id]["emails"] += 1
    rows = [e | {"recipients": ", ".join(e["recipients"])} for e in sends.values()]
    frame = pd.DataFrame(rows, columns=SENT_COLUMNS)
    frame["sent_at"] = pd.to_datetime(frame["sent_at"], utc=True)
    return frame


__all__ = [
    "AUDIENCE_LABELS",
    "NoticePlan",
    "NoticeProblem",
    "SENT_COLUMNS",
    "account_emails",
    "new_send_id",
    "notices_sent_by",
    "plan_notice",
    "preview_notice",
    "resolve_staff",
    "send_notice",
]
