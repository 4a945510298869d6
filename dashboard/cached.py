"""Report results cached for the dashboard, keyed on data directory and generation.

A warehouse generation never changes once published, so a report computed for one
generation stays right until another generation becomes current; the generation
number is part of every cache key, and the Data loads page also clears these caches
after a load or a rollback (``st.cache_data.clear()``). Entries expire after five
minutes all the same, so memory is given back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.common import _warehouse_for, get_ops_engine
from reports import contacts, loads
from reports import messages as message_reports

TTL_SECONDS = 300
# The message log changes as messages are sent; its charts may be this many seconds old.
ACTIVITY_TTL_SECONDS = 30


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Reading contact details…")
def contact_details(data_dir: str, generation: int) -> pd.DataFrame:
    """:func:`reports.contacts.contact_details` for ``generation`` of ``data_dir``."""
    return contacts.contact_details(_warehouse_for(data_dir))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def contact_summary(data_dir: str, generation: int) -> dict[str, int]:
    """:func:`reports.contacts.contact_summary` for ``generation`` of ``data_dir``."""
    details = contact_details(data_dir, generation)
    return contacts.summarise(details, invalid_numbers(data_dir, generation))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def contact_options(data_dir: str, generation: int) -> dict[str, list[str]]:
    """The forms and year groups of :func:`contact_details` (``form``, ``year_group``):
    distinct non-blank values in school order."""
    details = contact_details(data_dir, generation)
    out: dict[str, list[str]] = {}
    for column in ("form", "year_group"):
        values = [str(v) for v in details[column].dropna().unique() if str(v).strip()]
        out[column] = contacts.school_order(values)
    return out


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def contact_problems_by(
    data_dir: str,
    generation: int,
    forms: tuple[str, ...],
    year_groups: tuple[str, ...],
    kinds: tuple[str, ...],
    by: str,
) -> pd.DataFrame:
    """:func:`reports.contacts.problems_by` of the contact details these filters show."""
    details = contact_details(data_dir, generation)
    shown = contacts.filter_details(details, forms=forms, year_groups=year_groups, kinds=kinds)
    return contacts.problems_by(shown, by)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def invalid_numbers(data_dir: str, generation: int) -> pd.DataFrame:
    """:func:`reports.contacts.invalid_numbers` for ``generation`` of ``data_dir``."""
    return contacts.invalid_numbers(_warehouse_for(data_dir))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def warehouse_status(data_dir: str, generation: int | None) -> dict[str, Any]:
    """:func:`reports.loads.warehouse_status` for ``generation`` of ``data_dir``."""
    return loads.warehouse_status(_warehouse_for(data_dir))


@st.cache_data(ttl=ACTIVITY_TTL_SECONDS, show_spinner=False, max_entries=16)
def message_activity(data_dir: str, since: dt.datetime) -> pd.DataFrame:
    """:func:`reports.messages.message_activity` since ``since`` for the ops store of
    ``data_dir``: read at most every 30 s (charts of the month, not live progress)."""
    return message_reports.message_activity(get_ops_engine(), since=since)
