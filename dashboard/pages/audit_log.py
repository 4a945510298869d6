"""Audit log (admins): who did what and when — sends, loads, settings, accounts, sign-ins."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard.common import download, get_ops_engine, require_action, require_page, run_or_stop
from schoolcomms.ops.history import recent_audit

LIMITS = (200, 1000, 5000)


def main() -> None:
    """Filter the newest audit rows by action and actor; download them as CSV."""
    require_page("audit_log")
    require_action("audit.view")
    st.title("Audit log")
    st.caption(
        "Every send, load, rollback, configuration change, account change and sign-in, "
        "with who and when. Secrets are never written here."
    )
    left, middle, right = st.columns(3)
    limit = left.selectbox("Newest rows", LIMITS)
    frame = run_or_stop("read the audit log", recent_audit, get_ops_engine(), limit)
    actions = sorted(frame["action"].unique().tolist())
    chosen = middle.multiselect("Actions", actions, placeholder="All actions")
    actor = right.text_input("Who (contains)")
    if chosen:
        frame = frame[frame["action"].isin(chosen)]
    if actor.strip():
        frame = frame[frame["actor"].str.contains(actor.strip(), case=False, regex=False)]
    if frame.empty:
        st.info("No audit rows match.")
        return
    shown = frame.assign(
        at=frame["at"].dt.tz_convert("Europe/London"),
        details=frame["details"].map(lambda d: "" if d is None else json.dumps(d, default=str)),
    )
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={"at": st.column_config.DatetimeColumn("When", format="D MMM YYYY HH:mm:ss")},
    )
    download(pd.DataFrame(shown), "audit-log.csv", "audit_log_csv")


main()
