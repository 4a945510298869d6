"""The ``schoolcomms`` command: thin wrappers over the library, one per command.

Exit codes: 0 success, 2 refused (bad input, nothing changed), 1 unexpected failure.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import click

from schoolcomms.settings import DATA_DIR_ENV, Settings, SettingsError, load_settings

REFUSED = 2


class Refused(click.ClickException):
    """Bad input: print the message, exit 2, change nothing."""

    exit_code = REFUSED

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.message}", err=True)


def _settings(ctx: click.Context) -> Settings:
    try:
        return load_settings(ctx.obj["data_dir"])
    except SettingsError as exc:
        raise Refused(str(exc)) from exc


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        try:
            if value != value:  # NaT
                return None
        except (TypeError, ValueError):
            pass
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help=f"Data directory (default ./data, or ${DATA_DIR_ENV}).",
)
@click.pass_context
def main(ctx: click.Context, data_dir: str | None) -> None:
    """schoolcomms: communications and reporting hub for UK schools and colleges.

    \b
    Example:
      schoolcomms sample --size school --date today --load
      schoolcomms query "SELECT count(*) AS pupils FROM students"
    """
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = data_dir


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate only; change nothing.")
@click.option(
    "--profile",
    default=None,
    help="Mapping profile for another MIS's column names (sims, arbor, bromcom, or a TOML file).",
)
@click.option(
    "--from-sql",
    "from_sql",
    is_flag=True,
    help="Read the extracts named in PATHS (or all configured) from the MIS "
    "database with the queries in the setting sql_sources.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def load(
    ctx: click.Context,
    paths: tuple[Path, ...],
    dry_run: bool,
    profile: str | None,
    from_sql: bool,
    as_json: bool,
) -> None:
    """Load extract files or folders into a new warehouse generation.

    Exit 0 when loaded (or, with --dry-run, when it would load), 2 when refused:
    then every error is printed and nothing changed.

    \b
    Examples:
      schoolcomms load data/sample
      schoolcomms load students.csv contacts.csv --dry-run
      schoolcomms load "Student Details.csv" --profile sims
      schoolcomms load --from-sql students contacts
    """
    from pipelines.load import load_from_sql, load_paths

    settings = _settings(ctx)
    if from_sql:
        report = load_from_sql(settings, [str(p) for p in paths] or None, dry_run=dry_run)
    else:
        if not paths:
            raise Refused(
                "Name at least one extract file or folder, e.g. `schoolcomms load data/sample`."
            )
        report = load_paths(list(paths), settings, dry_run=dry_run, profile=profile)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        for problem in report.errors:
            click.echo(f"ERROR   {problem.as_text()}", err=True)
        for problem in report.warnings:
            click.echo(f"warning {problem.as_text()}", err=True)
        click.echo(report.summary())
        if report.errors:
            click.echo("See docs/extracts.md for the format of each extract.", err=True)
    if not report.ok:
        ctx.exit(REFUSED)


@main.command()
@click.pass_context
def rollback(ctx: click.Context) -> None:
    """Make the previous warehouse generation current (undo the last load).

    \b
    Example:
      schoolcomms rollback
    """
    from schoolcomms.ops.db import open_ops
    from schoolcomms.ops.history import record_rollback
    from schoolcomms.warehouse import Warehouse, WarehouseError

    settings = _settings(ctx)
    try:
        before, after = Warehouse.from_settings(settings).rollback()
    except WarehouseError as exc:
        raise Refused(str(exc)) from exc
    record_rollback(
        open_ops(settings), actor="cli", generation_before=before, generation_after=after
    )
    click.echo(f"Generation {after} is current again (was {before}).")


@main.command()
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of row objects.")
@click.pass_context
def query(ctx: click.Context, sql: str, as_json: bool) -> None:
    """Run read-only SQL against the current warehouse snapshot.

    Tables are named as in docs/extracts.md; a statement that would change data is
    refused.

    \b
    Example:
      schoolcomms query "SELECT form, count(*) AS n FROM students GROUP BY form" --json
    """
    import duckdb

    from schoolcomms.warehouse import Warehouse, WarehouseError

    settings = _settings(ctx)
    try:
        columns, rows = Warehouse.from_settings(settings).rows(sql)
    except WarehouseError as exc:
        raise Refused(str(exc)) from exc
    except duckdb.Error as exc:
        raise Refused(
            f"{str(exc).splitlines()[0]} (the query was not run to completion; "
            "table and column names are in docs/extracts.md)"
        ) from exc
    if as_json:
        data = [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        click.echo(json.dumps(data, indent=1, default=str))
        return
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    with pd.option_context(
        "display.max_rows", 500, "display.width", 200, "display.max_columns", 50
    ):
        click.echo(frame.to_string(index=False) if rows else f"(no rows) {', '.join(columns)}")


@main.command()
@click.option(
    "--size",
    type=click.Choice(["school", "college", "trust"]),
    default="school",
    show_default=True,
    help="An 11–16 school, a 16–19 college or a trust.",
)
@click.option(
    "--date",
    "date_text",
    default="today",
    show_default=True,
    help="The last day of history, YYYY-MM-DD or 'today'.",
)
@click.option("--seed", default=42, show_default=True, help="Random seed (same seed, same files).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the CSV extracts (default <data dir>/sample).",
)
@click.option("--load", "and_load", is_flag=True, help="Load the files after writing them.")
@click.option(
    "--weekend-school-day",
    is_flag=True,
    help="If --date is a Saturday or Sunday, make it a school day on Friday's timetable "
    "(for demonstrations at the weekend).",
)
@click.pass_context
def sample(
    ctx: click.Context,
    size: str,
    date_text: str,
    seed: int,
    out: Path | None,
    and_load: bool,
    weekend_school_day: bool,
) -> None:
    """Write deterministic synthetic extracts (and optionally load them, with a starter
    message bank, starter alert rules and weekly report schedules).

    \b
    Example:
      schoolcomms sample --size college --date 2026-11-20 --load
    """
    from pipelines.sample import generate_sample

    settings = _settings(ctx)
    try:
        day = dt.date.today() if date_text == "today" else dt.date.fromisoformat(date_text)
    except ValueError as exc:
        raise Refused(f"--date {date_text!r} is not YYYY-MM-DD or 'today'.") from exc
    out = out or settings.data_dir / "sample"
    files = generate_sample(size, day, out, seed=seed, weekend_today=weekend_school_day)
    click.echo(f"Wrote {len(files)} extracts for a {size} to {out}.")
    if and_load:
        ctx.invoke(load, paths=(out,), dry_run=False, profile=None, from_sql=False, as_json=False)
        from schoolcomms.ops.db import open_ops
        from senders.alerts.rules import seed_default_rules
        from senders.bank import seed_default_templates
        from senders.report_schedules import seed_default_schedules

        engine = open_ops(settings)
        added = seed_default_templates(engine)
        if added:
            click.echo(f"Added {len(added)} example templates to the message bank.")
        rules = seed_default_rules(engine)
        if rules:
            click.echo(f"Added {len(rules)} starter alert rules: {', '.join(rules)}.")
        schedules = seed_default_schedules(engine, settings)
        if schedules:
            click.echo(
                f"Added {len(schedules)} weekly report schedules (see the Weekly reports page)."
            )
    (out / "DATE").write_text(day.isoformat())


@main.command("settings")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def settings_command(ctx: click.Context, as_json: bool) -> None:
    """Print every setting with its value, where it came from, and help. Secrets masked.

    \b
    Example:
      SCHOOLCOMMS_GENERATIONS_KEPT=10 schoolcomms settings
    """
    rows = _settings(ctx).rows()
    if as_json:
        click.echo(json.dumps(rows, indent=1, default=str))
        return
    for row in rows:
        click.echo(f"{row['name']} = {row['value']!r}  [{row['source']}; {row['env']}]")
        click.echo(f"    {row['help']}")


def _first_admin(settings: Settings) -> None:
    """Create the first admin account on a new ops store and print its password once."""
    from schoolcomms.auth import FIRST_ADMIN_EMAIL, ensure_first_admin
    from schoolcomms.ops.db import open_ops

    password = ensure_first_admin(open_ops(settings))
    if password:
        click.echo(
            "\n".join(
                [
                    "",
                    "A first administrator account was created. Sign in to the dashboard with:",
                    f"    e-mail:   {FIRST_ADMIN_EMAIL}",
                    f"    password: {password}",
                    "This is shown only now; you will choose your own password at first sign-in.",
                    "Lost it? `schoolcomms users reset admin@localhost` prints a new one.",
                    "",
                ]
            )
        )


@main.command()
@click.option("--port", default=8501, show_default=True)
@click.option(
    "--address",
    default=None,
    help="The address to listen on (default: every interface). Behind a reverse proxy on "
    "the same machine: 127.0.0.1.",
)
@click.pass_context
def dashboard(ctx: click.Context, port: int, address: str | None) -> None:
    """Start the Streamlit dashboard.

    The libraries and page helpers are imported before the server starts (a few
    seconds), so no visitor waits for them.

    \b
    Example:
      schoolcomms --data-dir data dashboard --port 8501 --address 127.0.0.1
    """
    from schoolcomms.dashboard_server import serve

    settings = _settings(ctx)
    _first_admin(settings)
    os.environ[DATA_DIR_ENV] = str(settings.data_dir)
    serve(settings, port, address)


@main.command()
@click.option("--port", default=8501, show_default=True)
@click.pass_context
def run(ctx: click.Context, port: int) -> None:
    """Start everything `make run` starts: the dashboard and the scheduler process
    (dispatch, delivery polling, absence texts, the drop folder).

    \b
    Example:
      schoolcomms run --port 8501
    """
    import contextlib
    import signal
    import subprocess

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # A service manager stops us with SIGTERM, a terminal with SIGINT (which a shell
    # ignores for background jobs): either way the dashboard and scheduler stop too.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    settings = _settings(ctx)
    base = [sys.executable, "-m", "schoolcomms", "--data-dir", str(settings.data_dir)]
    env = {**os.environ, DATA_DIR_ENV: str(settings.data_dir)}
    _first_admin(settings)
    click.echo(
        f"Dashboard on http://localhost:{port} (data in {settings.data_dir}). "
        "Ctrl-C stops everything."
    )
    scheduler = subprocess.Popen([*base, "scheduler"], env=env)
    dashboard_process = subprocess.Popen([*base, "dashboard", "--port", str(port)], env=env)
    processes = (dashboard_process, scheduler)
    told = False
    try:
        while dashboard_process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                dashboard_process.wait(timeout=1)
            if not told and scheduler.poll() is not None:
                told = True  # the dashboard stays up; its scheduler page shows jobs overdue
                click.echo(
                    f"The scheduler stopped (exit {scheduler.returncode}); see its messages "
                    "above. Start it again with `schoolcomms scheduler`.",
                    err=True,
                )
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


# The other command groups register themselves on `main`.
from schoolcomms import cli_messaging  # noqa: E402, F401, I001
from schoolcomms import cli_scheduler  # noqa: E402, F401
from schoolcomms import cli_reminders  # noqa: E402, F401
from schoolcomms import cli_reports  # noqa: E402, F401
from schoolcomms import cli_alerts  # noqa: E402, F401
from schoolcomms import cli_users  # noqa: E402, F401
from schoolcomms import cli_backup  # noqa: E402, F401
from schoolcomms import cli_health  # noqa: E402, F401

if __name__ == "__main__":
    main()
