"""Which weekly report schedules are due now, and taking a slot exactly once.

**When a schedule is due.** Its *slot* is the latest weekday-and-time at or before now
(local, see :mod:`senders.report_slots`). It is due when that slot is newer than
``last_slot``, the schedule has not yet reported that slot's week (each slot reports
the previous complete week, see :mod:`reports.weekly`), and the slot is no older than
the catch-up cut-off (12 hours by default). A slot missed by more than that (the
scheduler was down) is not sent: it is recorded as done (``last_slot``) with a
``report.missed`` audit row, and the next one goes as usual. So a report goes at most
once a week per schedule, and re-timing a schedule after it has sent does not send
that week's report again.

:func:`claim_slot` moves ``last_slot`` with a conditional update, so of two runs that
find the same slot due only one takes it (see :mod:`senders.report_sending`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine, or_, update
from sqlalchemy.orm import Session

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import ReportSchedule
from senders.report_schedule_store import Schedule, audit, list_schedules
from senders.report_slots import already_reported, latest_slot, slot_text

log = logging.getLogger(__name__)

DEFAULT_CATCH_UP = dt.timedelta(hours=12)


@dataclass
class DueSchedules:
    """What :func:`due_schedules` found: schedules to send now, and those missed for good."""

    due: list[tuple[Schedule, dt.datetime]] = field(default_factory=list)
    skipped: list[tuple[Schedule, dt.datetime]] = field(default_factory=list)


def due_schedules(
    engine: Engine,
    now_local: dt.datetime,
    catch_up: dt.timedelta = DEFAULT_CATCH_UP,
    *,
    record: bool = True,
    actor: str = "scheduler",
) -> DueSchedules:
    """The enabled schedules due at ``now_local`` (naive UK), each with its slot.

    A slot older than ``catch_up`` is not due but missed: with ``record`` (the
    scheduler), it is marked done with a ``report.missed`` audit row, so it is
    reported once and never sent late.
    """
    found = DueSchedules()
    for schedule in list_schedules(engine):
        if not schedule.enabled:
            continue
        slot = latest_slot(schedule.weekday, schedule.time_of_day, now_local)
        if already_reported(schedule.last_slot, slot):
            continue
        if now_local - slot > catch_up:
            found.skipped.append((schedule, slot))
        else:
            found.due.append((schedule, slot))
    if record and found.skipped:
        with session_scope(engine) as s:
            for schedule, slot in found.skipped:
                moved = claim_slot(s, schedule.id, slot)
                if moved:
                    late = int((now_local - slot).total_seconds() // 60)
                    details = {
                        "report": schedule.report,
                        "slot": slot_text(slot),
                        "late_minutes": late,
                    }
                    audit(s, actor, "report.missed", f"report_schedule:{schedule.id}", details)
                    log.warning("weekly report %s missed its %s slot", schedule.report, slot)
    return found


def claim_slot(s: Session, schedule_id: int, slot: dt.datetime) -> bool:
    """Move ``last_slot`` to ``slot`` unless it is there already; whether it moved."""
    text = slot_text(slot)
    result = s.execute(
        update(ReportSchedule)
        .where(
            ReportSchedule.id == schedule_id,
            or_(ReportSchedule.last_slot.is_(None), ReportSchedule.last_slot < text),
        )
        .values(last_slot=text)
    )
    return bool(getattr(result, "rowcount", 0))


__all__ = ["DEFAULT_CATCH_UP", "DueSchedules", "claim_slot", "due_schedules"]
