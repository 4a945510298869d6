"""Who is responsible for whom: staff and their responsibilities, from the warehouse.

Alerts and reminders reach staff through these reads. ``responsibilities`` rows give a
role and a scope (EXTRACTS.md): a form tutor's scope is a form, a head of year's a year
group, a head of department's a subject; a blank scope is the whole school (an
attendance officer, the safeguarding lead). A pupil's form tutor is everyone whose
``form_tutor`` scope is the pupil's form, and so on.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from schoolcomms.warehouse import Warehouse

# Roles relative to a pupil, and the pupil column their scope is compared with.
PUPIL_ROLES: dict[str, str] = {"form_tutor": "form", "head_of_year": "year_group"}
# Roles relative to a lesson's subject.
SUBJECT_ROLES: tuple[str, ...] = ("head_of_department",)
# Roles with a blank scope: the whole school.
SCHOOL_ROLES: tuple[str, ...] = (
    "attendance_officer",
    "safeguarding_lead",
    "office",
    "senior_leader",
)
ROLE_LABELS: dict[str, str] = {
    "form_tutor": "Form tutor",
    "head_of_year": "Head of year",
    "head_of_department": "Head of department",
    "attendance_officer": "Attendance officer",
    "safeguarding_lead": "Safeguarding lead",
    "office": "Office",
    "senior_leader": "Senior leader",
    "class_teacher": "Class teacher",
}
STAFF_COLUMNS = ["staff_id", "name", "email"]


def _ids(values: Iterable[str]) -> list[str]:
    return sorted({str(v) for v in values if v is not None and str(v) != ""})


def staff_directory(warehouse: Warehouse) -> pd.DataFrame:
    """Every staff member: ``staff_id``, display ``name`` (title initial surname) and ``email``."""
    return warehouse.query(
        """
        SELECT staff_id,
               trim(concat_ws(' ', nullif(title, ''), nullif(forename, ''), surname)) AS name,
               nullif(trim(email), '') AS email
        FROM staff ORDER BY surname, forename, staff_id
        """
    )


def staff_by_id(warehouse: Warehouse, staff_ids: Iterable[str]) -> dict[str, dict[str, str | None]]:
    """``{staff_id: {"name": …, "email": …}}`` for the named staff (unknown ids absent)."""
    ids = _ids(staff_ids)
    if not ids:
        return {}
    frame = warehouse.query(
        """
        SELECT staff_id,
               trim(concat_ws(' ', nullif(title, ''), nullif(forename, ''), surname)) AS name,
               nullif(trim(email), '') AS email
        FROM staff WHERE staff_id IN (SELECT unnest($ids))
        """,
        {"ids": ids},
    )
    return {
        row.staff_id: {"name": row.name, "email": None if pd.isna(row.email) else row.email}
        for row in frame.itertuples(index=False)
    }


def pupil_role_holders(warehouse: Warehouse, student_ids: Iterable[str], role: str) -> pd.DataFrame:
    """``student_id, staff_id`` pairs: who holds ``role`` for each pupil.

    ``role`` is a pupil role (form_tutor, head_of_year) or a whole-school role (each
    pupil gets every holder). Pupils with nobody in the role are simply absent.
    """
    ids = _ids(student_ids)
    if not ids:
        return pd.DataFrame(columns=["student_id", "staff_id"])
    if role in PUPIL_ROLES:
        column = PUPIL_ROLES[role]
        return warehouse.query(
            f"""
            SELECT DISTINCT s.student_id, r.staff_id
            FROM students s
            JOIN responsibilities r
              ON r.role = $role AND upper(trim(r.scope)) = upper(trim(CAST(s.{column} AS VARCHAR)))
            WHERE s.student_id IN (SELECT unnest($ids))
            ORDER BY 1, 2
            """,
            {"role": role, "ids": ids},
        )
    if role in SCHOOL_ROLES:
        return warehouse.query(
            """
            SELECT DISTINCT s.student_id, r.staff_id
            FROM students s CROSS JOIN responsibilities r
            WHERE r.role = $role AND s.student_id IN (SELECT unnest($ids))
            ORDER BY 1, 2
            """,
            {"role": role, "ids": ids},
        )
    raise ValueError(
        f"{role!r} is not a role relative to a pupil; use one of "
        f"{', '.join([*PUPIL_ROLES, *SCHOOL_ROLES])}."
    )


def heads_of_department(warehouse: Warehouse, subjects: Iterable[str]) -> dict[str, list[str]]:
    """``{subject: [staff_id, …]}``: the heads of department for each subject (case-blind)."""
    names = _ids(subjects)
    if not names:
        return {}
    frame = warehouse.query(
        """
        SELECT DISTINCT s.subject, r.staff_id
        FROM (SELECT unnest($subjects) AS subject) s
        JOIN responsibilities r
          ON r.role = 'head_of_department' AND upper(trim(r.scope)) = upper(trim(s.subject))
        ORDER BY 1, 2
        """,
        {"subjects": names},
    )
    out: dict[str, list[str]] = {}
    for row in frame.itertuples(index=False):
        out.setdefault(row.subject, []).append(row.staff_id)
    return out


def responsibilities_of(warehouse: Warehouse, staff_id: str) -> pd.DataFrame:
    """The ``role, scope`` rows a staff member holds (for "my pupils" and homepages)."""
    return warehouse.query(
        "SELECT role, coalesce(scope, '') AS scope FROM responsibilities "
        "WHERE staff_id = $id ORDER BY role, scope",
        {"id": staff_id},
    )


def responsibilities_table(warehouse: Warehouse) -> pd.DataFrame:
    """Every responsibility with the holder's name: ``staff, staff_id, role, scope``.

    ``role`` is the label (e.g. "Form tutor"); a blank scope reads "Whole school". One
    query, ordered by surname then role.
    """
    frame = warehouse.query(
        """
        SELECT trim(concat_ws(' ', nullif(s.title, ''), nullif(s.forename, ''), s.surname))
                   AS staff,
               r.staff_id, r.role, coalesce(nullif(trim(r.scope), ''), '') AS scope
        FROM responsibilities r JOIN staff s ON s.staff_id = r.staff_id
        ORDER BY s.surname, s.forename, r.staff_id, r.role, r.scope
        """
    )
    frame["role"] = frame["role"].map(lambda r: ROLE_LABELS.get(r, str(r).replace("_", " ")))
    frame["scope"] = frame["scope"].replace("", "Whole school")
    return frame[["staff", "staff_id", "role", "scope"]]
