"""Detentions: upcoming (scheduled) detentions and missed ones, with filters.

Selected detentions' parents are notified by SMS, e-mail or letter through Compose,
prefilled with the message bank's "Detention: scheduled" (or "Detention: missed")
template and the session's date, times and place.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import behaviour_ui as ui
from dashboard.common import (
    _warehouse_for,
    current_generation,
    data_dir,
    download,
    get_ops_engine,
    get_warehouse,
    no_data_state,
    require_page,
    run_or_stop,
    user_can,
)
from reports import detentions as reports
from senders.bank import list_templates

COLUMNS = {
    "date": st.column_config.DateColumn("Date", format="ddd DD/MM/YY"),
    "start_time": "Start",
    "end_time": "End",
    "location": "Location",
    "name": "Pupil",
    "form": "Form",
    "year_group": "Year",
    "reason": "Reason",
    "incident_type": "Incident",
    "status": "Status",
    "student_id": "Student ID",
    "detention_id": "Detention",
}
SESSION_COLUMNS = {
    "date": st.column_config.DateColumn("Date", format="ddd DD/MM/YY"),
    "start_time": "Start",
    "end_time": "End",
    "location": "Location",
    "detentions": "Detentions",
    "pupils": "Pupils",
}


@st.cache_data(ttl=300, show_spinner=False)
def options_for(folder: str, generation: int) -> dict[str, list[str]]:
    """:func:`reports.detentions.filter_options` for ``generation`` of ``folder``."""
    return reports.filter_options(_warehouse_for(folder))


@st.cache_data(ttl=300, show_spinner="Reading the detentions…")
def detentions_for(folder: str, generation: int, **query: Any) -> pd.DataFrame:
    """:func:`reports.detentions.detentions` for ``generation`` of ``folder``."""
    return reports.detentions(_warehouse_for(folder), **query)


def filters(options: dict[str, list[str]]) -> dict[str, Any]:
    a, b, c, d = st.columns(4)
    return {
        "year_groups": tuple(
            a.multiselect("Year group", options["year_groups"], key="det_years", placeholder="All")
        ),
        "forms": tuple(b.multiselect("Form", options["forms"], key="det_forms", placeholder="All")),
        "locations": tuple(
            c.multiselect("Location", options["locations"], key="det_places", placeholder="All")
        ),
        "search": d.text_input("Pupil name or id contains", key="det_search").strip(),
    }


def chart(frame: pd.DataFrame, title: str) -> alt.Chart:
    daily = reports.daily_counts(frame)
    return (
        alt.Chart(daily)
        .mark_bar()
        .encode(
            x=alt.X("date:T", title="Date", axis=alt.Axis(format="%a %d %b")),
            y=alt.Y("detentions:Q", title="Detentions", axis=alt.Axis(tickMinStep=1)),
            tooltip=[alt.Tooltip("date:T", format="%a %d %b"), "detentions:Q"],
        )
        .properties(title=title, height=220)
    )


def notify(selected: pd.DataFrame, kind: str, key: str) -> None:
    """Hand the selected detentions' pupils to Compose, one session at a time."""
    verb = "Notify parents" if kind == "scheduled" else "Message parents"
    st.subheader(f"{verb}: {len(selected)} detention(s) selected")
    if not user_can("send.single"):
        st.info("Your account cannot message parents.")
        return
    channels = ["sms", "email", *(["letter"] if user_can("letters.print") else [])]
    channel = st.radio(
        "Send by", channels, format_func=ui.CHANNEL_LABELS.get, horizontal=True, key=f"{key}_ch"
    )
    templates = run_or_stop("read the message bank", list_templates, get_ops_engine())
    ui.handoff(
        ui.detention_follow_ups(selected, kind),
        channel,
        templates,
        source="Detentions",
        key=key,
        action="letters.print" if channel == "letter" else "send",
    )


def listing(frame: pd.DataFrame, kind: str, file_name: str) -> None:
    key = f"det_{kind}"
    if frame.empty:
        what = "scheduled" if kind == "scheduled" else "missed"
        st.info(
            f"No {what} detentions match. Change the dates or clear some filters; detentions "
            "come from the detentions extract (load it on the Data loads page)."
        )
        return
    a, b, c = st.columns(3)
    a.metric("Detentions", f"{len(frame):,}")
    b.metric("Pupils", f"{frame['student_id'].nunique():,}")
    sessions = reports.sessions(frame)
    c.metric("Sessions", f"{len(sessions):,}")
    left, right = st.columns(2)
    left.altair_chart(chart(frame, "Detentions by day"), width="stretch")
    right.dataframe(
        sessions, hide_index=True, width="stretch", height=220, column_config=SESSION_COLUMNS
    )
    with right:
        download(sessions, f"sessions-{file_name}", f"{key}_sessions_csv")
    st.caption("Select detentions to message their pupils' parents.")
    event = st.dataframe(
        frame[list(COLUMNS)],
        key=key,
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        height=360,
        column_config=COLUMNS,
    )
    download(frame[list(COLUMNS)], file_name, f"{key}_csv")
    positions = ui.selected_positions(event, len(frame))
    if positions:
        notify(frame.iloc[positions], kind, f"{key}_msg")


def main() -> None:
    """The page."""
    require_page("detentions")
    st.title("Detentions")
    generation = current_generation(get_warehouse())
    if generation is None:
        no_data_state()
        return
    ui.ensure_templates(get_ops_engine())
    today = ui.uk_today()
    options = run_or_stop("read the filter choices", options_for, data_dir(), generation)
    query = filters(options)
    upcoming_tab, missed_tab = st.tabs(["Upcoming", "Missed"])
    with upcoming_tab:
        picked = st.date_input(
            "Between",
            value=(today, today + dt.timedelta(days=14)),
            format="DD/MM/YYYY",
            key="det_upcoming_dates",
        )
        start, end = sorted(ui.date_range(picked, today))
        frame = run_or_stop(
            "read the detentions",
            detentions_for,
            data_dir(),
            generation,
            start=start,
            end=end,
            statuses=("scheduled",),
            **query,
        )
        listing(frame, "scheduled", f"detentions-{start}-to-{end}.csv")
    with missed_tab:
        picked = st.date_input(
            "Between",
            value=(today - dt.timedelta(days=28), today),
            format="DD/MM/YYYY",
            key="det_missed_dates",
        )
        start, end = sorted(ui.date_range(picked, today))
        frame = run_or_stop(
            "read the missed detentions",
            detentions_for,
            data_dir(),
            generation,
            start=start,
            end=end,
            statuses=("missed",),
            **query,
        )
        listing(frame, "missed", f"missed-detentions-{start}-to-{end}.csv")


main()
