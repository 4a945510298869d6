"""Who hears of an alert: staff by role, name or group, and optionally parents.

Everything is read in bulk for all the alerts of a run at once (a few queries, never one
per pupil): role holders (:mod:`reports.staff`), whole-school roles, heads of
department for the lessons' subjects, staff groups (ops store) and the staff names and
addresses. A role nobody holds is not an error: the gap is reported in words ("no form
tutor for form 10A") so previews show it and the firing is still recorded.

Parents are planned as :mod:`senders.compose` plans a send: each pupil's priority-1
contacts, consent and opt-outs respected (:func:`senders.recipients.choose_recipients`),
the rule's message bank template rendered with the pupil, the contact and the lesson
or incident. Their idempotency keys come from (rule, firing key, contact), so each
parent message is queued once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, select

from reports.alerts import school_role_holders
from reports.recipients import contacts_of, students_by_id
from reports.staff import (
    PUPIL_ROLES,
    ROLE_LABELS,
    SCHOOL_ROLES,
    heads_of_department,
    pupil_role_holders,
    staff_by_id,
)
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import OptOut
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders import segments
from senders.alerts.findings import Finding, lesson_words, text
from senders.alerts.groups import groups_by_name
from senders.alerts.validation import Rule
from senders.recipients import RecipientRule, choose_recipients
from senders.templates import TemplateProblem, build_context, render_message

MAX_KEY = 255


class StaffResolver:
    """Everything needed to name the staff for a run's findings, read once."""

    def __init__(
        self, warehouse: Warehouse, engine: Engine, items: Sequence[tuple[Rule, Finding]]
    ) -> None:
        roles = {role for rule, _ in items for role in rule.notify.get("roles", [])}
        students = sorted({f.student_id for _, f in items if f.student_id})
        self.pupil_roles: dict[str, dict[str, list[str]]] = {}
        for role in PUPIL_ROLES:
            if role in roles:
                frame = pupil_role_holders(warehouse, students, role)
                holders: dict[str, list[str]] = {}
                for sid, staff in zip(frame["student_id"], frame["staff_id"], strict=True):
                    holders.setdefault(sid, []).append(staff)
                self.pupil_roles[role] = holders
        self.school = school_role_holders(warehouse, [r for r in SCHOOL_ROLES if r in roles])
        subjects = {text(x.get("subject")) for _, f in items for x in f.lessons}
        self.heads: dict[str, list[str]] = {}
        if "head_of_department" in roles:
            found = heads_of_department(warehouse, [s for s in subjects if s])
            self.heads = {subject.upper(): ids for subject, ids in found.items()}
        self.groups = groups_by_name(
            engine, {g for r, _ in items for g in r.notify.get("groups", [])}
        )
        wanted: set[str] = set()
        for table in self.pupil_roles.values():
            wanted.update(s for ids in table.values() for s in ids)
        for mapping in (self.school, self.heads, self.groups):
            wanted.update(s for ids in mapping.values() for s in ids)
        for rule, finding in items:
            wanted.update(rule.notify.get("staff_ids", []))
            wanted.update(text(x.get("staff_id")) for x in finding.lessons)
        self.staff = staff_by_id(warehouse, [s for s in wanted if s])

    def resolve(
        self, rule: Rule, finding: Finding, emails: bool
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The staff to tell about ``finding`` (``{staff_id, name, email, why}``) and the
        gaps in words; ``emails``: whether a missing e-mail address is worth a gap."""
        chosen: dict[str, list[str]] = {}
        gaps: list[str] = []

        def add(staff_ids: Iterable[str], why: str) -> None:
            for staff_id in staff_ids:
                reasons = chosen.setdefault(staff_id, [])
                if why not in reasons:
                    reasons.append(why)

        for role in rule.notify.get("roles", []):
            self._role(role, finding, add, gaps)
        add(rule.notify.get("staff_ids", []), "named in the rule")
        for group in rule.notify.get("groups", []):
            if group not in self.groups:
                gaps.append(f"staff group {group!r} does not exist")
            elif not self.groups[group]:
                gaps.append(f"staff group {group!r} has nobody in it")
            else:
                add(self.groups[group], f"group {group}")
        recipients = []
        for staff_id, why in chosen.items():
            known = self.staff.get(staff_id)
            if known is None:
                gaps.append(f"staff member {staff_id} is not in the staff list (notice only)")
            elif emails and not known.get("email"):
                gaps.append(f"no e-mail address for {known['name']} (notice only)")
            recipients.append(
                {
                    "staff_id": staff_id,
                    "name": (known or {}).get("name") or staff_id,
                    "email": (known or {}).get("email"),
                    "why": ", ".join(why),
                }
            )
        return recipients, list(dict.fromkeys(gaps))

    def _role(self, role: str, finding: Finding, add: Any, gaps: list[str]) -> None:
        label = ROLE_LABELS.get(role, role).lower()
        pupil = finding.pupil
        if role in PUPIL_ROLES:
            scope = pupil.get(PUPIL_ROLES[role], "")
            where = f"form {scope}" if role == "form_tutor" else f"year {scope}"
            holders = self.pupil_roles.get(role, {}).get(finding.student_id or "", [])
            if holders:
                add(holders, f"{label} ({where})")
            elif scope:
                gaps.append(f"no {label} for {where}")
            else:
                missing = "form" if role == "form_tutor" else "year group"
                gaps.append(f"no {label}: {pupil['label']} has no {missing} recorded")
        elif role in SCHOOL_ROLES:
            holders = self.school.get(role, [])
            if holders:
                add(holders, label)
            else:
                gaps.append(f"nobody is recorded as {label}")
        elif role == "class_teacher":
            for lesson in finding.lessons:
                teacher = text(lesson.get("staff_id"))
                if teacher:
                    add([teacher], f"class teacher ({lesson_words(lesson)})")
                else:
                    gaps.append(f"no teacher recorded for {lesson_words(lesson)}")
        elif role == "head_of_department":
            for lesson in finding.lessons:
                subject = text(lesson.get("subject"))
                if not subject:
                    gaps.append(f"no head of department: {lesson_words(lesson)} has no subject")
                elif self.heads.get(subject.upper()):
                    add(self.heads[subject.upper()], f"head of department ({subject})")
                else:
                    gaps.append(f"no head of department for {subject}")


# ---- parents -----------------------------------------------------------------------------


def opted_out(engine: Engine, channel: str) -> set[str]:
    """Addresses that must not be messaged on ``channel`` (a read: no write lock)."""
    with session_scope(engine, immediate=False) as session:
        rows = session.execute(select(OptOut.address).where(OptOut.channel == channel))
        return {a.lower() if channel == "email" else a for (a,) in rows}


def parent_key(rule_id: int | None, key: str, contact_id: str) -> str:
    """The idempotency key of a parent message: one per rule, firing and contact."""
    raw = f"alert-parent:{rule_id}:{key}:{contact_id}"
    if len(raw) <= MAX_KEY:
        return raw
    return "alert-parent:" + hashlib.sha256(raw.encode()).hexdigest()


def plan_parents(
    settings: Settings,
    warehouse: Warehouse,
    engine: Engine,
    at: dt.datetime,
    alerts: Sequence[tuple[Rule, Finding, Any]],
) -> None:
    """Fill in the parent messages (and exclusions) of each alert whose rule tells parents.

    ``alerts`` are (rule, finding, planned alert) triples; the planned alert's
    ``parent_messages``, ``parent_excluded`` and ``unresolved`` are extended in place.
    """
    from senders.bank import get_template

    wanted = [(r, f, a) for r, f, a in alerts if r.notify.get("parents") and f.student_id]
    if not wanted:
        return
    ids = sorted({str(f.student_id) for _, f, _ in wanted})
    students = {sid: g for sid, g in students_by_id(warehouse, ids).groupby("student_id")}
    contacts = {sid: g for sid, g in contacts_of(warehouse, ids).groupby("student_id")}
    empty = contacts_of(warehouse, [])
    templates: dict[str, Any] = {}
    blocked: dict[str, set[str]] = {}
    price = float(settings["sms_pence_per_segment"])
    for rule, finding, alert in wanted:
        name = rule.parent_template or ""
        if name not in templates:
            templates[name] = get_template(engine, name) if name else None
        template = templates[name]
        if template is None or template.archived or template.channel not in ("sms", "email"):
            alert.unresolved.append(
                f"parents not messaged: {name!r} is not an SMS or e-mail template in the "
                "message bank"
            )
            continue
        channel = template.channel
        if channel not in blocked:
            blocked[channel] = opted_out(engine, channel)
        sid = str(finding.student_id)
        pupil = students.get(sid)
        if pupil is None:
            alert.unresolved.append(f"parents not messaged: {sid} is not a pupil in the data")
            continue
        chosen, excluded = choose_recipients(
            pupil, contacts.get(sid, empty), RecipientRule(channel), [sid], blocked[channel]
        )
        alert.parent_excluded += [e.as_dict() for e in excluded]
        extra: dict[str, Any] = {}
        if finding.lessons:
            extra["lesson"] = finding.lessons[0]
        if finding.incident is not None:
            extra["incident"] = finding.incident
        for recipient in chosen:
            context = build_context(
                settings,
                contact=recipient.contact,
                students=recipient.students,
                today=at.date(),
                **extra,
            )
            try:
                rendered = render_message(template.text, context)
            except TemplateProblem as exc:
                alert.unresolved.append(
                    f"the message to parent {recipient.contact_id} cannot be written from "
                    f"{name!r}: {exc}"
                )
                continue
            message: dict[str, Any] = {
                "student_id": sid,
                "contact_id": recipient.contact_id,
                "channel": channel,
                "to": recipient.to,
                "subject": rendered.subject,
                "body": rendered.text,
                "html": rendered.html,
                "template": name,
                "idempotency_key": parent_key(rule.id, finding.key, recipient.contact_id),
            }
            if channel == "sms":
                message["body"], _ = segments.normalise(rendered.text)
                counted = segments.count(message["body"])
                message["segments"], message["encoding"] = counted.segments, counted.encoding
                message["cost_pence"] = segments.cost_pence(counted.segments, price)
            alert.parent_messages.append(message)
        if not alert.parent_messages:
            alert.unresolved.append("no parent can be messaged (see the contacts left out)")
