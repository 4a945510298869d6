"""The dashboard's entry point: page set-up and navigation.

Run it with ``schoolcomms dashboard`` (which sets ``SCHOOLCOMMS_DATA_DIR``) or
``streamlit run dashboard/app.py``. Each page is a file in ``dashboard/pages``.
"""

from __future__ import annotations

import streamlit as st

from dashboard.common import (
    CONTACT_DETAILS_PAGE,
    DATA_LOADS_PAGE,
    HOME_PAGE,
    SCHEDULER_PAGE,
    current_generation,
    get_settings,
    get_warehouse,
)
from dashboard.messaging import (
    COMPOSE_PAGE,
    MESSAGE_BANK_PAGE,
    MESSAGE_HISTORY_PAGE,
    RECORD_CONTACT_PAGE,
)


def main() -> None:
    """Set up the page, the navigation and run the chosen page."""
    settings = get_settings()
    school = str(settings["school_name"])
    st.set_page_config(page_title=school, page_icon=":material/school:", layout="wide")
    has_data = current_generation(get_warehouse()) is not None
    pages = {
        "": [
            st.Page(HOME_PAGE, title="Home", icon=":material/home:", default=has_data),
        ],
        "Messaging": [
            st.Page(COMPOSE_PAGE, title="Compose", icon=":material/edit_square:"),
            st.Page(MESSAGE_HISTORY_PAGE, title="Message history", icon=":material/history:"),
            st.Page(MESSAGE_BANK_PAGE, title="Message bank", icon=":material/library_books:"),
            st.Page(RECORD_CONTACT_PAGE, title="Record a contact", icon=":material/call:"),
        ],
        "Staff": [
            st.Page(
                "pages/missing_registers.py",
                title="Missing registers",
                icon=":material/assignment_late:",
            ),
        ],
        "Reports": [
            st.Page("pages/weekly_reports.py", title="Weekly reports", icon=":material/summarize:"),
        ],
        "Data": [
            st.Page(CONTACT_DETAILS_PAGE, title="Contact details", icon=":material/contacts:"),
            st.Page(
                DATA_LOADS_PAGE,
                title="Data loads",
                icon=":material/upload_file:",
                default=not has_data,
            ),
            st.Page(SCHEDULER_PAGE, title="Scheduler", icon=":material/schedule:"),
        ],
    }
    navigation = st.navigation(pages)
    st.sidebar.markdown(f"**{school}**")
    navigation.run()


main()
