"""The extract specs: one registry for every extract in the loading contract.

The readers, the validator, the loader, the warehouse schema and ``docs/extracts.md``
all come from these definitions (``python -m pipelines.docs --write`` regenerates the
docs; a test fails when they drift).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal[
    "id",
    "text",
    "date",
    "time",
    "timestamp",
    "int",
    "bool",
    "phone",
    "email",
    "upn",
    "code",
    "enum",
]
Kind = Literal["snapshot", "event", "update"]

DUCKDB_TYPES: dict[str, str] = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "int": "BIGINT",
    "bool": "BOOLEAN",
    "phone": "VARCHAR",
    "email": "VARCHAR",
    "upn": "VARCHAR",
    "code": "VARCHAR",
    "enum": "VARCHAR",
}

TYPE_HELP: dict[str, str] = {
    "id": "identifier (text)",
    "text": "text",
    "date": "date: YYYY-MM-DD or DD/MM/YYYY",
    "time": "time: HH:MM (24 h), seconds optional",
    "timestamp": "timestamp: YYYY-MM-DD HH:MM[:SS] or DD/MM/YYYY HH:MM[:SS], Europe/London",
    "int": "whole number",
    "bool": "Y/N, Yes/No, true/false or 1/0",
    "phone": "phone number; stored as given and as E.164 in <column>_e164",
    "email": "e-mail address",
    "upn": "13-character DfE UPN",
    "code": "attendance code",
    "enum": "one of the listed values",
}


@dataclass(frozen=True)
class Ref:
    """A column that must point at a row of another extract."""

    extract: str
    column: str
    severity: Literal["error", "warning"] = "error"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "text"
    required: bool = False
    help: str = ""
    default: str | None = None
    values: tuple[str, ...] = ()
    ref: Ref | None = None

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]


@dataclass(frozen=True)
class Extract:
    name: str
    kind: Kind
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    help: str
    restricted: bool = False
    aliases: tuple[str, ...] = field(default=())

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def table_columns(self) -> list[tuple[str, str]]:
        """Warehouse columns: every column plus an ``_e164`` companion for phones."""
        out = []
        for col in self.columns:
            out.append((col.name, col.duckdb_type))
            if col.type == "phone":
                out.append((f"{col.name}_e164", "VARCHAR"))
        return out


STUDENT = Ref("students", "student_id")
STAFF = Ref("staff", "staff_id", "warning")
C = Column

EXTRACTS: dict[str, Extract] = {
    e.name: e
    for e in [
        Extract(
            "students",
            "snapshot",
            ("student_id",),
            (
                C("student_id", "id", True, "MIS person id, unique (e.g. STE04049635)"),
                C(
                    "upn",
                    "upn",
                    help="13-character DfE UPN; check letter validated (warning if wrong)",
                ),
                C("adno", "id", help="admission number"),
                C("forename", "text", True, "legal forename"),
                C("surname", "text", True),
                C("preferred_forename", "text"),
                C("date_of_birth", "date"),
                C("year_group", "text", help="e.g. 7, 12, L3"),
                C("form", "text", help="registration group, e.g. 10B"),
                C(
                    "status",
                    "text",
                    True,
                    "enrolment status code, e.g. C01 (current) or L01 (left)",
                ),
                C("cohort", "text", help="e.g. 16-19, adult, apprentice, school"),
                C("email", "email", help="pupil e-mail"),
                C("mobile", "phone", help="pupil mobile"),
            ),
            "One row per pupil or student.",
            aliases=("pupils",),
        ),
        Extract(
            "contacts",
            "snapshot",
            ("student_id", "contact_id"),
            (
                C("student_id", "id", True, ref=STUDENT),
                C("contact_id", "id", True, "details must agree across a contact's rows"),
                C("title", "text"),
                C("forename", "text"),
                C("surname", "text", True),
                C(
                    "relationship",
                    "text",
                    help="e.g. Mother, Father, Carer, or CTF codes PAM, PAF, REL, OTH",
                ),
                C("priority", "int", help="1 = first to contact"),
                C("parental_responsibility", "bool", default="N"),
                C("mobile", "phone"),
                C("email", "email"),
                C("home_phone", "phone"),
                C("address_line1", "text", help="for letters"),
                C("address_line2", "text"),
                C("town", "text"),
                C("postcode", "text"),
                C("sms_consent", "bool", default="Y"),
                C("email_consent", "bool", default="Y"),
            ),
            "One row per student–contact link (a parent of two siblings has two rows).",
        ),
        Extract(
            "portal_links",
            "snapshot",
            ("account_id", "student_id"),
            (
                C("account_id", "id", True),
                C("student_id", "id", True, ref=STUDENT),
                C("name", "text"),
                C(
                    "mobile",
                    "phone",
                    help="the mobile held on the portal (may differ from contacts.mobile)",
                ),
                C("email", "email"),
                C("registered", "bool", default="Y"),
                C("link_status", "enum", True, values=("active", "suspended")),
            ),
            "Parents' Communications Portal accounts linked to students.",
        ),
        Extract(
            "staff",
            "snapshot",
            ("staff_id",),
            (
                C("staff_id", "id", True),
                C("title", "text"),
                C("forename", "text"),
                C("surname", "text", True),
                C("email", "email"),
                C("mobile", "phone"),
            ),
            "Members of staff.",
        ),
        Extract(
            "responsibilities",
            "snapshot",
            ("staff_id", "role", "scope"),
            (
                C("staff_id", "id", True, ref=STAFF),
                C(
                    "role",
                    "enum",
                    True,
                    values=(
                        "form_tutor",
                        "head_of_year",
                        "head_of_department",
                        "attendance_officer",
                        "safeguarding_lead",
                        "office",
                        "senior_leader",
                    ),
                ),
                C(
                    "scope",
                    "text",
                    help="form code for form_tutor, year group for head_of_year, "
                    "subject for head_of_department, blank for whole school",
                ),
            ),
            "Who is responsible for which pupils.",
        ),
        Extract(
            "classes",
            "snapshot",
            ("class_id",),
            (
                C("class_id", "id", True),
                C("subject", "text"),
                C("year_group", "text"),
                C("staff_id", "id", help="main teacher", ref=STAFF),
            ),
            "Teaching groups.",
        ),
        Extract(
            "class_members",
            "snapshot",
            ("class_id", "student_id"),
            (
                C("class_id", "id", True, ref=Ref("classes", "class_id")),
                C("student_id", "id", True, ref=STUDENT),
            ),
            "Which students are in which class.",
        ),
        Extract(
            "medical",
            "snapshot",
            ("student_id", "condition"),
            (
                C("student_id", "id", True, ref=STUDENT),
                C("condition", "text", True),
                C("details", "text"),
                C("severity", "text"),
            ),
            "Medical notes. Restricted: only roles allowed to see medical data may query it.",
            restricted=True,
        ),
        Extract(
            "lessons",
            "event",
            ("lesson_id",),
            (
                C("lesson_id", "id", True),
                C("date", "date", True),
                C("start_time", "time", True),
                C("end_time", "time", True, "after start_time"),
                C(
                    "kind",
                    "enum",
                    default="lesson",
                    values=("lesson", "session"),
                    help="lesson, or session for statutory AM/PM registration",
                ),
                C("period", "text", help="e.g. 1, AM"),
                C("class_id", "id", ref=Ref("classes", "class_id")),
                C("subject", "text"),
                C("staff_id", "id", help="teacher who must take the register", ref=STAFF),
                C("room", "text"),
                C(
                    "register_taken_at",
                    "timestamp",
                    help="when the register was first saved; blank = not taken",
                ),
            ),
            "Timetabled lessons and statutory AM/PM registration sessions.",
        ),
        Extract(
            "marks",
            "event",
            ("lesson_id", "student_id"),
            (
                C("lesson_id", "id", True, ref=Ref("lessons", "lesson_id")),
                C("student_id", "id", True, ref=STUDENT),
                C(
                    "mark",
                    "code",
                    True,
                    "attendance code (DfE 2024 set plus the school's own codes)",
                ),
                C("minutes_late", "int"),
                C("comment", "text"),
                C("recorded_at", "timestamp", help="when the mark was last set"),
                C("recorded_by", "id", help="staff_id", ref=STAFF),
            ),
            "One attendance mark per student per lesson.",
        ),
        Extract(
            "behaviour",
            "event",
            ("incident_id",),
            (
                C("incident_id", "id", True),
                C("student_id", "id", True, ref=STUDENT),
                C("occurred_at", "timestamp", True),
                C("type", "text", True, "e.g. Disruption, Homework not done, Praise"),
                C("polarity", "enum", True, values=("positive", "negative")),
                C("points", "int"),
                C("location", "text"),
                C("outcome", "text"),
                C("recorded_by", "id", help="staff_id", ref=STAFF),
                C("comment", "text"),
            ),
            "Behaviour incidents, positive and negative.",
        ),
        Extract(
            "detentions",
            "event",
            ("detention_id",),
            (
                C("detention_id", "id", True),
                C("student_id", "id", True, ref=STUDENT),
                C("date", "date", True),
                C("start_time", "time"),
                C("end_time", "time"),
                C("location", "text"),
                C("reason", "text"),
                C(
                    "status",
                    "enum",
                    default="scheduled",
                    values=("scheduled", "attended", "missed", "cancelled"),
                ),
                C("incident_id", "id", ref=Ref("behaviour", "incident_id", "warning")),
            ),
            "Detentions.",
        ),
        Extract(
            "homework",
            "event",
            ("assignment_id",),
            (
                C("assignment_id", "id", True),
                C("class_id", "id", True, ref=Ref("classes", "class_id")),
                C("title", "text", True),
                C("set_date", "date"),
                C("due_date", "date", True),
                C("staff_id", "id", ref=STAFF),
            ),
            "Homework assignments.",
        ),
        Extract(
            "homework_status",
            "event",
            ("assignment_id", "student_id"),
            (
                C("assignment_id", "id", True, ref=Ref("homework", "assignment_id")),
                C("student_id", "id", True, ref=STUDENT),
                C("status", "enum", True, values=("submitted", "outstanding", "late")),
            ),
            "Each student's status for each assignment.",
        ),
        Extract(
            "grades",
            "event",
            ("grade_id",),
            (
                C("grade_id", "id", True),
                C("student_id", "id", True, ref=STUDENT),
                C("class_id", "id", ref=Ref("classes", "class_id")),
                C("subject", "text"),
                C("assessment", "text"),
                C("grade", "text"),
                C("comment", "text"),
                C("entered_by", "id", help="staff_id", ref=STAFF),
                C("entered_at", "timestamp"),
            ),
            "Assessment grades and comments.",
        ),
        Extract(
            "student_emails",
            "update",
            ("adno", "upn"),
            (
                C("adno", "id", help="admission number; give adno or upn"),
                C("upn", "id", help="UPN; give adno or upn"),
                C("email", "email", True),
            ),
            "Bulk update of pupils' e-mail addresses, matched by ADNO or UPN (whichever "
            "column the file has). Rows that match no pupil or more than one, and invalid "
            "addresses, are errors.",
            aliases=("pupil_emails", "emails"),
        ),
    ]
}

WAREHOUSE_EXTRACTS = [e for e in EXTRACTS.values() if e.kind != "update"]


def normalise_name(name: str) -> str:
    """``'Student ID'``, ``'student-id'`` and ``'STUDENT_ID'`` all become ``'student_id'``."""
    out = []
    for ch in name.strip().lstrip("\ufeff").lower():
        out.append("_" if ch in " -_" else ch)
    text = "".join(out)
    while "__" in text:
        text = text.replace("__", "_")
    return text.strip("_")


def extract_for_name(name: str) -> Extract | None:
    """The extract a file stem names (``Marks``, ``class-members``, an alias), if any."""
    key = normalise_name(name)
    for extract in EXTRACTS.values():
        if key == extract.name or key in extract.aliases:
            return extract
    return None


def create_table_sql(extract: Extract, schema: str) -> str:
    cols = ", ".join(f'"{name}" {sqltype}' for name, sqltype in extract.table_columns())
    return f'CREATE TABLE IF NOT EXISTS {schema}."{extract.name}" ({cols})'
