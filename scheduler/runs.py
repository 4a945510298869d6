"""The ``job_runs`` table: start, finish and look up scheduler job runs.

A run is written as ``running`` before the job starts and completed after it ends, so
a run the process never finished stays visible (and is marked "error" by the next
scheduler to start, unless the process that started it is still alive on this machine:
several schedulers may share one ops store). The (job, slot) pair is unique: :func:`start_run` returns None
when the slot was already run, by this scheduler or any other sharing the ops store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from typing import Any

from sqlalchemy import Engine, delete, func, select, update

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import JOB_OUTCOMES, JobRun
from senders.outbox import insert_ignoring_conflicts

INTERRUPTED = "interrupted: the scheduler stopped before this run finished"


def _plain_counts(counts: dict[str, Any] | None) -> dict[str, Any]:
    """Counts as JSON-safe values (dates and numpy numbers become text or numbers)."""
    return json.loads(json.dumps(counts or {}, default=str))


def start_run(
    engine: Engine, job: str, slot: dt.datetime, started_at: dt.datetime, worker: str
) -> int | None:
    """Record that ``job`` starts for ``slot``; None if that slot was already run."""
    with session_scope(engine) as session:
        insert = insert_ignoring_conflicts(session, JobRun.__table__, ["job", "slot"])
        result = session.connection().execute(
            insert.returning(JobRun.__table__.c.id),
            {
                "job": job,
                "slot": slot,
                "started_at": started_at,
                "outcome": "running",
                "counts": {},
                "detail": "",
                "worker": worker,
            },
        )
        row = result.first()
        return None if row is None else int(row[0])


def finish_run(
    engine: Engine,
    run_id: int,
    outcome: str,
    finished_at: dt.datetime,
    *,
    counts: dict[str, Any] | None = None,
    detail: str = "",
    error: str | None = None,
) -> None:
    """Complete the run ``run_id`` with its outcome ("ok", "error" or "skipped")."""
    if outcome not in JOB_OUTCOMES or outcome == "running":
        raise ValueError(f"A finished run's outcome is ok, error or skipped, not {outcome!r}")
    with session_scope(engine) as session:
        session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(
                outcome=outcome,
                finished_at=finished_at,
                counts=_plain_counts(counts),
                detail=detail,
                error=error,
            )
        )


def record_skipped(
    engine: Engine,
    job: str,
    slot: dt.datetime,
    at: dt.datetime,
    worker: str,
    detail: str,
    counts: dict[str, Any] | None = None,
) -> int | None:
    """Record a slot that was skipped without running the job; None if already recorded."""
    run_id = start_run(engine, job, slot, at, worker)
    if run_id is not None:
        finish_run(engine, run_id, "skipped", at, counts=counts, detail=detail)
    return run_id


def last_slots(engine: Engine) -> dict[str, dt.datetime]:
    """Each job's newest recorded slot, whatever its outcome."""
    with session_scope(engine, immediate=False) as session:
        rows = session.execute(select(JobRun.job, func.max(JobRun.slot)).group_by(JobRun.job))
        newest: dict[str, dt.datetime] = {}
        for job, slot in rows:
            if slot is None:
                continue
            # max() over a UTCDateTime column comes back as plain text or a naive value on
            # SQLite; read it back as the aware UTC datetime it was stored as.
            value = dt.datetime.fromisoformat(slot) if isinstance(slot, str) else slot
            newest[job] = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return newest


def alive_here(worker: str) -> bool:
    """Whether ``worker`` ("host:pid") names a process that is running on this machine."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def mark_interrupted(engine: Engine, at: dt.datetime) -> int:
    """Mark runs left ``running`` by a scheduler that died as "error"; return how many.

    A run whose scheduler process is still alive on this machine (another scheduler on
    the same ops store) is left alone. Whether a process on another machine is alive
    cannot be told from here, so such runs are marked (its own finish still records the
    real outcome).
    """
    with session_scope(engine) as session:
        running = session.execute(
            select(JobRun.id, JobRun.worker).where(JobRun.outcome == "running")
        ).all()
        dead = [run_id for run_id, worker in running if not alive_here(worker or "")]
        if not dead:
            return 0
        result = session.execute(
            update(JobRun)
            .where(JobRun.id.in_(dead), JobRun.outcome == "running")
            .values(outcome="error", finished_at=at, error=INTERRUPTED)
        )
        return int(result.rowcount or 0)


def prune(engine: Engine, before: dt.datetime) -> int:
    """Delete finished runs for slots before ``before``; return how many.

    Each job's newest run is always kept, so catch-up still knows where it stopped.
    """
    newest = select(func.max(JobRun.id)).group_by(JobRun.job)
    with session_scope(engine) as session:
        result = session.execute(
            delete(JobRun).where(
                JobRun.slot < before, JobRun.outcome != "running", JobRun.id.not_in(newest)
            )
        )
        return int(result.rowcount or 0)
