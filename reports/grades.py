"""Grades: assessment grades and comments, with the pupil, class and teacher around them.

Read-only queries over the current warehouse generation, and pure filters for the
Grades page. A class's teacher is ``classes.staff_id``; a teacher sees the grades of
their own classes only (``teacher_id``), other roles see every grade.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from reports.contacts import school_order
from schoolcomms.warehouse import Warehouse

GRADE_COLUMNS = [
    "grade_id",
    "student_id",
    "name",
    "year_group",
    "form",
    "class_id",
    "subject",
    "assessment",
    "grade",
    "comment",
    "teacher_id",
    "teacher",
    "entered_by",
    "entered_by_name",
    "entered_at",
]
# Filter name -> grades column, in the order the page shows the filters.
FILTERS: dict[str, str] = {
    "subjects": "subject",
    "classes": "class_id",
    "assessments": "assessment",
    "year_groups": "year_group",
}

_STAFF_NAME = "trim(concat_ws(' ', nullif({a}.title, ''), nullif({a}.forename, ''), {a}.surname))"
_GRADES_SQL = f"""
SELECT g.grade_id,
       g.student_id,
       trim(coalesce(nullif(trim(s.preferred_forename), ''), s.forename, '')
            || ' ' || coalesce(s.surname, '')) AS name,
       s.year_group,
       s.form,
       g.class_id,
       coalesce(nullif(trim(g.subject), ''), c.subject) AS subject,
       g.assessment,
       g.grade,
       g.comment,
       c.staff_id AS teacher_id,
       {_STAFF_NAME.format(a="t")} AS teacher,
       g.entered_by,
       {_STAFF_NAME.format(a="e")} AS entered_by_name,
       g.entered_at
FROM grades g
LEFT JOIN students s ON s.student_id = g.student_id
LEFT JOIN classes c ON c.class_id = g.class_id
LEFT JOIN staff t ON t.staff_id = c.staff_id
LEFT JOIN staff e ON e.staff_id = g.entered_by
{{where}}
ORDER BY g.entered_at DESC NULLS LAST, subject NULLS LAST, g.assessment NULLS LAST,
         s.surname, s.forename, g.student_id, g.grade_id
"""


def grades(warehouse: Warehouse, *, teacher_staff_id: str | None = None) -> pd.DataFrame:
    """Every grade, newest first, or only those of ``teacher_staff_id``'s classes.

    Columns: :data:`GRADE_COLUMNS` — the grade's own fields, the pupil's ``name``,
    ``year_group`` and ``form``, the class teacher (``teacher_id``, ``teacher``) and
    who entered it (``entered_by``, ``entered_by_name``); names are blank when the
    staff member is not in the staff extract. ``subject`` falls back to the class's.
    """
    if teacher_staff_id is None:
        frame = warehouse.query(_GRADES_SQL.format(where=""))
    else:
        frame = warehouse.query(
            _GRADES_SQL.format(where="WHERE c.staff_id = $teacher"),
            {"teacher": str(teacher_staff_id)},
        )
    for column in ("teacher", "entered_by_name"):
        frame[column] = frame[column].replace("", None)
    return frame[GRADE_COLUMNS].reset_index(drop=True)


def grade_options(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The values each filter offers (``subjects``, ``classes``, ``assessments``,
    ``year_groups``): distinct non-blank values, years and classes in school order."""
    out: dict[str, list[str]] = {}
    for name, column in FILTERS.items():
        # unique() first: the distinct values are few, the cells tens of thousands.
        values = {str(v) for v in frame[column].dropna().unique() if str(v).strip()}
        out[name] = school_order(values) if name in ("year_groups", "classes") else sorted(values)
    return out


def filter_grades(
    frame: pd.DataFrame,
    *,
    subjects: Iterable[str] = (),
    classes: Iterable[str] = (),
    assessments: Iterable[str] = (),
    year_groups: Iterable[str] = (),
    pupil: str = "",
) -> pd.DataFrame:
    """Rows of :func:`grades` matching every filter given (an empty filter matches all).

    ``pupil`` matches a student id exactly or any part of the pupil's name, ignoring case.
    """
    chosen: dict[str, list[str]] = {
        "subjects": list(subjects),
        "classes": list(classes),
        "assessments": list(assessments),
        "year_groups": list(year_groups),
    }
    mask = pd.Series(True, index=frame.index)
    for name, values in chosen.items():
        if values:
            mask &= frame[FILTERS[name]].astype(str).isin(values)
    text = (pupil or "").strip().lower()
    if text:
        ids = frame["student_id"].astype(str).str.lower() == text
        names = frame["name"].fillna("").str.lower().str.contains(text, regex=False)
        mask &= ids | names
    return frame[mask].reset_index(drop=True)


def grade_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """How many of each grade per subject (for a chart): ``subject``, ``grade``, ``grades``."""
    if frame.empty:
        return pd.DataFrame(columns=["subject", "grade", "grades"])
    data = frame.assign(
        subject=frame["subject"].fillna("(no subject)"),
        grade=frame["grade"].fillna("(blank)"),
    )
    counted = data.groupby(["subject", "grade"], as_index=False).size()
    return counted.rename(columns={"size": "grades"}).astype({"grades": "int64"})


def grade_label(row: dict[str, Any]) -> str:
    """A grade in words, e.g. "Ann Able · Maths · Autumn test: 6"."""
    parts = [row.get("name") or row.get("student_id"), row.get("subject"), row.get("assessment")]
    text = " · ".join(str(p) for p in parts if p is not None and not pd.isna(p) and str(p))
    grade = row.get("grade")
    shown = "(blank)" if grade is None or pd.isna(grade) or not str(grade) else str(grade)
    return f"{text}: {shown}"


__all__ = [
    "FILTERS",
    "GRADE_COLUMNS",
    "filter_grades",
    "grade_counts",
    "grade_label",
    "grade_options",
    "grades",
]
