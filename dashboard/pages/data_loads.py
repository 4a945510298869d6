"""Data loads: upload and check extracts, load them, see the history, roll back."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import actions, cached
from dashboard.common import (
    current_generation,
    data_dir,
    download,
    get_ops_engine,
    get_settings,
    get_warehouse,
    may,
    require_action,
    require_page,
    run_or_stop,
)
from reports import loads

LOAD_RESULT = "load_result"
EMAIL_RESULT = "email_result"
ROLLBACK_RESULT = "rollback_result"
CONFIRM_ROLLBACK = "confirm_rollback"
LONDON = "Europe/London"
LOAD = "data.load"  # re-checked on the server when a check, load or import runs
ROLLBACK = "data.rollback"


def show_outcome(outcome: dict[str, Any] | None, key: str) -> None:
    """The result of a check or load: a clear message, then the problems, errors first."""
    if not outcome:
        return
    if outcome.get("ok"):
        st.success(outcome["summary"], icon=":material/check_circle:")
    else:
        st.error(outcome["summary"], icon=":material/block:")
    problems = loads.problems_frame([*outcome.get("errors", []), *outcome.get("warnings", [])])
    if not problems.empty:
        st.markdown(
            f"**Validation report** — {len(outcome.get('errors', []))} error(s), "
            f"{len(outcome.get('warnings', []))} warning(s)"
        )
        st.dataframe(problems, hide_index=True, width="stretch")
        download(problems, "validation-report.csv", f"{key}_csv", label="Download the report (CSV)")
    files = outcome.get("files") or []
    if files:
        st.caption(
            "Files read: "
            + ", ".join(
                f"{f['file']} → {f['extract']} ({f['rows'] if f['rows'] is not None else '?'} rows)"
                for f in files
            )
        )


def uploaded_pairs(uploaded: Any) -> list[tuple[str, bytes]]:
    """Streamlit UploadedFile objects (one or a list) as (name, content) pairs."""
    if not uploaded:
        return []
    items = uploaded if isinstance(uploaded, list) else [uploaded]
    return [(item.name, item.getvalue()) for item in items]


def after_change(outcome: dict[str, Any]) -> None:
    """A new generation is current: drop cached reports so every page shows it."""
    if outcome.get("status") == "loaded" or outcome.get("generation_after") is not None:
        st.cache_data.clear()


def upload_section(settings: Any, actor: str) -> None:
    st.header("Load extracts")
    st.markdown(
        "Upload your MIS extracts: CSV or Excel files named after the extract "
        "(`students.csv`, `contacts.csv`, `marks.csv`, …) or a DfE Common Transfer File "
        "(`.xml`). **Check** validates them and changes nothing; **Load** makes them the "
        "current data if there are no errors. Warnings never block a load."
    )
    uploaded = st.file_uploader(
        "Extract files",
        type=["csv", "xlsx", "xml"],
        accept_multiple_files=True,
        key="extract_files",
    )
    if not may(LOAD, "check_extracts", "load_extracts"):
        st.info("Your account may not load extracts; ask a data manager or an administrator.")
        show_outcome(st.session_state.get(LOAD_RESULT), "load_report")
        return
    check_col, load_col = st.columns(2)
    check = check_col.button(
        "Check",
        help="Validate only (dry run); nothing changes.",
        width="stretch",
        key="check_extracts",
    )
    load = load_col.button(
        "Load",
        type="primary",
        width="stretch",
        key="load_extracts",
        help="Validate, and if there are no errors make a new generation.",
    )
    if check or load:
        files = uploaded_pairs(uploaded)
        if not files:
            st.warning("Choose one or more extract files first.")
        else:
            run_or_stop("check or load the extracts", require_action, LOAD)
            label = "Checking" if check else "Loading"
            with st.spinner(f"{label} {len(files)} file(s)…"):
                outcome = actions.load_uploads(files, settings, dry_run=bool(check), actor=actor)
            st.session_state[LOAD_RESULT] = outcome
            after_change(outcome)
    show_outcome(st.session_state.get(LOAD_RESULT), "load_report")


def email_section(settings: Any, actor: str) -> None:
    st.header("Bulk e-mail import")
    st.markdown(
        "Update pupils' e-mail addresses in one go. Upload a CSV file (for example "
        f"`{actions.EMAIL_IMPORT_NAME}`) with a header row and two columns: **adno** "
        "(admission number) *or* **upn**, and **email**, e.g.\n\n"
        "```\nadno,email\n001234,j.smith@pupils.example.sch.uk\n```\n"
        "Each row must match exactly one pupil already loaded; rows that match no pupil "
        "or several, and invalid addresses, are errors and nothing changes. Only "
        "`students.email` is updated; everything else stays as loaded."
    )
    uploaded = st.file_uploader("E-mail file (CSV)", type=["csv"], key="email_file")
    if not may(LOAD, "check_emails", "import_emails"):
        st.info("Your account may not import e-mail addresses.")
        return
    check_col, load_col = st.columns(2)
    check = check_col.button("Check e-mails", width="stretch", key="check_emails")
    load = load_col.button("Import e-mails", type="primary", width="stretch", key="import_emails")
    if check or load:
        if uploaded is None:
            st.warning("Choose the e-mail file first.")
        else:
            run_or_stop("check or import the e-mail addresses", require_action, LOAD)
            with st.spinner("Checking…" if check else "Importing…"):
                outcome = actions.email_import(
                    uploaded.getvalue(), settings, dry_run=bool(check), actor=actor
                )
            st.session_state[EMAIL_RESULT] = outcome
            after_change(outcome)
    show_outcome(st.session_state.get(EMAIL_RESULT), "email_report")


def status_section(settings: Any, engine: Any, actor: str) -> None:
    st.header("Warehouse status")
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    status = run_or_stop(
        "read the warehouse status", cached.warehouse_status, data_dir(), generation
    )
    if generation is None:
        st.info("No data loaded yet: upload extracts above and press **Load**.")
    else:
        loaded_at = status["loaded_at"]
        a, b, c = st.columns(3)
        a.metric("Current generation", generation)
        b.metric(
            "Generations kept",
            len(status["generations"]),
            help="On disk: " + ", ".join(str(g) for g in status["generations"]),
        )
        c.metric("Loaded at", loaded_at.strftime("%d/%m/%Y %H:%M") if loaded_at else "unknown")
        st.caption(
            f"Generations on disk: {', '.join(str(g) for g in status['generations'])}."
            + (
                f" Last load brought: {', '.join(status['extracts'])}."
                if status["extracts"]
                else ""
            )
        )
        with st.expander("Rows per table", expanded=False):
            counts = loads.row_counts_frame(status)
            st.dataframe(counts, hide_index=True, width="stretch")
            download(counts, f"rows-generation-{generation}.csv", "row_counts_csv")
    rollback_control(settings, engine, actor, generation, status.get("previous"))


def rollback_control(
    settings: Any, engine: Any, actor: str, generation: int | None, previous: int | None
) -> None:
    """The rollback button, its confirmation step and its result."""
    result = st.session_state.get(ROLLBACK_RESULT)
    if not may(ROLLBACK, "rollback", "rollback_confirm"):
        st.session_state.pop(CONFIRM_ROLLBACK, None)
        if result:
            (st.success if result["ok"] else st.error)(result["message"])
        return
    if previous is None:
        st.button(
            "Roll back to the previous generation",
            disabled=True,
            key="rollback",
            help="There is no earlier generation on disk to go back to.",
        )
    elif st.button("Roll back to the previous generation", key="rollback"):
        st.session_state[CONFIRM_ROLLBACK] = generation
    asked = st.session_state.get(CONFIRM_ROLLBACK)
    if asked is not None and previous is not None:
        st.warning(
            f"Make generation {previous} current again instead of {generation}? "
            "Every page will show the older data until the next load. The newer "
            "generation stays on disk.",
            icon=":material/undo:",
        )
        yes, no = st.columns(2)
        if yes.button("Yes, roll back", type="primary", key="rollback_confirm"):
            run_or_stop("roll back", require_action, ROLLBACK)
            result = actions.rollback(settings, engine, actor=actor, expected_generation=asked)
            st.session_state[ROLLBACK_RESULT] = result
            st.session_state.pop(CONFIRM_ROLLBACK, None)
            st.cache_data.clear()
            st.rerun()
        if no.button("Cancel", key="rollback_cancel"):
            st.session_state.pop(CONFIRM_ROLLBACK, None)
            st.rerun()
    if result:
        (st.success if result["ok"] else st.error)(result["message"])


def history_section(engine: Any) -> None:
    st.header("Load history")
    history = run_or_stop("read the load history", loads.load_history, engine)
    if history.empty:
        st.info("No loads yet. Checks, loads and rollbacks appear here with who did them.")
        return
    shown = history.copy()
    shown["started_at"] = shown["started_at"].dt.tz_convert(LONDON).dt.tz_localize(None)
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "started_at": st.column_config.DatetimeColumn("Started", format="DD/MM/YYYY HH:mm"),
            "generation_before": "Gen. before",
            "generation_after": "Gen. after",
            "error_count": "Errors",
            "warning_count": "Warnings",
        },
    )
    download(shown, "load-history.csv", "history_csv")
    records = {int(r["id"]): r for r in history.to_dict("records")}
    chosen = st.selectbox(
        "Show the problems of a load",
        list(records),
        key="history_run",
        format_func=lambda run_id: loads.describe_run(records[run_id]),
    )
    if chosen is None:
        return
    problems = run_or_stop("read that load's problems", loads.load_problems, engine, chosen)
    run = records[chosen]
    st.caption(str(run.get("summary") or ""))
    if problems.empty:
        st.success("No problems were recorded for this load.")
    else:
        st.dataframe(problems, hide_index=True, width="stretch")
        download(problems, f"load-{chosen}-problems.csv", "history_problems_csv")


def main() -> None:
    """The page."""
    actor = require_page("data_loads").email
    st.title("Data loads")
    settings = get_settings()
    engine = get_ops_engine()
    upload_section(settings, actor)
    st.divider()
    status_section(settings, engine, actor)
    st.divider()
    history_section(engine)
    st.divider()
    email_section(settings, actor)


main()
