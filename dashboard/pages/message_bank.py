"""Message bank: the school's templates — write, check with sample values, save, archive."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import streamlit as st

from dashboard import messaging
from dashboard.common import (
    download,
    get_ops_engine,
    get_settings,
    may,
    require_action,
    require_page,
    run_or_stop,
)
from schoolcomms.ops.models import CHANNELS
from senders import segments
from senders.bank import (
    archive_template,
    get_template,
    list_templates,
    save_template,
    seed_default_templates,
)
from senders.templates import MERGE_GROUPS, TemplateProblem

log = logging.getLogger(__name__)

NEW = "__new__"
CHOICE = "bank_choice"
NEXT_CHOICE = "bank_next_choice"  # chosen after a save or archive, set before the widget
RESULT = "bank_result"
FIELDS = ("bank_name", "bank_channel", "bank_category", "bank_subject", "bank_body")
EDIT = "templates.edit"  # re-checked on the server when a save, archive or seed runs


def finish(kind: str, message: str | list[str], choose: str | None = None) -> NoReturn:
    """Keep the result of an action, choose a template, and show the page again."""
    st.session_state[RESULT] = (kind, message)
    if choose is not None:
        st.session_state[NEXT_CHOICE] = choose
    st.rerun()


def show_result() -> None:
    result = st.session_state.pop(RESULT, None)
    if not result:
        return
    kind, message = result
    if kind == "problems":
        st.error(
            "The template was not saved:\n\n" + "\n".join(f"- {p}" for p in message),
            icon=":material/block:",
        )
    else:
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)


def load_choice() -> None:
    """Fill the fields from the chosen template (or blank them for a new one)."""
    state = st.session_state
    name = state.get(CHOICE)
    stored = None
    if name and name != NEW:
        try:
            stored = get_template(get_ops_engine(), name)
        except Exception:
            log.exception("Could not read template %r", name)
    if stored is None:
        state.update(
            bank_name="", bank_channel="sms", bank_category="general", bank_subject="", bank_body=""
        )
    else:
        state.update(
            bank_name=stored.name,
            bank_channel=stored.channel,
            bank_category=stored.category,
            bank_subject=stored.subject or "",
            bank_body=stored.body,
        )


def templates_section(engine: Any, actor: str) -> dict[str, bool]:
    """The list of templates; the names that can be edited → whether each is archived."""
    show_archived = st.toggle("Show archived templates", key="bank_show_archived")
    templates = run_or_stop(
        "read the message bank", list_templates, engine, include_archived=show_archived
    )
    active = templates[~templates["archived"]]
    if active.empty:
        st.info(
            "The message bank is empty. Add the default templates (absence, lateness, "
            "detention, homework, attendance concern, positive news, attendance letter) "
            "to start from, or write your own below.",
            icon=":material/library_add:",
        )
        if may(EDIT, "bank_seed") and st.button(
            "Add the default templates", key="bank_seed", icon=":material/library_add:"
        ):
            run_or_stop("add the default templates", require_action, EDIT)
            try:
                added = seed_default_templates(engine, actor)
            except Exception as exc:
                log.exception("Could not add the default templates")
                finish("error", f"Could not add the default templates: {exc}")
            finish("success", f"Added {len(added)} template(s): {', '.join(added)}.")
    if not templates.empty:
        shown = messaging.in_london(templates, "updated_at")
        columns = ["name", "channel", "category", "subject", "body", "updated_at", "created_by"]
        if show_archived:
            columns.insert(3, "archived")
        st.dataframe(
            shown[columns],
            key="bank_templates",
            hide_index=True,
            width="stretch",
            column_config={
                "name": "Name",
                "channel": "Channel",
                "category": "Category",
                "archived": st.column_config.CheckboxColumn("Archived"),
                "subject": "Subject",
                "body": "Text",
                "updated_at": st.column_config.DatetimeColumn("Changed", format="DD/MM/YYYY HH:mm"),
                "created_by": "Created by",
            },
        )
        download(shown[columns], "message-bank.csv", "bank_templates_csv")
    return dict(zip(templates["name"], templates["archived"].astype(bool), strict=True))


def help_panel() -> None:
    with st.expander("Merge fields you can use", expanded=False):
        st.markdown(
            "Write a merge field in double braces, e.g. `{{ contact.name }}`; it is filled "
            "in for each family when the message is sent. A message about an event "
            "(lesson, incident, detention, homework) only has that event's fields: test "
            "for it with `{% if detention is defined %}…{% endif %}`."
        )
        for group, meaning in MERGE_GROUPS.items():
            st.markdown(f"**{group}** — {meaning}")
        st.dataframe(
            messaging.merge_field_help(), hide_index=True, width="stretch", key="bank_fields"
        )
        st.markdown("**Filters**")
        st.dataframe(messaging.filter_help(), hide_index=True, width="stretch", key="bank_filters")


def preview_panel(settings: Any, channel: str, subject: str | None, body: str) -> None:
    st.markdown("**Preview with sample values**")
    checked = messaging.preview_template(
        channel=channel, subject=subject, body=body, settings=settings
    )
    if checked.problems:
        st.error(
            "This template cannot be used yet:\n\n" + "\n".join(f"- {p}" for p in checked.problems),
            icon=":material/error:",
        )
        return
    if checked.body is None:
        st.caption("Write the text on the left to see it filled in.")
        return
    if checked.subject:
        st.markdown(f"**Subject:** {checked.subject}")
    st.code(checked.body, language=None, wrap_lines=True)
    if channel == "sms":
        estimate = segments.estimate(checked.body, float(settings["sms_pence_per_segment"]))
        st.caption(f"This sample: {estimate['summary']}.")
        for note in estimate["notes"]:
            st.caption(f"Before sending: {note}.")


def editor_section(engine: Any, settings: Any, actor: str, archived: dict[str, bool]) -> None:
    state = st.session_state
    names = list(archived)
    st.subheader("Write or edit a template")
    if NEXT_CHOICE in state:
        state[CHOICE] = state.pop(NEXT_CHOICE)
        load_choice()
    if state.get(CHOICE) not in (NEW, *names):
        state[CHOICE] = NEW
        load_choice()
    for key, default in zip(FIELDS, ("", "sms", "general", "", ""), strict=True):
        state.setdefault(key, default)
    choice = st.selectbox(
        "Template",
        [NEW, *names],
        format_func=lambda n: "A new template" if n == NEW else n,
        key=CHOICE,
        on_change=load_choice,
    )
    left, right = st.columns(2)
    with left:
        name = st.text_input("Name", key="bank_name", max_chars=128)
        channel = st.selectbox(
            "Channel", list(CHANNELS), format_func=messaging.CHANNEL_LABELS.get, key="bank_channel"
        )
        category = st.text_input(
            "Category", key="bank_category", help="e.g. attendance, behaviour, homework, general"
        )
        subject = None
        if channel != "sms":
            subject = st.text_input(
                "Subject" if channel == "email" else "Heading",
                key="bank_subject",
                help="E-mails need one; letters print it as a heading.",
            )
        body = st.text_area("Text", key="bank_body", height=240)
    with right:
        preview_panel(settings, channel, subject, body)
        help_panel()
    if not may(EDIT, "bank_save", "bank_archive"):
        st.info(
            "Your account may read the message bank and try templates out here, but not "
            "save or archive them."
        )
        return
    save_col, archive_col = st.columns(2)
    if save_col.button("Save", type="primary", key="bank_save", icon=":material/save:"):
        run_or_stop("save the template", require_action, EDIT)
        try:
            save_template(
                engine,
                name=name,
                channel=channel,
                subject=subject,
                body=body,
                category=category,
                actor=actor,
            )
        except TemplateProblem as exc:
            finish("problems", list(exc.problems))
        except Exception as exc:
            log.exception("Could not save template %r", name)
            finish("error", f"Could not save the template: {messaging.problem_text(exc)[0]}")
        finish("success", f"Saved the template “{name.strip()}”.", choose=name.strip())
    editing = choice not in (None, NEW) and not archived.get(str(choice), True)
    if archive_col.button(
        "Archive",
        key="bank_archive",
        disabled=not editing,
        icon=":material/archive:",
        help="Hides the template from the lists; saving it again brings it back.",
    ):
        run_or_stop("archive the template", require_action, EDIT)
        try:
            archive_template(engine, str(choice), actor)
        except LookupError as exc:
            finish("error", str(exc))
        finish("success", f"Archived the template “{choice}”.", choose=NEW)


def main() -> None:
    """The page."""
    actor = require_page("message_bank").email
    st.title("Message bank")
    settings = get_settings()
    engine = get_ops_engine()
    show_result()
    archived = templates_section(engine, actor)
    st.divider()
    editor_section(engine, settings, actor, archived)


main()
