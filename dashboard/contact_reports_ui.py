"""Helpers for the "Contact reports" page: cached reads and Altair charts.

Medical notes are never cached here: they are read for each run, after the role check,
so restricted data does not sit in a cache shared by the whole server.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.common import _warehouse_for
from reports import contact_reports

TTL_SECONDS = 300
PERIODS = {3: "Last 3 months", 6: "Last 6 months", 12: "Last 12 months", 24: "Last 2 years"}


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def staff_emails(data_dir: str, generation: int) -> pd.DataFrame:
    """:func:`reports.contact_reports.staff_emails` for ``generation`` of ``data_dir``."""
    return contact_reports.staff_emails(_warehouse_for(data_dir))


def monthly_chart(by_month: pd.DataFrame) -> alt.Chart:
    """Messages per month, stacked by channel."""
    return (
        alt.Chart(by_month)
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month):O", title="Month"),
            y=alt.Y("messages:Q", title="Messages"),
            color=alt.Color("channel:N", title="Channel"),
            tooltip=[
                alt.Tooltip("yearmonth(month):O", title="Month"),
                alt.Tooltip("channel:N", title="Channel"),
                alt.Tooltip("messages:Q", title="Messages"),
                alt.Tooltip("cost_pounds:Q", title="SMS cost (£)", format=",.2f"),
            ],
        )
    )


def cost_chart(by_month: pd.DataFrame) -> alt.Chart:
    """What the texts cost each month, in pounds."""
    return (
        alt.Chart(by_month)
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month):O", title="Month"),
            y=alt.Y("cost_pounds:Q", title="SMS cost (£)"),
            tooltip=[
                alt.Tooltip("yearmonth(month):O", title="Month"),
                alt.Tooltip("texts:Q", title="Texts"),
                alt.Tooltip("segments:Q", title="Segments"),
                alt.Tooltip("cost_pounds:Q", title="Cost (£)", format=",.2f"),
            ],
        )
    )


def staff_chart(by_staff: pd.DataFrame, limit: int = 20) -> alt.Chart:
    """Horizontal bars: messages per member of staff (the top ``limit``), by channel."""
    top = list(by_staff.groupby("created_by")["messages"].sum().sort_values(ascending=False).index)[
        :limit
    ]
    data = by_staff[by_staff["created_by"].isin(top)]
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("created_by:N", sort=top, title="Sent by"),
            x=alt.X("messages:Q", title="Messages", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("channel:N", title="Channel"),
            tooltip=[
                alt.Tooltip("created_by:N", title="Sent by"),
                alt.Tooltip("channel:N", title="Channel"),
                alt.Tooltip("messages:Q", title="Messages"),
                alt.Tooltip("cost_pounds:Q", title="SMS cost (£)", format=",.2f"),
            ],
        )
    )


def held_chart(held: pd.DataFrame) -> alt.Chart:
    """Held and missing contact details as stacked horizontal bars."""
    long = held.melt(
        id_vars="detail", value_vars=["held", "missing"], var_name="state", value_name="students"
    )
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("detail:N", sort=list(held["detail"]), title=None),
            x=alt.X("students:Q", title="Current students", stack="zero"),
            color=alt.Color(
                "state:N",
                title=None,
                scale=alt.Scale(domain=["held", "missing"], range=["#4c78a8", "#e45756"]),
            ),
            tooltip=[
                alt.Tooltip("detail:N", title="Detail"),
                alt.Tooltip("state:N", title="Held or missing"),
                alt.Tooltip("students:Q", title="Students"),
            ],
        )
    )
