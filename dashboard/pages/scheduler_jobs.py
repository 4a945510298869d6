"""Scheduler: each job's schedule (from the settings), last run and outcome, and history."""

from __future__ import annotations

import streamlit as st

from dashboard import home_ui
from dashboard.common import (
    download,
    get_ops_engine,
    get_settings,
    require_page,
    run_or_stop,
)
from scheduler.status import recent_runs

ALL_JOBS = "All jobs"


def main() -> None:
    """The job table, a warning for overdue or failed jobs, and recent runs."""
    require_page("scheduler")
    settings = get_settings()
    engine = get_ops_engine()
    st.title("Scheduler")
    st.caption(
        "The scheduler is a separate process (`schoolcomms scheduler`, started by `make run`). "
        "Schedules are settings (`schedule_*`, see docs/settings.md); every run is recorded."
    )
    status = run_or_stop("read the scheduler's status", home_ui.job_status_frame, engine, settings)
    home_ui.scheduler_health(engine, settings)
    st.dataframe(
        status,
        hide_index=True,
        width="stretch",
        column_config={
            "job": "Job",
            "schedule": "Schedule",
            "catch_up": st.column_config.TextColumn("After downtime", width="large"),
            "last_slot": st.column_config.DatetimeColumn("Last slot", format="ddd D MMM HH:mm"),
            "last_started_at": None,
            "last_finished_at": st.column_config.DatetimeColumn(
                "Last finished", format="ddd D MMM HH:mm:ss"
            ),
            "last_outcome": "Last outcome",
            "last_detail": st.column_config.TextColumn("Last detail", width="large"),
            "last_error": st.column_config.TextColumn("Last error", width="medium"),
            "next_due": st.column_config.DatetimeColumn("Next due", format="ddd D MMM HH:mm"),
            "overdue": st.column_config.CheckboxColumn("Overdue"),
        },
    )
    download(status, "scheduler-jobs.csv", "scheduler_jobs_csv")
    st.subheader("Recent runs")
    left, right = st.columns(2)
    job = left.selectbox("Job", [ALL_JOBS, *status["job"].tolist()])
    problems_only = right.toggle("Errors and skipped runs only")
    runs = recent_runs(
        engine,
        job=None if job == ALL_JOBS else job,
        outcomes=("error", "skipped") if problems_only else (),
    )
    if not runs:
        st.info("No runs recorded yet: start the scheduler (`schoolcomms scheduler`).")
        return
    table = home_ui.runs_table(runs)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "slot": st.column_config.DatetimeColumn("Slot", format="ddd D MMM HH:mm:ss"),
            "started": st.column_config.DatetimeColumn("Started", format="HH:mm:ss"),
            "finished": st.column_config.DatetimeColumn("Finished", format="HH:mm:ss"),
        },
    )
    download(table, "scheduler-runs.csv", "scheduler_runs_csv")
    errors = [r for r in runs if r.error]
    if errors:
        with st.expander(f"Newest error in full ({errors[0].job}, run {errors[0].id})"):
            st.code(errors[0].error or "", language=None)


main()
