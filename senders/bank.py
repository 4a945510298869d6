"""The message bank: named, validated templates kept in the ops store (table ``templates``).

Templates are validated when they are saved (:func:`senders.templates.validate`), so a
template in the bank never names an unknown merge field or uses a blocked construct.
Names are unique; saving under an existing name updates that template (and brings it
back if it was archived). Archived templates stay in the store, out of the lists.
Every save and archive writes an audit row (``template.save``, ``template.archive``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, select

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.history import audit
from schoolcomms.ops.models import CHANNELS, Template
from senders.templates import TemplateProblem, TemplateText, validate

TEMPLATE_COLUMNS = (
    "id",
    "name",
    "channel",
    "category",
    "subject",
    "body",
    "archived",
    "created_by",
    "created_at",
    "updated_at",
)
MAX_NAME = 128
MAX_SUBJECT = 512


@dataclass(frozen=True)
class BankTemplate:
    """A template as stored in the bank."""

    id: int
    name: str
    channel: str
    subject: str | None
    body: str
    category: str
    archived: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def text(self) -> TemplateText:
        """The template to hand to :func:`senders.templates.render_message`."""
        return TemplateText(channel=self.channel, subject=self.subject, body=self.body)


def _record(row: Template) -> BankTemplate:
    return BankTemplate(**{column: getattr(row, column) for column in TEMPLATE_COLUMNS})


def template_problems(
    *, name: str, channel: str, subject: str | None, body: str, category: str = "general"
) -> list[str]:
    """Every reason the bank would refuse this template (empty when it can be saved)."""
    problems: list[str] = []
    if not name.strip():
        problems.append("The template needs a name.")
    elif len(name.strip()) > MAX_NAME:
        problems.append(f"The name is too long: at most {MAX_NAME} characters.")
    if not category.strip():
        problems.append("The template needs a category, e.g. 'attendance'.")
    if channel not in CHANNELS:
        return [*problems, f"Unknown channel {channel!r}: use one of {', '.join(CHANNELS)}."]
    subject = (subject or "").strip()
    if channel == "sms" and subject:
        problems.append("An SMS template cannot have a subject: texts have none.")
    if channel == "email" and not subject:
        problems.append("An e-mail template needs a subject.")
    if "\n" in subject or len(subject) > MAX_SUBJECT:
        problems.append(f"The subject must be one line of at most {MAX_SUBJECT} characters.")
    if subject:
        problems += [f"Subject: {p}" for p in validate(subject, channel=channel)]
    if not body.strip():
        problems.append("The template needs a body: the text of the message.")
    problems += validate(body, channel=channel)
    return problems


def save_template(
    engine: Engine,
    *,
    name: str,
    channel: str,
    subject: str | None,
    body: str,
    category: str = "general",
    actor: str,
) -> int:
    """Create or update the template called ``name``; return its id.

    Raises :class:`TemplateProblem` listing every problem (unknown merge fields,
    syntax errors with their line, blocked constructs, a subject on an SMS or none on
    an e-mail) and saves nothing. Writes a ``template.save`` audit row.
    """
    _check_actor(actor)
    problems = template_problems(
        name=name, channel=channel, subject=subject, body=body, category=category
    )
    if problems:
        raise TemplateProblem(problems)
    subject = (subject or "").strip() or None
    template_id, created, changed = _write(
        engine, name.strip(), channel, subject, body, category, actor
    )
    details = {"id": template_id, "channel": channel, "category": category.strip()}
    audit(
        engine,
        actor,
        "template.save",
        f"template:{name.strip()}",
        details | {"created": created, "changed": changed, "subject": subject, "body": body},
    )
    return template_id


def _check_actor(actor: str) -> None:
    """Refuse a blank actor before anything is written (the audit row needs one)."""
    if not (actor or "").strip():
        raise ValueError('actor must name who acted (a user, "cli" or "scheduler")')


def _write(
    engine: Engine,
    name: str,
    channel: str,
    subject: str | None,
    body: str,
    category: str,
    actor: str,
    *,
    only_if_absent: bool = False,
) -> tuple[int, bool, list[str]]:
    """Insert or update one template in one transaction: (id, created, fields changed)."""
    values = {"channel": channel, "subject": subject, "body": body, "category": category.strip()}
    with session_scope(engine) as session:
        row = session.execute(select(Template).where(Template.name == name)).scalar_one_or_none()
        if row is None:
            row = Template(name=name, created_by=actor, archived=False, **values)
            session.add(row)
            session.flush()
            return row.id, True, sorted(values)
        if only_if_absent:
            return row.id, False, []
        changed = sorted(k for k, v in values.items() if getattr(row, k) != v)
        if row.archived:
            changed.append("archived")
        for key, value in values.items():
            setattr(row, key, value)
        row.archived = False
        return row.id, False, changed


def get_template(engine: Engine, name: str) -> BankTemplate | None:
    """The template called ``name`` (archived ones too: see ``.archived``), or None."""
    with session_scope(engine, immediate=False) as session:
        row = session.execute(
            select(Template).where(Template.name == name.strip())
        ).scalar_one_or_none()
        return None if row is None else _record(row)


def list_templates(
    engine: Engine, channel: str | None = None, include_archived: bool = False
) -> pd.DataFrame:
    """The bank's templates, by channel, category and name, one row each.

    Columns: id, name, channel, category, subject, body, archived, created_by,
    created_at (UTC), updated_at (UTC).
    """
    query = select(Template).order_by(Template.channel, Template.category, Template.name)
    if channel is not None:
        query = query.where(Template.channel == channel)
    if not include_archived:
        query = query.where(Template.archived.is_(False))
    with session_scope(engine, immediate=False) as session:
        rows = [_record(row) for row in session.execute(query).scalars()]
    frame = pd.DataFrame(
        [{c: getattr(r, c) for c in TEMPLATE_COLUMNS} for r in rows], columns=TEMPLATE_COLUMNS
    )
    for column in ("created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["id"] = frame["id"].astype("int64")
    frame["archived"] = frame["archived"].astype(bool)
    return frame


def archive_template(engine: Engine, name: str, actor: str) -> None:
    """Archive the template called ``name`` (hidden from lists, kept in the store).

    Raises ``LookupError`` if there is no such template; archiving an archived
    template changes nothing and writes no audit row.
    """
    _check_actor(actor)
    with session_scope(engine) as session:
        row = session.execute(
            select(Template).where(Template.name == name.strip())
        ).scalar_one_or_none()
        if row is None:
            raise LookupError(f"There is no template called {name!r} in the message bank.")
        if row.archived:
            return
        row.archived = True
        template_id = row.id
    audit(engine, actor, "template.archive", f"template:{name.strip()}", {"id": template_id})


DEFAULT_TEMPLATES: tuple[dict[str, str | None], ...] = (
    {
        "name": "Absence - first day",
        "channel": "sms",
        "category": "attendance",
        "subject": None,
        "body": "{{ student.forename }} is not in school today and we have not been told "
        "why. Please contact {{ school.name }} today to give the reason for the absence.",
    },
    {
        "name": "Late - reminder",
        "channel": "sms",
        "category": "attendance",
        "subject": None,
        "body": "{{ student.forename }} arrived late to school on "
        "{{ today|ukdate('day') }}. Please help {{ student.forename }} to arrive on "
        "time every day. Thank you, {{ school.name }}",
    },
    {
        "name": "Detention - notice",
        "channel": "sms",
        "category": "behaviour",
        "subject": None,
        "body": "{{ student.forename }} has a detention on {{ detention.date|ukdate('day') }}"
        "{% if detention.start %} from {{ detention.start }}{% endif %}"
        "{% if detention.end %} to {{ detention.end }}{% endif %}"
        "{% if detention.location %} in {{ detention.location }}{% endif %}."
        "{% if detention.reason %} Reason: {{ detention.reason }}.{% endif %}"
        " {{ school.name }}",
    },
    {
        "name": "Homework - outstanding",
        "channel": "sms",
        "category": "homework",
        "subject": None,
        "body": "{{ student.forename }} has not handed in {{ homework.subject }} homework "
        "\"{{ homework.title }}\", due {{ homework.due_date|ukdate('day') }}. Please "
        "encourage {{ student.forename }} to complete it. {{ school.name }}",
    },
    {
        "name": "Attendance concern",
        "channel": "email",
        "category": "attendance",
        "subject": "Attendance of {{ student.name }}",
        "body": "Dear {{ contact.name }},\n\n"
        "We are writing because we are concerned about {{ student.preferred_forename }}'s "
        "attendance at school. Regular attendance makes a real difference to how well "
        "pupils learn and to their friendships.\n\n"
        "Please contact the school office so that we can talk about any difficulties "
        "and how we can help.\n\n"
        "Yours sincerely,\n{{ school.name }}",
    },
    {
        "name": "Positive news",
        "channel": "email",
        "category": "behaviour",
        "subject": "Good news about {{ student.preferred_forename }}",
        "body": "Dear {{ contact.name }},\n\n"
        "We are delighted to let you know that {{ student.preferred_forename }} has been "
        "recognised in school{% if incident is defined %} on "
        "{{ incident.date|ukdate('day') }} ({{ incident.type }}){% endif %}.\n\n"
        "{% if incident is defined and incident.comment %}"
        '"{{ incident.comment }}"\n\n{% endif %}'
        "Please pass on our congratulations.\n\n"
        "Best wishes,\n{{ school.name }}",
    },
    {
        "name": "Attendance letter",
        "channel": "letter",
        "category": "attendance",
        "subject": "Attendance of {{ student.name }} ({{ student.form }})",
        "body": "Dear {{ contact.name }},\n\n"
        "We are writing to you about {{ student.name }}'s attendance at "
        "{{ school.name }}. Their attendance has fallen below the level we expect, and "
        "every day of missed education makes it harder for them to keep up.\n\n"
        "Please contact the school to arrange a meeting, so that we can agree together "
        "how best to support {{ student.preferred_forename }}.\n\n"
        "Yours sincerely,",
    },
)
"""The bank :func:`seed_default_templates` starts a new installation with."""


def seed_default_templates(engine: Engine, actor: str = "system") -> list[str]:
    """Add each of :data:`DEFAULT_TEMPLATES` the bank does not have yet; return the names added.

    Idempotent: a template already in the bank (edited or archived) is left alone.
    Each addition is validated like any save and writes a ``template.save`` audit row.
    """
    _check_actor(actor)
    added: list[str] = []
    for entry in DEFAULT_TEMPLATES:
        problems = template_problems(**entry)  # type: ignore[arg-type]
        if problems:  # a bug in DEFAULT_TEMPLATES, caught by the tests
            raise TemplateProblem([f"{entry['name']}: {p}" for p in problems])
        name, channel = str(entry["name"]), str(entry["channel"])
        body, category = str(entry["body"]), str(entry["category"])
        template_id, created, _ = _write(
            engine, name, channel, entry["subject"], body, category, actor, only_if_absent=True
        )
        if created:
            added.append(name)
            details = {"id": template_id, "channel": channel, "category": category}
            audit(engine, actor, "template.save", f"template:{name}", details | {"seeded": True})
    return added
