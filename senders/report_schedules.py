"""Weekly report schedules: who gets which report, on which day and time, each week once.

A :class:`~schoolcomms.ops.models.ReportSchedule` row names a report
(:data:`reports.weekly.REPORTS`), its recipients' e-mail addresses, a weekday (Monday
= 0) and a time (``HH:MM``, UK local time). Every change is checked first
(:class:`ScheduleProblem` lists what is wrong) and written with an audit row in the same
transaction (``report_schedule.create`` / ``.update`` / ``.delete``).

A new schedule, or one switched back on, starts at its *next* time: the slot just
passed counts as done (``last_slot`` is set to it), so nothing is sent for the time
before it existed or while it was off.

This module edits schedules and is the one to import from; the rest lives beside it
and is re-exported here:

- :mod:`senders.report_schedule_checks`: checking recipients, day and time;
- :mod:`senders.report_schedule_store`: the :class:`Schedule` record, reading, auditing;
- :mod:`senders.report_slots`: slot arithmetic in UK local time;
- :mod:`senders.report_due`: which schedules are due, and missed slots;
- :mod:`senders.report_sending`: sending once per slot, and "send now".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from reports.weekly import REPORTS
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import Message, ReportSchedule, utcnow
from schoolcomms.settings import Settings
from senders.notices import data_manager_emails
from senders.report_due import DEFAULT_CATCH_UP, DueSchedules, due_schedules
from senders.report_schedule_checks import (
    MAX_RECIPIENTS,  # noqa: F401  (importable from here, as before the split)
    WEEKDAYS,
    ScheduleProblem,
    check_schedule,
    default_when,
    parse_recipients,
    parse_time,
    parse_weekday,
    parse_when,
)
from senders.report_schedule_store import (
    Schedule,
    ScheduleNotFound,
    audit,
    get_schedule,
    list_schedules,
    require_actor,
    schedule_from_row,
)
from senders.report_sending import SendOutcome, send_report, send_report_now
from senders.report_slots import (
    SLOT_FORMAT,  # noqa: F401  (importable from here, as before the split)
    UK,  # noqa: F401  (importable from here, as before the split)
    already_reported,
    latest_slot,
    local,
    next_slot,
    slot_text,
)

log = logging.getLogger(__name__)

FRAME_COLUMNS = (
    "id",
    "report",
    "title",
    "recipients",
    "day",
    "time",
    "enabled",
    "last_sent_at",
    "next_send",
    "last_slot",
    "updated_by",
    "updated_at",
)


# ---- the overview table ---------------------------------------------------------------------


def last_sent(engine: Engine, schedule_ids: Iterable[int]) -> dict[int, dt.datetime]:
    """When each schedule last queued an e-mail (scheduled or sent now), from the outbox."""
    out: dict[int, dt.datetime] = {}
    with session_scope(engine, immediate=False) as s:
        for schedule_id in schedule_ids:
            newest = s.scalar(
                select(func.max(Message.created_at)).where(
                    Message.idempotency_key.like(f"report:{int(schedule_id)}:%")
                )
            )
            if newest is not None:
                out[int(schedule_id)] = newest
    return out


def schedules_frame(engine: Engine, now_local: dt.datetime | None = None) -> pd.DataFrame:
    """The schedules as a table for the dashboard and CLI: :data:`FRAME_COLUMNS`.

    ``recipients`` is comma-separated; ``last_sent_at`` is aware UTC (NaT if never);
    ``next_send`` is naive UK local time (NaT when switched off).
    """
    now_local = now_local or local(utcnow())
    schedules = list_schedules(engine)
    sent = last_sent(engine, [s.id for s in schedules])
    rows = [
        {
            "id": s.id,
            "report": s.report,
            "title": REPORTS[s.report].title if s.report in REPORTS else s.report,
            "recipients": ", ".join(s.recipients),
            "day": s.day,
            "time": s.time_of_day,
            "enabled": s.enabled,
            "last_sent_at": sent.get(s.id),
            "next_send": _next_send(s, now_local) if s.enabled else None,
            "last_slot": s.last_slot,
            "updated_by": s.updated_by,
            "updated_at": s.updated_at,
        }
        for s in schedules
    ]
    frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    frame["last_sent_at"] = pd.to_datetime(frame["last_sent_at"], utc=True)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    frame["next_send"] = pd.to_datetime(frame["next_send"])
    frame["id"] = frame["id"].astype("int64")
    frame["enabled"] = frame["enabled"].astype(bool)
    return frame


def _next_send(schedule: Schedule, now_local: dt.datetime) -> dt.datetime:
    slot = latest_slot(schedule.weekday, schedule.time_of_day, now_local)
    if not already_reported(schedule.last_slot, slot):
        return slot  # due now (or at the next check)
    return slot + dt.timedelta(days=7)


# ---- editing --------------------------------------------------------------------------------


def _fields(row: ReportSchedule) -> dict[str, Any]:
    return {
        "report": row.report,
        "recipients": list(row.recipients or ()),
        "weekday": row.weekday,
        "time_of_day": row.time_of_day,
        "enabled": row.enabled,
    }


def _add(
    s: Session,
    report: str,
    recipients: list[str],
    weekday: int,
    time_of_day: str,
    enabled: bool,
    actor: str,
    now: dt.datetime,
) -> ReportSchedule:
    row = ReportSchedule(
        report=report,
        recipients=recipients,
        weekday=weekday,
        time_of_day=time_of_day,
        enabled=enabled,
        # The slot just passed is done: a new schedule starts at its next time.
        last_slot=slot_text(latest_slot(weekday, time_of_day, local(now))),
        created_at=now,
        created_by=actor,
        updated_at=now,
        updated_by=actor,
    )
    s.add(row)
    s.flush()
    audit(s, actor, "report_schedule.create", f"report_schedule:{row.id}", _fields(row))
    return row


def create_schedule(
    engine: Engine,
    *,
    report: str,
    recipients: str | Iterable[str],
    weekday: int | str,
    time_of_day: str,
    enabled: bool = True,
    actor: str,
    now: dt.datetime | None = None,
) -> Schedule:
    """Add a schedule; raises :class:`ScheduleProblem` (saving nothing) if anything is wrong.

    It first sends at its next day and time after ``now`` (aware; default: now).
    """
    actor = require_actor(actor)
    now = now or utcnow()
    report, addresses, day, at = check_schedule(report, recipients, weekday, time_of_day, enabled)
    with session_scope(engine) as s:
        return schedule_from_row(_add(s, report, addresses, day, at, bool(enabled), actor, now))


def update_schedule(
    engine: Engine,
    schedule_id: int,
    *,
    actor: str,
    report: str | None = None,
    recipients: str | Iterable[str] | None = None,
    weekday: int | str | None = None,
    time_of_day: str | None = None,
    enabled: bool | None = None,
    now: dt.datetime | None = None,
) -> Schedule:
    """Change the given fields of a schedule (None leaves a field as it is).

    Raises :class:`ScheduleProblem` (changing nothing) if the result would be invalid,
    :class:`ScheduleNotFound` if it was deleted. Switching a schedule on makes it start
    at its next time; re-timing it never sends a week's report twice.
    """
    actor = require_actor(actor)
    now = now or utcnow()
    with session_scope(engine) as s:
        row = s.get(ReportSchedule, int(schedule_id))
        if row is None:
            raise ScheduleNotFound(f"There is no report schedule {schedule_id}; it was deleted.")
        before = _fields(row)
        checked = check_schedule(
            before["report"] if report is None else report,
            before["recipients"] if recipients is None else recipients,
            before["weekday"] if weekday is None else weekday,
            before["time_of_day"] if time_of_day is None else time_of_day,
            before["enabled"] if enabled is None else bool(enabled),
        )
        row.report, row.recipients, row.weekday, row.time_of_day = checked
        if enabled is not None:
            row.enabled = bool(enabled)
        if row.enabled and not before["enabled"]:
            passed = slot_text(latest_slot(row.weekday, row.time_of_day, local(now)))
            row.last_slot = max(row.last_slot or "", passed)
        after = _fields(row)
        changed = {k: {"old": before[k], "new": after[k]} for k in after if after[k] != before[k]}
        if changed:
            row.updated_at, row.updated_by = now, actor
            audit(s, actor, "report_schedule.update", f"report_schedule:{row.id}", changed)
        return schedule_from_row(row)


def delete_schedule(engine: Engine, schedule_id: int, *, actor: str) -> None:
    """Delete a schedule (its sent e-mails stay in the message log); audited."""
    actor = require_actor(actor)
    with session_scope(engine) as s:
        row = s.get(ReportSchedule, int(schedule_id))
        if row is None:
            raise ScheduleNotFound(f"There is no report schedule {schedule_id}; it was deleted.")
        details = _fields(row)
        s.delete(row)
        audit(s, actor, "report_schedule.delete", f"report_schedule:{schedule_id}", details)


def seed_default_schedules(
    engine: Engine, settings: Settings, actor: str = "setup", now: dt.datetime | None = None
) -> list[Schedule]:
    """One schedule for each report that has none, at ``weekly_report_default_time``.

    Recipients are the valid addresses in ``data_manager_emails``; with none, the
    schedule is added switched off with no recipients, for someone to fill in on the
    Weekly reports page (a report nobody receives would only be noise). Reports that
    already have a schedule are left alone, so calling this again adds nothing.
    """
    actor = require_actor(actor)
    now = now or utcnow()
    weekday, at = default_when(settings)
    recipients = []
    for address in data_manager_emails(settings):
        try:
            recipients += parse_recipients([address])
        except ScheduleProblem:
            log.warning("data_manager_emails holds %r, which is not an e-mail address", address)
    added: list[Schedule] = []
    with session_scope(engine) as s:
        have = set(s.scalars(select(ReportSchedule.report).distinct()))
        for name in REPORTS:
            if name not in have:
                row = _add(s, name, recipients, weekday, at, bool(recipients), actor, now)
                added.append(schedule_from_row(row))
    return added


__all__ = [
    "DEFAULT_CATCH_UP",
    "FRAME_COLUMNS",
    "WEEKDAYS",
    "DueSchedules",
    "Schedule",
    "ScheduleNotFound",
    "ScheduleProblem",
    "SendOutcome",
    "create_schedule",
    "default_when",
    "delete_schedule",
    "due_schedules",
    "get_schedule",
    "last_sent",
    "latest_slot",
    "list_schedules",
    "local",
    "next_slot",
    "parse_recipients",
    "parse_time",
    "parse_weekday",
    "parse_when",
    "schedules_frame",
    "seed_default_schedules",
    "send_report",
    "send_report_now",
    "slot_text",
]
