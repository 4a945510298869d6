"""Helpers for the "Grades" page: cached reads, who sees which grades, tables and a chart."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.common import _warehouse_for
from reports import grades as grade_reports

TTL_SECONDS = 300
# Roles that see every grade; a teacher with none of them sees their own classes' only.
ALL_GRADES_ROLES = ("admin", "senior_leader", "pastoral")
QUERY_COLUMNS = {
    "id": "Query",
    "created_at": "Asked",
    "about": "About",
    "current_value": "Grade then",
    "question": "Question",
    "created_by": "Asked by",
    "to_name": "Teacher",
    "status": "Status",
    "answer": "Answer",
    "answered_by": "Answered by",
    "answered_at": "Answered",
}


def sees_all_grades(roles: Iterable[str]) -> bool:
    """Whether these roles see every grade (else only the grades of one's own classes)."""
    return bool(set(roles) & set(ALL_GRADES_ROLES))


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Reading the grades…")
def grades(data_dir: str, generation: int, teacher_staff_id: str | None) -> pd.DataFrame:
    """:func:`reports.grades.grades` for ``generation`` of ``data_dir``."""
    return grade_reports.grades(_warehouse_for(data_dir), teacher_staff_id=teacher_staff_id)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def options(data_dir: str, generation: int, teacher_staff_id: str | None) -> dict[str, list[str]]:
    """:func:`reports.grades.grade_options` of :func:`grades` (the same arguments)."""
    return grade_reports.grade_options(grades(data_dir, generation, teacher_staff_id))


def fingerprint(*values: Any) -> str:
    """A short digest of the filters, to notice when they change."""
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def selected_rows(shown: pd.DataFrame, selection: Any) -> pd.DataFrame:
    """The rows of ``shown`` selected in its table (none when nothing is selected)."""
    rows: list[Any] = []
    if selection:
        try:
            rows = list(selection["selection"]["rows"])
        except (KeyError, TypeError):
            rows = list(getattr(getattr(selection, "selection", None), "rows", []) or [])
    picked = [r for r in rows if isinstance(r, int) and 0 <= r < len(shown)]
    return shown.iloc[picked]


def counts_chart(counts: pd.DataFrame) -> alt.Chart:
    """Bars: how many of each grade, one colour per subject."""
    order = sorted(counts["grade"].astype(str).unique())
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("grade:N", sort=order, title="Grade"),
            y=alt.Y("grades:Q", title="Grades", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("subject:N", title="Subject"),
            tooltip=[
                alt.Tooltip("subject:N", title="Subject"),
                alt.Tooltip("grade:N", title="Grade"),
                alt.Tooltip("grades:Q", title="Grades"),
            ],
        )
    )


def queries_frame(queries: pd.DataFrame) -> pd.DataFrame:
    """Queries from :func:`senders.queries.queries_for` as shown: the columns of
    :data:`QUERY_COLUMNS`, newest first, times in UK local time."""
    frame = queries.copy()
    if frame.empty:
        return pd.DataFrame(columns=list(QUERY_COLUMNS))
    for column in ("created_at", "answered_at"):
        values = pd.to_datetime(frame[column], utc=True)
        frame[column] = values.dt.tz_convert("Europe/London").dt.tz_localize(None)
    frame = frame.sort_values("created_at", ascending=False, kind="stable")
    return frame[list(QUERY_COLUMNS)].reset_index(drop=True)


def open_queries(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The queries of :func:`queries_frame` still waiting for an answer, oldest first."""
    waiting = frame[frame["status"] == "open"]
    return list(reversed(waiting.to_dict("records")))


def grade_ids(rows: pd.DataFrame) -> list[str]:
    """The grade ids of the selected rows."""
    return [str(g) for g in rows["grade_id"]]
