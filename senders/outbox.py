"""The outbox: queueing, claiming and recording messages in the ops store. Nothing here sends.

A message is written here (status ``queued``) before any send is attempted. Dispatchers
:func:`claim` due messages under a lease (``sending``, ``lease_owner``, ``lease_until``);
a crashed dispatcher's lease expires and another one takes the message again. Outcomes
are recorded only by the lease owner (a late record from a worker whose lease was taken
over is ignored), under this policy:

- sent / delivered: kept with the provider's reference; the batch's error run resets.
- :class:`Rejected`: ``failed`` with the reason, retryable by a person
  (:func:`senders.batches.retry_failed`).
- :class:`Transient`: ``queued`` again after ``min(3600, base × 2^(attempts-1))`` seconds
  × a random 0.5–1.5 jitter; ``failed`` once ``max_attempts`` were made.
- :class:`RateLimited` with ``retry_after``: queued for exactly then; the attempt is not
  counted and is no error (the provider is pacing us). Without it: as Transient.
- :class:`AccountProblem`: ``queued`` again (attempt not counted, due after ``base``
  seconds) and the batch paused with the reason, until a person resumes it.

Rejected and Transient failures count towards the batch's ``consecutive_errors``; at
``pause_after`` the batch pauses. A running batch with nothing queued or sending is
``done``. Every unit of work is one transaction (``session_scope``: ``BEGIN IMMEDIATE``
on SQLite; row locks and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, taking message rows
before the batch row). Audit rows are written in the same transaction as the change.
Policy helpers and the sending loop live in :mod:`senders.dispatcher`; what people do to a
batch afterwards (cancel, pause, resume, retry) and the read-outs (message log, progress)
live in :mod:`senders.batches`, re-exported here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, and_, case, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import CHANNELS, AuditEntry, Batch, Message, OptOut
from schoolcomms.ops.models import utcnow as _utcnow
from schoolcomms.settings import REGISTRY, SettingsError
from senders.base import (
    AccountProblem,
    Channel,
    OptedOut,
    OutgoingMessage,
    ProviderError,
    RateLimited,
    Rejected,
    SendResult,
)

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600.0
OPEN_STATUSES = ("queued", "sending")
OPT_OUT_SOURCES = ("parent", "staff", "provider")
_CHUNK = 500


@dataclass(frozen=True)
class NewMessage:
    """A message to put in the outbox; ``idempotency_key`` (keyword-only) names it for ever."""

    channel: str
    to: str
    body: str
    subject: str | None = None
    html: str | None = None
    attachments: Sequence[str | Path] = ()
    template_name: str | None = None
    student_id: str | None = None
    contact_id: str | None = None
    segments: int | None = None
    encoding: str | None = None
    cost_pence: float | None = None
    _: KW_ONLY
    idempotency_key: str


def _now(now: datetime | None) -> datetime:
    if now is None:
        return _utcnow()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"Naive datetime {now.isoformat()}: pass an aware time (UTC).")
    return now


def _actor(actor: str) -> str:
    if not (actor or "").strip():
        raise ValueError('actor must name who acted (a user, "cli" or "scheduler")')
    return actor.strip()


def normalise_address(channel: str, address: str) -> str:
    """The form an address is compared in: lower-case e-mail, SMS numbers without spaces."""
    address = (address or "").strip()
    if channel == "email":
        return address.lower()
    return address.replace(" ", "") if channel == "sms" else address


def _audit(s: Session, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
    s.add(AuditEntry(at=_utcnow(), actor=actor, action=action, target=target, details=details))


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _opted_out(s: Session, channel: str, addresses: Iterable[str]) -> set[str]:
    wanted = sorted({normalise_address(channel, a) for a in addresses})
    found: set[str] = set()
    for chunk in _chunks(wanted):
        where = and_(OptOut.channel == channel, OptOut.address.in_(chunk))
        found.update(s.scalars(select(OptOut.address).where(where)))
    return found


def insert_ignoring_conflicts(s: Session, table: Any, conflict: list[str]) -> Any:
    """An INSERT that silently skips rows conflicting on ``conflict`` (SQLite, PostgreSQL)."""
    dialect = s.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise SettingsError(
            f"The ops store is a {dialect} database; the outbox works on SQLite and "
            "PostgreSQL. Set ops_url to a sqlite:/// or postgresql+psycopg:// URL "
            "(see docs/settings.md)."
        )
    module = sqlite if dialect == "sqlite" else postgresql
    return module.insert(table).on_conflict_do_nothing(index_elements=conflict)


def _prepare(
    s: Session, messages: Sequence[NewMessage], created_by: str, batch_id: int | None, now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """Rows to insert (first of each key, opted-out addresses left out) and the opted-out count."""
    rows: dict[str, dict[str, Any]] = {}
    blocked: dict[str, set[str]] = {}
    for channel in {m.channel for m in messages}:
        blocked[channel] = _opted_out(s, channel, (m.to for m in messages if m.channel == channel))
    opted_out = 0
    for m in messages:
        if not (m.idempotency_key or "").strip():
            raise ValueError(f"Every message needs an idempotency_key (to {m.to!r} has none).")
        if m.channel not in CHANNELS or not (m.to or "").strip():
            raise ValueError(f"Message {m.idempotency_key!r}: bad channel or empty address.")
        if normalise_address(m.channel, m.to) in blocked[m.channel]:
            opted_out += 1
            continue
        rows.setdefault(
            m.idempotency_key,
            {
                "idempotency_key": m.idempotency_key,
                "batch_id": batch_id,
                "channel": m.channel,
                "to_address": m.to.strip(),
                "subject": m.subject,
                "body": m.body,
                "html_body": m.html,
                "template_name": m.template_name,
                "status": "queued",
                "attachments": [{"path": str(p), "name": Path(p).name} for p in m.attachments],
                "attempts": 0,
                "next_attempt_at": now,
                "segments": m.segments,
                "encoding": m.encoding,
                "cost_pence": m.cost_pence,
                "student_id": m.student_id,
                "contact_id": m.contact_id,
                "created_by": created_by,
                "created_at": now,
                "updated_at": now,
            },
        )
    return list(rows.values()), opted_out


def create_batch(
    engine: Engine,
    *,
    created_by: str,
    channel: str,
    template_name: str | None,
    subject: str | None,
    body_template: str,
    filter: dict[str, Any],
    messages: list[NewMessage],
    excluded: int,
    estimated_cost_pence: float,
    now: datetime | None = None,
) -> int:
    """Insert a batch and all its messages (queued) in one transaction; return the batch id.

    Messages whose idempotency key is already stored are skipped (re-running a send
    queues nothing new); messages to opted-out addresses are skipped and added to
    ``excluded``. ``batch.total`` is the number of new messages, also written with the
    skipped counts to the audit row (``send.queue``); a batch with none is ``done`` at once.
    ``now`` (default: the current time) stamps the batch and is when the messages are due.
    """
    actor = _actor(created_by)
    if any(m.channel != channel for m in messages):
        raise ValueError(f"Every message of a {channel} batch must be on the {channel} channel.")
    now = _now(now)
    with session_scope(engine) as s:
        batch = Batch(
            created_at=now,
            created_by=actor,
            channel=channel,
            template_name=template_name,
            subject=subject,
            body_template=body_template or "",
            filter=dict(filter or {}),
            state="running",
            state_reason="",
            excluded=excluded,
            estimated_cost_pence=float(estimated_cost_pence),
        )
        s.add(batch)
        s.flush()
        rows, opted_out = _prepare(s, messages, actor, batch.id, now)
        if rows:
            s.connection().execute(
                insert_ignoring_conflicts(s, Message.__table__, ["idempotency_key"]), rows
            )
        new = s.scalar(select(func.count()).where(Message.batch_id == batch.id)) or 0
        batch.total, batch.excluded = new, excluded + opted_out
        duplicates = len(messages) - opted_out - new
        if new == 0:
            batch.state, batch.finished_at = "done", now
            batch.state_reason = "Nothing new to send: every message was already queued or sent."
        details = {
            "batch_id": batch.id,
            "channel": channel,
            "new": new,
            "excluded": excluded,
            "duplicates": duplicates,
            "opted_out": opted_out,
        }
        _audit(s, actor, "send.queue", f"batch:{batch.id}", details)
        log.info("batch %d queued", batch.id, extra=details)
        return batch.id


def enqueue(
    engine: Engine,
    messages: Sequence[NewMessage],
    created_by: str,
    batch_id: int | None = None,
    *,
    now: datetime | None = None,
) -> list[int]:
    """Queue single messages (the scheduler's); return the ids of those newly queued.

    Already-stored idempotency keys and opted-out addresses are skipped (and counted in
    the log and, if anything was queued, the ``send.queue`` audit row). The messages are
    due at ``now`` (default: the current time).
    """
    with session_scope(engine) as s:
        return enqueue_in(s, messages, created_by, batch_id, now=now)


def enqueue_in(
    s: Session,
    messages: Sequence[NewMessage],
    created_by: str,
    batch_id: int | None = None,
    *,
    now: datetime | None = None,
) -> list[int]:
    """:func:`enqueue` inside the caller's transaction, so the messages commit (or roll
    back) together with whatever else the caller writes, e.g. a once-a-day marker."""
    actor = _actor(created_by)
    now = _now(now)
    rows, opted_out = _prepare(s, messages, actor, batch_id, now)
    stmt = insert_ignoring_conflicts(s, Message.__table__, ["idempotency_key"]).returning(
        Message.id
    )
    ids = [i for row in rows if (i := s.connection().execute(stmt, row).scalar()) is not None]
    if ids and batch_id is not None:
        batch = _batch(s, batch_id)
        if batch is not None:
            batch.total += len(ids)
            batch.excluded += opted_out
            if batch.state == "done":
                batch.state, batch.finished_at = "running", None
    details = {
        "ids": ids[:100],
        "new": len(ids),
        "opted_out": opted_out,
        "duplicates": len(messages) - opted_out - len(ids),
        "batch_id": batch_id,
    }
    if ids:
        _audit(s, actor, "send.queue", f"batch:{batch_id}" if batch_id else "messages", details)
    log.info("queued %d message(s)", len(ids), extra=details)
    return ids


def add_opt_out(
    engine: Engine, channel: str, address: str, reason: str, source: str, actor: str
) -> bool:
    """Never message ``address`` on ``channel`` again; cancel what is queued for it.

    Returns False if it was already opted out. ``source`` is parent, staff or provider.
    """
    actor = _actor(actor)
    if source not in OPT_OUT_SOURCES or channel not in CHANNELS:
        raise ValueError(f"source must be one of {OPT_OUT_SOURCES}, channel one of {CHANNELS}")
    address = normalise_address(channel, address)
    now = _utcnow()
    with session_scope(engine) as s:
        row = {
            "channel": channel,
            "address": address,
            "reason": reason or "",
            "source": source,
            "created_at": now,
            "created_by": actor,
        }
        stmt = insert_ignoring_conflicts(s, OptOut.__table__, ["channel", "address"]).returning(
            OptOut.id
        )
        if s.connection().execute(stmt, row).scalar() is None:
            return False
        to: Any = Message.to_address  # compared as normalise_address() would write it
        if channel in ("email", "sms"):
            to = func.lower(to) if channel == "email" else func.replace(to, " ", "")
        where = and_(Message.channel == channel, to == address, Message.status == "queued")
        batch_ids = set(s.scalars(select(Message.batch_id).where(where).distinct()))
        cancelled = s.execute(
            update(Message)
            .where(where)
            .values(status="cancelled", error=f"Opted out: {reason}".strip(), updated_at=now)
        ).rowcount
        _finish_batches(s, batch_ids, now)
        _audit(
            s,
            actor,
            "optout.add",
            f"{channel}:{address}",
            {"reason": reason, "source": source, "cancelled": cancelled},
        )
        return True


def is_opted_out(engine: Engine, channel: str, address: str) -> bool:
    """Whether ``address`` must not be messaged on ``channel``."""
    with session_scope(engine, immediate=False) as s:
        return bool(_opted_out(s, channel, [address]))


def claim(
    engine: Engine,
    *,
    channel: str,
    worker: str,
    limit: int,
    lease_seconds: int,
    now: datetime | None = None,
) -> list[OutgoingMessage]:
    """Lease up to ``limit`` due messages on ``channel`` to ``worker``; return them in order.

    Due: queued with ``next_attempt_at <= now``, or sending with an expired lease (its
    dispatcher crashed). Messages of paused or cancelled batches are left alone. Each
    claimed message becomes ``sending`` with ``attempts + 1``.
    """
    now = _now(now)
    halted = select(Batch.id).where(Batch.state.in_(("paused", "cancelled")))
    due = or_(
        and_(Message.status == "queued", Message.next_attempt_at <= now),
        and_(Message.status == "sending", Message.lease_until < now),
    )
    query = (
        select(Message)
        .where(Message.channel == channel, due)
        .where(or_(Message.batch_id.is_(None), Message.batch_id.not_in(halted)))
        .order_by(Message.next_attempt_at, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Message)  # not rendered on SQLite
    )
    with session_scope(engine) as s:
        rows = s.scalars(query).all()
        for m in rows:
            m.status, m.lease_owner = "sending", worker
            m.lease_until, m.attempts = now + timedelta(seconds=lease_seconds), m.attempts + 1
            m.updated_at = now
        return [_outgoing(m) for m in rows]


def _outgoing(m: Message) -> OutgoingMessage:
    return OutgoingMessage(
        id=m.id,
        idempotency_key=m.idempotency_key,
        channel=cast(Channel, m.channel),
        to=m.to_address,
        body=m.body or "",
        subject=m.subject,
        html=m.html_body,
        attachments=tuple(Path(a["path"]) for a in m.attachments or ()),
        student_id=m.student_id,
        contact_id=m.contact_id,
        attempt=m.attempts,
    )


def _owned(s: Session, message_id: int, worker: str, what: str) -> Message | None:
    query = select(Message).where(
        Message.id == message_id, Message.status == "sending", Message.lease_owner == worker
    )
    message = s.scalars(query.with_for_update()).one_or_none()
    if message is None:
        log.warning("message %d: %s from %s ignored: its lease was lost", message_id, what, worker)
    return message


def _batch(s: Session, batch_id: int | None) -> Batch | None:
    """The batch, its row locked (PostgreSQL) and re-read: record paths lock it last."""
    if batch_id is None:
        return None
    return s.get(Batch, batch_id, with_for_update=True, populate_existing=True)


def _pause(s: Session, batch: Batch, reason: str, actor: str) -> None:
    if batch.state == "running":
        batch.state, batch.state_reason = "paused", reason
        _audit(s, actor, "batch.pause", f"batch:{batch.id}", {"reason": reason})
        log.warning("batch %d paused: %s", batch.id, reason)


def _finish_batches(s: Session, batch_ids: Iterable[int | None], now: datetime) -> None:
    """Mark each running batch with nothing queued or sending as done."""
    for batch_id in sorted({b for b in batch_ids if b is not None}):
        batch = _batch(s, batch_id)
        left = exists().where(Message.batch_id == batch_id, Message.status.in_(OPEN_STATUSES))
        if batch is not None and batch.state == "running" and not s.scalar(select(left)):
            batch.state, batch.finished_at = "done", now


def record_sent(
    engine: Engine, message_id: int, result: SendResult, worker: str, *, now: datetime | None = None
) -> bool:
    """Record that the provider accepted a message; False if ``worker`` lost the lease."""
    now = _now(now)
    with session_scope(engine) as s:
        m = _owned(s, message_id, worker, "sent")
        if m is None:
            return False
        m.status, m.provider = result.status, result.provider
        m.provider_ref, m.provider_status = result.provider_ref, result.provider_status
        m.error, m.sent_at, m.updated_at = None, now, now
        m.lease_owner, m.lease_until = None, None
        if result.status == "delivered":
            m.delivered_at = now
        batch = _batch(s, m.batch_id)
        if batch is not None:
            batch.consecutive_errors = 0
            _finish_batches(s, [batch.id], now)
        return True


def _record_provider_opt_out(
    s: Session, m: Message, reason: str, worker: str, now: datetime
) -> None:
    """The provider says the recipient opted out: remember it, so it is excluded next time."""
    address = normalise_address(m.channel, m.to_address)
    known = s.scalar(
        select(OptOut.id).where(OptOut.channel == m.channel, OptOut.address == address)
    )
    if known is None:
        s.add(
            OptOut(
                channel=m.channel,
                address=address,
                reason=reason,
                source="provider",
                created_at=now,
                created_by=worker,
            )
        )


def backoff_seconds(attempts: int, base: float, rng: random.Random | None = None) -> float:
    """Delay before the next try: ``min(3600, base × 2^(attempts-1)) × uniform(0.5, 1.5)``."""
    delay = min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempts - 1))
    return delay * (rng or random).uniform(0.5, 1.5)


def record_failure(
    engine: Engine,
    message_id: int,
    error: ProviderError,
    worker: str,
    *,
    now: datetime | None = None,
    max_attempts: int = REGISTRY["dispatch_max_attempts"].default,
    retry_base_seconds: float = REGISTRY["dispatch_retry_base_seconds"].default,
    pause_after: int = REGISTRY["dispatch_pause_after_errors"].default,
    rng: random.Random | None = None,
) -> str | None:
    """Apply the retry policy (module docstring) to a failed send; return the new status.

    Returns None (and changes nothing) if ``worker`` no longer holds the message's lease.
    """
    now = _now(now)
    with session_scope(engine) as s:
        m = _owned(s, message_id, worker, "failure")
        if m is None:
            return None
        m.error = f"{type(error).__name__}: {error}"
        m.provider_status, m.updated_at = error.provider_status, now
        m.lease_owner, m.lease_until = None, None
        counts = True
        m.status = "queued"
        if isinstance(error, AccountProblem):
            m.attempts, counts = max(0, m.attempts - 1), False
            m.next_attempt_at = now + timedelta(seconds=retry_base_seconds)
        elif isinstance(error, Rejected):
            m.status = "failed"
            if isinstance(error, OptedOut):
                _record_provider_opt_out(s, m, str(error), worker, now)
        elif isinstance(error, RateLimited) and error.retry_after is not None:
            m.attempts, counts = max(0, m.attempts - 1), False
            m.next_attempt_at = now + timedelta(seconds=max(0.0, error.retry_after))
        elif m.attempts >= max_attempts:
            m.status, m.error = "failed", f"Gave up after {m.attempts} attempts: {m.error}"
        else:
            delay = backoff_seconds(m.attempts, retry_base_seconds, rng)
            m.next_attempt_at = now + timedelta(seconds=delay)
        batch = _batch(s, m.batch_id)
        if batch is not None:
            if m.status == "queued" and batch.state == "cancelled":
                m.status = "cancelled"
            if isinstance(error, AccountProblem):
                _pause(s, batch, f"The {m.channel} account cannot send: {error}", worker)
            elif counts:
                batch.consecutive_errors += 1
                if batch.consecutive_errors >= pause_after:
                    reason = f"{batch.consecutive_errors} failures in a row; last: {m.error}"
                    _pause(s, batch, reason, worker)
            _finish_batches(s, [batch.id], now)
        return m.status


def release(
    engine: Engine,
    message_ids: Sequence[int],
    worker: str,
    *,
    not_before: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Give back claimed messages that were not tried (attempt not counted); return how many.

    They are queued again, due at ``not_before`` (default: now); those of a cancelled
    batch become cancelled instead. Only messages ``worker`` still holds are touched.
    """
    now = _now(now)
    refund = case((Message.attempts > 0, Message.attempts - 1), else_=0)
    cancelled = Message.batch_id.in_(select(Batch.id).where(Batch.state == "cancelled"))
    released = 0
    with session_scope(engine) as s:
        for chunk in _chunks(list(message_ids)):
            owned = and_(
                Message.id.in_(chunk), Message.status == "sending", Message.lease_owner == worker
            )
            values = {
                "attempts": refund,
                "lease_owner": None,
                "lease_until": None,
                "updated_at": now,
            }
            s.execute(update(Message).where(owned, cancelled).values(status="cancelled", **values))
            released += s.execute(
                update(Message)
                .where(owned)
                .values(status="queued", next_attempt_at=_now(not_before or now), **values)
            ).rowcount
    return released


def halted(engine: Engine, message_ids: Sequence[int]) -> set[int]:
    """Which of these messages belong to a batch that is now paused or cancelled."""
    stopped = select(Batch.id).where(Batch.state.in_(("paused", "cancelled")))
    found: set[int] = set()
    with session_scope(engine, immediate=False) as s:
        for chunk in _chunks(list(message_ids)):
            where = and_(Message.id.in_(chunk), Message.batch_id.in_(stopped))
            found.update(s.scalars(select(Message.id).where(where)))
    return found


# Batch control and read-outs, re-exported so `from senders.outbox import …` keeps working.
# Imported last: senders.batches imports this module's helpers.
from senders.batches import (  # noqa: E402
    MESSAGE_LOG_COLUMNS,
    apply_status_updates,
    batch_progress,
    cancel_batch,
    message_log,
    pause_batch,
    resume_batch,
    retry_failed,
)

__all__ = [
    "MAX_BACKOFF_SECONDS",
    "MESSAGE_LOG_COLUMNS",
    "NewMessage",
    "OPEN_STATUSES",
    "OPT_OUT_SOURCES",
    "add_opt_out",
    "apply_status_updates",
    "backoff_seconds",
    "batch_progress",
    "cancel_batch",
    "claim",
    "create_batch",
    "enqueue",
    "enqueue_in",
    "insert_ignoring_conflicts",
    "halted",
    "is_opted_out",
    "message_log",
    "normalise_address",
    "pause_batch",
    "record_failure",
    "record_sent",
    "release",
    "resume_batch",
    "retry_failed",
]
