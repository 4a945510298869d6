"""Users (admins): dashboard accounts, their roles and staff links; add, reset, disable."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.common import (
    download,
    get_ops_engine,
    may,
    require_action,
    require_page,
    run_or_stop,
)
from schoolcomms import auth
from schoolcomms.roles import ROLE_HELP, ROLES, matrix_markdown

RESULT = "users_result"


def show_result() -> None:
    """The outcome of the last action (a new password is shown once, here)."""
    result = st.session_state.pop(RESULT, None)
    if not result:
        return
    kind, message = result
    (st.success if kind == "ok" else st.error)(message)


def add_user_form(actor: str) -> None:
    """Add a local or single sign-on account."""
    with st.form("add_user", clear_on_submit=True):
        st.markdown("**Add an account**")
        email = st.text_input("E-mail address")
        name = st.text_input("Name")
        roles = st.multiselect(
            "Roles", ROLES, help="\n".join(f"{r}: {ROLE_HELP[r]}" for r in ROLES)
        )
        staff_id = st.text_input("Staff id (links notices and registers to this person)")
        local = st.toggle("Local password (off: single sign-on only)", value=True)
        submitted = st.form_submit_button("Add account", type="primary", key="users_add")
    if not submitted:
        return
    try:
        require_action("users.manage")
        password = auth.random_password() if local else None
        auth.create_user(
            get_ops_engine(),
            email=email,
            roles=roles,
            actor=actor,
            name=name,
            staff_id=staff_id or None,
            password=password,
            must_change_password=local,
        )
    except (auth.AccountProblem, ValueError, PermissionError) as exc:
        st.session_state[RESULT] = ("error", str(exc))
    else:
        note = (
            f" Their first password is **{password}** — give it to them now; it is not shown "
            "again and must be changed at first sign-in."
            if password
            else " They sign in with single sign-on."
        )
        st.session_state[RESULT] = ("ok", f"Added {email.strip().lower()}.{note}")
    st.rerun()


def change_user(actor: str, users: list[dict[str, object]]) -> None:
    """Change one account's roles; reset its password; disable or enable it."""
    if not users:
        return
    st.markdown("**Change an account**")
    emails = [str(u["email"]) for u in users]
    email = st.selectbox("Account", emails, key="users_pick")
    chosen = next(u for u in users if u["email"] == email)
    current = [r for r in str(chosen["roles"]).split(", ") if r]
    roles = st.multiselect("Roles", ROLES, default=current, key=f"roles_{email}")
    left, middle, right = st.columns(3)
    engine = get_ops_engine()
    try:
        if left.button("Save roles", key="users_save"):
            require_action("users.manage")
            auth.update_user(engine, email, actor, roles=roles)
            st.session_state[RESULT] = ("ok", f"Roles of {email} saved.")
            st.rerun()
        if middle.button("Reset password", key="users_reset"):
            require_action("users.manage")
            password = auth.reset_password(engine, email, actor)
            st.session_state[RESULT] = (
                "ok",
                f"New password for {email}: **{password}** (shown once; they choose their own "
                "at the next sign-in). The account is unlocked.",
            )
            st.rerun()
        disabled = bool(chosen["disabled"])
        if right.button("Enable" if disabled else "Disable", key="users_disable"):
            require_action("users.manage")
            if email == actor and not disabled:
                raise auth.AccountProblem("You cannot disable your own account.")
            auth.set_disabled(engine, email, not disabled, actor)
            st.session_state[RESULT] = ("ok", f"{email} {'enabled' if disabled else 'disabled'}.")
            st.rerun()
    except (auth.AccountProblem, ValueError, PermissionError) as exc:
        st.error(str(exc))


def main() -> None:
    """The accounts table, the add form, changes, and the role matrix."""
    actor = require_page("users").email
    st.title("Users")
    show_result()
    users = run_or_stop("read the accounts", auth.list_users, get_ops_engine())
    st.dataframe(users, hide_index=True, width="stretch")
    download(pd.DataFrame(users), "users.csv", "users_csv")
    if may("users.manage", "users_add", "users_save", "users_reset", "users_disable"):
        left, right = st.columns(2)
        with left:
            add_user_form(actor)
        with right:
            change_user(actor, users)
    with st.expander("Who may do what (the role matrix)"):
        st.markdown(matrix_markdown())
    st.caption("From the command line: `schoolcomms users add|reset|disable|list`.")


main()
