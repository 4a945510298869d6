"""The weekly reports: what each one holds, built as tables, a chart and a CSV.

:data:`REPORTS` names every report (``attendance``, ``behaviour``,
``missing_registers``, ``messages``); ``REPORTS[name].build(settings, warehouse,
engine, week_start, at)`` returns a :class:`ReportContent` that
:mod:`senders.report_mail` turns into an e-mail and the dashboard previews.

**Which week.** A report covers one school week, Monday to Sunday (UK local dates).
Sent on a schedule, it covers the *previous complete week* before the send time
(:func:`previous_week`): a report sent on Monday 23 November 2026 at 07:00 covers
Monday 16 to Sunday 22 November, and so does one sent on Sunday 29 November at 23:00
(that week is not over yet). ``at`` is the moment the report is built (naive UK local
time): missing registers are those still missing then.

Tables carry readable column headings, as they are shown and e-mailed. Nothing here
writes: building a report reads the warehouse (and, for ``messages``, the ops store).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from reports.weekly_attendance import (
    GROUP_HEADINGS,  # noqa: F401  (importable from here, as before the split)
    PERCENT_AXIS,  # noqa: F401  (importable from here, as before the split)
    build_attendance,
)
from reports.weekly_behaviour import build_behaviour
from reports.weekly_content import (
    CHART_HEIGHT,  # noqa: F401  (importable from here, as before the split)
    CHART_WIDTH,  # noqa: F401  (importable from here, as before the split)
    ReportContent,
    long_date,
    previous_week,
    week_containing,
    week_label,
)
from reports.weekly_messages import (
    UK,  # noqa: F401  (importable from here, as before the split)
    build_messages,
)
from reports.weekly_registers import build_missing_registers
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

Builder = Callable[[Settings, Warehouse | None, Engine, dt.date, dt.datetime], ReportContent]


@dataclass(frozen=True)
class WeeklyReport:
    """A report that can be scheduled: its name, title, description and builder.

    ``needs_warehouse`` is False for reports built from the ops store alone;
    ``as_of`` is True for a report that depends on the moment it is built (``at``), not
    only on the week.
    """

    name: str
    title: str
    description: str
    build: Builder
    needs_warehouse: bool = True
    as_of: bool = False


REPORTS: dict[str, WeeklyReport] = {
    "attendance": WeeklyReport(
        "attendance",
        "Weekly attendance",
        "Attendance by year group and form for the week, with the persistent absentees "
        "(below persistent_absence_percent since 1 September).",
        build_attendance,
    ),
    "behaviour": WeeklyReport(
        "behaviour",
        "Weekly behaviour summary",
        "Behaviour incidents by type and polarity and by year group, and the pupils with "
        "the most negative incidents.",
        build_behaviour,
    ),
    "missing_registers": WeeklyReport(
        "missing_registers",
        "Missing registers",
        "Registers of the week not taken by the time the report is sent, by teacher and "
        "department, with every lesson in the CSV.",
        build_missing_registers,
        as_of=True,
    ),
    "messages": WeeklyReport(
        "messages",
        "Messages sent and SMS cost",
        "Messages created in the week by channel, status and sender, and what texts cost.",
        build_messages,
        needs_warehouse=False,
    ),
}


def build_report(
    name: str,
    settings: Settings,
    warehouse: Warehouse | None,
    engine: Engine,
    week_start: dt.date,
    at: dt.datetime,
) -> ReportContent:
    """``REPORTS[name].build(…)``; raises ValueError naming the reports for an unknown name."""
    report = REPORTS.get(name)
    if report is None:
        raise ValueError(f"There is no report called {name!r}; choose one of {', '.join(REPORTS)}.")
    if week_start.weekday() != 0:
        raise ValueError(f"A report week starts on a Monday; {week_start} is a {week_start:%A}.")
    return report.build(settings, warehouse, engine, week_start, at)


__all__ = [
    "REPORTS",
    "ReportContent",
    "WeeklyReport",
    "build_report",
    "long_date",
    "previous_week",
    "week_containing",
    "week_label",
]
