"""What a weekly report is made of, and the weeks it covers: shared by every builder.

A builder (:mod:`reports.weekly_attendance` and its siblings) returns a
:class:`ReportContent`; :mod:`reports.weekly` names the builders in ``REPORTS``. This
module sits below both, so builders never import the registry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import altair as alt
import pandas as pd

CHART_WIDTH = 520
CHART_HEIGHT = 260


@dataclass(frozen=True)
class ReportContent:
    """A built report: what the e-mail, the CLI and the dashboard show."""

    name: str
    title: str
    intro: str
    week_start: dt.date
    tables: list[tuple[str, pd.DataFrame]]
    chart: alt.TopLevelMixin | None
    csv_name: str
    csv: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def week_end(self) -> dt.date:
        """The Sunday that ends the report's week."""
        return self.week_start + dt.timedelta(days=6)


# ---- weeks ----------------------------------------------------------------------------


def week_containing(day: dt.date) -> dt.date:
    """The Monday of the Monday–Sunday week holding ``day``."""
    return day - dt.timedelta(days=day.weekday())


def previous_week(at: dt.datetime | dt.date) -> dt.date:
    """The Monday of the last complete Monday–Sunday week before ``at`` (UK local)."""
    day = at.date() if isinstance(at, dt.datetime) else at
    return week_containing(day) - dt.timedelta(days=7)


def long_date(day: dt.date) -> str:
    """``7 September 2026``."""
    return f"{day.day} {day:%B %Y}"


def week_label(week_start: dt.date) -> str:
    """``16–22 November 2026`` (or ``30 November – 6 December 2026`` across months)."""
    end = week_start + dt.timedelta(days=6)
    if week_start.year != end.year:
        return f"{long_date(week_start)} – {long_date(end)}"
    if week_start.month != end.month:
        return f"{week_start.day} {week_start:%B} – {long_date(end)}"
    return f"{week_start.day}–{long_date(end)}"


def base_chart(data: pd.DataFrame, title: str) -> alt.Chart:
    """An Altair chart of ``data`` at the size every weekly report uses."""
    return alt.Chart(data).properties(width=CHART_WIDTH, height=CHART_HEIGHT, title=title)


__all__ = [
    "CHART_HEIGHT",
    "CHART_WIDTH",
    "ReportContent",
    "base_chart",
    "long_date",
    "previous_week",
    "week_containing",
    "week_label",
]
