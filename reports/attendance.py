"""Attendance percentages over a date range, from ``marks`` and their ``lessons``.

The measure is the DfE one: attended sessions over possible sessions.

- **Which registers count.** The statutory AM/PM registration sessions
  (``lessons.kind = 'session'``) are the DfE attendance measure, so when the warehouse
  holds any session at all, only sessions count. A school or college that takes lesson
  registers only (no sessions anywhere in its data, as many colleges do) is measured on
  its lessons instead (``kind = 'lesson'`` or blank). :func:`attendance_basis` says which.
- **What each mark counts as** (:mod:`schoolcomms.codes`, plus the school's own codes
  from the setting ``extra_attendance_codes``): ``present`` and ``approved_activity``
  are attended; ``authorised`` and ``unauthorised`` are absences; all four are possible
  sessions. ``not_possible`` marks (``X``, ``Y1``–``Y7``, ``#`` …) are left out of
  possible sessions altogether. A code the system does not know counts as nothing.
- ``start`` and ``end`` are dates, both included. Percentages are rounded to one
  decimal place; a pupil (or group) with no possible session has a NULL percentage.
- A group's percentage is its attended sessions over its possible sessions (so a
  pupil with more sessions weighs more), as the DfE computes a school's figure.

Pure DuckDB SQL: nothing here writes.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from schoolcomms.codes import code_table
from schoolcomms.warehouse import Warehouse

GROUPINGS = ("year_group", "form")
PUPIL_COLUMNS = (
    "student_id",
    "forename",
    "surname",
    "year_group",
    "form",
    "status",
    "possible",
    "attended",
    "authorised",
    "unauthorised",
    "not_possible",
    "percent",
)

BASIS_SQL = """
SELECT CASE WHEN EXISTS (SELECT 1 FROM lessons WHERE kind = 'session')
            THEN 'session' ELSE 'lesson' END AS basis
"""

# One row per pupil with a mark in the range, counted by category.
PUPIL_SQL = """
WITH basis AS ({basis}),
categorised AS (
    SELECT m.student_id,
           CASE
               WHEN list_contains($attending, upper(m.mark)) THEN 'attended'
               WHEN list_contains($authorised, upper(m.mark)) THEN 'authorised'
               WHEN list_contains($unauthorised, upper(m.mark)) THEN 'unauthorised'
               WHEN list_contains($not_possible, upper(m.mark)) THEN 'not_possible'
           END AS category
    FROM marks m
    JOIN lessons l ON l.lesson_id = m.lesson_id
    WHERE l.date BETWEEN $start AND $end
      AND coalesce(nullif(l.kind, ''), 'lesson') = (SELECT basis FROM basis)
),
counted AS (
    SELECT student_id,
           count(*) FILTER (WHERE category = 'attended') AS attended,
           count(*) FILTER (WHERE category = 'authorised') AS authorised,
           count(*) FILTER (WHERE category = 'unauthorised') AS unauthorised,
           count(*) FILTER (WHERE category = 'not_possible') AS not_possible
    FROM categorised
    GROUP BY student_id
)
SELECT c.student_id, s.forename, s.surname, s.year_group, s.form, s.status,
       c.attended + c.authorised + c.unauthorised AS possible,
       c.attended, c.authorised, c.unauthorised, c.not_possible,
       round(100.0 * c.attended
             / nullif(c.attended + c.authorised + c.unauthorised, 0), 1) AS percent
FROM counted c
LEFT JOIN students s ON s.student_id = c.student_id
"""


def _code_lists(extra_codes: str) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {
        "attending": [],
        "authorised": [],
        "unauthorised": [],
        "not_possible": [],
    }
    for code, category, _meaning, _origin in code_table(extra_codes):
        key = "attending" if category in ("present", "approved_activity") else category
        lists[key].append(code.upper())
    return lists


def _params(start: dt.date, end: dt.date, extra_codes: str) -> dict[str, object]:
    if end < start:
        raise ValueError(f"The range ends ({end}) before it starts ({start}).")
    return {"start": start, "end": end, **_code_lists(extra_codes)}


def attendance_basis(warehouse: Warehouse) -> str:
    """``"session"`` when the data has AM/PM registration sessions, else ``"lesson"``."""
    return str(warehouse.query(BASIS_SQL).iloc[0]["basis"])


def attendance_by_pupil(
    warehouse: Warehouse, start: dt.date, end: dt.date, *, extra_codes: str = ""
) -> pd.DataFrame:
    """Each pupil's attendance from ``start`` to ``end`` (dates, both included).

    Columns: :data:`PUPIL_COLUMNS` — the pupil's details, the counts of ``possible``,
    ``attended``, ``authorised``, ``unauthorised`` and ``not_possible`` sessions, and
    ``percent`` (attended / possible × 100, one decimal; NULL with no possible session).
    Only pupils with a mark in the range appear. ``extra_codes`` is the setting
    ``extra_attendance_codes``. Ordered by surname, forename, student_id.
    """
    sql = PUPIL_SQL.format(basis=BASIS_SQL) + " ORDER BY s.surname, s.forename, c.student_id"
    return warehouse.query(sql, _params(start, end, extra_codes))


def attendance_by_group(
    warehouse: Warehouse,
    start: dt.date,
    end: dt.date,
    by: str = "year_group",
    *,
    threshold_percent: float | None = None,
    extra_codes: str = "",
) -> pd.DataFrame:
    """Attendance per year group or form (``by``) from ``start`` to ``end``.

    Columns: ``by``, ``pupils`` (with a possible session), ``possible``, ``attended``,
    ``authorised``, ``unauthorised``, ``percent`` (the group's attended over its
    possible sessions) and, when ``threshold_percent`` is given,
    ``persistent_absentees``: pupils strictly below it. Groups sort by their leading
    number first (7, 8, … 13; 7A before 10A), then as text; a blank group is NULL, last.
    """
    if by not in GROUPINGS:
        raise ValueError(f"Group attendance by one of {', '.join(GROUPINGS)}, not {by!r}.")
    threshold = (
        ""
        if threshold_percent is None
        else (", count(*) FILTER (WHERE percent < $threshold) AS persistent_absentees")
    )
    sql = f"""
        WITH pupils AS ({PUPIL_SQL.format(basis=BASIS_SQL)}),
        grouped AS (
            SELECT nullif({by}, '') AS {by},
               count(*) FILTER (WHERE possible > 0) AS pupils,
               sum(possible)::BIGINT AS possible,
               sum(attended)::BIGINT AS attended,
               sum(authorised)::BIGINT AS authorised,
               sum(unauthorised)::BIGINT AS unauthorised,
               round(100.0 * sum(attended) / nullif(sum(possible), 0), 1) AS percent
               {threshold}
            FROM pupils
            GROUP BY 1
        )
        SELECT * FROM grouped
        ORDER BY {by} IS NULL,
                 try_cast(regexp_extract({by}, '^ *([0-9]+)', 1) AS INTEGER) NULLS LAST, {by}
    """
    params = _params(start, end, extra_codes)
    if threshold_percent is not None:
        params["threshold"] = float(threshold_percent)
    return warehouse.query(sql, params)


def persistent_absentees(
    warehouse: Warehouse,
    start: dt.date,
    end: dt.date,
    threshold_percent: float,
    *,
    extra_codes: str = "",
) -> pd.DataFrame:
    """Pupils whose attendance from ``start`` to ``end`` is strictly below the threshold.

    A pupil exactly at the threshold (90.0% with the DfE's 90) is not persistently
    absent. Columns as :func:`attendance_by_pupil`, lowest attendance first.
    """
    sql = f"""
        WITH pupils AS ({PUPIL_SQL.format(basis=BASIS_SQL)})
        SELECT * FROM pupils
        WHERE percent < $threshold
        ORDER BY percent, surname, forename, student_id
    """
    params = {**_params(start, end, extra_codes), "threshold": float(threshold_percent)}
    return warehouse.query(sql, params)


def overall_attendance(
    warehouse: Warehouse, start: dt.date, end: dt.date, *, extra_codes: str = ""
) -> dict[str, float | int | None]:
    """The whole school's figure: ``pupils``, ``possible``, ``attended`` and ``percent``."""
    sql = f"""
        WITH pupils AS ({PUPIL_SQL.format(basis=BASIS_SQL)})
        SELECT count(*) FILTER (WHERE possible > 0) AS pupils,
               coalesce(sum(possible), 0)::BIGINT AS possible,
               coalesce(sum(attended), 0)::BIGINT AS attended,
               round(100.0 * sum(attended) / nullif(sum(possible), 0), 1) AS percent
        FROM pupils
    """
    row = warehouse.query(sql, _params(start, end, extra_codes)).iloc[0]
    percent = row["percent"]
    return {
        "pupils": int(row["pupils"]),
        "possible": int(row["possible"]),
        "attended": int(row["attended"]),
        "percent": None if pd.isna(percent) else float(percent),
    }


def academic_year_start(day: dt.date) -> dt.date:
    """1 September of the academic year holding ``day`` (English school years)."""
    year = day.year if day.month >= 9 else day.year - 1
    return dt.date(year, 9, 1)


__all__ = [
    "GROUPINGS",
    "PUPIL_COLUMNS",
    "academic_year_start",
    "attendance_basis",
    "attendance_by_group",
    "attendance_by_pupil",
    "overall_attendance",
    "persistent_absentees",
]
