"""Message history: every message and batch, what happened to it, and what it cost.

Failed messages can be retried, queued batches cancelled, paused and resumed; nothing
is sent from here (the dispatcher sends what is queued).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import cached, messaging
from dashboard.common import (
    data_dir,
    download,
    get_ops_engine,
    get_settings,
    may,
    require_action,
    require_page,
    run_or_stop,
    signed_in_user,
    user_can,
)
from reports import messages as message_reports
from schoolcomms.ops.models import MESSAGE_STATUSES
from senders.messengers import where_messages_go
from senders.outbox import (
    cancel_batch,
    message_log,
    pause_batch,
    resume_batch,
    retry_failed,
)

log = logging.getLogger(__name__)

RESULT = "history_result"
ALL = "all"
EVERYONE = "everyone"
PERIODS = {3: "Last 3 months", 6: "Last 6 months", 12: "Last 12 months", 24: "Last 2 years"}
LOG_LIMIT = 5000
MANAGE = "batch.manage"  # retry, cancel, pause, resume: re-checked when each runs
PRINT = "letters.print"  # re-checked when the letters are downloaded
BATCH_COLUMNS = [
    "id",
    "created_at",
    "created_by",
    "channel",
    "template_name",
    "state",
    "progress",
    "total",
    "sent",
    "delivered",
    "failed",
    "queued",
    "cancelled",
    "excluded",
    "cost_pence",
    "state_reason",
]


def act(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an action if the account may manage batches now; else show why, in words."""
    try:
        require_action(MANAGE)
        return fn(*args, **kwargs)
    except (LookupError, ValueError, PermissionError) as exc:
        message = f"Could not {what}: {messaging.problem_text(exc)[0]}"
    except Exception as exc:
        log.exception("Could not %s", what)
        message = (
            f"Could not {what}: {messaging.problem_text(exc)[0]}. Tell your administrator "
            "if it happens again."
        )
    done("error", message)


def done(kind: str, message: str) -> NoReturn:
    """Keep the result of an action and show the page again with fresh data."""
    st.session_state[RESULT] = (kind, message)
    st.rerun()


def show_result() -> None:
    """The result of the last action, shown once."""
    result = st.session_state.pop(RESULT, None)
    if result:
        kind, message = result
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)


def filters(engine: Any, batches: pd.DataFrame) -> dict[str, Any]:
    today = messaging.london_now().date()
    a, b, c = st.columns(3)
    dates = a.date_input(
        "Created between",
        value=(today - dt.timedelta(days=30), today),
        max_value=today,
        format="DD/MM/YYYY",
        key="history_dates",
    )
    if isinstance(dates, tuple | list):
        start = dates[0] if dates else today
        end = dates[1] if len(dates) > 1 else start
    else:
        start = end = dates or today
    since, until = messaging.day_bounds(start, end)
    channel = b.selectbox(
        "Channel",
        [ALL, *messaging.CHANNEL_LABELS],
        format_func=lambda c: "All channels" if c == ALL else messaging.CHANNEL_LABELS[c],
        key="history_channel",
    )
    statuses = c.multiselect(
        "Status",
        list(MESSAGE_STATUSES),
        format_func=messaging.STATUS_LABELS.get,
        key="history_status",
        placeholder="Any status",
    )
    d, e, f = st.columns(3)
    staff = run_or_stop("list who sent messages", message_reports.senders_of_messages, engine)
    created_by = d.selectbox(
        "Sent by",
        [EVERYONE, *staff],
        format_func=lambda s: "Everyone" if s == EVERYONE else s,
        key="history_staff",
    )
    pupil = e.text_input("Pupil (student id)", key="history_pupil").strip()
    rows = {int(r["id"]): r for r in batches.to_dict("records")}
    batch = f.selectbox(
        "Batch",
        [ALL, *rows],
        format_func=lambda b: "All batches" if b == ALL else messaging.batch_label(rows[b]),
        key="history_batch",
    )
    return {
        "since": since,
        "until": until,
        "channel": None if channel == ALL else channel,
        "status": list(statuses) or None,
        "created_by": None if created_by == EVERYONE else created_by,
        "student_id": pupil or None,
        "batch_id": None if batch == ALL else int(batch),
    }


def messages_section(engine: Any, actor: str, chosen: dict[str, Any]) -> None:
    st.subheader("Messages")
    log_frame = run_or_stop("read the message log", message_log, engine, limit=LOG_LIMIT, **chosen)
    if log_frame.empty:
        st.info(
            "No messages match these filters. Messages appear here as soon as they are "
            "queued, from the Compose page, the command line or the scheduler."
        )
        return
    shown = messaging.log_table(log_frame)
    more = " (the newest; narrow the filters to see older ones)" if len(shown) >= LOG_LIMIT else ""
    may_manage = may(MANAGE, "history_retry")
    st.caption(
        f"{len(shown):,} message(s){more}. Times are UK time."
        + (" Select rows to retry the failed ones among them." if may_manage else "")
    )
    event = st.dataframe(
        shown,
        key="history_messages",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        column_config={
            "id": "Id",
            "created_at": st.column_config.DatetimeColumn("Created", format="DD/MM/YYYY HH:mm"),
            "channel": "Channel",
            "status": "Status",
            "student_id": "Student ID",
            "contact_id": "Contact",
            "to_address": "To",
            "subject": "Subject",
            "body": "Message",
            "error": "Error",
            "attempts": "Attempts",
            "segments": "Texts",
            "cost_pence": st.column_config.NumberColumn("Cost (p)", format="%.1f"),
            "created_by": "Sent by",
            "batch_id": "Batch",
            "sent_at": st.column_config.DatetimeColumn("Sent", format="DD/MM/YYYY HH:mm"),
        },
    )
    failed = messaging.selected_message_ids(shown, event, status="failed")
    selected = messaging.selected_message_ids(shown, event)
    retry_col, download_col = st.columns(2)
    if may_manage and retry_col.button(
        f"Retry {len(failed)} failed message(s)" if failed else "Retry failed messages",
        key="history_retry",
        disabled=not failed,
        icon=":material/replay:",
        help="Select failed messages in the table first; they are queued again at once.",
    ):
        count = act("retry the messages", retry_failed, engine, message_ids=failed, actor=actor)
        done("success", f"{count} failed message(s) queued again.")
    if selected and not failed:
        retry_col.caption("None of the selected messages has failed.")
    download(
        shown,
        "messages.csv",
        "history_download",
        label="Download these messages (CSV)",
        container=download_col,
    )


def batches_section(engine: Any, actor: str, batches: pd.DataFrame) -> None:
    st.subheader("Batches")
    if batches.empty:
        st.info("No batches yet: each send from the Compose page is one batch.")
        return
    shown = messaging.in_london(batches, "created_at", "finished_at")[BATCH_COLUMNS]
    st.dataframe(
        shown,
        key="history_batches",
        hide_index=True,
        width="stretch",
        column_config={
            "id": "Batch",
            "created_at": st.column_config.DatetimeColumn("Created", format="DD/MM/YYYY HH:mm"),
            "created_by": "Sent by",
            "channel": "Channel",
            "template_name": "Template",
            "state": "State",
            "progress": st.column_config.ProgressColumn(
                "Progress", min_value=0.0, max_value=1.0, format="percent"
            ),
            "total": "Messages",
            "sent": "Sent",
            "delivered": "Delivered",
            "failed": "Failed",
            "queued": "Queued",
            "cancelled": "Cancelled",
            "excluded": "Left out",
            "cost_pence": st.column_config.NumberColumn("Cost (p)", format="%.1f"),
            "state_reason": "Why",
        },
    )
    download(shown, "batches.csv", "history_batches_csv")
    rows = {int(r["id"]): r for r in batches.to_dict("records")}
    batch_id = st.selectbox(
        "Manage a batch" if user_can(MANAGE) else "Batch",
        list(rows),
        format_func=lambda b: messaging.batch_label(rows[b]),
        key="history_manage_batch",
    )
    if batch_id is None:
        return
    row = rows[batch_id]
    state = row["state"]
    document = row.get("document_path")
    letters = Path(document) if isinstance(document, str) and document else None
    if letters is not None and letters.is_file():
        letters_download(batch_id, letters)
    if not may(MANAGE, "history_pause", "history_resume", "history_retry_batch", "history_cancel"):
        st.caption(
            "Your account may follow batches here but not pause, resume, retry or cancel them."
        )
        return
    pause_col, resume_col, retry_col, cancel_col = st.columns(4)
    if pause_col.button(
        "Pause", key="history_pause", disabled=state != "running", icon=":material/pause:"
    ):
        if act("pause the batch", pause_batch, engine, batch_id, actor):
            done("success", f"Batch {batch_id} paused: nothing more is sent until it is resumed.")
        done("info", f"Batch {batch_id} was not running, so it was not paused.")
    if resume_col.button(
        "Resume", key="history_resume", disabled=state != "paused", icon=":material/play_arrow:"
    ):
        if act("resume the batch", resume_batch, engine, batch_id, actor):
            done("success", f"Batch {batch_id} resumed: its queued messages are due now.")
        done("info", f"Batch {batch_id} was not paused.")
    if retry_col.button(
        f"Retry {row['failed']} failed",
        key="history_retry_batch",
        disabled=not row["failed"] or state == "cancelled",
        icon=":material/replay:",
    ):
        count = act("retry the batch", retry_failed, engine, batch_id=batch_id, actor=actor)
        done("success", f"{count} failed message(s) of batch {batch_id} queued again.")
    open_batch = state in ("running", "paused")
    confirm = cancel_col.checkbox(
        f"Yes, cancel batch {batch_id}",
        key=f"history_confirm_cancel_{batch_id}",
        disabled=not open_batch,
        help="Its queued messages are never sent; messages already sent stay sent.",
    )
    if cancel_col.button(
        "Cancel queued",
        key="history_cancel",
        disabled=not (open_batch and confirm),
        icon=":material/cancel:",
    ):
        count = act("cancel the batch", cancel_batch, engine, batch_id, actor)
        done("success", f"Batch {batch_id} cancelled: {count} queued message(s) will not be sent.")


def letters_download(batch_id: int, letters: Path) -> None:
    """The batch's letters as one PDF, for accounts that may print letters.

    The PDF is read when the button is pressed, after the account's roles are checked
    again in the ops store (:func:`messaging.letters_pdf`): a role taken away while the
    page is open stops the download.
    """
    if not user_can(PRINT):
        st.caption(
            f"The letters of batch {batch_id} are ready; your account may not print "
            "letters, so ask someone who may (the office, for example)."
        )
        return
    engine, user_id = get_ops_engine(), signed_in_user().user_id
    st.download_button(
        f"Download the letters of batch {batch_id} (PDF, ready to print)",
        data=lambda: messaging.letters_pdf(engine, user_id, letters),
        file_name=letters.name,
        mime="application/pdf",
        key=f"history_letters_{batch_id}",
        icon=":material/print:",
    )


def charts_section(engine: Any) -> None:
    st.subheader("Activity")
    months = st.selectbox(
        "Period", list(PERIODS), index=2, format_func=PERIODS.get, key="history_period"
    )
    today = messaging.london_now().date()
    first = (today.replace(day=1) - pd.DateOffset(months=int(months) - 1)).date()
    since, _ = messaging.day_bounds(first, first)
    activity = run_or_stop("read the message activity", cached.message_activity, data_dir(), since)
    if activity.empty:
        st.info("No messages in this period yet.")
        return
    cost_col, channel_col = st.columns(2)
    cost = message_reports.sms_cost_by_month(activity)
    with cost_col:
        st.markdown("**SMS cost by month** (sent and delivered texts)")
        if cost.empty:
            st.caption("No texts were sent in this period.")
        else:
            chart = (
                alt.Chart(cost)
                .mark_bar()
                .encode(
                    x=alt.X("yearmonth(month):O", title="Month"),
                    y=alt.Y("cost_pounds:Q", title="Cost (£)"),
                    tooltip=[
                        alt.Tooltip("yearmonth(month):O", title="Month"),
                        alt.Tooltip("messages:Q", title="Texts"),
                        alt.Tooltip("segments:Q", title="Segments"),
                        alt.Tooltip("cost_pounds:Q", title="Cost (£)", format=",.2f"),
                    ],
                )
            )
            st.altair_chart(chart, width="stretch")
    by_channel = message_reports.messages_by(activity, "month", "channel")
    with channel_col:
        st.markdown("**Messages by channel**")
        chart = (
            alt.Chart(by_channel)
            .mark_bar()
            .encode(
                x=alt.X("yearmonth(month):O", title="Month"),
                y=alt.Y("messages:Q", title="Messages"),
                color=alt.Color("channel:N", title="Channel"),
                tooltip=[
                    alt.Tooltip("yearmonth(month):O", title="Month"),
                    alt.Tooltip("channel:N", title="Channel"),
                    alt.Tooltip("messages:Q", title="Messages"),
                ],
            )
        )
        st.altair_chart(chart, width="stretch")
    by_status = message_reports.messages_by(activity, "channel", "status")
    by_staff = message_reports.messages_by(activity, "created_by")
    with st.expander("Counts by status and by member of staff"):
        left, right = st.columns(2)
        left.dataframe(by_status, hide_index=True, width="stretch", key="history_by_status")
        with left:
            download(by_status, "messages-by-status.csv", "history_by_status_csv")
        right.dataframe(by_staff, hide_index=True, width="stretch", key="history_by_staff")
        with right:
            download(by_staff, "messages-by-staff.csv", "history_by_staff_csv")


def main() -> None:
    """The page."""
    actor = require_page("message_history").email
    st.title("Message history")
    settings = get_settings()
    engine = get_ops_engine()
    with st.expander("Where messages go", expanded=False):
        for line in where_messages_go(settings).values():
            st.markdown(f"- {line}")
    show_result()
    batches = run_or_stop("list the batches", message_reports.batch_list, engine, limit=200)
    chosen = filters(engine, batches)
    messages_section(engine, actor, chosen)
    st.divider()
    batches_section(engine, actor, batches)
    st.divider()
    charts_section(engine)


main()
