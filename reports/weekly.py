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
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
from sqlalchemy import Engine

from reports import attendance, behaviour
from reports import messages as message_reports
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

UK = ZoneInfo("Europe/London")
CHART_WIDTH = 520
CHART_HEIGHT = 260
PERCENT_AXIS = "Attendance % (dashed: persistent absence threshold)"


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


Builder = Callable[[Settings, Warehouse | None, Engine, dt.date, dt.datetime], ReportContent]


@dataclass(frozen=True)
class WeeklyReport:
    """A report that can be scheduled: its name, title, description and builder.

    ``needs_warehouse`` is False for reports built from the ops store alone.
    """

    name: str
    title: str
    description: str
    build: Builder
    needs_warehouse: bool = True


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


def _percent(value: Any) -> str:
    return "no possible sessions" if value is None or pd.isna(value) else f"{value:.1f}%"


def _chart(data: pd.DataFrame, title: str) -> alt.Chart:
    return alt.Chart(data).properties(width=CHART_WIDTH, height=CHART_HEIGHT, title=title)


# ---- attendance -------------------------------------------------------------------------

GROUP_HEADINGS = {
    "pupils": "Pupils",
    "possible": "Possible sessions",
    "attended": "Attended",
    "authorised": "Authorised absence",
    "unauthorised": "Unauthorised absence",
    "percent": "Attendance % (week)",
    "percent_ytd": "Attendance % (year to date)",
    "persistent_absentees": "Persistent absentees",
}


def _groups(
    warehouse: Warehouse, by: str, week: tuple[dt.date, dt.date], ytd: dt.date, settings: Settings
) -> pd.DataFrame:
    extra, threshold = settings["extra_attendance_codes"], settings["persistent_absence_percent"]
    this_week = attendance.attendance_by_group(warehouse, *week, by, extra_codes=extra)
    year = attendance.attendance_by_group(
        warehouse, ytd, week[1], by, threshold_percent=threshold, extra_codes=extra
    )
    year = year[[by, "percent", "persistent_absentees"]].rename(columns={"percent": "percent_ytd"})
    merged = this_week.merge(year, on=by, how="outer", sort=False)
    counts = ["pupils", "possible", "attended", "authorised", "unauthorised"]
    merged[counts + ["persistent_absentees"]] = (
        merged[counts + ["persistent_absentees"]].fillna(0).astype("int64")
    )
    merged[by] = merged[by].fillna("(none)")
    merged = merged.sort_values(by, key=lambda s: s.map(_natural_key), ignore_index=True)
    label = "Year group" if by == "year_group" else "Form"
    return merged.rename(columns={by: label, **GROUP_HEADINGS})


def _natural_key(value: Any) -> tuple[int, int, str]:
    """7 before 10, 7A before 10A, names without a number after them, "(none)" last."""
    text = str(value)
    if text == "(none)":
        return (2, 0, text)
    match = re.match(r"\s*(\d+)", text)
    return (0, int(match[1]), text) if match else (1, 0, text)


def build_attendance(
    settings: Settings,
    warehouse: Warehouse | None,
    engine: Engine,
    week_start: dt.date,
    at: dt.datetime,
) -> ReportContent:
    """Attendance by year group and form for the week, with persistent absentees.

    Persistent absence is a year-long measure, so pupils are listed when their
    attendance since 1 September (to the end of the week) is below the setting
    ``persistent_absence_percent``; the week's figure is shown beside it.
    """
    assert warehouse is not None
    week_end = week_start + dt.timedelta(days=6)
    ytd = attendance.academic_year_start(week_end)
    threshold = float(settings["persistent_absence_percent"])
    extra = settings["extra_attendance_codes"]
    week = (week_start, week_end)
    basis = attendance.attendance_basis(warehouse)
    overall = attendance.overall_attendance(warehouse, *week, extra_codes=extra)
    pupils_week = attendance.attendance_by_pupil(warehouse, *week, extra_codes=extra)
    pupils_year = attendance.attendance_by_pupil(warehouse, ytd, week_end, extra_codes=extra)
    by_year = _groups(warehouse, "year_group", week, ytd, settings)
    by_form = _groups(warehouse, "form", week, ytd, settings)

    year = pupils_year.rename(
        columns={"possible": "possible_ytd", "attended": "attended_ytd", "percent": "percent_ytd"}
    )[
        [
            "student_id",
            "forename",
            "surname",
            "year_group",
            "form",
            "possible_ytd",
            "attended_ytd",
            "percent_ytd",
        ]
    ]
    week_part = pupils_week[["student_id", "possible", "attended", "percent"]]
    pupils = year.merge(week_part, on="student_id", how="left")
    pupils["persistent"] = pupils["percent_ytd"] < threshold
    pupils["missed_ytd"] = pupils["possible_ytd"] - pupils["attended_ytd"]
    pupils = pupils.sort_values(["surname", "forename", "student_id"], ignore_index=True)
    absentees = pupils[pupils["persistent"]].sort_values(
        ["percent_ytd", "surname", "forename", "student_id"], ignore_index=True
    )
    since = long_date(ytd)
    absentee_table = pd.DataFrame(
        {
            "Pupil ID": absentees["student_id"],
            "Name": absentees["forename"].fillna("") + " " + absentees["surname"].fillna(""),
            "Year group": absentees["year_group"],
            "Form": absentees["form"],
            f"Attendance % since {since}": absentees["percent_ytd"],
            "Sessions missed": absentees["missed_ytd"].astype("int64"),
            "Attendance % (week)": absentees["percent"],
        }
    )
    csv = pd.DataFrame(
        {
            "Pupil ID": pupils["student_id"],
            "Forename": pupils["forename"],
            "Surname": pupils["surname"],
            "Year group": pupils["year_group"],
            "Form": pupils["form"],
            "Possible sessions (week)": pupils["possible"].fillna(0).astype("int64"),
            "Attended (week)": pupils["attended"].fillna(0).astype("int64"),
            "Attendance % (week)": pupils["percent"],
            "Possible sessions (year to date)": pupils["possible_ytd"].astype("int64"),
            "Attended (year to date)": pupils["attended_ytd"].astype("int64"),
            "Attendance % (year to date)": pupils["percent_ytd"],
            "Persistent absentee": pupils["persistent"].map({True: "yes", False: "no"}),
        }
    )
    unit = "session" if basis == "session" else "lesson"
    label = week_label(week_start)
    if overall["possible"]:
        intro = (
            f"Attendance for the week {label} was {_percent(overall['percent'])} of "
            f"{overall['possible']:,} possible {unit}s. {len(absentees):,} pupil(s) are "
            f"persistently absent: below {threshold:g}% since {since}."
        )
    else:
        intro = f"No attendance was recorded for the week {label}."
    notes = [
        "Measured on the statutory AM/PM registration sessions."
        if basis == "session"
        else "Measured on lesson registers: the data has no AM/PM registration sessions.",
        "Present and approved educational activities count as attended; codes for "
        "sessions that were not possible (such as X, Y1–Y7, #) are left out.",
    ]
    chart_data = by_year[["Year group", "Attendance % (week)"]].dropna()
    bars = (
        _chart(chart_data, f"Attendance by year group, {label}")
        .mark_bar()
        .encode(
            x=alt.X("Year group:N", sort=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("Attendance % (week):Q", scale=alt.Scale(domain=[0, 100]), title=PERCENT_AXIS),
            tooltip=["Year group:N", "Attendance % (week):Q"],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(color="#c0392b", strokeDash=[4, 4])
        .encode(y=alt.Y("threshold:Q", title=PERCENT_AXIS))
    )
    return ReportContent(
        name="attendance",
        title="Weekly attendance",
        intro=intro,
        week_start=week_start,
        tables=[
            ("By year group", by_year),
            ("By form", by_form),
            (f"Persistent absentees (below {threshold:g}% since {since})", absentee_table),
        ],
        chart=alt.layer(bars, rule),
        csv_name=f"attendance-{week_start.isoformat()}.csv",
        csv=csv,
        notes=notes,
    )


# ---- behaviour ---------------------------------------------------------------------------


def build_behaviour(
    settings: Settings,
    warehouse: Warehouse | None,
    engine: Engine,
    week_start: dt.date,
    at: dt.datetime,
) -> ReportContent:
    """Incidents by type and polarity, by year group, and the pupils with most negatives."""
    assert warehouse is not None
    week_end = week_start + dt.timedelta(days=6)
    summary = behaviour.behaviour_summary(warehouse, week_start, week_end)
    by_type = summary.by_type.rename(
        columns={
            "type": "Type",
            "polarity": "Polarity",
            "incidents": "Incidents",
            "pupils": "Pupils",
            "points": "Points",
        }
    )
    by_year = summary.by_year_group.assign(
        year_group=summary.by_year_group["year_group"].fillna("(none)")
    ).rename(
        columns={
            "year_group": "Year group",
            "positive": "Positive",
            "negative": "Negative",
            "positive_points": "Positive points",
            "negative_points": "Negative points",
        }
    )
    top = summary.top_pupils
    top_table = pd.DataFrame(
        {
            "Pupil ID": top["student_id"],
            "Name": top["forename"].fillna("") + " " + top["surname"].fillna(""),
            "Year group": top["year_group"],
            "Form": top["form"],
            "Negative incidents": top["negative"],
            "Negative points": top["negative_points"],
            "Positive incidents": top["positive"],
        }
    )
    label = week_label(week_start)
    if summary.incidents:
        intro = (
            f"{summary.incidents:,} behaviour incident(s) were recorded in the week {label}: "
            f"{summary.positive:,} positive and {summary.negative:,} negative, about "
            f"{summary.pupils:,} pupil(s)."
        )
    else:
        intro = f"No behaviour incidents were recorded in the week {label}."
    chart = (
        _chart(by_type, f"Behaviour incidents by type, {label}")
        .mark_bar()
        .encode(
            y=alt.Y("Type:N", sort="-x"),
            x=alt.X("sum(Incidents):Q", title="Incidents"),
            color=alt.Color(
                "Polarity:N",
                scale=alt.Scale(domain=["positive", "negative"], range=["#2e86c1", "#c0392b"]),
            ),
            tooltip=["Type:N", "Polarity:N", "Incidents:Q", "Points:Q"],
        )
    )
    return ReportContent(
        name="behaviour",
        title="Weekly behaviour summary",
        intro=intro,
        week_start=week_start,
        tables=[
            ("Incidents by type", by_type),
            ("By year group", by_year),
            ("Pupils with the most negative incidents", top_table),
        ],
        chart=chart,
        csv_name=f"behaviour-{week_start.isoformat()}.csv",
        csv=by_type,
        notes=["Year groups and forms are the pupils' current ones."],
    )


# ---- missing registers -------------------------------------------------------------------


def build_missing_registers(
    settings: Settings,
    warehouse: Warehouse | None,
    engine: Engine,
    week_start: dt.date,
    at: dt.datetime,
) -> ReportContent:
    """Registers of the week still not taken at ``at``, by teacher and by department."""
    from reports.registers import missing_by_department, missing_by_teacher, missing_registers

    assert warehouse is not None
    week_end = week_start + dt.timedelta(days=6)
    missing = missing_registers(warehouse, start=week_start, end=week_end, at=at)
    teachers = missing_by_teacher(missing)
    by_teacher = pd.DataFrame(
        {
            "Teacher": teachers["teacher"].replace("", "(no teacher)"),
            "Staff ID": teachers["staff_id"],
            "Department": teachers["department"],
            "Missing registers": teachers["missing"].astype("int64"),
        }
    )
    departments = missing_by_department(missing)
    by_department = pd.DataFrame(
        {
            "Department": departments["department"].replace("", "(registration)"),
            "Missing registers": departments["missing"].astype("int64"),
            "Teachers": departments["teachers"].astype("int64"),
        }
    )
    lessons = pd.DataFrame(
        {
            "Date": pd.to_datetime(missing["date"]).dt.strftime("%Y-%m-%d"),
            "Start": missing["start_time"].map(lambda t: f"{t:%H:%M}" if pd.notna(t) else ""),
            "Kind": missing["kind"],
            "Period": missing["period"],
            "Class": missing["class_id"],
            "Subject": missing["subject"],
            "Staff ID": missing["staff_id"],
            "Teacher": missing["teacher"],
            "Room": missing["room"],
            "Lesson ID": missing["lesson_id"],
        }
    )
    label = week_label(week_start)
    when = f"{at:%H:%M} on {long_date(at.date())}"
    if len(missing):
        intro = (
            f"{len(missing):,} register(s) of the week {label} had still not been taken at "
            f"{when}, for {len(teachers):,} teacher(s)."
        )
    else:
        intro = f"Every register of the week {label} had been taken by {when}."
    top = by_teacher.head(20)
    chart = (
        _chart(top, f"Missing registers by teacher, {label}")
        .mark_bar()
        .encode(
            y=alt.Y("Teacher:N", sort="-x"),
            x=alt.X("Missing registers:Q"),
            tooltip=["Teacher:N", "Department:N", "Missing registers:Q"],
        )
    )
    return ReportContent(
        name="missing_registers",
        title="Missing registers",
        intro=intro,
        week_start=week_start,
        tables=[
            ("By teacher", by_teacher),
            ("By department", by_department),
        ],
        chart=chart,
        csv_name=f"missing-registers-{week_start.isoformat()}.csv",
        csv=lessons,
        notes=["The CSV attachment lists every lesson and session with no register."],
    )


# ---- messages ------------------------------------------------------------------------------


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=UK).astimezone(dt.UTC)


def build_messages(
    settings: Settings,
    warehouse: Warehouse | None,
    engine: Engine,
    week_start: dt.date,
    at: dt.datetime,
) -> ReportContent:
    """Messages created in the week by channel and status, by sender, and what SMS cost.

    SMS cost counts texts that were sent or delivered (what a provider charges for).
    """
    activity = message_reports.message_activity(
        engine, since=_utc(week_start), until=_utc(week_start + dt.timedelta(days=7))
    )
    by_status = message_reports.messages_by(activity, "channel", "status").rename(
        columns={"channel": "Channel", "status": "Status", "messages": "Messages"}
    )
    by_sender = message_reports.messages_by(activity, "created_by").rename(
        columns={"created_by": "Sent by", "messages": "Messages"}
    )
    charged = activity[
        (activity["channel"] == "sms") & activity["status"].isin(message_reports.CHARGED_STATUSES)
    ]
    cost_pence = round(float(charged["cost_pence"].fillna(0).sum()), 2)
    segments = int(charged["segments"].fillna(0).sum())
    cost = pd.DataFrame(
        {
            "Texts sent": [len(charged)],
            "Segments": [segments],
            "Cost (£)": [round(cost_pence / 100, 2)],
        }
    )
    days = activity.assign(
        day=activity["created_at"].dt.tz_convert(UK).dt.strftime("%Y-%m-%d"),
        segments=activity["segments"].fillna(0).astype("int64"),
        cost_pence=activity["cost_pence"].fillna(0.0),
    )
    per_day = (
        days.groupby(["day", "channel", "status"], as_index=False)
        .agg(messages=("status", "size"), segments=("segments", "sum"), cost=("cost_pence", "sum"))
        .rename(
            columns={
                "day": "Date",
                "channel": "Channel",
                "status": "Status",
                "messages": "Messages",
                "segments": "Segments",
                "cost": "Cost (p)",
            }
        )
    )
    per_day["Cost (p)"] = per_day["Cost (p)"].round(2)
    label = week_label(week_start)
    counts = activity["channel"].value_counts()
    if len(activity):
        parts = [
            f"{int(counts.get(c, 0)):,} {w}"
            for c, w in (("sms", "text(s)"), ("email", "e-mail(s)"), ("letter", "letter(s)"))
        ]
        intro = (
            f"{len(activity):,} message(s) were created in the week {label}: "
            f"{', '.join(parts)}. Texts sent cost £{cost_pence / 100:,.2f} "
            f"({segments:,} segment(s))."
        )
    else:
        intro = f"No messages were created in the week {label}."
    chart_data = per_day.groupby(["Date", "Channel"], as_index=False)["Messages"].sum()
    chart = (
        _chart(chart_data, f"Messages per day, {label}")
        .mark_bar()
        .encode(
            x=alt.X("Date:O", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("Messages:Q"),
            color="Channel:N",
            tooltip=["Date:O", "Channel:N", "Messages:Q"],
        )
    )
    return ReportContent(
        name="messages",
        title="Messages sent and SMS cost",
        intro=intro,
        week_start=week_start,
        tables=[
            ("By channel and status", by_status),
            ("SMS cost", cost),
            ("By sender", by_sender),
        ],
        chart=chart,
        csv_name=f"messages-{week_start.isoformat()}.csv",
        csv=per_day,
        notes=["Days are UK dates; SMS cost counts texts sent or delivered."],
    )


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
