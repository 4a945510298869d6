"""Detentions for the Detentions page: upcoming (scheduled) and missed, with filters.

A detention's ``status`` is ``scheduled`` (the default when blank), ``attended``,
``missed`` or ``cancelled``, compared in lower case. Dates are the detention's own
(naive UK local); times are shown as ``HH:MM`` text. Pupils' year group and form are
today's. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pandas as pd

from reports.behaviour_pages import PUPIL_NAME, pupil_filters, pupil_options
from schoolcomms.warehouse import Warehouse

STATUSES = ("scheduled", "attended", "missed", "cancelled")
DETENTION_COLUMNS = (
    "detention_id",
    "date",
    "start_time",
    "end_time",
    "location",
    "reason",
    "status",
    "incident_id",
    "incident_type",
    "student_id",
    "name",
    "year_group",
    "form",
)
SESSION_COLUMNS = ("date", "start_time", "end_time", "location", "detentions", "pupils")
DAILY_COLUMNS = ("date", "status", "detentions")
STATUS = "coalesce(nullif(lower(trim(d.status)), ''), 'scheduled')"


def _clean(values: Iterable[Any]) -> list[str]:
    return sorted({str(v).strip() for v in values if v is not None and str(v).strip()})


def detentions(
    warehouse: Warehouse,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    statuses: Iterable[str] = (),
    locations: Iterable[str] = (),
    year_groups: Iterable[str] = (),
    forms: Iterable[str] = (),
    search: str = "",
) -> pd.DataFrame:
    """Detentions from ``start`` to ``end`` (both included, either open), filtered.

    Columns :data:`DETENTION_COLUMNS`, by date, start time, location and pupil name;
    ``incident_type`` is the type of the behaviour incident that led to it, if known.
    """
    if start and end and end < start:
        raise ValueError(f"The range ends ({end}) before it starts ({start}).")
    params: dict[str, Any] = {}
    where = ["true"]
    if start:
        params["start"] = start
        where.append("d.date >= $start")
    if end:
        params["end"] = end
        where.append("d.date <= $end")
    wanted = [s.lower() for s in _clean(statuses)]
    unknown = sorted(set(wanted) - set(STATUSES))
    if unknown:
        raise ValueError(f"Unknown detention status {unknown}; use {', '.join(STATUSES)}.")
    if wanted:
        params["statuses"] = wanted
        where.append(f"{STATUS} IN (SELECT unnest($statuses))")
    places = _clean(locations)
    if places:
        params["locations"] = places
        where.append("d.location IN (SELECT unnest($locations))")
    where += pupil_filters(
        params, year_groups=year_groups, forms=forms, search=search, id_column="d.student_id"
    )
    return warehouse.query(
        f"""
        SELECT d.detention_id, d.date,
               substr(CAST(d.start_time AS VARCHAR), 1, 5) AS start_time,
               substr(CAST(d.end_time AS VARCHAR), 1, 5) AS end_time,
               d.location, d.reason, {STATUS} AS status, d.incident_id,
               b.type AS incident_type, d.student_id, {PUPIL_NAME} AS name,
               nullif(s.year_group, '') AS year_group, nullif(s.form, '') AS form
        FROM detentions d
        LEFT JOIN students s ON s.student_id = d.student_id
        LEFT JOIN behaviour b ON b.incident_id = d.incident_id
        WHERE {" AND ".join(where)}
        ORDER BY d.date, d.start_time NULLS LAST, d.location NULLS LAST, s.surname,
                 s.forename, d.detention_id
        """,
        params,
    )


def upcoming(
    warehouse: Warehouse, today: dt.date, *, days: int = 14, **filters: Any
) -> pd.DataFrame:
    """Scheduled detentions from ``today`` for ``days`` more days (see :func:`detentions`)."""
    end = today + dt.timedelta(days=max(0, int(days)))
    return detentions(warehouse, start=today, end=end, statuses=("scheduled",), **filters)


def missed(warehouse: Warehouse, start: dt.date, end: dt.date, **filters: Any) -> pd.DataFrame:
    """Missed detentions from ``start`` to ``end`` (see :func:`detentions`)."""
    return detentions(warehouse, start=start, end=end, statuses=("missed",), **filters)


def sessions(frame: pd.DataFrame) -> pd.DataFrame:
    """Detention sessions (date, times, location) with their detentions and pupils.

    Columns :data:`SESSION_COLUMNS`, in date and time order; a blank time or location
    is its own session.
    """
    if frame.empty:
        return pd.DataFrame(columns=list(SESSION_COLUMNS))
    keys = ["date", "start_time", "end_time", "location"]
    grouped = (
        frame.groupby(keys, dropna=False)
        .agg(detentions=("detention_id", "size"), pupils=("student_id", "nunique"))
        .reset_index()
        .sort_values(keys, na_position="last", kind="stable")
    )
    return grouped[list(SESSION_COLUMNS)].reset_index(drop=True)


def daily_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Detentions per date and status (for a chart): :data:`DAILY_COLUMNS`."""
    if frame.empty:
        return pd.DataFrame(columns=list(DAILY_COLUMNS))
    counts = frame.groupby(["date", "status"]).size().reset_index(name="detentions")
    return counts[list(DAILY_COLUMNS)].sort_values(["date", "status"]).reset_index(drop=True)


def filter_options(warehouse: Warehouse) -> dict[str, list[str]]:
    """Choices for the filters: detention ``locations``, ``year_groups`` and ``forms``."""
    places = warehouse.query(
        "SELECT DISTINCT location FROM detentions WHERE nullif(trim(location), '') IS NOT NULL"
    )
    return {
        "locations": sorted(_clean(places["location"]), key=str.lower),
        **pupil_options(warehouse),
    }


__all__ = [
    "DAILY_COLUMNS",
    "DETENTION_COLUMNS",
    "SESSION_COLUMNS",
    "STATUSES",
    "daily_counts",
    "detentions",
    "filter_options",
    "missed",
    "sessions",
    "upcoming",
]
