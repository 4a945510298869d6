"""The weekly attendance report: by year group and form, with persistent absentees."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
from sqlalchemy import Engine

from reports import attendance
from reports.weekly_content import ReportContent, base_chart, long_date, week_label
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

PERCENT_AXIS = "Attendance % (dashed: persistent absence threshold)"


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


def _percent(value: Any) -> str:
    return "no possible sessions" if value is None or pd.isna(value) else f"{value:.1f}%"


def _round1(values: pd.Series) -> pd.Series:
    """``values`` rounded to one decimal half away from zero, as DuckDB's ``round`` does
    (so that a figure computed here matches :mod:`reports.attendance` to the digit)."""
    scaled = values.astype("float64") * 10
    low = np.floor(scaled)
    return pd.Series(np.where(scaled - low >= 0.5, low + 1, low), index=values.index) / 10


def _percent_of(attended: pd.Series, possible: pd.Series) -> pd.Series:
    """attended / possible × 100 to one decimal, NaN where nothing was possible."""
    ratio = (100.0 * attended.astype("float64")) / possible.astype("float64").where(possible != 0)
    return _round1(ratio)


def group_attendance(
    pupils: pd.DataFrame, by: str, threshold_percent: float | None = None
) -> pd.DataFrame:
    """:func:`reports.attendance.attendance_by_group` computed from the same range's
    :func:`reports.attendance.attendance_by_pupil` (one read of the marks, not two): the
    same columns and figures; a blank group is NaN. Rows are not in school order."""
    counts = ["possible", "attended", "authorised", "unauthorised"]
    key = pupils[by].where(pupils[by] != "")
    data = (
        pupils[counts]
        .astype("int64")
        .assign(
            pupils=(pupils["possible"] > 0).astype("int64"),
            below=(pupils["percent"] < threshold_percent).astype("int64")
            if threshold_percent is not None
            else 0,
        )
    )
    grouped = data.groupby(key.rename(by), dropna=False, sort=False).sum()
    out = grouped[["pupils", *counts]].reset_index()
    out["percent"] = _percent_of(out["attended"], out["possible"])
    if threshold_percent is not None:
        out["persistent_absentees"] = grouped["below"].to_numpy()
    return out


def overall(pupils: pd.DataFrame) -> dict[str, float | int | None]:
    """:func:`reports.attendance.overall_attendance` computed from the same range's
    :func:`reports.attendance.attendance_by_pupil`."""
    possible, attended = int(pupils["possible"].sum()), int(pupils["attended"].sum())
    percent = _percent_of(pd.Series([attended]), pd.Series([possible])).iloc[0]
    return {
        "pupils": int((pupils["possible"] > 0).sum()),
        "possible": possible,
        "attended": attended,
        "percent": None if pd.isna(percent) else float(percent),
    }


def _groups(
    pupils_week: pd.DataFrame, pupils_year: pd.DataFrame, by: str, settings: Settings
) -> pd.DataFrame:
    threshold = settings["persistent_absence_percent"]
    this_week = group_attendance(pupils_week, by)
    year = group_attendance(pupils_year, by, threshold_percent=float(threshold))
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
    # Two reads of the marks (the week, the year to date); every total comes from them.
    pupils_week = attendance.attendance_by_pupil(warehouse, *week, extra_codes=extra)
    pupils_year = attendance.attendance_by_pupil(warehouse, ytd, week_end, extra_codes=extra)
    totals = overall(pupils_week)
    by_year = _groups(pupils_week, pupils_year, "year_group", settings)
    by_form = _groups(pupils_week, pupils_year, "form", settings)

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
    if totals["possible"]:
        intro = (
            f"Attendance for the week {label} was {_percent(totals['percent'])} of "
            f"{totals['possible']:,} possible {unit}s. {len(absentees):,} pupil(s) are "
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
        base_chart(chart_data, f"Attendance by year group, {label}")
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


__all__ = ["GROUP_HEADINGS", "PERCENT_AXIS", "build_attendance"]
