"""The weekly behaviour report: incidents by type and year group, and the top pupils."""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
from sqlalchemy import Engine

from reports import behaviour
from reports.weekly_content import ReportContent, base_chart, week_label
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse


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
        base_chart(by_type, f"Behaviour incidents by type, {label}")
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


__all__ = ["build_behaviour"]
