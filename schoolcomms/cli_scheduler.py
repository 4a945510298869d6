"""The ``scheduler`` command: the separate long-running process (a thin wrapper over scheduler/)."""

from __future__ import annotations

import json
import logging

import click

from schoolcomms.cli import Refused, _settings, main


@main.command("scheduler")
@click.option(
    "--once",
    is_flag=True,
    help="Run every job that is due now once (missed slots within their cut-off too), "
    "then exit: for cron and tests.",
)
@click.option(
    "--log-format",
    type=click.Choice(["kv", "json"]),
    default="kv",
    show_default=True,
    help="Log lines on stderr as key=value pairs or JSON objects.",
)
@click.option("--verbose", "-v", is_flag=True, help="Also log runs that had nothing to do.")
@click.pass_context
def scheduler_command(ctx: click.Context, once: bool, log_format: str, verbose: bool) -> None:
    """Run the scheduler: dispatch, delivery polling, absence texts, the drop folder.

    Every run is recorded in the ops store (job_runs). Only one scheduler may run per
    data directory: a second one exits with code 2. SIGTERM or Ctrl-C lets running jobs
    finish, then exits 0. Schedules are settings (schedule_*; see docs/settings.md).

    \b
    Examples:
      schoolcomms scheduler
      schoolcomms scheduler --once --log-format json
    """
    from scheduler.logs import configure_logging
    from scheduler.loop import SchedulerError, serve
    from schoolcomms.settings import SettingsError

    settings = _settings(ctx)
    configure_logging(log_format, logging.DEBUG if verbose else logging.INFO)
    try:
        results = serve(settings, once=once)
    except (SchedulerError, SettingsError) as exc:
        raise Refused(str(exc)) from exc
    if once:
        summary = {
            name: None if result is None else {"outcome": result.outcome, "counts": result.counts}
            for name, result in results.items()
        }
        click.echo(json.dumps(summary, default=str))
