"""The data-freshness guard: never text parents from stale registers.

During the school day the absence texts job first asks :func:`check_freshness`. The
registers are stale when the newest mark recorded today (among marks recorded at or
before the run time, as the absence rule sees them) is older than ``freshness_minutes``.
Until the first lesson of the day has been under way that long, no marks are expected
yet, so the clock starts at the first lesson's start: the reference time is the later
of the newest mark today and the first lesson's start. After the last lesson of the day
ends no new registers are expected, so the age is measured up to that end, not beyond. A day with no lessons has
nothing to text about and counts as fresh; a warehouse with nothing loaded is stale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from schoolcomms.warehouse import NoWarehouse, Warehouse

FRESHNESS_SQL = """
SELECT
    (SELECT min(start_time) FROM lessons
     WHERE date = $day AND coalesce(kind, 'lesson') = 'lesson') AS first_start,
    (SELECT max(end_time) FROM lessons
     WHERE date = $day AND coalesce(kind, 'lesson') = 'lesson') AS last_end,
    (SELECT max(m.recorded_at) FROM marks m JOIN lessons l ON l.lesson_id = m.lesson_id
     WHERE l.date = $day AND m.recorded_at <= $at) AS newest_mark
"""


@dataclass(frozen=True)
class Freshness:
    """Whether the registers are fresh enough to text parents from, and why."""

    fresh: bool
    reason: str
    newest_mark: dt.datetime | None = None
    age_minutes: float | None = None

    def counts(self) -> dict[str, Any]:
        """The guard's figures for the job run's counts."""
        return {
            "fresh": self.fresh,
            "newest_mark": self.newest_mark.isoformat(sep=" ") if self.newest_mark else None,
            "age_minutes": None if self.age_minutes is None else round(self.age_minutes, 1),
        }


def _value(value: Any) -> Any:
    return None if value is None or pd.isna(value) else value


def check_freshness(warehouse: Warehouse, at: dt.datetime, max_age: dt.timedelta) -> Freshness:
    """Whether today's registers are fresh at ``at`` (naive UK local time, like the data)."""
    try:
        frame = warehouse.query(FRESHNESS_SQL, {"day": at.date(), "at": at})
    except NoWarehouse:
        return Freshness(False, "no data has been loaded yet, so there are no registers")
    first_start = _value(frame.iloc[0]["first_start"])
    newest = _value(frame.iloc[0]["newest_mark"])
    newest = pd.Timestamp(newest).to_pydatetime() if newest is not None else None
    if first_start is None:
        return Freshness(True, "no lessons today", newest)
    if not isinstance(first_start, dt.time):
        first_start = pd.Timestamp(str(first_start)).time()
    reference = dt.datetime.combine(at.date(), first_start)
    if newest is not None and newest > reference:
        reference = newest
    # After the last lesson ends no new registers are expected: the age stops growing.
    last_end = _value(frame.iloc[0]["last_end"])
    if last_end is not None and not isinstance(last_end, dt.time):
        last_end = pd.Timestamp(str(last_end)).time()
    until = at if last_end is None else min(at, dt.datetime.combine(at.date(), last_end))
    age = until - reference
    minutes = age.total_seconds() / 60
    if age <= max_age:
        return Freshness(True, f"registers are {max(minutes, 0):.0f} min old", newest, minutes)
    since = (
        f"the newest mark recorded today is from {newest:%H:%M}"
        if newest is not None
        else f"no mark has been recorded today since the first lesson began at {reference:%H:%M}"
    )
    return Freshness(
        False,
        f"registers are stale: {since}, {minutes:.0f} min ago, more than the "
        f"{max_age.total_seconds() / 60:.0f} min allowed (freshness_minutes); absence texts "
        "wait until newer marks are loaded",
        newest,
        minutes,
    )
