"""The scheduler's alerts job: evaluate the staff alert rules and fire what is due.

Every schedule_alerts_minutes: the enabled rules are planned at the current local time
(:func:`senders.alerts.evaluate.plan_alerts`) and fired
(:func:`senders.alerts.deliver.fire`), exactly as ``schoolcomms alerts`` does. Rules
read from registers (attendance_code, truancy) wait while the registers are stale
(:func:`scheduler.freshness.check_freshness`): they are left out of the run and
counted as ``skipped_attendance``, and fire on the first run after fresh marks arrive
(a pupil's key is per day, so nothing is lost within the day). Nothing loaded yet, or
no rule enabled, is a "skipped" run, never an error.
"""

from __future__ import annotations

import datetime as dt

from scheduler.jobs import JobContext, JobResult


def alerts_job(ctx: JobContext) -> JobResult:
    """Fire the alerts due now; attendance rules wait while the registers are stale.

    Counts: rules (enabled), planned, fired, notices, parent_messages,
    skipped_attendance (attendance rules left out), unresolved (fired alerts with a
    gap), and the freshness guard's figures when an attendance rule is enabled.
    """
    from scheduler.freshness import check_freshness
    from schoolcomms.warehouse import NoWarehouse, Warehouse
    from senders.alerts.deliver import fire
    from senders.alerts.evaluate import plan_alerts
    from senders.alerts.rules import ATTENDANCE_KINDS, Rule, list_rules

    rules = [Rule.from_mapping(r) for r in list_rules(ctx.engine, enabled_only=True)]
    if not rules:
        return JobResult("skipped", {"rules": 0}, "no alert rule is enabled")
    warehouse = Warehouse.from_settings(ctx.settings)
    if warehouse.generation() is None:
        return JobResult("skipped", {"rules": len(rules)}, "no data has been loaded yet")
    at = ctx.local_now()
    counts: dict[str, object] = {"rules": len(rules), "skipped_attendance": 0}
    attendance = [r for r in rules if r.kind in ATTENDANCE_KINDS]
    stale = ""
    if attendance:
        max_age = dt.timedelta(minutes=int(ctx.settings["freshness_minutes"]))
        guard = check_freshness(warehouse, at, max_age)
        counts |= guard.counts()
        if not guard.fresh:
            counts["skipped_attendance"] = len(attendance)
            names = ", ".join(r.name for r in attendance)
            stale = f"attendance rule(s) waiting ({names}): {guard.reason}"
    try:
        planned = plan_alerts(
            ctx.settings, warehouse, ctx.engine, at, rules=rules, include_attendance=not stale
        )
    except NoWarehouse:
        return JobResult("skipped", counts, "no data has been loaded yet")
    fired = fire(ctx.engine, ctx.settings, planned, now=ctx.now())
    counts |= {
        "planned": len(planned),
        "fired": len(fired),
        "notices": sum(a.notices or 0 for a in fired),
        "parent_messages": sum(a.parent_messages_queued or 0 for a in fired),
        "unresolved": sum(1 for a in fired if a.unresolved),
    }
    parts = []
    if fired:
        pupils = len({a.student_id for a in fired})
        parts.append(
            f"fired {len(fired)} alert(s) about {pupils} pupil(s): "
            f"{counts['notices']} notice(s), {counts['parent_messages']} parent message(s)"
        )
        gaps = [g for a in fired for g in a.unresolved]
        if gaps:
            parts.append(f"{len(gaps)} gap(s), e.g. {gaps[0]}")
    if stale:
        parts.append(stale)
    return JobResult(counts=counts, detail="; ".join(parts))
