"""Behaviour summary over a date range, from the ``behaviour`` extract.

Incidents count by ``occurred_at`` (naive UK local time) from the start of ``start``
to the end of ``end`` (dates, both included). ``polarity`` is compared in lower case
(``positive`` / ``negative``); ``points`` may be blank and then counts as 0. Pupils'
year group and form are today's (the ``students`` snapshot), not those they had when
the incident happened. Pure DuckDB SQL: nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from schoolcomms.warehouse import Warehouse

BY_TYPE_COLUMNS = ("type", "polarity", "incidents", "pupils", "points")
BY_YEAR_COLUMNS = ("year_group", "positive", "negative", "positive_points", "negative_points")
TOP_PUPIL_COLUMNS = (
    "student_id",
    "forename",
    "surname",
    "year_group",
    "form",
    "negative",
    "negative_points",
    "positive",
)

IN_RANGE = """
    SELECT b.incident_id, b.student_id, b.type, lower(b.polarity) AS polarity,
           coalesce(b.points, 0) AS points, s.forename, s.surname,
           nullif(s.year_group, '') AS year_group, nullif(s.form, '') AS form
    FROM behaviour b LEFT JOIN students s ON s.student_id = b.student_id
    WHERE b.occurred_at >= $start AND b.occurred_at < $after
"""


def _params(start: dt.date, end: dt.date) -> dict[str, dt.datetime]:
    if end < start:
        raise ValueError(f"The range ends ({end}) before it starts ({start}).")
    return {
        "start": dt.datetime.combine(start, dt.time()),
        "after": dt.datetime.combine(end + dt.timedelta(days=1), dt.time()),
    }


def incidents_by_type(warehouse: Warehouse, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Incidents per type and polarity: columns :data:`BY_TYPE_COLUMNS`, most first."""
    return warehouse.query(
        f"""
        WITH i AS ({IN_RANGE})
        SELECT type, polarity, count(*) AS incidents,
               count(DISTINCT student_id) AS pupils, sum(points)::BIGINT AS points
        FROM i GROUP BY type, polarity
        ORDER BY incidents DESC, polarity, type
        """,
        _params(start, end),
    )


def incidents_by_year_group(warehouse: Warehouse, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Positive and negative incidents and points per year group: :data:`BY_YEAR_COLUMNS`.

    Year groups sort as numbers first (7, 8, … 13), then as text; pupils with no year
    group (or not in ``students``) are one NULL row, last.
    """
    return warehouse.query(
        f"""
        WITH i AS ({IN_RANGE}),
        grouped AS (
            SELECT year_group,
                   count(*) FILTER (WHERE polarity = 'positive') AS positive,
                   count(*) FILTER (WHERE polarity = 'negative') AS negative,
                   coalesce(sum(points) FILTER (WHERE polarity = 'positive'), 0)::BIGINT
                       AS positive_points,
                   coalesce(sum(points) FILTER (WHERE polarity = 'negative'), 0)::BIGINT
                       AS negative_points
            FROM i GROUP BY year_group
        )
        SELECT * FROM grouped
        ORDER BY year_group IS NULL, try_cast(year_group AS INTEGER) NULLS LAST, year_group
        """,
        _params(start, end),
    )


def top_pupils_by_negative(
    warehouse: Warehouse, start: dt.date, end: dt.date, limit: int = 10
) -> pd.DataFrame:
    """The pupils with the most negative incidents (at least one): :data:`TOP_PUPIL_COLUMNS`.

    Ties are broken by the size of their negative points (schools record them as
    negative or positive numbers), then by name; at most ``limit`` pupils.
    """
    return warehouse.query(
        f"""
        WITH i AS ({IN_RANGE})
        SELECT student_id, any_value(forename) AS forename, any_value(surname) AS surname,
               any_value(year_group) AS year_group, any_value(form) AS form,
               count(*) FILTER (WHERE polarity = 'negative') AS negative,
               coalesce(sum(points) FILTER (WHERE polarity = 'negative'), 0)::BIGINT
                   AS negative_points,
               count(*) FILTER (WHERE polarity = 'positive') AS positive
        FROM i GROUP BY student_id
        HAVING count(*) FILTER (WHERE polarity = 'negative') > 0
        ORDER BY negative DESC, abs(negative_points) DESC, surname, forename, student_id
        LIMIT $limit
        """,
        {**_params(start, end), "limit": int(limit)},
    )


@dataclass(frozen=True)
class BehaviourSummary:
    """The behaviour summary of a range: totals and the three tables."""

    start: dt.date
    end: dt.date
    incidents: int
    positive: int
    negative: int
    pupils: int
    points: int
    by_type: pd.DataFrame
    by_year_group: pd.DataFrame
    top_pupils: pd.DataFrame


def behaviour_summary(
    warehouse: Warehouse, start: dt.date, end: dt.date, *, top: int = 10
) -> BehaviourSummary:
    """Totals, incidents by type and polarity, by year group, and the top ``top`` pupils."""
    totals = warehouse.query(
        f"""
        WITH i AS ({IN_RANGE})
        SELECT count(*) AS incidents,
               count(*) FILTER (WHERE polarity = 'positive') AS positive,
               count(*) FILTER (WHERE polarity = 'negative') AS negative,
               count(DISTINCT student_id) AS pupils,
               coalesce(sum(points), 0)::BIGINT AS points
        FROM i
        """,
        _params(start, end),
    ).iloc[0]
    return BehaviourSummary(
        start=start,
        end=end,
        incidents=int(totals["incidents"]),
        positive=int(totals["positive"]),
        negative=int(totals["negative"]),
        pupils=int(totals["pupils"]),
        points=int(totals["points"]),
        by_type=incidents_by_type(warehouse, start, end),
        by_year_group=incidents_by_year_group(warehouse, start, end),
        top_pupils=top_pupils_by_negative(warehouse, start, end, top),
    )


__all__ = [
    "BY_TYPE_COLUMNS",
    "BY_YEAR_COLUMNS",
    "TOP_PUPIL_COLUMNS",
    "BehaviourSummary",
    "behaviour_summary",
    "incidents_by_type",
    "incidents_by_year_group",
    "top_pupils_by_negative",
]
