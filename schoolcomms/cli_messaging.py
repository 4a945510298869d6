"""Messaging commands: ``send``, ``dispatch`` and ``messages`` (thin wrappers over senders/)."""

from __future__ import annotations

import getpass
import json
import signal
import threading
from typing import Any

import click

from schoolcomms.cli import REFUSED, Refused, _plain, _settings, main


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@main.command()
@click.option("--channel", type=click.Choice(["sms", "email", "letter"]), required=True)
@click.option("--template", "template", default=None, help="A template from the message bank.")
@click.option("--body", default=None, help="The message text (merge fields allowed).")
@click.option("--subject", default=None, help="E-mail subject (when not using a template).")
@click.option(
    "--students", required=True, help="Comma-separated student ids, e.g. STE04000571,STE04000480."
)
@click.option(
    "--max-priority",
    default=1,
    show_default=True,
    help="Send to each pupil's contacts with priority up to N.",
)
@click.option(
    "--parental-responsibility-only",
    is_flag=True,
    help="Only contacts with parental responsibility.",
)
@click.option(
    "--to-pupils",
    is_flag=True,
    help="E-mail the pupils themselves (their e-mail in the students extract), not contacts.",
)
@click.option(
    "--confirm-over-budget",
    is_flag=True,
    help="Send an SMS batch that costs more than sms_batch_budget_pence.",
)
@click.option("--dry-run", is_flag=True, help="Plan and print; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def send(
    ctx: click.Context,
    channel: str,
    template: str | None,
    body: str | None,
    subject: str | None,
    students: str,
    max_priority: int,
    parental_responsibility_only: bool,
    to_pupils: bool,
    confirm_over_budget: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """A one-off send to the contacts of the given pupils (or, by e-mail, the pupils).

    Default recipients are each pupil's priority-1 contacts; contacts without consent,
    without a valid mobile or e-mail, or opted out are listed as excluded with the
    reason. Siblings share one message per contact. With --to-pupils (e-mail only) each
    pupil is written to at their own address.

    \b
    Examples:
      schoolcomms send --channel sms --students S1,S2 --body "Hello {{ contact.name }}" --dry-run --json
      schoolcomms send --channel email --template "Positive news" --students S1
      schoolcomms send --channel email --to-pupils --students S1 --subject "Homework" --body "Hi {{ contact.forename }}"
    """
    from schoolcomms.ops.db import open_ops
    from schoolcomms.ops.history import audit
    from schoolcomms.warehouse import Warehouse, WarehouseError
    from senders.compose import ComposeError, Composition, enqueue_plan, plan_send
    from senders.messengers import where_messages_go
    from senders.recipients import RecipientRule

    if (template is None) == (body is None):
        raise Refused("Give exactly one of --template NAME or --body TEXT.")
    if to_pupils and channel != "email":
        raise Refused("Pupils can be written to by e-mail only: use --channel email.")
    settings = _settings(ctx)
    ids = [s.strip() for s in students.split(",") if s.strip()]
    composition = Composition(
        channel=channel,
        student_ids=ids,
        created_by=_actor(),
        body=body,
        subject=subject,
        template=template,
        rule=RecipientRule(channel, max_priority, parental_responsibility_only, to_pupils),
    )
    engine = open_ops(settings)
    try:
        plan = plan_send(settings, Warehouse.from_settings(settings), engine, composition)
        if dry_run:
            click.echo(json.dumps(plan.as_json(), indent=1) if as_json else _describe(plan))
            return
        batch_id = enqueue_plan(engine, settings, plan, over_budget_confirmed=confirm_over_budget)
    except (ComposeError, WarehouseError) as exc:
        raise Refused(str(exc)) from exc
    audit(
        engine,
        composition.created_by,
        "send",
        f"batch:{batch_id}",
        {
            "channel": channel,
            "messages": len(plan.messages),
            "excluded": len(plan.excluded),
            "cost_pence": plan.total_cost_pence,
        },
    )
    if as_json:
        click.echo(json.dumps({"batch_id": batch_id, **plan.as_json()}, indent=1))
    else:
        click.echo(_describe(plan))
        click.echo(
            f"Queued {len(plan.messages)} message(s) as batch {batch_id}. "
            f"{where_messages_go(settings)[channel]} They go out with the next dispatch: "
            "`schoolcomms run` keeps dispatching, or run `schoolcomms dispatch` now."
        )


def _describe(plan: Any) -> str:
    lines = [
        f"{len(plan.messages)} message(s), {len(plan.excluded)} left out, "
        f"estimated cost {plan.total_cost_pence:.1f}p."
    ]
    lines += [f"  note: {note}" for note in plan.notes]
    for message in plan.messages:
        extra = f" [{message.segments} segment(s), {message.encoding}]" if message.segments else ""
        lines.append(
            f"  to {message.contact_id} ({message.to.splitlines()[0]}) about "
            f"{', '.join(message.student_ids)}{extra}: {message.body[:70]!r}"
        )
    for exclusion in plan.excluded:
        lines.append(
            f"  left out: {exclusion.student_id} / {exclusion.contact_id or '-'}: "
            f"{exclusion.reason}"
        )
    if plan.over_budget:
        lines.append(
            f"  over the batch budget of {plan.budget_pence:.0f}p: needs --confirm-over-budget"
        )
    return "\n".join(lines)


@main.command()
@click.option("--loop", is_flag=True, help="Keep dispatching until stopped (Ctrl-C / SIGTERM).")
@click.option(
    "--channel",
    type=click.Choice(["sms", "email", "letter"]),
    default=None,
    help="Only this channel.",
)
@click.option(
    "--poll",
    is_flag=True,
    help="Also ask the SMS provider what became of sent messages (the loop does this "
    "every 5 minutes).",
)
@click.pass_context
def dispatch(ctx: click.Context, loop: bool, channel: str | None, poll: bool) -> None:
    """Send what is due in the outbox: one pass, or --loop.

    \b
    Examples:
      schoolcomms dispatch
      schoolcomms dispatch --poll
      schoolcomms dispatch --loop
    """
    from schoolcomms.ops.db import open_ops
    from schoolcomms.settings import SettingsError
    from senders.dispatcher import Dispatcher
    from senders.messengers import build_messengers

    settings = _settings(ctx)
    try:
        messengers = build_messengers(settings)
    except SettingsError as exc:
        raise Refused(str(exc)) from exc
    from senders.delivery import poll_delivery

    engine = open_ops(settings)
    dispatcher = Dispatcher(engine, messengers, settings)
    if not loop:
        stats = dispatcher.run_once(channel)
        click.echo(f"Dispatched: {stats}")
        if poll:
            changed = poll_delivery(engine, messengers)
            click.echo(f"Delivery reports: {changed} message(s) changed status.")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def poll_every_five_minutes() -> None:
        while not stop.wait(300):
            poll_delivery(engine, messengers)

    threading.Thread(target=poll_every_five_minutes, daemon=True).start()
    click.echo("Dispatching until stopped (Ctrl-C).")
    dispatcher.run_forever(stop)


@main.command()
@click.option("--status", default=None, help="Only this status (queued, sent, failed …).")
@click.option("--channel", type=click.Choice(["sms", "email", "letter"]), default=None)
@click.option("--batch", "batch_id", type=int, default=None)
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of messages.")
@click.pass_context
def messages(
    ctx: click.Context,
    status: str | None,
    channel: str | None,
    batch_id: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """The message log: every message with its status, newest first.

    \b
    Example:
      schoolcomms messages --status failed --json
    """
    from schoolcomms.ops.db import open_ops
    from senders.outbox import message_log

    frame = message_log(
        open_ops(_settings(ctx)), status=status, channel=channel, batch_id=batch_id, limit=limit
    )
    if as_json:
        rows = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
        click.echo(json.dumps(rows, indent=1, default=str))
    elif frame.empty:
        click.echo("No messages.")
    else:
        shown = [
            c
            for c in (
                "id",
                "created_at",
                "channel",
                "to_address",
                "status",
                "attempts",
                "student_id",
                "error",
            )
            if c in frame.columns
        ]
        click.echo(frame[shown].to_string(index=False))


__all__ = ["REFUSED", "dispatch", "messages", "send"]


@main.command("absence-texts")
@click.option(
    "--at",
    "at_text",
    default=None,
    help='The run time, "YYYY-MM-DD HH:MM" UK local time (default: now).',
)
@click.option("--dry-run", is_flag=True, help="Plan and print; queue nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of texts.")
@click.pass_context
def absence_texts(ctx: click.Context, at_text: str | None, dry_run: bool, as_json: bool) -> None:
    """Text parents about lesson absences due at a time (the rule in docs/messaging.md).

    Plans, as of --at, each eligible student's first O lesson today; without --dry-run it
    queues one text per linked portal account and writes a pastoral log entry for each,
    at most once per student per day. A dry run right after a real run prints [].

    \b
    Example:
      schoolcomms absence-texts --at "2026-11-20 10:20" --dry-run --json
    """
    import datetime as dt

    from schoolcomms.ops.db import open_ops
    from schoolcomms.settings import SettingsError
    from schoolcomms.warehouse import Warehouse, WarehouseError
    from senders.absence import local_now, plan_at, send

    try:
        at = dt.datetime.strptime(at_text, "%Y-%m-%d %H:%M") if at_text else local_now()
    except ValueError as exc:
        raise Refused(f'--at {at_text!r} is not "YYYY-MM-DD HH:MM".') from exc
    settings = _settings(ctx)
    engine = open_ops(settings)
    try:
        texts = plan_at(settings, Warehouse.from_settings(settings), engine, at)
    except (WarehouseError, SettingsError) as exc:
        raise Refused(str(exc)) from exc
    if not dry_run:
        texts = send(engine, settings, texts, at.date())
    if as_json:
        click.echo(json.dumps([t.as_json() for t in texts], indent=1))
        return
    verb = "would be queued" if dry_run else "queued"
    click.echo(f"{len(texts)} absence text(s) {verb} as of {at:%Y-%m-%d %H:%M}.")
    for text in texts:
        click.echo(
            f"  {text.student_id} ({text.lesson_start}, {text.lesson_id}) to account "
            f"{text.account_id} {text.mobile[:-3]}***"
        )
