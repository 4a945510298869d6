"""Missing-register reminders (DESIGN.md "Alerts (staff)", last bullet).

A lesson (or AM/PM session) of today that started at least ``register_reminder_minutes``
ago with no register (as of the run time, see reports/registers.py) gets a notice and
e-mail to its teacher, once: key ``register:{lesson_id}:teacher``. A lesson with no
teacher (blank ``staff_id``) sends that notice to the data managers instead, so the
timetable can be fixed. A teacher with no e-mail address (or not in the staff extract)
still gets the notice on their homepage, and the gap is reported.

Still missing ``register_escalate_minutes`` after the start, it is escalated, once per
recipient (key ``register:{lesson_id}:escalation:{staff_id}``), to:

1. a lesson's heads of department (the lesson's subject);
2. for a registration session (no subject): the head of year of the form, when the
   session's class is a form group (its id is a form code, or all its members share one
   form);
3. otherwise, or when nobody in 1–2 is recorded, the attendance officers (whole-school
   role), and the notice says why they were chosen;
4. when there are no attendance officers either, the senior leaders' homepage
   (audience ``senior_leader``, key ``register:{lesson_id}:escalation:senior_leader``).

The lesson's own teacher is never escalated to (a head of department who missed their
own register is escalated past). Escalations are urgent (a pop-up): by then nobody has
known for half an hour which pupils are in the room.

Only the run day's lessons count, and a lesson that started longer ago than the school
day is long (school_day_start to school_day_end) is left alone. :func:`plan` is pure;
:func:`plan_reminders` reads what it needs and leaves out notices already delivered, so
a dry run right after a real run is empty. :func:`senders.notices.deliver` stores each
key once, whatever re-runs, restarts or concurrent runs happen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine, select

from reports.registers import form_heads_of_year, still_missing, whole_school_role
from reports.registers import missing_registers as read_missing
from reports.staff import heads_of_department, staff_by_id
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.history import audit
from schoolcomms.ops.models import Notice
from schoolcomms.settings import Settings, SettingsError
from schoolcomms.warehouse import Warehouse
from senders.notices import StaffNotice, deliver

UK = ZoneInfo("Europe/London")
ACTOR = "register-reminders"
SOURCE_TEACHER = "register_reminder"
SOURCE_ESCALATION = "register_escalation"
WHAT_TO_DO = "Please take the register in the MIS now."
Staff = Mapping[str, Mapping[str, str | None]]


@dataclass(frozen=True)
class Rule:
    """When to remind and escalate, in minutes after a lesson's start."""

    remind_after: int
    escalate_after: int
    longest: int  # the school day's length: older lessons are left alone

    @classmethod
    def from_settings(cls, settings: Settings) -> Rule:
        """The rule from register_reminder_minutes, register_escalate_minutes and the day."""
        values = {}
        for name in ("register_reminder_minutes", "register_escalate_minutes"):
            values[name] = int(settings[name])
            if values[name] < 0:
                raise SettingsError(f"The setting {name} is {values[name]}; use 0 or more minutes.")
        return cls(
            values["register_reminder_minutes"],
            values["register_escalate_minutes"],
            school_day_minutes(settings),
        )


@dataclass(frozen=True)
class Escalation:
    """Who a lesson's escalation goes to, and why them."""

    staff_ids: tuple[str, ...] = ()
    audience: str | None = None
    why: str = ""
    gap: str = ""


@dataclass
class ReminderPlan:
    """What a run would deliver: the notices, the lessons found missing, the gaps."""

    notices: list[StaffNotice]
    missing: pd.DataFrame
    gaps: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Figures for a job run or a summary line."""
        stages = [n.details.get("stage") for n in self.notices]
        return {
            "missing": len(self.missing),
            "reminders": stages.count("teacher"),
            "escalations": stages.count("escalation"),
            "gaps": len(self.gaps),
        }


def _clock(settings: Settings, name: str) -> dt.time:
    value = str(settings[name]).strip()
    try:
        return dt.time.fromisoformat(value)
    except ValueError as exc:
        raise SettingsError(
            f"The setting {name} is {value!r}; write a time as HH:MM, e.g. 08:00."
        ) from exc


def school_day_minutes(settings: Settings) -> int:
    """The school day's length in minutes (school_day_start to school_day_end, whose
    blank means absence_text_latest, as the scheduler reads them)."""
    start = _clock(settings, "school_day_start")
    end_name = (
        "school_day_end" if str(settings["school_day_end"]).strip() else "absence_text_latest"
    )
    end = _clock(settings, end_name)
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if minutes <= 0:
        raise SettingsError(
            f"The school day ends ({end_name} {end:%H:%M}) before it starts (school_day_start "
            f"{start:%H:%M}); set school_day_end later than school_day_start."
        )
    return minutes


def local_time(at: dt.datetime) -> dt.datetime:
    """``at`` as naive UK local time to the minute (the warehouse's time)."""
    if at.tzinfo is not None:
        at = at.astimezone(UK).replace(tzinfo=None)
    return at.replace(second=0, microsecond=0)


def _hhmm(value: Any) -> str:
    return value.strftime("%H:%M") if hasattr(value, "strftime") else str(value)[:5]


def duration_text(minutes: int) -> str:
    """Minutes in words: '40 min', '1 h 5 min', '2 h'."""
    hours, rest = divmod(int(minutes), 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def describe(row: Mapping[str, Any]) -> tuple[str, str]:
    """A lesson in words: a short label for titles and a full sentence fragment."""
    start = _hhmm(row["start_time"])
    day = pd.Timestamp(row["date"]).strftime("%a %d %b")
    class_id = row["class_id"] or "no class"
    if row["kind"] == "session":
        what = f"{row['period'] or 'registration'} session"
        short = f"{class_id} {what} {start}"
        full = f"the {what} of {class_id}"
    else:
        subject = row["subject"] or "no subject"
        period = f"period {row['period']}" if row["period"] else "no period"
        short = f"{class_id} {subject} {'P' + row['period'] if row['period'] else ''} {start}"
        full = f"{class_id} ({subject}), {period}"
    room = f"room {row['room']}" if row["room"] else "no room given"
    return " ".join(short.split()), f"{full}, {room}, which started at {start} on {day}"


def _teacher_notice(
    row: Mapping[str, Any], staff: Staff, key: str, stage: str, sender: str | None = None
) -> StaffNotice:
    short, full = describe(row)
    lesson_id, staff_id = row["lesson_id"], row["staff_id"]
    minutes = int(row["minutes_missing"])
    details: dict[str, Any] = {
        "stage": stage,
        "minutes_missing": minutes,
        "date": pd.Timestamp(row["date"]).date().isoformat(),
        "start": _hhmm(row["start_time"]),
        "class_id": row["class_id"],
        "subject": row["subject"],
        "period": row["period"],
        "room": row["room"],
    }
    asked = f"{sender} asks you to take it. " if sender else ""
    if not staff_id:
        details["gap"] = (
            f"lesson {lesson_id} ({short}) has no teacher (staff_id) in the lessons extract: "
            "the reminder went to the data managers"
        )
        return StaffNotice(
            key,
            f"Register not taken, no teacher: {short}",
            f"The register for {full}, has not been taken after {duration_text(minutes)}, and "
            f"the lesson has no teacher in the lessons extract ({lesson_id}).\n\n"
            "Please find who teaches it and ask them to take the register in the MIS, and "
            "correct the timetable so that the next extract names the teacher.",
            SOURCE_TEACHER,
            audience="data_manager",
            lesson_id=lesson_id,
            details=details,
        )
    known = staff.get(staff_id)
    email = known.get("email") if known else None
    if known is None:
        details["gap"] = (
            f"teacher {staff_id} of lesson {lesson_id} is not in the staff extract, so the "
            "reminder is on the homepage only; add them to the staff extract with an e-mail"
        )
    elif not email:
        details["gap"] = (
            f"teacher {known.get('name') or staff_id} ({staff_id}) has no e-mail address in "
            "the staff extract, so the reminder is on the homepage only"
        )
    return StaffNotice(
        key,
        f"Register not taken: {short}",
        f"The register for {full}, has not been taken yet ({duration_text(minutes)} since the "
        f"start). {asked}{WHAT_TO_DO}\n\nIf you have just taken it, there is nothing more to "
        "do: the next extract from the MIS will show it.",
        SOURCE_TEACHER,
        staff_id=staff_id,
        email=email,
        lesson_id=lesson_id,
        details=details,
    )


def choose_escalation(
    row: Mapping[str, Any],
    heads: Mapping[str, Sequence[str]],
    form_heads: Mapping[str, Sequence[str]],
    officers: Sequence[str],
) -> Escalation:
    """Who a lesson's escalation goes to (the order in the module docstring).

    ``heads`` maps subjects (upper case) to heads of department, ``form_heads`` class ids
    to heads of year, ``officers`` are the attendance officers.
    """
    teacher = row["staff_id"]
    subject = str(row["subject"] or "")

    def others(ids: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted({s for s in ids if s and s != teacher}))

    gap = ""
    if row["kind"] != "session":
        chosen = others(heads.get(subject.strip().upper(), ()))
        if chosen:
            return Escalation(chosen, why=f"head of department for {subject}")
        own = bool(heads.get(subject.strip().upper()))  # only the teacher themselves
        fallback = "no other head of department" if own else "no head of department"
        gap = (
            f"{fallback} for {subject} in the responsibilities extract"
            if subject
            else "the lesson has no subject, so no head of department"
        )
    else:
        chosen = others(form_heads.get(row["class_id"], ()))
        if chosen:
            return Escalation(chosen, why=f"head of year for the form {row['class_id']}")
        gap = (
            f"no head of year found for {row['class_id'] or 'the session'} (not a form "
            "group, or no head of year recorded for its year)"
        )
    chosen = others(officers)
    if chosen:
        return Escalation(chosen, why=f"attendance officer: {gap}", gap=gap)
    gap = f"{gap}, and no attendance officer either: escalated to the senior leaders' homepage"
    return Escalation(audience="senior_leader", why=f"senior leader: {gap}", gap=gap)


def _escalation_notices(
    row: Mapping[str, Any], staff: Staff, escalation: Escalation
) -> list[StaffNotice]:
    short, full = describe(row)
    lesson_id = row["lesson_id"]
    minutes = int(row["minutes_missing"])
    teacher = (
        f"{row['teacher'] or row['staff_id']} ({row['staff_id']})"
        if row["staff_id"]
        else "nobody (the lesson has no teacher in the lessons extract)"
    )
    title = f"Register still missing: {short}"
    body = (
        f"The register for {full}, has still not been taken after {duration_text(minutes)}. "
        f"Teacher: {teacher}.\n\nPlease make sure it is taken in the MIS now: check with the "
        f"teacher or visit the class.\n\nYou are told as {escalation.why}."
    )
    details = {
        "stage": "escalation",
        "minutes_missing": minutes,
        "date": pd.Timestamp(row["date"]).date().isoformat(),
        "start": _hhmm(row["start_time"]),
        "teacher": row["staff_id"],
        "why": escalation.why,
    }
    if escalation.gap:
        details["gap"] = f"lesson {lesson_id} ({short}): {escalation.gap}"
    if escalation.audience:
        return [
            StaffNotice(
                f"register:{lesson_id}:escalation:{escalation.audience}",
                title,
                body,
                SOURCE_ESCALATION,
                audience=escalation.audience,
                urgent=True,
                lesson_id=lesson_id,
                details=details,
            )
        ]
    return [
        StaffNotice(
            f"register:{lesson_id}:escalation:{staff_id}",
            title,
            body,
            SOURCE_ESCALATION,
            staff_id=staff_id,
            urgent=True,
            email=(staff.get(staff_id) or {}).get("email"),
            lesson_id=lesson_id,
            details=details,
        )
        for staff_id in escalation.staff_ids
    ]


def plan(
    missing: pd.DataFrame,
    *,
    rule: Rule,
    staff: Staff,
    escalations: Mapping[str, Escalation],
    delivered: set[str],
) -> list[StaffNotice]:
    """The notices due for ``missing`` (rows of reports.registers.missing_registers).

    ``staff`` maps staff ids to name and e-mail, ``escalations`` lesson ids to their
    escalation, ``delivered`` holds keys already stored (left out).
    """
    notices: list[StaffNotice] = []
    for row in missing.to_dict("records"):
        minutes = int(row["minutes_missing"])
        if minutes > rule.longest:
            continue
        if minutes >= rule.remind_after:
            notices.append(
                _teacher_notice(row, staff, f"register:{row['lesson_id']}:teacher", "teacher")
            )
        if minutes >= rule.escalate_after and row["lesson_id"] in escalations:
            notices += _escalation_notices(row, staff, escalations[row["lesson_id"]])
    return [n for n in notices if n.key not in delivered]


def delivered_keys(engine: Engine, keys: Iterable[str]) -> set[str]:
    """Those of ``keys`` already stored as notices."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    with session_scope(engine, immediate=False) as session:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found.update(session.scalars(select(Notice.key).where(Notice.key.in_(chunk))))
    return found


def _escalations(warehouse: Warehouse, due: pd.DataFrame) -> dict[str, Escalation]:
    if due.empty:
        return {}
    lessons = due[due["kind"] != "session"]
    sessions = due[due["kind"] == "session"]
    heads = {
        subject.strip().upper(): ids
        for subject, ids in heads_of_department(warehouse, lessons["subject"]).items()
    }
    form_heads = form_heads_of_year(warehouse, sessions["class_id"])
    officers = whole_school_role(warehouse, "attendance_officer")
    return {
        row["lesson_id"]: choose_escalation(row, heads, form_heads, officers)
        for row in due.to_dict("records")
    }


def reminder_plan(
    settings: Settings, warehouse: Warehouse, engine: Engine, at: dt.datetime
) -> ReminderPlan:
    """Everything :func:`plan_reminders` works out, with the missing lessons and the gaps."""
    at = local_time(at)
    rule = Rule.from_settings(settings)
    missing = read_missing(
        warehouse,
        start=at.date(),
        end=at.date(),
        at=at,
        after_minutes=min(rule.remind_after, rule.escalate_after),
    )
    missing = missing[missing["minutes_missing"] <= rule.longest].reset_index(drop=True)
    due = missing[missing["minutes_missing"] >= rule.escalate_after]
    escalations = _escalations(warehouse, due)
    ids = set(missing["staff_id"]) | {s for e in escalations.values() for s in e.staff_ids}
    staff = staff_by_id(warehouse, ids)
    everything = plan(missing, rule=rule, staff=staff, escalations=escalations, delivered=set())
    done = delivered_keys(engine, [n.key for n in everything])
    notices = [n for n in everything if n.key not in done]
    gaps = list(dict.fromkeys(n.details["gap"] for n in notices if n.details.get("gap")))
    reminded = missing[missing["minutes_missing"] >= rule.remind_after].reset_index(drop=True)
    return ReminderPlan(notices, reminded, gaps)


def plan_reminders(
    settings: Settings, warehouse: Warehouse, engine: Engine, at: dt.datetime
) -> list[StaffNotice]:
    """The reminders and escalations due at ``at`` (naive UK local time) and not yet
    delivered: today's lessons only."""
    return reminder_plan(settings, warehouse, engine, at).notices


def send_reminders(
    engine: Engine, settings: Settings, notices: Sequence[StaffNotice], *, actor: str = ACTOR
) -> list[StaffNotice]:
    """Deliver the planned notices (each key once, with its e-mail); return the new ones."""
    return deliver(engine, settings, notices, actor=actor)


def remind_now(
    engine: Engine,
    settings: Settings,
    warehouse: Warehouse,
    lesson_ids: Iterable[str],
    actor: str,
    at: dt.datetime,
) -> list[StaffNotice]:
    """Remind the teachers of the chosen lessons now (the dashboard's "Remind selected").

    A manual reminder, on top of the automatic ones: its key names the actor and the
    minute (``register:{lesson_id}:manual:{actor}:{YYYY-MM-DDTHH:MM}``), so it can be
    sent again deliberately later but not twice by a double click. Lessons whose
    register was taken by ``at`` are skipped. Audited; returns the notices delivered.
    """
    at = local_time(at)
    ids = sorted({str(i) for i in lesson_ids if i})
    rows = still_missing(warehouse, ids, at)
    staff = staff_by_id(warehouse, rows["staff_id"])
    stamp = at.strftime("%Y-%m-%dT%H:%M")
    notices = [
        _teacher_notice(
            row, staff, f"register:{row['lesson_id']}:manual:{actor}:{stamp}", "manual", actor
        )
        for row in rows.to_dict("records")
    ]
    sent = deliver(engine, settings, notices, actor=actor)
    reminded = [n.lesson_id for n in sent]
    audit(
        engine,
        actor,
        "register.remind",
        ("lessons:" + ",".join(ids))[:512],
        {
            "at": at.isoformat(sep=" "),
            "lessons": ids,
            "reminded": reminded,
            "not_missing": sorted(set(ids) - set(rows["lesson_id"])),
            "to": [n.staff_id or n.audience for n in sent],
        },
    )
    return sent


def notice_json(notice: StaffNotice) -> dict[str, Any]:
    """The documented JSON shape of ``schoolcomms reminders --json``."""
    return {
        "lesson_id": notice.lesson_id,
        "stage": notice.details.get("stage"),
        "to_staff_id": notice.staff_id,
        "to_audience": notice.audience,
        "email": notice.email,
        "title": notice.title,
        "body": notice.body,
    }


def stale_reason(reason: str) -> str:
    """The freshness guard's reason, worded for register reminders."""
    head = reason.split("; absence texts")[0]
    return (
        f"{head}; register reminders wait until newer marks are loaded (a register may "
        "have been taken but not yet extracted)"
    )
