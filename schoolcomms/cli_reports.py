"""Weekly report commands: ``report`` (build, save or e-mail one) and ``report-schedules``."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Any

import click

from schoolcomms.cli import Refused, _plain, _settings, main

REPORT_NAMES = ("attendance", "behaviour", "missing_registers", "messages")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _table_json(heading: str, frame: Any) -> dict[str, Any]:
    rows = [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
    return {"heading": heading, "columns": [str(c) for c in frame.columns], "rows": rows}


def _content_json(content: Any) -> dict[str, Any]:
    return {
        "report": content.name,
        "title": content.title,
        "week_start": content.week_start.isoformat(),
        "week_end": content.week_end.isoformat(),
        "intro": content.intro,
        "notes": list(content.notes),
        "tables": [_table_json(h, f) for h, f in content.tables],
        "csv_name": content.csv_name,
    }


@main.command("report")
@click.argument("name", type=click.Choice(REPORT_NAMES))
@click.option(
    "--week-of",
    "week_of",
    default=None,
    help="Any date (YYYY-MM-DD) in the Monday–Sunday week to report; default: the last "
    "complete week.",
)
@click.option(
    "--to",
    "to",
    default=None,
    help="E-mail the report to these addresses (comma-separated), through the outbox.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report as an HTML page (with its chart) to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report's tables as JSON.")
@click.pass_context
def report_command(
    ctx: click.Context,
    name: str,
    week_of: str | None,
    to: str | None,
    out: Path | None,
    as_json: bool,
) -> None:
    """Build a weekly report: print it, save it as HTML, or e-mail it.

    Reports: attendance (by year group and form, persistent absentees), behaviour,
    missing_registers (by teacher) and messages (sent, and SMS cost). A week runs
    Monday to Sunday; without --week-of it is the last complete week. --to queues one
    e-mail per address (HTML table, CSV and chart attached) for the next dispatch.

    \b
    Examples:
      schoolcomms report attendance
      schoolcomms report behaviour --week-of 2026-11-16 --json
      schoolcomms report missing_registers --out registers.html
      schoolcomms report messages --to head@school.example.org,deputy@school.example.org
    """
    from reports.weekly import REPORTS, build_report, previous_week, week_containing
    from schoolcomms.ops.db import open_ops
    from schoolcomms.ops.models import utcnow
    from schoolcomms.warehouse import Warehouse, WarehouseError
    from senders.messengers import where_messages_go
    from senders.report_mail import render_report_page
    from senders.report_schedules import ScheduleProblem, local, send_report_now

    settings = _settings(ctx)
    now = utcnow()
    try:
        week_start = (
            week_containing(dt.date.fromisoformat(week_of))
            if week_of
            else previous_week(local(now))
        )
    except ValueError as exc:
        raise Refused(f"--week-of {week_of!r} is not a date: write YYYY-MM-DD.") from exc
    engine = open_ops(settings)
    warehouse = Warehouse.from_settings(settings)
    try:
        content = build_report(name, settings, warehouse, engine, week_start, local(now))
        if to:
            outcome = send_report_now(
                engine,
                settings,
                warehouse,
                report=name,
                recipients=to,
                actor=_actor(),
                week_start=week_start,
                now=now,
                content=content,
            )
    except ScheduleProblem as exc:
        raise Refused(" ".join(exc.problems)) from exc
    except WarehouseError as exc:
        raise Refused(str(exc)) from exc
    if out is not None:
        try:
            out.write_text(render_report_page(content, str(settings["school_name"])), "utf-8")
        except OSError as exc:
            raise Refused(f"Cannot write {out}: {exc.strerror}.") from exc
    if as_json:
        data = _content_json(content)
        if to:
            data["queued"] = outcome.queued
        click.echo(json.dumps(data, indent=1, default=str))
        return
    click.echo(f"{content.title} — week {content.week_start} to {content.week_end}")
    click.echo(content.intro)
    for heading, frame in content.tables:
        click.echo(f"\n{heading}")
        click.echo(frame.head(30).to_string(index=False) if len(frame) else "  (none)")
        if len(frame) > 30:
            click.echo(f"  … and {len(frame) - 30} more")
    if out is not None:
        click.echo(f"\nWrote {out}.")
    if to:
        click.echo(
            f"\nQueued {outcome.queued} e-mail(s) of the {REPORTS[name].title.lower()} report "
            f"(an address given twice in a minute is queued once). "
            f"{where_messages_go(settings)['email']} They go out with the next dispatch: "
            "`schoolcomms run` keeps dispatching, or run `schoolcomms dispatch` now."
        )


@main.command("report-schedules")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of schedules.")
@click.pass_context
def report_schedules_command(ctx: click.Context, as_json: bool) -> None:
    """List the weekly report schedules: report, recipients, day and time, when last sent.

    Schedules are added and changed on the dashboard's Weekly reports page; times are
    UK local time, and each sends the previous complete week's report.

    \b
    Example:
      schoolcomms report-schedules --json
    """
    import pandas as pd

    from schoolcomms.ops.db import open_ops
    from senders.report_schedules import schedules_frame

    frame = schedules_frame(open_ops(_settings(ctx)))
    if as_json:
        rows = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
        click.echo(json.dumps(rows, indent=1, default=str))
        return
    if frame.empty:
        click.echo(
            "No weekly report schedules. Add them on the dashboard's Weekly reports page "
            "(`schoolcomms sample --load` adds one per report)."
        )
        return
    for row in frame.itertuples(index=False):
        state = "on " if row.enabled else "off"
        last = "never" if pd.isna(row.last_sent_at) else f"{row.last_sent_at:%Y-%m-%d %H:%M} UTC"
        upcoming = "" if not row.enabled else f", next {row.next_send:%Y-%m-%d %H:%M}"
        click.echo(
            f"{row.id:>3} [{state}] {row.report:<18} {row.day} {row.time}{upcoming}; "
            f"last sent {last}; to {row.recipients or '(nobody)'}"
        )


__all__ = ["report_command", "report_schedules_command"]
