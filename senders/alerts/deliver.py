"""Fire planned alerts: record each firing once, with its staff notices and parent messages.

Per alert, one transaction: insert the ``alert_firings`` row (unique rule and key); if
another run got there first, the whole alert is skipped. Otherwise the staff notices
(key ``alert:{rule_id}:{key}:{staff_id}``, e-mailed when the rule and the setting
``alert_emails`` say so: :func:`senders.notices.deliver_in`) and the parent messages
(idempotency key ``alert-parent:{rule_id}:{key}:{contact_id}``, each with a pastoral log
entry) are written in the same transaction. Re-runs, restarts and concurrent
schedulers therefore fire each alert once. A firing with no staff recipient is still
recorded, with the gaps in its details.

A notice's ``lesson_id`` column is left blank (it marks register reminders, which are
about the register itself); an alert's lesson is in the notice's ``details``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AlertFiring, utcnow
from schoolcomms.settings import Settings
from senders.alerts.evaluate import PlannedAlert
from senders.logbook import add_pastoral
from senders.notices import StaffNotice, deliver_in
from senders.outbox import NewMessage, enqueue_in, insert_ignoring_conflicts

ACTOR = "scheduler"


def notice_key(alert: PlannedAlert, staff_id: str) -> str:
    """The key of the notice an alert gives one member of staff."""
    return f"alert:{alert.rule_id}:{alert.key}:{staff_id}"


def notices_for(alert: PlannedAlert) -> list[StaffNotice]:
    """The staff notices an alert delivers: one per recipient."""
    return [
        StaffNotice(
            key=notice_key(alert, r["staff_id"]),
            title=alert.title,
            body=alert.body,
            source="alert",
            staff_id=r["staff_id"],
            urgent=alert.urgent,
            email=r.get("email") if alert.email else None,
            rule_id=alert.rule_id,
            student_id=alert.student_id,
            details={
                "rule": alert.rule_name,
                "kind": alert.kind,
                "key": alert.key,
                "lesson_id": alert.lesson_id,
                "why": r.get("why", ""),
            },
        )
        for r in alert.recipients
    ]


def _parent_message(message: dict[str, Any]) -> NewMessage:
    return NewMessage(
        message["channel"],
        message["to"],
        message["body"],
        subject=message.get("subject"),
        html=message.get("html"),
        template_name=message.get("template"),
        student_id=message.get("student_id"),
        contact_id=message.get("contact_id"),
        segments=message.get("segments"),
        encoding=message.get("encoding"),
        cost_pence=message.get("cost_pence"),
        idempotency_key=message["idempotency_key"],
    )


def _queue_parents(
    engine: Engine, session: Session, alert: PlannedAlert, actor: str, now: dt.datetime
) -> int:
    queued = 0
    for message in alert.parent_messages:
        ids = enqueue_in(session, [_parent_message(message)], actor, now=now)
        if not ids:
            continue  # queued before, or the address opted out meanwhile
        queued += 1
        add_pastoral(
            engine,
            student_id=str(message["student_id"]),
            kind="alert_parent_message",
            summary=f"{message['channel'].upper()} to contact {message['contact_id']} "
            f"(alert {alert.rule_name!r}): {alert.title}",
            actor=actor,
            details={
                "rule_id": alert.rule_id,
                "key": alert.key,
                "to": message["to"],
                "template": message.get("template"),
            },
            message_id=ids[0],
            session=session,
        )
    return queued


def _claim(session: Session, alert: PlannedAlert, now: dt.datetime) -> int | None:
    """Insert the firing row; its id, or None when (rule, key) has fired already."""
    claim = insert_ignoring_conflicts(session, AlertFiring.__table__, ["rule_id", "key"])
    row = {
        "rule_id": alert.rule_id,
        "key": alert.key,
        "student_id": alert.student_id,
        "details": {
            "rule": alert.rule_name,
            "kind": alert.kind,
            "title": alert.title,
            "lesson_id": alert.lesson_id,
            "recipients": [r["staff_id"] for r in alert.recipients],
            "unresolved": list(alert.unresolved),
            "parent_messages": len(alert.parent_messages),
            **alert.details,
        },
        "fired_at": now,
        "notices": 0,
    }
    return session.connection().execute(claim.returning(AlertFiring.id), row).scalar()


def fire(
    engine: Engine,
    settings: Settings,
    planned: Sequence[PlannedAlert],
    *,
    actor: str = ACTOR,
    now: dt.datetime | None = None,
) -> list[PlannedAlert]:
    """Record and deliver each planned alert once; return those fired by this call.

    Each returned alert is a copy with ``notices`` (new notices stored) and
    ``parent_messages_queued`` filled in. An alert whose (rule, key) fired already (in
    an earlier run or a concurrent one) is skipped whole and not returned. An unsaved
    rule's alert (a preview, ``rule_id`` None) cannot be fired.
    """
    now = now or utcnow()
    fired: list[PlannedAlert] = []
    for alert in planned:
        if alert.rule_id is None:
            raise ValueError(f"Save the rule {alert.rule_name!r} before firing its alerts.")
        with session_scope(engine) as session:
            firing_id = _claim(session, alert, now)
            if firing_id is None:
                continue
            delivered = deliver_in(session, settings, notices_for(alert), actor=actor, now=now)
            parents = _queue_parents(engine, session, alert, actor, now)
            session.execute(
                update(AlertFiring)
                .where(AlertFiring.id == firing_id)
                .values(notices=len(delivered))
            )
        fired.append(
            dataclasses.replace(alert, notices=len(delivered), parent_messages_queued=parents)
        )
    return fired
