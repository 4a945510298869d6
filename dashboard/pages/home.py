"""Home: the notices for a member of staff (alerts, register reminders, data problems).

Urgent unread notices pop up once per session. Until sign-in links a dashboard user to a
``staff`` row, the page asks whose notices to show (a staff member, the data managers,
or everyone's).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import home_ui
from dashboard.common import (
    get_ops_engine,
    get_settings,
    get_warehouse,
    require_page,
    run_or_stop,
)
from senders.notices import mark_read, notices_for

VIEW = "home_view"
SHOWN = "home_popped_up"  # notice ids already popped up this session
OPEN = "home_popup_open"  # ids in the pop-up now open (shown again on each rerun)


def when(value: dt.datetime) -> str:
    """A notice time in UK local time, e.g. "Fri 20 Nov 10:35"."""
    return pd.Timestamp(value).tz_convert("Europe/London").strftime("%a %d %b %H:%M")


def close_pop_up() -> None:
    """Closed without marking read: the notices stay unread on the page, no pop-up again."""
    st.session_state.pop(OPEN, None)


@st.dialog("Urgent notice", width="large", on_dismiss=close_pop_up)
def pop_up(notices: list[dict[str, Any]], actor: str) -> None:
    """The urgent unread notices, with a button that marks them read."""
    for notice in notices:
        st.markdown(f"**{notice['title']}** · {when(notice['created_at'])}")
        st.text(notice["body"])
    if st.button("Mark as read", type="primary", key="popup_read"):
        mark_read(get_ops_engine(), [n["id"] for n in notices], actor)
        close_pop_up()
        st.rerun()


def show_notice(notice: dict[str, Any], actor: str) -> None:
    """One notice as a bordered card with a Mark as read button while unread."""
    unread = notice["read_at"] is None
    with st.container(border=True):
        icon = ":material/priority_high:" if notice["urgent"] else ":material/notifications:"
        badge = " · **new**" if unread else ""
        st.markdown(
            f"{icon} **{notice['title']}**{badge}  \n"
            f"<small>{when(notice['created_at'])} · {home_ui.SOURCES.get(notice['source'], notice['source'])}"
            f" · to {notice['to']}</small>",
            unsafe_allow_html=False,
        )
        st.text(notice["body"])
        if unread and st.button("Mark as read", key=f"read_{notice['id']}"):
            mark_read(get_ops_engine(), [notice["id"]], actor)
            st.rerun()


def main() -> None:
    """Choose whose notices, pop up urgent ones, list them newest first."""
    actor = require_page("home").email
    settings = get_settings()
    st.title(f"{settings['school_name']}")
    choices = run_or_stop("read the staff list", home_ui.viewer_choices, get_warehouse())
    labels = list(choices)
    view = st.selectbox(
        "Notices for",
        labels,
        key=VIEW,
        help="Until staff sign in, choose whose notices to show.",
    )
    staff_id, audiences, everyone = choices[view]
    unread_only = st.toggle("Unread only", value=False)
    engine = get_ops_engine()
    notices = notices_for(
        engine,
        staff_id=staff_id,
        audiences=audiences,
        everyone=everyone,
        unread_only=unread_only,
    )
    shown: set[int] = st.session_state.setdefault(SHOWN, set())
    is_open: list[int] = st.session_state.get(OPEN, [])
    urgent = [
        n
        for n in notices
        if n["urgent"] and n["read_at"] is None and (n["id"] not in shown or n["id"] in is_open)
    ]
    if urgent:
        shown.update(n["id"] for n in urgent)
        st.session_state[OPEN] = [n["id"] for n in urgent]
        pop_up(urgent, actor)
    unread = sum(1 for n in notices if n["read_at"] is None)
    left, right = st.columns(2)
    left.metric("Unread notices", unread)
    right.metric("Urgent and unread", sum(1 for n in notices if n["urgent"] and not n["read_at"]))
    if not notices:
        st.info("No notices. Alerts, register reminders and data problems appear here.")
    for notice in notices:
        show_notice(notice, actor)
    home_ui.scheduler_health(engine, settings)


main()
