"""Contact reports: messages sent and their cost, contact details held and missing,
invalid numbers, staff e-mail addresses and (restricted) medical notes.

The staff e-mail section is shown only to roles with ``staff_emails.view``; the medical
section only to roles with ``medical.view``: for anyone else it is not rendered and
the medical table is never read.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import cached, messaging
from dashboard import contact_reports_ui as ui
from dashboard.common import (
    CONTACT_DETAILS_PAGE,
    current_generation,
    data_dir,
    download,
    get_warehouse,
    no_data_state,
    page_link_or_text,
    require_action,
    require_page,
    run_or_stop,
    user_can,
)
from reports import contact_reports, contacts
from schoolcomms.auth import SignedIn

SUMMARY_CONFIG: dict[str, Any] = {
    "month": "Month",
    "channel": "Channel",
    "created_by": "Sent by",
    "messages": "Messages",
    "sent": "Sent",
    "failed": "Failed",
    "texts": "Texts sent",
    "segments": "Segments",
    "cost_pence": None,
    "cost_pounds": st.column_config.NumberColumn("SMS cost (£)", format="%.2f"),
}


def table(frame: pd.DataFrame, label: str, file: str, config: dict[str, Any] | None = None) -> None:
    """A table (``config``: its column titles) and its download as ``<file>.csv``."""
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config)
    download(frame, f"{file}.csv", f"cr_download_{file}", label=f"Download {label} (CSV)")


def with_month_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``month`` as "2026-09" text, for tables and downloads."""
    return frame.assign(month=pd.to_datetime(frame["month"]).dt.strftime("%Y-%m"))


def messages_section() -> None:
    st.subheader("Messages sent")
    months = st.selectbox(
        "Period", list(ui.PERIODS), index=2, format_func=ui.PERIODS.get, key="cr_period"
    )
    today = messaging.london_now().date()
    first = (today.replace(day=1) - pd.DateOffset(months=int(months or 12) - 1)).date()
    since, _ = messaging.day_bounds(first, first)
    activity = run_or_stop("read the message log", cached.message_activity, data_dir(), since)
    if activity.empty:
        st.info(
            "No messages in this period. Texts, e-mails and letters sent from Compose, "
            "the command line or the scheduler are counted here."
        )
        return
    summary = contact_reports.message_summary
    by_channel = summary(activity, "channel")
    by_month = summary(activity, "month")
    cols = st.columns(3)
    cols[0].metric("Messages", f"{int(by_channel['messages'].sum()):,}")
    cols[1].metric("Texts sent", f"{int(by_channel['texts'].sum()):,}")
    cols[2].metric(
        "SMS cost",
        f"£{by_channel['cost_pounds'].sum():,.2f}",
        help="Texts sent or delivered, at the cost recorded when each was sent.",
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**Messages by month and channel**")
        by_month_channel = summary(activity, "month", "channel")
        st.altair_chart(ui.monthly_chart(by_month_channel), width="stretch")
    with right:
        st.markdown("**SMS cost by month**")
        if by_month["texts"].sum():
            st.altair_chart(ui.cost_chart(by_month), width="stretch")
        else:
            st.caption("No texts were sent in this period.")
    st.markdown("**Messages by member of staff**")
    st.altair_chart(ui.staff_chart(summary(activity, "created_by", "channel")), width="stretch")
    by_tab, staff_tab, month_tab = st.tabs(["By channel", "By member of staff", "By month"])
    with by_tab:
        table(by_channel, "messages by channel", "messages_by_channel", SUMMARY_CONFIG)
    with staff_tab:
        by_staff = summary(activity, "created_by")
        table(by_staff, "messages by member of staff", "messages_by_staff", SUMMARY_CONFIG)
    with month_tab:
        table(with_month_text(by_month), "messages by month", "messages_by_month", SUMMARY_CONFIG)


def contact_details_section(folder: str, generation: int) -> None:
    st.subheader("Contact details held and missing")
    summary = run_or_stop("count the contact details", cached.contact_summary, folder, generation)
    if not summary["students"]:
        st.info(
            "The loaded data has no current students (status starting with C); load the "
            "students and contacts extracts on Data loads."
        )
        return
    held = contact_reports.held_and_missing(summary)
    st.caption(f"Over {summary['students']:,} current students.")
    st.altair_chart(ui.held_chart(held), width="stretch")
    table(
        held,
        "contact details held",
        "contact_details_held",
        {
            "detail": "Detail",
            "held": "Students with it",
            "missing": "Students without it",
            "percent_held": st.column_config.NumberColumn("Held", format="%.1f%%"),
        },
    )
    details = run_or_stop("read the contact details", cached.contact_details, folder, generation)
    missing = contacts.filter_details(details, kinds=list(contacts.PROBLEM_KINDS))
    if missing.empty:
        st.success("Every current student has all their contact details.")
    else:
        with st.expander(f"{len(missing):,} student(s) with something missing or wrong"):
            table(missing[contacts.DETAIL_COLUMNS], "these students", "contact_details_missing")
    page_link_or_text(CONTACT_DETAILS_PAGE, "Contact details", icon=":material/contact_phone:")


def invalid_numbers_section(folder: str, generation: int) -> None:
    st.subheader("Invalid phone numbers")
    invalid = run_or_stop("list the invalid numbers", cached.invalid_numbers, folder, generation)
    if invalid.empty:
        st.success("No invalid phone numbers among current students' contacts.")
        return
    st.caption(
        f"{len(invalid):,} number(s) given in the MIS that are not valid phone numbers. "
        "Correct them in the MIS and load the contacts extract again."
    )
    table(invalid, "invalid numbers", "invalid_numbers")


def staff_emails_section(folder: str, generation: int) -> None:
    st.subheader("Staff e-mail addresses")
    run_or_stop("show staff e-mail addresses", require_action, "staff_emails.view")
    staff = run_or_stop("read the staff list", ui.staff_emails, folder, generation)
    if staff.empty:
        st.info("No staff are loaded; load the staff extract on Data loads.")
        return
    without = int((~staff["has_email"]).sum())
    cols = st.columns(2)
    cols[0].metric("Staff", f"{len(staff):,}")
    cols[1].metric(
        "Without an e-mail address",
        f"{without:,}",
        help="Alerts, register reminders and notices reach them on the homepage only.",
    )
    if not without:
        st.success("Every member of staff has an e-mail address.")
    table(
        staff,
        "staff e-mail addresses",
        "staff_emails",
        {
            "staff_id": "Staff id",
            "name": "Name",
            "email": "E-mail",
            "has_email": st.column_config.CheckboxColumn("Has e-mail"),
        },
    )


def medical_section(user: SignedIn) -> None:
    st.subheader("Medical notes (restricted)")
    run_or_stop("show medical notes", require_action, "medical.view")
    notes = run_or_stop(
        "read the medical notes", contact_reports.medical_notes, get_warehouse(), user.roles
    )
    st.caption(
        "Restricted information: only for staff who need it to care for the pupil. "
        "Do not forward or print it without need."
    )
    if notes.empty:
        st.info("No medical notes for current students; they come from the medical extract.")
        return
    cols = st.columns(2)
    cols[0].metric("Pupils with notes", f"{notes['student_id'].nunique():,}")
    cols[1].metric("Conditions", f"{len(notes):,}")
    table(
        notes,
        "medical notes",
        "medical_notes",
        {
            "student_id": "Student ID",
            "name": "Name",
            "year_group": "Year",
            "form": "Form",
            "condition": "Condition",
            "severity": "Severity",
            "details": "Details",
        },
    )


def main() -> None:
    """The page."""
    user = require_page("contact_reports")
    st.title("Contact reports")
    sections = ["Messages", "Contact details", "Invalid numbers"]
    if user_can("staff_emails.view"):
        sections.append("Staff e-mail")
    if user_can("medical.view"):
        sections.append("Medical")
    tabs = dict(zip(sections, st.tabs(sections), strict=True))
    with tabs["Messages"]:
        messages_section()
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    folder = data_dir()
    for index, (name, tab) in enumerate(tabs.items()):
        if name == "Messages":
            continue
        with tab:
            if generation is None and index == 1:
                no_data_state()
            elif generation is None:
                st.info("No data loaded yet: see the Contact details tab.")
            elif name == "Contact details":
                contact_details_section(folder, generation)
            elif name == "Invalid numbers":
                invalid_numbers_section(folder, generation)
            elif name == "Staff e-mail":
                staff_emails_section(folder, generation)
            else:
                medical_section(user)


main()
