"""Contact details: who can be reached, and what is missing or wrong.

Read-only queries over the current warehouse generation. "Current" students are those
whose ``status`` starts with ``C`` (``C01``, ``C02`` …). A number is *invalid* when its
column (``mobile`` or ``home_phone``) holds something but the loader could not turn it
into E.164 (the ``_e164`` companion column is NULL).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from schoolcomms.warehouse import Warehouse

CURRENT_STATUS = "C%"

# Problem kinds, as shown in the ``problems`` column and offered as filters; each has a
# boolean column in contact_details() that is True when the student has that problem.
NO_PRIORITY1 = "no priority-1 contact"
NO_MOBILE = "no valid mobile"
NO_EMAIL = "no e-mail"
INVALID_NUMBERS = "invalid numbers"
PROBLEM_KINDS: dict[str, str] = {
    NO_PRIORITY1: "no_priority1",
    NO_MOBILE: "no_valid_mobile",
    NO_EMAIL: "no_email",
    INVALID_NUMBERS: "has_invalid_numbers",
}

DETAIL_COLUMNS = [
    "student_id",
    "name",
    "year_group",
    "form",
    "has_priority1",
    "priority1_contact",
    "priority1_mobile",
    "has_valid_mobile",
    "has_email",
    "invalid_numbers",
    "problems",
]
INVALID_COLUMNS = [
    "student_id",
    "student_name",
    "year_group",
    "form",
    "contact_id",
    "contact_name",
    "relationship",
    "priority",
    "column",
    "number",
]

# The phone columns of contacts checked for numbers that did not normalise.
_PHONE_COLUMNS = ("mobile", "home_phone")


def _given(column: str, alias: str = "c") -> str:
    """SQL: the column holds a non-blank value."""
    return f"nullif(trim({alias}.{column}), '') IS NOT NULL"


def _invalid(column: str, alias: str = "c") -> str:
    """SQL: the column holds a value that did not normalise to E.164."""
    return f"({_given(column, alias)} AND {alias}.{column}_e164 IS NULL)"


_NAME_SQL = (
    "trim(coalesce(nullif(trim({a}.preferred_forename), ''), {a}.forename, '') "
    "|| ' ' || coalesce({a}.surname, ''))"
)
_CONTACT_NAME_SQL = (
    "trim(concat_ws(' ', nullif(trim(c.title), ''), nullif(trim(c.forename), ''), c.surname))"
)
_ORDER_SQL = (
    "TRY_CAST(s.year_group AS INTEGER) NULLS LAST, s.year_group NULLS LAST, "
    "s.form NULLS LAST, s.surname, s.forename, s.student_id"
)

_DETAILS_SQL = f"""
WITH s AS (
    SELECT * FROM students WHERE status LIKE ?
),
per_student AS (
    SELECT
        c.student_id,
        bool_or(c.priority = 1) AS has_priority1,
        arg_min({_CONTACT_NAME_SQL}, c.contact_id) FILTER (WHERE c.priority = 1)
            AS priority1_contact,
        arg_min(c.mobile, c.contact_id) FILTER (WHERE c.priority = 1) AS priority1_mobile,
        bool_or(c.mobile_e164 IS NOT NULL) AS has_valid_mobile,
        bool_or({_given("email")}) AS has_email,
        sum(CAST({_invalid("mobile")} AS INTEGER) + CAST({_invalid("home_phone")} AS INTEGER))
            AS invalid_numbers
    FROM contacts c
    WHERE c.student_id IN (SELECT student_id FROM s)
    GROUP BY c.student_id
)
SELECT
    s.student_id,
    {_NAME_SQL.format(a="s")} AS name,
    s.year_group,
    s.form,
    coalesce(p.has_priority1, false) AS has_priority1,
    p.priority1_contact,
    p.priority1_mobile,
    coalesce(p.has_valid_mobile, false) AS has_valid_mobile,
    coalesce(p.has_email, false) AS has_email,
    CAST(coalesce(p.invalid_numbers, 0) AS BIGINT) AS invalid_numbers,
    concat_ws('; ',
        CASE WHEN NOT coalesce(p.has_priority1, false) THEN '{NO_PRIORITY1}' END,
        CASE WHEN NOT coalesce(p.has_valid_mobile, false) THEN '{NO_MOBILE}' END,
        CASE WHEN NOT coalesce(p.has_email, false) THEN '{NO_EMAIL}' END,
        CASE WHEN coalesce(p.invalid_numbers, 0) = 1 THEN '1 invalid number'
             WHEN coalesce(p.invalid_numbers, 0) > 1
             THEN CAST(p.invalid_numbers AS VARCHAR) || ' invalid numbers' END
    ) AS problems
FROM s LEFT JOIN per_student p ON p.student_id = s.student_id
ORDER BY {_ORDER_SQL}
"""

_INVALID_SQL = " UNION ALL ".join(
    f"""
SELECT
    s.student_id,
    {_NAME_SQL.format(a="s")} AS student_name,
    s.year_group,
    s.form,
    c.contact_id,
    {_CONTACT_NAME_SQL} AS contact_name,
    c.relationship,
    c.priority,
    '{column}' AS "column",
    c.{column} AS number,
    s.surname AS _surname, s.forename AS _forename, {i} AS _col
FROM contacts c JOIN students s ON s.student_id = c.student_id
WHERE s.status LIKE ? AND {_invalid(column)}
"""
    for i, column in enumerate(_PHONE_COLUMNS)
)


def contact_details(warehouse: Warehouse) -> pd.DataFrame:
    """One row per current student (``status LIKE 'C%'``) with how they can be reached.

    Columns: ``student_id``, ``name``, ``year_group``, ``form``, ``has_priority1``,
    ``priority1_contact`` (name of the priority-1 contact, the first by contact_id if
    there are several), ``priority1_mobile`` (that contact's mobile, as given),
    ``has_valid_mobile`` (any contact has a mobile that normalised to E.164),
    ``has_email`` (any contact has an e-mail address), ``invalid_numbers`` (how many
    mobile/home phone numbers of the student's contacts are given but invalid),
    ``problems`` (text, e.g. "no priority-1 contact; no valid mobile"), and one boolean
    column per problem kind (see :data:`PROBLEM_KINDS`). Raises
    :class:`schoolcomms.warehouse.NoWarehouse` when nothing has been loaded.
    """
    frame = warehouse.query(_DETAILS_SQL, [CURRENT_STATUS])
    for column in ("has_priority1", "has_valid_mobile", "has_email"):
        frame[column] = frame[column].astype(bool)
    frame["invalid_numbers"] = frame["invalid_numbers"].astype("int64")
    frame["no_priority1"] = ~frame["has_priority1"]
    frame["no_valid_mobile"] = ~frame["has_valid_mobile"]
    frame["no_email"] = ~frame["has_email"]
    frame["has_invalid_numbers"] = frame["invalid_numbers"] > 0
    return frame[[*DETAIL_COLUMNS, *PROBLEM_KINDS.values()]].reset_index(drop=True)


def contact_summary(warehouse: Warehouse) -> dict[str, int]:
    """Counts over current students: how many lack a way to be reached.

    Keys: ``students``, ``without_priority1``, ``without_valid_mobile``,
    ``without_email``, ``students_with_invalid_numbers``, ``contacts_with_invalid_numbers``
    (distinct contacts, by contact_id, with at least one invalid number) and
    ``invalid_numbers`` (numbers given but invalid).
    """
    return summarise(contact_details(warehouse), invalid_numbers(warehouse))


def summarise(details: pd.DataFrame, invalid: pd.DataFrame) -> dict[str, int]:
    """:func:`contact_summary` of frames already read: :func:`contact_details` and
    :func:`invalid_numbers` (so that a cached copy of each is not read again)."""
    return {
        "students": len(details),
        "without_priority1": int(details["no_priority1"].sum()),
        "without_valid_mobile": int(details["no_valid_mobile"].sum()),
        "without_email": int(details["no_email"].sum()),
        "students_with_invalid_numbers": int(details["has_invalid_numbers"].sum()),
        "contacts_with_invalid_numbers": int(invalid["contact_id"].nunique()),
        "invalid_numbers": len(invalid),
    }


def invalid_numbers(warehouse: Warehouse) -> pd.DataFrame:
    """Every phone number of a current student's contact that is given but invalid.

    One row per number: ``student_id``, ``student_name``, ``year_group``, ``form``,
    ``contact_id``, ``contact_name``, ``relationship``, ``priority``, ``column``
    (``mobile`` or ``home_phone``) and ``number`` (as given in the extract).
    """
    sql = (
        f"SELECT * FROM ({_INVALID_SQL}) ORDER BY _surname, _forename, student_id, contact_id, _col"
    )
    frame = warehouse.query(sql, [CURRENT_STATUS] * len(_PHONE_COLUMNS))
    return frame[INVALID_COLUMNS].reset_index(drop=True)


def filter_details(
    frame: pd.DataFrame,
    *,
    forms: Iterable[str] = (),
    year_groups: Iterable[str] = (),
    kinds: Iterable[str] = (),
) -> pd.DataFrame:
    """Rows of :func:`contact_details` in the given forms and year groups (all if empty)
    that have at least one of the given problem kinds (any row if none are given)."""
    forms, year_groups, kinds = list(forms), list(year_groups), list(kinds)
    mask = pd.Series(True, index=frame.index)
    if forms:
        mask &= frame["form"].isin(forms)
    if year_groups:
        mask &= frame["year_group"].isin(year_groups)
    if kinds:
        unknown = [k for k in kinds if k not in PROBLEM_KINDS]
        if unknown:
            raise ValueError(
                f"Unknown problem kind(s): {', '.join(unknown)}; "
                f"choose from {', '.join(PROBLEM_KINDS)}."
            )
        mask &= frame[[PROBLEM_KINDS[k] for k in kinds]].any(axis=1)
    return frame[mask].reset_index(drop=True)


def problems_by(frame: pd.DataFrame, by: str = "form") -> pd.DataFrame:
    """How many students have each problem kind, per ``form`` or ``year_group``.

    Long format for charting: columns ``by`` (the group; "(none)" when blank),
    ``problem`` (a key of :data:`PROBLEM_KINDS`) and ``students``. Groups with no
    problems appear with zero counts so that every group is on the chart.
    """
    if by not in ("form", "year_group"):
        raise ValueError("problems_by groups by 'form' or 'year_group'.")
    columns = [by, "problem", "students"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    groups = frame[by].fillna("(none)").astype(str).replace("", "(none)").rename(by)
    counts = frame[list(PROBLEM_KINDS.values())].astype("int64").groupby(groups).sum()
    counts = counts.reindex(school_order(counts.index))
    counts.columns = pd.Index(list(PROBLEM_KINDS), name="problem")
    long = counts.stack().rename("students").reset_index()
    return long[columns].astype({"students": "int64"}).reset_index(drop=True)


def school_order(values: Iterable[str]) -> list[str]:
    """Year groups and forms in school order: 7, 7A, 8, …, 13, then anything else."""

    def key(value: str) -> tuple[int, int, str]:
        match = re.match(r"\d+", value)
        return (0, int(match.group()), value) if match else (1, 0, value)

    return sorted(values, key=key)


__all__ = [
    "PROBLEM_KINDS",
    "contact_details",
    "contact_summary",
    "filter_details",
    "invalid_numbers",
    "problems_by",
    "school_order",
    "summarise",
]
