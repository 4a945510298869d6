"""Declarative models of the ops store (SQLAlchemy 2, portable between SQLite and PostgreSQL).

Every schema change needs a hand-written Alembic migration in
``schoolcomms/ops/migrations/versions``; ``tests/test_ops_store.py`` checks that the
migrations and these models agree.

Conventions:

- Times are :class:`UTCDateTime`: always timezone-aware UTC in Python, stored as UTC
  (``timestamptz`` on PostgreSQL, ISO text on SQLite). Naive datetimes are refused.
- Constraint and index names come from :data:`NAMING_CONVENTION`, so migrations name
  them the same way on every database.
- Small fixed vocabularies (status, origin, format) are checked in Python
  (:mod:`schoolcomms.ops.history`), not with CHECK constraints, so adding a value does
  not need a table rebuild on SQLite.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LOAD_STATUSES: tuple[str, ...] = ("loaded", "refused", "dry_run", "rolled_back", "failed")
LOAD_ORIGINS: tuple[str, ...] = ("cli", "dashboard", "scheduler", "sql")
FILE_FORMATS: tuple[str, ...] = ("csv", "xlsx", "ctf", "sql")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC; values read back are aware UTC datetimes.

    SQLite has no time zone type, so the value is normalised to UTC before it is
    written and marked as UTC when it is read. Naive datetimes raise ``ValueError``
    (a naive ``datetime.now()`` on a UK server is an hour out half the year).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"Expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"Naive datetime {value.isoformat()} cannot be stored in the ops store; "
                "pass a timezone-aware value, e.g. datetime.now(UTC)."
            )
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every ops store model; its metadata carries the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[dict[str, Any]]: JSON(),
    }


class LoadRun(Base):
    """One attempt to load extracts into the warehouse (or one rollback)."""

    __tablename__ = "load_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    # Who: a user's name or e-mail, or "cli" / "scheduler".
    actor: Mapped[str] = mapped_column(String(255))
    # One of LOAD_ORIGINS.
    origin: Mapped[str] = mapped_column(String(20))
    # One of LOAD_STATUSES.
    status: Mapped[str] = mapped_column(String(20))
    generation_before: Mapped[int | None]
    generation_after: Mapped[int | None]
    error_count: Mapped[int] = mapped_column(default=0)
    warning_count: Mapped[int] = mapped_column(default=0)
    summary: Mapped[str] = mapped_column(Text, default="")
    # Problem dicts (pipelines.problems.Problem.as_dict()), truncated: see history.py.
    report: Mapped[list[dict[str, Any]]] = mapped_column(default=list)

    files: Mapped[list[LoadFile]] = relationship(
        back_populates="load_run",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="LoadFile.id",
    )

    def __repr__(self) -> str:
        return f"<LoadRun {self.id} {self.status} by {self.actor!r} at {self.started_at}>"


class LoadFile(Base):
    """One file (or SQL query result) that was part of a load run."""

    __tablename__ = "load_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    load_run_id: Mapped[int] = mapped_column(
        ForeignKey("load_runs.id", ondelete="CASCADE"), index=True
    )
    file_name: Mapped[str] = mapped_column(String(512))
    # The extract the file was read as (students, lessons, …); blank if not recognised.
    extract: Mapped[str] = mapped_column(String(64), default="")
    # One of FILE_FORMATS.
    format: Mapped[str] = mapped_column(String(10))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    rows: Mapped[int | None] = mapped_column(BigInteger)
    archived_path: Mapped[str | None] = mapped_column(String(1024))

    load_run: Mapped[LoadRun] = relationship(back_populates="files")

    def __repr__(self) -> str:
        return f"<LoadFile {self.id} {self.file_name!r} run {self.load_run_id}>"


class AuditEntry(Base):
    """Who did what, to what, and when: loads, rollbacks, sends, settings changes."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    # e.g. "load", "load.refused", "rollback", "settings.change".
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(512), default="")
    details: Mapped[dict[str, Any] | None]

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} {self.target!r} by {self.actor!r}>"


# ---- messaging -----------------------------------------------------------------------

MESSAGE_STATUSES: tuple[str, ...] = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "failed",
    "cancelled",
)
BATCH_STATES: tuple[str, ...] = ("running", "paused", "done", "cancelled")
CHANNELS: tuple[str, ...] = ("sms", "email", "letter")


class Batch(Base):
    """A bulk send: who started it, with which template and filter, and its state."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(10))
    template_name: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(512))
    # The template text used (bank template or free text), kept as sent.
    body_template: Mapped[str] = mapped_column(Text, default="")
    # How recipients were chosen: student ids, the rule, the page or command.
    filter: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # One of BATCH_STATES.
    state: Mapped[str] = mapped_column(String(12), default="running")
    state_reason: Mapped[str] = mapped_column(Text, default="")
    total: Mapped[int] = mapped_column(default=0)
    excluded: Mapped[int] = mapped_column(default=0)
    estimated_cost_pence: Mapped[float] = mapped_column(default=0.0)
    consecutive_errors: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None]
    # For letters: the merged PDF kept with the batch.
    document_path: Mapped[str | None] = mapped_column(String(1024))


class Message(Base):
    """One message to one recipient on one channel: the outbox and the message log."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unique: the same logical message is never stored (or sent) twice.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("batches.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(10))
    # E.164 for SMS, an address for e-mail, the postal address block for letters.
    to_address: Mapped[str] = mapped_column(String(1024))
    subject: Mapped[str | None] = mapped_column(String(512))
    body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    template_name: Mapped[str | None] = mapped_column(String(128))
    # One of MESSAGE_STATUSES.
    status: Mapped[str] = mapped_column(String(12), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    provider_status: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int | None]
    encoding: Mapped[str | None] = mapped_column(String(8))
    cost_pence: Mapped[float | None]
    student_id: Mapped[str | None] = mapped_column(String(64), index=True)
    contact_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_messages_status_next_attempt_at", "status", "next_attempt_at"),
        # "Is anything left in this batch?" after every send: without it, quadratic.
        Index("ix_messages_batch_id_status", "batch_id", "status"),
    )


class Template(Base):
    """A message bank entry."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(String(512))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64), default="general")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    archived: Mapped[bool] = mapped_column(default=False)


class PastoralEntry(Base):
    """A pastoral log entry about a pupil (e.g. an absence text sent to a parent)."""

    __tablename__ = "pastoral_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    student_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_by: Mapped[str] = mapped_column(String(255))


class ContactEntry(Base):
    """A phone call, meeting or other contact with a parent that a member of staff recorded."""

    __tablename__ = "contact_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    happened_at: Mapped[datetime] = mapped_column(index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    student_id: Mapped[str] = mapped_column(String(64), index=True)
    contact_id: Mapped[str | None] = mapped_column(String(64))
    contact_name: Mapped[str] = mapped_column(String(255), default="")
    # phone, meeting, email, letter, other
    method: Mapped[str] = mapped_column(String(16))
    # in or out
    direction: Mapped[str] = mapped_column(String(4), default="out")
    outcome: Mapped[str] = mapped_column(String(255), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    follow_up_on: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(255))


class OptOut(Base):
    """An address that must not be messaged on a channel (a parent's request or a provider's)."""

    __tablename__ = "opt_outs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    # E.164 for SMS, lower-case e-mail address for e-mail.
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    # parent, staff, provider
    source: Mapped[str] = mapped_column(String(16), default="staff")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("channel", "address"),)


class AbsenceNotice(Base):
    """One absence notification per student per day.

    The unique (day, student_id) row is written in the same transaction as the texts,
    so re-runs, restarts and concurrent schedulers can never notify a student twice.
    """

    __tablename__ = "absence_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    student_id: Mapped[str] = mapped_column(String(64))
    lesson_id: Mapped[str] = mapped_column(String(64))
    texts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("day", "student_id"),)


# ---- scheduler -----------------------------------------------------------------------

# "running" while a run is under way; a run the scheduler never finished (it was killed)
# is marked "error" when the next scheduler starts.
JOB_OUTCOMES: tuple[str, ...] = ("running", "ok", "error", "skipped")


class JobRun(Base):
    """One run of one scheduler job for one slot (the scheduled time it ran for).

    The row is written as ``running`` when the run starts and completed when it ends.
    The unique (job, slot) pair means a slot is run at most once, even by two schedulers
    sharing one ops store; the newest slot of a job is where catch-up starts after
    downtime.
    """

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    slot: Mapped[datetime]
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    # One of JOB_OUTCOMES.
    outcome: Mapped[str] = mapped_column(String(12), default="running")
    # What the run did, e.g. {"sent": 3} or {"queued": 2, "students": 1}.
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The exception (type, message and traceback) of a run that failed.
    error: Mapped[str | None] = mapped_column(Text)
    # Why a run was skipped, or a one-line summary of what it did.
    detail: Mapped[str] = mapped_column(Text, default="")
    # host:pid of the scheduler that ran it.
    worker: Mapped[str] = mapped_column(String(128), default="")

    __table_args__ = (UniqueConstraint("job", "slot"),)

    def __repr__(self) -> str:
        return f"<JobRun {self.id} {self.job} slot {self.slot} {self.outcome}>"


# ---- staff notices, alert rules, weekly reports ----------------------------------------


class Notice(Base):
    """A notice on staff homepages: an alert, a register reminder, a data problem.

    Addressed to one staff member (``staff_id``) or to everyone holding a dashboard role
    (``audience``, e.g. ``data_manager``). ``key`` names the notice for ever: delivering
    the same key twice stores (and e-mails) it once, which is how a rule fires once per
    crossing and a reminder goes once.
    """

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    staff_id: Mapped[str | None] = mapped_column(String(64), index=True)
    audience: Mapped[str | None] = mapped_column(String(32), index=True)
    # What raised it: "alert", "register_reminder", "register_escalation", "data", ...
    source: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text, default="")
    urgent: Mapped[bool] = mapped_column(default=False)
    rule_id: Mapped[int | None] = mapped_column(Integer)
    student_id: Mapped[str | None] = mapped_column(String(64))
    lesson_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The e-mail queued with it, if any (messages.id).
    message_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(255), default="scheduler")
    read_at: Mapped[datetime | None]
    read_by: Mapped[str | None] = mapped_column(String(255))

    def __repr__(self) -> str:
        return f"<Notice {self.id} {self.key} to {self.staff_id or self.audience}>"


ALERT_KINDS: tuple[str, ...] = (
    "behaviour_threshold",
    "behaviour_incident",
    "attendance_code",
    "truancy",
)


class AlertRule(Base):
    """A staff alert rule, edited in the dashboard and evaluated by the scheduler.

    ``kind`` is one of :data:`ALERT_KINDS`; ``params`` holds the kind's settings (e.g.
    ``{"threshold": 5, "types": ["Disruption"], "window": "week"}``) and ``notify`` who
    hears of it (e.g. ``{"roles": ["form_tutor"], "staff_ids": [], "groups": []}``); both
    are checked by :mod:`senders.alerts.rules` before they are stored.
    """

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(default=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notify: Mapped[dict[str, Any]] = mapped_column(default=dict)
    urgent: Mapped[bool] = mapped_column(default=False)
    email: Mapped[bool] = mapped_column(default=True)
    # A message bank template to text (or e-mail) parents with, blank for staff only.
    parent_template: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))

    def __repr__(self) -> str:
        return f"<AlertRule {self.id} {self.name!r} {self.kind}>"


class AlertFiring(Base):
    """One firing of a rule: unique (rule, key), so a crossing fires once per window.

    ``key`` names what fired, e.g. ``STU1:2026-W47`` for a calendar-week threshold or
    ``STU1:INC42`` for an incident; ``student_id`` and ``details`` say what was seen.
    """

    __tablename__ = "alert_firings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(Integer, index=True)
    key: Mapped[str] = mapped_column(String(255))
    student_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)
    notices: Mapped[int] = mapped_column(default=0)

    __table_args__ = (UniqueConstraint("rule_id", "key"),)


class StaffGroup(Base):
    """A named group of staff to alert together (e.g. "Safeguarding team")."""

    __tablename__ = "staff_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    staff_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))


class ReportSchedule(Base):
    """A weekly report e-mailed on a weekday at a time (UK local) to its recipients.

    ``last_slot`` is the local date-time of the newest run that was sent, so a
    restarted scheduler neither repeats nor (within the catch-up cut-off) misses one.
    """

    __tablename__ = "report_schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    weekday: Mapped[int] = mapped_column(default=0)  # Monday = 0
    time_of_day: Mapped[str] = mapped_column(String(5), default="07:00")
    enabled: Mapped[bool] = mapped_column(default=True)
    last_slot: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))


# ---- dashboard users --------------------------------------------------------------------


class User(Base):
    """A dashboard account: local (argon2 password hash) or single sign-on (no hash).

    ``email`` is stored lower-case and is how single sign-on accounts are matched;
    ``roles`` is a list from :data:`schoolcomms.roles.ROLES`; ``staff_id`` links the
    account to a ``staff`` row so notices and "my registers" reach the right person.
    ``failed_logins`` and ``locked_until`` implement the lockout.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    staff_id: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.roles}>"


# ---- staff workflow: referrals, assistance, queries, calendars ---------------------------

REFERRAL_STATES: tuple[str, ...] = ("open", "actioned", "closed")


class ReferralOption(Base):
    """An entry of the configured referral list: who behaviour can be referred to."""

    __tablename__ = "referral_options"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(255), unique=True)
    staff_id: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))


class Referral(Base):
    """A pupil referred to a member of staff (usually about a behaviour incident)."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[str] = mapped_column(String(64), index=True)
    incident_id: Mapped[str | None] = mapped_column(String(64))
    to_staff_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    # One of REFERRAL_STATES.
    status: Mapped[str] = mapped_column(String(12), default="open")
    outcome_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))
    actioned_at: Mapped[datetime | None]
    actioned_by: Mapped[str | None] = mapped_column(String(255))


class AssistanceRequest(Base):
    """An emergency assistance request: shown live to the office until acknowledged."""

    __tablename__ = "assistance_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(255))
    staff_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))


QUERY_KINDS: tuple[str, ...] = ("mark", "grade")
QUERY_STATES: tuple[str, ...] = ("open", "answered", "closed")


class StaffQuery(Base):
    """A query about an attendance mark or a grade, sent to the teacher who entered it."""

    __tablename__ = "staff_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One of QUERY_KINDS.
    kind: Mapped[str] = mapped_column(String(8))
    student_id: Mapped[str] = mapped_column(String(64), index=True)
    # The lesson_id of a mark, or the grade_id of a grade.
    subject_ref: Mapped[str] = mapped_column(String(64))
    # The mark or grade as it was when asked about, and its context for the inbox.
    current_value: Mapped[str] = mapped_column(String(255), default="")
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    to_staff_id: Mapped[str | None] = mapped_column(String(64), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, default="")
    # One of QUERY_STATES.
    status: Mapped[str] = mapped_column(String(12), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[str | None] = mapped_column(String(255))


class CalendarSource(Base):
    """A calendar shown on a user's homepage: an ICS feed URL or an uploaded ICS file."""

    __tablename__ = "calendar_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_email: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="Calendar")
    # "url" or "file"; for "file" the ICS text itself is kept in ``content``.
    kind: Mapped[str] = mapped_column(String(8))
    url: Mapped[str | None] = mapped_column(String(2048))
    content: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
