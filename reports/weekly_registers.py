"""The weekly missing registers report: registers not taken, by teacher and department."""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
from sqlalchemy import Engine

from reports.weekly_content import ReportContent, base_chart, long_date, week_label
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse


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
        base_chart(top, f"Missing registers by teacher, {label}")
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


__all__ = ["build_missing_registers"]
