"""Delivery status by polling: ask each provider what became of messages it accepted.

Polling is the default because it works behind a school firewall (no inbound
receipts). Only messages still ``sent`` (not yet delivered or failed), sent within
``within_hours`` and at least ``settle_seconds`` ago, are asked about.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import Message, utcnow
from senders.base import Messenger, ProviderError, StatusSource
from senders.outbox import apply_status_updates

log = logging.getLogger(__name__)
CHUNK = 100


def pending_refs(
    engine: Engine,
    channel: str,
    provider: str,
    *,
    now: datetime,
    within_hours: float,
    settle_seconds: float,
    limit: int,
) -> list[str]:
    """Provider references of messages on ``channel`` still waiting for a delivery report."""
    query = (
        select(Message.provider_ref)
        .where(
            Message.channel == channel,
            Message.provider == provider,
            Message.status == "sent",
            Message.provider_ref.is_not(None),
            Message.sent_at >= now - timedelta(hours=within_hours),
            Message.sent_at <= now - timedelta(seconds=settle_seconds),
        )
        .order_by(Message.sent_at)
        .limit(limit)
    )
    with session_scope(engine, immediate=False) as session:
        return [ref for (ref,) in session.execute(query) if ref]


def poll_delivery(
    engine: Engine,
    messengers: dict[str, Messenger],
    *,
    now: datetime | None = None,
    within_hours: float = 72,
    settle_seconds: float = 60,
    limit: int = 2000,
) -> int:
    """Poll every messenger that can report status; return how many messages changed.

    A provider that fails to answer is logged and skipped: the next poll asks again.
    """
    now = now or utcnow()
    changed = 0
    for channel, messenger in messengers.items():
        if not isinstance(messenger, StatusSource):
            continue
        refs = pending_refs(
            engine,
            channel,
            messenger.name,
            now=now,
            within_hours=within_hours,
            settle_seconds=settle_seconds,
            limit=limit,
        )
        for start in range(0, len(refs), CHUNK):
            try:
                updates = messenger.poll_status(refs[start : start + CHUNK])
            except ProviderError as exc:
                log.warning("status poll of %s failed: %s", messenger.name, exc)
                break
            changed += apply_status_updates(engine, updates, now=now)
    return changed
