"""What the messaging pages do, without Streamlit: inputs, plans, sends, times, tables.

The pages (Compose, Message history, Message bank, Record a contact) keep only the
widgets; everything they decide is here so it can be tested without a browser. Nothing
here sends: a send is planned with :func:`senders.compose.plan_send` and put in the
outbox with :func:`senders.compose.enqueue_plan`; the dispatcher sends it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Collection, Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine

from reports.contacts import school_order
from reports.messages import batch_of_keys
from schoolcomms.auth import current as current_account
from schoolcomms.ops.history import audit
from schoolcomms.roles import ACTION_ROLES, PAGE_ROLES, can, check_action
from schoolcomms.settings import Settings
from senders.compose import ComposeError, Composition, Plan, enqueue_plan
from senders.recipients import RecipientRule
from senders.templates import (
    FILTERS,
    MERGE_FIELDS,
    MERGE_GROUPS,
    TemplateProblem,
    preview,
    sample_context,
    validate,
)

LONDON = ZoneInfo("Europe/London")

# ---- roles -----------------------------------------------------------------------------
# The same names as dashboard.common (kept here as plain strings so that this module
# does not import Streamlit). Who may do what is the matrix in schoolcomms.roles.
ADMIN = "admin"
DATA_MANAGER = "data_manager"
SENIOR_LEADER = "senior_leader"
ATTENDANCE_OFFICER = "attendance_officer"
OFFICE = "office"
PASTORAL = "pastoral"
TEACHER = "teacher"

# Who may open each messaging page (a senior leader may read the log but cannot send).
COMPOSE_ROLES = PAGE_ROLES["compose"]
HISTORY_ROLES = PAGE_ROLES["message_history"]
RECORD_CONTACT_ROLES = PAGE_ROLES["record_contact"]

# ---- pages -----------------------------------------------------------------------------
COMPOSE_PAGE = "pages/compose.py"
MESSAGE_HISTORY_PAGE = "pages/message_history.py"
MESSAGE_BANK_PAGE = "pages/message_bank.py"
RECORD_CONTACT_PAGE = "pages/record_contact.py"

CHANNEL_LABELS = {"sms": "SMS", "email": "E-mail", "letter": "Letter"}
STATUS_LABELS = {
    "queued": "Queued",
    "sending": "Sending",
    "sent": "Sent",
    "delivered": "Delivered",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
DIRECTION_LABELS = {"out": "We contacted them", "in": "They contacted us"}
OTHER_CONTACT = "__other__"


def may_confirm_over_budget(user_roles: Collection[str]) -> bool:
    """May someone with ``user_roles`` confirm an SMS batch over the budget?

    The action ``send.over_budget`` of the role matrix; :func:`send` checks it again
    when the batch is queued, whatever the page showed.
    """
    return can(user_roles, "send.over_budget")


def over_budget_roles() -> str:
    """Who may confirm an SMS batch over the budget, in words ("admin or attendance officer")."""
    names = [r.replace("_", " ") for r in ACTION_ROLES["send.over_budget"]]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def send_action(student_count: int) -> str:
    """The action a send about ``student_count`` pupils needs: ``send.single`` for one
    pupil's parents, ``send.bulk`` for more (teachers may only do the first)."""
    return "send.bulk" if student_count > 1 else "send.single"


def may_send_bulk(user_roles: Collection[str]) -> bool:
    """Whether ``user_roles`` may message the parents of several pupils at once."""
    return can(user_roles, "send.bulk")


def pupils_word(count: int) -> str:
    """'1 pupil', '12 pupils'."""
    return f"{count} pupil" if count == 1 else f"{count} pupils"


@dataclass(frozen=True)
class Prefill:
    """A ``compose_prefill`` handed over by another page, checked: what to put where."""

    student_ids: tuple[str, ...]
    channel: str | None
    template: str | None
    body: str | None
    subject: str | None
    source: str
    note: str
    problems: tuple[str, ...] = ()
    to_pupils: bool = False

    @property
    def arrival(self) -> str:
        """'12 pupils from Attendance' (and what it is about, when the page said)."""
        about = f": {self.note}" if self.note else ""
        return f"{pupils_word(len(self.student_ids))} from {self.source}{about}"


def read_prefill(raw: Any) -> Prefill:
    """Check a ``compose_prefill`` dict (see the working agreement); problems in words.

    Keys: ``student_ids`` (list), ``channel`` (sms, email, letter), optional
    ``template`` (a message bank name) or ``body`` (and ``subject``), ``source`` (the
    page's name), ``note`` and ``recipients`` (``parents``, the default, or ``pupils``:
    the pupils themselves at their own e-mail, by e-mail only). Unknown channels are
    dropped with a problem, as is ``pupils`` for anything but e-mail.
    """
    data = raw if isinstance(raw, dict) else {}
    problems: list[str] = []
    ids = data.get("student_ids") or []
    if isinstance(ids, str):
        ids = parse_student_ids(ids)
    student_ids = tuple(dict.fromkeys(str(i).strip() for i in ids if str(i).strip()))
    channel = data.get("channel")
    if channel is not None and channel not in CHANNEL_LABELS:
        problems.append(f"Compose cannot send by {channel!r}; choose SMS, e-mail or a letter.")
        channel = None
    to_pupils = data.get("recipients") == "pupils"
    if to_pupils and channel not in (None, "email"):
        problems.append(
            "Pupils can be written to by e-mail only: this message goes to each pupil's "
            "contacts instead."
        )
        to_pupils = False

    def text(key: str) -> str | None:
        value = data.get(key)
        return None if value is None or not str(value).strip() else str(value)

    return Prefill(
        student_ids=student_ids,
        channel=channel,
        template=text("template"),
        body=text("body"),
        subject=text("subject"),
        source=text("source") or "another page",
        note=text("note") or "",
        problems=tuple(problems),
        to_pupils=to_pupils,
    )


# ---- choosing pupils -------------------------------------------------------------------

_ID_SPLIT = re.compile(r"[\s,;]+")


def parse_student_ids(text: str | None) -> list[str]:
    """Student ids from pasted text (commas, semicolons, spaces or new lines), in order, once."""
    return list(dict.fromkeys(p.strip().strip("'\"") for p in _ID_SPLIT.split(text or "") if p))


def ids_from_file(name: str, content: bytes) -> list[str]:
    """Student ids from an uploaded list: a CSV with a ``student_id`` column (else its first
    column), or plain text with one id a line. Raises ``ValueError`` in words."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not a UTF-8 text or CSV file.") from exc
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{name} is empty: put one student id a line.")
    header = [c.strip().lower() for c in rows[0]]
    if "student_id" in header:
        column = header.index("student_id")
        values = [r[column] for r in rows[1:] if len(r) > column]
    elif len(header) > 1:
        values = [r[0] for r in rows[1:] if r]
    else:
        values = [c for r in rows for c in r]
    return parse_student_ids("\n".join(values))


def filter_pupils(
    pupils: pd.DataFrame,
    *,
    forms: Iterable[str] = (),
    year_groups: Iterable[str] = (),
    search: str = "",
    in_school_order: bool = False,
) -> pd.DataFrame:
    """The pupils in any of ``forms`` and ``year_groups`` whose name or id contains ``search``,
    in school order (year 7 before year 10, then form, keeping the given order within).

    ``in_school_order``: ``pupils`` are already :func:`school_sorted` (a cached copy).
    """
    shown = pupils if in_school_order else school_sorted(pupils)
    forms, year_groups = list(forms), list(year_groups)
    if forms:
        shown = shown[shown["form"].astype(str).isin(forms)]
    if year_groups:
        shown = shown[shown["year_group"].astype(str).isin(year_groups)]
    needle = (search or "").strip().lower()
    if needle:
        words = needle.split()
        haystack = (shown["name"].fillna("") + " " + shown["student_id"].astype(str)).str.lower()
        mask = pd.Series(True, index=shown.index)
        for word in words:
            mask &= haystack.str.contains(word, regex=False)
        shown = shown[mask]
    return shown.reset_index(drop=True)


def school_sorted(pupils: pd.DataFrame) -> pd.DataFrame:
    """Pupils by year group and form in school order (7, 8, …, 13), stable within."""
    if pupils.empty:
        return pupils
    ranks = {}
    for column in ("year_group", "form"):
        values = pupils[column].fillna("").astype(str)
        order = {v: i for i, v in enumerate(school_order(values.unique().tolist()))}
        ranks[f"_{column}_rank"] = values.map(order)
    ordered = pupils.assign(**ranks).sort_values(list(ranks), kind="stable")
    return ordered.drop(columns=list(ranks))


def pupil_labels(pupils: pd.DataFrame) -> dict[str, str]:
    """Student id -> :func:`pupil_label`, in the order of ``pupils``."""
    return {str(r["student_id"]): pupil_label(r) for r in pupils.to_dict("records")}


def picker_key(forms: Iterable[str], year_groups: Iterable[str], search: str) -> str:
    """The key of the pupil table for these filters: new filters, a fresh selection.

    Row selections are positions in the table shown, so a table filtered differently
    is a different widget (its selection does not jump to other pupils).
    """
    raw = json.dumps([sorted(forms), sorted(year_groups), (search or "").strip().lower()])
    return "compose_pupils_" + hashlib.sha256(raw.encode()).hexdigest()[:12]


def selected_ids(shown: pd.DataFrame, selection: Any) -> list[str]:
    """The student ids of the selected rows (a dataframe selection state or None)."""
    rows: list[int] = []
    if selection:
        try:
            rows = list(selection["selection"]["rows"])
        except (KeyError, TypeError):
            rows = list(getattr(getattr(selection, "selection", None), "rows", []) or [])
    ids = shown["student_id"].astype(str).tolist()
    return [ids[r] for r in rows if isinstance(r, int) and 0 <= r < len(ids)]


def pupil_label(row: dict[str, Any]) -> str:
    """'Ann Able (S1, 10A)' for a pupil picker row."""
    form = str(row.get("form") or "").strip()
    extra = f", {form}" if form else ""
    return f"{row.get('name') or row['student_id']} ({row['student_id']}{extra})"


# ---- composing -------------------------------------------------------------------------


@dataclass(frozen=True)
class ComposeInputs:
    """What the Compose page's widgets hold, as plain values."""

    channel: str
    student_ids: tuple[str, ...]
    template: str | None = None
    body: str | None = None
    subject: str | None = None
    max_priority: int = 1
    parental_responsibility_only: bool = False
    to_pupils: bool = False

    def fingerprint(self) -> str:
        """Identifies these inputs: a preview is only sent while the inputs are unchanged."""
        raw = json.dumps(
            [
                self.channel,
                list(self.student_ids),
                self.template,
                self.body if self.template is None else None,
                self.subject if self.template is None else None,
                self.max_priority,
                self.parental_responsibility_only,
                self.to_pupils,
            ]
        )
        return hashlib.sha256(raw.encode()).hexdigest()

    def composition(self, actor: str) -> Composition:
        """A :class:`Composition` with a new request key (one per preview)."""
        if self.channel not in CHANNEL_LABELS:
            raise ComposeError(f"Choose a channel: {', '.join(CHANNEL_LABELS.values())}.")
        if self.template is None and self.channel == "email" and not (self.subject or "").strip():
            raise ComposeError("An e-mail needs a subject: write one above the message.")
        return Composition(
            channel=self.channel,  # type: ignore[arg-type]
            student_ids=list(self.student_ids),
            created_by=actor,
            body=None if self.template else (self.body or ""),
            subject=None if self.template or self.channel == "sms" else (self.subject or None),
            template=self.template,
            rule=RecipientRule(
                self.channel,  # type: ignore[arg-type]
                max_priority=int(self.max_priority),
                parental_responsibility_only=bool(self.parental_responsibility_only),
                pupils=bool(self.to_pupils) and self.channel == "email",
            ),
        )


def problem_text(exc: BaseException) -> list[str]:
    """The problems of a ComposeError or TemplateProblem (or any error) as sentences."""
    if isinstance(exc, TemplateProblem):
        return list(exc.problems)
    text = str(exc).strip()
    return [text.splitlines()[0] if text else type(exc).__name__]


def pounds(pence: float | None) -> str:
    """'£0.06' for 6 pence."""
    return f"£{(pence or 0) / 100:,.2f}"


def messages_table(plan: Plan) -> pd.DataFrame:
    """The planned messages as a preview table, one row per message."""
    frame = plan.frame()
    columns = ["students", "contact", "to", "subject", "body", "segments", "encoding", "cost_pence"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame[columns].copy()
    frame["to"] = frame["to"].astype(str).str.replace("\n", ", ")
    if plan.composition.channel != "sms":
        frame = frame.drop(columns=["segments", "encoding", "cost_pence"])
    if plan.composition.channel == "sms":
        frame = frame.drop(columns=["subject"])
    return frame


def exclusions_table(plan: Plan) -> pd.DataFrame:
    """Who was left out and why: student_id, contact_id, reason."""
    return pd.DataFrame(
        [e.as_dict() for e in plan.excluded], columns=["student_id", "contact_id", "reason"]
    )


def message_label(plan: Plan, index: int) -> str:
    """'Mrs Alice Able (+447400200001) about S1' for the message chooser."""
    m = plan.messages[index]
    to = m.to.splitlines()[0] if m.to else ""
    if plan.composition.channel == "letter":
        to = m.to.splitlines()[1] if len(m.to.splitlines()) > 1 else to
    return f"{m.contact_name or m.contact_id} ({to}) about {', '.join(m.student_ids)}"


@dataclass
class SendOutcome:
    """What pressing Send did: the batch, whether anything new was queued, and in words."""

    batch_id: int
    queued: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def send(
    engine: Engine,
    settings: Settings,
    plan: Plan,
    *,
    actor: str,
    over_budget_confirmed: bool = False,
    user_roles: Collection[str] = (),
    sent: MutableMapping[str, int] | None = None,
) -> SendOutcome:
    """Put a previewed plan in the outbox once; a second call queues nothing new.

    ``sent`` (the page's session state) maps request keys to batch ids already queued
    in this session. A plan whose messages are already in the outbox (another tab, a
    rerun that was cut short) is not queued again either. The over-budget
    confirmation is checked here against the signed-in user's ``user_roles`` (action
    ``send.over_budget``). Refusals raise :class:`ComposeError` in words.
    """
    sent = sent if sent is not None else {}
    key = plan.composition.request_key
    if key in sent:
        batch_id = sent[key]
        return SendOutcome(
            batch_id,
            False,
            f"This message was already queued as batch {batch_id}; nothing new was queued.",
        )
    if plan.over_budget and over_budget_confirmed and not may_confirm_over_budget(user_roles):
        raise ComposeError(
            f"This SMS batch would cost about {pounds(plan.total_cost_pence)}, more than the "
            f"{pounds(plan.budget_pence)} a batch may cost, and only an "
            f"{over_budget_roles()} can confirm that. Ask one of them, or send to fewer pupils."
        )
    existing = batch_of_keys(engine, [m.idempotency_key for m in plan.messages])
    if existing is not None:
        sent[key] = existing
        return SendOutcome(
            existing,
            False,
            f"This message was already queued as batch {existing}; nothing new was queued.",
        )
    batch_id = enqueue_plan(engine, settings, plan, over_budget_confirmed=over_budget_confirmed)
    sent[key] = batch_id
    details = {
        "channel": plan.composition.channel,
        "messages": len(plan.messages),
        "excluded": len(plan.excluded),
        "cost_pence": plan.total_cost_pence,
        "over_budget_confirmed": bool(plan.over_budget and over_budget_confirmed),
        "origin": "dashboard",
    }
    audit(engine, actor, "send", f"batch:{batch_id}", details)
    return SendOutcome(
        batch_id,
        True,
        f"Queued {len(plan.messages)} message(s) as batch {batch_id}.",
        details,
    )


def letters_pdf(engine: Engine, user_id: int, path: Path) -> bytes:
    """A letter batch's PDF, for the account ``user_id`` if it may still print letters.

    Called when the download button is pressed (not when the page is drawn), so the
    account is read again from the ops store: a role taken away, or an account disabled,
    since the page was shown gets :class:`~schoolcomms.roles.PermissionDenied`.
    """
    account = current_account(engine, user_id)
    check_action(account.roles if account is not None else (), "letters.print")
    return path.read_bytes()


def progress_summary(progress: dict[str, Any]) -> str:
    """'2 of 3 done — 2 sent, 1 queued' from :func:`senders.outbox.batch_progress`."""
    counts = progress.get("counts", {})
    parts = [f"{n} {STATUS_LABELS.get(s, s).lower()}" for s, n in counts.items() if n]
    total = int(progress.get("total", 0))
    head = f"{progress.get('finished', 0)} of {total} finished"
    return head + (" — " + ", ".join(parts) if parts else "")


def progress_done(progress: dict[str, Any]) -> bool:
    """Nothing more will happen to the batch by itself (done, cancelled, or all finished)."""
    return progress.get("state") in ("done", "cancelled") or (
        progress.get("total", 0) == progress.get("finished", 0)
    )


# ---- times -----------------------------------------------------------------------------


def london_now() -> dt.datetime:
    """The current time in Europe/London, to the minute."""
    return dt.datetime.now(LONDON).replace(second=0, microsecond=0)


def london_to_utc(day: dt.date, time: dt.time) -> dt.datetime:
    """A wall-clock date and time in Europe/London as an aware UTC datetime."""
    local = dt.datetime.combine(day, time.replace(tzinfo=None)).replace(tzinfo=LONDON)
    return local.astimezone(dt.UTC)


def day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start 00:00, end+1 00:00)`` in London as aware UTC datetimes (for date filters)."""
    if end < start:
        start, end = end, start
    return (
        london_to_utc(start, dt.time(0, 0)),
        london_to_utc(end + dt.timedelta(days=1), dt.time(0, 0)),
    )


def in_london(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A copy with these aware UTC columns shown as naive Europe/London times."""
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            values = pd.to_datetime(out[column], utc=True)
            out[column] = values.dt.tz_convert(LONDON).dt.tz_localize(None)
    return out


# ---- message log -----------------------------------------------------------------------

LOG_TABLE_COLUMNS = [
    "id",
    "created_at",
    "channel",
    "status",
    "student_id",
    "contact_id",
    "to_address",
    "subject",
    "body",
    "error",
    "attempts",
    "segments",
    "cost_pence",
    "created_by",
    "batch_id",
    "sent_at",
]


def log_table(log: pd.DataFrame) -> pd.DataFrame:
    """The message log as shown: London times, one-line addresses, the columns above."""
    shown = in_london(log, "created_at", "sent_at")[LOG_TABLE_COLUMNS].copy()
    shown["to_address"] = shown["to_address"].astype(str).str.replace("\n", ", ")
    return shown.reset_index(drop=True)


def selected_message_ids(
    shown: pd.DataFrame, selection: Any, status: str | None = None
) -> list[int]:
    """The ids of the selected rows of the log table (only those in ``status`` if given)."""
    rows = []
    if selection:
        try:
            rows = list(selection["selection"]["rows"])
        except (KeyError, TypeError):
            rows = list(getattr(getattr(selection, "selection", None), "rows", []) or [])
    picked = shown.iloc[[r for r in rows if isinstance(r, int) and 0 <= r < len(shown)]]
    if status is not None:
        picked = picked[picked["status"] == status]
    return [int(i) for i in picked["id"].tolist()]


def batch_label(row: dict[str, Any]) -> str:
    """'Batch 3 — SMS, 20/11/2026 09:30, running (2 of 5 finished)'."""
    created = row.get("created_at")
    when = ""
    if created is not None and not pd.isna(created):
        when = pd.Timestamp(created).tz_convert(LONDON).strftime("%d/%m/%Y %H:%M") + ", "
    channel = CHANNEL_LABELS.get(str(row.get("channel")), str(row.get("channel")))
    return (
        f"Batch {row['id']} — {channel}, {when}{row.get('state')} "
        f"({row.get('finished', 0)} of {row.get('total', 0)} finished)"
    )


# ---- message bank ----------------------------------------------------------------------


def merge_field_help() -> pd.DataFrame:
    """Every merge field with what to type and what it is: group, write, meaning."""
    rows = []
    for group, fields in MERGE_FIELDS.items():
        if not fields:
            rows.append(
                {"group": group, "write": f"{{{{ {group} }}}}", "meaning": MERGE_GROUPS[group]}
            )
            continue
        if group == "students":
            rows.append(
                {
                    "group": group,
                    "write": "{% for s in students %}{{ s.forename }} {% endfor %}",
                    "meaning": MERGE_GROUPS[group],
                }
            )
            continue
        for name, meaning in fields.items():
            rows.append({"group": group, "write": f"{{{{ {group}.{name} }}}}", "meaning": meaning})
    return pd.DataFrame(rows, columns=["group", "write", "meaning"])


def filter_help() -> pd.DataFrame:
    """The filters the templates may use: filter, meaning."""
    return pd.DataFrame(
        [{"filter": name, "meaning": meaning} for name, meaning in FILTERS.items()],
        columns=["filter", "meaning"],
    )


@dataclass
class TemplatePreview:
    """A template checked and filled in with sample values."""

    problems: list[str]
    subject: str | None = None
    body: str | None = None


def preview_template(
    *, channel: str, subject: str | None, body: str, settings: Settings | None = None
) -> TemplatePreview:
    """Check a template (:func:`senders.templates.validate`) and fill it in with sample values."""
    problems = validate(body or "", channel=channel) if (body or "").strip() else []
    subject = (subject or "").strip() or None
    if subject and channel != "sms":
        problems += [f"Subject: {p}" for p in validate(subject, channel=channel)]
    if problems or not (body or "").strip():
        return TemplatePreview(problems)
    context = sample_context(settings)
    try:
        shown_subject = preview(subject, context) if subject and channel != "sms" else None
        shown_body = preview(body, context)
    except TemplateProblem as exc:
        return TemplatePreview(list(exc.problems))
    return TemplatePreview([], shown_subject, shown_body)


# ---- record a contact ------------------------------------------------------------------


def contact_options(contacts: pd.DataFrame) -> dict[str, str]:
    """A pupil's contacts for a chooser: contact_id → 'Mrs Alice Able (Mother, priority 1)',
    then 'Someone else'."""

    def text(value: Any) -> str:
        return "" if value is None or pd.isna(value) else str(value).strip()

    options: dict[str, str] = {}
    for row in contacts.to_dict("records"):
        name = " ".join(
            t for t in (text(row.get(k)) for k in ("title", "forename", "surname")) if t
        )
        extra = [text(row.get("relationship"))] if text(row.get("relationship")) else []
        if text(row.get("priority")):
            extra.append(f"priority {int(row['priority'])}")
        label = name or str(row["contact_id"])
        options[str(row["contact_id"])] = label + (f" ({', '.join(extra)})" if extra else "")
    options[OTHER_CONTACT] = "Someone else (type the name)"
    return options


def contact_name(options: dict[str, str], contact_id: str | None) -> str:
    """The name part of a contact's label (before the bracket)."""
    if not contact_id or contact_id == OTHER_CONTACT:
        return ""
    return options.get(contact_id, contact_id).split(" (")[0]


def follow_up_datetime(day: dt.date | None) -> dt.datetime | None:
    """A follow-up date as the start of that day in London (aware UTC), or None."""
    return None if day is None else london_to_utc(day, dt.time(0, 0))


__all__ = [
    "ADMIN",
    "ATTENDANCE_OFFICER",
    "CHANNEL_LABELS",
    "COMPOSE_PAGE",
    "COMPOSE_ROLES",
    "ComposeInputs",
    "DATA_MANAGER",
    "DIRECTION_LABELS",
    "HISTORY_ROLES",
    "LOG_TABLE_COLUMNS",
    "LONDON",
    "MESSAGE_BANK_PAGE",
    "MESSAGE_HISTORY_PAGE",
    "OFFICE",
    "OTHER_CONTACT",
    "Prefill",
    "PASTORAL",
    "RECORD_CONTACT_PAGE",
    "RECORD_CONTACT_ROLES",
    "SENIOR_LEADER",
    "STATUS_LABELS",
    "SendOutcome",
    "TEACHER",
    "TemplatePreview",
    "batch_label",
    "contact_name",
    "contact_options",
    "day_bounds",
    "exclusions_table",
    "filter_help",
    "filter_pupils",
    "follow_up_datetime",
    "ids_from_file",
    "in_london",
    "letters_pdf",
    "log_table",
    "london_now",
    "london_to_utc",
    "may_confirm_over_budget",
    "may_send_bulk",
    "merge_field_help",
    "message_label",
    "messages_table",
    "over_budget_roles",
    "parse_student_ids",
    "picker_key",
    "pounds",
    "preview_template",
    "problem_text",
    "progress_done",
    "progress_summary",
    "pupil_label",
    "pupils_word",
    "read_prefill",
    "pupil_labels",
    "school_sorted",
    "selected_ids",
    "selected_message_ids",
    "send",
    "send_action",
]
