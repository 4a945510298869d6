"""Outstanding homework for the Homework page: by pupil, class and subject.

One row per pupil and assignment whose ``homework_status`` is ``outstanding`` (not
handed in) or ``late`` (statuses compared in lower case), for current pupils only
(``status`` like ``C%``: a pupil who left is not chased). ``days_overdue`` counts from
the due date to ``today`` (0 when not yet due); ``subject`` is the class's;
``pupil_email`` is the pupil's own address from the students extract. Nothing here
writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pandas as pd

from reports.behaviour_pages import PUPIL_NAME, STAFF_NAME, pupil_filters, pupil_options
from schoolcomms.warehouse import Warehouse

OPEN_STATUSES = ("outstanding", "late")
HOMEWORK_COLUMNS = (
    "assignment_id",
    "title",
    "subject",
    "class_id",
    "set_date",
    "due_date",
    "days_overdue",
    "status",
    "student_id",
    "name",
    "year_group",
    "form",
    "staff_id",
    "teacher",
    "pupil_email",
)
BY_PUPIL_COLUMNS = ("student_id", "name", "year_group", "form", "outstanding", "overdue", "late")
BY_CLASS_COLUMNS = ("class_id", "subject", "teacher", "assignments", "pupils", "outstanding")
BY_SUBJECT_COLUMNS = ("subject", "assignments", "pupils", "outstanding", "overdue")


def _clean(values: Iterable[Any]) -> list[str]:
    return sorted({str(v).strip() for v in values if v is not None and str(v).strip()})


def outstanding(
    warehouse: Warehouse,
    today: dt.date,
    *,
    statuses: Iterable[str] = OPEN_STATUSES,
    overdue_only: bool = False,
    due_from: dt.date | None = None,
    due_to: dt.date | None = None,
    subjects: Iterable[str] = (),
    class_ids: Iterable[str] = (),
    staff_id: str | None = None,
    year_groups: Iterable[str] = (),
    forms: Iterable[str] = (),
    search: str = "",
) -> pd.DataFrame:
    """Outstanding (and late) homework as of ``today``: columns :data:`HOMEWORK_COLUMNS`.

    ``overdue_only`` keeps assignments due before ``today``; ``due_from`` and
    ``due_to`` (both included) limit the due dates; ``staff_id`` keeps the assignments
    set by that teacher or for their classes. Most overdue first.
    """
    if due_from and due_to and due_to < due_from:
        raise ValueError(f"The due dates end ({due_to}) before they start ({due_from}).")
    wanted = [s.lower() for s in _clean(statuses)] or list(OPEN_STATUSES)
    unknown = sorted(set(wanted) - set(OPEN_STATUSES))
    if unknown:
        raise ValueError(f"Unknown homework status {unknown}; use {', '.join(OPEN_STATUSES)}.")
    params: dict[str, Any] = {"today": today, "statuses": wanted}
    where = ["lower(hs.status) IN (SELECT unnest($statuses))", "s.status LIKE 'C%'"]
    if overdue_only:
        where.append("h.due_date < $today")
    if due_from:
        params["due_from"] = due_from
        where.append("h.due_date >= $due_from")
    if due_to:
        params["due_to"] = due_to
        where.append("h.due_date <= $due_to")
    subject_list, class_list = _clean(subjects), _clean(class_ids)
    if subject_list:
        params["subjects"] = subject_list
        where.append("c.subject IN (SELECT unnest($subjects))")
    if class_list:
        params["classes"] = class_list
        where.append("h.class_id IN (SELECT unnest($classes))")
    if staff_id:
        params["staff_id"] = staff_id
        where.append("(h.staff_id = $staff_id OR c.staff_id = $staff_id)")
    where += pupil_filters(
        params, year_groups=year_groups, forms=forms, search=search, id_column="hs.student_id"
    )
    return warehouse.query(
        f"""
        SELECT h.assignment_id, h.title, c.subject, h.class_id, h.set_date, h.due_date,
               greatest(date_diff('day', h.due_date, $today), 0)::BIGINT AS days_overdue,
               lower(hs.status) AS status, hs.student_id, {PUPIL_NAME} AS name,
               nullif(s.year_group, '') AS year_group, nullif(s.form, '') AS form,
               coalesce(h.staff_id, c.staff_id) AS staff_id,
               nullif({STAFF_NAME}, '') AS teacher, nullif(trim(s.email), '') AS pupil_email
        FROM homework_status hs
        JOIN homework h ON h.assignment_id = hs.assignment_id
        JOIN students s ON s.student_id = hs.student_id
        LEFT JOIN classes c ON c.class_id = h.class_id
        LEFT JOIN staff t ON t.staff_id = coalesce(h.staff_id, c.staff_id)
        WHERE {" AND ".join(where)}
        ORDER BY h.due_date, h.class_id, h.assignment_id, s.surname, s.forename, hs.student_id
        """,
        params,
    )


def by_pupil(frame: pd.DataFrame) -> pd.DataFrame:
    """Per pupil: ``outstanding`` pieces, how many are ``overdue`` and how many ``late``."""
    if frame.empty:
        return pd.DataFrame(columns=list(BY_PUPIL_COLUMNS))
    data = frame.assign(
        overdue=(frame["days_overdue"] > 0).astype(int),
        late=(frame["status"] == "late").astype(int),
    )
    table = (
        data.groupby("student_id", dropna=False)
        .agg(
            name=("name", "first"),
            year_group=("year_group", "first"),
            form=("form", "first"),
            outstanding=("assignment_id", "size"),
            overdue=("overdue", "sum"),
            late=("late", "sum"),
        )
        .reset_index()
        .sort_values(["outstanding", "overdue", "name"], ascending=[False, False, True])
    )
    return table[list(BY_PUPIL_COLUMNS)].reset_index(drop=True)


def by_class(frame: pd.DataFrame) -> pd.DataFrame:
    """Per class: its subject and teacher, assignments and pupils with work outstanding."""
    if frame.empty:
        return pd.DataFrame(columns=list(BY_CLASS_COLUMNS))
    table = (
        frame.groupby("class_id", dropna=False)
        .agg(
            subject=("subject", "first"),
            teacher=("teacher", "first"),
            assignments=("assignment_id", "nunique"),
            pupils=("student_id", "nunique"),
            outstanding=("assignment_id", "size"),
        )
        .reset_index()
        .sort_values(["outstanding", "class_id"], ascending=[False, True])
    )
    return table[list(BY_CLASS_COLUMNS)].reset_index(drop=True)


def by_subject(frame: pd.DataFrame) -> pd.DataFrame:
    """Per subject: assignments, pupils, pieces outstanding and how many are overdue."""
    if frame.empty:
        return pd.DataFrame(columns=list(BY_SUBJECT_COLUMNS))
    data = frame.assign(
        subject=frame["subject"].fillna("(no subject)"),
        overdue=(frame["days_overdue"] > 0).astype(int),
    )
    table = (
        data.groupby("subject")
        .agg(
            assignments=("assignment_id", "nunique"),
            pupils=("student_id", "nunique"),
            outstanding=("assignment_id", "size"),
            overdue=("overdue", "sum"),
        )
        .reset_index()
        .sort_values(["outstanding", "subject"], ascending=[False, True])
    )
    return table[list(BY_SUBJECT_COLUMNS)].reset_index(drop=True)


def filter_options(warehouse: Warehouse) -> dict[str, list[str]]:
    """Choices for the filters: ``subjects``, ``classes``, ``year_groups`` and ``forms``."""
    classes = warehouse.query(
        "SELECT DISTINCT h.class_id, c.subject FROM homework h "
        "LEFT JOIN classes c ON c.class_id = h.class_id"
    )
    return {
        "subjects": sorted(_clean(classes["subject"]), key=str.lower),
        "classes": sorted(_clean(classes["class_id"]), key=str.lower),
        **pupil_options(warehouse),
    }


__all__ = [
    "BY_CLASS_COLUMNS",
    "BY_PUPIL_COLUMNS",
    "BY_SUBJECT_COLUMNS",
    "HOMEWORK_COLUMNS",
    "OPEN_STATUSES",
    "by_class",
    "by_pupil",
    "by_subject",
    "filter_options",
    "outstanding",
]
