"""The weekly reports job: send each report schedule that is due, once.

It runs every ``schedule_reports_minutes`` (5). Each run asks
:func:`senders.report_schedules.due_schedules` which schedules' day and time have come
(UK local time), records those missed by more than the catch-up cut-off (12 hours) as
skipped, and sends the rest with :func:`senders.report_schedules.send_report`. A
schedule that fails (no data loaded, a report that cannot be built) stays due, so the
next run tries again until the cut-off; the others are sent all the same.

For the job table (:func:`scheduler.jobs.build_jobs`)::

    JobSpec(
        "weekly_reports",
        _every(settings, "schedule_reports_minutes", "minutes"),
        weekly_reports_job,
        catch_up_rule="always: a missed run is made up at once; each schedule's own "
        "catch-up (12 hours) decides whether a late report is still sent",
    )
"""

from __future__ import annotations

import logging

from scheduler.jobs import JobContext, JobResult
from schoolcomms.warehouse import Warehouse, WarehouseError
from senders.report_schedules import (
    DEFAULT_CATCH_UP,
    ScheduleNotFound,
    due_schedules,
    send_report,
)

log = logging.getLogger(__name__)

ACTOR = "scheduler"


def weekly_reports_job(ctx: JobContext) -> JobResult:
    """Send the weekly reports due now; counts ``due``, ``sent``, ``skipped_late``.

    ``sent`` counts reports queued by this run, ``emails`` their e-mails and
    ``failed`` the schedules whose report could not be built (outcome ``error``, with
    each reason).
    """
    now_local = ctx.local_now()
    found = due_schedules(ctx.engine, now_local, DEFAULT_CATCH_UP, actor=ACTOR)
    warehouse = Warehouse.from_settings(ctx.settings)
    sent = emails = 0
    failures: list[str] = []
    for schedule, slot in found.due:
        if ctx.stop.is_set():
            break
        try:
            outcome = send_report(
                ctx.engine, ctx.settings, warehouse, schedule, slot, ACTOR, now=ctx.now()
            )
        except ScheduleNotFound:  # deleted since it was found due: nothing to send
            continue
        except WarehouseError as exc:
            failures.append(f"{schedule.report} (schedule {schedule.id}): {exc}")
            continue
        except Exception as exc:  # one broken report must not stop the others
            log.exception("weekly report %s (schedule %d) failed", schedule.report, schedule.id)
            failures.append(f"{schedule.report} (schedule {schedule.id}): {exc}")
            continue
        if not outcome.already_sent and not outcome.note:
            sent += 1
            emails += outcome.queued
    counts = {
        "due": len(found.due),
        "sent": sent,
        "emails": emails,
        "skipped_late": len(found.skipped),
        "failed": len(failures),
    }
    parts = []
    if sent:
        parts.append(f"sent {sent} report(s) ({emails} e-mail(s))")
    if found.skipped:
        missed = ", ".join(f"{s.report} {slot:%Y-%m-%d %H:%M}" for s, slot in found.skipped)
        parts.append(f"skipped {len(found.skipped)} missed by more than the catch-up: {missed}")
    detail = "; ".join(parts)
    if failures:
        return JobResult(
            "error",
            counts,
            detail or f"{len(failures)} report(s) could not be sent",
            "Could not send: " + " | ".join(failures) + " The next run tries again.",
        )
    return JobResult(counts=counts, detail=detail)


__all__ = ["weekly_reports_job"]
