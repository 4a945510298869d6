"""Contact reports: what was sent and what it cost, contact details held, staff e-mail, medical.

Messages come from the message log (:mod:`reports.messages`); contact details from
:mod:`reports.contacts`; staff addresses from :mod:`reports.staff`. Medical notes are
restricted: :func:`medical_notes` checks the caller's roles (action ``medical.view``)
before it reads anything, so a role that may not see them never queries the table.
Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from reports.contacts import CURRENT_STATUS
from reports.messages import CHARGED_STATUSES, london_month, messages_by
from reports.staff import staff_directory
from schoolcomms.roles import check_action
from schoolcomms.warehouse import Warehouse

SUMMARY_COLUMNS = ("messages", "sent", "failed", "texts", "segments", "cost_pence", "cost_pounds")
HELD_COLUMNS = ["detail", "held", "missing", "percent_held"]
STAFF_EMAIL_COLUMNS = ["staff_id", "name", "email", "has_email"]
MEDICAL_COLUMNS = [
    "student_id",
    "name",
    "year_group",
    "form",
    "condition",
    "severity",
    "details",
]


def message_summary(activity: pd.DataFrame, *by: str) -> pd.DataFrame:
    """Messages per value of ``by`` (``channel``, ``created_by``, ``status``, ``month``)
    with what the texts among them cost.

    ``activity`` is :func:`reports.messages.message_activity`. Columns: the ``by``
    columns, then :data:`SUMMARY_COLUMNS` — ``messages`` (all), ``sent`` (sent or
    delivered), ``failed``, ``texts`` (SMS sent or delivered), ``segments`` and
    ``cost_pence``/``cost_pounds`` of those texts. By month: oldest month first
    (``month`` is the first day of the UK calendar month); otherwise most messages first.
    """
    columns = [*by, *SUMMARY_COLUMNS]
    counts = messages_by(activity, *by)
    if counts.empty:
        return pd.DataFrame(columns=columns)
    data = (
        activity.assign(month=london_month(activity["created_at"])) if "month" in by else activity
    )
    keys = list(by)
    charged = data["status"].isin(CHARGED_STATUSES)
    texts = charged & (data["channel"] == "sms")
    extra = (
        data.assign(
            sent=charged.astype("int64"),
            failed=(data["status"] == "failed").astype("int64"),
            texts=texts.astype("int64"),
            segments=data["segments"].fillna(0).astype("int64").where(texts, 0),
            cost_pence=data["cost_pence"].fillna(0.0).where(texts, 0.0),
        )
        .groupby(keys, as_index=False)[["sent", "failed", "texts", "segments", "cost_pence"]]
        .sum()
    )
    out = counts.merge(extra, on=keys, how="left")
    out["cost_pence"] = out["cost_pence"].astype("float64").round(2)
    out["cost_pounds"] = (out["cost_pence"] / 100).round(2)
    for column in ("sent", "failed", "texts", "segments"):
        out[column] = out[column].astype("int64")
    if "month" in by:
        out = out.sort_values(keys)
    return out[columns].reset_index(drop=True)


def held_and_missing(summary: dict[str, int]) -> pd.DataFrame:
    """Contact details held and missing over current students, from
    :func:`reports.contacts.contact_summary`.

    One row per detail (a priority-1 contact, a valid mobile, an e-mail address, all
    numbers valid): ``detail``, ``held``, ``missing`` (students) and ``percent_held``.
    """
    students = int(summary["students"])
    missing = {
        "Priority-1 contact": summary["without_priority1"],
        "Valid mobile (any contact)": summary["without_valid_mobile"],
        "E-mail address (any contact)": summary["without_email"],
        "Every number valid": summary["students_with_invalid_numbers"],
    }
    rows = [
        {
            "detail": detail,
            "held": students - int(count),
            "missing": int(count),
            "percent_held": round(100 * (students - int(count)) / students, 1) if students else 0.0,
        }
        for detail, count in missing.items()
    ]
    return pd.DataFrame(rows, columns=HELD_COLUMNS)


def staff_emails(warehouse: Warehouse) -> pd.DataFrame:
    """Every staff member with their e-mail address; those with none first.

    Columns: :data:`STAFF_EMAIL_COLUMNS` (``has_email`` is False for a blank address).
    Alerts, reminders and notices cannot be e-mailed to staff without one.
    """
    frame = staff_directory(warehouse)
    frame["has_email"] = frame["email"].notna()
    frame = frame.sort_values("has_email", kind="stable")
    return frame[STAFF_EMAIL_COLUMNS].reset_index(drop=True)


def medical_notes(warehouse: Warehouse, roles: Iterable[str]) -> pd.DataFrame:
    """Medical notes of current students; only for roles allowed ``medical.view``.

    The roles are checked before the warehouse is read: anyone else gets
    :class:`schoolcomms.roles.PermissionDenied` and no query runs. Columns:
    :data:`MEDICAL_COLUMNS`, by year group, form and name.
    """
    check_action(list(roles), "medical.view")
    return warehouse.query(
        """
        SELECT s.student_id,
               trim(coalesce(nullif(trim(s.preferred_forename), ''), s.forename, '')
                    || ' ' || coalesce(s.surname, '')) AS name,
               s.year_group, s.form, m.condition, m.severity, m.details
        FROM medical m JOIN students s ON s.student_id = m.student_id
        WHERE s.status LIKE $current
        ORDER BY TRY_CAST(s.year_group AS INTEGER) NULLS LAST, s.year_group NULLS LAST,
                 s.form NULLS LAST, s.surname, s.forename, s.student_id, m.condition
        """,
        {"current": CURRENT_STATUS},
    )[MEDICAL_COLUMNS]


__all__ = [
    "HELD_COLUMNS",
    "MEDICAL_COLUMNS",
    "STAFF_EMAIL_COLUMNS",
    "SUMMARY_COLUMNS",
    "held_and_missing",
    "medical_notes",
    "message_summary",
    "staff_emails",
]
