"""Helpers for the Home and Scheduler pages: my notices, registers and calendar; scheduler health.

Cached reads are keyed on what makes them right: the data directory, warehouse generation
and minute for registers; the calendar's address or file and the day for calendars (a
feed is fetched again after :data:`CALENDAR_TTL_SECONDS`, a broken one too).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard.common import _warehouse_for, get_settings
from dashboard.registers_ui import lesson_table
from reports import registers
from reports.calendar import CalendarError, events_frame, fetch_ics, upcoming_events
from schoolcomms.auth import SignedIn
from schoolcomms.roles import can
from schoolcomms.settings import Settings
from senders.notices import AUDIENCES

UK = ZoneInfo("Europe/London")
MINE = "mine"
EVERYONE = "everyone"
VIEWS = {MINE: "My notices", EVERYONE: "Everyone's notices"}
SOURCES: dict[str, str] = {
    "alert": "Alert",
    "register_reminder": "Register reminder",
    "register_escalation": "Missing register (escalated)",
    "data": "Data",
    "assistance": "Assistance request",
    "referral": "Referral",
}
AUDIENCE_NAMES = {
    "admin": "administrators",
    "senior_leader": "senior leaders",
    "attendance_officer": "attendance officers",
    "data_manager": "data managers",
    "pastoral": "pastoral staff",
    "teacher": "all teachers",
    "office": "office staff",
}
REGISTERS_TTL_SECONDS = 60
CALENDAR_TTL_SECONDS = 300
REGISTER_COLUMNS = {
    "start": "Start",
    "class_id": "Class",
    "what": "Lesson",
    "room": "Room",
    "minutes_missing": "Minutes missing",
}
EVENT_COLUMNS: dict[str, Any] = {
    "day": st.column_config.TextColumn("Day", width="small"),
    "time": st.column_config.TextColumn("Time", width="small"),
    "title": st.column_config.TextColumn("Event", width="large"),
    "location": st.column_config.TextColumn("Where", width="medium"),
    "calendar": st.column_config.TextColumn("Calendar", width="small"),
}


def notice_scope(user: SignedIn, view: str) -> dict[str, Any]:
    """Arguments of ``notices_for`` for ``user``: their own and their roles' notices.

    ``view`` :data:`EVERYONE` gives every notice, but only to accounts that may
    ``notices.read_all``; anyone else gets their own whatever they asked for.
    """
    if view == EVERYONE and can(user.roles, "notices.read_all"):
        return {"staff_id": None, "audiences": [], "everyone": True}
    audiences = [r for r in user.roles if r in AUDIENCES]
    return {"staff_id": user.staff_id, "audiences": audiences, "everyone": False}


def when(value: dt.datetime) -> str:
    """An aware time in UK local time, e.g. "Fri 20 Nov 10:35"."""
    return pd.Timestamp(value).tz_convert(UK).strftime("%a %d %b %H:%M")


def text_of(value: Any) -> str:
    """A table cell as text: '' for None, NaN and NA."""
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()


def plain(text: str) -> str:
    """``text`` typed by someone, escaped so that Markdown shows it as written."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~])", r"\\\1", str(text or ""))


def notice_line(notice: dict[str, Any], staff_id: str | None) -> str:
    """A notice's time, kind and addressee, e.g. "Fri 20 Nov 10:35 · Alert · to you"."""
    source = SOURCES.get(notice["source"], notice["source"])
    to = notice["to"]
    if staff_id and to == staff_id:
        whom = "to you"
    elif to in AUDIENCE_NAMES:
        whom = f"to {AUDIENCE_NAMES[to]}"
    else:
        whom = f"to {to}"
    return f"{when(notice['created_at'])} · {source} · {whom}"


def minutes_ago(value: dt.datetime, now: dt.datetime) -> str:
    """How long ago an aware time was, in words: "just now", "4 min ago", "2 h 5 min ago"."""
    minutes = max(int((now - value).total_seconds() // 60), 0)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    return f"{minutes // 60} h {minutes % 60} min ago"


def day_label(day: dt.date, today: dt.date) -> str:
    """ "Today", "Tomorrow", or e.g. "Wed 25 Nov"."""
    if day == today:
        return "Today"
    if day == today + dt.timedelta(days=1):
        return "Tomorrow"
    return f"{day:%a %d %b}"


@st.cache_data(ttl=REGISTERS_TTL_SECONDS, show_spinner=False)
def my_missing_registers(
    data_dir: str, generation: int, staff_id: str, at: dt.datetime
) -> pd.DataFrame:
    """Today's lessons of ``staff_id`` that started by ``at`` (naive UK) with no register."""
    frame = registers.missing_registers(
        _warehouse_for(data_dir), start=at.date(), end=at.date(), at=at
    )
    mine = frame[frame["staff_id"] == staff_id]
    return lesson_table(mine)[list(REGISTER_COLUMNS)]


@st.cache_data(ttl=CALENDAR_TTL_SECONDS, show_spinner="Reading your calendar…")
def calendar_events(
    kind: str,
    url: str | None,
    content: str | None,
    name: str,
    today: dt.date,
    allow_private: bool = False,
) -> tuple[pd.DataFrame, str]:
    """One calendar's events of today and the next 7 days, and a problem in words ('' if none).

    A feed is fetched here, so a slow or broken one is tried again only when the entry
    expires, not on every click.
    """
    try:
        text = (
            fetch_ics(url or "", allow_private=allow_private) if kind == "url" else (content or "")
        )
        found = upcoming_events(text, today=today, source=name)
    except CalendarError as exc:
        return events_frame([]), str(exc)
    return events_frame(found, today=today), ""


def all_events(
    sources: list[dict[str, Any]], today: dt.date
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The events of all the user's calendars as shown, and each calendar's problem."""
    frames: list[pd.DataFrame] = []
    problems: list[tuple[str, str]] = []
    for source in sources:
        frame, problem = calendar_events(
            source["kind"],
            source["url"],
            source["content"],
            source["name"],
            today,
            bool(get_settings()["calendar_allow_private_hosts"]),
        )
        if problem:
            problems.append((source["name"], problem))
        if not frame.empty:
            frames.append(frame)
    merged = pd.concat(frames, ignore_index=True) if frames else events_frame([])
    return events_table(merged, today), problems


def events_table(frame: pd.DataFrame, today: dt.date) -> pd.DataFrame:
    """Events as shown: day label, time of day, title, place, calendar; in order of start."""
    rows = []
    for row in frame.sort_values(
        ["day", "all_day", "start"], ascending=[True, False, True]
    ).to_dict("records"):
        start, end = row["start"], row["end"]
        if row["all_day"]:
            days = (end.date() - start.date()).days
            time = (
                "All day" if days <= 1 else f"All day, until {end - dt.timedelta(days=1):%a %d %b}"
            )
        elif end == start:
            time = f"{start:%H:%M}"
        elif end.date() != start.date():
            time = f"{start:%H:%M} – {end:%a %d %b %H:%M}"
        else:
            time = f"{start:%H:%M} – {end:%H:%M}"
        rows.append(
            {
                "day": day_label(row["day"], today),
                "time": time,
                "title": row["title"],
                "location": ", ".join(p.strip() for p in row["location"].splitlines() if p.strip()),
                "calendar": row["calendar"],
            }
        )
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS))


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
