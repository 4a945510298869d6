"""Merge fields: the registry of groups and fields, their values, and context builders.

Merge fields are ``group.field`` (see :data:`MERGE_FIELDS`); ``students`` is a list
(``{% for s in students %}{{ s.forename }}{% endfor %}``); ``student_names`` and
``today`` (a date) are single values. A context holds only the groups that apply to the
message, so a template asking for ``detention.date`` in a message with no detention
fails loudly (test with ``{% if detention is defined %}``). Blank values (``None``)
render as nothing; dates render UK style (``Friday 20 November 2026``) through
:class:`UKDate`, :func:`ukdate` and :func:`hhmm` (the ``ukdate`` and ``time`` filters).

Context builders (:func:`build_context` and the ``*_fields`` helpers) turn warehouse
rows into these groups; :func:`sample_context` gives placeholder values for previews.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schoolcomms.settings import Settings

_STUDENT = {
    "id": "The pupil's MIS id (student_id).",
    "forename": "Legal forename.",
    "preferred_forename": "Preferred forename, or the legal forename if none is recorded.",
    "name": "Preferred (or legal) forename and surname, e.g. 'Millie Jones'.",
    "surname": "Surname.",
    "form": "Registration group, e.g. '9R'.",
    "year_group": "Year group, e.g. '9' or '12'.",
}
MERGE_FIELDS: dict[str, dict[str, str]] = {
    "student": _STUDENT,
    "contact": {
        "title": "Title, e.g. 'Mrs'.",
        "forename": "Forename.",
        "surname": "Surname.",
        "name": "'Mrs Jones' if a title is recorded, otherwise forename and surname.",
        "relationship": "Relationship to the pupil, e.g. 'Mother'.",
    },
    "students": dict(_STUDENT),
    "student_names": {},
    "lesson": {
        "date": "The lesson's date.",
        "start": "Start time, HH:MM.",
        "end": "End time, HH:MM.",
        "subject": "Subject, e.g. 'Maths'.",
        "period": "Period, e.g. '1'.",
    },
    "incident": {
        "date": "The date it happened.",
        "type": "Type, e.g. 'Praise' or 'Disruption'.",
        "location": "Where it happened.",
        "outcome": "What was done about it.",
        "points": "Behaviour points.",
        "comment": "The member of staff's comment.",
    },
    "detention": {
        "date": "The detention's date.",
        "start": "Start time, HH:MM.",
        "end": "End time, HH:MM.",
        "location": "Where it is held.",
        "reason": "Why it was set.",
    },
    "homework": {
        "title": "The assignment's title.",
        "subject": "Subject.",
        "due_date": "The date it was due.",
        "set_date": "The date it was set.",
    },
    "school": {
        "name": "The school's name (setting school_name).",
        "address": "The school's postal address (setting school_address).",
    },
    "today": {},
}
"""Merge field groups → field → help text. An empty group is a single value."""

MERGE_GROUPS: dict[str, str] = {
    "student": "The pupil the message is about.",
    "contact": "The parent or carer the message is to.",
    "students": "A list of the contact's selected children (siblings), each with the "
    "student fields: {% for s in students %}{{ s.forename }} {% endfor %}",
    "student_names": "The selected children's names joined, e.g. 'Amy and Ben' or "
    "'Amy, Ben and Cat': write {{ student_names }}.",
    "lesson": "The lesson the message is about (e.g. an absence).",
    "incident": "The behaviour incident the message is about.",
    "detention": "The detention the message is about.",
    "homework": "The homework the message is about.",
    "school": "Your school, from the settings.",
    "today": "Today's date, e.g. {{ today }} or {{ today|ukdate('short') }}.",
}
"""Merge field groups → what the group is, for the UI and the documentation."""

LIST_GROUPS: dict[str, str] = {"students": "student"}
"""List groups → the group each item looks like."""

DATE_STYLES: dict[str, str] = {
    "long": "{weekday} {day} {month} {year}",
    "day": "{weekday} {day} {month}",
    "medium": "{day} {month} {year}",
    "short": "{day:02d}/{month_number:02d}/{year}",
}
"""``ukdate`` styles (English names whatever the server's locale)."""
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August")
_MONTHS += ("September", "October", "November", "December")


# ---- values ----------------------------------------------------------------------------


class UKDate(date):
    """A date whose text form is UK style (``Friday 20 November 2026``)."""

    def __str__(self) -> str:
        return ukdate(self)


def as_date(value: Any) -> UKDate | None:
    """``value`` (date, datetime, ``YYYY-MM-DD[ …]``, ``DD/MM/YYYY``) as a UKDate; blank → None."""
    if _blank(value):
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return UKDate(value.year, value.month, value.day)
    text = str(value).strip()
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if match:
        return UKDate(int(match[3]), int(match[2]), int(match[1]))
    parsed = date.fromisoformat(text[:10])
    return UKDate(parsed.year, parsed.month, parsed.day)


def ukdate(value: Any, style: str = "long") -> str:
    """The ``ukdate`` filter: a date UK style; see :data:`DATE_STYLES`. Blank → ''."""
    if style not in DATE_STYLES:
        raise ValueError(f"ukdate style must be one of {', '.join(DATE_STYLES)}, not {style!r}")
    day = as_date(value)
    if day is None:
        return ""
    return DATE_STYLES[style].format(
        weekday=_WEEKDAYS[day.weekday()],
        day=day.day,
        month=_MONTHS[day.month - 1],
        month_number=day.month,
        year=day.year,
    )


def hhmm(value: Any) -> str:
    """The ``time`` filter: ``value`` (time, datetime, ``H:MM[:SS]``) as ``HH:MM``. Blank → ''."""
    if _blank(value):
        return ""
    if isinstance(value, datetime | dtime):
        return f"{value.hour:02d}:{value.minute:02d}"
    text = str(value).strip()
    match = re.search(r"(\d{1,2}):(\d{2})", text)
    if not match:
        raise ValueError(f"{text!r} is not a time (expected HH:MM)")
    return f"{int(match[1]):02d}:{match[2]}"


def _blank(value: Any) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(value != value)  # NaN, NaT
    except (TypeError, ValueError):  # pandas.NA
        return True


def _text(value: Any) -> str:
    return "" if _blank(value) else str(value).strip()


# ---- context builders ------------------------------------------------------------------


def join_names(names: Iterable[str]) -> str:
    """``Amy``, ``Amy and Ben``, ``Amy, Ben and Cat`` (blank names are skipped)."""
    kept = [n for n in (_text(n) for n in names) if n]
    if len(kept) < 2:
        return "".join(kept)
    return ", ".join(kept[:-1]) + " and " + kept[-1]


def student_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``student`` group from a ``students`` row (``student_id`` or ``id`` names it)."""
    forename, surname = _text(row.get("forename")), _text(row.get("surname"))
    preferred = _text(row.get("preferred_forename")) or forename
    return {
        "id": _text(row.get("student_id", row.get("id"))),
        "forename": forename,
        "preferred_forename": preferred,
        "name": f"{preferred} {surname}".strip(),
        "surname": surname,
        "form": _text(row.get("form")),
        "year_group": _text(row.get("year_group")),
    }


def contact_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``contact`` group from a ``contacts`` row."""
    title, forename = _text(row.get("title")), _text(row.get("forename"))
    surname = _text(row.get("surname"))
    name = f"{title} {surname}" if title and surname else f"{forename} {surname}"
    return {
        "title": title,
        "forename": forename,
        "surname": surname,
        "name": name.strip(),
        "relationship": _text(row.get("relationship")),
    }


def _pick(row: Mapping[str, Any], *names: str) -> Any:
    return next((row[n] for n in names if n in row and not _blank(row[n])), None)


def event_fields(group: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``lesson``, ``incident``, ``detention`` or ``homework`` group from a warehouse row.

    Canonical column names are accepted (``start_time``, ``occurred_at``…) as well as
    the field names; dates become :class:`UKDate`, times ``HH:MM`` text.
    """
    if group in ("lesson", "detention"):
        out = {"date": as_date(_pick(row, "date"))}
        out["start"] = hhmm(_pick(row, "start", "start_time"))
        out["end"] = hhmm(_pick(row, "end", "end_time"))
        keys = ("subject", "period") if group == "lesson" else ("location", "reason")
    elif group == "incident":
        out = {"date": as_date(_pick(row, "date", "occurred_at"))}
        points = _pick(row, "points")
        out["points"] = "" if points is None else int(points)
        keys = ("type", "location", "outcome", "comment")
    elif group == "homework":
        out = {k: as_date(_pick(row, k)) for k in ("due_date", "set_date")}
        keys = ("title", "subject")
    else:
        raise ValueError(f"event_fields does not build {group!r}")
    return {**{k: _text(row.get(k)) for k in keys}, **out}


def build_context(
    settings: Settings | None = None,
    *,
    student: Mapping[str, Any] | None = None,
    contact: Mapping[str, Any] | None = None,
    students: Sequence[Mapping[str, Any]] | None = None,
    lesson: Mapping[str, Any] | None = None,
    incident: Mapping[str, Any] | None = None,
    detention: Mapping[str, Any] | None = None,
    homework: Mapping[str, Any] | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """A render context from warehouse rows; only the groups given are present.

    ``students`` are a contact's selected children (siblings); if only ``student`` is
    given, ``students`` is that one pupil, and if only ``students``, ``student`` is the
    first. ``school`` comes from the settings and ``today`` defaults to today.
    """
    context: dict[str, Any] = {"today": as_date(today or date.today())}
    if settings is not None:
        context["school"] = {
            "name": _text(settings["school_name"]),
            "address": _text(settings["school_address"]),
        }
    pupils = [student_fields(s) for s in students or ([student] if student else [])]
    if pupils:
        context["student"] = student_fields(student) if student else pupils[0]
        context["students"] = pupils
        context["student_names"] = join_names(p["preferred_forename"] for p in pupils)
    if contact is not None:
        context["contact"] = contact_fields(contact)
    for group, row in (
        ("lesson", lesson),
        ("incident", incident),
        ("detention", detention),
        ("homework", homework),
    ):
        if row is not None:
            context[group] = event_fields(group, row)
    return context


def sample_context(settings: Settings | None = None, *, today: date | None = None) -> dict:
    """Realistic placeholder values for every merge field, for previews."""
    day = as_date(today or date.today()) or UKDate.today()
    millie = {"id": "STU0001234", "forename": "Amelia", "preferred_forename": "Millie"}
    millie |= {"name": "Millie Jones", "surname": "Jones", "form": "9R", "year_group": "9"}
    oliver = {"id": "STU0001301", "forename": "Oliver", "preferred_forename": "Ollie"}
    oliver |= {"name": "Ollie Jones", "surname": "Jones", "form": "7B", "year_group": "7"}
    name = _text(settings["school_name"]) if settings else "Sample School"
    address = _text(settings["school_address"]) if settings else ""
    return {
        "student": millie,
        "students": [millie, oliver],
        "student_names": "Millie and Ollie",
        "contact": {"title": "Mrs", "forename": "Sarah", "surname": "Jones"}
        | {"name": "Mrs Jones", "relationship": "Mother"},
        "lesson": {"date": day, "start": "09:00", "end": "10:00", "subject": "Maths"}
        | {"period": "1"},
        "incident": {"date": day, "type": "Praise", "location": "Science lab"}
        | {"outcome": "Certificate", "points": 3, "comment": "Excellent group work."},
        "detention": {"date": as_date(day + timedelta(days=1)), "start": "15:10"}
        | {"end": "15:40", "location": "Room H4", "reason": "Late to lessons"},
        "homework": {"title": "Fractions worksheet", "subject": "Maths"}
        | {"set_date": as_date(day - timedelta(days=7)), "due_date": as_date(day - timedelta(1))},
        "school": {"name": name, "address": address or "1 High Street, Anytown, AB1 2CD"},
        "today": day,
    }
