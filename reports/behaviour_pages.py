"""Behaviour incidents for the Behaviour page: the filtered list, its summary and chart data.

Incidents count by ``occurred_at`` (naive UK local time) from the start of ``start`` to
the end of ``end``, as in :mod:`reports.behaviour`, whose summary shapes
(:class:`~reports.behaviour.BehaviourSummary` and its column constants) are reused so
the page and the weekly report agree. Filters are applied in DuckDB; summaries of the
filtered list are computed in pandas (pure functions of the list). Pupils' year group
and form are today's. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reports.behaviour import (
    BY_TYPE_COLUMNS,
    BY_YEAR_COLUMNS,
    TOP_PUPIL_COLUMNS,
    BehaviourSummary,
)
from reports.contacts import school_order
from schoolcomms.warehouse import Warehouse

INCIDENT_COLUMNS = (
    "incident_id",
    "occurred_at",
    "student_id",
    "name",
    "forename",
    "surname",
    "year_group",
    "form",
    "type",
    "polarity",
    "points",
    "location",
    "outcome",
    "recorded_by",
    "recorded_by_name",
    "comment",
)
POLARITIES = ("negative", "positive")
DAILY_COLUMNS = ("day", "polarity", "incidents")

STAFF_NAME = "trim(concat_ws(' ', nullif(t.title, ''), nullif(t.forename, ''), t.surname))"


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents to list: a date range plus optional narrowing filters."""

    start: dt.date
    end: dt.date
    types: tuple[str, ...] = ()
    polarity: str | None = None
    year_groups: tuple[str, ...] = ()
    forms: tuple[str, ...] = ()
    search: str = ""
    recorded_by: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"The range ends ({self.end}) before it starts ({self.start}).")
        if self.polarity is not None and self.polarity not in POLARITIES:
            raise ValueError(f"Polarity must be positive or negative, not {self.polarity!r}.")


def pupil_name(alias: str = "s") -> str:
    """SQL for a pupil's display name (as the merge field ``student.name`` writes it)."""
    return (
        f"trim(coalesce(nullif(trim({alias}.preferred_forename), ''), {alias}.forename, '') "
        f"|| ' ' || coalesce({alias}.surname, ''))"
    )


PUPIL_NAME = pupil_name()


SELECT_INCIDENTS = f"""
    SELECT b.incident_id, b.occurred_at, b.student_id, {PUPIL_NAME} AS name,
           s.forename, s.surname, nullif(s.year_group, '') AS year_group,
           nullif(s.form, '') AS form, b.type, lower(b.polarity) AS polarity,
           coalesce(b.points, 0) AS points, b.location, b.outcome, b.recorded_by,
           nullif({STAFF_NAME}, '') AS recorded_by_name, b.comment
    FROM behaviour b
    LEFT JOIN students s ON s.student_id = b.student_id
    LEFT JOIN staff t ON t.staff_id = b.recorded_by
"""


def _clean(values: Iterable[Any]) -> list[str]:
    return sorted({str(v).strip() for v in values if v is not None and str(v).strip()})


def pupil_filters(
    params: dict[str, Any],
    *,
    year_groups: Iterable[str] = (),
    forms: Iterable[str] = (),
    search: str = "",
    student: str = "s",
    id_column: str = "student_id",
) -> list[str]:
    """SQL conditions (and their ``params``) for year group, form and pupil search.

    ``student`` is the alias of the joined ``students`` table and ``id_column`` the
    pupil id column of the row (``b.student_id``). The search matches the pupil's id
    or name, case-insensitively, anywhere in the text.
    """
    where: list[str] = []
    years, form_list = _clean(year_groups), _clean(forms)
    if years:
        params["years"] = years
        where.append(f"{student}.year_group IN (SELECT unnest($years))")
    if form_list:
        params["forms"] = form_list
        where.append(f"{student}.form IN (SELECT unnest($forms))")
    text = (search or "").strip().lower()
    if text:
        params["search"] = text
        name = pupil_name(student)
        where.append(f"(contains(lower({id_column}), $search) OR contains(lower({name}), $search))")
    return where


def incidents(warehouse: Warehouse, query: IncidentFilter) -> pd.DataFrame:
    """The incidents matching ``query``, newest first: columns :data:`INCIDENT_COLUMNS`.

    ``polarity`` is lower case and blank ``points`` count as 0; ``recorded_by_name``
    is the staff member's name when the staff extract knows them.
    """
    params: dict[str, Any] = {
        "start": dt.datetime.combine(query.start, dt.time()),
        "after": dt.datetime.combine(query.end + dt.timedelta(days=1), dt.time()),
    }
    where = ["b.occurred_at >= $start", "b.occurred_at < $after"]
    types = _clean(query.types)
    if types:
        params["types"] = types
        where.append("b.type IN (SELECT unnest($types))")
    if query.polarity:
        params["polarity"] = query.polarity
        where.append("lower(b.polarity) = $polarity")
    if query.recorded_by:
        params["recorded_by"] = query.recorded_by
        where.append("b.recorded_by = $recorded_by")
    where += pupil_filters(
        params,
        year_groups=query.year_groups,
        forms=query.forms,
        search=query.search,
        id_column="b.student_id",
    )
    return warehouse.query(
        f"""
        {SELECT_INCIDENTS}
        WHERE {" AND ".join(where)}
        ORDER BY b.occurred_at DESC, b.incident_id
        """,
        params,
    )


def incidents_by_id(warehouse: Warehouse, incident_ids: Iterable[str]) -> pd.DataFrame:
    """The named incidents (any date), columns :data:`INCIDENT_COLUMNS`."""
    ids = _clean(incident_ids)
    if not ids:
        return pd.DataFrame(columns=list(INCIDENT_COLUMNS))
    return warehouse.query(
        f"""
        {SELECT_INCIDENTS}
        WHERE b.incident_id IN (SELECT unnest($ids))
        ORDER BY b.occurred_at DESC, b.incident_id
        """,
        {"ids": ids},
    )


def filter_options(warehouse: Warehouse) -> dict[str, list[str]]:
    """Choices for the page's filters: incident ``types``, ``year_groups`` and ``forms``.

    Types come from every incident loaded (so a choice does not vanish when the range
    changes); year groups and forms from the current pupils, in school order.
    """
    types = warehouse.query("SELECT DISTINCT type FROM behaviour WHERE type IS NOT NULL")
    return {"types": sorted(_clean(types["type"]), key=str.lower), **pupil_options(warehouse)}


def pupil_options(warehouse: Warehouse) -> dict[str, list[str]]:
    """The current pupils' ``year_groups`` and ``forms``, in school order (filter choices)."""
    pupils = warehouse.query(
        "SELECT DISTINCT nullif(year_group, '') AS year_group, nullif(form, '') AS form "
        "FROM students WHERE status LIKE 'C%'"
    )
    return {
        "year_groups": school_order(_clean(pupils["year_group"].dropna())),
        "forms": school_order(_clean(pupils["form"].dropna())),
    }


def _by_type(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=list(BY_TYPE_COLUMNS))
    grouped = (
        frame.groupby(["type", "polarity"], dropna=False)
        .agg(
            incidents=("incident_id", "size"),
            pupils=("student_id", "nunique"),
            points=("points", "sum"),
        )
        .reset_index()
    )
    grouped = grouped.sort_values(
        ["incidents", "polarity", "type"], ascending=[False, True, True], kind="stable"
    )
    return grouped[list(BY_TYPE_COLUMNS)].reset_index(drop=True)


def _by_year_group(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=list(BY_YEAR_COLUMNS))
    data = frame.assign(
        positive=(frame["polarity"] == "positive").astype(int),
        negative=(frame["polarity"] == "negative").astype(int),
    )
    data["positive_points"] = data["points"].where(data["positive"] == 1, 0)
    data["negative_points"] = data["points"].where(data["negative"] == 1, 0)
    grouped = (
        data.groupby("year_group", dropna=False)[
            ["positive", "negative", "positive_points", "negative_points"]
        ]
        .sum()
        .reset_index()
    )
    known = [y for y in school_order(_clean(grouped["year_group"].dropna()))]
    order = {year: i for i, year in enumerate(known)}
    grouped["_order"] = grouped["year_group"].map(lambda y: order.get(y, len(order)))
    grouped = grouped.sort_values("_order", kind="stable")
    return grouped[list(BY_YEAR_COLUMNS)].reset_index(drop=True)


def _top_pupils(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=list(TOP_PUPIL_COLUMNS))
    data = frame.assign(
        negative=(frame["polarity"] == "negative").astype(int),
        positive=(frame["polarity"] == "positive").astype(int),
    )
    data["negative_points"] = data["points"].where(data["negative"] == 1, 0)
    columns = ["forename", "surname", "year_group", "form"]
    first = data.groupby("student_id")[columns].first()
    sums = data.groupby("student_id")[["negative", "negative_points", "positive"]].sum()
    table = first.join(sums).reset_index()
    table = table[table["negative"] > 0]
    table["_size"] = table["negative_points"].abs()
    table = table.sort_values(
        ["negative", "_size", "surname", "forename", "student_id"],
        ascending=[False, False, True, True, True],
        kind="stable",
    ).head(limit)
    return table[list(TOP_PUPIL_COLUMNS)].reset_index(drop=True)


def summarise(frame: pd.DataFrame, query: IncidentFilter, *, top: int = 10) -> BehaviourSummary:
    """The summary of a filtered incident list (from :func:`incidents`), as the weekly report's.

    Totals, incidents by type and polarity, by year group and the ``top`` pupils with
    the most negative incidents.
    """
    positive = int((frame["polarity"] == "positive").sum())
    negative = int((frame["polarity"] == "negative").sum())
    return BehaviourSummary(
        start=query.start,
        end=query.end,
        incidents=len(frame),
        positive=positive,
        negative=negative,
        pupils=int(frame["student_id"].nunique()),
        points=int(frame["points"].sum()) if len(frame) else 0,
        by_type=_by_type(frame),
        by_year_group=_by_year_group(frame),
        top_pupils=_top_pupils(frame, top),
    )


def daily_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Incidents per day and polarity (for a stacked chart): :data:`DAILY_COLUMNS`."""
    if frame.empty:
        return pd.DataFrame(columns=list(DAILY_COLUMNS))
    days = pd.to_datetime(frame["occurred_at"]).dt.normalize()
    counts = (
        frame.assign(day=days)
        .groupby(["day", "polarity"])
        .size()
        .reset_index(name="incidents")
        .sort_values(["day", "polarity"])
    )
    return counts[list(DAILY_COLUMNS)].reset_index(drop=True)


__all__ = [
    "DAILY_COLUMNS",
    "INCIDENT_COLUMNS",
    "POLARITIES",
    "IncidentFilter",
    "daily_counts",
    "filter_options",
    "incidents",
    "incidents_by_id",
    "pupil_filters",
    "pupil_name",
    "pupil_options",
    "summarise",
]
