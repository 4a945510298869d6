"""Stored weekly report schedules: the :class:`Schedule` record, reading it, auditing.

A :class:`~schoolcomms.ops.models.ReportSchedule` row is read into a frozen
:class:`Schedule`, so callers never hold a row outside its session. Every change to a
schedule, and every send, writes an :class:`~schoolcomms.ops.models.AuditEntry` with
:func:`audit` in the same transaction, naming who acted (:func:`require_actor`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from reports.weekly import REPORTS
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AuditEntry, ReportSchedule, utcnow
from senders.report_schedule_checks import WEEKDAYS


class ScheduleNotFound(LookupError):
    """No schedule has that id (it may have been deleted)."""


@dataclass(frozen=True)
class Schedule:
    """A report schedule as stored."""

    id: int
    report: str
    recipients: tuple[str, ...]
    weekday: int
    time_of_day: str
    enabled: bool
    last_slot: str | None
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str

    @property
    def day(self) -> str:
        """The weekday's name, e.g. ``Monday``."""
        return WEEKDAYS[self.weekday]

    def describe(self) -> str:
        """``attendance, Monday 07:00, to 2 recipient(s)`` (for messages and the CLI)."""
        return (
            f"{self.report}, {self.day} {self.time_of_day}, to {len(self.recipients)} recipient(s)"
        )


def schedule_from_row(row: ReportSchedule) -> Schedule:
    """The :class:`Schedule` a ``report_schedules`` row holds."""
    return Schedule(
        id=row.id,
        report=row.report,
        recipients=tuple(row.recipients or ()),
        weekday=int(row.weekday),
        time_of_day=row.time_of_day,
        enabled=bool(row.enabled),
        last_slot=row.last_slot,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def list_schedules(engine: Engine) -> list[Schedule]:
    """Every schedule, by report (in :data:`REPORTS` order) then day and time."""
    order = {name: i for i, name in enumerate(REPORTS)}
    with session_scope(engine, immediate=False) as s:
        found = [schedule_from_row(r) for r in s.scalars(select(ReportSchedule))]
    return sorted(
        found, key=lambda x: (order.get(x.report, len(order)), x.weekday, x.time_of_day, x.id)
    )


def get_schedule(engine: Engine, schedule_id: int) -> Schedule:
    """The schedule with this id; :class:`ScheduleNotFound` if there is none."""
    with session_scope(engine, immediate=False) as s:
        row = s.get(ReportSchedule, int(schedule_id))
        if row is None:
            raise ScheduleNotFound(f"There is no report schedule {schedule_id}; it was deleted.")
        return schedule_from_row(row)


def require_actor(actor: str) -> str:
    """``actor`` stripped; ValueError if it is blank (every change must say who made it)."""
    if not (actor or "").strip():
        raise ValueError('actor must name who acted (a user, "cli" or "scheduler")')
    return actor.strip()


def audit(s: Session, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
    """Add an audit row to ``s``, so it commits (or not) with the change it records."""
    s.add(AuditEntry(at=utcnow(), actor=actor, action=action, target=target, details=details))


__all__ = [
    "Schedule",
    "ScheduleNotFound",
    "audit",
    "get_schedule",
    "list_schedules",
    "require_actor",
    "schedule_from_row",
]
