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

import streamlit as st
from sqlalchemy import Engine

from schoolcomms.settings import Settings, SettingsError, load_settings, resolve_data_dir
from schoolcomms.warehouse import Warehouse, WarehouseError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Roles the pages ask for. Sign-in is not built yet: require_role() lets everyone in,
# but every page calls it first so that checking can be added in one place.
ADMIN = "admin"
DATA_MANAGER = "data_manager"
SENIOR_LEADER = "senior_leader"
ATTENDANCE_OFFICER = "attendance_officer"
OFFICE = "office"
ANONYMOUS_ACTOR = "dashboard"

DATA_LOADS_PAGE = "pages/data_loads.py"
CONTACT_DETAILS_PAGE = "pages/contact_details.py"
HOME_PAGE = "pages/home.py"
SCHEDULER_PAGE = "pages/scheduler_jobs.py"


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


def stop_with_error(message: str) -> NoReturn:
    """Show ``message`` as an error and stop the page here."""
    st.error(message)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises; keeps type checkers honest


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
    """Who is using the dashboard: the signed-in user's e-mail, else "dashboard"."""
    try:
        user = st.user
        if user.get("is_logged_in"):
            return str(user.get("email") or user.get("name") or ANONYMOUS_ACTOR)
    except Exception:  # st.user needs a running session and auth set up
        pass
    return ANONYMOUS_ACTOR


def require_role(*roles: str) -> str:
    """Check that the user may see this page; return the actor name for the audit log.

    Called at the top of every page with the roles allowed there. Sign-in is not built
    yet, so for now everyone is allowed; when it is, this stops the page with a
    message for anyone without one of ``roles``.
    """
    actor = current_actor()
    st.session_state["actor"] = actor
    st.session_state["page_roles"] = list(roles)
    return actor


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
    except WarehouseError as exc:
        stop_with_error(f"Could not {what}: {exc}")
    except Exception as exc:
        log.exception("Could not %s", what)
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        stop_with_error(
            f"Could not {what}: {first_line}. If this keeps happening, reload "
            "the extracts on the Data loads page or tell your administrator."
        )


__all__ = [
    "ADMIN",
    "ATTENDANCE_OFFICER",
    "DATA_MANAGER",
    "OFFICE",
    "SENIOR_LEADER",
    "current_actor",
    "current_generation",
    "data_dir",
    "get_ops_engine",
    "get_settings",
    "get_warehouse",
    "no_data_state",
    "page_link_or_text",
    "require_role",
    "run_or_stop",
    "stop_with_error",
]
