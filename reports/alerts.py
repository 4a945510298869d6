"""Warehouse reads for the staff alert rules: one query per rule, never one per pupil.

Every function takes naive UK local times (as the warehouse stores them) and returns a
DataFrame; :mod:`senders.alerts.evaluate` turns the rows into planned alerts. Type and
polarity filters compare case-blind and ignore surrounding spaces; an empty ``types``
list means any type and ``polarity`` ``"any"`` means either.

Attendance reads only see the marks of the evaluation day that were known at the
evaluation time: ``recorded_at`` at or before it, or blank (a mark with no time is
taken as known). Marks compare upper case, as the codes are defined.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from schoolcomms.warehouse import Warehouse

# How a pupil is named in alerts: preferred (or legal) forename and surname.
PUPIL = "coalesce(nullif(trim(s.preferred_forename), ''), s.forename) || ' ' || s.surname"

_BEHAVIOUR_FILTER = """
    ($any_type OR lower(trim(b.type)) IN (SELECT unnest($types)))
    AND ($polarity = 'any' OR lower(trim(b.polarity)) = $polarity)
"""
# A day's marks as known at $at, with their lessons.
_KNOWN_MARKS = """
    SELECT m.student_id, upper(trim(m.mark)) AS mark, l.lesson_id, l.start_time,
           l.end_time, coalesce(nullif(trim(l.kind), ''), 'lesson') AS kind, l.period,
           l.subject, l.staff_id, l.class_id
    FROM lessons l JOIN marks m ON m.lesson_id = l.lesson_id
    WHERE l.date = $day AND (m.recorded_at IS NULL OR m.recorded_at <= $at)
"""


def _words(values: Iterable[str]) -> list[str]:
    return sorted({str(v).strip().lower() for v in values if str(v).strip()})


def _behaviour_params(types: Sequence[str], polarity: str) -> dict[str, Any]:
    wanted = _words(types)
    # An empty list has no DuckDB type; a placeholder keeps the parameter typed.
    return {"any_type": not wanted, "types": wanted or [""], "polarity": polarity.lower()}


def behaviour_types(warehouse: Warehouse) -> pd.DataFrame:
    """Each behaviour ``type`` with its ``polarity`` and how many ``incidents`` it has."""
    return warehouse.query(
        """
        SELECT trim(type) AS type, lower(trim(polarity)) AS polarity, count(*) AS incidents
        FROM behaviour GROUP BY ALL ORDER BY polarity, incidents DESC, type
        """
    )


def year_groups_and_forms(warehouse: Warehouse) -> dict[str, list[str]]:
    """The year groups and forms of current pupils (status ``C…``), for pickers."""
    frame = warehouse.query(
        "SELECT DISTINCT year_group, form FROM students WHERE status LIKE 'C%' "
        "AND (year_group IS NOT NULL OR form IS NOT NULL)"
    )
    years = sorted({str(y) for y in frame["year_group"].dropna()}, key=_natural)
    forms = sorted({str(f) for f in frame["form"].dropna()}, key=_natural)
    return {"year_groups": years, "forms": forms}


def _natural(text: str) -> tuple[int, str]:
    digits = "".join(c for c in text if c.isdigit())
    return (int(digits) if digits and text[0].isdigit() else 10**6, text)


def incidents_in_window(
    warehouse: Warehouse,
    *,
    start: dt.datetime,
    at: dt.datetime,
    threshold: int,
    types: Sequence[str],
    polarity: str,
) -> pd.DataFrame:
    """Pupils with at least ``threshold`` matching incidents from ``start`` to ``at``.

    One row per pupil: ``student_id, name, form, year_group, incidents`` (the count) and
    the lists ``incident_ids, types, times`` in the order they happened.
    """
    return warehouse.query(
        f"""
        WITH hits AS (
            SELECT b.student_id, count(*) AS incidents,
                   list(b.incident_id ORDER BY b.occurred_at, b.incident_id) AS incident_ids,
                   list(trim(b.type) ORDER BY b.occurred_at, b.incident_id) AS types,
                   list(b.occurred_at ORDER BY b.occurred_at, b.incident_id) AS times
            FROM behaviour b
            WHERE b.occurred_at >= $start AND b.occurred_at <= $at AND {_BEHAVIOUR_FILTER}
            GROUP BY b.student_id
            HAVING count(*) >= $threshold
        )
        SELECT h.student_id, {PUPIL} AS name, s.form, s.year_group, h.incidents,
               h.incident_ids, h.types, h.times
        FROM hits h LEFT JOIN students s ON s.student_id = h.student_id
        ORDER BY h.student_id
        """,
        {"start": start, "at": at, "threshold": threshold, **_behaviour_params(types, polarity)},
    )


def rolling_histories(
    warehouse: Warehouse,
    *,
    since: dt.datetime,
    at: dt.datetime,
    threshold: int,
    types: Sequence[str],
    polarity: str,
) -> pd.DataFrame:
    """Every matching incident up to ``at`` of the pupils who could have crossed lately.

    A pupil is a candidate with at least ``threshold`` matching incidents from
    ``since``; all their matching incidents are returned (oldest first) because where a
    rolling count restarted depends on the earlier crossings. Columns: ``student_id,
    name, form, year_group, incident_id, occurred_at, type``.
    """
    return warehouse.query(
        f"""
        WITH hits AS (
            SELECT b.student_id, b.incident_id, b.occurred_at, trim(b.type) AS type
            FROM behaviour b
            WHERE b.occurred_at <= $at AND {_BEHAVIOUR_FILTER}
        ),
        candidates AS (
            SELECT student_id FROM hits WHERE occurred_at >= $since
            GROUP BY student_id HAVING count(*) >= $threshold
        )
        SELECT h.student_id, {PUPIL} AS name, s.form, s.year_group,
               h.incident_id, h.occurred_at, h.type
        FROM hits h
        JOIN candidates c ON c.student_id = h.student_id
        LEFT JOIN students s ON s.student_id = h.student_id
        ORDER BY h.student_id, h.occurred_at, h.incident_id
        """,
        {"since": since, "at": at, "threshold": threshold, **_behaviour_params(types, polarity)},
    )


def incidents_between(
    warehouse: Warehouse,
    *,
    start: dt.datetime,
    at: dt.datetime,
    types: Sequence[str],
    polarity: str,
) -> pd.DataFrame:
    """Each matching incident from ``start`` to ``at`` with its pupil, oldest first."""
    return warehouse.query(
        f"""
        SELECT b.incident_id, b.student_id, {PUPIL} AS name, s.form, s.year_group,
               b.occurred_at, trim(b.type) AS type, lower(trim(b.polarity)) AS polarity,
               b.points, b.location, b.outcome, b.comment, b.recorded_by
        FROM behaviour b LEFT JOIN students s ON s.student_id = b.student_id
        WHERE b.occurred_at >= $start AND b.occurred_at <= $at AND {_BEHAVIOUR_FILTER}
        ORDER BY b.occurred_at, b.incident_id
        """,
        {"start": start, "at": at, **_behaviour_params(types, polarity)},
    )


def marks_with_codes(
    warehouse: Warehouse,
    *,
    at: dt.datetime,
    codes: Sequence[str],
    year_groups: Sequence[str] = (),
    forms: Sequence[str] = (),
    include_sessions: bool = True,
) -> pd.DataFrame:
    """Pupils given one of ``codes`` on ``at``'s day in marks known at ``at``.

    One row per pupil: ``student_id, name, form, year_group`` and ``lessons``, a list of
    ``{lesson_id, start_time, end_time, kind, period, subject, staff_id, mark}`` by start
    time. Empty ``year_groups``/``forms`` mean every pupil; they compare case-blind.
    """
    years, groups = _words(year_groups), _words(forms)
    return warehouse.query(
        f"""
        WITH known AS ({_KNOWN_MARKS}),
        hits AS (
            SELECT student_id,
                   list({{'lesson_id': lesson_id, 'start_time': start_time,
                          'end_time': end_time, 'kind': kind, 'period': period,
                          'subject': subject, 'staff_id': staff_id, 'mark': mark}}
                        ORDER BY start_time, lesson_id) AS lessons
            FROM known
            WHERE mark IN (SELECT unnest($codes)) AND ($include_sessions OR kind = 'lesson')
            GROUP BY student_id
        )
        SELECT h.student_id, {PUPIL} AS name, s.form, s.year_group, h.lessons
        FROM hits h LEFT JOIN students s ON s.student_id = h.student_id
        WHERE ($all_years OR lower(trim(s.year_group)) IN (SELECT unnest($years)))
          AND ($all_forms OR lower(trim(s.form)) IN (SELECT unnest($forms)))
        ORDER BY h.student_id
        """,
        {
            "day": at.date(),
            "at": at,
            "codes": [str(c).strip().upper() for c in codes] or [""],
            "include_sessions": include_sessions,
            "all_years": not years,
            "years": years or [""],
            "all_forms": not groups,
            "forms": groups or [""],
        },
    )


def truancy_candidates(
    warehouse: Warehouse, *, at: dt.datetime, present_codes: Sequence[str]
) -> pd.DataFrame:
    """Pupils present earlier on ``at``'s day, then ``O`` in a later lesson (marks known at ``at``).

    "Present" is a mark in ``present_codes`` at a session or a lesson; the ``O`` must be
    in a lesson (not a session) that starts later. One row per pupil, for the first such
    ``O``: ``student_id, name, form, year_group``, the ``O`` lesson (``lesson_id,
    start_time, end_time, period, subject, staff_id, class_id``) and the first presence
    (``present_lesson_id, present_start, present_kind, present_period, present_subject,
    present_mark``).
    """
    return warehouse.query(
        f"""
        WITH known AS ({_KNOWN_MARKS}),
        present AS (
            SELECT student_id,
                   arg_min(lesson_id, start_time) AS present_lesson_id,
                   min(start_time) AS present_start,
                   arg_min(kind, start_time) AS present_kind,
                   arg_min(period, start_time) AS present_period,
                   arg_min(subject, start_time) AS present_subject,
                   arg_min(mark, start_time) AS present_mark
            FROM known WHERE mark IN (SELECT unnest($present)) GROUP BY student_id
        ),
        absent AS (
            SELECT k.*, p.present_lesson_id, p.present_start, p.present_kind,
                   p.present_period, p.present_subject, p.present_mark,
                   row_number() OVER (
                       PARTITION BY k.student_id ORDER BY k.start_time, k.lesson_id
                   ) AS nth
            FROM known k JOIN present p ON p.student_id = k.student_id
            WHERE k.mark = 'O' AND k.kind = 'lesson' AND k.start_time > p.present_start
        )
        SELECT a.student_id, {PUPIL} AS name, s.form, s.year_group,
               a.lesson_id, a.start_time, a.end_time, a.period, a.subject, a.staff_id,
               a.class_id, a.present_lesson_id, a.present_start, a.present_kind,
               a.present_period, a.present_subject, a.present_mark
        FROM absent a LEFT JOIN students s ON s.student_id = a.student_id
        WHERE a.nth = 1
        ORDER BY a.student_id
        """,
        {"day": at.date(), "at": at, "present": [str(c).upper() for c in present_codes]},
    )


def school_role_holders(warehouse: Warehouse, roles: Iterable[str]) -> dict[str, list[str]]:
    """``{role: [staff_id, …]}`` for whole-school roles (a blank scope: every pupil)."""
    wanted = sorted(set(roles))
    if not wanted:
        return {}
    frame = warehouse.query(
        "SELECT DISTINCT role, staff_id FROM responsibilities "
        "WHERE role IN (SELECT unnest($roles)) ORDER BY 1, 2",
        {"roles": wanted},
    )
    out: dict[str, list[str]] = {}
    for role, staff_id in zip(frame["role"], frame["staff_id"], strict=True):
        out.setdefault(role, []).append(staff_id)
    return out
