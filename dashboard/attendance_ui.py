"""Helpers for the Attendance page: cached reads, table shaping, charts and Compose prefills.

Warehouse reads are cached per data directory, warehouse generation and day (a
generation never changes once published; the Data loads page clears the caches after a
load). What was sent or recorded today lives in the ops store and changes all day, so
it is read fresh on every run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard.common import _warehouse_for
from reports import attendance, attendance_today
from schoolcomms.warehouse import Warehouse

TTL_SECONDS = 300
SOURCE = "Attendance"
VIEWS = {
    "today": "Absences",
    "first_day": "First day of absence",
    "unexplained": "N codes to chase",
    "persistent": "Persistent absence",
    "trends": "Trends",
    "queries": "My mark queries",
}
PUPIL_COLUMNS = {
    "name": "Pupil",
    "student_id": "Student ID",
    "year_group": "Year",
    "form": "Form",
    "codes": "Codes",
    "marks": "Absent from",
    "first_absent": "First absent",
    "whole_day": "All day",
    "contacted": "Contacted today",
}
FIRST_DAY_COLUMNS = {**PUPIL_COLUMNS, "previous_day": "Previous day"}
MARK_COLUMNS = {
    "date": "Date",
    "start": "Start",
    "name": "Pupil",
    "student_id": "Student ID",
    "year_group": "Year",
    "form": "Form",
    "register": "Register",
    "mark": "Mark",
    "comment": "Comment",
    "teacher": "Register taken by",
    "days_old": "Days old",
    "lesson_id": "Lesson id",
}
PERSISTENT_COLUMNS = {
    "name": "Pupil",
    "student_id": "Student ID",
    "year_group": "Year",
    "form": "Form",
    "percent": "Attendance %",
    "possible": "Possible",
    "attended": "Attended",
    "authorised": "Authorised absence",
    "unauthorised": "Unauthorised absence",
}
QUERY_COLUMNS = {
    "id": "Query",
    "created_at": "Asked",
    "about": "About",
    "to_name": "Teacher",
    "question": "Question",
    "status": "Status",
    "answer": "Answer",
}


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Reading the day's absences…")
def absences(data_dir: str, generation: int, day: dt.date, extra: str) -> pd.DataFrame:
    """:func:`reports.attendance_today.absences_on` for ``generation`` of ``data_dir``."""
    return attendance_today.absences_on(_warehouse_for(data_dir), day, extra_codes=extra)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def absence_marks(data_dir: str, generation: int, day: dt.date, extra: str) -> pd.DataFrame:
    """:func:`reports.attendance_today.absence_marks` for ``generation`` of ``data_dir``."""
    return attendance_today.absence_marks(_warehouse_for(data_dir), day, extra_codes=extra)


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Looking for first days of absence…")
def first_days(data_dir: str, generation: int, day: dt.date, extra: str) -> pd.DataFrame:
    """:func:`reports.attendance_today.first_day_absences` (from the cached absences)."""
    return attendance_today.first_day_absences(
        _warehouse_for(data_dir),
        day,
        extra_codes=extra,
        absences=absences(data_dir, generation, day, extra),
    )


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def unexplained(data_dir: str, generation: int, day: dt.date, days: int) -> pd.DataFrame:
    """:func:`reports.attendance_today.unexplained_marks` (code N) up to ``day``."""
    return attendance_today.unexplained_marks(_warehouse_for(data_dir), day, days)


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Working out persistent absence…")
def persistent(
    data_dir: str, generation: int, day: dt.date, threshold: float, extra: str
) -> pd.DataFrame:
    """:func:`reports.attendance.persistent_absentees` from 1 September to ``day``."""
    start = attendance.academic_year_start(day)
    frame = attendance.persistent_absentees(
        _warehouse_for(data_dir), start, day, threshold, extra_codes=extra
    )
    frame.insert(0, "name", (frame["forename"].fillna("") + " " + frame["surname"]).str.strip())
    return frame


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Drawing the term's trends…")
def trends(data_dir: str, generation: int, day: dt.date, extra: str) -> pd.DataFrame:
    """Daily attendance per year group this term: date, year_group, possible, attended, percent."""
    return attendance_today.daily_attendance(
        _warehouse_for(data_dir),
        attendance_today.term_start(day),
        day,
        by_year_group=True,
        extra_codes=extra,
    )


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def day_overall(data_dir: str, generation: int, day: dt.date, extra: str) -> dict[str, Any]:
    """:func:`reports.attendance.overall_attendance` for one day."""
    return attendance.overall_attendance(_warehouse_for(data_dir), day, day, extra_codes=extra)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def latest_day(data_dir: str, generation: int, day: dt.date) -> dt.date | None:
    """The last day with registers on or before ``day`` (for the empty state)."""
    return attendance_today.latest_register_day(_warehouse_for(data_dir), day)


def with_contacts(
    frame: pd.DataFrame, engine: Engine, warehouse: Warehouse, day: dt.date
) -> pd.DataFrame:
    """``frame`` (pupils) with ``contacted``: who was contacted on ``day`` and how."""
    found = attendance_today.contacted_on(engine, warehouse, frame["student_id"], day)
    out = frame.merge(found, on="student_id", how="left")
    out["contacted"] = out["contacted"].fillna("")
    out["contacts"] = out["contacts"].fillna(0).astype(int)
    return out


def daily_overall(by_year: pd.DataFrame) -> pd.DataFrame:
    """The whole school's daily figure from :func:`trends`: date, possible, attended, percent."""
    if by_year.empty:
        return pd.DataFrame(columns=["date", "possible", "attended", "percent"])
    day = by_year.groupby("date", as_index=False)[["possible", "attended"]].sum()
    day["percent"] = (100.0 * day["attended"] / day["possible"]).round(1)
    return day


def line_chart(frame: pd.DataFrame, *, colour: str | None = None) -> alt.Chart:
    """Attendance % per day as a line (one per ``colour`` value, e.g. year group)."""
    tooltip = [
        alt.Tooltip("date:T", title="Day", format="%a %d %b"),
        alt.Tooltip("percent:Q", title="Attendance %"),
        alt.Tooltip("possible:Q", title="Possible"),
    ]
    encoding: dict[str, Any] = {
        "x": alt.X("date:T", title=None, axis=alt.Axis(format="%d %b")),
        "y": alt.Y("percent:Q", title="Attendance %", scale=alt.Scale(zero=False)),
    }
    if colour:
        encoding["color"] = alt.Color(f"{colour}:N", title="Year", sort=None)
        tooltip.insert(0, alt.Tooltip(f"{colour}:N", title="Year"))
    return alt.Chart(frame).mark_line(point=True).encode(**encoding, tooltip=tooltip)


def count_chart(frame: pd.DataFrame, column: str, title: str, what: str) -> alt.Chart:
    """Bars of how many rows of ``frame`` there are per ``column`` value, most first."""
    counts = (
        frame.assign(**{column: frame[column].fillna("(none)").astype(str)})
        .groupby(column, as_index=False)
        .size()
        .rename(columns={"size": "count"})
        .sort_values(["count", column], ascending=[False, True])
        .head(20)
    )
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            y=alt.Y(f"{column}:N", sort=list(counts[column]), title=title),
            x=alt.X("count:Q", title=what, axis=alt.Axis(tickMinStep=1)),
            tooltip=[alt.Tooltip(f"{column}:N", title=title), alt.Tooltip("count:Q", title=what)],
        )
    )


def shown(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The columns of ``frame`` a table shows, in order (those it has)."""
    return frame[[c for c in columns if c in frame.columns]].reset_index(drop=True)


def selected(frame: pd.DataFrame, selection: Any) -> pd.DataFrame:
    """The rows of ``frame`` selected in its ``st.dataframe`` (a selection state or None)."""
    rows: list[Any] = []
    if selection:
        try:
            rows = list(selection["selection"]["rows"])
        except (KeyError, TypeError):
            rows = list(getattr(getattr(selection, "selection", None), "rows", []) or [])
    picked = [r for r in rows if isinstance(r, int) and 0 <= r < len(frame)]
    return frame.iloc[picked]


def student_ids(rows: pd.DataFrame) -> list[str]:
    """The distinct student ids of ``rows``, in order."""
    return list(dict.fromkeys(str(s) for s in rows["student_id"]))


def prefill(ids: Iterable[str], channel: str, note: str) -> dict[str, Any]:
    """The ``compose_prefill`` handing these pupils to Compose."""
    return {"student_ids": list(ids), "channel": channel, "source": SOURCE, "note": note}


def mark_pairs(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(student_id, lesson_id) of the selected marks, each once."""
    return list(dict.fromkeys(zip(rows["student_id"], rows["lesson_id"], strict=True)))


def _filled(value: Any) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def teacher_names(rows: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(student_id, lesson_id) → who took the register (name, else staff id)."""
    return {
        (str(r["student_id"]), str(r["lesson_id"])): _filled(r.get("teacher"))
        or _filled(r.get("teacher_id"))
        for r in rows.to_dict("records")
    }


def queries_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A query inbox as shown: UK local times, the columns of :data:`QUERY_COLUMNS`."""
    out = shown(frame, QUERY_COLUMNS)
    if not out.empty:
        out["created_at"] = (
            pd.to_datetime(out["created_at"], utc=True)
            .dt.tz_convert(attendance_today.UK)
            .dt.strftime("%a %d %b %H:%M")
        )
    return out
