"""Who gets a message: pupils → their contacts, by a rule, with every exclusion explained.

Pure planning over DataFrames read by :mod:`reports.recipients`; nothing is sent or
written here, so the same code previews a send in the dashboard and plans it for real.

The rule: each selected pupil's contacts with priority up to ``max_priority``
(optionally only those with parental responsibility). A contact linked to several
selected pupils (siblings) gets ONE message that names them all. Contacts that fall
inside the rule but cannot be reached are listed with the reason, before anything is
sent: no consent, no mobile, invalid number, no e-mail, invalid e-mail, no postal
address, opted out, or sharing a number or address already messaged in this batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from email_validator import EmailNotValidError, validate_email

from senders.base import Channel


@dataclass(frozen=True)
class RecipientRule:
    """Which of a pupil's contacts a message goes to; with ``pupils``, the pupils
    themselves at their own e-mail address (the students extract's ``email``)."""

    channel: Channel
    max_priority: int = 1
    parental_responsibility_only: bool = False
    pupils: bool = False

    def describe(self) -> str:
        if self.pupils:
            return "pupils' own e-mail addresses"
        who = "priority 1" if self.max_priority == 1 else f"priority 1–{self.max_priority}"
        if self.parental_responsibility_only:
            who += " with parental responsibility"
        return f"{who} contacts"


@dataclass
class Recipient:
    """One contact who will get one message, about one or more pupils."""

    contact_id: str
    to: str
    contact: dict[str, Any]
    students: list[dict[str, Any]] = field(default_factory=list)

    @property
    def student_ids(self) -> list[str]:
        return [s["student_id"] for s in self.students]


@dataclass(frozen=True)
class Exclusion:
    """A pupil or contact left out, and why (in words a member of staff understands)."""

    student_id: str
    contact_id: str | None
    reason: str

    def as_dict(self) -> dict[str, str | None]:
        return {"student_id": self.student_id, "contact_id": self.contact_id, "reason": self.reason}


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return str(value).strip()


def _flag(value: Any, default: bool) -> bool:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return default
    return bool(value)


def email_address(value: str) -> str | None:
    """The normalised address, or None if it is not a valid e-mail address."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def address_block(contact: dict[str, Any]) -> str:
    """The postal address block for a letter: name, then address lines, one per line."""
    name = " ".join(
        p
        for p in (
            _text(contact.get("title")),
            _text(contact.get("forename")),
            _text(contact.get("surname")),
        )
        if p
    )
    lines = [name] + [
        _text(contact.get(k)) for k in ("address_line1", "address_line2", "town", "postcode")
    ]
    return "\n".join(line for line in lines if line)


def _address_for(
    contact: dict[str, Any], channel: Channel, opted_out: set[str]
) -> tuple[str | None, str | None]:
    """(address, None) when reachable on the channel, else (None, reason)."""
    if channel == "sms":
        if not _flag(contact.get("sms_consent"), True):
            return None, "no SMS consent"
        if not _text(contact.get("mobile")):
            return None, "no mobile"
        e164 = _text(contact.get("mobile_e164"))
        if not e164:
            return None, f"invalid number ({_text(contact.get('mobile'))})"
        if e164 in opted_out:
            return None, "opted out of SMS"
        return e164, None
    if channel == "email":
        if not _flag(contact.get("email_consent"), True):
            return None, "no e-mail consent"
        raw = _text(contact.get("email"))
        if not raw:
            return None, "no e-mail"
        address = email_address(raw)
        if address is None:
            return None, f"invalid e-mail ({raw})"
        if address.lower() in opted_out:
            return None, "opted out of e-mail"
        return address, None
    if not _text(contact.get("address_line1")) or not _text(contact.get("postcode")):
        return None, "no postal address"
    return address_block(contact), None


def choose_recipients(
    students: pd.DataFrame,
    contacts: pd.DataFrame,
    rule: RecipientRule,
    order: list[str],
    opted_out: set[str] | None = None,
) -> tuple[list[Recipient], list[Exclusion]]:
    """Plan recipients for the pupils in ``order`` (their ids, as selected).

    ``students`` and ``contacts`` are the rows of :func:`reports.recipients.students_by_id`
    and :func:`reports.recipients.contacts_of`. Returns recipients in selection order
    and every exclusion.
    """
    opted_out = opted_out or set()
    pupils = {row["student_id"]: row for row in students.to_dict("records")}
    if rule.pupils:
        return _choose_pupils(pupils, rule, order, opted_out)
    by_student: dict[str, list[dict[str, Any]]] = {}
    for row in contacts.to_dict("records"):
        by_student.setdefault(row["student_id"], []).append(row)
    recipients: dict[str, Recipient] = {}
    by_address: dict[str, str] = {}
    excluded: list[Exclusion] = []
    for student_id in dict.fromkeys(order):
        pupil = pupils.get(student_id)
        if pupil is None:
            excluded.append(Exclusion(student_id, None, "not a pupil in the current data"))
            continue
        candidates = [
            c
            for c in by_student.get(student_id, [])
            if c.get("priority") is not None
            and not pd.isna(c.get("priority"))
            and int(c["priority"]) <= rule.max_priority
            and (
                not rule.parental_responsibility_only
                or _flag(c.get("parental_responsibility"), False)
            )
        ]
        if not candidates:
            excluded.append(Exclusion(student_id, None, f"no {rule.describe()}"))
            continue
        for contact in candidates:
            contact_id = _text(contact["contact_id"])
            if contact_id in recipients:
                recipients[contact_id].students.append(pupil)
                continue
            address, reason = _address_for(contact, rule.channel, opted_out)
            if address is None:
                excluded.append(Exclusion(student_id, contact_id, reason or "unreachable"))
                continue
            key = address.lower()
            if key in by_address and by_address[key] != contact_id:
                excluded.append(
                    Exclusion(
                        student_id,
                        contact_id,
                        f"same {'number' if rule.channel == 'sms' else 'address'} as contact "
                        f"{by_address[key]}, who is already being sent this message",
                    )
                )
                continue
            by_address[key] = contact_id
            recipients[contact_id] = Recipient(contact_id, address, contact, [pupil])
    return list(recipients.values()), excluded


PUPIL_PREFIX = "pupil:"


def pupil_contact(pupil: dict[str, Any]) -> dict[str, Any]:
    """A pupil written to directly, as a contact row (``contact_id`` ``pupil:<id>``)."""
    return {
        "student_id": pupil["student_id"],
        "contact_id": f"{PUPIL_PREFIX}{pupil['student_id']}",
        "title": "",
        "forename": _text(pupil.get("preferred_forename")) or _text(pupil.get("forename")),
        "surname": _text(pupil.get("surname")),
        "relationship": "Pupil",
        "email": _text(pupil.get("email")),
    }


def _choose_pupils(
    pupils: dict[str, dict[str, Any]],
    rule: RecipientRule,
    order: list[str],
    opted_out: set[str],
) -> tuple[list[Recipient], list[Exclusion]]:
    """Each pupil in ``order`` at their own e-mail address (e-mail only)."""
    recipients: list[Recipient] = []
    excluded: list[Exclusion] = []
    seen: dict[str, str] = {}
    for student_id in dict.fromkeys(order):
        pupil = pupils.get(student_id)
        if pupil is None:
            excluded.append(Exclusion(student_id, None, "not a pupil in the current data"))
            continue
        contact = pupil_contact(pupil)
        contact_id = contact["contact_id"]
        if rule.channel != "email":
            excluded.append(
                Exclusion(student_id, contact_id, "pupils can be written to by e-mail only")
            )
            continue
        raw = contact["email"]
        address = email_address(raw) if raw else None
        if not raw:
            reason = "no pupil e-mail in the students extract"
        elif address is None:
            reason = f"invalid pupil e-mail ({raw})"
        elif address.lower() in opted_out:
            reason = "opted out of e-mail"
        elif address.lower() in seen:
            reason = f"same address as pupil {seen[address.lower()]}, already being sent this"
        else:
            seen[address.lower()] = student_id
            recipients.append(Recipient(contact_id, address, contact, [pupil]))
            continue
        excluded.append(Exclusion(student_id, contact_id, reason))
    return recipients, excluded
