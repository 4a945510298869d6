"""Behaviour: incidents with filters, a summary and charts; selected incidents can be
referred to a member of staff from the referral list, or their pupils' parents messaged
(Compose, prefilled with the incident's template) or sent a letter.
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import behaviour_ui as ui
from dashboard import charts
from dashboard.common import (
    _warehouse_for,
    current_generation,
    data_dir,
    download,
    get_ops_engine,
    get_settings,
    get_warehouse,
    no_data_state,
    require_action,
    require_page,
    run_or_stop,
    user_can,
)
from reports import behaviour_pages as behaviour
from reports.behaviour import BehaviourSummary
from reports.staff import staff_by_id
from schoolcomms.auth import SignedIn
from schoolcomms.roles import PermissionDenied
from senders.bank import list_templates
from senders.referrals import ReferralProblem, list_options, refer, referrals_by_incident

TABLE = "behaviour_incidents"
RESULT = "behaviour_result"
POLARITY = {"": "Negative and positive", "negative": "Negative", "positive": "Positive"}
COLOURS = alt.Scale(domain=["negative", "positive"], range=["#d62728", "#2ca02c"])
COLUMNS = {
    "occurred_at": st.column_config.DatetimeColumn("When", format="ddd DD/MM/YY HH:mm"),
    "name": "Pupil",
    "form": "Form",
    "year_group": "Year",
    "type": "Type",
    "polarity": "Polarity",
    "points": "Points",
    "outcome": "Outcome",
    "location": "Location",
    "recorded_by_name": "Recorded by",
    "comment": "Comment",
    "referred": "Referred to",
    "incident_id": "Incident",
    "student_id": "Student ID",
}


@st.cache_data(ttl=300, show_spinner=False)
def options_for(folder: str, generation: int) -> dict[str, list[str]]:
    """:func:`reports.behaviour_pages.filter_options` for ``generation`` of ``folder``."""
    return behaviour.filter_options(_warehouse_for(folder))


@st.cache_data(ttl=300, show_spinner="Reading the incidents…")
def incidents_for(folder: str, generation: int, query: behaviour.IncidentFilter) -> pd.DataFrame:
    """:func:`reports.behaviour_pages.incidents` for ``generation`` of ``folder``."""
    return behaviour.incidents(_warehouse_for(folder), query)


def filters(options: dict[str, list[str]], user: SignedIn) -> behaviour.IncidentFilter:
    today = ui.uk_today()
    a, b, c = st.columns([2, 1, 3])
    picked = a.date_input(
        "Between",
        value=(today - dt.timedelta(days=27), today),
        format="DD/MM/YYYY",
        key="behaviour_dates",
    )
    start, end = ui.date_range(picked, today)
    polarity = b.selectbox(
        "Polarity", list(POLARITY), format_func=POLARITY.get, key="behaviour_polarity"
    )
    types = c.multiselect("Type", options["types"], key="behaviour_types", placeholder="Every type")
    d, e, f = st.columns([1, 1, 2])
    years = d.multiselect(
        "Year group", options["year_groups"], key="behaviour_years", placeholder="All"
    )
    forms = e.multiselect("Form", options["forms"], key="behaviour_forms", placeholder="All")
    search = f.text_input("Pupil name or id contains", key="behaviour_search")
    mine = bool(user.staff_id) and st.checkbox(
        "Only incidents I recorded", key="behaviour_mine", value=False
    )
    return behaviour.IncidentFilter(
        start=min(start, end),
        end=max(start, end),
        types=tuple(types),
        polarity=polarity or None,
        year_groups=tuple(years),
        forms=tuple(forms),
        search=search.strip(),
        recorded_by=user.staff_id if mine else None,
    )


@st.cache_data(ttl=300, show_spinner=False)
def summary_for(
    folder: str, generation: int, query: behaviour.IncidentFilter
) -> tuple[BehaviourSummary, pd.DataFrame]:
    """The summary and the daily counts of :func:`incidents_for` (the same arguments)."""
    frame = incidents_for(folder, generation, query)
    return behaviour.summarise(frame, query), behaviour.daily_counts(frame)


def daily_chart(daily: pd.DataFrame) -> alt.Chart:
    """Bars: incidents by day, stacked by polarity."""
    return (
        alt.Chart(daily)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title="Day", axis=alt.Axis(format="%d %b")),
            y=alt.Y("incidents:Q", title="Incidents", stack=True),
            color=alt.Color("polarity:N", scale=COLOURS, title="Polarity"),
            tooltip=["day:T", "polarity:N", "incidents:Q"],
        )
        .properties(title="Incidents by day", height=260)
    )


def type_chart(top: pd.DataFrame) -> alt.Chart:
    """Bars: incidents by type (the most frequent first)."""
    return (
        alt.Chart(top)
        .mark_bar()
        .encode(
            y=alt.Y("type:N", sort=list(top["type"]), title=None),
            x=alt.X("incidents:Q", title="Incidents"),
            color=alt.Color("polarity:N", scale=COLOURS, legend=None),
            tooltip=["type:N", "polarity:N", "incidents:Q", "pupils:Q", "points:Q"],
        )
        .properties(title="Incidents by type", height=260)
    )


def summary(folder: str, generation: int, query: behaviour.IncidentFilter) -> None:
    """The totals and the two charts of the incidents ``query`` lists."""
    totals, daily = run_or_stop("summarise the incidents", summary_for, folder, generation, query)
    cols = st.columns(5)
    cols[0].metric("Incidents", f"{totals.incidents:,}")
    cols[1].metric("Negative", f"{totals.negative:,}")
    cols[2].metric("Positive", f"{totals.positive:,}")
    cols[3].metric("Pupils", f"{totals.pupils:,}")
    cols[4].metric("Points", f"{totals.points:,}")
    left, right = st.columns(2)
    charts.altair(daily_chart, daily, container=left, width="stretch")
    charts.altair(type_chart, totals.by_type.head(15), container=right, width="stretch")


def with_referrals(frame: pd.DataFrame) -> pd.DataFrame:
    """The incidents as shown: who each was referred to (and the referral's state)."""
    engine = get_ops_engine()
    referrals = run_or_stop(
        "read the referrals", referrals_by_incident, engine, frame["incident_id"]
    )
    shown = frame.copy()
    shown["referred"] = ""
    if referrals.empty:
        return shown
    names = staff_by_id(get_warehouse(), referrals["to_staff_id"])
    referrals["text"] = [
        f"{names.get(r.to_staff_id, {}).get('name') or r.to_staff_id} ({r.status})"
        for r in referrals.itertuples()
    ]
    texts = referrals.groupby("incident_id")["text"].agg(", ".join)
    shown["referred"] = shown["incident_id"].map(texts).fillna("")
    return shown


def refer_section(selected: pd.DataFrame, user: SignedIn) -> None:
    if not user_can("referral.create"):
        st.info("Your account cannot make referrals.")
        return
    engine = get_ops_engine()
    options = run_or_stop("read the referral list", list_options, engine, enabled_only=True)
    if not options:
        st.info(
            "The referral list is empty. An administrator adds who behaviour can be "
            "referred to (for example 'Head of Year 9') on the Settings page."
        )
        return
    by_id = {o["id"]: o for o in options}
    option_id = st.selectbox(
        "Refer to", list(by_id), format_func=lambda i: by_id[i]["label"], key="behaviour_refer_to"
    )
    reason = st.text_area("Reason (optional)", key="behaviour_refer_reason", height=80)
    if not st.button(
        f"Refer {len(selected)} incident(s)",
        key="behaviour_refer",
        icon=":material/forward_to_inbox:",
        help="The member of staff gets a notice on their homepage (and an e-mail); each "
        "incident is referred to the same person once.",
    ):
        return
    try:
        require_action("referral.create")
    except PermissionDenied as exc:
        st.error(str(exc))
        return

    def refer_each() -> tuple[list, list, list[str]]:
        made, earlier, problems = [], [], []
        for row in selected.to_dict("records"):
            try:
                done = refer(
                    engine,
                    get_settings(),
                    get_warehouse(),
                    student_id=row["student_id"],
                    incident_id=row["incident_id"],
                    option_id=option_id,
                    reason=reason,
                    actor=user.email,
                )
            except ReferralProblem as exc:
                problems.append(f"{row['incident_id']}: {exc}")
                continue
            (made if done.created else earlier).append(done)
        return made, earlier, problems

    made, earlier, problems = run_or_stop("make the referrals", refer_each)
    messages: list[tuple[str, str]] = []
    if made:
        messages.append(("success", f"Referred {len(made)} incident(s) to {made[0].to_name}."))
    if earlier:
        who = earlier[0].to_name
        messages.append(("info", f"{len(earlier)} incident(s) had already been referred to {who}."))
    messages += [("error", f"Not referred: {problem}") for problem in problems]
    # Show the outcome on a fresh run, so the table's "Referred to" column is current.
    st.session_state[RESULT] = messages
    st.rerun()


def show_result() -> None:
    """The outcome of the last referral, shown once."""
    for kind, message in st.session_state.pop(RESULT, None) or []:
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)


def message_section(selected: pd.DataFrame, channels: list[str], key: str, action: str) -> None:
    """Pick the channel and follow-up, then hand the pupils to Compose."""
    engine = get_ops_engine()
    channel = channels[0]
    if len(channels) > 1:
        channel = st.radio(
            "Send by",
            channels,
            format_func=ui.CHANNEL_LABELS.get,
            horizontal=True,
            key=f"{key}_channel",
        )
    templates = run_or_stop("read the message bank", list_templates, engine)
    follow_ups = ui.behaviour_follow_ups(selected, templates, channel)
    ui.handoff(follow_ups, channel, templates, source="Behaviour", key=key, action=action)


def follow_up(selected: pd.DataFrame, user: SignedIn) -> None:
    st.subheader(f"{len(selected)} incident(s) selected")
    refer_tab, message_tab, letter_tab = st.tabs(["Refer to…", "Message parents", "Letters"])
    with refer_tab:
        refer_section(selected, user)
    with message_tab:
        if user_can("send.single"):
            message_section(selected, ["sms", "email"], "behaviour_message", "send")
        else:
            st.info("Your account cannot message parents.")
    with letter_tab:
        if user_can("letters.print"):
            message_section(selected, ["letter"], "behaviour_letter", "letters.print")
        else:
            st.info("Your account cannot send letters.")


def main() -> None:
    """The page."""
    user = require_page("behaviour")
    st.title("Behaviour")
    show_result()
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    if generation is None:
        no_data_state()
        return
    ui.ensure_templates(get_ops_engine())
    options = run_or_stop("read the filter choices", options_for, data_dir(), generation)
    query = filters(options, user)
    frame = run_or_stop("read the incidents", incidents_for, data_dir(), generation, query)
    if frame.empty:
        st.info(
            "No incidents match. Widen the dates or clear some filters; incidents come "
            "from the behaviour extract (load it on the Data loads page)."
        )
        return
    summary(data_dir(), generation, query)
    shown = with_referrals(frame)
    st.subheader("Incidents")
    st.caption("Select incidents to refer them, message the pupils' parents or send letters.")
    event = st.dataframe(
        shown[list(COLUMNS)],
        key=TABLE,
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        height=360,
        column_config=COLUMNS,
    )
    download(shown[list(COLUMNS)], f"behaviour-{query.start}-to-{query.end}.csv", "behaviour_csv")
    positions = ui.selected_positions(event, len(shown))
    if positions:
        follow_up(frame.iloc[positions], user)


main()
