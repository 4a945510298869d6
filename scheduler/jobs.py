"""The scheduler's jobs: thin calls into pipelines/, reports/ and senders/.

Each job takes a :class:`JobContext` and returns a :class:`JobResult` (or raises: the
loop records the exception and carries on). :func:`build_jobs` turns the settings into
the job table, each with its schedule and its catch-up cut-off:

=================  ===================================  ===============================
job                schedule (setting)                   catch-up after downtime
=================  ===================================  ===============================
load_drop_folder   every 5 min (schedule_drop_          always, at once: files wait in
                   folder_minutes)                      the folder until loaded
absence_texts      every 2 min from school_day_start    only within the school day (one
                   to school_day_end (schedule_         slot's lateness): one run plans
                   absence_texts_minutes)               every text due so far today; a
                                                        day missed is never made up
register_          every 5 min in the school day        only within the school day: one
reminders          (schedule_reminders_minutes)         run sends all due so far today
alerts             every 5 min (schedule_alerts_        always, at once: each crossing
                   minutes)                             fires once in its window
weekly_reports     every 5 min (schedule_reports_       a report up to 12 h late is sent;
                   minutes): each report's own day      later ones are skipped (recorded)
                   and time (dashboard)
dispatch           every 15 s (schedule_dispatch_       always, at once: the outbox
                   seconds)                             keeps every message until sent
delivery           every 5 min (schedule_delivery_      always, at once: one poll asks
                   minutes)                             about the last 72 hours
message_retention  once a day                           always, at once: a purge covers
                                                        every message past retention
=================  ===================================  ===============================
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from scheduler.slots import UK, Window
from schoolcomms.settings import Settings, SettingsError

if TYPE_CHECKING:
    from scheduler.dropfolder import DropResult
    from scheduler.freshness import Freshness

OUTCOMES = ("ok", "error", "skipped")


@dataclass
class JobResult:
    """What a run did: its outcome, counts (JSON) and a one-line detail or skip reason."""

    outcome: str = "ok"
    counts: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    error: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"A job's outcome is one of {OUTCOMES}, not {self.outcome!r}")


@dataclass
class JobContext:
    """What a job needs: settings, the ops store, the clock and the stop request.

    ``now`` gives aware UTC time (injectable for tests): it decides the absence rule's
    "now". Times shared with other processes stay on the real clock: the outbox's
    leases and retries, and the drop folder's file modification times. Each job runs in
    at most one thread at a time, so a job may keep objects in ``cache`` under its name.
    """

    settings: Settings
    engine: Engine
    now: Callable[[], dt.datetime]
    stop: threading.Event
    cache: dict[str, Any] = field(default_factory=dict)

    def local_now(self) -> dt.datetime:
        """The clock's time in naive UK local time, to the minute (as senders.absence.local_now)."""
        return self.now().astimezone(UK).replace(tzinfo=None, second=0, microsecond=0)


@dataclass(frozen=True)
class JobSpec:
    """One job: its name, interval, window, catch-up cut-off and what it runs.

    ``catch_up`` is how late a slot may still run: a slot found more than that late (the
    scheduler was down, or the machine asleep) is recorded as skipped instead. None
    means a missed slot is always made up (once, at once).
    """

    name: str
    every: dt.timedelta
    run: Callable[[JobContext], JobResult]
    catch_up: dt.timedelta | None = None
    window: Window | None = None
    catch_up_rule: str = ""

    def describe(self) -> str:
        """The schedule in words, e.g. "every 2 min, 08:00–18:00"."""
        seconds = int(self.every.total_seconds())
        text = f"every {seconds // 60} min" if seconds % 60 == 0 else f"every {seconds} s"
        return f"{text}, {self.window}" if self.window else text


# ---- the jobs ------------------------------------------------------------------------


def dispatch_job(ctx: JobContext) -> JobResult:
    """Send what is due in the outbox (:meth:`senders.dispatcher.Dispatcher.run_once`).

    A stop request ends the run after the message being sent; the rest go back to the
    outbox for the next dispatcher.
    """
    from senders.dispatcher import Dispatcher
    from senders.messengers import build_messengers

    dispatcher = ctx.cache.get("dispatcher")
    if dispatcher is None:
        dispatcher = Dispatcher(ctx.engine, build_messengers(ctx.settings), ctx.settings)
        ctx.cache["dispatcher"] = dispatcher
    stats = dispatcher.run_once(stop_event=ctx.stop)
    counts = {k: v for k, v in vars(stats).items() if k != "seconds"}
    return JobResult(counts=counts, detail=str(stats) if stats.claimed else "")


def delivery_job(ctx: JobContext) -> JobResult:
    """Ask the SMS provider what became of sent messages (``senders.delivery.poll_delivery``)."""
    from senders.delivery import poll_delivery
    from senders.messengers import build_messengers

    messengers = ctx.cache.get("messengers")
    if messengers is None:
        messengers = ctx.cache["messengers"] = build_messengers(ctx.settings)
    changed = poll_delivery(ctx.engine, messengers)
    return JobResult(counts={"changed": changed})


def absence_texts_job(ctx: JobContext) -> JobResult:
    """Queue the absence texts due now, unless the registers are stale.

    The freshness guard comes first: stale registers skip the run, with the reason.
    Otherwise :func:`senders.absence.plan_at` and :func:`senders.absence.send` run with
    the current local time, exactly as ``schoolcomms absence-texts`` does.
    """
    from scheduler.freshness import check_freshness
    from schoolcomms.warehouse import Warehouse
    from senders.absence import plan_at, send

    at = ctx.local_now()
    warehouse = Warehouse.from_settings(ctx.settings)
    max_age = dt.timedelta(minutes=int(ctx.settings["freshness_minutes"]))
    guard = check_freshness(warehouse, at, max_age)
    if not guard.fresh:
        tell_data_managers_stale(ctx, at, guard)
        return JobResult("skipped", guard.counts(), guard.reason)
    texts = plan_at(ctx.settings, warehouse, ctx.engine, at)
    queued = send(ctx.engine, ctx.settings, texts, at.date())
    students = len({t.student_id for t in queued})
    counts = {"planned": len(texts), "queued": len(queued), "students": students, **guard.counts()}
    detail = f"queued {len(queued)} text(s) about {students} student(s)" if queued else ""
    return JobResult(counts=counts, detail=detail)


def load_drop_folder_job(ctx: JobContext) -> JobResult:
    """Load extract files dropped in the drop folder; move them to done/ or refused/.

    A refused load is an "error" outcome (someone must fix the files), with the summary
    and where the files and their report went.
    """
    from scheduler.dropfolder import load_dropped

    result = load_dropped(ctx.settings, ctx.now().astimezone(UK).replace(tzinfo=None))
    counts = result.counts()
    if result.status == "refused":
        assert result.report is not None
        tell_data_managers_refused(ctx, result)
        return JobResult(
            "error",
            counts,
            f"refused {len(result.files)} file(s); moved to {result.moved_to}",
            f"{result.report.summary()} The files and load-report.txt are in {result.moved_to}.",
        )
    if result.status == "busy":
        return JobResult(
            "skipped", counts, "another load is running; the files wait for the next run"
        )
    if result.status == "loaded":
        assert result.report is not None
        return JobResult(
            "ok", counts, f"{result.report.summary()} Files moved to {result.moved_to}."
        )
    return JobResult(counts=counts)


def alerts_job(ctx: JobContext) -> JobResult:
    """Evaluate the staff alert rules and deliver what fired (:mod:`scheduler.jobs_alerts`)."""
    from scheduler.jobs_alerts import alerts_job as run

    return run(ctx)


def register_reminders_job(ctx: JobContext) -> JobResult:
    """Remind teachers of missing registers, then escalate (:mod:`scheduler.jobs_reminders`)."""
    from scheduler.jobs_reminders import reminders_job as run

    return run(ctx)


def weekly_reports_job(ctx: JobContext) -> JobResult:
    """E-mail the weekly reports that are due (:mod:`scheduler.jobs_reports`)."""
    from scheduler.jobs_reports import weekly_reports_job as run

    return run(ctx)


def message_retention_job(ctx: JobContext) -> JobResult:
    """Purge message bodies past their retention (:mod:`scheduler.jobs_retention`)."""
    from scheduler.jobs_retention import message_retention_job as run

    return run(ctx)


# ---- notices to data managers ----------------------------------------------------------


def tell_data_managers_stale(ctx: JobContext, at: dt.datetime, guard: Freshness) -> None:
    """A notice (and e-mail) to data managers: registers are stale, texts are paused.

    Once per stale spell: the key names the day and the newest mark seen, so a spell
    that ends (newer marks) and starts again is told again.
    """
    from senders.notices import StaffNotice, deliver

    newest = guard.newest_mark.isoformat(timespec="minutes") if guard.newest_mark else "none"
    notice = StaffNotice(
        key=f"data:stale:{at.date().isoformat()}:{newest}",
        title="Registers are stale: absence texts and attendance alerts are paused",
        body=f"{guard.reason[:1].upper()}{guard.reason[1:]}.\n\nLoad a fresh marks extract "
        "(drop it in the drop folder or use the Data loads page); texts resume on their own "
        "once the registers are fresh again.",
        source="data",
        audience="data_manager",
        urgent=True,
        details=guard.counts(),
    )
    deliver(ctx.engine, ctx.settings, [notice], now=ctx.now())


def tell_data_managers_refused(ctx: JobContext, result: DropResult) -> None:
    """A notice (and e-mail) to data managers: the drop folder's files were refused."""
    from senders.notices import StaffNotice, deliver

    assert result.report is not None
    problems = [p.as_text() for p in result.report.errors[:10]]
    more = len(result.report.errors) - len(problems)
    body = "\n".join(
        [
            f"{result.report.summary()}",
            "",
            *problems,
            *([f"…and {more} more problem(s)."] if more > 0 else []),
            "",
            f"Nothing was changed. The files and load-report.txt are in {result.moved_to}: "
            "fix the files and drop them in again.",
        ]
    )
    notice = StaffNotice(
        key=f"data:refused:{result.moved_to}",
        title=f"Drop-folder load refused ({len(result.files)} file(s))",
        body=body,
        source="data",
        audience="data_manager",
        urgent=True,
        details={"files": result.files, "moved_to": str(result.moved_to)},
    )
    deliver(ctx.engine, ctx.settings, [notice], now=ctx.now())


# ---- the job table ---------------------------------------------------------------------


def _every(settings: Settings, name: str, unit: str) -> dt.timedelta:
    value = int(settings[name])
    if value < 1:
        raise SettingsError(
            f"The setting {name} is {value}; the scheduler needs at least 1 {unit}."
        )
    return dt.timedelta(**{unit: value})


def _clock_time(settings: Settings, name: str, value: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value.strip())
    except ValueError as exc:
        raise SettingsError(
            f"The setting {name} is {value!r}; write a time as HH:MM, e.g. 08:00."
        ) from exc


def school_day(settings: Settings) -> Window:
    """The school day: school_day_start to school_day_end (blank: absence_text_latest)."""
    start = _clock_time(settings, "school_day_start", str(settings["school_day_start"]))
    end_name = (
        "school_day_end" if str(settings["school_day_end"]).strip() else "absence_text_latest"
    )
    end = _clock_time(settings, end_name, str(settings[end_name]))
    if end <= start:
        raise SettingsError(
            f"The school day ends ({end_name} {end:%H:%M}) before it starts (school_day_start "
            f"{start:%H:%M}); set school_day_end later than school_day_start."
        )
    return Window(start, end)


def build_jobs(settings: Settings) -> list[JobSpec]:
    """The scheduler's jobs with their schedules from the settings (see the module table).

    The order is the order ``--once`` runs them in: new extracts first, then the absence
    texts they make due, then dispatch sends what was queued.
    """
    absence_every = _every(settings, "schedule_absence_texts_minutes", "minutes")
    reminders_every = _every(settings, "schedule_reminders_minutes", "minutes")
    return [
        JobSpec(
            "load_drop_folder",
            _every(settings, "schedule_drop_folder_minutes", "minutes"),
            load_drop_folder_job,
            catch_up_rule="always: a missed run is made up at once (files wait in the folder)",
        ),
        JobSpec(
            "absence_texts",
            absence_every,
            absence_texts_job,
            catch_up=absence_every,
            window=school_day(settings),
            catch_up_rule="same school day only: after downtime one run at once plans every "
            "text due so far today; runs missed on a day that is over are never made up",
        ),
        JobSpec(
            "register_reminders",
            reminders_every,
            register_reminders_job,
            catch_up=reminders_every,
            window=school_day(settings),
            catch_up_rule="same school day only: one run at once sends every reminder due so "
            "far today (each lesson's reminder once); a day that is over is never made up",
        ),
        JobSpec(
            "alerts",
            _every(settings, "schedule_alerts_minutes", "minutes"),
            alerts_job,
            catch_up_rule="always: one run at once fires every crossing in its window (each "
            "once); attendance rules wait while registers are stale",
        ),
        JobSpec(
            "weekly_reports",
            _every(settings, "schedule_reports_minutes", "minutes"),
            weekly_reports_job,
            catch_up_rule="always: a report missed by up to 12 hours is sent at once; one "
            "missed by longer is recorded as skipped and waits for next week",
        ),
        JobSpec(
            "message_retention",
            dt.timedelta(days=1),
            message_retention_job,
            catch_up_rule="always: a missed day is made up at once (each purge covers every "
            "message older than the retention period)",
        ),
        JobSpec(
            "dispatch",
            _every(settings, "schedule_dispatch_seconds", "seconds"),
            dispatch_job,
            catch_up_rule="always: a missed run is made up at once (the outbox keeps every "
            "message)",
        ),
        JobSpec(
            "delivery",
            _every(settings, "schedule_delivery_minutes", "minutes"),
            delivery_job,
            catch_up_rule="always: a missed poll is made up at once (it covers 72 hours)",
        ),
    ]
