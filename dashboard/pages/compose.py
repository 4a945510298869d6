"""Compose: choose pupils, write or pick a message, preview who gets what, then queue it.

Nothing is sent from here: Send puts the previewed plan in the outbox (one batch) and
the dispatcher sends it; the page follows the batch's progress.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import messaging
from dashboard.common import (
    _warehouse_for,
    current_generation,
    data_dir,
    get_ops_engine,
    get_settings,
    get_warehouse,
    no_data_state,
    page_link_or_text,
    require_action,
    require_page,
    run_or_stop,
    signed_in_user,
    user_can,
)
from reports import recipients
from reports.contacts import school_order
from schoolcomms.roles import PermissionDenied
from senders import segments
from senders.bank import list_templates
from senders.compose import ComposeError, Plan, plan_send
from senders.messengers import where_messages_go
from senders.outbox import batch_progress
from senders.recipients import RecipientRule
from senders.templates import TemplateProblem

log = logging.getLogger(__name__)

SENT = "compose_sent"  # request key → batch id, for every batch queued in this session
PLAN = "compose_plan"
PLAN_FOR = "compose_plan_for"  # the fingerprint of the inputs the plan was made from
PLAN_PROBLEMS = "compose_plan_problems"
BATCH = "compose_batch"
OUTCOME = "compose_outcome"
SEND_PROBLEM = "compose_send_problem"
PREFILL = "compose_prefill"  # set by other pages (see the working agreement), read once here
PREFILLED = "compose_prefilled"  # the prefill applied: its pupils and where they came from
PASTE = "compose_paste_ids"
SOURCES = {"template": "A template from the message bank", "text": "Write the message"}
POLL_SECONDS = 2


@st.cache_data(ttl=300, show_spinner=False)
def pupils_for(folder: str, generation: int) -> pd.DataFrame:
    """:func:`reports.recipients.pupil_picker` for ``generation`` of ``folder``, in
    school order (:func:`dashboard.messaging.school_sorted`)."""
    return messaging.school_sorted(recipients.pupil_picker(_warehouse_for(folder)))


@st.cache_data(ttl=300, show_spinner=False)
def pupil_options(folder: str, generation: int) -> dict[str, list[str]]:
    """The forms and year groups of :func:`pupils_for`, in school order."""
    pupils = pupils_for(folder, generation)
    return {column: options(pupils, column) for column in ("form", "year_group")}


def apply_prefill() -> None:
    """Take a prefill another page left (once): its pupils, channel, template or text.

    The pupils go into the pasted ids (so they show whatever the table's filters), the
    table selection and any earlier preview are cleared: it is a new message.
    """
    state = st.session_state
    raw = state.pop(PREFILL, None)
    if raw is None:
        return
    prefill = messaging.read_prefill(raw)
    for key in [k for k in state if str(k).startswith("compose_pupils_")]:
        del state[key]
    for key in (PLAN, PLAN_FOR, PLAN_PROBLEMS, BATCH, OUTCOME, SEND_PROBLEM):
        state.pop(key, None)
    state[PASTE] = "\n".join(prefill.student_ids)
    channel = prefill.channel or state.get("compose_channel") or "sms"
    state["compose_channel"] = channel
    if prefill.body is not None:
        state["compose_body"] = prefill.body
    if prefill.subject is not None:
        state["compose_subject"] = prefill.subject
    if prefill.template is not None:
        state["compose_source"] = "template"
        state[f"compose_template_{channel}"] = prefill.template
    elif prefill.body is not None:
        state["compose_source"] = "text"
    state["compose_to"] = "pupils" if prefill.to_pupils else "contacts"
    state[PREFILLED] = prefill


def prefill_notice(pasted: list[str]) -> None:
    """Say where the pupils came from, while the pasted ids are still the ones handed over."""
    prefill = st.session_state.get(PREFILLED)
    if not isinstance(prefill, messaging.Prefill):
        return
    if list(prefill.student_ids) != pasted:
        st.session_state.pop(PREFILLED, None)
        return
    st.info(prefill.arrival, icon=":material/input:")
    for problem in prefill.problems:
        st.warning(problem)


def options(frame: pd.DataFrame, column: str) -> list[str]:
    return school_order([str(v) for v in frame[column].dropna().unique() if str(v).strip()])


def pupils_section(folder: str, generation: int, *, bulk: bool) -> list[str]:
    """The pupil table with filters, plus pasted or uploaded ids; the ids chosen.

    Without ``bulk`` (a teacher), the table selects one pupil at a time.
    """
    st.subheader("1. Pupils")
    if not bulk:
        st.caption("Your account may message one pupil's parents at a time: choose one pupil.")
    pupils = run_or_stop("read the list of pupils", pupils_for, folder, generation)
    choices = run_or_stop("read the list of pupils", pupil_options, folder, generation)
    form_col, year_col, name_col = st.columns(3)
    forms = form_col.multiselect("Form", choices["form"], key="compose_forms")
    years = year_col.multiselect("Year group", choices["year_group"], key="compose_years")
    search = name_col.text_input("Name or id contains", key="compose_search")
    shown = messaging.filter_pupils(
        pupils, forms=forms, year_groups=years, search=search, in_school_order=True
    )
    st.caption(
        f"{len(shown):,} of {len(pupils):,} current pupils shown. Tick the pupils to message; "
        "changing the filters starts a new selection (choose several forms to pick across them)."
    )
    event = st.dataframe(
        shown,
        key=messaging.picker_key(forms, years, search),
        on_select="rerun",
        selection_mode="multi-row" if bulk else "single-row",
        hide_index=True,
        width="stretch",
        height=300,
        column_config={
            "student_id": "Student ID",
            "name": "Name",
            "form": "Form",
            "year_group": "Year",
        },
    )
    from_table = messaging.selected_ids(shown, event)
    with st.expander("Or paste or upload student ids", expanded=bool(st.session_state.get(PASTE))):
        pasted = messaging.parse_student_ids(
            st.text_area(
                "Student ids",
                key=PASTE,
                help="One id a line, or separated by commas or spaces.",
            )
        )
        uploaded = st.file_uploader(
            "A list of student ids (CSV with a student_id column, or one id a line)",
            type=["csv", "txt"],
            key="compose_upload_ids",
        )
        from_file: list[str] = []
        if uploaded is not None:
            try:
                from_file = messaging.ids_from_file(uploaded.name, uploaded.getvalue())
            except ValueError as exc:
                st.error(str(exc))
    chosen = list(dict.fromkeys([*from_table, *pasted, *from_file]))
    prefill_notice(pasted)
    if chosen:
        names = dict(zip(pupils["student_id"].astype(str), pupils["name"], strict=False))
        listed = ", ".join(f"{names.get(i, i)} ({i})" for i in chosen[:12])
        more = f" and {len(chosen) - 12} more" if len(chosen) > 12 else ""
        st.markdown(f"**{len(chosen)} pupil(s) chosen:** {listed}{more}")
        unknown = [i for i in chosen if i not in names]
        if unknown:
            st.warning(
                f"Not current pupils in the loaded data: {', '.join(unknown[:20])}. "
                "They are listed as left out in the preview."
            )
    else:
        st.caption("No pupils chosen yet.")
    if not bulk and len(chosen) > 1:
        st.error(
            f"{len(chosen)} pupils are chosen, but your account may message one pupil's "
            "parents at a time. Keep one pupil (clear the pasted ids or the selection); "
            "an attendance officer or the office can message several families at once.",
            icon=":material/block:",
        )
    return chosen


def sms_counter(body: str, price: float) -> None:
    """The live SMS counter for free text: parts, characters, encoding, cost."""
    estimate = segments.estimate(body or "", price)
    a, b, c, d = st.columns(4)
    a.metric("Texts (segments)", estimate["segments"])
    b.metric("Characters", estimate["characters"])
    c.metric("Characters left", estimate["remaining"], help="Before another text is needed.")
    d.metric("Cost per message", f"{estimate['cost_pence']:g}p")
    encoding = "GSM-7" if estimate["encoding"] == "gsm7" else "Unicode (UCS-2)"
    st.caption(
        f"{estimate['summary']}. Encoding: {encoding}. Merge fields are counted as typed; "
        "the preview counts each real message."
    )
    for note in estimate["notes"]:
        st.caption(f"Before sending: {note}.")
    if estimate["saved_pence"]:
        st.caption(f"Making punctuation plain saves {estimate['saved_pence']:g}p per message.")
    if estimate["non_gsm"]:
        st.warning(
            "These characters make the text Unicode (70 characters a text instead of 160): "
            + " ".join(estimate["non_gsm"])
        )


def message_section(engine: Any, settings: Any, channel: str) -> dict[str, Any]:
    """Template or free text; returns template, body and subject."""
    st.subheader("2. Message")
    source = st.radio(
        "Message",
        list(SOURCES),
        format_func=SOURCES.get,
        horizontal=True,
        key="compose_source",
        label_visibility="collapsed",
    )
    label = messaging.CHANNEL_LABELS[channel]
    if source == "template":
        templates = run_or_stop("read the message bank", list_templates, engine, channel)
        if templates.empty:
            st.info(
                f"There are no {label} templates in the message bank yet. Add some on the "
                "Message bank page, or choose **Write the message**."
            )
            page_link_or_text(
                messaging.MESSAGE_BANK_PAGE, "Message bank", ":material/library_books:"
            )
            return {"template": None, "body": None, "subject": None, "missing": True}
        rows = {r["name"]: r for r in templates.to_dict("records")}
        wanted = st.session_state.get(f"compose_template_{channel}")
        if wanted is not None and wanted not in rows:
            st.session_state.pop(f"compose_template_{channel}")
            st.warning(
                f"The template {wanted!r} is not among the {label} templates of the message "
                "bank; choose one below or write the message."
            )
        name = st.selectbox(
            f"{label} template",
            list(rows),
            key=f"compose_template_{channel}",
            format_func=lambda n: f"{n} ({rows[n]['category']})",
        )
        row = rows[name]
        if row["subject"]:
            st.markdown(f"**Subject:** {row['subject']}")
        st.code(row["body"], language=None, wrap_lines=True)
        st.caption("Merge fields are filled in for each family in the preview.")
        return {"template": name, "body": None, "subject": None, "missing": False}
    subject = None
    if channel != "sms":
        subject = st.text_input(
            "Subject" if channel == "email" else "Heading (optional)",
            key="compose_subject",
            help="Merge fields allowed, e.g. {{ student.name }}.",
        )
    body = st.text_area(
        "Message text",
        key="compose_body",
        height=150,
        help="Merge fields are written like {{ contact.name }} or {{ student.forename }}; "
        "see the Message bank page for the full list.",
    )
    if channel == "sms":
        sms_counter(body, float(settings["sms_pence_per_segment"]))
    return {"template": None, "body": body, "subject": subject, "missing": False}


RECIPIENTS = {"contacts": "Parents and carers", "pupils": "The pupils (their own e-mail)"}


def rule_section(channel: str) -> tuple[int, bool, bool]:
    """Who receives it: contacts up to a priority, or (e-mail) the pupils themselves."""
    st.subheader("3. Who receives it")
    to_pupils = False
    if channel == "email":
        to = st.radio(
            "Send to",
            list(RECIPIENTS),
            format_func=RECIPIENTS.get,
            horizontal=True,
            key="compose_to",
        )
        to_pupils = to == "pupils"
    if to_pupils:
        st.caption(
            "Each pupil at their own e-mail address from the students extract. Pupils "
            "without one are listed with the reason in the preview."
        )
        return 1, False, True
    priority_col, pr_col = st.columns(2)
    max_priority = priority_col.number_input(
        "Contacts up to priority",
        min_value=1,
        max_value=9,
        value=1,
        step=1,
        key="compose_max_priority",
        help="1: each pupil's first contact only; 2: the first two, and so on.",
    )
    pr_only = pr_col.checkbox("Only contacts with parental responsibility", key="compose_pr_only")
    rule = RecipientRule(channel, int(max_priority), bool(pr_only))  # type: ignore[arg-type]
    st.caption(
        f"Each pupil's {rule.describe()}. Contacts who cannot be reached (no consent, no "
        "number or address, opted out) are listed with the reason in the preview."
    )
    return int(max_priority), bool(pr_only), False


def make_plan(
    settings: Any, warehouse: Any, engine: Any, inputs: messaging.ComposeInputs, actor: str
) -> tuple[Plan | None, list[str]]:
    """The plan, or the problems in words."""
    from schoolcomms.warehouse import WarehouseError

    try:
        return plan_send(settings, warehouse, engine, inputs.composition(actor)), []
    except (ComposeError, TemplateProblem, WarehouseError) as exc:
        return None, messaging.problem_text(exc)


def show_plan(plan: Plan) -> None:
    st.subheader("Preview")
    channel = plan.composition.channel
    a, b, c = st.columns(3)
    a.metric("Messages", len(plan.messages))
    b.metric("Left out", len(plan.excluded))
    c.metric(
        "Total cost",
        messaging.pounds(plan.total_cost_pence) if channel == "sms" else "no charge",
        help="SMS: segments × the setting sms_pence_per_segment.",
    )
    for note in plan.notes:
        st.caption(f"Made plain before sending: {note}.")
    if plan.over_budget:
        st.warning(
            f"This SMS batch would cost about {messaging.pounds(plan.total_cost_pence)}, more "
            f"than the {messaging.pounds(plan.budget_pence)} one batch may cost without "
            "confirmation (setting sms_batch_budget_pence). Tick the confirmation below to "
            "send it, or choose fewer pupils.",
            icon=":material/warning:",
        )
    if plan.messages:
        st.dataframe(
            messaging.messages_table(plan),
            hide_index=True,
            width="stretch",
            key="compose_messages",
            column_config={
                "students": "About",
                "contact": "To",
                "to": "Address",
                "subject": "Subject",
                "body": "Message",
                "segments": "Texts",
                "encoding": "Encoding",
                "cost_pence": st.column_config.NumberColumn("Cost (p)", format="%.1f"),
            },
        )
        index = st.selectbox(
            "Read one message in full",
            list(range(len(plan.messages))),
            format_func=lambda i: messaging.message_label(plan, i),
            key="compose_view_message",
        )
        if index is not None and index < len(plan.messages):
            message = plan.messages[index]
            if channel == "letter":
                st.text(message.to)
            if message.subject:
                st.markdown(f"**Subject:** {message.subject}")
            st.code(message.body, language=None, wrap_lines=True)
            if message.segments:
                st.caption(
                    f"{message.segments} text(s), {message.encoding}, {message.cost_pence:g}p."
                )
    else:
        st.error("Nobody can be sent this message: every contact was left out (see below).")
    if plan.excluded:
        st.markdown("**Left out, and why**")
        st.dataframe(
            messaging.exclusions_table(plan),
            hide_index=True,
            width="stretch",
            key="compose_excluded",
            column_config={
                "student_id": "Student ID",
                "contact_id": "Contact",
                "reason": "Reason",
            },
        )
    else:
        st.caption("Nobody was left out.")


def send_section(engine: Any, settings: Any, plan: Plan, actor: str) -> None:
    state = st.session_state
    sent = state.setdefault(SENT, {})
    already = sent.get(plan.composition.request_key)
    confirmed = False
    roles = signed_in_user().roles
    if plan.over_budget:
        allowed = messaging.may_confirm_over_budget(roles)
        confirmed = st.checkbox(
            f"I confirm this batch may cost about {messaging.pounds(plan.total_cost_pence)}",
            key="compose_confirm_budget",
            disabled=not allowed or already is not None,
            help=None if allowed else f"Only an {messaging.over_budget_roles()} can confirm this.",
        )
    if st.button(
        "Send",
        type="primary",
        key="compose_send",
        disabled=not plan.messages,
        icon=":material/send:",
        help="Puts these messages in the outbox as one batch; pressing it again for the "
        "same preview queues nothing new.",
    ):
        state.pop(SEND_PROBLEM, None)
        try:
            # Checked again here, on the server: a teacher may send about one pupil only.
            require_action(messaging.send_action(len(plan.composition.student_ids)))
            if plan.composition.channel == "letter":  # letters are printed: their own role
                require_action("letters.print")
            outcome = messaging.send(
                engine,
                settings,
                plan,
                actor=actor,
                over_budget_confirmed=confirmed,
                user_roles=roles,
                sent=sent,
            )
        except PermissionDenied as exc:
            state[SEND_PROBLEM] = [str(exc)]
        except ComposeError as exc:
            state[SEND_PROBLEM] = messaging.problem_text(exc)
        except Exception as exc:  # the ops store failing: say so, never a traceback
            log.exception("Could not queue a send")
            state[SEND_PROBLEM] = [
                f"Could not queue the messages: {messaging.problem_text(exc)[0]}. Look on "
                "the Message history page before trying again, or tell your administrator."
            ]
        else:
            state[BATCH] = outcome.batch_id
            state[OUTCOME] = (outcome.queued, outcome.message)
    if state.get(SEND_PROBLEM):
        st.error(" ".join(state[SEND_PROBLEM]), icon=":material/block:")


def show_progress(progress: dict[str, Any]) -> None:
    """A batch's progress: a bar, counts per status, and its state in words."""
    st.progress(
        min(1.0, max(0.0, float(progress["fraction"]))), text=messaging.progress_summary(progress)
    )
    counts = progress["counts"]
    columns = st.columns(len(counts))
    for column, (status, n) in zip(columns, counts.items(), strict=True):
        column.metric(messaging.STATUS_LABELS.get(status, status), n)
    state, total = progress["state"], progress["total"]
    if state == "paused":
        st.warning(
            f"The batch is paused: {progress['state_reason'] or 'no reason given'}. "
            "Resume it on the Message history page.",
            icon=":material/pause_circle:",
        )
    elif state == "cancelled":
        st.info(f"The batch was cancelled: {progress['state_reason']}.")
    elif messaging.progress_done(progress):
        failed = counts.get("failed", 0)
        done = counts.get("sent", 0) + counts.get("delivered", 0)
        if total == 0:
            st.info(progress["state_reason"] or "Nothing new to send.")
        elif failed:
            st.warning(
                f"Finished: {done} of {total} sent, {failed} failed. Failed messages can be "
                "retried on the Message history page."
            )
        else:
            st.success(f"All {total} message(s) sent.", icon=":material/check_circle:")
    else:
        st.caption(
            "Queued messages are sent by the scheduler (or `schoolcomms dispatch`). This "
            f"updates every {POLL_SECONDS} seconds."
        )


@st.fragment(run_every=POLL_SECONDS)
def live_progress(batch_id: int) -> None:
    """The progress, polled every two seconds until the batch is finished."""
    progress = run_or_stop("read the batch's progress", batch_progress, get_ops_engine(), batch_id)
    show_progress(progress)
    if messaging.progress_done(progress):
        st.rerun()  # the whole page, which then shows the final state without polling


def progress_section(engine: Any, batch_id: int) -> None:
    st.subheader(f"Batch {batch_id}")
    outcome = st.session_state.get(OUTCOME)
    if outcome:
        queued, message = outcome
        (st.success if queued else st.info)(message, icon=":material/outbox:")
    progress = run_or_stop("read the batch's progress", batch_progress, engine, batch_id)
    if messaging.progress_done(progress):
        show_progress(progress)
    else:
        live_progress(batch_id)
    page_link_or_text(messaging.MESSAGE_HISTORY_PAGE, "Message history", ":material/history:")
    if st.button("Start a new message", key="compose_new"):
        for key in (PLAN, PLAN_FOR, PLAN_PROBLEMS, BATCH, OUTCOME, SEND_PROBLEM):
            st.session_state.pop(key, None)
        st.rerun()


def main() -> None:
    """The page."""
    actor = require_page("compose").email
    st.title("Compose a message")
    apply_prefill()
    settings = get_settings()
    warehouse = get_warehouse()
    generation = current_generation(warehouse)
    if generation is None:
        no_data_state()
        return
    engine = get_ops_engine()
    state = st.session_state

    channel = st.radio(
        "Channel",
        list(messaging.CHANNEL_LABELS),
        format_func=messaging.CHANNEL_LABELS.get,
        horizontal=True,
        key="compose_channel",
    )
    st.info(where_messages_go(settings)[channel], icon=":material/info:")

    bulk = user_can("send.bulk")
    student_ids = pupils_section(data_dir(), generation, bulk=bulk)
    too_many = not bulk and len(student_ids) > 1
    message = message_section(engine, settings, channel)
    max_priority, pr_only, to_pupils = rule_section(channel)
    inputs = messaging.ComposeInputs(
        channel=channel,
        student_ids=tuple(student_ids),
        template=message["template"],
        body=message["body"],
        subject=message["subject"],
        max_priority=max_priority,
        parental_responsibility_only=pr_only,
        to_pupils=to_pupils,
    )
    fingerprint = inputs.fingerprint()

    st.divider()
    if st.button(
        "Preview",
        key="compose_preview",
        icon=":material/preview:",
        disabled=message["missing"] or too_many,
        help="Plans the send: who gets what, who is left out and why, and the cost. "
        "Nothing is sent.",
    ):
        for key in (PLAN, PLAN_PROBLEMS, BATCH, OUTCOME, SEND_PROBLEM):
            state.pop(key, None)
        with st.spinner("Planning…"):
            plan, problems = run_or_stop(
                "plan the message", make_plan, settings, warehouse, engine, inputs, actor
            )
        state[PLAN], state[PLAN_FOR], state[PLAN_PROBLEMS] = plan, fingerprint, problems

    if state.get(PLAN_PROBLEMS):
        problems = state[PLAN_PROBLEMS]
        st.error(
            "The message cannot be planned:\n\n" + "\n".join(f"- {p}" for p in problems),
            icon=":material/block:",
        )
    plan = state.get(PLAN)
    if plan is not None:
        if state.get(PLAN_FOR) != fingerprint:
            st.info(
                "You changed the pupils, the message or the recipients since the preview: "
                "press **Preview** again to see what will be sent."
            )
        else:
            show_plan(plan)
            send_section(engine, settings, plan, actor)
    if state.get(BATCH) is not None:
        progress_section(engine, int(state[BATCH]))


main()
