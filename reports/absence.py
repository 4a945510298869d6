"""Warehouse reads for automatic absence texts (the rule is in senders/absence.py)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from schoolcomms.warehouse import Warehouse

FIRST_ABSENCES_SQL = """
WITH day_lessons AS (
    SELECT lesson_id, start_time, end_time FROM lessons
    WHERE date = $day AND coalesce(kind, 'lesson') = 'lesson'
),
known_o AS (
    SELECT m.student_id, l.lesson_id, l.start_time, l.end_time, m.recorded_at,
           row_number() OVER (PARTITION BY m.student_id
                              ORDER BY l.start_time, l.lesson_id) AS nth
    FROM marks m JOIN day_lessons l ON l.lesson_id = m.lesson_id
    WHERE upper(m.mark) = 'O' AND (m.recorded_at IS NULL OR m.recorded_at <= $at)
)
SELECT k.student_id, s.forename, s.surname, k.lesson_id, k.start_time, k.end_time,
       k.recorded_at
FROM known_o k JOIN students s ON s.student_id = k.student_id
WHERE k.nth = 1 AND s.status LIKE $status AND s.cohort = $cohort
ORDER BY k.student_id
"""


def first_absences(
    warehouse: Warehouse, *, day: dt.date, at: dt.datetime, status_pattern: str, cohort: str
) -> pd.DataFrame:
    """Each eligible student's first lesson of ``day`` marked O, from marks known at ``at``.

    Marks known at ``at`` are those recorded at or before it, plus marks with no
    ``recorded_at`` (present in the data, though they can never prove they were in
    time). Only ``kind = lesson`` rows count. ``at`` is naive local (UK) time, like
    every warehouse timestamp.
    """
    return warehouse.query(
        FIRST_ABSENCES_SQL, {"day": day, "at": at, "status": status_pattern, "cohort": cohort}
    )


def portal_accounts(warehouse: Warehouse, student_ids: list[str]) -> pd.DataFrame:
    """Portal links of these students with their state and E.164 mobile."""
    if not student_ids:
        return pd.DataFrame(
            columns=["account_id", "student_id", "mobile_e164", "link_status", "registered"]
        )
    # One list parameter: a placeholder per student was ~6x slower for 4,000 students.
    return warehouse.query(
        "SELECT account_id, student_id, mobile_e164, link_status, registered "
        "FROM portal_links WHERE student_id IN (SELECT unnest($ids)) "
        "ORDER BY student_id, account_id",
        {"ids": list(student_ids)},
    )
