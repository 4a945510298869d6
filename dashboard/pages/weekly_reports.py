"""Weekly reports: the e-mail schedules (add, change, switch off), a preview, and Send now."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, NoReturn

import streamlit as st

from dashboard import charts, reports_ui
from dashboard.common import (
    current_generation,
    download,
    get_ops_engine,
    get_settings,
    get_warehouse,
    may,
    no_data_state,
    require_action,
    require_page,
    run_or_stop,
)
from reports.weekly import REPORTS, previous_week, week_containing, week_label
from senders.messengers import where_messages_go
from senders.report_schedules import (
    WEEKDAYS,
    ScheduleNotFound,
    ScheduleProblem,
    create_schedule,
    delete_schedule,
    local,
    schedules_frame,
    seed_default_schedules,
    send_report_now,
    update_schedule,
)

log = logging.getLogger(__name__)

NEW = "__new__"
CHOICE = "wr_choice"
NEXT_CHOICE = "wr_next_choice"  # chosen after a save, set before the widget exists
RESULT = "wr_result"
SCHEDULE = "reports.schedule"  # add, change, delete: re-checked when each runs
SEND_NOW = "reports.send_now"
DEFAULTS: dict[str, Any] = {
    "wr_report": "attendance",
    "wr_recipients": "",
    "wr_day": "Monday",
    "wr_time": "07:00",
    "wr_enabled": True,
}


def finish(kind: str, message: str | list[str], choose: str | int | None = None) -> NoReturn:
    """Keep the outcome of an action, optionally pick a schedule, and show the page again."""
    st.session_state[RESULT] = (kind, message)
    if choose is not None:
        st.session_state[NEXT_CHOICE] = choose
    st.rerun()


def show_result() -> None:
    result = st.session_state.pop(RESULT, None)
    if not result:
        return
    kind, message = result
    if kind in ("problems", "not_sent"):
        heading = "Not saved" if kind == "problems" else "Not sent"
        st.error(f"{heading}:\n\n" + "\n".join(f"- {p}" for p in message), icon=":material/block:")
    else:
        {"success": st.success, "error": st.error, "info": st.info}[kind](message)


def load_choice(frame: Any) -> None:
    """Fill the editor from the chosen schedule (or the defaults for a new one)."""
    state = st.session_state
    chosen = frame[frame["id"] == state.get(CHOICE)]
    if chosen.empty:
        state.update(DEFAULTS)
        return
    row = chosen.iloc[0]
    state.update(
        wr_report=row["report"],
        wr_recipients=row["recipients"].replace(", ", "\n"),
        wr_day=row["day"],
        wr_time=row["time"],
        wr_enabled=bool(row["enabled"]),
    )


def schedules_section(engine: Any, settings: Any, actor: str) -> Any:
    st.subheader("Schedules")
    frame = run_or_stop("read the report schedules", schedules_frame, engine)
    if frame.empty:
        st.info(
            "No weekly reports are scheduled yet. Add one schedule per report at the "
            "default time (the data managers as recipients, if the setting "
            "data_manager_emails names any), or add your own below.",
            icon=":material/schedule:",
        )
        if may(SCHEDULE, "wr_seed") and st.button(
            "Add the default schedules", key="wr_seed", icon=":material/add:"
        ):
            run_or_stop("add the schedules", require_action, SCHEDULE)
            added = run_or_stop(
                "add the schedules", seed_default_schedules, engine, settings, actor
            )
            finish("success", f"Added {len(added)} schedule(s).")
        return frame
    table = reports_ui.schedule_table(frame)
    st.dataframe(
        table,
        key="wr_schedules",
        hide_index=True,
        width="stretch",
        column_config={
            "id": None,
            "title": "Report",
            "recipients": st.column_config.TextColumn("Recipients", width="large"),
            "day": "Day",
            "time": "Time",
            "enabled": st.column_config.CheckboxColumn("On"),
            "last_sent_at": st.column_config.DatetimeColumn("Last sent", format="ddd D MMM HH:mm"),
            "next_send": st.column_config.DatetimeColumn("Next", format="ddd D MMM HH:mm"),
        },
    )
    download(table.drop(columns=["id"]), "report-schedules.csv", "wr_schedules_csv")
    return frame


def editor_section(engine: Any, frame: Any, actor: str) -> None:
    state = st.session_state
    if not may(SCHEDULE, "wr_save", "wr_delete"):
        return
    st.subheader("Add or change a schedule")
    ids = [int(i) for i in frame["id"]]
    if NEXT_CHOICE in state:
        state[CHOICE] = state.pop(NEXT_CHOICE)
        load_choice(frame)
    if state.get(CHOICE) not in (NEW, *ids):
        state[CHOICE] = NEW
        load_choice(frame)
    for key, value in DEFAULTS.items():
        state.setdefault(key, value)
    labels = {int(r["id"]): reports_ui.schedule_label(r) for _, r in frame.iterrows()}
    choice = st.selectbox(
        "Schedule",
        [NEW, *ids],
        format_func=lambda i: "A new schedule" if i == NEW else labels[i],
        key=CHOICE,
        on_change=load_choice,
        args=(frame,),
    )
    left, right = st.columns(2)
    report = left.selectbox(
        "Report", list(REPORTS), format_func=lambda n: REPORTS[n].title, key="wr_report"
    )
    left.caption(REPORTS[report].description)
    recipients = left.text_area(
        "Recipients", key="wr_recipients", help="E-mail addresses, one a line or comma-separated."
    )
    day = right.selectbox("Day", list(WEEKDAYS), key="wr_day")
    time_text = right.text_input("Time (UK, 24-hour HH:MM)", key="wr_time")
    enabled = right.checkbox("Send this report", key="wr_enabled")
    st.caption(
        "Each report covers the previous complete week, Monday to Sunday. A new schedule, "
        "or one switched back on, first sends at its next day and time; use Send now "
        "below for this week's."
    )
    save, remove = st.columns([1, 1])
    if save.button("Save schedule", key="wr_save", type="primary", icon=":material/save:"):
        run_or_stop("save the schedule", require_action, SCHEDULE)
        fields = {
            "report": report,
            "recipients": recipients,
            "weekday": reports_ui.weekday_index(day),
            "time_of_day": time_text,
            "enabled": enabled,
        }
        try:
            if choice == NEW:
                saved = create_schedule(engine, actor=actor, **fields)
            else:
                saved = update_schedule(engine, int(choice), actor=actor, **fields)
        except ScheduleProblem as exc:
            finish("problems", exc.problems)
        except ScheduleNotFound as exc:
            finish("error", str(exc), NEW)
        finish("success", f"Saved: {saved.describe()}.", saved.id)
    if choice != NEW and remove.button(
        "Delete schedule", key="wr_delete", icon=":material/delete:"
    ):
        run_or_stop("delete the schedule", require_action, SCHEDULE)
        try:
            delete_schedule(engine, int(choice), actor=actor)
        except ScheduleNotFound as exc:
            finish("error", str(exc), NEW)
        finish("success", "The schedule was deleted.", NEW)


def preview_section(settings: Any, engine: Any, frame: Any, actor: str) -> None:
    st.subheader("Preview and send now")
    now_local = local(dt.datetime.now(dt.UTC))
    left, right = st.columns(2)
    name = left.selectbox(
        "Report", list(REPORTS), format_func=lambda n: REPORTS[n].title, key="wr_preview_report"
    )
    day = right.date_input(
        "Week of", value=previous_week(now_local), key="wr_week", format="DD/MM/YYYY"
    )
    week_start = week_containing(day)
    right.caption(f"Monday to Sunday: {week_label(week_start)}.")
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    if REPORTS[name].needs_warehouse and generation is None:
        no_data_state()
        return
    content = run_or_stop(
        "build the report",
        reports_ui.report_preview,
        settings,
        warehouse,
        engine,
        name,
        week_start,
        now_local,
        generation,
    )
    st.markdown(f"#### {content.title}")
    st.write(content.intro)
    if content.chart is not None:
        key = reports_ui.preview_key(settings, name, week_start, now_local, generation)
        charts.built(content.chart, key, width="stretch")
    for i, (heading, table) in enumerate(content.tables):
        st.markdown(f"**{heading}**")
        st.dataframe(table, hide_index=True, width="stretch", key=f"wr_table_{i}")
        download(
            table,
            f"{content.csv_name.removesuffix('.csv')}-table-{i + 1}.csv",
            f"wr_table_{i}_csv",
            label="Download this table (CSV)",
        )
    for note in content.notes:
        st.caption(note)
    download(content.csv, content.csv_name, "wr_csv", label="Download the CSV")
    if not may(SEND_NOW, "wr_send_now"):
        return
    own = frame[frame["report"] == name] if not frame.empty else frame
    schedule_id = int(own.iloc[0]["id"]) if not own.empty else None
    if st.session_state.get("wr_send_for") != name:
        st.session_state["wr_send_for"] = name
        st.session_state["wr_send_to"] = "" if own.empty else own.iloc[0]["recipients"]
    to = st.text_input("Send this report now to", key="wr_send_to", help="Comma-separated.")
    if st.button("Send now", key="wr_send_now", icon=":material/send:"):
        run_or_stop("send the report", require_action, SEND_NOW)
        try:
            outcome = send_report_now(
                engine,
                settings,
                warehouse,
                report=name,
                recipients=to,
                actor=actor,
                schedule_id=schedule_id,
                week_start=week_start,
                content=content,
            )
        except ScheduleProblem as exc:
            finish("not_sent", exc.problems)
        except Exception as exc:
            log.exception("Could not send the %s report", name)
            finish("error", f"Could not send the report: {exc}")
        finish(
            "success",
            f"Queued {outcome.queued} e-mail(s) of {content.title.lower()} for "
            f"{week_label(week_start)}. {where_messages_go(settings)['email']}",
        )


def main() -> None:
    actor = require_page("weekly_reports").email
    settings = get_settings()
    engine = get_ops_engine()
    st.title("Weekly reports")
    st.caption(
        "Reports e-mailed every week as a table, with a CSV (opens in Excel) and the chart "
        f"attached. Times are UK local time. {where_messages_go(settings)['email']}"
    )
    show_result()
    frame = schedules_section(engine, settings, actor)
    editor_section(engine, frame, actor)
    preview_section(settings, engine, frame, actor)


main()
