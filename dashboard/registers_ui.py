"""Helpers for the "Missing registers" page: cached reads, tables and charts.

Reads are cached per data directory, warehouse generation and minute: a generation
never changes, and "as of now" moves on each minute, so an entry is right for that
minute only (and expires after a minute anyway).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.common import _warehouse_for
from reports import registers
from scheduler.freshness import check_freshness
from senders.notices import StaffNotice

UK = ZoneInfo("Europe/London")
TTL_SECONDS = 60
PERIODS = {"today": "Today", "week": "This week"}
LESSON_COLUMNS = {
    "date": "Date",
    "start": "Start",
    "class_id": "Class",
    "what": "Lesson",
    "room": "Room",
    "teacher": "Teacher",
    "minutes_missing": "Minutes missing",
    "lesson_id": "Lesson id",
}


def local_now() -> dt.datetime:
    """The current UK local time, naive and to the minute (as the warehouse keeps time)."""
    return dt.datetime.now(UK).replace(tzinfo=None, second=0, microsecond=0)


def period_bounds(period: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of "today" or "this week" (Monday to Sunday)."""
    if period == "week":
        monday = today - dt.timedelta(days=today.weekday())
        return monday, monday + dt.timedelta(days=6)
    return today, today


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Looking for missing registers…")
def missing(
    data_dir: str, generation: int, start: dt.date, end: dt.date, at: dt.datetime, after: int
) -> pd.DataFrame:
    """:func:`reports.registers.missing_registers` for ``generation`` of ``data_dir``."""
    return registers.missing_registers(
        _warehouse_for(data_dir), start=start, end=end, at=at, after_minutes=after
    )


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def freshness(
    data_dir: str, generation: int, at: dt.datetime, max_minutes: int
) -> tuple[bool, str]:
    """Whether the registers are fresh at ``at`` (scheduler.freshness), and why not."""
    guard = check_freshness(_warehouse_for(data_dir), at, dt.timedelta(minutes=max_minutes))
    return guard.fresh, guard.reason


def teacher_label(row: dict[str, Any]) -> str:
    """A teacher's name for tables and charts, saying so when it is unknown."""
    if not row["staff_id"]:
        return "(no teacher in the timetable)"
    return row["teacher"] or f"{row['staff_id']} (not in the staff extract)"


def department_label(name: str) -> str:
    """A department's name; registration sessions have none."""
    return name or "(registration sessions)"


def lesson_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The missing lessons as shown (and selected) on the page, in the frame's order."""
    rows = []
    for row in frame.to_dict("records"):
        if row["kind"] == "session":
            what = f"{row['period'] or 'Registration'} session"
        else:
            period = f", period {row['period']}" if row["period"] else ""
            what = f"{row['subject'] or 'No subject'}{period}"
        rows.append(
            {
                "date": pd.Timestamp(row["date"]).date(),
                "start": row["start_time"].strftime("%H:%M")
                if hasattr(row["start_time"], "strftime")
                else str(row["start_time"])[:5],
                "class_id": row["class_id"],
                "what": what,
                "room": row["room"],
                "teacher": teacher_label(row),
                "minutes_missing": int(row["minutes_missing"]),
                "lesson_id": row["lesson_id"],
            }
        )
    return pd.DataFrame(rows, columns=list(LESSON_COLUMNS))


def by_teacher(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`reports.registers.missing_by_teacher` with readable names."""
    table = registers.missing_by_teacher(frame)
    table["teacher"] = [teacher_label(r) for r in table.to_dict("records")]
    table["department"] = table["department"].map(lambda d: d or "(registration sessions)")
    return table


def by_department(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`reports.registers.missing_by_department` with readable names."""
    table = registers.missing_by_department(frame)
    table["department"] = table["department"].map(department_label)
    return table


def bar_chart(table: pd.DataFrame, category: str, title: str, limit: int = 20) -> alt.Chart:
    """Horizontal bars of ``missing`` per ``category``, most first (the top ``limit``)."""
    top = table.head(limit)
    return (
        alt.Chart(top)
        .mark_bar()
        .encode(
            y=alt.Y(f"{category}:N", sort=list(top[category]), title=title),
            x=alt.X("missing:Q", title="Missing registers", axis=alt.Axis(tickMinStep=1)),
            tooltip=[
                alt.Tooltip(f"{category}:N", title=title),
                alt.Tooltip("missing:Q", title="Missing registers"),
            ],
        )
    )


def selected_lessons(shown: pd.DataFrame, selection: Any) -> list[str]:
    """The lesson ids of the rows selected in the lesson table."""
    rows: list[Any] = []
    if selection:
        try:
            rows = list(selection["selection"]["rows"])
        except (KeyError, TypeError):
            rows = list(getattr(getattr(selection, "selection", None), "rows", []) or [])
    picked = [r for r in rows if isinstance(r, int) and 0 <= r < len(shown)]
    return [str(i) for i in shown.iloc[picked]["lesson_id"]]


def sent_table(notices: Sequence[StaffNotice], frame: pd.DataFrame) -> pd.DataFrame:
    """What "Remind selected" delivered: to whom, about which lesson, by e-mail or not."""
    names = {r["lesson_id"]: r for r in frame.to_dict("records")}
    rows = []
    for notice in notices:
        row = names.get(notice.lesson_id or "")
        if notice.audience:
            to = "Data managers (no teacher in the timetable)"
        else:
            to = teacher_label(row) if row else str(notice.staff_id)
        rows.append(
            {
                "to": to,
                "lesson": notice.title.split(": ", 1)[-1],
                "email": notice.email or "homepage only",
            }
        )
    return pd.DataFrame(rows, columns=["to", "lesson", "email"])
