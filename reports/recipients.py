"""Warehouse reads for choosing message recipients: pupils and their contacts."""

from __future__ import annotations

import pandas as pd

from schoolcomms.warehouse import Warehouse

STUDENT_COLUMNS = [
    "student_id",
    "forename",
    "preferred_forename",
    "surname",
    "form",
    "year_group",
    "status",
    "email",
]
CONTACT_COLUMNS = [
    "student_id",
    "contact_id",
    "title",
    "forename",
    "surname",
    "relationship",
    "priority",
    "parental_responsibility",
    "mobile",
    "mobile_e164",
    "email",
    "address_line1",
    "address_line2",
    "town",
    "postcode",
    "sms_consent",
    "email_consent",
]


def _in_list(ids: list[str]) -> tuple[str, list[str]]:
    return ", ".join("?" for _ in ids), list(ids)


def students_by_id(warehouse: Warehouse, student_ids: list[str]) -> pd.DataFrame:
    """The named pupils (any status), in warehouse order; unknown ids are simply absent."""
    if not student_ids:
        return pd.DataFrame(columns=STUDENT_COLUMNS)
    marks, params = _in_list(student_ids)
    return warehouse.query(
        f"SELECT {', '.join(STUDENT_COLUMNS)} FROM students WHERE student_id IN ({marks})", params
    )


def contacts_of(warehouse: Warehouse, student_ids: list[str]) -> pd.DataFrame:
    """Every contact row of the named pupils, by pupil then priority."""
    if not student_ids:
        return pd.DataFrame(columns=CONTACT_COLUMNS)
    marks, params = _in_list(student_ids)
    return warehouse.query(
        f"SELECT {', '.join(CONTACT_COLUMNS)} FROM contacts WHERE student_id IN ({marks}) "
        "ORDER BY student_id, priority NULLS LAST, contact_id",
        params,
    )


def pupil_picker(warehouse: Warehouse) -> pd.DataFrame:
    """Current pupils for a selectable table: id, name, form, year group."""
    return warehouse.query(
        "SELECT student_id, coalesce(preferred_forename, forename) || ' ' || surname AS name, "
        "form, year_group FROM students WHERE status LIKE 'C%' "
        "ORDER BY try_cast(year_group AS INTEGER) NULLS LAST, year_group, form, surname, "
        "forename"
    )
