"""Sending a weekly report: for a schedule's slot, or at once when someone asks.

**Sending once.** :func:`send_report` queues one e-mail per recipient with the
idempotency key ``report:{schedule_id}:{slot}:{address}`` and moves ``last_slot`` in the
same transaction, with a conditional update (:func:`senders.report_due.claim_slot`), so
re-runs, restarts and two schedulers at once queue one e-mail per recipient per slot.
"Send now" (:func:`send_report_now`) sends at once whenever asked; it has its own key,
``report:{schedule id or report}:now:{week}:{minute}:{address}`` (one per minute).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine

from reports.weekly import REPORTS, ReportContent, build_report, previous_week
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import utcnow
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders.outbox import enqueue_in
from senders.report_due import claim_slot
from senders.report_mail import report_folder, report_messages
from senders.report_schedule_checks import ScheduleProblem, parse_recipients
from senders.report_schedule_store import Schedule, audit, get_schedule, require_actor
from senders.report_slots import local, slot_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendOutcome:
    """What a send did: e-mails newly queued (``queued``) and whether the slot was done."""

    report: str
    week_start: dt.date
    recipients: int
    queued: int
    schedule_id: int | None = None
    slot: str | None = None
    already_sent: bool = False
    attachments: tuple[Path, ...] = ()
    message_ids: tuple[int, ...] = ()
    note: str = ""


def send_report(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse | None,
    schedule: Schedule,
    slot: dt.datetime,
    actor: str = "scheduler",
    *,
    now: dt.datetime | None = None,
) -> SendOutcome:
    """Build the schedule's report for ``slot`` and queue it to each recipient, once.

    The week is the previous complete week before ``slot``; the report is built as of
    ``now`` (aware; default: now). The e-mails and the move of ``last_slot`` commit
    together, and only if no other run has taken the slot: otherwise nothing is queued
    and the outcome says ``already_sent``.
    """
    actor = require_actor(actor)
    now = now or utcnow()
    fresh = get_schedule(engine, schedule.id)
    week_start = previous_week(slot)
    done = SendOutcome(
        fresh.report, week_start, len(fresh.recipients), 0, fresh.id, slot_text(slot), True
    )
    if (fresh.last_slot or "") >= slot_text(slot):
        return done
    if not fresh.enabled:  # switched off since it was found due
        return replace(done, already_sent=False, note="the schedule is switched off")
    at = max(local(now), slot)
    content = build_report(fresh.report, settings, warehouse, engine, week_start, at)
    key = f"report:{fresh.id}:{slot_text(slot)}"
    folder = report_folder(
        settings.data_dir, slot.date(), f"{fresh.report}-s{fresh.id}-{slot:%H%M}"
    )
    messages, paths = report_messages(settings, content, fresh.recipients, key, folder)
    with session_scope(engine) as s:
        if not claim_slot(s, fresh.id, slot):
            return done
        ids = enqueue_in(s, messages, actor, now=now)
        details = {
            "report": fresh.report,
            "slot": slot_text(slot),
            "week_start": week_start.isoformat(),
            "recipients": len(fresh.recipients),
            "queued": len(ids),
        }
        audit(s, actor, "report.send", f"report_schedule:{fresh.id}", details)
    log.info("weekly report %s queued to %d recipient(s)", fresh.report, len(ids))
    return replace(
        done, queued=len(ids), already_sent=False, attachments=tuple(paths), message_ids=tuple(ids)
    )


def send_report_now(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse | None,
    *,
    report: str,
    recipients: str | Iterable[str],
    actor: str,
    schedule_id: int | None = None,
    week_start: dt.date | None = None,
    now: dt.datetime | None = None,
    content: ReportContent | None = None,
) -> SendOutcome:
    """Build a report and queue it to ``recipients`` at once (dashboard, CLI).

    The week defaults to the previous complete week before ``now``; ``content`` is the
    report already built for that week (a preview), else it is built here. The
    idempotency key holds the week and the minute, so pressing Send twice in a minute
    queues once. Raises :class:`ScheduleProblem` for an unknown report or bad or no
    recipients.
    """
    actor = require_actor(actor)
    now = now or utcnow()
    at = local(now)
    problems = []
    if report not in REPORTS:
        problems.append(
            f"There is no report called {report!r}; choose one of {', '.join(REPORTS)}."
        )
    try:
        addresses = parse_recipients(recipients)
    except ScheduleProblem as exc:
        problems += exc.problems
        addresses = []
    if not addresses and not problems:
        problems.append("Say who should receive the report: at least one e-mail address.")
    if problems:
        raise ScheduleProblem(problems)
    week_start = week_start or previous_week(at)
    if content is None or content.name != report or content.week_start != week_start:
        content = build_report(report, settings, warehouse, engine, week_start, at)
    owner = str(schedule_id) if schedule_id is not None else report
    key = f"report:{owner}:now:{week_start.isoformat()}:{at:%Y-%m-%d %H:%M}"
    tag = f"{report}-{'s' + owner if schedule_id is not None else 'now'}-{at:%H%M}"
    folder = report_folder(settings.data_dir, at.date(), tag)
    messages, paths = report_messages(settings, content, addresses, key, folder)
    with session_scope(engine) as s:
        ids = enqueue_in(s, messages, actor, now=now)
        details = {
            "report": report,
            "week_start": week_start.isoformat(),
            "recipients": addresses,
            "queued": len(ids),
            "schedule_id": schedule_id,
        }
        target = f"report_schedule:{schedule_id}" if schedule_id is not None else f"report:{report}"
        audit(s, actor, "report.send_now", target, details)
    return SendOutcome(
        report,
        week_start,
        len(addresses),
        len(ids),
        schedule_id,
        attachments=tuple(paths),
        message_ids=tuple(ids),
    )


__all__ = ["SendOutcome", "send_report", "send_report_now"]
