"""Compose a one-off send: plan it (who gets what, who does not and why, what it costs),
then enqueue it as a batch. The dashboard's Compose page and `schoolcomms send` both
call this module, so a preview and the real send are planned by the same code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from reports.recipients import contacts_of, students_by_id
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import OptOut
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders import segments
from senders.base import Channel
from senders.recipients import Exclusion, Recipient, RecipientRule, choose_recipients
from senders.templates import (
    TemplateProblem,
    TemplateText,
    build_context,
    contact_fields,
    render_message,
    validate,
)


class ComposeError(ValueError):
    """The send cannot be planned or enqueued as asked; the message says how to fix it."""


@dataclass
class Composition:
    """What a member of staff asked to send."""

    channel: Channel
    student_ids: list[str]
    created_by: str
    body: str | None = None
    subject: str | None = None
    template: str | None = None
    rule: RecipientRule | None = None
    extra_context: dict[str, Any] = field(default_factory=dict)
    # One key per compose action: pressing Send twice enqueues nothing new.
    request_key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def recipient_rule(self) -> RecipientRule:
        return self.rule or RecipientRule(self.channel)


@dataclass
class PlannedMessage:
    student_id: str
    student_ids: list[str]
    contact_id: str
    to: str
    body: str
    subject: str | None = None
    html: str | None = None
    segments: int | None = None
    encoding: str | None = None
    cost_pence: float | None = None
    idempotency_key: str = ""
    contact_name: str = ""

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape of `schoolcomms send --dry-run --json`."""
        return {
            "student_id": self.student_id,
            "contact_id": self.contact_id,
            "to": self.to,
            "body": self.body,
            "segments": self.segments,
            "encoding": self.encoding,
            "cost_pence": self.cost_pence,
        }


@dataclass
class Plan:
    composition: Composition
    template_text: TemplateText
    messages: list[PlannedMessage]
    excluded: list[Exclusion]
    notes: list[str]
    budget_pence: float

    @property
    def total_cost_pence(self) -> float:
        return round(sum(m.cost_pence or 0 for m in self.messages), 2)

    @property
    def over_budget(self) -> bool:
        return self.composition.channel == "sms" and self.total_cost_pence > self.budget_pence

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": [m.as_json() for m in self.messages],
            "excluded": [e.as_dict() for e in self.excluded],
            "total_cost_pence": self.total_cost_pence,
        }

    def frame(self) -> pd.DataFrame:
        """One row per message, for preview tables."""
        return pd.DataFrame(
            [
                {
                    **m.as_json(),
                    "students": ", ".join(m.student_ids),
                    "contact": m.contact_name,
                    "subject": m.subject,
                }
                for m in self.messages
            ]
        )


def context_for(
    recipient: Recipient, settings: Settings, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The merge-field context for one recipient (see senders.templates.MERGE_FIELDS).

    ``extra`` may hold warehouse rows for the groups lesson, incident, detention and
    homework.
    """
    return build_context(
        settings, contact=recipient.contact, students=recipient.students, **(extra or {})
    )


def opted_out_addresses(engine: Engine, channel: str) -> set[str]:
    """Addresses (E.164 or lower-case e-mail) that must not be messaged on ``channel``."""
    with session_scope(engine) as session:
        rows = session.execute(select(OptOut.address).where(OptOut.channel == channel))
        return {address.lower() if channel == "email" else address for (address,) in rows}


def _template_text(engine: Engine, composition: Composition) -> TemplateText:
    if composition.template:
        from senders.bank import get_template

        stored = get_template(engine, composition.template)
        if stored is None:
            raise ComposeError(
                f"There is no template called {composition.template!r} in the "
                "message bank. Check the name on the Message bank page."
            )
        if stored.channel != composition.channel:
            raise ComposeError(
                f"Template {composition.template!r} is for {stored.channel}, "
                f"not {composition.channel}."
            )
        return stored.text
    if not composition.body:
        raise ComposeError("Give the message text or choose a template from the bank.")
    if composition.channel == "email" and not composition.subject:
        raise ComposeError("An e-mail needs a subject.")
    problems = validate(composition.body, channel=composition.channel)
    if composition.subject:
        problems += [
            f"Subject: {p}" for p in validate(composition.subject, channel=composition.channel)
        ]
    if problems:
        raise ComposeError("The message cannot be used as written: " + " ".join(problems))
    return TemplateText(composition.channel, composition.subject, composition.body)


def _key(composition: Composition, recipient: Recipient) -> str:
    raw = f"{composition.request_key}|{composition.channel}|{recipient.contact_id}|{recipient.to}"
    return "send:" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def plan_send(
    settings: Settings, warehouse: Warehouse, engine: Engine, composition: Composition
) -> Plan:
    """Plan a send without sending or writing anything."""
    if not composition.student_ids:
        raise ComposeError("Choose at least one pupil.")
    template = _template_text(engine, composition)
    students = students_by_id(warehouse, composition.student_ids)
    contacts = contacts_of(warehouse, composition.student_ids)
    recipients, excluded = choose_recipients(
        students,
        contacts,
        composition.recipient_rule,
        composition.student_ids,
        opted_out_addresses(engine, composition.channel),
    )
    price = float(settings["sms_pence_per_segment"])
    messages: list[PlannedMessage] = []
    typed: list[str] = []
    for recipient in recipients:
        try:
            rendered = render_message(
                template, context_for(recipient, settings, composition.extra_context)
            )
        except TemplateProblem as exc:
            raise ComposeError(
                f"The message cannot be written for contact {recipient.contact_id}: {exc}"
            ) from exc
        planned = PlannedMessage(
            student_id=recipient.student_ids[0],
            student_ids=recipient.student_ids,
            contact_id=recipient.contact_id,
            to=recipient.to,
            body=rendered.text,
            subject=rendered.subject,
            html=rendered.html,
            idempotency_key=_key(composition, recipient),
            contact_name=contact_fields(recipient.contact)["name"],
        )
        if composition.channel == "sms":
            typed.append(rendered.text)
            planned.body, _ = segments.normalise(rendered.text)
            counted = segments.count(planned.body)
            planned.segments, planned.encoding = counted.segments, counted.encoding
            planned.cost_pence = segments.cost_pence(counted.segments, price)
        messages.append(planned)
    # One note per kind of change, with totals for the whole batch.
    notes = segments.normalise("\n".join(typed))[1] if typed else []
    return Plan(
        composition,
        template,
        messages,
        excluded,
        notes,
        float(settings["sms_batch_budget_pence"]),
    )


def enqueue_plan(
    engine: Engine, settings: Settings, plan: Plan, *, over_budget_confirmed: bool = False
) -> int:
    """Put a planned send in the outbox as one batch; returns the batch id.

    An SMS batch above the setting sms_batch_budget_pence is refused unless
    ``over_budget_confirmed`` (the caller checks that the user's role may confirm).
    """
    from senders.outbox import NewMessage, create_batch

    if not plan.messages:
        raise ComposeError(
            "Nobody can be sent this message: every contact was left out (see the reasons listed)."
        )
    if plan.over_budget and not over_budget_confirmed:
        raise ComposeError(
            f"This SMS batch would cost about £{plan.total_cost_pence / 100:,.2f}, more than "
            f"the £{plan.budget_pence / 100:,.2f} a batch may cost without confirmation. An "
            "admin or attendance officer can confirm it, or send to fewer pupils."
        )
    composition = plan.composition
    new = [
        NewMessage(
            channel=composition.channel,
            to=m.to,
            body=m.body,
            subject=m.subject,
            html=m.html,
            attachments=[],
            template_name=composition.template,
            student_id=m.student_id,
            contact_id=m.contact_id,
            segments=m.segments,
            encoding=m.encoding,
            cost_pence=m.cost_pence,
            idempotency_key=m.idempotency_key,
        )
        for m in plan.messages
    ]
    rule = composition.recipient_rule
    batch_id = create_batch(
        engine,
        created_by=composition.created_by,
        channel=composition.channel,
        template_name=composition.template,
        subject=plan.template_text.subject,
        body_template=plan.template_text.body,
        filter={
            "student_ids": composition.student_ids,
            "max_priority": rule.max_priority,
            "parental_responsibility_only": rule.parental_responsibility_only,
            "request_key": composition.request_key,
        },
        messages=new,
        excluded=len(plan.excluded),
        estimated_cost_pence=plan.total_cost_pence,
    )
    if composition.channel == "letter":
        _print_letters(engine, settings, plan, batch_id)
    return batch_id


def _print_letters(engine: Engine, settings: Settings, plan: Plan, batch_id: int) -> None:
    """Merge the batch's letters into one PDF, kept with the batch for printing."""
    from schoolcomms.ops.models import Batch
    from senders.letters import Letter, build_letters

    letters = [
        Letter(
            contact_name=m.contact_name,
            address_lines=m.to.splitlines()[1:],
            salutation=f"Dear {m.contact_name}",
            body=m.body,
            student_id=m.student_id,
            contact_id=m.contact_id,
            date=dt.date.today(),
        )
        for m in plan.messages
    ]
    path = settings.data_dir / "letters" / f"batch-{batch_id}.pdf"
    build_letters(letters, settings, path)
    with session_scope(engine) as session:
        batch = session.get(Batch, batch_id)
        if batch is not None:
            batch.document_path = str(path)
