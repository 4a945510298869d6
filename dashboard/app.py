"""The dashboard's entry point: sign-in, page set-up and navigation.

Run it with ``schoolcomms dashboard`` (which sets ``SCHOOLCOMMS_DATA_DIR``) or
``streamlit run dashboard/app.py``. Each page is a file in ``dashboard/pages``. The
navigation shows only the pages the signed-in account's roles may open
(:data:`schoolcomms.roles.PAGE_ROLES`); each page checks again itself, on the server.
"""

from __future__ import annotations

import streamlit as st

from dashboard import auth_ui
from dashboard.common import current_generation, get_settings, get_warehouse
from dashboard.navigation import permitted_pages


def main() -> None:
    """Set up the page; sign in, or show the navigation of the pages this account may open."""
    settings = get_settings()
    school = str(settings["school_name"])
    st.set_page_config(page_title=school, page_icon=":material/school:", layout="wide")
    user = auth_ui.current_user()
    if user is None or user.must_change_password:
        form = auth_ui.sign_in_form if user is None else lambda: auth_ui.change_password_form(user)
        st.navigation([st.Page(form, title="Sign in", icon=":material/login:")]).run()
        return
    has_data = current_generation(get_warehouse()) is not None
    allowed = permitted_pages(user.roles)
    default = (
        "home" if has_data or not any(p.key == "data_loads" for p in allowed) else "data_loads"
    )
    sections: dict[str, list[st.Page]] = {}
    for entry in allowed:
        sections.setdefault(entry.section, []).append(
            st.Page(entry.path, title=entry.title, icon=entry.icon, default=entry.key == default)
        )
    navigation = st.navigation(sections)
    st.sidebar.markdown(f"**{school}**")
    auth_ui.sidebar_account(user)
    navigation.run()


main()
