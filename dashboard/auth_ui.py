"""Sign-in for the dashboard: the session, its expiry, the forms, single sign-on.

Who is signed in is decided on the server on every run of every page:

- single sign-on (``st.login`` with Microsoft 365 or Google Workspace, when ``[auth]``
  is configured in ``.streamlit/secrets.toml``): ``st.user``'s e-mail address must
  match an account, which gives the roles;
- a local account: the session holds only the account id and two times; the account is
  read again from the ops store on every run, so a role change or a disabled account
  takes effect at once. Idle for ``session_idle_minutes`` or signed in for longer than
  ``session_max_hours``: signed out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st
from sqlalchemy.exc import OperationalError

from schoolcomms import auth
from schoolcomms.auth import SignedIn
from schoolcomms.ops.models import utcnow

SESSION = "auth_session"
NOTICE = "auth_notice"
PROVIDERS = {"microsoft": "Microsoft 365", "google": "Google Workspace"}


def _engine_and_settings() -> tuple[Any, Any]:
    from dashboard.common import get_ops_engine, get_settings

    return get_ops_engine(), get_settings()


def sso_providers() -> list[str]:
    """The single sign-on providers configured under ``[auth.<name>]`` in the secrets."""
    try:
        section = st.secrets.get("auth", {})
    except Exception:  # no secrets file at all
        return []
    return [name for name in PROVIDERS if name in section] or (
        ["default"] if section and "client_id" in section else []
    )


def _sso_email() -> str | None:
    try:
        user = st.user
        if user.get("is_logged_in"):
            return str(user.get("email") or "") or None
    except Exception:  # st.user needs a running session and [auth] configured
        return None
    return None


def start_session(user: SignedIn, now: dt.datetime | None = None) -> None:
    """Remember a local sign-in in this browser session."""
    now = now or utcnow()
    st.session_state[SESSION] = {
        "user_id": user.user_id,
        "signed_in_at": now.isoformat(),
        "last_seen": now.isoformat(),
    }


def sign_out(reason: str = "") -> None:
    """Forget the local sign-in (and say why on the sign-in form)."""
    st.session_state.pop(SESSION, None)
    if reason:
        st.session_state[NOTICE] = reason


def current_user(now: dt.datetime | None = None) -> SignedIn | None:
    """The signed-in account, checked now against the ops store and the session limits."""
    engine, settings = _engine_and_settings()
    email = _sso_email()
    if email:
        return auth.sso_user(engine, email)
    session = st.session_state.get(SESSION)
    if not session:
        return None
    now = now or utcnow()
    idle = dt.timedelta(minutes=max(1, int(settings["session_idle_minutes"])))
    longest = dt.timedelta(hours=max(1, int(settings["session_max_hours"])))
    if now - dt.datetime.fromisoformat(session["last_seen"]) > idle:
        sign_out(f"You were signed out after {int(idle.total_seconds() // 60)} idle minutes.")
        return None
    if now - dt.datetime.fromisoformat(session["signed_in_at"]) > longest:
        sign_out(f"Sessions last at most {int(longest.total_seconds() // 3600)} hours.")
        return None
    user = auth.current(engine, int(session["user_id"]))
    if user is None:
        sign_out("Your account is no longer active; ask an administrator.")
        return None
    session["last_seen"] = now.isoformat()
    return user


def sign_in_form() -> None:
    """The sign-in form (and single sign-on buttons); signs in and reruns on success."""
    engine, settings = _engine_and_settings()
    st.title(str(settings["school_name"]))
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.info(notice)
    email = _sso_email()
    if email:
        st.error(
            f"There is no dashboard account for {email}. Ask an administrator to add one "
            "(`schoolcomms users add`)."
        )
        st.button("Sign out", on_click=st.logout)
        return
    for provider in sso_providers():
        label = PROVIDERS.get(provider, "single sign-on")
        if st.button(f"Sign in with {label}", key=f"sso_{provider}"):
            st.login(None if provider == "default" else provider)
    with st.form("sign_in"):
        address = st.text_input("E-mail address", key="sign_in_email")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            user = auth.authenticate(engine, settings, address, password)
        except auth.AuthError as exc:
            st.error(str(exc))
            return
        except OperationalError:
            st.error("The server is busy signing other people in; press Sign in again.")
            return
        start_session(user)
        st.rerun()


def change_password_form(user: SignedIn) -> None:
    """Ask for a new password (after a reset or the first admin's first sign-in)."""
    engine, _ = _engine_and_settings()
    st.title("Choose a new password")
    st.info("Your password was set by an administrator: choose your own before going on.")
    with st.form("change_password"):
        old = st.text_input("Current password", type="password", key="old_password")
        new = st.text_input("New password (at least 10 characters)", type="password")
        again = st.text_input("New password again", type="password")
        submitted = st.form_submit_button("Change password", type="primary")
    if submitted:
        if new != again:
            st.error("The two new passwords are different; type them again.")
            return
        try:
            auth.change_password(engine, user.user_id, old, new)
        except auth.AccountProblem as exc:
            st.error(str(exc))
            return
        st.rerun()


def sidebar_account(user: SignedIn) -> None:
    """Who is signed in, their roles, and a Sign out button."""
    st.sidebar.caption(f"Signed in as **{user.name}** · {', '.join(user.roles)}")
    if st.sidebar.button("Sign out", key="sign_out"):
        if _sso_email():
            st.logout()
        sign_out("You have signed out.")
        st.rerun()
