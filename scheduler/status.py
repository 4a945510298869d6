"""Each job's schedule, last run and next slot, for the dashboard."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine, func, select

from scheduler.jobs import JobSpec, build_jobs
from scheduler.slots import latest_slot, next_slot
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import JobRun, utcnow
from schoolcomms.settings import Settings, load_settings

# How late a job may be before it counts as overdue, and how long a run may take.
GRACE = dt.timedelta(minutes=1)
RUNNING_GRACE = dt.timedelta(hours=1)
STATUS_COLUMNS = [
    "job",
    "schedule",
    "catch_up",
    "last_slot",
    "last_started_at",
    "last_finished_at",
    "last_outcome",
    "last_detail",
    "last_error",
    "next_due",
    "overdue",
]


def _last_runs(engine: Engine) -> dict[str, JobRun]:
    newest = select(JobRun.job, func.max(JobRun.id).label("id")).group_by(JobRun.job).subquery()
    with session_scope(engine, immediate=False) as session:
        rows = session.scalars(select(JobRun).join(newest, JobRun.id == newest.c.id))
        return {run.job: run for run in rows}


def _next_due(spec: JobSpec, last: JobRun | None, now: dt.datetime) -> dt.datetime | None:
    due = latest_slot(spec.every, spec.window, now)
    missed = due is not None and (last is None or last.slot < due)
    if missed and (spec.catch_up is None or now - due <= spec.catch_up):
        return due
    return next_slot(spec.every, spec.window, now)


def _overdue(spec: JobSpec, last: JobRun | None, now: dt.datetime) -> bool:
    """Whether the job should have run by now and did not: no scheduler is running it."""
    if last is None:
        return False
    if last.outcome == "running":
        return last.started_at + max(spec.every, RUNNING_GRACE) < now
    first_missed = next_slot(spec.every, spec.window, last.slot)
    return first_missed is not None and first_missed + max(spec.every, GRACE) < now


def job_status(
    engine: Engine,
    settings: Settings | None = None,
    *,
    jobs: list[JobSpec] | None = None,
    now: dt.datetime | None = None,
) -> pd.DataFrame:
    """One row per job: schedule, catch-up rule, last run and its outcome, next due.

    ``last_outcome`` is "running" while a run is under way. ``next_due`` is the slot the
    job will run for next (a past slot if one is due and not yet run). ``overdue`` is
    true when a slot after the last run is more than an interval (at least a minute)
    late, or a run has been going for over an hour: no scheduler is running the job.
    ``settings`` default to :func:`schoolcomms.settings.load_settings`.
    """
    now = now or utcnow()
    specs = jobs if jobs is not None else build_jobs(settings or load_settings())
    last_runs = _last_runs(engine)
    rows = []
    for spec in specs:
        last = last_runs.get(spec.name)
        due = _next_due(spec, last, now)
        rows.append(
            {
                "job": spec.name,
                "schedule": spec.describe(),
                "catch_up": spec.catch_up_rule,
                "last_slot": last.slot if last else None,
                "last_started_at": last.started_at if last else None,
                "last_finished_at": last.finished_at if last else None,
                "last_outcome": last.outcome if last else None,
                "last_detail": last.detail if last else None,
                "last_error": last.error if last else None,
                "next_due": due,
                "overdue": _overdue(spec, last, now),
            }
        )
    frame = pd.DataFrame(rows, columns=STATUS_COLUMNS)
    for column in ("last_slot", "last_started_at", "last_finished_at", "next_due"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def recent_runs(
    engine: Engine,
    *,
    job: str | None = None,
    outcomes: tuple[str, ...] = (),
    limit: int = 200,
) -> list[JobRun]:
    """The newest job runs (of one job, with given outcomes), newest first."""
    query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if job:
        query = query.where(JobRun.job == job)
    if outcomes:
        query = query.where(JobRun.outcome.in_(outcomes))
    with session_scope(engine, immediate=False) as session:
        runs = list(session.scalars(query))
        session.expunge_all()
        return runs
