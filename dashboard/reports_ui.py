"""Helpers for the Weekly reports page: cached report previews and the schedule table.

Reports built from the warehouse are cached per data directory, warehouse generation,
report and week, and a report "as of now" (missing registers) per minute too, so its
preview is at most a minute old; the messages report reads the ops store, which
changes all the time, so it is built afresh on every run of the page.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard.common import _ops_engine_for, _settings_for, _warehouse_for
from reports.weekly import REPORTS, ReportContent, build_report
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders.report_schedules import WEEKDAYS

TTL_SECONDS = 300
SCHEDULE_COLUMNS = [
    "id",
    "title",
    "recipients",
    "day",
    "time",
    "enabled",
    "last_sent_at",
    "next_send",
]


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Building the report…")
def _warehouse_report(
    data_dir: str, generation: int, name: str, week_start: str, at: str | None, _now: str
) -> ReportContent:
    # ``at`` keys the cache (None: the report does not depend on it); ``_now`` is the
    # moment given to the builder all the same.
    settings = _settings_for(data_dir)
    engine = _ops_engine_for(settings.resolved_ops_url, data_dir)
    return build_report(
        name,
        settings,
        _warehouse_for(data_dir),
        engine,
        dt.date.fromisoformat(week_start),
        dt.datetime.fromisoformat(at or _now),
    )


def report_preview(
    settings: Settings,
    warehouse: Warehouse,
    engine: Engine,
    name: str,
    week_start: dt.date,
    at: dt.datetime,
    generation: int | None,
) -> ReportContent:
    """The report ``name`` for the week, as of ``at`` (naive UK, to the minute)."""
    report = REPORTS.get(name)
    if report is not None and report.needs_warehouse and generation is not None:
        moment = at.isoformat()
        return _warehouse_report(
            str(settings.data_dir),
            generation,
            name,
            week_start.isoformat(),
            moment if report.as_of else None,
            moment,
        )
    return build_report(name, settings, warehouse, engine, week_start, at)


def preview_key(
    settings: Settings, name: str, week_start: dt.date, at: dt.datetime, generation: int | None
) -> tuple[str, ...] | None:
    """What identifies the preview :func:`report_preview` returns for these arguments
    (None when it is built afresh on every run)."""
    report = REPORTS.get(name)
    if report is None or not report.needs_warehouse or generation is None:
        return None
    moment = at.isoformat() if report.as_of else ""
    return (str(settings.data_dir), str(generation), name, week_start.isoformat(), moment)


def schedule_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The schedules as shown: last sent in London time, the columns the page lists."""
    shown = frame[SCHEDULE_COLUMNS].copy()
    shown["last_sent_at"] = (
        pd.to_datetime(shown["last_sent_at"], utc=True)
        .dt.tz_convert("Europe/London")
        .dt.tz_localize(None)
    )
    return shown


def schedule_label(row: pd.Series) -> str:
    """``Weekly attendance — Monday 07:00 (off)`` for the schedule picker."""
    state = "" if row["enabled"] else " (off)"
    return f"{row['title']} — {row['day']} {row['time']}{state}"


def weekday_index(day: str) -> int:
    """The position of a weekday's name in :data:`WEEKDAYS` (Monday = 0)."""
    return WEEKDAYS.index(day)


__all__ = [
    "SCHEDULE_COLUMNS",
    "preview_key",
    "report_preview",
    "schedule_label",
    "schedule_table",
    "weekday_index",
]
