"""The ``health`` command: is this installation working? For monitoring systems.

:func:`check_health` reads, never writes (it does not migrate the ops store): the
warehouse has data, the ops store is reachable and at the schema this code expects, the
scheduler is running its jobs (none overdue, none whose last run failed), and during the
school day the registers are fresh enough for absence texts.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from schoolcomms.cli import Refused, _settings, main
from schoolcomms.settings import Settings, SettingsError

SCHEDULER_HINT = "is the scheduler running? (systemctl status schoolcomms-scheduler)"


@dataclass
class Health:
    """The result of :func:`check_health`: healthy when there are no reasons."""

    checked_at: str
    reasons: list[str] = field(default_factory=list)
    warehouse_generation: int | None = None
    ops_revision: str | None = None
    head_revision: str | None = None
    jobs: list[dict[str, Any]] = field(default_factory=list)
    registers: str | None = None

    @property
    def healthy(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``healthy`` first, then the reasons and the details."""
        return {"healthy": self.healthy, **asdict(self)}


def _when(value: Any) -> str | None:
    """An aware UTC timestamp as UK local ``YYYY-MM-DD HH:MM`` (how staff read times)."""
    from scheduler.slots import UK

    if value is None or value != value:  # None or NaT
        return None
    return value.to_pydatetime().astimezone(UK).strftime("%Y-%m-%d %H:%M")


def _check_ops(settings: Settings, health: Health) -> Any:
    """The ops store engine if it is reachable and at head; else None (reasons added)."""
    from sqlalchemy.engine import make_url

    from schoolcomms.backup import known_revisions
    from schoolcomms.ops.db import current_revision, head_revision, make_engine

    url = settings.resolved_ops_url
    parsed = make_url(url)
    sqlite_file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if sqlite_file and not Path(sqlite_file).is_file():
        health.reasons.append(
            f"There is no ops store at {sqlite_file}: start the dashboard or the "
            "scheduler once (they create it), or check --data-dir."
        )
        return None
    health.head_revision = head_revision()
    engine = make_engine(url)
    try:
        health.ops_revision = current_revision(engine)
    except Exception as exc:
        engine.dispose()
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        health.reasons.append(f"Cannot reach the ops store: {first}")
        return None
    if health.ops_revision == health.head_revision:
        return engine
    engine.dispose()
    if health.ops_revision is not None and health.ops_revision not in known_revisions():
        health.reasons.append(
            f"The ops store is at schema {health.ops_revision}, newer than this code knows "
            f"({health.head_revision}): the code is older than the data. Upgrade the code "
            "again (docs/operations.md, Upgrading)."
        )
    else:
        health.reasons.append(
            f"The ops store is at schema {health.ops_revision}, but this code expects "
            f"{health.head_revision}: restart the dashboard and the scheduler, which migrate "
            "it when they start."
        )
    return None


def _check_jobs(engine: Any, settings: Settings, now: dt.datetime, health: Health) -> None:
    from scheduler.status import job_status

    status = job_status(engine, settings, now=now)
    if status["last_outcome"].isna().all():
        health.reasons.append(
            "No scheduler job has ever run for this ops store: start the scheduler "
            "(systemctl start schoolcomms-scheduler)."
        )
    for row in status.to_dict("records"):
        health.jobs.append(
            {
                "job": row["job"],
                "last_outcome": row["last_outcome"],
                "last_finished_at": _when(row["last_finished_at"]),
                "next_due": _when(row["next_due"]),
                "overdue": bool(row["overdue"]),
            }
        )
        if row["overdue"]:
            health.reasons.append(
                f"Job {row['job']} is overdue: its last run was for "
                f"{_when(row['last_slot'])} and the next slot is long past; {SCHEDULER_HINT}"
            )
        elif row["last_outcome"] == "error":
            detail = str(row["last_detail"] or row["last_error"] or "").splitlines()
            health.reasons.append(
                f"Job {row['job']}'s last run failed ({_when(row['last_finished_at'])}): "
                f"{detail[0] if detail else 'no detail'}. See the Scheduler page."
            )


def _check_registers(warehouse: Any, settings: Settings, now: dt.datetime, health: Health) -> None:
    from scheduler.freshness import check_freshness
    from scheduler.jobs import school_day
    from scheduler.slots import UK

    try:
        day = school_day(settings)
    except SettingsError as exc:
        health.reasons.append(str(exc))
        return
    if not day.contains(now):
        health.registers = "outside the school day: not checked"
        return
    local = now.astimezone(UK).replace(tzinfo=None, second=0, microsecond=0)
    max_age = dt.timedelta(minutes=int(settings["freshness_minutes"]))
    freshness = check_freshness(warehouse, local, max_age)
    health.registers = freshness.reason
    if not freshness.fresh:
        health.reasons.append(freshness.reason[0].upper() + freshness.reason[1:] + ".")


def check_health(settings: Settings, now: dt.datetime | None = None) -> Health:
    """Check the installation of ``settings`` at ``now`` (aware UTC; default the clock)."""
    from schoolcomms.warehouse import Warehouse, WarehouseError

    now = now or dt.datetime.now(dt.UTC)
    health = Health(checked_at=now.isoformat(timespec="seconds"))
    warehouse = Warehouse.from_settings(settings)
    try:
        health.warehouse_generation = warehouse.generation()
    except WarehouseError as exc:
        health.reasons.append(str(exc))
    else:
        if health.warehouse_generation is None:
            health.reasons.append(
                "No data has been loaded into the warehouse: load extracts "
                "(`schoolcomms load PATH` or the Data loads page)."
            )
        else:
            _check_registers(warehouse, settings, now, health)
    engine = _check_ops(settings, health)
    if engine is not None:
        try:
            _check_jobs(engine, settings, now, health)
        finally:
            engine.dispose()
    return health


@main.command("health")
@click.option(
    "--at",
    "at_text",
    default=None,
    help='Check as of this UK local time, "YYYY-MM-DD HH:MM" (default now).',
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def health_command(ctx: click.Context, at_text: str | None, as_json: bool) -> None:
    """Check that the installation works, for a monitoring system: data loaded, ops store
    reachable and migrated, no scheduler job overdue or failed at its last run, and
    registers fresh during the school day.

    Exit 0 healthy; 1 unhealthy, with one line per reason. Changes nothing.

    \b
    Example:
      schoolcomms health --json
    """
    from scheduler.slots import UK

    settings = _settings(ctx)
    now = None
    if at_text:
        try:
            local = dt.datetime.strptime(at_text, "%Y-%m-%d %H:%M")
        except ValueError as exc:
            raise Refused(f'--at {at_text!r} is not "YYYY-MM-DD HH:MM".') from exc
        now = local.replace(tzinfo=UK).astimezone(dt.UTC)
    try:
        health = check_health(settings, now)
    except SettingsError as exc:
        raise Refused(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(health.as_dict(), indent=2, default=str))
    elif health.healthy:
        click.echo(
            f"healthy: warehouse generation {health.warehouse_generation}, ops store "
            f"schema {health.ops_revision}, {len(health.jobs)} jobs on time."
        )
    else:
        click.echo("UNHEALTHY:")
        for reason in health.reasons:
            click.echo(f"- {reason}")
    if not health.healthy:
        ctx.exit(1)
