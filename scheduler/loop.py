"""The scheduler loop: one process, each job in its own thread, every run recorded.

- **Recorded.** Each run is a ``job_runs`` row (:mod:`scheduler.runs`): written
  ``running`` before the job starts, completed with its outcome, counts and error after.
- **Never dies.** An exception in a job is caught, recorded as "error" with its
  traceback, and logged; so is a failure to record (the ops store unreachable).
- **No overlap.** A job whose previous run is still going is not started again; the slot
  is passed over (logged) and the job runs for its next slot after that.
- **One scheduler.** :func:`scheduler_lock` holds ``<data dir>/scheduler.lock``.
- **Clean stop.** :meth:`SchedulerLoop.request_stop` (SIGTERM, SIGINT) starts no new run;
  running jobs finish (dispatch stops after the message in hand) and the loop returns.
- **Catch-up.** On start, each job's newest slot in ``job_runs`` is compared with its
  newest slot due by now. If that slot was missed, it runs once at once (all the missed
  slots collapse into one run) unless it is later than the job's cut-off
  (:attr:`scheduler.jobs.JobSpec.catch_up`): then a "skipped" row records the miss and
  the job waits for its next slot. The same cut-off applies to any slot found late while
  running (a suspended machine). A job that never ran starts at once if within its
  cut-off. Runs left ``running`` by a scheduler that died are marked "error".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from filelock import FileLock, Timeout
from sqlalchemy import Engine

from scheduler import runs
from scheduler.jobs import JobContext, JobResult, JobSpec, build_jobs
from scheduler.slots import ClockedScheduler, latest_slot
from schoolcomms.ops.db import open_ops
from schoolcomms.ops.models import utcnow
from schoolcomms.settings import Settings

log = logging.getLogger(__name__)

LOCK_FILE = "scheduler.lock"
# The loop looks at the clock at least this often (seconds), whatever is next due.
MAX_IDLE = 1.0
PRUNE_EVERY = dt.timedelta(days=1)


class SchedulerError(RuntimeError):
    """The scheduler cannot start; the message says why and what to do."""


class AlreadyRunning(SchedulerError):
    """Another scheduler holds the lock for this data directory."""


@contextlib.contextmanager
def scheduler_lock(settings: Settings) -> Iterator[FileLock]:
    """Hold ``<data dir>/scheduler.lock``; raise :class:`AlreadyRunning` if it is taken."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / LOCK_FILE
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise AlreadyRunning(
            f"Another scheduler is already running for {settings.data_dir} (it holds {path}). "
            "Only one may run at a time: stop the other one first."
        ) from exc
    try:
        yield lock
    finally:
        lock.release()


def _late(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


class SchedulerLoop:
    """The jobs on a :class:`~scheduler.slots.ClockedScheduler`, run and recorded.

    ``now`` (aware UTC) and ``sleep`` are injectable; the default sleep waits on the stop
    event, so a stop request wakes the loop at once. With ``threaded=False`` jobs run in
    the calling thread (tests, ``--once``).
    """

    def __init__(
        self,
        settings: Settings,
        jobs: Sequence[JobSpec] | None = None,
        *,
        engine: Engine | None = None,
        now: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], object] | None = None,
        threaded: bool = True,
        worker: str | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine if engine is not None else open_ops(settings)
        self.specs = {spec.name: spec for spec in (build_jobs(settings) if jobs is None else jobs)}
        self.now = now
        self.stop_event = threading.Event()
        self.sleep = sleep or self.stop_event.wait
        self.threaded = threaded
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.context = JobContext(settings, self.engine, now, self.stop_event)
        self.scheduler = ClockedScheduler(now)
        self.threads: dict[str, threading.Thread] = {}
        self.passed_over: dict[str, int] = {}
        # Jobs lined up at start for a slot missed since their previous run: that run's slot.
        self._missed_since: dict[str, dt.datetime] = {}
        self._next_prune: dt.datetime | None = None
        for spec in self.specs.values():
            self.scheduler.add(spec.name, spec.every, spec.window, self._launcher(spec))

    # ---- start-up: interrupted runs, pruning, catch-up -------------------------------

    def prepare(self) -> None:
        """Mark runs a dead scheduler left ``running``, prune old runs, and line up catch-up."""
        now = self.now()
        interrupted = runs.mark_interrupted(self.engine, now)
        if interrupted:
            log.warning(
                "marked %d interrupted run(s) as errors",
                interrupted,
                extra={"event": "runs.interrupted", "count": interrupted},
            )
        self.prune()
        last = runs.last_slots(self.engine)
        for name, spec in self.specs.items():
            job = self.scheduler.job(name)
            previous = last.get(name)
            due = latest_slot(spec.every, spec.window, now)
            if due is None or (previous is not None and previous >= due):
                continue
            if previous is None and spec.catch_up is not None and now - due > spec.catch_up:
                continue  # never ran, and the newest slot is too old: wait for the next one
            job.next_run = due
            if previous is not None:
                self._missed_since[name] = previous
            log.info(
                "%s: slot %s is due (%s)",
                name,
                due.isoformat(),
                f"the run before was for {previous.isoformat()}" if previous else "first run",
                extra={"event": "job.due", "job": name, "slot": due.isoformat()},
            )

    def prune(self) -> None:
        """Delete job runs older than job_runs_keep_days (at most once a day)."""
        now = self.now()
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        keep = dt.timedelta(days=max(1, int(self.settings["job_runs_keep_days"])))
        try:
            deleted = runs.prune(self.engine, now - keep)
        except Exception:
            log.exception("pruning job runs failed", extra={"event": "runs.prune_failed"})
            return
        if deleted:
            log.info(
                "deleted %d old job run(s)",
                deleted,
                extra={"event": "runs.pruned", "count": deleted},
            )

    # ---- running jobs ----------------------------------------------------------------

    def _launcher(self, spec: JobSpec) -> Callable[[dt.datetime], None]:
        def launch(slot: dt.datetime) -> None:
            if self.stop_event.is_set():
                return
            running = self.threads.get(spec.name)
            if running is not None and running.is_alive():
                self.passed_over[spec.name] = self.passed_over.get(spec.name, 0) + 1
                log.info(
                    "%s is still running; slot %s passed over",
                    spec.name,
                    slot.isoformat(),
                    extra={"event": "job.overlap", "job": spec.name, "slot": slot.isoformat()},
                )
                return
            if not self.threaded:
                self.execute(spec, slot)
                return
            thread = threading.Thread(
                target=self.execute, args=(spec, slot), name=f"job-{spec.name}", daemon=True
            )
            self.threads[spec.name] = thread
            thread.start()

        return launch

    def execute(self, spec: JobSpec, slot: dt.datetime) -> JobResult | None:
        """Run ``spec`` for ``slot`` and record it; never raises. None if not run."""
        try:
            return self._execute(spec, slot)
        except Exception:
            log.exception(
                "%s: could not record the run for slot %s",
                spec.name,
                slot.isoformat(),
                extra={"event": "job.record_failed", "job": spec.name, "slot": slot.isoformat()},
            )
            return None

    def _execute(self, spec: JobSpec, slot: dt.datetime) -> JobResult | None:
        started = self.now()
        late = (started - slot).total_seconds()
        fields = {"job": spec.name, "slot": slot.isoformat()}
        previous = self._missed_since.pop(spec.name, None)
        if spec.catch_up is not None and late > spec.catch_up.total_seconds():
            detail = (
                f"missed: {_late(late)} late, beyond this job's cut-off of "
                f"{_late(spec.catch_up.total_seconds())} ({spec.catch_up_rule or 'no catch-up'})"
            )
            if previous is not None:
                detail += f"; the run before was for {previous.isoformat()}"
            runs.record_skipped(self.engine, spec.name, slot, started, self.worker, detail)
            log.warning("%s: %s", spec.name, detail, extra={"event": "job.missed", **fields})
            return JobResult("skipped", {}, detail)
        run_id = runs.start_run(self.engine, spec.name, slot, started, self.worker)
        if run_id is None:
            log.info("%s: slot already run", spec.name, extra={"event": "job.duplicate", **fields})
            return None
        clock = time.monotonic()
        try:
            result = spec.run(self.context)
            if not isinstance(result, JobResult):
                raise TypeError(f"job {spec.name} returned {type(result).__name__}, not JobResult")
        except Exception as exc:
            result = JobResult(
                "error", {}, f"{type(exc).__name__}: {exc}"[:500], traceback.format_exc()
            )
            log.error(
                "%s failed: %s",
                spec.name,
                result.detail,
                exc_info=True,
                extra={"event": "job.failed", **fields},
            )
        if previous is not None or late > spec.every.total_seconds():
            catch_up = f"catch-up run, {_late(late)} after its slot"
            if previous is not None:
                catch_up += f" (the run before was for {previous.isoformat()})"
            result.detail = f"{catch_up}; {result.detail}" if result.detail else catch_up
        seconds = time.monotonic() - clock
        runs.finish_run(
            self.engine,
            run_id,
            result.outcome,
            self.now(),
            counts=result.counts,
            detail=result.detail,
            error=result.error,
        )
        quiet = result.outcome == "ok" and not any(
            isinstance(v, int | float) and not isinstance(v, bool) and v
            for v in result.counts.values()
        )
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s %s%s",
            spec.name,
            result.outcome,
            f": {result.detail}" if result.detail else "",
            extra={
                "event": "job.finished",
                **fields,
                "outcome": result.outcome,
                "seconds": round(seconds, 3),
                "counts": result.counts,
            },
        )
        return result

    def tick(self) -> None:
        """Start every job that is due (each in its own thread unless not threaded)."""
        self.scheduler.run_pending()

    def wait_for_jobs(self, timeout: float | None = None) -> bool:
        """Wait for running jobs to finish; True if none is left running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for name, thread in list(self.threads.items()):
            while thread.is_alive():
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                # Short joins keep the main thread responsive to signals.
                thread.join(0.2)
            self.threads.pop(name, None)
        return True

    def request_stop(self) -> None:
        """Start no new run; running jobs finish, then :meth:`run_forever` returns."""
        if not self.stop_event.is_set():
            running = [name for name, t in self.threads.items() if t.is_alive()]
            log.info(
                "stopping%s",
                f" once {', '.join(running)} finish(es)" if running else "",
                extra={"event": "scheduler.stopping", "running": running},
            )
        self.stop_event.set()

    # ---- the two ways to run ---------------------------------------------------------

    def run_forever(self) -> None:
        """Run jobs as they fall due until :meth:`request_stop`; then let running jobs finish."""
        log.info(
            "scheduler started: %s",
            "; ".join(f"{s.name} {s.describe()}" for s in self.specs.values()),
            extra={
                "event": "scheduler.started",
                "worker": self.worker,
                "data_dir": str(self.settings.data_dir),
            },
        )
        self.prepare()
        while not self.stop_event.is_set():
            try:
                self.tick()
                self.prune()
                idle = self.scheduler.idle_seconds
            except Exception:  # the loop itself must never die
                log.exception("scheduler tick failed", extra={"event": "scheduler.tick_failed"})
                idle = None
            if self.stop_event.is_set():
                break
            self.sleep(MAX_IDLE if idle is None else min(max(idle, 0.0), MAX_IDLE))
        self.wait_for_jobs()
        log.info("scheduler stopped", extra={"event": "scheduler.stopped", "worker": self.worker})

    def run_once(self) -> dict[str, JobResult | None]:
        """Run every job that is due now once (catch-up included), in job order; then return."""
        self.prepare()
        now = self.now()
        results: dict[str, JobResult | None] = {}
        for name, spec in self.specs.items():
            if self.stop_event.is_set():
                break
            slot = self.scheduler.job(name).next_run
            if slot is not None and slot <= now:
                results[name] = self.execute(spec, slot)
        return results


def install_signal_handlers(loop: SchedulerLoop) -> dict[int, Any]:
    """SIGTERM and SIGINT ask ``loop`` to stop after the running jobs (main thread only).

    Returns the handlers replaced, for :func:`restore_signal_handlers`.
    """

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name, extra={"event": "scheduler.signal"})
        loop.request_stop()

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}


def restore_signal_handlers(previous: dict[int, Any]) -> None:
    """Put back the handlers :func:`install_signal_handlers` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def serve(
    settings: Settings, *, once: bool = False, jobs: Sequence[JobSpec] | None = None
) -> dict[str, JobResult | None]:
    """Hold the lock and run the scheduler until stopped (or, ``once``, run what is due).

    Returns the ``once`` results by job. Raises :class:`AlreadyRunning` if another
    scheduler holds the lock.
    """
    with scheduler_lock(settings):
        loop = SchedulerLoop(settings, jobs, threaded=not once)
        previous = install_signal_handlers(loop)
        try:
            if once:
                return loop.run_once()
            loop.run_forever()
            return {}
        finally:
            restore_signal_handlers(previous)
