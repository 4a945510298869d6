"""Missing registers: which lessons had no register taken as of a moment, and who teaches them.

A lesson here is a ``lessons`` row of kind ``lesson`` or ``session`` (statutory AM/PM
registration sessions have registers too). Its register counts as taken at time T when
``register_taken_at`` is at or before T, or, when ``register_taken_at`` is blank, when
a mark for the lesson was recorded at or before T or has no ``recorded_at`` (a mark is
there, so a register was saved). Everything is evaluated "as of T": a register taken at
10:20 is missing at 10:00 and taken at 10:30, so a run or a preview for a past moment
gives the answer of that moment. Times are naive UK local time, like the warehouse.

The reminders (senders/reminders.py), the dashboard's "Missing registers" page and the
weekly report read these functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd

from schoolcomms.warehouse import Warehouse

COLUMNS = [
    "lesson_id",
    "date",
    "start_time",
    "end_time",
    "kind",
    "period",
    "class_id",
    "subject",
    "staff_id",
    "teacher",
    "department",
    "room",
    "minutes_missing",
]
BY_TEACHER_COLUMNS = ["staff_id", "teacher", "department", "missing"]
BY_DEPARTMENT_COLUMNS = ["department", "missing", "teachers"]

# One query: the lessons chosen by {where}, less those whose register was taken as of $at.
# Blank text columns come back as '' so that callers can group and print without NULLs.
MISSING_SQL = """
WITH chosen AS (
    SELECT l.lesson_id, l.date, l.start_time, l.end_time,
           coalesce(nullif(trim(l.kind), ''), 'lesson') AS kind,
           coalesce(l.period, '') AS period,
           coalesce(l.class_id, '') AS class_id,
           coalesce(l.subject, '') AS subject,
           coalesce(l.staff_id, '') AS staff_id,
           coalesce(l.room, '') AS room,
           l.register_taken_at,
           l.date + l.start_time AS starts_at
    FROM lessons l
    WHERE {where}
      AND coalesce(nullif(trim(l.kind), ''), 'lesson') IN ('lesson', 'session')
      AND l.date + l.start_time <= $cutoff
)
SELECT c.lesson_id, c.date, c.start_time, c.end_time, c.kind, c.period, c.class_id,
       c.subject, c.staff_id,
       coalesce(trim(concat_ws(' ', nullif(s.title, ''), nullif(s.forename, ''), s.surname)),
                '') AS teacher,
       CASE WHEN c.kind = 'session' THEN '' ELSE c.subject END AS department,
       c.room,
       CAST(floor((epoch($at) - epoch(c.starts_at)) / 60) AS BIGINT) AS minutes_missing
FROM chosen c
LEFT JOIN staff s ON s.staff_id = c.staff_id
WHERE NOT coalesce(c.register_taken_at <= $at, false)
  AND NOT (c.register_taken_at IS NULL AND EXISTS (
        SELECT 1 FROM marks m
        WHERE m.lesson_id = c.lesson_id AND (m.recorded_at IS NULL OR m.recorded_at <= $at)))
ORDER BY c.date, c.start_time, c.class_id, c.lesson_id
"""

# A registration class is a form group when its id is a form code, or when all its
# members (with a form) share one form; the head of year is then found by that form's
# pupils' year group.
FORM_HEADS_SQL = """
WITH wanted AS (SELECT DISTINCT unnest($ids) AS class_id),
by_name AS (
    SELECT w.class_id, s.year_group
    FROM wanted w JOIN students s ON upper(trim(s.form)) = upper(trim(w.class_id))
),
one_form AS (
    SELECT cm.class_id, min(s.form) AS form
    FROM class_members cm JOIN students s ON s.student_id = cm.student_id
    WHERE cm.class_id IN (SELECT class_id FROM wanted) AND nullif(trim(s.form), '') IS NOT NULL
    GROUP BY cm.class_id
    HAVING count(DISTINCT upper(trim(s.form))) = 1
),
by_members AS (
    SELECT o.class_id, s.year_group
    FROM one_form o JOIN students s ON upper(trim(s.form)) = upper(trim(o.form))
),
years AS (
    SELECT class_id, year_group FROM by_name
    UNION
    SELECT class_id, year_group FROM by_members
    WHERE class_id NOT IN (SELECT class_id FROM by_name)
)
SELECT DISTINCT y.class_id, r.staff_id
FROM years y
JOIN responsibilities r
  ON r.role = 'head_of_year'
 AND upper(trim(r.scope)) = upper(trim(CAST(y.year_group AS VARCHAR)))
ORDER BY 1, 2
"""


def _ids(values: Iterable[str]) -> list[str]:
    return sorted({str(v) for v in values if v is not None and str(v) != ""})


def _query(
    warehouse: Warehouse, where: str, params: dict[str, object], at: dt.datetime, after: int
) -> pd.DataFrame:
    cutoff = at - dt.timedelta(minutes=max(int(after), 0))
    frame = warehouse.query(MISSING_SQL.format(where=where), {**params, "at": at, "cutoff": cutoff})
    return frame[COLUMNS]


def missing_registers(
    warehouse: Warehouse,
    *,
    start: dt.date,
    end: dt.date,
    at: dt.datetime,
    after_minutes: int = 0,
) -> pd.DataFrame:
    """Lessons dated ``start``..``end`` that started at least ``after_minutes`` before
    ``at`` and had no register as of ``at`` (naive UK local time).

    Columns: lesson_id, date, start_time, end_time, kind, period, class_id, subject,
    staff_id ('' when the lesson has no teacher), teacher (name; '' when unknown),
    department (the subject; '' for sessions), room, minutes_missing (whole minutes from
    the lesson's start to ``at``). Ordered by date, start time and class.
    """
    return _query(
        warehouse, "l.date BETWEEN $start AND $end", {"start": start, "end": end}, at, after_minutes
    )


def still_missing(warehouse: Warehouse, lesson_ids: Iterable[str], at: dt.datetime) -> pd.DataFrame:
    """The named lessons that had started and had no register as of ``at`` (any date).

    Same columns as :func:`missing_registers`; lessons already registered, not yet
    started or unknown are left out.
    """
    ids = _ids(lesson_ids)
    if not ids:
        return pd.DataFrame(columns=COLUMNS)
    return _query(warehouse, "l.lesson_id IN (SELECT unnest($ids))", {"ids": ids}, at, 0)


def missing_by_teacher(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing registers per teacher: staff_id, teacher, department, missing (most first).

    ``department`` lists the teacher's departments among the missing lessons
    (comma-separated); lessons with no teacher are one row with staff_id ''.
    """
    if frame.empty:
        return pd.DataFrame(columns=BY_TEACHER_COLUMNS)
    grouped = (
        frame.assign(department=frame["department"].fillna(""))
        .groupby(["staff_id", "teacher"], dropna=False, sort=False)
        .agg(
            department=("department", lambda d: ", ".join(sorted({x for x in d if x}))),
            missing=("lesson_id", "count"),
        )
        .reset_index()
    )
    grouped["missing"] = grouped["missing"].astype(int)
    return grouped.sort_values(
        ["missing", "teacher", "staff_id"], ascending=[False, True, True], ignore_index=True
    )[BY_TEACHER_COLUMNS]


def missing_by_department(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing registers per department: department, missing, teachers (most first).

    ``teachers`` is how many different teachers (staff ids) the missing lessons have
    (lessons with no teacher add none); the department of registration sessions is ''.
    """
    if frame.empty:
        return pd.DataFrame(columns=BY_DEPARTMENT_COLUMNS)
    grouped = (
        frame.assign(department=frame["department"].fillna(""))
        .groupby("department", sort=False)
        .agg(missing=("lesson_id", "count"), teachers=("staff_id", lambda s: s[s != ""].nunique()))
        .reset_index()
    )
    grouped[["missing", "teachers"]] = grouped[["missing", "teachers"]].astype(int)
    return grouped.sort_values(
        ["missing", "department"], ascending=[False, True], ignore_index=True
    )[BY_DEPARTMENT_COLUMNS]


def form_heads_of_year(warehouse: Warehouse, class_ids: Iterable[str]) -> dict[str, list[str]]:
    """``{class_id: [staff_id, …]}``: the heads of year of each class that is a form group.

    A class is a form group when its id is a form code (``students.form``) or when all
    its members share one form. Classes that are not form groups, or whose year has no
    head of year, are absent.
    """
    ids = _ids(class_ids)
    if not ids:
        return {}
    out: dict[str, list[str]] = {}
    for row in warehouse.query(FORM_HEADS_SQL, {"ids": ids}).itertuples(index=False):
        out.setdefault(row.class_id, []).append(row.staff_id)
    return out


def whole_school_role(warehouse: Warehouse, role: str) -> list[str]:
    """The staff ids holding a whole-school ``role`` (e.g. ``attendance_officer``)."""
    frame = warehouse.query(
        "SELECT DISTINCT staff_id FROM responsibilities WHERE role = $role ORDER BY staff_id",
        {"role": role},
    )
    return [str(s) for s in frame["staff_id"]]
