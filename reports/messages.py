"""Read-only queries over the message log and its batches, for the messaging pages.

The message log itself (one row per message, with filters) is
:func:`senders.outbox.message_log`; this module adds what the dashboard needs around
it: the list of batches with their progress, who has sent messages, which batch a
message key already belongs to, and summaries for charts (SMS cost by month, messages
by channel and status). Months are calendar months in Europe/London.
Nothing here writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import MESSAGE_STATUSES, Batch, Message

LONDON = "Europe/London"
# Sent and delivered messages are the ones a provider charges for.
CHARGED_STATUSES = ("sent", "delivered")
BATCH_COLUMNS = (
    "id",
    "created_at",
    "created_by",
    "channel",
    "template_name",
    "subject",
    "state",
    "state_reason",
    "total",
    "excluded",
    "estimated_cost_pence",
    "finished_at",
    "document_path",
    *MESSAGE_STATUSES,
    "finished",
    "progress",
    "cost_pence",
)
ACTIVITY_COLUMNS = ("created_at", "channel", "status", "created_by", "segments", "cost_pence")
COST_BY_MONTH_COLUMNS = ("month", "messages", "segments", "cost_pence", "cost_pounds")


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware, not {value.isoformat()}")
    return value


def batch_list(
    engine: Engine,
    *,
    since: datetime | None = None,
    channel: str | None = None,
    created_by: str | None = None,
    states: tuple[str, ...] | list[str] | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Batches, newest first, each with its message counts per status and progress.

    Columns: :data:`BATCH_COLUMNS` — the batch's own fields, one count column per
    message status (``queued``, ``sending``, ``sent``, ``delivered``, ``failed``,
    ``cancelled``), ``finished`` (messages neither queued nor sending), ``progress``
    (0–1; 1 for a batch with no messages) and ``cost_pence`` (of its sent and
    delivered messages). ``since`` (aware) bounds ``created_at``.
    """
    query = select(Batch).order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit)
    if _aware(since, "since") is not None:
        query = query.where(Batch.created_at >= since)
    if channel is not None:
        query = query.where(Batch.channel == channel)
    if created_by is not None:
        query = query.where(Batch.created_by == created_by)
    if states:
        query = query.where(Batch.state.in_(list(states)))
    with session_scope(engine, immediate=False) as session:
        batches = session.execute(query).scalars().all()
        ids = [b.id for b in batches]
        counts: dict[int, dict[str, int]] = {i: dict.fromkeys(MESSAGE_STATUSES, 0) for i in ids}
        costs: dict[int, float] = dict.fromkeys(ids, 0.0)
        if ids:
            grouped = (
                select(
                    Message.batch_id,
                    Message.status,
                    func.count(),
                    func.coalesce(func.sum(Message.cost_pence), 0.0),
                )
                .where(Message.batch_id.in_(ids))
                .group_by(Message.batch_id, Message.status)
            )
            for batch_id, status, n, cost in session.execute(grouped):
                counts[batch_id][status] = int(n)
                if status in CHARGED_STATUSES:
                    costs[batch_id] += float(cost or 0.0)
        rows: list[dict[str, Any]] = []
        for b in batches:
            per_status = counts[b.id]
            total = sum(per_status.values())
            finished = total - per_status["queued"] - per_status["sending"]
            rows.append(
                {
                    "id": b.id,
                    "created_at": b.created_at,
                    "created_by": b.created_by,
                    "channel": b.channel,
                    "template_name": b.template_name,
                    "subject": b.subject,
                    "state": b.state,
                    "state_reason": b.state_reason,
                    "total": total,
                    "excluded": b.excluded,
                    "estimated_cost_pence": b.estimated_cost_pence,
                    "finished_at": b.finished_at,
                    "document_path": b.document_path,
                    **per_status,
                    "finished": finished,
                    "progress": finished / total if total else 1.0,
                    "cost_pence": round(costs[b.id], 2),
                }
            )
    frame = pd.DataFrame(rows, columns=list(BATCH_COLUMNS))
    for column in ("created_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("id", "total", "excluded", "finished", *MESSAGE_STATUSES):
        frame[column] = frame[column].astype("int64")
    for column in ("progress", "cost_pence", "estimated_cost_pence"):
        frame[column] = frame[column].astype("float64")
    return frame


def senders_of_messages(engine: Engine) -> list[str]:
    """Everyone who has created messages (``created_by``), in alphabetical order."""
    query = select(Message.created_by).distinct().order_by(Message.created_by)
    with session_scope(engine, immediate=False) as session:
        return [str(v) for v in session.scalars(query) if v]


def batch_of_keys(engine: Engine, idempotency_keys: list[str]) -> int | None:
    """The batch already holding a message with one of these idempotency keys, or None.

    A send planned once and enqueued once has all its keys in one batch; the dashboard
    asks this before enqueueing so that a second press of Send queues nothing new.
    """
    keys = [k for k in dict.fromkeys(idempotency_keys) if k]
    found: int | None = None
    with session_scope(engine, immediate=False) as session:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            query = (
                select(Message.batch_id)
                .where(Message.idempotency_key.in_(chunk), Message.batch_id.is_not(None))
                .order_by(Message.batch_id)
                .limit(1)
            )
            found = session.scalars(query).first()
            if found is not None:
                return int(found)
    return None


def message_activity(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """One narrow row per message created in ``[since, until)``, for charts.

    Columns: :data:`ACTIVITY_COLUMNS` (``created_at`` aware UTC).
    """
    query = select(*(getattr(Message, c) for c in ACTIVITY_COLUMNS))
    if _aware(since, "since") is not None:
        query = query.where(Message.created_at >= since)
    if _aware(until, "until") is not None:
        query = query.where(Message.created_at < until)
    with session_scope(engine, immediate=False) as session:
        rows = session.execute(query.order_by(Message.created_at)).all()
    frame = pd.DataFrame.from_records(rows, columns=list(ACTIVITY_COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["segments"] = frame["segments"].astype("Int64")
    frame["cost_pence"] = pd.to_numeric(frame["cost_pence"]).astype("float64")
    return frame


def london_month(created_at: pd.Series) -> pd.Series:
    """First day of the London calendar month of each (aware) time, as a naive Timestamp."""
    local = created_at.dt.tz_convert(LONDON).dt.tz_localize(None)
    return local.dt.to_period("M").dt.to_timestamp()


def sms_cost_by_month(activity: pd.DataFrame) -> pd.DataFrame:
    """What SMS cost per month: messages, segments and pence of sent and delivered texts.

    ``activity`` is :func:`message_activity`. Months with no charged text are left out.
    Columns: :data:`COST_BY_MONTH_COLUMNS` (``month`` is the first day of the month).
    """
    charged = activity[(activity["channel"] == "sms") & activity["status"].isin(CHARGED_STATUSES)]
    if charged.empty:
        return pd.DataFrame(columns=list(COST_BY_MONTH_COLUMNS))
    grouped = (
        charged.assign(month=london_month(charged["created_at"]))
        .groupby("month", as_index=False)
        .agg(
            messages=("status", "size"),
            segments=("segments", lambda s: int(s.fillna(0).sum())),
            cost_pence=("cost_pence", lambda s: float(s.fillna(0).sum())),
        )
    )
    grouped["cost_pence"] = grouped["cost_pence"].round(2)
    grouped["cost_pounds"] = (grouped["cost_pence"] / 100).round(2)
    return grouped[list(COST_BY_MONTH_COLUMNS)].reset_index(drop=True)


def messages_by(activity: pd.DataFrame, *by: str) -> pd.DataFrame:
    """How many messages per value of the ``by`` columns (e.g. channel, status, created_by).

    Columns: the ``by`` columns then ``messages``; largest counts first.
    """
    if not by:
        raise ValueError("Say what to count messages by, e.g. 'channel'.")
    unknown = [c for c in by if c not in activity.columns and c != "month"]
    if unknown:
        raise ValueError(f"Cannot count messages by {', '.join(unknown)}.")
    data = activity
    if "month" in by:
        data = activity.assign(month=london_month(activity["created_at"]))
    if data.empty:
        return pd.DataFrame(columns=[*by, "messages"])
    counted = data.groupby(list(by), as_index=False).size().rename(columns={"size": "messages"})
    counted["messages"] = counted["messages"].astype("int64")
    return counted.sort_values(
        ["messages", *by], ascending=[False, *([True] * len(by))]
    ).reset_index(drop=True)


__all__ = [
    "ACTIVITY_COLUMNS",
    "BATCH_COLUMNS",
    "CHARGED_STATUSES",
    "COST_BY_MONTH_COLUMNS",
    "batch_list",
    "batch_of_keys",
    "message_activity",
    "messages_by",
    "senders_of_messages",
    "sms_cost_by_month",
]
