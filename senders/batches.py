"""Batch control: what people do to queued messages, and what they read about them.

Cancelling, pausing and resuming a batch, queueing failed messages again, and applying
the providers' delivery reports; and the read-outs: the message log
(:data:`MESSAGE_LOG_COLUMNS`) and a batch's progress. Queueing, claiming and recording
sends live in :mod:`senders.outbox` (which re-exports everything here); the same rules
apply: one transaction per unit of work, audit rows written in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.orm import Session

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import MESSAGE_STATUSES, Batch, Message
from schoolcomms.ops.models import utcnow as _utcnow
from senders.base import StatusUpdate

__all__ = [
    "MESSAGE_LOG_COLUMNS",
    "apply_status_updates",
    "batch_progress",
    "cancel_batch",
    "message_log",
    "pause_batch",
    "resume_batch",
    "retry_failed",
]

MESSAGE_LOG_COLUMNS = (
    "id",
    "batch_id",
    "created_at",
    "created_by",
    "channel",
    "to_address",
    "subject",
    "body",
    "template_name",
    "status",
    "attempts",
    "next_attempt_at",
    "error",
    "provider",
    "provider_ref",
    "provider_status",
    "segments",
    "encoding",
    "cost_pence",
    "student_id",
    "contact_id",
    "sent_at",
    "delivered_at",
    "updated_at",
)


def _get_batch(s: Session, batch_id: int, *, lock: bool = False) -> Batch:
    batch = _batch(s, batch_id) if lock else s.get(Batch, batch_id)
    if batch is None:
        raise LookupError(f"There is no batch {batch_id} in the outbox.")
    return batch


def cancel_batch(engine: Engine, batch_id: int, actor: str) -> int:
    """Cancel a batch: its queued messages (and any whose lease expired) become cancelled.

    Messages being sent right now finish; a done batch stays done. Returns the number
    of messages cancelled and writes a ``batch.cancel`` audit row.
    """
    actor, now = _actor(actor), _utcnow()
    with session_scope(engine) as s:
        _get_batch(s, batch_id)
        waiting = or_(
            Message.status == "queued", and_(Message.status == "sending", Message.lease_until < now)
        )
        cancelled = s.execute(
            update(Message)
            .where(Message.batch_id == batch_id, waiting)
            .values(status="cancelled", lease_owner=None, lease_until=None, updated_at=now)
        ).rowcount
        batch = _get_batch(s, batch_id, lock=True)
        if batch.state != "done":
            batch.state, batch.state_reason = "cancelled", f"Cancelled by {actor}"
            batch.finished_at = now
        _audit(s, actor, "batch.cancel", f"batch:{batch_id}", {"cancelled": cancelled})
        return cancelled


def pause_batch(engine: Engine, batch_id: int, actor: str, reason: str = "") -> bool:
    """Pause a running batch (nothing more is claimed from it); False if it was not running."""
    actor = _actor(actor)
    with session_scope(engine) as s:
        batch = _get_batch(s, batch_id, lock=True)
        if batch.state != "running":
            return False
        _pause(s, batch, reason or f"Paused by {actor}", actor)
        return True


def resume_batch(engine: Engine, batch_id: int, actor: str) -> bool:
    """Resume a paused batch: its error run resets and its queued messages are due now.

    Returns False if the batch was not paused. Writes a ``batch.resume`` audit row.
    """
    actor, now = _actor(actor), _utcnow()
    with session_scope(engine) as s:
        if _get_batch(s, batch_id).state != "paused":
            return False
        s.execute(
            update(Message)
            .where(Message.batch_id == batch_id, Message.status == "queued")
            .where(Message.next_attempt_at > now)
            .values(next_attempt_at=now, updated_at=now)
        )
        batch = _get_batch(s, batch_id, lock=True)
        reason = batch.state_reason
        batch.state, batch.state_reason, batch.consecutive_errors = "running", "", 0
        _audit(s, actor, "batch.resume", f"batch:{batch_id}", {"was": reason})
        _finish_batches(s, [batch_id], now)
        return True


def retry_failed(
    engine: Engine,
    *,
    batch_id: int | None = None,
    message_ids: Sequence[int] | None = None,
    actor: str,
) -> int:
    """Queue failed messages again (attempts reset, due now); return how many.

    Choose them by ``batch_id``, by ``message_ids`` or both (at least one). Messages of
    cancelled batches are left alone, and so are messages whose body the retention purge
    removed; a done batch runs again, a paused one stays paused until resumed. Writes a
    ``send.retry`` audit row.
    """
    actor, now = _actor(actor), _utcnow()
    if batch_id is None and message_ids is None:
        raise ValueError("Say which failed messages to retry: a batch_id or message_ids.")
    cancelled = select(Batch.id).where(Batch.state == "cancelled")
    query = select(Message.id, Message.batch_id).where(Message.status == "failed")
    query = query.where(or_(Message.batch_id.is_(None), Message.batch_id.not_in(cancelled)))
    # A message whose body the retention purge removed cannot be sent again.
    query = query.where(Message.body.is_not(None))
    if batch_id is not None:
        query = query.where(Message.batch_id == batch_id)
    with session_scope(engine) as s:
        chosen = (
            s.execute(query).all()
            if message_ids is None
            else [
                r
                for c in _chunks(list(message_ids))
                for r in s.execute(query.where(Message.id.in_(c)))
            ]
        )
        ids = [r.id for r in chosen]
        for chunk in _chunks(ids):
            s.execute(
                update(Message)
                .where(Message.id.in_(chunk))
                .values(
                    status="queued",
                    attempts=0,
                    next_attempt_at=now,
                    error=None,
                    provider_status=None,
                    updated_at=now,
                )
            )
        for b in sorted({r.batch_id for r in chosen if r.batch_id is not None}):
            batch = _batch(s, b)
            if batch is not None:
                batch.consecutive_errors = 0
                if batch.state == "done":
                    batch.state, batch.finished_at = "running", None
        if ids:
            target = f"batch:{batch_id}" if batch_id is not None else "messages"
            _audit(s, actor, "send.retry", target, {"count": len(ids), "ids": ids[:100]})
        return len(ids)


def apply_status_updates(
    engine: Engine, updates: Sequence[StatusUpdate], *, now: datetime | None = None
) -> int:
    """Apply delivery reports by ``provider_ref``; return how many messages changed status.

    ``delivered`` applies to sent messages, ``failed`` to sent ones (the error kept, so
    a person can retry); a status never goes back (a late "sent" after "delivered" only
    refreshes nothing). ``provider_status`` is always updated on sent/delivered messages.
    """
    now = _now(now)
    changed = 0
    with session_scope(engine) as s:
        for u in updates:
            query = select(Message).where(Message.provider_ref == u.provider_ref)
            for m in s.scalars(query.where(Message.status.in_(("sent", "delivered")))):
                m.provider_status, m.updated_at = u.provider_status, now
                if u.status == "delivered" and m.status == "sent":
                    m.status, m.delivered_at = "delivered", now
                    changed += 1
                elif u.status == "failed" and m.status == "sent":
                    m.status = "failed"
                    m.error = u.error or f"The provider reported {u.provider_status}"
                    changed += 1
    return changed


def message_log(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: str | None = None,
    status: str | Sequence[str] | None = None,
    created_by: str | None = None,
    student_id: str | None = None,
    batch_id: int | None = None,
    limit: int = 5000,
) -> pd.DataFrame:
    """The message log, newest first: one row per message, :data:`MESSAGE_LOG_COLUMNS`.

    ``since`` (inclusive) and ``until`` (exclusive) bound ``created_at``.
    """
    query = select(*(getattr(Message, c) for c in MESSAGE_LOG_COLUMNS))
    if since is not None:
        query = query.where(Message.created_at >= _now(since))
    if until is not None:
        query = query.where(Message.created_at < _now(until))
    if status is not None:
        query = query.where(Message.status.in_([status] if isinstance(status, str) else status))
    for column, value in (
        ("channel", channel),
        ("created_by", created_by),
        ("student_id", student_id),
        ("batch_id", batch_id),
    ):
        if value is not None:
            query = query.where(getattr(Message, column) == value)
    query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
    with session_scope(engine, immediate=False) as s:
        rows = [dict(r._mapping) for r in s.execute(query)]
    frame = pd.DataFrame(rows, columns=list(MESSAGE_LOG_COLUMNS))
    for column in ("created_at", "next_attempt_at", "sent_at", "delivered_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("batch_id", "segments"):
        frame[column] = frame[column].astype("Int64")
    frame["id"] = frame["id"].astype("int64")
    frame["attempts"] = frame["attempts"].astype("int64")
    return frame


def batch_progress(engine: Engine, batch_id: int) -> dict[str, Any]:
    """A batch's progress for a live progress bar.

    Keys: batch_id, channel, state, state_reason, total, excluded, counts (every
    status, zeros included), finished (neither queued nor sending), fraction (0–1),
    cost_pence (of sent and delivered messages), estimated_cost_pence, created_by,
    created_at, finished_at.
    """
    with session_scope(engine, immediate=False) as s:
        batch = _get_batch(s, batch_id)
        counts = dict.fromkeys(MESSAGE_STATUSES, 0)
        grouped = select(Message.status, func.count()).where(Message.batch_id == batch_id)
        for status, n in s.execute(grouped.group_by(Message.status)):
            counts[status] = n
        cost = s.scalar(
            select(func.coalesce(func.sum(Message.cost_pence), 0.0)).where(
                Message.batch_id == batch_id, Message.status.in_(("sent", "delivered"))
            )
        )
    total = sum(counts.values())
    finished = total - counts["queued"] - counts["sending"]
    return {
        "batch_id": batch.id,
        "channel": batch.channel,
        "state": batch.state,
        "state_reason": batch.state_reason,
        "total": total,
        "excluded": batch.excluded,
        "counts": counts,
        "finished": finished,
        "fraction": finished / total if total else 1.0,
        "cost_pence": float(cost or 0.0),
        "estimated_cost_pence": batch.estimated_cost_pence,
        "created_by": batch.created_by,
        "created_at": batch.created_at,
        "finished_at": batch.finished_at,
    }


# Imported last, not first: senders.outbox re-exports this module from its own end, so
# either module can be imported first without meeting the other half-initialised.
from senders.outbox import (  # noqa: E402
    _actor,
    _audit,
    _batch,
    _chunks,
    _finish_batches,
    _now,
    _pause,
)
