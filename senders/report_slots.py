"""Report slots: the weekday-and-time moments a weekly report schedule sends at.

A schedule's *slot* is the latest weekday-and-time at or before now, in UK local time
(naive, to the minute, as the scheduler sees it). Slots are stored in a schedule's
``last_slot`` as ``YYYY-MM-DD HH:MM`` text, so they compare in time order as text.
Everything here is pure arithmetic; :mod:`senders.report_due` decides which slots are
due and :mod:`senders.report_schedules` keeps the schedules.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from reports.weekly import previous_week

UK = ZoneInfo("Europe/London")
SLOT_FORMAT = "%Y-%m-%d %H:%M"


def local(moment: dt.datetime) -> dt.datetime:
    """An aware time as naive UK local time, to the minute (as the scheduler sees it)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"Naive datetime {moment.isoformat()}: pass an aware time (UTC).")
    return moment.astimezone(UK).replace(tzinfo=None, second=0, microsecond=0)


def slot_text(slot: dt.datetime) -> str:
    """A slot as stored in ``last_slot``: ``YYYY-MM-DD HH:MM``."""
    return slot.strftime(SLOT_FORMAT)


def latest_slot(weekday: int, time_of_day: str, now_local: dt.datetime) -> dt.datetime:
    """The latest ``weekday`` at ``time_of_day`` at or before ``now_local`` (naive UK)."""
    at = dt.time.fromisoformat(time_of_day)
    day = now_local.date() - dt.timedelta(days=(now_local.weekday() - weekday) % 7)
    slot = dt.datetime.combine(day, at)
    return slot if slot <= now_local else slot - dt.timedelta(days=7)


def next_slot(weekday: int, time_of_day: str, now_local: dt.datetime) -> dt.datetime:
    """The first ``weekday`` at ``time_of_day`` after ``now_local``."""
    return latest_slot(weekday, time_of_day, now_local) + dt.timedelta(days=7)


def already_reported(last_slot: str | None, slot: dt.datetime) -> bool:
    """Whether ``slot`` (or its report week) is already done, given ``last_slot``.

    Comparing report weeks as well as slots is what stops a re-timed schedule from
    sending the same week's report twice.
    """
    if not last_slot:
        return False
    last = dt.datetime.strptime(last_slot, SLOT_FORMAT)
    return slot <= last or previous_week(slot) <= previous_week(last)


__all__ = [
    "SLOT_FORMAT",
    "UK",
    "already_reported",
    "latest_slot",
    "local",
    "next_slot",
    "slot_text",
]
