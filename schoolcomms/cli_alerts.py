"""Staff alert commands: ``alerts`` (evaluate and fire) and ``alert-rules`` (list, change).

Thin wrappers over :mod:`senders.alerts`; see docs/alerts.md.
"""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import click

from schoolcomms.cli import Refused, _plain, _settings, main

UK = ZoneInfo("Europe/London")


def _json_option(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(
            f"{option} is not valid JSON ({exc.msg} at character {exc.pos}); write an object "
            f'such as \'{{"roles": ["form_tutor"]}}\' in single quotes.'
        ) from exc


@main.command("alerts")
@click.option(
    "--at",
    "at_text",
    default=None,
    help='The run time, "YYYY-MM-DD HH:MM" UK local time (default: now).',
)
@click.option("--dry-run", is_flag=True, help="Plan and print; fire nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of alerts.")
@click.option(
    "--even-if-stale",
    is_flag=True,
    help="Evaluate attendance rules even when the registers are stale.",
)
@click.pass_context
def alerts(
    ctx: click.Context, at_text: str | None, dry_run: bool, as_json: bool, even_if_stale: bool
) -> None:
    """Evaluate the enabled staff alert rules as of a time and fire what is due.

    Each firing (a pupil crossing a threshold, an incident, a pupil's codes of the day,
    a truant) is recorded once per rule and key, with a homepage notice (and e-mail) to
    every member of staff it reaches and, when the rule says so, a message to parents.
    A dry run right after a real run prints []. Attendance rules (attendance_code,
    truancy) are left out while the registers are stale (freshness_minutes), with a
    warning on stderr, unless --even-if-stale. JSON: a list of {rule_id, rule, kind,
    key, student_id, lesson_id, title, body, urgent, recipients [{staff_id, name, email,
    why}], unresolved, parent_messages, parent_excluded, details}; fired alerts add
    "fired": {notices, parent_messages}.

    \b
    Example:
      schoolcomms alerts --at "2026-11-20 11:10" --dry-run --json
    """
    import datetime as dt

    from scheduler.freshness import check_freshness
    from schoolcomms.cli_messaging import _actor
    from schoolcomms.ops.db import open_ops
    from schoolcomms.settings import SettingsError
    from schoolcomms.warehouse import Warehouse, WarehouseError
    from senders.absence import local_now
    from senders.alerts.deliver import fire
    from senders.alerts.evaluate import plan_alerts
    from senders.alerts.rules import ATTENDANCE_KINDS, list_rules

    try:
        at = dt.datetime.strptime(at_text, "%Y-%m-%d %H:%M") if at_text else local_now()
    except ValueError as exc:
        raise Refused(f'--at {at_text!r} is not "YYYY-MM-DD HH:MM".') from exc
    settings = _settings(ctx)
    engine = open_ops(settings)
    warehouse = Warehouse.from_settings(settings)
    rules = list_rules(engine, enabled_only=True)
    waiting = [r["name"] for r in rules if r["kind"] in ATTENDANCE_KINDS]
    include_attendance = True
    try:
        if waiting and not even_if_stale:
            max_age = dt.timedelta(minutes=int(settings["freshness_minutes"]))
            guard = check_freshness(warehouse, at, max_age)
            if not guard.fresh:
                include_attendance = False
                click.echo(
                    f"Warning: attendance rule(s) left out ({', '.join(waiting)}): "
                    f"{guard.reason}. --even-if-stale evaluates them anyway.",
                    err=True,
                )
        planned = plan_alerts(
            settings, warehouse, engine, at, include_attendance=include_attendance
        )
    except (WarehouseError, SettingsError) as exc:
        raise Refused(str(exc)) from exc
    shown = planned if dry_run else fire(engine, settings, planned, actor=_actor())
    if as_json:
        click.echo(json.dumps([a.as_json() for a in shown], indent=1, default=str))
        return
    if not rules:
        click.echo("No alert rule is enabled: add one with `schoolcomms alert-rules add`.")
    verb = "would fire" if dry_run else "fired"
    click.echo(f"{len(shown)} alert(s) {verb} as of {at:%Y-%m-%d %H:%M}.")
    for alert in shown:
        to = ", ".join(f"{r['name']} ({r['staff_id']})" for r in alert.recipients) or "nobody"
        click.echo(f"  [{alert.rule_name}] {alert.title} -> {to}")
        for message in alert.parent_messages:
            click.echo(f"    parent {message['contact_id']}: {message['channel']} {message['to']}")
        for gap in alert.unresolved:
            click.echo(f"    gap: {gap}")


@main.group("alert-rules", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON.")
@click.pass_context
def alert_rules(ctx: click.Context, as_json: bool) -> None:
    """List the staff alert rules; change them with the subcommands.

    Without a subcommand: every rule with its id, whether it is enabled, what it looks
    for and whom it tells, in words, and when it last fired (UK time; UTC in JSON). JSON: a list of {id, name,
    kind, enabled, params, notify, urgent, email, parent_template, summary, recipients,
    last_fired, firings, created_at, created_by, updated_at, updated_by}. Every change
    is validated (exit 2 with every problem named) and audited. Kinds and their params:
    behaviour_threshold {threshold, types, polarity, window: week|rolling, days};
    behaviour_incident {types, polarity, lookback_days}; attendance_code {codes,
    year_groups, forms, include_sessions}; truancy {}. notify: {roles, staff_ids,
    groups, parents} (see docs/alerts.md).

    \b
    Subcommands:
      add --name NAME --kind KIND --params JSON --notify JSON [--urgent] [--no-email]
          [--parent-template NAME] [--disabled]
      enable ID | disable ID | delete ID
      seed            add the starter rules that are not there yet

    \b
    Example:
      schoolcomms alert-rules --json
      schoolcomms alert-rules add --name "Fights" --kind behaviour_incident \\
        --params '{"types": ["Fighting"]}' --notify '{"roles": ["head_of_year"]}' --urgent
      schoolcomms alert-rules disable 3
    """
    if ctx.invoked_subcommand is not None:
        return
    from schoolcomms.ops.db import open_ops
    from senders.alerts.rules import list_rules

    rules = list_rules(open_ops(_settings(ctx)))
    if as_json:
        click.echo(json.dumps([{k: _plain(v) for k, v in r.items()} for r in rules], indent=1))
        return
    if not rules:
        click.echo("No alert rules yet: add one with `schoolcomms alert-rules add`.")
    for rule in rules:
        state = "on " if rule["enabled"] else "off"
        urgent = " (urgent)" if rule["urgent"] else ""
        last = rule["last_fired"]
        fired = f"last fired {last.astimezone(UK):%Y-%m-%d %H:%M}" if last else "never fired"
        click.echo(f"{rule['id']:>4} [{state}] {rule['name']}{urgent}: {rule['summary']}")
        click.echo(f"       tells {rule['recipients']}; {fired} ({rule['firings']} firing(s))")


def _change(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from senders.alerts.rules import RuleProblem

    try:
        return fn(*args, **kwargs)
    except RuleProblem as exc:
        raise Refused(f"The rule cannot be {what}: " + " ".join(exc.problems)) from exc
    except LookupError as exc:
        raise Refused(f"{exc.args[0]} See `schoolcomms alert-rules` for the ids.") from exc


@alert_rules.command("add")
@click.option("--name", required=True, help="A name, unique among the rules.")
@click.option("--kind", required=True, help="behaviour_threshold, behaviour_incident, …")
@click.option("--params", "params_text", default="{}", help="The kind's settings, as JSON.")
@click.option("--notify", "notify_text", required=True, help="Whom to tell, as JSON.")
@click.option("--urgent", is_flag=True, help="Pop-up notices, [Urgent] e-mails.")
@click.option("--no-email", is_flag=True, help="Homepage notices only, no e-mail.")
@click.option("--parent-template", default=None, help="Message bank template for parents.")
@click.option("--disabled", is_flag=True, help="Store the rule switched off.")
@click.pass_context
def add_rule(
    ctx: click.Context,
    name: str,
    kind: str,
    params_text: str,
    notify_text: str,
    urgent: bool,
    no_email: bool,
    parent_template: str | None,
    disabled: bool,
) -> None:
    """Add an alert rule (validated; audited).

    \b
    Example:
      schoolcomms alert-rules add --name "3 negatives in 7 days" --kind behaviour_threshold \\
        --params '{"threshold": 3, "window": "rolling", "days": 7}' \\
        --notify '{"roles": ["form_tutor", "head_of_year"]}'
    """
    from schoolcomms.cli_messaging import _actor
    from schoolcomms.ops.db import open_ops
    from senders.alerts.rules import create_rule

    settings = _settings(ctx)
    rule_id = _change(
        "added",
        create_rule,
        open_ops(settings),
        name=name,
        kind=kind,
        params=_json_option(params_text, "--params"),
        notify=_json_option(notify_text, "--notify"),
        urgent=urgent,
        email=not no_email,
        parent_template=parent_template,
        enabled=not disabled,
        actor=_actor(),
        settings=settings,
    )
    click.echo(f"Added rule {rule_id}: {name}{' (disabled)' if disabled else ''}.")


def _switch(ctx: click.Context, rule_id: int, enabled: bool) -> None:
    from schoolcomms.cli_messaging import _actor
    from schoolcomms.ops.db import open_ops
    from senders.alerts.rules import set_enabled

    engine = open_ops(_settings(ctx))
    changed = _change("changed", set_enabled, engine, rule_id, enabled, _actor())
    word = "enabled" if enabled else "disabled"
    click.echo(f"Rule {rule_id} {word}." if changed else f"Rule {rule_id} was already {word}.")


@alert_rules.command("enable")
@click.argument("rule_id", type=int)
@click.pass_context
def enable_rule(ctx: click.Context, rule_id: int) -> None:
    """Switch a rule on (audited).

    \b
    Example:
      schoolcomms alert-rules enable 3
    """
    _switch(ctx, rule_id, True)


@alert_rules.command("disable")
@click.argument("rule_id", type=int)
@click.pass_context
def disable_rule(ctx: click.Context, rule_id: int) -> None:
    """Switch a rule off (audited); it keeps its history.

    \b
    Example:
      schoolcomms alert-rules disable 3
    """
    _switch(ctx, rule_id, False)


@alert_rules.command("delete")
@click.argument("rule_id", type=int)
@click.pass_context
def delete_rule_command(ctx: click.Context, rule_id: int) -> None:
    """Delete a rule (audited); its past firings and notices stay.

    \b
    Example:
      schoolcomms alert-rules delete 3
    """
    from schoolcomms.cli_messaging import _actor
    from schoolcomms.ops.db import open_ops
    from senders.alerts.rules import delete_rule

    _change("deleted", delete_rule, open_ops(_settings(ctx)), rule_id, _actor())
    click.echo(f"Rule {rule_id} deleted.")


@alert_rules.command("seed")
@click.pass_context
def seed_rules(ctx: click.Context) -> None:
    """Add the starter rules whose names are not taken yet (audited).

    \b
    Example:
      schoolcomms alert-rules seed
    """
    from schoolcomms.cli_messaging import _actor
    from schoolcomms.ops.db import open_ops
    from senders.alerts.rules import seed_default_rules

    added = seed_default_rules(open_ops(_settings(ctx)), actor=_actor())
    click.echo(f"Added {len(added)} starter rule(s){': ' + ', '.join(added) if added else ''}.")
