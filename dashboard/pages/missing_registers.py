"""Missing registers: lessons and sessions of today or this week with no register taken.

As of now, by teacher and by department, with the list of lessons; selected lessons'
teachers can be reminded at once ("Remind selected"), on top of the scheduler's
automatic reminders and escalations.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard import registers_ui
from dashboard.common import (
    ADMIN,
    ATTENDANCE_OFFICER,
    DATA_MANAGER,
    SENIOR_LEADER,
    current_generation,
    data_dir,
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
from senders.reminders import duration_text, remind_now, stale_reason

ROLES = (SENIOR_LEADER, ATTENDANCE_OFFICER, ADMIN, DATA_MANAGER)
REMIND = "registers.remind"  # re-checked on the server when "Remind selected" runs


def summary(frame: pd.DataFrame, by_teacher: pd.DataFrame) -> None:
    cols = st.columns(3)
    cols[0].metric("Missing registers", f"{len(frame):,}")
    cols[1].metric("Teachers", f"{(by_teacher['staff_id'] != '').sum():,}")
    cols[2].metric("Longest missing", duration_text(int(frame["minutes_missing"].max())))


def groups(by_teacher: pd.DataFrame, by_department: pd.DataFrame) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("By teacher")
        st.altair_chart(registers_ui.bar_chart(by_teacher, "teacher", "Teacher"), width="stretch")
        teachers = by_teacher[["teacher", "department", "missing"]]
        st.dataframe(
            teachers,
            hide_index=True,
            width="stretch",
            key="registers_by_teacher",
            column_config={
                "teacher": "Teacher",
                "department": "Department",
                "missing": "Missing",
            },
        )
        download(teachers, "missing-registers-by-teacher.csv", "registers_by_teacher_csv")
    with right:
        st.subheader("By department")
        st.altair_chart(
            registers_ui.bar_chart(by_department, "department", "Department"), width="stretch"
        )
        st.dataframe(
            by_department,
            hide_index=True,
            width="stretch",
            key="registers_by_department",
            column_config={
                "department": "Department",
                "missing": "Missing",
                "teachers": "Teachers",
            },
        )
        download(by_department, "missing-registers-by-department.csv", "registers_by_dept_csv")


def lessons_and_reminders(frame: pd.DataFrame, actor: str, now: dt.datetime) -> None:
    st.subheader("Lessons")
    shown = registers_ui.lesson_table(frame)
    may_remind = may(REMIND, "registers_remind")
    if may_remind:
        st.caption("Select lessons to remind their teachers now (a notice and an e-mail).")
    event = st.dataframe(
        shown,
        key="registers_lessons",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        column_config={
            "date": st.column_config.DateColumn("Date", format="ddd DD/MM"),
            **{k: v for k, v in registers_ui.LESSON_COLUMNS.items() if k != "date"},
        },
    )
    download(shown, f"missing-registers-{now:%Y-%m-%d}.csv", "registers_lessons_csv")
    chosen = registers_ui.selected_lessons(shown, event)
    if not may_remind or not st.button(
        f"Remind {len(chosen)} selected" if chosen else "Remind selected",
        key="registers_remind",
        disabled=not chosen,
        icon=":material/notifications_active:",
        help="Each selected lesson's teacher gets a notice on their homepage and an e-mail "
        "now; lessons with no teacher go to the data managers.",
    ):
        return
    run_or_stop("send the reminders", require_action, REMIND)
    sent = run_or_stop(
        "send the reminders",
        remind_now,
        get_ops_engine(),
        get_settings(),
        get_warehouse(),
        chosen,
        actor,
        now,
    )
    skipped = len(chosen) - len({n.lesson_id for n in sent})
    if sent:
        st.success(f"{len(sent)} reminder(s) sent.")
        table = registers_ui.sent_table(sent, frame)
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            key="registers_sent",
            column_config={"to": "To", "lesson": "Lesson", "email": "E-mail"},
        )
        download(table, f"reminders-{now:%Y-%m-%d-%H%M}.csv", "registers_sent_csv")
    if skipped:
        st.info(
            f"{skipped} selected lesson(s) not reminded: their register has been taken "
            "since, or you reminded them already this minute."
        )


def main() -> None:
    """The page."""
    actor = require_page("missing_registers").email
    st.title("Missing registers")
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    if generation is None:
        no_data_state()
        return
    settings = get_settings()
    now = registers_ui.local_now()
    period = st.radio(
        "Show",
        list(registers_ui.PERIODS),
        format_func=registers_ui.PERIODS.get,
        horizontal=True,
        key="registers_period",
    )
    start, end = registers_ui.period_bounds(period or "today", now.date())
    after = int(settings["register_reminder_minutes"])
    st.caption(
        f"As of {now:%A %d %B %Y, %H:%M} (UK time): lessons and registration sessions "
        f"that started at least {after} minutes ago with no register taken."
    )
    fresh, reason = run_or_stop(
        "check the registers' freshness",
        registers_ui.freshness,
        data_dir(),
        generation,
        now,
        int(settings["freshness_minutes"]),
    )
    if not fresh:
        text = stale_reason(reason)
        st.warning(f"{text[:1].upper()}{text[1:]}.", icon=":material/schedule:")
    frame = run_or_stop(
        "read the missing registers",
        registers_ui.missing,
        data_dir(),
        generation,
        start,
        end,
        now,
        after,
    )
    if frame.empty:
        st.success(f"No missing registers {registers_ui.PERIODS[period or 'today'].lower()}.")
        return
    by_teacher = registers_ui.by_teacher(frame)
    by_department = registers_ui.by_department(frame)
    summary(frame, by_teacher)
    groups(by_teacher, by_department)
    lessons_and_reminders(frame, actor, now)


main()
