"""Grades: assessment grades and comments, filtered; query a grade with its teacher.

A teacher sees the grades of their own classes; senior leaders, pastoral staff and
administrators see every grade. Selected grades can be queried with the teacher who
entered them (a notice on their homepage, e-mailed when alerts are e-mailed). The
inbox lists the grade queries sent to me, with a form to answer each, and the ones I
asked, with their answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn

import pandas as pd
import streamlit as st

from dashboard import grades_ui
from dashboard.common import (
    capped,
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
from reports import grades as grade_reports
from schoolcomms.auth import SignedIn
from schoolcomms.roles import PermissionDenied
from senders.queries import QueryProblem, answer_query, ask_grade_query, queries_for

log = logging.getLogger(__name__)

RESULT = "grades_result"
TABLE = "grades_table"
SHOWN_FILTERS = "grades_shown_filters"
QUESTION = "grades_question"
MAX_OPEN_SHOWN = 30
GRADE_CONFIG: dict[str, Any] = {
    "grade_id": "Grade id",
    "student_id": "Student ID",
    "name": "Pupil",
    "year_group": "Year",
    "form": "Form",
    "class_id": "Class",
    "subject": "Subject",
    "assessment": "Assessment",
    "grade": "Grade",
    "comment": "Comment",
    "teacher_id": None,
    "teacher": "Class teacher",
    "entered_by": None,
    "entered_by_name": "Entered by",
    "entered_at": st.column_config.DatetimeColumn("Entered", format="DD/MM/YYYY HH:mm"),
}
QUERY_CONFIG: dict[str, Any] = {
    **grades_ui.QUERY_COLUMNS,
    "created_at": st.column_config.DatetimeColumn("Asked", format="DD/MM/YYYY HH:mm"),
    "answered_at": st.column_config.DatetimeColumn("Answered", format="DD/MM/YYYY HH:mm"),
}


def done(kind: str, message: str, *clear: str) -> NoReturn:
    """Keep the result of an action and show the page again (emptying ``clear`` keys)."""
    st.session_state[RESULT] = (kind, message)
    for key in clear:
        st.session_state.pop(key, None)
    st.rerun()


def show_result() -> None:
    """The result of the last action, shown once."""
    result = st.session_state.pop(RESULT, None)
    if result:
        kind, message = result
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)


def act(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an action; a refusal or a problem shows the page again with the reason."""
    try:
        return fn(*args, **kwargs)
    except (PermissionDenied, QueryProblem) as exc:
        done("error", f"Could not {what}: {exc}")
    except Exception as exc:
        log.exception("Could not %s", what)
        done("error", f"Could not {what}: {exc}. Tell your administrator if it happens again.")


def whose_grades(user: SignedIn) -> tuple[bool, str | None]:
    """Whether the user sees grades, and whose: ``None`` for every grade, else a staff id.

    Says which grades these are, or why there are none.
    """
    if grades_ui.sees_all_grades(user.roles):
        st.caption("Every grade in the loaded data.")
        return True, None
    if not user.staff_id:
        st.warning(
            "Your account is not linked to a staff member, so the page cannot tell which "
            "classes are yours. Ask an administrator to set your staff id on the Users page."
        )
        return False, None
    st.caption("The grades of your classes.")
    return True, user.staff_id


def filters(options: dict[str, list[str]]) -> dict[str, Any]:
    """The filter widgets; returns the keyword arguments of ``filter_grades``."""
    cols = st.columns(5)
    chosen: dict[str, Any] = {
        "subjects": cols[0].multiselect("Subject", options["subjects"], key="grades_subjects"),
        "classes": cols[1].multiselect("Class", options["classes"], key="grades_classes"),
        "assessments": cols[2].multiselect(
            "Assessment", options["assessments"], key="grades_assessments"
        ),
        "year_groups": cols[3].multiselect("Year", options["year_groups"], key="grades_years"),
        "pupil": cols[4].text_input("Pupil", key="grades_pupil", placeholder="Name or student id"),
    }
    return chosen


def grades_section(user: SignedIn, frame: pd.DataFrame, options: dict[str, list[str]]) -> None:
    chosen = filters(options)
    shown = grade_reports.filter_grades(frame, **chosen)
    # A selection belongs to the rows it was made on: new filters, new selection.
    fingerprint = grades_ui.fingerprint(chosen)
    if st.session_state.get(SHOWN_FILTERS) != fingerprint:
        st.session_state.pop(TABLE, None)
        st.session_state[SHOWN_FILTERS] = fingerprint
    st.caption(f"{len(shown):,} of {len(frame):,} grades shown. Select grades to query them.")
    if shown.empty:
        st.info("No grades match these filters; clear some of them to see more.")
        return
    table = capped(shown, "grades")
    event = st.dataframe(
        table,
        key=TABLE,
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        column_config=GRADE_CONFIG,
    )
    download(shown, "grades.csv", "grades_download", label="Download these grades (CSV)")
    with st.expander("Grades given, by subject"):
        st.altair_chart(grades_ui.counts_chart(grade_reports.grade_counts(shown)), width="stretch")
    if user_can("query.grade"):
        query_form(user, grades_ui.selected_rows(table, event))


def query_form(user: SignedIn, selected: pd.DataFrame) -> None:
    st.subheader("Query with the teacher")
    if selected.empty:
        st.caption("Select one or more grades in the table above to ask about them.")
    else:
        for row in selected.to_dict("records"):
            st.markdown(f"- {grade_reports.grade_label(row)}")
    question = st.text_area(
        "Your question",
        key=QUESTION,
        placeholder="e.g. Is this the right grade? Ann's teacher expected a 6.",
        help="Sent to the teacher who entered each grade; their answer comes back here.",
    )
    if not st.button(
        f"Query {len(selected)} grade(s) with the teacher" if len(selected) else "Query",
        key="grades_ask",
        disabled=selected.empty or not (question or "").strip(),
        icon=":material/contact_support:",
    ):
        return
    actor = act("send the query", require_action, "query.grade").email
    engine, settings, warehouse = get_ops_engine(), get_settings(), get_warehouse()
    ids = [
        act(
            "send the query",
            ask_grade_query,
            engine,
            settings,
            warehouse,
            grade_id=grade_id,
            question=question,
            actor=actor,
        )
        for grade_id in grades_ui.grade_ids(selected)
    ]
    done("success", f"{len(set(ids))} query(ies) sent to the teacher(s).", QUESTION, TABLE)


def answer_form(user: SignedIn, query: dict[str, Any]) -> None:
    """One open query with a box to answer it."""
    with st.container(border=True):
        st.markdown(f"**{query['about']}**  \n{query['created_by']} asked:")
        st.text(query["question"])
        key = f"grades_answer_{query['id']}"
        answer = st.text_area("Your answer", key=key, height=80)
        if st.button(
            "Send answer",
            key=f"grades_answer_send_{query['id']}",
            disabled=not (answer or "").strip(),
        ):
            actor = act("answer the query", require_action, "query.answer").email
            act(
                "answer the query",
                answer_query,
                get_ops_engine(),
                int(query["id"]),
                answer,
                actor=actor,
                staff_id=user.staff_id,
                is_admin="admin" in user.roles,
                settings=get_settings(),
            )
            done("success", f"Answer sent to {query['created_by']}.", key)


def inbox_to_me(user: SignedIn) -> None:
    is_admin = "admin" in user.roles
    if not user.staff_id and not is_admin:
        st.info(
            "Your account is not linked to a staff member, so no grade queries come to you. "
            "Ask an administrator to set your staff id on the Users page."
        )
        return
    to = None if is_admin else user.staff_id
    rows = run_or_stop(
        "read your queries", queries_for, get_ops_engine(), to_staff_id=to, kind="grade"
    )
    frame = grades_ui.queries_frame(rows)
    if is_admin:
        st.caption("As an administrator you see, and may answer, every grade query.")
    if frame.empty:
        st.info("No grade queries for you. When someone queries a grade you entered, it is here.")
        return
    waiting = grades_ui.open_queries(frame)
    st.markdown(f"**Waiting for your answer: {len(waiting)}**")
    if not user_can("query.answer"):
        waiting = []
    for query in waiting[:MAX_OPEN_SHOWN]:
        answer_form(user, query)
    if len(waiting) > MAX_OPEN_SHOWN:
        st.caption(f"Answer these to see the other {len(waiting) - MAX_OPEN_SHOWN}.")
    st.markdown("**All grade queries to you**")
    st.dataframe(frame, hide_index=True, width="stretch", column_config=QUERY_CONFIG)


def inbox_asked(user: SignedIn) -> None:
    rows = run_or_stop(
        "read your queries", queries_for, get_ops_engine(), asked_by=user.email, kind="grade"
    )
    frame = grades_ui.queries_frame(rows)
    if frame.empty:
        st.info("You have not queried a grade yet: select grades on the Grades tab.")
        return
    answered = int((frame["status"] == "answered").sum())
    st.caption(f"{len(frame):,} query(ies), {answered:,} answered.")
    st.dataframe(frame, hide_index=True, width="stretch", column_config=QUERY_CONFIG)
    download(
        frame, "grade_queries.csv", "grades_queries_download", label="Download my queries (CSV)"
    )


def main() -> None:
    """The page."""
    user = require_page("grades")
    st.title("Grades")
    show_result()
    grades_tab, to_me_tab, asked_tab = st.tabs(["Grades", "Queries to me", "Queries I asked"])
    with grades_tab:
        warehouse = get_warehouse()
        generation = current_generation(warehouse)
        if generation is None:
            no_data_state()
        else:
            sees, teacher = whose_grades(user)
            args = (data_dir(), generation, teacher)
            frame = run_or_stop("read the grades", grades_ui.grades, *args) if sees else None
            if frame is not None and frame.empty:
                st.info(
                    "No grades yet. Load a grades extract (grade_id, student_id, class_id, "
                    "subject, assessment, grade, comment, entered_by) on Data loads."
                )
            elif frame is not None:
                options = run_or_stop("read the grades", grades_ui.options, *args)
                grades_section(user, frame, options)
    with to_me_tab:
        inbox_to_me(user)
    with asked_tab:
        inbox_asked(user)


main()
