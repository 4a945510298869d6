"""Shared helpers for the dashboard pages: settings, warehouse, ops store, roles, states.

Pages hold no SQL and never open DuckDB: they get a :class:`Warehouse` from here and
pass it to ``reports/`` (through the cached wrappers in :mod:`dashboard.cached`).
Everything that can fail is shown as a message in words (``st.error``), never as a
traceback.

The data directory comes from ``SCHOOLCOMMS_DATA_DIR`` (``schoolcomms dashboard``
sets it), else ``./data``. Cached resources are keyed on it, so one process could
serve several data directories (tests do).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from reports.export import csv_bytes
from schoolcomms.auth import SignedIn
from schoolcomms.roles import PermissionDenied, can, check_action, check_page
from schoolcomms.settings import Settings, SettingsError, load_settings, resolve_data_dir
from schoolcomms.warehouse import Warehouse, WarehouseError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Role names (the matrix of who may do what is schoolcomms.roles).
ADMIN = "admin"
DATA_MANAGER = "data_manager"
SENIOR_LEADER = "senior_leader"
ATTENDANCE_OFFICER = "attendance_officer"
OFFICE = "office"
TEACHER = "teacher"
PASTORAL = "pastoral"
ANONYMOUS_ACTOR = "dashboard"
USER = "signed_in_user"  # session_state: the SignedIn checked on this run

DATA_LOADS_PAGE = "pages/data_loads.py"
CONTACT_DETAILS_PAGE = "pages/contact_details.py"
HOME_PAGE = "pages/home.py"
SCHEDULER_PAGE = "pages/scheduler_jobs.py"
# Rows a table sends to the browser at most: nobody reads further, and every run would
# send them again (the CSV download holds every row).
MAX_ROWS_SHOWN = 2_000


def data_dir() -> str:
    """The data directory: ``SCHOOLCOMMS_DATA_DIR``, else ``./data`` (as the CLI does)."""
    return str(resolve_data_dir(None, os.environ))


@st.cache_resource(ttl=60, show_spinner=False)
def _settings_for(directory: str) -> Settings:
    return load_settings(directory)


@st.cache_resource(ttl=60, show_spinner=False)
def _warehouse_for(directory: str) -> Warehouse:
    return Warehouse.from_settings(_settings_for(directory))


@st.cache_resource(show_spinner=False)
def _ops_engine_for(url: str, directory: str) -> Engine:
    from schoolcomms.ops.db import open_ops

    return open_ops(_settings_for(directory))


def halt() -> NoReturn:
    """Stop this run of the page here, always.

    ``st.stop()`` only requests a stop, which a pending rerun can override, and then
    the code after it would run (e.g. with no signed-in user); raising the runner's own
    StopException ends the run for certain.
    """
    st.stop()
    raise StopException()


def stop_with_error(message: str) -> NoReturn:
    """Show ``message`` as an error and stop the page here."""
    st.error(message)
    halt()


def get_settings() -> Settings:
    """The settings of this session's data directory (cached for a minute)."""
    try:
        return _settings_for(data_dir())
    except SettingsError as exc:
        stop_with_error(f"The settings cannot be used: {exc}")


def get_warehouse() -> Warehouse:
    """The warehouse of this session's data directory (cached)."""
    try:
        return _warehouse_for(data_dir())
    except SettingsError as exc:
        stop_with_error(f"The settings cannot be used: {exc}")


def get_ops_engine() -> Engine:
    """The ops store engine (load history, audit log), migrated and cached per URL."""
    settings = get_settings()
    try:
        return _ops_engine_for(settings.resolved_ops_url, str(settings.data_dir))
    except Exception as exc:  # a database that cannot be opened or migrated
        log.exception("Cannot open the ops store")
        stop_with_error(
            f"The ops store (load history, audit log) cannot be opened: {exc}. "
            "Check the setting ops_url and that the data folder is writable."
        )


def current_generation(warehouse: Warehouse) -> int | None:
    """The current warehouse generation (None before any load); stops on a broken pointer."""
    try:
        return warehouse.generation()
    except WarehouseError as exc:
        stop_with_error(str(exc))


def current_actor() -> str:
    """Who is using the dashboard, for the audit log: the signed-in account's e-mail."""
    return str(st.session_state.get("actor") or ANONYMOUS_ACTOR)


def signed_in_user() -> SignedIn:
    """The account checked by :func:`require_page` on this run (stops if none)."""
    user = st.session_state.get(USER)
    if not isinstance(user, SignedIn):
        stop_with_error("Sign in first.")
    return user


def _signed_in_or_stop() -> SignedIn:
    from dashboard import auth_ui

    user = auth_ui.current_user()
    if user is None:
        st.session_state.pop(USER, None)
        auth_ui.sign_in_form()
        halt()
    if user.must_change_password:
        auth_ui.change_password_form(user)
        halt()
    st.session_state[USER] = user
    st.session_state["actor"] = user.email
    return user


def require_page(page: str) -> SignedIn:
    """Sign-in and the role check every page starts with; returns the signed-in account.

    No account: the sign-in form, and the page stops. An account whose roles may not
    open ``page`` (a key of :data:`schoolcomms.roles.PAGE_ROLES`): an error in words,
    and the page stops. Runs on the server on every run, whatever the navigation shows.
    """
    user = _signed_in_or_stop()
    try:
        check_page(user.roles, page)
    except PermissionDenied as exc:
        stop_with_error(str(exc))
    return user


def require_role(*roles: str) -> str:
    """Sign-in and a check that the account holds one of ``roles``; returns the actor.

    Prefer :func:`require_page` (the role matrix in :mod:`schoolcomms.roles`).
    """
    user = _signed_in_or_stop()
    if not set(user.roles) & set(roles):
        stop_with_error(
            "Your account cannot open this page; it needs one of these roles: "
            f"{', '.join(r.replace('_', ' ') for r in roles)}. Ask an administrator if you "
            "need it."
        )
    return user.email


def require_action(action: str) -> SignedIn:
    """Re-check, when an action runs, that the signed-in account may do ``action``.

    Raises :class:`~schoolcomms.roles.PermissionDenied` (shown as an error in words by
    :func:`run_or_stop` or the page), whatever the page showed.
    """
    user = signed_in_user()
    check_action(user.roles, action)
    return user


def user_can(action: str) -> bool:
    """Whether the signed-in account may do ``action`` (to show or hide a control)."""
    user = st.session_state.get(USER)
    return isinstance(user, SignedIn) and can(user.roles, action)


def page_link_or_text(page: str, label: str, icon: str | None = None) -> None:
    """A link to another page of the app; plain text when the page is run on its own."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitAPIException:
        st.markdown(f"Open **{label}** from the menu.")


def no_data_state() -> None:
    """The friendly empty state shown when nothing has been loaded yet."""
    st.info(
        "No data loaded yet — go to **Data loads** and load your MIS extracts "
        "(students and contacts, as CSV or Excel files, or a CTF). "
        "This page fills in as soon as a load succeeds.",
        icon=":material/inbox:",
    )
    page_link_or_text(DATA_LOADS_PAGE, "Data loads", icon=":material/upload_file:")


def run_or_stop(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``; on an error, show "Could not <what>: …" and stop the page."""
    try:
        return fn(*args, **kwargs)
    except (WarehouseError, PermissionDenied) as exc:
        stop_with_error(f"Could not {what}: {exc}")
    except Exception as exc:
        log.exception("Could not %s", what)
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        stop_with_error(
            f"Could not {what}: {first_line}. If this keeps happening, reload "
            "the extracts on the Data loads page or tell your administrator."
        )


def download(
    frame: pd.DataFrame,
    file_name: str,
    key: str,
    *,
    label: str = "Download CSV",
    disabled: bool = False,
    container: Any = None,
) -> None:
    """A download button (``label``) for ``frame`` as CSV, formula-like cells escaped.

    The CSV is built only when the button is pressed: escaping every cell of a large
    table takes seconds, too long to do on every run of the page. The pages use this
    under every table they show; ``container`` (a column, say) is where it goes.
    """
    (container or st).download_button(
        label,
        lambda: csv_bytes(frame),
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click="ignore",
        disabled=disabled,
    )


def capped(frame: pd.DataFrame, what: str, limit: int | None = None) -> pd.DataFrame:
    """The first ``limit`` rows of ``frame`` (default :data:`MAX_ROWS_SHOWN`), to show in
    a table; says so when it cuts. ``what`` names the rows ("grades"). Offer the whole
    ``frame`` for download.
    """
    limit = MAX_ROWS_SHOWN if limit is None else limit
    if len(frame) <= limit:
        return frame
    st.caption(
        f"Showing the first {limit:,} of {len(frame):,} {what}: narrow the filters to see "
        f"the others. The CSV download has all {len(frame):,}."
    )
    return frame.iloc[:limit]


def may(action: str, *pressed: str) -> bool:
    """Whether to show the controls of ``action``: the signed-in account may do it now.

    Every page hides the controls an account may not use. A control in ``pressed`` (its
    widget key) that was pressed just after the account lost the role, on a page drawn
    before, is not drawn again, so it does nothing: the refusal is said instead, in the
    words of the check each action makes when it runs (``require_action``).
    """
    if user_can(action):
        return True
    if any(st.session_state.get(key) for key in pressed):
        try:
            require_action(action)
        except PermissionDenied as exc:
            st.error(str(exc), icon=":material/block:")
    return False


__all__ = [
    "ADMIN",
    "ATTENDANCE_OFFICER",
    "MAX_ROWS_SHOWN",
    "DATA_MANAGER",
    "OFFICE",
    "SENIOR_LEADER",
    "capped",
    "current_actor",
    "current_generation",
    "data_dir",
    "download",
    "get_ops_engine",
    "get_settings",
    "get_warehouse",
    "may",
    "no_data_state",
    "page_link_or_text",
    "require_action",
    "require_page",
    "require_role",
    "signed_in_user",
    "user_can",
    "run_or_stop",
    "stop_with_error",
]
