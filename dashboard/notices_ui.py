"""Helpers for the "Send a notice" page: the cached staff list and tables in words."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.common import _warehouse_for
from reports.staff import staff_directory
from senders.staff_notices import AUDIENCE_LABELS, NoticePlan

TTL_SECONDS = 300


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def staff_names(data_dir: str, generation: int) -> dict[str, str]:
    """``{staff_id: "Name (id)"}`` for every staff member of ``generation``."""
    frame = staff_directory(_warehouse_for(data_dir))
    return {
        str(row.staff_id): f"{row.name or row.staff_id} ({row.staff_id})"
        for row in frame.itertuples(index=False)
    }


def audience_label(audience: str) -> str:
    """A role as the page shows it ("Data managers")."""
    return AUDIENCE_LABELS.get(audience, audience.replace("_", " "))


def plan_table(plan: NoticePlan, names: dict[str, str]) -> pd.DataFrame:
    """Who the planned notice reaches, and where it is e-mailed."""
    rows = []
    for notice, emails in zip(plan.notices, plan.emails, strict=True):
        if notice.audience:
            who = f"Everyone with the role {audience_label(notice.audience)}"
        else:
            who = names.get(notice.staff_id or "", f"{notice.staff_id} (not in the staff list)")
        rows.append({"to": who, "email": ", ".join(emails) or "homepage only"})
    return pd.DataFrame(rows, columns=["to", "email"])


def sent_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The sent-notices list with times in UK local time, for display and download."""
    out = frame.copy()
    out["sent_at"] = out["sent_at"].dt.tz_convert("Europe/London").dt.tz_localize(None)
    return out.drop(columns=["send_id"])
