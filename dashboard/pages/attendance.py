"""Attendance: a day's absences, first days of absence, N codes to chase, persistent
absence and the term's trends; select rows to message parents (Compose, prefilled) or
to query marks with the teacher who took the register.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from dashboard import attendance_ui as ui
from dashboard.common import (
    current_generation,
    data_dir,
    download,
    get_ops_engine,
    get_settings,
    get_warehouse,
    no_data_state,
    require_action,
    require_page,
    run_or_stop,
    user_can,
)
from reports.attendance_today import uk_today
from schoolcomms.auth import SignedIn
from schoolcomms.roles import PermissionDenied, can_open
from senders.queries import QueryProblem, ask_mark_query, close_query, queries_for

log = logging.getLogger(__name__)
COMPOSE_PAGE = "pages/compose.py"
CHANNELS = {"sms": "Text (SMS)", "email": "E-mail", "letter": "Letter"}


def table(frame: pd.DataFrame, columns: dict[str, str], key: str, **config: Any) -> pd.DataFrame:
    """A selectable table with a CSV download; returns the selected rows of ``frame``."""
    view = ui.shown(frame, columns)
    event = st.dataframe(
        view,
        key=key,
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        column_config={**columns, **config},
    )
    download(view, f"{key}.csv", f"{key}_csv")
    return ui.selected(frame.reset_index(drop=True), event)


def message_parents(user: SignedIn, rows: pd.DataFrame, key: str, note: str) -> None:
    """ "Message parents" of the selected pupils: Compose opens with them chosen."""
    if not can_open(user.roles, "compose"):
        return
    ids = ui.student_ids(rows) if not rows.empty else []
    left, right = st.columns([1, 2])
    channel = left.selectbox(
        "Message by", list(CHANNELS), format_func=CHANNELS.get, key=f"{key}_channel"
    )
    right.write("")
    label = f"Message parents of {len(ids)} pupil(s)" if ids else "Message parents"
    if not right.button(
        label,
        key=f"{key}_message",
        disabled=not ids,
        icon=":material/sms:",
        help="Opens Compose with these pupils chosen; nothing is sent until you press Send there.",
    ):
        return
    st.session_state["compose_prefill"] = ui.prefill(ids, channel or "sms", note)
    try:
        st.switch_page(COMPOSE_PAGE)
    except StreamlitAPIException:  # the page run on its own (no navigation)
        st.info(
            f"{len(ids)} pupil(s) are ready in Compose: open **Compose** from the menu to "
            "write the message and send it."
        )


def query_marks(user: SignedIn, rows: pd.DataFrame, key: str) -> None:
    """Ask the teachers who took the registers about the selected marks."""
    if not user_can("query.mark"):
        return
    pairs = ui.mark_pairs(rows) if not rows.empty else []
    question = st.text_area(
        "Question for the teacher who took the register",
        key=f"{key}_question",
        placeholder="e.g. Was she in the lesson? Her parent says she was dropped off at 9.",
        help="Each selected mark's teacher gets a notice and an e-mail with the mark, the "
        "lesson and your question; the answer comes back to you.",
    )
    if not st.button(
        f"Query {len(pairs)} mark(s) with the teacher" if pairs else "Query marks",
        key=f"{key}_query",
        disabled=not pairs,
        icon=":material/contact_support:",
    ):
        return
    try:
        actor = require_action("query.mark").email
    except PermissionDenied as exc:
        st.error(str(exc))
        return
    engine, settings, warehouse = get_ops_engine(), get_settings(), get_warehouse()
    teachers: list[str] = []
    problems: list[str] = []
    names = ui.teacher_names(rows)
    for student_id, lesson_id in pairs:
        try:
            ask_mark_query(
                engine,
                settings,
                warehouse,
                student_id=student_id,
                lesson_id=lesson_id,
                question=question,
                actor=actor,
            )
        except QueryProblem as exc:
            problems.append(str(exc))
        except Exception as exc:  # the ops store failing: say so, never a traceback
            log.exception("Could not send a mark query")
            problems.append(f"Could not send the query about {student_id}: {exc}")
        else:
            teachers.append(names.get((student_id, lesson_id), ""))
    if teachers:
        who = ", ".join(sorted({t for t in teachers if t})) or "the teacher"
        st.success(
            f"{len(teachers)} query(ies) sent to {who}. Answers come back to your homepage "
            "and under **My mark queries**."
        )
    for problem in dict.fromkeys(problems):
        st.error(problem)


def absences_view(user: SignedIn, frame: pd.DataFrame, day: dt.date, folder: str, gen: int) -> None:
    st.subheader(f"Absent on {day:%A %d %B %Y}")
    if frame.empty:
        st.success("Nobody is marked absent on this day.")
        return
    st.caption(
        "Pupils with an authorised or unauthorised mark in any register of the day, with "
        "who was contacted and how. Select pupils to message their parents."
    )
    chosen = table(frame, ui.PUPIL_COLUMNS, "attendance_absences")
    message_parents(user, chosen, "attendance_absences", f"absent on {day:%d/%m/%Y}")
    # A toggle, not an expander: the marks are only read when someone wants them.
    if st.toggle(
        "Show each absence mark, to query it with the teacher who took the register",
        key="attendance_show_marks",
    ):
        marks = run_or_stop(
            "read the absence marks", ui.absence_marks, folder, gen, day, extra_codes()
        )
        picked = table(marks, ui.MARK_COLUMNS, "attendance_marks")
        query_marks(user, picked, "attendance_marks")


def first_day_view(user: SignedIn, frame: pd.DataFrame, day: dt.date) -> None:
    st.subheader("First day of absence")
    st.caption(
        "Absent today, but present on their previous day with registers (or no earlier "
        "register): the families to call first. 'Contacted today' lists texts, e-mails and "
        "letters from the message log and calls recorded in the contact log."
    )
    if frame.empty:
        st.success("No pupil is on a first day of absence.")
        return
    waiting = int((frame["contacts"] == 0).sum())
    st.metric("Not contacted yet", waiting)
    chosen = table(
        frame,
        ui.FIRST_DAY_COLUMNS,
        "attendance_first_day",
        previous_day=st.column_config.DateColumn("Previous day", format="ddd DD/MM"),
    )
    message_parents(user, chosen, "attendance_first_day", f"first day absent {day:%d/%m/%Y}")


def unexplained_view(user: SignedIn, day: dt.date, folder: str, gen: int) -> None:
    st.subheader("Unexplained absences (code N) to chase")
    days = int(
        st.number_input(
            "Days to look back", min_value=1, max_value=120, value=14, key="attendance_n_days"
        )
    )
    frame = run_or_stop("read the N codes", ui.unexplained, folder, gen, day, days)
    if frame.empty:
        st.success(f"No N codes in the {days} days to {day:%d/%m/%Y}: nothing to chase.")
        return
    st.caption(
        f"{len(frame):,} N mark(s), oldest first, with the teacher who took the register. "
        "Select marks to message the parents or to query a mark with the teacher."
    )
    frame = frame.assign(teacher=frame["teacher"].fillna(frame["teacher_id"]).fillna(""))
    st.altair_chart(
        ui.count_chart(frame, "teacher", "Register taken by", "N codes"), width="stretch"
    )
    chosen = table(
        frame,
        ui.MARK_COLUMNS,
        "attendance_unexplained",
        date=st.column_config.DateColumn("Date", format="ddd DD/MM"),
    )
    message_parents(user, chosen, "attendance_unexplained", "unexplained absence (N)")
    query_marks(user, chosen, "attendance_unexplained")


def persistent_view(user: SignedIn, day: dt.date, folder: str, gen: int) -> None:
    threshold = float(get_settings()["persistent_absence_percent"])
    st.subheader(f"Persistent absence: below {threshold:g}% this academic year")
    frame = run_or_stop(
        "read persistent absence", ui.persistent, folder, gen, day, threshold, extra_codes()
    )
    if frame.empty:
        st.success(f"No pupil's attendance is below {threshold:g}% since 1 September.")
        return
    st.caption(
        f"{len(frame):,} pupil(s) below {threshold:g}% (setting persistent_absence_percent), "
        "lowest first."
    )
    st.altair_chart(
        ui.count_chart(frame, "year_group", "Year", "Persistent absentees"), width="stretch"
    )
    chosen = table(
        frame,
        ui.PERSISTENT_COLUMNS,
        "attendance_persistent",
        percent=st.column_config.NumberColumn("Attendance %", format="%.1f"),
    )
    message_parents(user, chosen, "attendance_persistent", f"attendance below {threshold:g}%")


def trends_view(day: dt.date, folder: str, gen: int) -> None:
    by_year = run_or_stop("read the trends", ui.trends, folder, gen, day, extra_codes())
    st.subheader("This term's attendance, day by day")
    if by_year.empty:
        st.info("No registers this term yet: the trends appear once registers are loaded.")
        return
    st.altair_chart(ui.line_chart(ui.daily_overall(by_year)), width="stretch")
    st.subheader("By year group")
    st.altair_chart(ui.line_chart(by_year, colour="year_group"), width="stretch")
    download(by_year, "attendance_by_day_and_year.csv", "attendance_trends_csv")


def queries_view(user: SignedIn) -> None:
    st.subheader("Your queries about marks")
    engine = get_ops_engine()
    frame = run_or_stop("read your queries", queries_for, engine, asked_by=user.email, kind="mark")
    if frame.empty:
        st.info(
            "You have not queried any marks yet. Select marks under **N codes to chase** or "
            "in the day's absence marks, write a question and press **Query marks**."
        )
        return
    view = ui.queries_table(frame)
    event = st.dataframe(
        view,
        key="attendance_queries",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        column_config=ui.QUERY_COLUMNS,
    )
    chosen = ui.selected(frame, event)
    open_ids = [int(i) for i in chosen.loc[chosen["status"] != "closed", "id"]]
    if st.button(
        f"Close {len(open_ids)} query(ies)" if open_ids else "Close selected",
        key="attendance_queries_close",
        disabled=not open_ids,
    ):
        for query_id in open_ids:
            try:
                close_query(engine, query_id, actor=user.email, staff_id=user.staff_id)
            except (QueryProblem, PermissionDenied) as exc:
                st.error(str(exc))
        st.rerun()


def extra_codes() -> str:
    return str(get_settings()["extra_attendance_codes"])


def main() -> None:
    """The page."""
    user = require_page("attendance")
    st.title("Attendance")
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    if generation is None:
        no_data_state()
        return
    folder = data_dir()
    day = st.date_input("Day", value=uk_today(), format="DD/MM/YYYY", key="attendance_day")
    if not isinstance(day, dt.date):
        day = uk_today()
    extra = extra_codes()
    overall = run_or_stop(
        "read the day's attendance", ui.day_overall, folder, generation, day, extra
    )
    frame = run_or_stop("read the day's absences", ui.absences, folder, generation, day, extra)
    frame = ui.with_contacts(frame, get_ops_engine(), warehouse, day)
    if not overall["possible"] and frame.empty:
        latest = run_or_stop(
            "find the last day with registers", ui.latest_day, folder, generation, day
        )
        hint = f" The last day with registers is {latest:%A %d %B %Y}." if latest else ""
        st.info(f"No registers were taken on {day:%A %d %B %Y}.{hint} Choose another day above.")
    a, b, c, d = st.columns(4)
    percent = overall["percent"]
    a.metric("Attendance", "–" if percent is None else f"{percent:.1f}%")
    b.metric("Pupils absent", f"{len(frame):,}")
    c.metric("With unauthorised absence", f"{int((frame['unauthorised'] > 0).sum()):,}")
    d.metric("Absent all day", f"{int(frame['whole_day'].sum()):,}")
    view = st.radio(
        "Show", list(ui.VIEWS), format_func=ui.VIEWS.get, horizontal=True, key="attendance_view"
    )
    if view == "first_day":
        first = run_or_stop("find first days", ui.first_days, folder, generation, day, extra)
        contacts = frame[["student_id", "contacted", "contacts"]]
        first_day_view(user, first.merge(contacts, on="student_id", how="left"), day)
    elif view == "unexplained":
        unexplained_view(user, day, folder, generation)
    elif view == "persistent":
        persistent_view(user, day, folder, generation)
    elif view == "trends":
        trends_view(day, folder, generation)
    elif view == "queries":
        queries_view(user)
    else:
        absences_view(user, frame, day, folder, generation)


main()
