"""Homework: outstanding (and late) homework by pupil, class and subject.

Selected pupils' parents, or the pupils themselves, are e-mailed through Compose,
prefilled with the message bank's "Homework: outstanding" template (or "Homework:
outstanding, to pupils") and the assignment's title, subject and due date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import behaviour_ui as ui
from dashboard import charts
from dashboard.common import (
    _warehouse_for,
    capped,
    current_generation,
    data_dir,
    download,
    get_ops_engine,
    get_warehouse,
    no_data_state,
    require_page,
    run_or_stop,
    user_can,
)
from reports import homework as reports
from schoolcomms.auth import SignedIn
from senders.bank import list_templates

STATUS_LABELS = {"outstanding": "Outstanding", "late": "Late"}
AUDIENCES = {"parents": "Parents", "pupils": "Pupils (their own e-mail)"}
VIEWS = {"pupil": "By pupil", "class": "By class", "subject": "By subject"}
COLUMNS = {
    "name": "Pupil",
    "form": "Form",
    "year_group": "Year",
    "subject": "Subject",
    "class_id": "Class",
    "title": "Homework",
    "due_date": st.column_config.DateColumn("Due", format="ddd DD/MM/YY"),
    "days_overdue": "Days overdue",
    "status": "Status",
    "teacher": "Teacher",
    "student_id": "Student ID",
    "assignment_id": "Assignment",
}
SUMMARY_COLUMNS = {
    "name": "Pupil",
    "form": "Form",
    "year_group": "Year",
    "outstanding": "Outstanding",
    "overdue": "Overdue",
    "late": "Late",
    "class_id": "Class",
    "subject": "Subject",
    "teacher": "Teacher",
    "assignments": "Assignments",
    "pupils": "Pupils",
    "student_id": "Student ID",
}


@st.cache_data(ttl=300, show_spinner=False)
def options_for(folder: str, generation: int) -> dict[str, list[str]]:
    """:func:`reports.homework.filter_options` for ``generation`` of ``folder``."""
    return reports.filter_options(_warehouse_for(folder))


@st.cache_data(ttl=300, show_spinner="Reading the homework…")
def homework_for(folder: str, generation: int, today: dt.date, **query: Any) -> pd.DataFrame:
    """:func:`reports.homework.outstanding` for ``generation`` of ``folder``."""
    return reports.outstanding(_warehouse_for(folder), today, **query)


def only_teacher(user: SignedIn) -> bool:
    """Teachers (with no wider role) start with their own classes only."""
    return bool(user.staff_id) and set(user.roles) == {"teacher"}


def filters(options: dict[str, list[str]], user: SignedIn, today: dt.date) -> dict[str, Any]:
    a, b, c = st.columns([2, 2, 1])
    picked = a.date_input(
        "Due between",
        value=(today - dt.timedelta(days=28), today + dt.timedelta(days=7)),
        format="DD/MM/YYYY",
        key="hw_due",
    )
    due_from, due_to = sorted(ui.date_range(picked, today))
    statuses = b.multiselect(
        "Status",
        list(STATUS_LABELS),
        default=list(STATUS_LABELS),
        format_func=STATUS_LABELS.get,
        key="hw_status",
    )
    overdue = c.checkbox("Overdue only", key="hw_overdue")
    d, e, f, g, h = st.columns(5)
    query = {
        "due_from": due_from,
        "due_to": due_to,
        "statuses": tuple(statuses),
        "overdue_only": overdue,
        "subjects": tuple(d.multiselect("Subject", options["subjects"], key="hw_subjects")),
        "class_ids": tuple(e.multiselect("Class", options["classes"], key="hw_classes")),
        "year_groups": tuple(f.multiselect("Year group", options["year_groups"], key="hw_years")),
        "forms": tuple(g.multiselect("Form", options["forms"], key="hw_forms")),
        "search": h.text_input("Pupil name or id contains", key="hw_search").strip(),
        "staff_id": None,
    }
    if user.staff_id and st.checkbox("Only my classes", value=only_teacher(user), key="hw_mine"):
        query["staff_id"] = user.staff_id
    return query


@st.cache_data(ttl=300, show_spinner=False)
def summary_for(
    folder: str, generation: int, today: dt.date, view: str, **query: Any
) -> tuple[dict[str, int], pd.DataFrame, pd.DataFrame]:
    """The counts, the ``view`` table (by pupil, class or subject) and the 15 subjects
    with the most outstanding pieces, of :func:`homework_for` (the same arguments)."""
    frame = homework_for(folder, generation, today, **query)
    counts = {
        "outstanding": len(frame),
        "pupils": int(frame["student_id"].nunique()),
        "overdue": int((frame["days_overdue"] > 0).sum()),
        "assignments": int(frame["assignment_id"].nunique()),
    }
    by_subject = reports.by_subject(frame)
    table = {"pupil": reports.by_pupil, "class": reports.by_class}.get(view, reports.by_subject)
    return counts, by_subject if table is reports.by_subject else table(frame), by_subject.head(15)


def subject_chart(top: pd.DataFrame) -> alt.Chart:
    """Bars: pieces outstanding by subject."""
    return (
        alt.Chart(top)
        .mark_bar()
        .encode(
            y=alt.Y("subject:N", sort=list(top["subject"]), title=None),
            x=alt.X("outstanding:Q", title="Pieces outstanding"),
            tooltip=["subject:N", "outstanding:Q", "overdue:Q", "pupils:Q"],
        )
        .properties(title="By subject", height=300)
    )


def summaries(folder: str, generation: int, today: dt.date, query: dict[str, Any]) -> None:
    """The counts, a table by pupil, class or subject, and a chart by subject."""
    a, b, c, d = st.columns(4)
    left, right = st.columns([3, 2])
    view = left.radio("Show", list(VIEWS), format_func=VIEWS.get, horizontal=True, key="hw_view")
    counts, table, top = run_or_stop(
        "summarise the homework", summary_for, folder, generation, today, view or "pupil", **query
    )
    a.metric("Pieces outstanding", f"{counts['outstanding']:,}")
    b.metric("Pupils", f"{counts['pupils']:,}")
    c.metric("Overdue", f"{counts['overdue']:,}")
    d.metric("Assignments", f"{counts['assignments']:,}")
    with left:
        shown = capped(table, "rows")
    left.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=300,
        key="hw_summary",
        column_config=SUMMARY_COLUMNS,
    )
    with left:
        download(table, f"homework-by-{view}.csv", "hw_summary_csv")
    charts.altair(subject_chart, top, container=right, width="stretch")


def email(selected: pd.DataFrame) -> None:
    st.subheader(f"E-mail about {len(selected)} piece(s) of homework")
    if not user_can("send.single"):
        st.info("Your account cannot send messages.")
        return
    audience = st.radio(
        "E-mail to", list(AUDIENCES), format_func=AUDIENCES.get, horizontal=True, key="hw_to"
    )
    templates = run_or_stop("read the message bank", list_templates, get_ops_engine())
    ui.handoff(
        ui.homework_follow_ups(selected, audience or "parents"),
        "email",
        templates,
        source="Homework",
        key="hw_email",
        action="send",
        recipients=audience or "parents",
    )


def main() -> None:
    """The page."""
    user = require_page("homework")
    st.title("Homework")
    generation = current_generation(get_warehouse())
    if generation is None:
        no_data_state()
        return
    ui.ensure_templates(get_ops_engine())
    today = ui.uk_today()
    options = run_or_stop("read the filter choices", options_for, data_dir(), generation)
    query = filters(options, user, today)
    frame = run_or_stop("read the homework", homework_for, data_dir(), generation, today, **query)
    if frame.empty:
        st.info(
            "No outstanding homework matches. Widen the due dates or clear some filters; "
            "homework comes from the homework and homework_status extracts."
        )
        return
    summaries(data_dir(), generation, today, query)
    st.subheader("Outstanding homework")
    st.caption("Select rows to e-mail the pupils' parents, or the pupils themselves.")
    shown = capped(frame, "pieces of homework")
    event = st.dataframe(
        shown[list(COLUMNS)],
        key="hw_rows",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        height=360,
        column_config=COLUMNS,
    )
    download(frame[[*COLUMNS, "pupil_email"]], f"homework-{today}.csv", "hw_csv")
    positions = ui.selected_positions(event, len(shown))
    if positions:
        email(shown.iloc[positions])


main()
