"""The ``reminders`` command: missing-register reminders (a thin wrapper over senders/)."""

from __future__ import annotations

import json

import click

from schoolcomms.cli import Refused, _settings, main


@main.command("reminders")
@click.option(
    "--at",
    "at_text",
    default=None,
    help='The run time, "YYYY-MM-DD HH:MM" UK local time (default: now).',
)
@click.option("--dry-run", is_flag=True, help="Plan and print; deliver nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of notices.")
@click.option(
    "--even-if-stale",
    is_flag=True,
    help="Deliver even when the registers in the warehouse are stale.",
)
@click.pass_context
def reminders(
    ctx: click.Context, at_text: str | None, dry_run: bool, as_json: bool, even_if_stale: bool
) -> None:
    """Remind teachers about missing registers due at a time, and escalate.

    A lesson or session of that day that started register_reminder_minutes ago with no
    register (as of --at) gets a notice and e-mail to its teacher, once; still missing
    after register_escalate_minutes it goes to the head of department (for sessions the
    form's head of year; else the attendance officers), once. Without --dry-run the
    notices are delivered. When the registers are stale (freshness_minutes) a real run
    delivers nothing unless --even-if-stale; a dry run still plans. Staleness and gaps
    (no teacher, no e-mail, no head of department) are reported on stderr. JSON: a list
    of {lesson_id, stage, to_staff_id, to_audience, email, title, body}; a dry run right
    after a real run prints [].

    \b
    Example:
      schoolcomms reminders --at "2026-11-20 09:15" --dry-run --json
    """
    import datetime as dt

    from scheduler.freshness import check_freshness
    from schoolcomms.cli_messaging import _actor
    from schoolcomms.ops.db import open_ops
    from schoolcomms.settings import SettingsError
    from schoolcomms.warehouse import Warehouse, WarehouseError
    from senders.absence import local_now
    from senders.reminders import notice_json, reminder_plan, send_reminders, stale_reason

    try:
        at = dt.datetime.strptime(at_text, "%Y-%m-%d %H:%M") if at_text else local_now()
    except ValueError as exc:
        raise Refused(f'--at {at_text!r} is not "YYYY-MM-DD HH:MM".') from exc
    settings = _settings(ctx)
    engine = open_ops(settings)
    warehouse = Warehouse.from_settings(settings)
    try:
        plan = reminder_plan(settings, warehouse, engine, at)
    except (WarehouseError, SettingsError) as exc:
        raise Refused(str(exc)) from exc
    guard = check_freshness(warehouse, at, dt.timedelta(minutes=int(settings["freshness_minutes"])))
    notices = plan.notices
    skipped = not dry_run and not guard.fresh and not even_if_stale
    if not guard.fresh:
        then = (
            "nothing was delivered (--even-if-stale delivers anyway)"
            if skipped
            else "these reminders are a preview"
            if dry_run
            else "delivering anyway (--even-if-stale)"
        )
        click.echo(f"Warning: {stale_reason(guard.reason)}; {then}.", err=True)
    for gap in plan.gaps:
        click.echo(f"note: {gap}", err=True)
    if skipped:
        notices = []
    elif not dry_run:
        notices = send_reminders(engine, settings, notices, actor=_actor())
    if as_json:
        click.echo(json.dumps([notice_json(n) for n in notices], indent=1))
        return
    verb = "would be delivered" if dry_run else "delivered"
    click.echo(
        f"{len(plan.missing)} register(s) missing as of {at:%Y-%m-%d %H:%M}; "
        f"{len(notices)} notice(s) {verb}."
    )
    for notice in notices:
        to = notice.staff_id or notice.audience
        mail = f" <{notice.email}>" if notice.email else ""
        click.echo(f"  {notice.details.get('stage')}: {to}{mail}: {notice.title}")
