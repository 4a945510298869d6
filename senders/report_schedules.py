"""Weekly report schedules: who gets which report, on which day and time, each week once.

A :class:`~schoolcomms.ops.models.ReportSchedule` row names a report
(:data:`reports.weekly.REPORTS`), its recipients' e-mail addresses, a weekday (Monday
= 0) and a time (``HH:MM``, UK local time). Every change is checked first
(:class:`ScheduleProblem` lists what is wrong) and written with an audit row in the same
transaction (``report_schedule.create`` / ``.update`` / ``.delete``).

**When a schedule is due.** Its *slot* is the latest weekday-and-time at or before now
(local). It is due when that slot is newer than ``last_slot``, the schedule has not yet
reported that slot's week (each slot reports the previous complete week, see
:mod:`reports.weekly`), and the slot is no older than the catch-up cut-off (12 hours by
default). A slot missed by more than that (the scheduler was down) is not sent: it is
recorded as done (``last_slot``) with a ``report.missed`` audit row, and the next one
goes as usual. So a report goes at most once a week per schedule, and re-timing a
schedule after it has sent does not send that week's report again.

A new schedule, or one switched back on, starts at its *next* time: the slot just
passed counts as done (``last_slot`` is set to it), so nothing is sent for the time
before it existed or while it was off. "Send now" (:func:`send_report_now`) sends at
once whenever asked.

**Sending once.** :func:`send_report` queues one e-mail per recipient with the
idempotency key ``report:{schedule_id}:{slot}:{address}`` and moves ``last_slot`` in the
same transaction, with a conditional update, so re-runs, restarts and two schedulers
at once queue one e-mail per recipient per slot. A manual send has its own key,
``report:{schedule id or report}:now:{week}:{minute}:{address}`` (one per minute).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.orm import Session

from reports.weekly import REPORTS, ReportContent, build_report, previous_week
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AuditEntry, Message, ReportSchedule, utcnow
from schoolcomms.settings import Settings, SettingsError
from schoolcomms.warehouse import Warehouse
from senders.notices import data_manager_emails
from senders.outbox import enqueue_in
from senders.report_mail import report_folder, report_messages

log = logging.getLogger(__name__)

UK = ZoneInfo("Europe/London")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_CATCH_UP = dt.timedelta(hours=12)
SLOT_FORMAT = "%Y-%m-%d %H:%M"
MAX_RECIPIENTS = 50
FRAME_COLUMNS = (
    "id",
    "report",
    "title",
    "recipients",
    "day",
    "time",
    "enabled",
    "last_sent_at",
    "next_send",
    "last_slot",
    "updated_by",
    "updated_at",
)


class ScheduleProblem(ValueError):
    """A schedule that cannot be saved; ``problems`` says every reason, in words."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


class ScheduleNotFound(LookupError):
    """No schedule has that id (it may have been deleted)."""


@dataclass(frozen=True)
class Schedule:
    """A report schedule as stored."""

    id: int
    report: str
    recipients: tuple[str, ...]
    weekday: int
    time_of_day: str
    enabled: bool
    last_slot: str | None
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str

    @property
    def day(self) -> str:
        """The weekday's name, e.g. ``Monday``."""
        return WEEKDAYS[self.weekday]

    def describe(self) -> str:
        """``attendance, Monday 07:00, to 2 recipient(s)`` (for messages and the CLI)."""
        return (
            f"{self.report}, {self.day} {self.time_of_day}, to {len(self.recipients)} recipient(s)"
        )


def _schedule(row: ReportSchedule) -> Schedule:
    return Schedule(
        id=row.id,
        report=row.report,
        recipients=tuple(row.recipients or ()),
        weekday=int(row.weekday),
        time_of_day=row.time_of_day,
        enabled=bool(row.enabled),
        last_slot=row.last_slot,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


# ---- checking input ----------------------------------------------------------------------


def parse_recipients(value: str | Iterable[str]) -> list[str]:
    """E-mail addresses from text (commas, semicolons, spaces or lines) or a list.

    Returns them normalised (as ``email_validator`` writes them), without duplicates,
    in order. Raises :class:`ScheduleProblem` naming every address that is not valid.
    """
    items = re.split(r"[,;\s]+", value) if isinstance(value, str) else list(value)
    found: dict[str, str] = {}
    problems = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            address = validate_email(item, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            problems.append(f"{item!r} is not an e-mail address ({exc}).")
            continue
        found.setdefault(address.lower(), address)
    if len(found) > MAX_RECIPIENTS:
        problems.append(
            f"A schedule can have at most {MAX_RECIPIENTS} recipients; use a mailing list "
            "address for more."
        )
    if problems:
        problems.append("Write e-mail addresses separated by commas, e.g. head@school.example.org.")
        raise ScheduleProblem(problems)
    return list(found.values())


def parse_time(text: str) -> str:
    """``HH:MM`` (24-hour) from ``7:00``, ``07:00`` or ``07:00:00``; ScheduleProblem if not."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::00)?\s*", str(text or ""))
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        return f"{int(match[1]):02d}:{match[2]}"
    raise ScheduleProblem(
        [f"{text!r} is not a time of day: write HH:MM on the 24-hour clock, e.g. 07:00."]
    )


def parse_weekday(value: int | str) -> int:
    """0–6 (Monday = 0) from a number or a day's name (``Mon``, ``monday``)."""
    if isinstance(value, str) and not value.strip().isdigit():
        name = value.strip().lower()
        for number, day in enumerate(WEEKDAYS):
            if len(name) >= 3 and day.lower().startswith(name):
                return number
        raise ScheduleProblem([f"{value!r} is not a day of the week: write Monday … Sunday."])
    number = int(value)
    if not 0 <= number <= 6:
        raise ScheduleProblem([f"The day must be 0 (Monday) to 6 (Sunday), not {number}."])
    return number


def parse_when(text: str) -> tuple[int, str]:
    """``(weekday, "HH:MM")`` from text such as ``Monday 07:00``."""
    day, _, time_text = str(text or "").strip().partition(" ")
    return parse_weekday(day), parse_time(time_text)


def default_when(settings: Settings) -> tuple[int, str]:
    """The setting ``weekly_report_default_time`` as ``(weekday, "HH:MM")``."""
    try:
        return parse_when(str(settings["weekly_report_default_time"]))
    except ScheduleProblem as exc:
        raise SettingsError(
            f"The setting weekly_report_default_time is "
            f"{settings['weekly_report_default_time']!r}: {exc} Write a day and a time, "
            "e.g. 'Monday 07:00'."
        ) from exc


def _checked(
    report: str,
    recipients: str | Iterable[str],
    weekday: int | str,
    time_of_day: str,
    enabled: bool,
) -> tuple[str, list[str], int, str]:
    problems: list[str] = []
    if report not in REPORTS:
        problems.append(
            f"There is no report called {report!r}; choose one of {', '.join(REPORTS)}."
        )
    checked: dict[str, Any] = {}
    for name, parse, value in (
        ("recipients", parse_recipients, recipients),
        ("weekday", parse_weekday, weekday),
        ("time", parse_time, time_of_day),
    ):
        try:
            checked[name] = parse(value)
        except ScheduleProblem as exc:
            problems += exc.problems
        except (TypeError, ValueError):
            problems.append(f"The {name} {value!r} cannot be read.")
    if enabled and "recipients" in checked and not checked["recipients"]:
        problems.append(
            "An enabled schedule needs at least one recipient: add an e-mail address, or "
            "switch the schedule off."
        )
    if problems:
        raise ScheduleProblem(problems)
    return report, checked["recipients"], checked["weekday"], checked["time"]


# ---- slots ------------------------------------------------------------------------------


def local(moment: dt.datetime) -> dt.datetime:
    """An aware time as naive UK local time, to the minute (as the scheduler sees it)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"Naive datetime {moment.isoformat()}: pass an aware time (UTC).")
    return moment.astimezone(UK).replace(tzinfo=None, second=0, microsecond=0)


def slot_text(slot: dt.datetime) -> str:
    """A slot as stored in ``last_slot``: ``YYYY-MM-DD HH:MM``."""
    return slot.strftime(SLOT_FORMAT)


def latest_slot(weekday: int, time_of_day: str, now_local: dt.datetime) -> dt.datetime:
    """The latest ``weekday`` at ``time_of_day`` at or before ``now_local`` (naive UK)."""
    at = dt.time.fromisoformat(time_of_day)
    day = now_local.date() - dt.timedelta(days=(now_local.weekday() - weekday) % 7)
    slot = dt.datetime.combine(day, at)
    return slot if slot <= now_local else slot - dt.timedelta(days=7)


def next_slot(weekday: int, time_of_day: str, now_local: dt.datetime) -> dt.datetime:
    """The first ``weekday`` at ``time_of_day`` after ``now_local``."""
    return latest_slot(weekday, time_of_day, now_local) + dt.timedelta(days=7)


def _reported(last_slot: str | None, slot: dt.datetime) -> bool:
    """Whether ``slot`` (or its report week) is already done for this schedule."""
    if not last_slot:
        return False
    last = dt.datetime.strptime(last_slot, SLOT_FORMAT)
    return slot <= last or previous_week(slot) <= previous_week(last)


# ---- reading -------------------------------------------------------------------------------


def list_schedules(engine: Engine) -> list[Schedule]:
    """Every schedule, by report (in :data:`REPORTS` order) then day and time."""
    order = {name: i for i, name in enumerate(REPORTS)}
    with session_scope(engine, immediate=False) as s:
        found = [_schedule(r) for r in s.scalars(select(ReportSchedule))]
    return sorted(
        found, key=lambda x: (order.get(x.report, len(order)), x.weekday, x.time_of_day, x.id)
    )


def get_schedule(engine: Engine, schedule_id: int) -> Schedule:
    """The schedule with this id; :class:`ScheduleNotFound` if there is none."""
    with session_scope(engine, immediate=False) as s:
        row = s.get(ReportSchedule, int(schedule_id))
        if row is None:
            raise ScheduleNotFound(f"There is no report schedule {schedule_id}; it was deleted.")
        return _schedule(row)


def last_sent(engine: Engine, schedule_ids: Iterable[int]) -> dict[int, dt.datetime]:
    """When each schedule last queued an e-mail (scheduled or sent now), from the outbox."""
    out: dict[int, dt.datetime] = {}
    with session_scope(engine, immediate=False) as s:
        for schedule_id in schedule_ids:
            newest = s.scalar(
                select(func.max(Message.created_at)).where(
                    Message.idempotency_key.like(f"report:{int(schedule_id)}:%")
                )
            )
            if newest is not None:
                out[int(schedule_id)] = newest
    return out


def schedules_frame(engine: Engine, now_local: dt.datetime | None = None) -> pd.DataFrame:
    """The schedules as a table for the dashboard and CLI: :data:`FRAME_COLUMNS`.

    ``recipients`` is comma-separated; ``last_sent_at`` is aware UTC (NaT if never);
    ``next_send`` is naive UK local time (NaT when switched off).
    """
    now_local = now_local or local(utcnow())
    schedules = list_schedules(engine)
    sent = last_sent(engine, [s.id for s in schedules])
    rows = [
        {
            "id": s.id,
            "report": s.report,
            "title": REPORTS[s.report].title if s.report in REPORTS else s.report,
            "recipients": ", ".join(s.recipients),
            "day": s.day,
            "time": s.time_of_day,
            "enabled": s.enabled,
            "last_sent_at": sent.get(s.id),
            "next_send": _next_send(s, now_local) if s.enabled else None,
            "last_slot": s.last_slot,
            "updated_by": s.updated_by,
            "updated_at": s.updated_at,
        }
        for s in schedules
    ]
    frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    frame["last_sent_at"] = pd.to_datetime(frame["last_sent_at"], utc=True)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    frame["next_send"] = pd.to_datetime(frame["next_send"])
    frame["id"] = frame["id"].astype("int64")
    frame["enabled"] = frame["enabled"].astype(bool)
    return frame


def _next_send(schedule: Schedule, now_local: dt.datetime) -> dt.datetime:
    slot = latest_slot(schedule.weekday, schedule.time_of_day, now_local)
    if not _reported(schedule.last_slot, slot):
        return slot  # due now (or at the next check)
    return slot + dt.timedelta(days=7)


# ---- writing ---------------------------------------------------------------------------------


def _actor(actor: str) -> str:
    if not (actor or "").strip():
        raise ValueError('actor must name who acted (a user, "cli" or "scheduler")')
    return actor.strip()


def _audit(s: Session, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
    s.add(AuditEntry(at=utcnow(), actor=actor, action=action, target=target, details=details))


def _fields(row: ReportSchedule) -> dict[str, Any]:
    return {
        "report": row.report,
        "recipients": list(row.recipients or ()),
        "weekday": row.weekday,
        "time_of_day": row.time_of_day,
        "enabled": row.enabled,
    }


def _add(
    s: Session,
    report: str,
    recipients: list[str],
    weekday: int,
    time_of_day: str,
    enabled: bool,
    actor: str,
    now: dt.datetime,
) -> ReportSchedule:
    row = ReportSchedule(
        report=report,
        recipients=recipients,
        weekday=weekday,
        time_of_day=time_of_day,
        enabled=enabled,
        # The slot just passed is done: a new schedule starts at its next time.
        last_slot=slot_text(latest_slot(weekday, time_of_day, local(now))),
        created_at=now,
        created_by=actor,
        updated_at=now,
        updated_by=actor,
    )
    s.add(row)
    s.flush()
    _audit(s, actor, "report_schedule.create", f"report_schedule:{row.id}", _fields(row))
    return row


def create_schedule(
    engine: Engine,
    *,
    report: str,
    recipients: str | Iterable[str],
    weekday: int | str,
    time_of_day: str,
    enabled: bool = True,
    actor: str,
    now: dt.datetime | None = None,
) -> Schedule:
    """Add a schedule; raises :class:`ScheduleProblem` (saving nothing) if anything is wrong.

    It first sends at its next day and time after ``now`` (aware; default: now).
    """
    actor = _actor(actor)
    now = now or utcnow()
    report, addresses, day, at = _checked(report, recipients, weekday, time_of_day, enabled)
    with session_scope(engine) as s:
        return _schedule(_add(s, report, addresses, day, at, bool(enabled), actor, now))


def update_schedule(
    engine: Engine,
    schedule_id: int,
    *,
    actor: str,
    report: str | None = None,
    recipients: str | Iterable[str] | None = None,
    weekday: int | str | None = None,
    time_of_day: str | None = None,
    enabled: bool | None = None,
    now: dt.datetime | None = None,
) -> Schedule:
    """Change the given fields of a schedule (None leaves a field as it is).

    Raises :class:`ScheduleProblem` (changing nothing) if the result would be invalid,
    :class:`ScheduleNotFound` if it was deleted. Switching a schedule on makes it start
    at its next time; re-timing it never sends a week's report twice.
    """
    actor = _actor(actor)
    now = now or utcnow()
    with session_scope(engine) as s:
        row = s.get(ReportSchedule, int(schedule_id))
        if row is None:
            raise ScheduleNotFound(f"There is no report schedule {schedule_id}; it was deleted.")
        before = _fields(row)
        checked = _checked(
            before["report"] if report is None else report,
            before["recipients"] if recipients is None else recipients,
            before["weekday"] if weekday is None else weekday,
            before["time_of_day"] if time_of_day is None else time_of_day,
            before["enabled"] if enabled is None else bool(enabled),
        )
        row.report, row.recipients, row.weekday, row.time_of_day = checked
        if enabled is not None:
            row.enabled = bool(enabled)
        if row.enabled and not before["enabled"]:
            passed = slot_text(latest_slot(row.weekday, row.time_of_day, local(now)))
            row.last_slot = max(row.last_slot or "", passed)
        after = _fields(row)
        changed = {k: {"old": before[k], "new": after[k]} for k in after if after[k] != before[k]}
        if changed:
            row.updated_at, row.updated_by = now, actor
            _audit(s, actor, "report_schedule.update", f"report_schedule:{row.id}", changed)
        return _schedule(row)


def delete_schedule(engine: Engine, schedule_id: int, *, actor: str) -> None:
    """Delete a schedule (its sent e-mails stay in the message log); audited."""
    actor = _actor(actor)
    with session_scope(engine) as s:
        row = s.get(ReportSchedule, int(schedule_id))
        if row is None:
            raise ScheduleNotFound(f"There is no report schedule {schedule_id}; it was deleted.")
        details = _fields(row)
        s.delete(row)
        _audit(s, actor, "report_schedule.delete", f"report_schedule:{schedule_id}", details)


def seed_default_schedules(
    engine: Engine, settings: Settings, actor: str = "setup", now: dt.datetime | None = None
) -> list[Schedule]:
    """One schedule for each report that has none, at ``weekly_report_default_time``.

    Recipients are the valid addresses in ``data_manager_emails``; with none, the
    schedule is added switched off with no recipients, for someone to fill in on the
    Weekly reports page (a report nobody receives would only be noise). Reports that
    already have a schedule are left alone, so calling this again adds nothing.
    """
    actor = _actor(actor)
    now = now or utcnow()
    weekday, at = default_when(settings)
    recipients = []
    for address in data_manager_emails(settings):
        try:
            recipients += parse_recipients([address])
        except ScheduleProblem:
            log.warning("data_manager_emails holds %r, which is not an e-mail address", address)
    added: list[Schedule] = []
    with session_scope(engine) as s:
        have = set(s.scalars(select(ReportSchedule.report).distinct()))
        for name in REPORTS:
            if name not in have:
                row = _add(s, name, recipients, weekday, at, bool(recipients), actor, now)
                added.append(_schedule(row))
    return added


# ---- due and sending ------------------------------------------------------------------------


@dataclass
class DueSchedules:
    """What :func:`due_schedules` found: schedules to send now, and those missed for good."""

    due: list[tuple[Schedule, dt.datetime]] = field(default_factory=list)
    skipped: list[tuple[Schedule, dt.datetime]] = field(default_factory=list)


def due_schedules(
    engine: Engine,
    now_local: dt.datetime,
    catch_up: dt.timedelta = DEFAULT_CATCH_UP,
    *,
    record: bool = True,
    actor: str = "scheduler",
) -> DueSchedules:
    """The enabled schedules due at ``now_local`` (naive UK), each with its slot.

    A slot older than ``catch_up`` is not due but missed: with ``record`` (the
    scheduler), it is marked done with a ``report.missed`` audit row, so it is
    reported once and never sent late.
    """
    found = DueSchedules()
    for schedule in list_schedules(engine):
        if not schedule.enabled:
            continue
        slot = latest_slot(schedule.weekday, schedule.time_of_day, now_local)
        if _reported(schedule.last_slot, slot):
            continue
        if now_local - slot > catch_up:
            found.skipped.append((schedule, slot))
        else:
            found.due.append((schedule, slot))
    if record and found.skipped:
        with session_scope(engine) as s:
            for schedule, slot in found.skipped:
                moved = _claim_slot(s, schedule.id, slot)
                if moved:
                    late = int((now_local - slot).total_seconds() // 60)
                    details = {
                        "report": schedule.report,
                        "slot": slot_text(slot),
                        "late_minutes": late,
                    }
                    _audit(s, actor, "report.missed", f"report_schedule:{schedule.id}", details)
                    log.warning("weekly report %s missed its %s slot", schedule.report, slot)
    return found


def _claim_slot(s: Session, schedule_id: int, slot: dt.datetime) -> bool:
    """Move ``last_slot`` to ``slot`` unless it is there already; whether it moved."""
    text = slot_text(slot)
    result = s.execute(
        update(ReportSchedule)
        .where(
            ReportSchedule.id == schedule_id,
            or_(ReportSchedule.last_slot.is_(None), ReportSchedule.last_slot < text),
        )
        .values(last_slot=text)
    )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class SendOutcome:
    """What a send did: e-mails newly queued (``queued``) and whether the slot was done."""

    report: str
    week_start: dt.date
    recipients: int
    queued: int
    schedule_id: int | None = None
    slot: str | None = None
    already_sent: bool = False
    attachments: tuple[Path, ...] = ()
    message_ids: tuple[int, ...] = ()
    note: str = ""


def send_report(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse | None,
    schedule: Schedule,
    slot: dt.datetime,
    actor: str = "scheduler",
    *,
    now: dt.datetime | None = None,
) -> SendOutcome:
    """Build the schedule's report for ``slot`` and queue it to each recipient, once.

    The week is the previous complete week before ``slot``; the report is built as of
    ``now`` (aware; default: now). The e-mails and the move of ``last_slot`` commit
    together, and only if no other run has taken the slot: otherwise nothing is queued
    and the outcome says ``already_sent``.
    """
    actor = _actor(actor)
    now = now or utcnow()
    fresh = get_schedule(engine, schedule.id)
    week_start = previous_week(slot)
    done = SendOutcome(
        fresh.report, week_start, len(fresh.recipients), 0, fresh.id, slot_text(slot), True
    )
    if (fresh.last_slot or "") >= slot_text(slot):
        return done
    if not fresh.enabled:  # switched off since it was found due
        return replace(done, already_sent=False, note="the schedule is switched off")
    at = max(local(now), slot)
    content = build_report(fresh.report, settings, warehouse, engine, week_start, at)
    key = f"report:{fresh.id}:{slot_text(slot)}"
    folder = report_folder(
        settings.data_dir, slot.date(), f"{fresh.report}-s{fresh.id}-{slot:%H%M}"
    )
    messages, paths = report_messages(settings, content, fresh.recipients, key, folder)
    with session_scope(engine) as s:
        if not _claim_slot(s, fresh.id, slot):
            return done
        ids = enqueue_in(s, messages, actor, now=now)
        details = {
            "report": fresh.report,
            "slot": slot_text(slot),
            "week_start": week_start.isoformat(),
            "recipients": len(fresh.recipients),
            "queued": len(ids),
        }
        _audit(s, actor, "report.send", f"report_schedule:{fresh.id}", details)
    log.info("weekly report %s queued to %d recipient(s)", fresh.report, len(ids))
    return replace(
        done, queued=len(ids), already_sent=False, attachments=tuple(paths), message_ids=tuple(ids)
    )


def send_report_now(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse | None,
    *,
    report: str,
    recipients: str | Iterable[str],
    actor: str,
    schedule_id: int | None = None,
    week_start: dt.date | None = None,
    now: dt.datetime | None = None,
    content: ReportContent | None = None,
) -> SendOutcome:
    """Build a report and queue it to ``recipients`` at once (dashboard, CLI).

    The week defaults to the previous complete week before ``now``; ``content`` is the
    report already built for that week (a preview), else it is built here. The
    idempotency key holds the week and the minute, so pressing Send twice in a minute
    queues once. Raises :class:`ScheduleProblem` for an unknown report or bad or no
    recipients.
    """
    actor = _actor(actor)
    now = now or utcnow()
    at = local(now)
    problems = []
    if report not in REPORTS:
        problems.append(
            f"There is no report called {report!r}; choose one of {', '.join(REPORTS)}."
        )
    try:
        addresses = parse_recipients(recipients)
    except ScheduleProblem as exc:
        problems += exc.problems
        addresses = []
    if not addresses and not problems:
        problems.append("Say who should receive the report: at least one e-mail address.")
    if problems:
        raise ScheduleProblem(problems)
    week_start = week_start or previous_week(at)
    if content is None or content.name != report or content.week_start != week_start:
        content = build_report(report, settings, warehouse, engine, week_start, at)
    owner = str(schedule_id) if schedule_id is not None else report
    key = f"report:{owner}:now:{week_start.isoformat()}:{at:%Y-%m-%d %H:%M}"
    tag = f"{report}-{'s' + owner if schedule_id is not None else 'now'}-{at:%H%M}"
    folder = report_folder(settings.data_dir, at.date(), tag)
    messages, paths = report_messages(settings, content, addresses, key, folder)
    with session_scope(engine) as s:
        ids = enqueue_in(s, messages, actor, now=now)
        details = {
            "report": report,
            "week_start": week_start.isoformat(),
            "recipients": addresses,
            "queued": len(ids),
            "schedule_id": schedule_id,
        }
        target = f"report_schedule:{schedule_id}" if schedule_id is not None else f"report:{report}"
        _audit(s, actor, "report.send_now", target, details)
    return SendOutcome(
        report,
        week_start,
        len(addresses),
        len(ids),
        schedule_id,
        attachments=tuple(paths),
        message_ids=tuple(ids),
    )


__all__ = [
    "DEFAULT_CATCH_UP",
    "FRAME_COLUMNS",
    "WEEKDAYS",
    "DueSchedules",
    "Schedule",
    "ScheduleNotFound",
    "ScheduleProblem",
    "SendOutcome",
    "create_schedule",
    "default_when",
    "delete_schedule",
    "due_schedules",
    "get_schedule",
    "last_sent",
    "latest_slot",
    "list_schedules",
    "local",
    "next_slot",
    "parse_recipients",
    "parse_time",
    "parse_weekday",
    "parse_when",
    "schedules_frame",
    "seed_default_schedules",
    "send_report",
    "send_report_now",
    "slot_text",
]
