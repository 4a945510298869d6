"""Send a notice: to chosen staff, staff groups or roles, on the homepage or as a pop-up.

Optionally e-mailed. Each send has an id kept in the session until it succeeds, so a
second click (or a rerun) never sends the same notice twice. Below the form, the
notices this account has sent, with how many have been read.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import streamlit as st

from dashboard import notices_ui
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
    user_can,
)
from schoolcomms.auth import SignedIn
from schoolcomms.roles import PermissionDenied
from senders.alerts.groups import group_names
from senders.notices import AUDIENCES
from senders.staff_notices import (
    NoticePlan,
    NoticeProblem,
    new_send_id,
    notices_sent_by,
    preview_notice,
    send_notice,
)

log = logging.getLogger(__name__)

RESULT = "notice_result"
SEND_ID = "notice_send_id"
FIELDS = ("notice_title", "notice_body", "notice_staff", "notice_groups", "notice_roles")
SHOW_AS = {"homepage": "On the homepage", "popup": "As a pop-up (urgent)"}


def done(kind: str, message: str, *, clear: bool = False) -> NoReturn:
    """Keep the result and show the page again; a sent notice empties the form."""
    st.session_state[RESULT] = (kind, message)
    if clear:
        for key in (*FIELDS, SEND_ID):
            st.session_state.pop(key, None)
    st.rerun()


def show_result() -> None:
    """The result of the last send, shown once."""
    result = st.session_state.pop(RESULT, None)
    if result:
        kind, message = result
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)


def form(names: dict[str, str], groups: list[str]) -> dict[str, Any]:
    """The notice form; returns what was chosen."""
    title = st.text_input("Title", key="notice_title", max_chars=200)
    body = st.text_area("Message", key="notice_body", height=140)
    staff_col, group_col, role_col = st.columns(3)
    staff = staff_col.multiselect(
        "Staff",
        list(names),
        format_func=lambda s: names.get(s, s),
        key="notice_staff",
        placeholder="Choose people",
    )
    chosen_groups = group_col.multiselect(
        "Staff groups",
        groups,
        key="notice_groups",
        placeholder="Choose groups" if groups else "No staff groups yet",
        help="Staff groups are kept on the Alert rules page.",
    )
    roles = role_col.multiselect(
        "Roles",
        list(AUDIENCES),
        format_func=notices_ui.audience_label,
        key="notice_roles",
        placeholder="Choose roles",
        help="Everyone whose dashboard account holds the role sees the notice.",
    )
    show_col, email_col = st.columns(2)
    show_as = show_col.radio(
        "Show it", list(SHOW_AS), format_func=SHOW_AS.get, horizontal=True, key="notice_show"
    )
    email = email_col.checkbox(
        "Also send it by e-mail",
        key="notice_email",
        help="To each person's address in the staff list; for a role, to the accounts holding it.",
    )
    return {
        "title": title,
        "body": body,
        "staff_ids": staff,
        "groups": chosen_groups,
        "audiences": roles,
        "popup": show_as == "popup",
        "email": email,
    }


def _plan_or_problem(choice: dict[str, Any], send_id: str, warehouse: Any) -> NoticePlan | str:
    try:
        return preview_notice(
            get_ops_engine(), get_settings(), warehouse, send_id=send_id, **choice
        )
    except NoticeProblem as exc:
        return str(exc)


def preview(choice: dict[str, Any], send_id: str, warehouse: Any) -> NoticePlan | None:
    """The plan for the form as it is, or None with what is missing said in words."""
    plan = run_or_stop("prepare the notice", _plan_or_problem, choice, send_id, warehouse)
    if isinstance(plan, str):
        st.info(plan)
        return None
    return plan


def sent_section(user: SignedIn, names: dict[str, str]) -> None:
    st.subheader("Notices I have sent")
    sent = run_or_stop(
        "list your notices", notices_sent_by, get_ops_engine(), user.email, names=names
    )
    if sent.empty:
        st.info("You have not sent a notice yet; the ones you send are listed here.")
        return
    shown = notices_ui.sent_table(sent)
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        key="notice_sent_table",
        column_config={
            "sent_at": st.column_config.DatetimeColumn("Sent", format="DD/MM/YYYY HH:mm"),
            "title": "Title",
            "shown_as": "Shown",
            "recipients": "To",
            "notices": "Notices",
            "read": "Read",
            "emails": "E-mails",
        },
    )
    download(shown, "notices_sent.csv", "notice_sent_download", label="Download my notices (CSV)")


def main() -> None:
    """The page."""
    user = require_page("notices")
    st.title("Send a notice")
    show_result()
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    names: dict[str, str] = {}
    if generation is None:
        st.caption(
            "No staff list is loaded yet, so notices can go to roles and staff groups only; "
            "load the staff extract on Data loads to choose people."
        )
    else:
        names = run_or_stop("read the staff list", notices_ui.staff_names, data_dir(), generation)
    groups = run_or_stop("list the staff groups", group_names, get_ops_engine())
    choice = form(names, groups)
    send_id = st.session_state.setdefault(SEND_ID, new_send_id())
    plan = preview(choice, send_id, warehouse if generation is not None else None)
    if plan is not None:
        emails = f", {plan.email_count} e-mail(s)" if choice["email"] else ""
        with st.expander(f"Who gets it: {len(plan.notices)} notice(s){emails}"):
            st.dataframe(
                notices_ui.plan_table(plan, names),
                hide_index=True,
                width="stretch",
                key="notice_plan_table",
                column_config={"to": "To", "email": "E-mail"},
            )
        if plan.without_email:
            missing = ", ".join(names.get(s, s) for s in plan.without_email)
            st.warning(f"No e-mail address in the staff list for {missing}: homepage only.")
    allowed = user_can("notices.send")
    if st.button(
        "Send notice",
        type="primary",
        key="notice_send",
        disabled=plan is None or not allowed,
        icon=":material/campaign:",
    ):
        try:
            actor = require_action("notices.send").email
            count = send_notice(
                get_ops_engine(),
                get_settings(),
                warehouse if generation is not None else None,
                actor=actor,
                send_id=send_id,
                **choice,
            )
        except (PermissionDenied, NoticeProblem) as exc:
            done("error", f"The notice was not sent: {exc}")
        except Exception as exc:
            log.exception("Could not send a notice")
            done("error", f"The notice was not sent: {exc}. Try again, or tell your administrator.")
        if count:
            done("success", f"Notice sent: {count} notice(s).", clear=True)
        done("info", "This notice was sent already; nothing new was sent.", clear=True)
    st.divider()
    sent_section(user, names)


main()
