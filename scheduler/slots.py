"""Slots: the times a job is scheduled for, and a ``schedule`` scheduler on a given clock.

A job's slots are the multiples of its interval counted from the Unix epoch (UTC), so
a job every 2 minutes runs for 10:00, 10:02, 10:04 … whenever the scheduler started,
and a slot names the same moment across restarts (``job_runs`` is unique per job and
slot). A job may be limited to a daily window in UK local time (the school day): only
slots inside the window, ends included, exist.

:class:`ClockedScheduler` is a :class:`schedule.Scheduler` whose jobs read the time
from an injected clock (aware UTC datetimes) instead of ``datetime.now()``, so tests
move time without sleeping, and whose jobs are called with the slot they run for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import schedule

UK = ZoneInfo("Europe/London")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# next_run of a job that has no slot left (a window no slot fits in).
NEVER = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
# How many days a window search looks back or ahead before giving up.
SEARCH_DAYS = 8


@dataclass(frozen=True)
class Window:
    """A daily window in UK local time, ``start`` to ``end`` inclusive (same day)."""

    start: dt.time
    end: dt.time

    def contains(self, moment: dt.datetime) -> bool:
        """Whether the aware ``moment`` falls inside the window (UK local time)."""
        return self.start <= moment.astimezone(UK).time() <= self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


def _local(day: dt.date, at: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=UK).astimezone(dt.UTC)


def floor_slot(moment: dt.datetime, every: dt.timedelta) -> dt.datetime:
    """The newest multiple of ``every`` since the epoch at or before ``moment``."""
    return EPOCH + ((moment - EPOCH) // every) * every


def ceil_slot(moment: dt.datetime, every: dt.timedelta) -> dt.datetime:
    """The oldest multiple of ``every`` since the epoch at or after ``moment``."""
    slot = floor_slot(moment, every)
    return slot if slot == moment else slot + every


def latest_slot(every: dt.timedelta, window: Window | None, now: dt.datetime) -> dt.datetime | None:
    """The newest slot at or before ``now`` (inside ``window``, if any)."""
    slot = floor_slot(now, every)
    if window is None or window.contains(slot):
        return slot
    today = now.astimezone(UK).date()
    for back in range(SEARCH_DAYS):
        candidate = floor_slot(min(_local(today - dt.timedelta(days=back), window.end), now), every)
        if window.contains(candidate):
            return candidate
    return None


def next_slot(every: dt.timedelta, window: Window | None, after: dt.datetime) -> dt.datetime | None:
    """The first slot strictly after ``after`` (inside ``window``, if any)."""
    slot = floor_slot(after, every) + every
    if window is None:
        return slot
    for _ in range(SEARCH_DAYS):
        if window.contains(slot):
            return slot
        local = slot.astimezone(UK)
        day = local.date() if local.time() < window.start else local.date() + dt.timedelta(days=1)
        slot = ceil_slot(_local(day, window.start), every)
    return None


class SlotJob(schedule.Job):
    """A :class:`schedule.Job` on its scheduler's clock, running for aligned slots.

    ``next_run`` is an aware UTC datetime: the next slot. When run, the job function is
    called with the slot it runs for; the next run is the first slot after the clock's
    time then, so a slot missed while the job ran is not run late.
    """

    def __init__(
        self, name: str, every: dt.timedelta, window: Window | None, scheduler: ClockedScheduler
    ) -> None:
        if every <= dt.timedelta(0):
            raise ValueError(f"Job {name} needs a positive interval, not {every}")
        super().__init__(max(1, int(every.total_seconds())), scheduler)
        self.unit = "seconds"
        self.name = name
        self.every = every
        self.window = window
        self.clocked = scheduler

    @property
    def should_run(self) -> bool:
        """True once the clock has reached the job's next slot."""
        return self.next_run is not None and self.clocked.now() >= self.next_run

    def run(self) -> Any:
        """Call the job function with the slot due, then move on to the next slot."""
        slot = self.next_run
        result = self.job_func(slot) if self.job_func is not None else None
        self.last_run = self.clocked.now()
        self._schedule_next_run()
        return result

    def _schedule_next_run(self) -> None:
        self.next_run = next_slot(self.every, self.window, self.clocked.now()) or NEVER

    def __repr__(self) -> str:
        return f"<SlotJob {self.name} every {self.every} window {self.window} next {self.next_run}>"


class ClockedScheduler(schedule.Scheduler):
    """A ``schedule`` scheduler whose time comes from ``now`` (aware UTC datetimes)."""

    def __init__(self, now: Callable[[], dt.datetime]) -> None:
        super().__init__()
        self.now = now

    def add(
        self,
        name: str,
        every: dt.timedelta,
        window: Window | None,
        func: Callable[[dt.datetime], Any],
    ) -> SlotJob:
        """Schedule ``func(slot)`` for every slot of ``every`` (inside ``window``)."""
        job = SlotJob(name, every, window, self)
        job.do(func)
        return job

    def every(self, interval: int = 1) -> schedule.Job:
        """Refused: jobs on this scheduler are added with :meth:`add`."""
        raise TypeError("ClockedScheduler jobs run for slots on its clock; use add() instead")

    def job(self, name: str) -> SlotJob:
        """The job called ``name``."""
        for job in self.jobs:
            if isinstance(job, SlotJob) and job.name == name:
                return job
        raise KeyError(name)

    @property
    def idle_seconds(self) -> float | None:
        """Seconds from the clock's time until the next job is due (negative if overdue)."""
        upcoming = self.next_run
        return None if upcoming is None else (upcoming - self.now()).total_seconds()
