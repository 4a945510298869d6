"""The scheduler's register_reminders job: missing-register reminders and escalations.

Every schedule_reminders_minutes during the school day: the freshness guard first (a
register may have been taken in the MIS but not yet extracted, so stale registers skip
the run, with the reason), then :func:`senders.reminders.reminder_plan` at the current
local time and :func:`senders.reminders.send_reminders`, exactly as
``schoolcomms reminders`` does. Each notice's key makes re-runs, restarts and
concurrent schedulers harmless; a run after downtime sends what is due by then (today's
lessons only), so missed runs need no catching up beyond the same day.
"""

from __future__ import annotations

import datetime as dt

from scheduler.jobs import JobContext, JobResult


def reminders_job(ctx: JobContext) -> JobResult:
    """Deliver the register reminders and escalations due now, unless registers are stale.

    Counts: missing (lessons past the reminder time with no register), reminders and
    escalations (planned), sent (delivered now), gaps, and the guard's figures.
    """
    from scheduler.freshness import check_freshness
    from schoolcomms.warehouse import Warehouse
    from senders.reminders import reminder_plan, send_reminders, stale_reason

    at = ctx.local_now()
    warehouse = Warehouse.from_settings(ctx.settings)
    max_age = dt.timedelta(minutes=int(ctx.settings["freshness_minutes"]))
    guard = check_freshness(warehouse, at, max_age)
    if not guard.fresh:
        return JobResult("skipped", guard.counts(), stale_reason(guard.reason))
    plan = reminder_plan(ctx.settings, warehouse, ctx.engine, at)
    sent = send_reminders(ctx.engine, ctx.settings, plan.notices)
    counts = {**plan.counts(), "sent": len(sent), **guard.counts()}
    detail = ""
    if sent:
        stages = [n.details.get("stage") for n in sent]
        detail = (
            f"{stages.count('teacher')} reminder(s) and {stages.count('escalation')} "
            f"escalation(s) about {len({n.lesson_id for n in sent})} missing register(s)"
        )
        if plan.gaps:
            detail += f"; {len(plan.gaps)} gap(s), e.g. {plan.gaps[0]}"
    return JobResult(counts=counts, detail=detail)
