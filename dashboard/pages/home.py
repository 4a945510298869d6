"""Home: the signed-in member of staff's notices, assistance requests, referrals, registers, calendar.

Urgent unread notices pop up once per session. Anyone can ask the office for help;
people who acknowledge requests see open ones live (polled every few seconds) until
someone acknowledges them. Notices are the user's own and their roles' (accounts that
may read all notices can switch to everyone's); referrals and missing registers are the
linked staff member's; calendars are the account's own ICS feeds and files.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from dashboard import home_ui
from dashboard.common import (
    current_generation,
    data_dir,
    download,
    get_ops_engine,
    get_settings,
    get_warehouse,
    require_action,
    require_page,
    run_or_stop,
    signed_in_user,
    user_can,
)
from dashboard.registers_ui import local_now
from schoolcomms.auth import SignedIn
from schoolcomms.ops.models import utcnow
from schoolcomms.roles import PermissionDenied
from senders import assistance, calendars, referrals
from senders.notices import mark_read, notices_for

VIEW = "home_view"
SHOWN = "home_popped_up"  # notice ids already popped up this session
OPEN = "home_popup_open"  # ids in the pop-up now open (shown again on each rerun)
FLASH = "home_flash"  # (kind, text) to show once after a rerun
LIVE_SECONDS = 5
OWN_REQUESTS_MINUTES = 30  # how long the asker sees that their request was acknowledged


def flash(kind: str, text: str) -> None:
    """Show ``text`` (success, info, warning or error) at the top of the next run."""
    st.session_state[FLASH] = (kind, text)


def show_flash() -> None:
    kind, text = st.session_state.pop(FLASH, (None, ""))
    if kind:
        getattr(st, kind)(text)


def close_pop_up() -> None:
    """Closed without marking read: the notices stay unread on the page, no pop-up again."""
    st.session_state.pop(OPEN, None)


@st.dialog("Urgent notice", width="large", on_dismiss=close_pop_up)
def pop_up(notices: list[dict[str, Any]], actor: str) -> None:
    """The urgent unread notices, with a button that marks them read."""
    for notice in notices:
        st.markdown(f"**{notice['title']}** · {home_ui.when(notice['created_at'])}")
        st.text(notice["body"])
    if st.button("Mark as read", type="primary", key="popup_read"):
        mark_read(get_ops_engine(), [n["id"] for n in notices], actor)
        close_pop_up()
        st.rerun()


# ---- assistance ------------------------------------------------------------------------


def acknowledge_request(request: dict[str, Any]) -> None:
    """The Acknowledge button's action, checked on the server when it runs."""
    try:
        actor = require_action("assistance.acknowledge").email
        done = assistance.acknowledge(get_ops_engine(), int(request["id"]), actor)
    except (PermissionDenied, LookupError) as exc:
        flash("error", str(exc))
    else:
        if done:
            flash("success", f"Acknowledged: help for {request['location']} is on the way.")
        else:
            flash(
                "info", f"Someone else already acknowledged the request from {request['location']}."
            )
    st.rerun()


@st.fragment(run_every=LIVE_SECONDS)
def live_requests(can_acknowledge: bool) -> None:
    """Open requests (for people who acknowledge them) and the user's own, polled live."""
    user = signed_in_user()
    engine = get_ops_engine()
    now = utcnow()
    if can_acknowledge:
        for request in assistance.open_requests(engine):
            with st.container(border=True):
                place, who = home_ui.plain(request["location"]), home_ui.plain(request["requester"])
                text = (
                    f"**Assistance needed: {place}** — {who}, "
                    f"{home_ui.minutes_ago(request['created_at'], now)} "
                    f"({home_ui.when(request['created_at'])})"
                )
                if request["message"]:
                    text += f"  \n{home_ui.plain(request['message'])}"
                st.error(text, icon=":material/emergency:")
                if st.button(
                    "Acknowledge",
                    key=f"ack_{request['id']}",
                    type="primary",
                    icon=":material/check:",
                ):
                    acknowledge_request(request)
    since = now - dt.timedelta(minutes=OWN_REQUESTS_MINUTES)
    for request in assistance.requests_by(engine, user.email, since=since):
        asked = home_ui.when(request["created_at"])
        if request["acknowledged_at"] is None:
            st.warning(
                f"Your request for help at {request['location']} ({asked}) has gone to the "
                "office; waiting for someone to acknowledge it.",
                icon=":material/hourglass_top:",
            )
        else:
            st.success(
                f"Your request for help at {request['location']} ({asked}) was acknowledged "
                f"by {request['acknowledged_by']} at {home_ui.when(request['acknowledged_at'])}.",
                icon=":material/check_circle:",
            )


def request_form() -> None:
    """The "Request assistance" pop-over: where, an optional message, send."""
    with st.popover("Request assistance", icon=":material/sos:", type="primary", width="stretch"):
        with st.form("assist_form", clear_on_submit=True, border=False):
            location = st.text_input("Where are you?", key="assist_location", placeholder="Room M1")
            message = st.text_area("What is needed? (optional)", key="assist_message", height=80)
            sent = st.form_submit_button("Send to the office", type="primary", key="assist_send")
        st.caption("The office sees it at once, on screen, until someone acknowledges it.")
    if not sent:
        return
    try:
        actor = require_action("assistance.request")
        assistance.request_assistance(
            get_ops_engine(),
            get_settings(),
            location=location,
            message=message,
            actor=actor.email,
            staff_id=actor.staff_id,
            requester_name=actor.name,
        )
    except (PermissionDenied, assistance.AssistanceProblem) as exc:
        st.error(str(exc))
        return
    flash("success", f"Your request for help at {location.strip()} has gone to the office.")
    st.rerun()


# ---- notices ---------------------------------------------------------------------------


def show_notice(notice: dict[str, Any], user: SignedIn) -> None:
    """One notice as a bordered card with a Mark as read button while unread."""
    unread = notice["read_at"] is None
    with st.container(border=True):
        icon = ":material/priority_high:" if notice["urgent"] else ":material/notifications:"
        badge = " · **new**" if unread else ""
        st.markdown(f"{icon} **{notice['title']}**{badge}")
        st.caption(home_ui.notice_line(notice, user.staff_id))
        st.text(notice["body"])
        if unread and st.button("Mark as read", key=f"read_{notice['id']}"):
            mark_read(get_ops_engine(), [notice["id"]], user.email)
            st.rerun()


def pop_up_urgent(notices: list[dict[str, Any]], actor: str) -> None:
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


def notices_section(user: SignedIn, engine: Any) -> list[dict[str, Any]]:
    """The view and unread switches, the notices (urgent ones pop up); returns them."""
    view = home_ui.MINE
    left, right = st.columns([3, 1], vertical_alignment="center")
    if user_can("notices.read_all"):
        with left:
            picked = st.radio(
                "Show",
                list(home_ui.VIEWS),
                format_func=home_ui.VIEWS.get,
                key=VIEW,
                horizontal=True,
                label_visibility="collapsed",
            )
        view = picked or home_ui.MINE
    unread_only = right.toggle("Unread only", value=False, key="home_unread_only")
    scope = home_ui.notice_scope(signed_in_user(), view)
    notices = run_or_stop(
        "read your notices", notices_for, engine, unread_only=unread_only, **scope
    )
    pop_up_urgent(notices, user.email)
    if not notices:
        st.info(
            "No unread notices."
            if unread_only
            else "No notices yet. Alerts about your pupils, register reminders, referrals "
            "and assistance requests appear here."
        )
        if not user.staff_id:
            st.caption(
                "Your account is not linked to a staff record, so only notices to your "
                "roles reach you; an administrator can link it on the Users page."
            )
    for notice in notices:
        show_notice(notice, user)
    return notices


# ---- referrals, registers, calendar ------------------------------------------------------


def referrals_tab(user: SignedIn, frame: Any) -> None:
    if frame is None:
        st.info("Your account is not linked to a staff record, so no referrals reach you.")
        return
    if frame.empty:
        st.success("No referrals waiting for you.", icon=":material/check_circle:")
        return
    for row in frame.to_dict("records"):
        pupil = home_ui.text_of(row.get("student_name")) or row["student_id"]
        form = home_ui.text_of(row.get("form"))
        form = f", {home_ui.plain(form)}" if form else ""
        incident = home_ui.text_of(row.get("incident_type"))
        incident = f" · {home_ui.plain(incident)}" if incident else ""
        with st.container(border=True):
            st.markdown(
                f"**{home_ui.plain(pupil)}**{form}{incident} · referred by "
                f"{home_ui.plain(row['created_by'])}, "
                f"{home_ui.when(row['created_at'])}"
            )
            if row["reason"]:
                st.text(row["reason"])
            note = st.text_area(
                "What was done",
                key=f"ref_note_{row['id']}",
                height=68,
                placeholder="e.g. Spoke to the pupil and phoned home; detention set.",
            )
            if st.button("Actioned", key=f"ref_done_{row['id']}", icon=":material/task_alt:"):
                try:
                    actor = require_action("referral.action")
                    referrals.action_referral(
                        get_ops_engine(),
                        int(row["id"]),
                        outcome_note=note,
                        actor=actor.email,
                        staff_id=actor.staff_id,
                        is_admin=referrals.can_action_any(actor.roles),
                    )
                except (PermissionDenied, referrals.ReferralProblem) as exc:
                    st.error(str(exc))
                else:
                    flash("success", f"Referral of {pupil} marked actioned.")
                    st.rerun()


def registers_tab(user: SignedIn, frame: Any, now: dt.datetime) -> None:
    if frame is None:
        st.info(
            "Your account is not linked to a staff record, so your registers cannot be "
            "shown; an administrator can link it on the Users page."
        )
        return
    if isinstance(frame, str):
        st.info(frame)
        return
    if frame.empty:
        st.success(
            f"All your registers are taken (as of {now:%H:%M}).", icon=":material/check_circle:"
        )
        return
    st.caption(f"Your lessons today that have started with no register taken, as of {now:%H:%M}.")
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key="home_registers",
        column_config=home_ui.REGISTER_COLUMNS,
    )
    download(frame, f"my-missing-registers-{now:%Y-%m-%d}.csv", "home_registers_csv")


def calendar_sources_form(user: SignedIn, sources: list[dict[str, Any]]) -> None:
    """Add a feed address or an .ics file; remove a calendar."""
    with st.expander("Your calendars", expanded=not sources, icon=":material/settings:"):
        for source in sources:
            left, right = st.columns([4, 1])
            kind = "feed" if source["kind"] == "url" else "file"
            left.markdown(f"**{source['name']}** · {kind}")
            if right.button("Remove", key=f"cal_remove_{source['id']}"):
                calendar_action(
                    calendars.remove_calendar,
                    int(source["id"]),
                    user_email=user.email,
                    done=f"Removed {source['name']}.",
                )
        name = st.text_input("Name (optional)", key="cal_name", placeholder="Staff calendar")
        url = st.text_input(
            "Calendar address (ICS)",
            key="cal_url",
            placeholder="https://calendar.google.com/calendar/ical/…/basic.ics",
            help="Google Calendar: Settings → your calendar → “Secret address in iCal "
            "format”. Outlook: Settings → Calendar → Shared calendars → Publish → ICS.",
        )
        if st.button("Add address", key="cal_add_url"):
            calendar_action(
                calendars.add_calendar_url,
                user_email=user.email,
                url=url,
                name=name,
                done="Calendar added.",
            )
        upload = st.file_uploader("…or an .ics file", type=["ics"], key="cal_file")
        if upload is not None and st.button("Add file", key="cal_add_file"):
            calendar_action(
                calendars.add_calendar_file,
                user_email=user.email,
                content=upload.getvalue(),
                name=name,
                done="Calendar added.",
            )


def calendar_action(fn: Any, *args: Any, done: str, **kwargs: Any) -> None:
    try:
        actor = require_action("calendar.own").email
        fn(get_ops_engine(), *args, actor=actor, **kwargs)
    except (PermissionDenied, calendars.CalendarProblem) as exc:
        st.error(str(exc))
        return
    flash("success", done)
    st.rerun()


def calendar_tab(
    user: SignedIn, sources: list[dict[str, Any]], events: Any, today: dt.date
) -> None:
    table, problems = events
    for name, problem in problems:
        st.warning(f"{name}: {problem}", icon=":material/event_busy:")
    if not sources:
        st.info("Add your calendar (an ICS address or an .ics file) to see your week here.")
    elif table.empty and not problems:
        st.info("Nothing in your calendars today or in the next 7 days.")
    elif not table.empty:
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            key="home_events",
            column_config=home_ui.EVENT_COLUMNS,
        )
        download(table, f"my-calendar-{today:%Y-%m-%d}.csv", "home_events_csv")
    calendar_sources_form(user, sources)


# ---- the page --------------------------------------------------------------------------


def main() -> None:
    """Assistance, then counts, then notices, referrals, registers and calendar in tabs."""
    user = require_page("home")
    settings = get_settings()
    engine = get_ops_engine()
    head, button = st.columns([3, 1], vertical_alignment="bottom")
    head.title(str(settings["school_name"]))
    head.caption(f"Signed in as {user.name}")
    if user_can("assistance.request"):
        with button:
            request_form()
    show_flash()
    can_acknowledge = user_can("assistance.acknowledge")
    # Poll only where something can change: for the office, or while my own request is
    # recent; everyone else's Home stays still (hundreds of open pages, one database).
    since = utcnow() - dt.timedelta(minutes=OWN_REQUESTS_MINUTES)
    if can_acknowledge or assistance.requests_by(engine, user.email, since=since, limit=1):
        live_requests(can_acknowledge)

    counts = st.columns(5)
    tabs = st.tabs(["Notices", "My referrals", "My registers", "My calendar"])
    with tabs[0]:
        notices = notices_section(user, engine)

    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    now = local_now()
    registers: Any = None
    if user.staff_id and generation is None:
        registers = "No timetable is loaded yet, so your registers cannot be checked."
    elif user.staff_id:
        registers = run_or_stop(
            "read your registers",
            home_ui.my_missing_registers,
            data_dir(),
            generation,
            user.staff_id,
            now,
        )
    my_referrals = None
    if user.staff_id:
        my_referrals = run_or_stop(
            "read your referrals",
            referrals.referrals_for,
            engine,
            user.staff_id,
            "open",
            warehouse=warehouse if generation is not None else None,
        )
    sources = run_or_stop("read your calendars", calendars.calendar_sources, engine, user.email)
    events = home_ui.all_events(sources, now.date())
    with tabs[1]:
        referrals_tab(user, my_referrals)
    with tabs[2]:
        registers_tab(user, registers, now)
    with tabs[3]:
        calendar_tab(user, sources, events, now.date())

    counts[0].metric("Unread notices", sum(1 for n in notices if n["read_at"] is None))
    counts[1].metric(
        "Urgent and unread", sum(1 for n in notices if n["urgent"] and not n["read_at"])
    )
    counts[2].metric("Referrals to action", "–" if my_referrals is None else len(my_referrals))
    counts[3].metric("Missing registers", len(registers) if hasattr(registers, "empty") else "–")
    counts[4].metric("Events today", int((events[0]["day"] == "Today").sum()))
    home_ui.scheduler_health(engine, settings)


main()
