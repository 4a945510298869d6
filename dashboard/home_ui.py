"""Helpers for the Home and Scheduler pages: whose notices, scheduler health in words."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from reports.staff import staff_directory
from schoolcomms.settings import Settings
from schoolcomms.warehouse import NoWarehouse, Warehouse

EVERYONE = "Everyone (all notices)"
DATA_MANAGERS = "Data managers"
SOURCES: dict[str, str] = {
    "alert": "Alert",
    "register_reminder": "Register reminder",
    "register_escalation": "Missing register (escalated)",
    "data": "Data",
}
# (staff_id, audiences, everyone) for each choice of whose notices to show.
Viewer = tuple[str | None, list[str], bool]


def viewer_choices(warehouse: Warehouse) -> dict[str, Viewer]:
    """Everyone, the data managers, then each staff member by name."""
    choices: dict[str, Viewer] = {
        EVERYONE: (None, [], True),
        DATA_MANAGERS: (None, ["data_manager"], False),
    }
    try:
        staff = staff_directory(warehouse)
    except NoWarehouse:
        return choices
    for row in staff.itertuples(index=False):
        choices[f"{row.name} ({row.staff_id})"] = (str(row.staff_id), [], False)
    return choices


def job_status_frame(engine: Engine, settings: Settings) -> pd.DataFrame:
    """:func:`scheduler.status.job_status` with times in UK local time for display."""
    from scheduler.status import job_status

    frame = job_status(engine, settings)
    for column in ("last_slot", "last_started_at", "last_finished_at", "next_due"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert("Europe/London")
    return frame


def scheduler_health(engine: Engine, settings: Settings) -> None:
    """A warning on the homepage when a job is overdue or its last run failed."""
    try:
        status = job_status_frame(engine, settings)
    except Exception as exc:  # the settings may name a bad schedule: say so, do not fail
        st.warning(f"The scheduler's status cannot be shown: {exc}")
        return
    overdue = status[status["overdue"]]["job"].tolist()
    failed = status[status["last_outcome"] == "error"]["job"].tolist()
    if overdue:
        st.warning(
            f"Scheduler jobs overdue: {', '.join(overdue)}. Is the scheduler running? "
            "Start it with `schoolcomms scheduler` (see the Scheduler page).",
            icon=":material/schedule:",
        )
    if failed:
        st.error(
            f"The last run of {', '.join(failed)} failed; the Scheduler page shows the error.",
            icon=":material/error:",
        )


def runs_table(runs: list[Any]) -> pd.DataFrame:
    """Job runs as a display table (UK local times)."""
    rows = [
        {
            "job": r.job,
            "slot": r.slot,
            "started": r.started_at,
            "finished": r.finished_at,
            "outcome": r.outcome,
            "detail": r.detail,
            "counts": ", ".join(f"{k}={v}" for k, v in (r.counts or {}).items()),
            "error": (r.error or "").splitlines()[0] if r.error else "",
        }
        for r in runs
    ]
    frame = pd.DataFrame(
        rows,
        columns=["job", "slot", "started", "finished", "outcome", "detail", "counts", "error"],
    )
    for column in ("slot", "started", "finished"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert("Europe/London")
    return frame
