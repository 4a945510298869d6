"""`schoolcomms health`: exit 0 healthy, 1 with the reasons, for monitoring systems.

The healthy case is a real scheduler pass (every job run once through SchedulerLoop on
the minimal school at 10:20 on its school day); then the clock moves on with no
scheduler, a job fails, registers go stale, the ops store falls behind the code.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from scheduler import runs
from scheduler.loop import SchedulerLoop
from scheduler.slots import UK
from schoolcomms.cli_health import check_health
from schoolcomms.ops import db
from schoolcomms.ops.db import open_ops

SCHOOL_DAY = dt.date(2026, 9, 3)  # the minimal school's lessons: 09:00–11:00


def uk(hhmm: str, day: dt.date = SCHOOL_DAY) -> dt.datetime:
    """An aware UTC time from UK local HH:MM on the minimal school's day."""
    local = dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tzinfo=UK)
    return local.astimezone(dt.UTC)


@pytest.fixture
def running(loaded):
    """The minimal school after one real scheduler pass at 10:20 (every job ran)."""
    loop = SchedulerLoop(loaded, now=lambda: uk("10:20"), threaded=False)
    results = loop.run_once()
    assert results and all(r is not None and r.outcome != "error" for r in results.values()), {
        name: (r.outcome, r.detail) if r else None for name, r in results.items()
    }
    return loaded


@pytest.mark.ops_store  # on SQLite and on PostgreSQL
def test_a_working_installation_is_healthy(running, cli):
    health = check_health(running, uk("10:21"))
    assert health.healthy, health.reasons
    assert health.warehouse_generation == 1 and health.ops_revision == health.head_revision
    assert health.registers == "registers are 12 min old"
    assert {job["job"] for job in health.jobs} >= {"dispatch", "absence_texts", "alerts"}

    result = cli("health", "--at", "2026-09-03 10:21", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["healthy"] is True and data["reasons"] == []
    assert all(job["overdue"] is False for job in data["jobs"])
    text = cli("health", "--at", "2026-09-03 10:21")
    assert text.exit_code == 0 and text.stdout.startswith("healthy:")


def test_jobs_overdue_when_no_scheduler_runs(running, cli):
    result = cli("health", "--at", "2026-09-03 12:30")
    assert result.exit_code == 1
    assert result.stdout.startswith("UNHEALTHY:")
    assert "Job dispatch is overdue: its last run was for 2026-09-03 10:20" in result.stdout
    assert "systemctl status schoolcomms-scheduler" in result.stdout


def test_a_failed_last_run_is_a_reason(running):
    engine = open_ops(running)
    run_id = runs.start_run(engine, "alerts", uk("10:25"), uk("10:25"), "test")
    runs.finish_run(engine, run_id, "error", uk("10:25"), detail="RuntimeError: boom")
    health = check_health(running, uk("10:26"))
    assert not health.healthy
    assert "Job alerts's last run failed (2026-09-03 10:25): RuntimeError: boom." in " ".join(
        health.reasons
    )
    # Another run that went well clears it.
    run_id = runs.start_run(engine, "alerts", uk("10:30"), uk("10:30"), "test")
    runs.finish_run(engine, run_id, "ok", uk("10:30"))
    assert not any("alerts" in r for r in check_health(running, uk("10:30")).reasons)


def test_stale_registers_during_the_school_day_only(running):
    engine = open_ops(running)
    for job in ("dispatch", "absence_texts", "alerts", "register_reminders", "delivery"):
        run_id = runs.start_run(engine, job, uk("10:50"), uk("10:50"), "test")
        runs.finish_run(engine, run_id, "ok", uk("10:50"))
    reasons = check_health(running, uk("10:50")).reasons
    stale = [r for r in reasons if r.startswith("Registers are stale")]
    assert stale and "the newest mark recorded today is from 10:09, 41 min ago" in stale[0]
    evening = check_health(running, uk("19:00"))
    assert evening.registers == "outside the school day: not checked"
    assert not any(r.startswith("Registers") for r in evening.reasons)


def test_nothing_there_is_unhealthy_in_words(settings, cli):
    result = cli("health", "--json")
    assert result.exit_code == 1
    reasons = json.loads(result.stdout)["reasons"]
    assert any(r.startswith("No data has been loaded into the warehouse") for r in reasons)
    assert any(r.startswith("There is no ops store at") for r in reasons)
    assert not (settings.data_dir / "ops.sqlite").exists()  # health creates nothing

    open_ops(settings)
    db.close_all()
    reasons = check_health(settings).reasons
    assert any(r.startswith("No scheduler job has ever run") for r in reasons)


def test_an_ops_store_behind_the_code_is_a_reason(settings):
    from alembic import command

    engine = db.make_engine(settings.resolved_ops_url)
    config = db.alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0007")
    engine.dispose()
    reasons = check_health(settings).reasons
    assert any(
        "at schema 0007, but this code expects" in r and "restart the dashboard" in r
        for r in reasons
    )


def test_a_bad_time_is_refused(cli):
    result = cli("health", "--at", "tomorrow")
    assert result.exit_code == 2 and "YYYY-MM-DD HH:MM" in result.stderr
