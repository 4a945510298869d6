"""Report results cached for the dashboard, keyed on data directory and generation.

A warehouse generation never changes once published, so a report computed for one
generation stays right until another generation becomes current; the generation
number is part of every cache key, and the Data loads page also clears these caches
after a load or a rollback (``st.cache_data.clear()``). Entries expire after five
minutes all the same, so memory is given back.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.common import _warehouse_for
from reports import contacts, loads

TTL_SECONDS = 300


@st.cache_data(ttl=TTL_SECONDS, show_spinner="Reading contact details…")
def contact_details(data_dir: str, generation: int) -> pd.DataFrame:
    """:func:`reports.contacts.contact_details` for ``generation`` of ``data_dir``."""
    return contacts.contact_details(_warehouse_for(data_dir))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def contact_summary(data_dir: str, generation: int) -> dict[str, int]:
    """:func:`reports.contacts.contact_summary` for ``generation`` of ``data_dir``."""
    return contacts.contact_summary(_warehouse_for(data_dir))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def invalid_numbers(data_dir: str, generation: int) -> pd.DataFrame:
    """:func:`reports.contacts.invalid_numbers` for ``generation`` of ``data_dir``."""
    return contacts.invalid_numbers(_warehouse_for(data_dir))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def warehouse_status(data_dir: str, generation: int | None) -> dict[str, Any]:
    """:func:`reports.loads.warehouse_status` for ``generation`` of ``data_dir``."""
    return loads.warehouse_status(_warehouse_for(data_dir))
