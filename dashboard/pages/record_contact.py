"""Record a contact: a phone call, meeting or other contact with a pupil's family.

Saved to the contact log (with who recorded it); below, the pupil's contact history,
pastoral log and the messages sent about them.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import pandas as pd
import streamlit as st

from dashboard import messaging
from dashboard.common import (
    _warehouse_for,
    current_generation,
    data_dir,
    download,
    get_ops_engine,
    get_warehouse,
    may,
    no_data_state,
    require_action,
    require_page,
    run_or_stop,
)
from reports import recipients
from senders.logbook import (
    DIRECTIONS,
    METHODS,
    LogbookError,
    contact_history,
    pastoral_history,
    record_contact,
)
from senders.outbox import message_log

log = logging.getLogger(__name__)

RESULT = "contact_result"
CLEAR = "contact_clear"
PUPIL = "contact_pupil"
RECORD = "contact.record"  # re-checked on the server when Save runs
CLEARED_FIELDS = ("contact_outcome", "contact_notes", "contact_follow_up", "contact_other_name")
METHOD_LABELS = {
    "phone": "Phone call",
    "meeting": "Meeting",
    "email": "E-mail",
    "letter": "Letter",
    "other": "Other",
}


@st.cache_data(ttl=300, show_spinner=False)
def pupils_for(folder: str, generation: int) -> pd.DataFrame:
    """:func:`reports.recipients.pupil_picker` for ``generation`` of ``folder``."""
    return recipients.pupil_picker(_warehouse_for(folder))


@st.cache_data(ttl=300, show_spinner=False)
def pupil_labels_for(folder: str, generation: int) -> dict[str, str]:
    """Student id -> label (:func:`dashboard.messaging.pupil_label`) of :func:`pupils_for`,
    in school order."""
    return messaging.pupil_labels(messaging.school_sorted(pupils_for(folder, generation)))


@st.cache_data(ttl=300, show_spinner=False)
def contacts_for(folder: str, generation: int, student_id: str) -> pd.DataFrame:
    """:func:`reports.recipients.contacts_of` one pupil, for ``generation`` of ``folder``."""
    return recipients.contacts_of(_warehouse_for(folder), [student_id])


def finish(kind: str, message: str, *, clear: bool = False) -> NoReturn:
    st.session_state[RESULT] = (kind, message)
    if clear:
        st.session_state[CLEAR] = True
    st.rerun()


def show_result() -> None:
    result = st.session_state.pop(RESULT, None)
    if result:
        kind, message = result
        (st.success if kind == "success" else st.error)(message)


def prepare_fields() -> None:
    """Defaults for the date and time (now, UK time), and blank fields after a save."""
    state = st.session_state
    if state.pop(CLEAR, False):
        for key in CLEARED_FIELDS:
            state.pop(key, None)
        state.pop("contact_date", None)
        state.pop("contact_time", None)
    now = messaging.london_now()
    state.setdefault("contact_date", now.date())
    state.setdefault("contact_time", now.time())


def entry_form(engine: Any, actor: str, student_id: str, contacts: pd.DataFrame) -> None:
    st.subheader("What happened")
    if not may(RECORD, "contact_save"):
        st.info("Your account may read this pupil's contact history but not record contacts.")
        return
    options = messaging.contact_options(contacts)
    who_col, other_col = st.columns(2)
    contact_id = who_col.selectbox(
        "With", list(options), format_func=options.get, key="contact_who"
    )
    other = ""
    if contact_id == messaging.OTHER_CONTACT:
        other = other_col.text_input("Their name", key="contact_other_name")
    method_col, direction_col = st.columns(2)
    method = method_col.selectbox(
        "How", list(METHODS), format_func=METHOD_LABELS.get, key="contact_method"
    )
    direction = direction_col.radio(
        "Who made contact",
        list(DIRECTIONS),
        format_func=messaging.DIRECTION_LABELS.get,
        horizontal=True,
        key="contact_direction",
    )
    date_col, time_col, follow_col = st.columns(3)
    day = date_col.date_input(
        "Date", key="contact_date", format="DD/MM/YYYY", max_value=messaging.london_now().date()
    )
    time = time_col.time_input("Time (UK)", key="contact_time", step=60)
    follow_up = follow_col.date_input(
        "Follow up on (optional)", value=None, key="contact_follow_up", format="DD/MM/YYYY"
    )
    outcome = st.text_input(
        "Outcome", key="contact_outcome", max_chars=255, placeholder="e.g. Spoke to mum"
    )
    notes = st.text_area("Notes", key="contact_notes", height=120)
    if st.button("Save", type="primary", key="contact_save", icon=":material/save:"):
        run_or_stop("save the contact", require_action, RECORD)
        if day is None or time is None:
            finish("error", "Give the date and time of the contact.")
        try:
            entry_id = record_contact(
                engine,
                student_id=student_id,
                method=str(method),
                actor=actor,
                happened_at=messaging.london_to_utc(day, time),
                contact_id=None if contact_id == messaging.OTHER_CONTACT else contact_id,
                contact_name=other.strip() or messaging.contact_name(options, contact_id),
                direction=str(direction),
                outcome=outcome,
                notes=notes,
                follow_up_on=messaging.follow_up_datetime(follow_up),
            )
        except LogbookError as exc:
            finish("error", f"Not saved: {exc}")
        except Exception as exc:
            log.exception("Could not record a contact")
            finish(
                "error", f"Not saved: {messaging.problem_text(exc)[0]}. Tell your administrator."
            )
        finish("success", f"Saved (entry {entry_id}).", clear=True)


def history_section(engine: Any, student_id: str) -> None:
    st.subheader("Contact history")
    history = run_or_stop("read the contact history", contact_history, engine, student_id)
    if history.empty:
        st.info("No contacts recorded for this pupil yet.")
    else:
        shown = messaging.in_london(history, "happened_at", "follow_up_on")
        shown["follow_up_on"] = shown["follow_up_on"].dt.date
        shown = shown.drop(columns=["id", "student_id"])
        st.dataframe(
            shown,
            key="contact_history",
            hide_index=True,
            width="stretch",
            column_config={
                "happened_at": st.column_config.DatetimeColumn("When", format="DD/MM/YYYY HH:mm"),
                "contact_id": "Contact",
                "contact_name": "With",
                "method": "How",
                "direction": "Direction",
                "outcome": "Outcome",
                "notes": "Notes",
                "follow_up_on": st.column_config.DateColumn("Follow up", format="DD/MM/YYYY"),
                "created_by": "Recorded by",
            },
        )
        download(shown, f"contacts-{student_id}.csv", "contact_history_csv")
    st.subheader("Pastoral log")
    pastoral = run_or_stop("read the pastoral log", pastoral_history, engine, student_id, 50)
    if pastoral.empty:
        st.caption("No pastoral log entries for this pupil.")
    else:
        shown = messaging.in_london(pastoral, "at").drop(columns=["id", "student_id"])
        st.dataframe(
            shown,
            key="contact_pastoral",
            hide_index=True,
            width="stretch",
            column_config={
                "at": st.column_config.DatetimeColumn("When", format="DD/MM/YYYY HH:mm"),
                "kind": "Kind",
                "summary": "Summary",
                "message_id": "Message",
                "created_by": "By",
            },
        )
        download(shown, f"pastoral-log-{student_id}.csv", "contact_pastoral_csv")
    st.subheader("Messages about this pupil")
    sent = run_or_stop("read the messages", message_log, engine, student_id=student_id, limit=50)
    if sent.empty:
        st.caption("No messages have been sent about this pupil.")
    else:
        shown = messaging.log_table(sent)[
            ["created_at", "channel", "status", "to_address", "body", "created_by"]
        ]
        st.dataframe(
            shown,
            key="contact_messages",
            hide_index=True,
            width="stretch",
            column_config={
                "created_at": st.column_config.DatetimeColumn("Created", format="DD/MM/YYYY HH:mm"),
                "channel": "Channel",
                "status": "Status",
                "to_address": "To",
                "body": "Message",
                "created_by": "Sent by",
            },
        )
        download(shown, f"messages-{student_id}.csv", "contact_messages_csv")


def main() -> None:
    """The page."""
    actor = require_page("record_contact").email
    st.title("Record a contact")
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    if generation is None:
        no_data_state()
        return
    engine = get_ops_engine()
    folder = data_dir()
    show_result()
    prepare_fields()
    labels = run_or_stop("read the list of pupils", pupil_labels_for, folder, generation)
    student_id = st.selectbox(
        "Pupil",
        list(labels),
        index=None,
        format_func=labels.__getitem__,
        placeholder="Type a name or student id",
        key=PUPIL,
    )
    if student_id is None:
        st.info("Choose the pupil the contact was about.")
        return
    contacts = run_or_stop(
        "read the pupil's contacts", contacts_for, folder, generation, student_id
    )
    entry_form(engine, actor, student_id, contacts)
    st.divider()
    history_section(engine, student_id)


main()
