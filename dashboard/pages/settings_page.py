"""Settings (admins): every setting with where its value comes from, saved to settings.toml
with an audit row; SMTP and SMS test sends and the SMS credit; referral lists; recipient
groups; staff responsibilities and a link to Users. Nothing here is sent to parents."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import streamlit as st

from dashboard import settings_ui
from dashboard.common import (
    current_generation,
    data_dir,
    download,
    get_ops_engine,
    get_settings,
    get_warehouse,
    page_link_or_text,
    require_action,
    require_page,
    run_or_stop,
    user_can,
)
from schoolcomms.auth import SignedIn
from schoolcomms.settings import Setting, Settings, SettingsError
from schoolcomms.settings_store import CHOICES, SaveRefused, save
from senders.alerts.groups import create_group, delete_group, list_groups, update_group
from senders.alerts.validation import RuleProblem
from senders.messengers import where_messages_go
from senders.referrals import (
    ReferralProblem,
    add_option,
    list_options,
    set_option_enabled,
    update_option,
)
from senders.test_sends import Balance, TestSend, send_test_email, send_test_sms, sms_balance

log = logging.getLogger(__name__)

EDIT = "settings.edit"
TEST_SEND = "settings.test_send"
RESULT = "settings_result"
USERS_PAGE = "pages/users.py"
NEW = "__new__"


def finish(kind: str, message: str | list[str]) -> NoReturn:
    """Keep the outcome of an action and show the page again."""
    st.session_state[RESULT] = (kind, message)
    st.rerun()
    raise AssertionError("unreachable")


def show_result() -> None:
    result = st.session_state.pop(RESULT, None)
    if not result:
        return
    kind, message = result
    if kind == "problems":
        st.error("Not saved:\n\n" + "\n".join(f"- {p}" for p in message), icon=":material/block:")
    else:
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)


# ---- settings forms --------------------------------------------------------------------------


SHOWN_VALUES = "settings_shown_values"  # setting name -> the value its input started from


def setting_widget(settings: Settings, setting: Setting) -> Any:
    """The input for one setting (disabled when it cannot be changed here); its value."""
    name, value = setting.name, settings[setting.name]
    locked = settings_ui.why_locked(settings, name)
    key = f"set_{name}"
    # An input keeps what was typed across runs; when the setting itself changed (saved
    # here or by someone else), start again from the new value, so that an input still
    # showing the old value can never save it back over the new one.
    editable = not (setting.secret or setting.type == "table")  # no secret in the session
    # One dict, not a key a setting: every text or number input reads the whole session
    # state, so each key more costs every input of the page.
    started_from = st.session_state.setdefault(SHOWN_VALUES, {})
    if editable and started_from.get(name, ()) != value:
        st.session_state.pop(key, None)
        started_from[name] = value
    if not editable:
        shown = str(settings_ui.shown_value(settings, name))
        st.text_input(name, value=shown, key=f"show_{name}", disabled=True)
        value = None
    elif name in CHOICES:
        options = list(CHOICES[name]) + ([value] if value not in CHOICES[name] else [])
        value = st.selectbox(
            name, options, index=options.index(value), key=key, disabled=bool(locked)
        )
    elif setting.type == "bool":
        value = st.checkbox(name, value=bool(value), key=key, disabled=bool(locked))
    elif setting.type == "int":
        value = st.number_input(name, value=int(value), step=1, key=key, disabled=bool(locked))
    elif setting.type == "float":
        value = st.number_input(name, value=float(value), key=key, disabled=bool(locked))
    elif settings_ui.is_long(setting, value):
        value = st.text_area(name, value=str(value), key=key, disabled=bool(locked))
    else:
        value = st.text_input(name, value=str(value), key=key, disabled=bool(locked))
    source = settings_ui.source_of(settings, name)
    st.caption(f"{setting.help} — *{source}*" + (f"  \n:lock: {locked}" if locked else ""))
    return value


def settings_form(settings: Settings, title: str, sections: list[str], actor: str) -> None:
    """One form for the settings of ``sections``: change, reset to default, save."""
    items = settings_ui.settings_in(sections)
    if not items:
        return
    form_key = settings_ui.slug(title)
    with st.form(f"settings_{form_key}"):
        entered = {}
        for setting in items:
            value = setting_widget(settings, setting)
            if value is not None and settings_ui.why_locked(settings, setting.name) is None:
                entered[setting.name] = value
        in_file = [s.name for s in items if settings.source(s.name) == "file"]
        resets = st.multiselect(
            "Reset to the default",
            in_file,
            key=f"reset_{form_key}",
            help="Takes these settings out of settings.toml, so their defaults apply again.",
            disabled=not in_file,
        )
        submitted = st.form_submit_button(
            f"Save {title.lower()} settings",
            key=f"save_{form_key}",
            type="primary",
            icon=":material/save:",
            disabled=not user_can(EDIT),
        )
    if submitted:
        save_changes(settings, settings_ui.changes_from(settings, entered, resets), actor)


def save_changes(settings: Settings, changes: dict[str, Any], actor: str) -> None:
    """Save ``changes`` (re-checking the role now), clear the cached settings, show them."""
    if not changes:
        finish("info", "Nothing changed.")
    run_or_stop("save the settings", require_action, EDIT)
    try:
        done = save(settings, changes, actor, get_ops_engine())
    except SaveRefused as exc:
        finish("problems", exc.problems)
    except SettingsError as exc:
        finish("error", f"Not saved: {exc}")
    except Exception as exc:  # the audit row could not be written: the file was put back
        log.exception("Could not save the settings")
        words = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        finish(
            "error",
            f"Not saved, and settings.toml was left as it was: the audit log could not be "
            f"written ({words}). Check the ops store (setting ops_url) and try again.",
        )
    settings_ui.clear_settings_caches()
    if not done:
        finish("info", "Nothing changed.")
    lines = "\n".join(f"- {change.as_text()}" for change in done)
    finish("success", f"Saved to {settings.settings_file}:\n\n{lines}")


# ---- test sends ------------------------------------------------------------------------------


def show_outcome(outcome: TestSend) -> None:
    if not outcome.ok:
        st.error(outcome.message, icon=":material/error:")
    elif outcome.left_the_machine:
        st.success(outcome.message, icon=":material/send:")
    else:
        st.warning(outcome.message, icon=":material/folder:")
    if outcome.balance is not None:
        show_balance(outcome.balance)


def show_balance(balance: Balance) -> None:
    if balance.credit is not None:
        st.metric("SMS credit left", f"{balance.credit:g}")
    st.caption(balance.message)


def email_test(settings: Settings, user: SignedIn) -> None:
    if not user_can(TEST_SEND):
        return
    st.markdown(
        "**Send a test e-mail** with the saved settings above (at once, not via the outbox)"
    )
    to = st.text_input("To", value=user.email, key="test_email_to")
    if st.button("Send a test e-mail", key="test_email_send", icon=":material/outgoing_mail:"):
        run_or_stop("send a test e-mail", require_action, TEST_SEND)
        with st.spinner("Sending…"):
            outcome = send_test_email(settings, to, engine=get_ops_engine(), actor=user.email)
        show_outcome(outcome)


def sms_test(settings: Settings, user: SignedIn) -> None:
    if not user_can(TEST_SEND):
        return
    left, right = st.columns([3, 1])
    with left:
        st.markdown(
            "**Send a test SMS** with the saved settings above (at once, not via the outbox)"
        )
        to = st.text_input("Mobile number", key="test_sms_to", placeholder="07700 900123")
        if st.button("Send a test SMS", key="test_sms_send", icon=":material/sms:"):
            run_or_stop("send a test SMS", require_action, TEST_SEND)
            with st.spinner("Sending…"):
                outcome = send_test_sms(settings, to, engine=get_ops_engine(), actor=user.email)
            show_outcome(outcome)
    with right:
        if st.button("Check the credit", key="sms_balance", icon=":material/savings:"):
            run_or_stop("check the SMS credit", require_action, TEST_SEND)
            show_balance(sms_balance(settings))


# ---- referral lists, recipient groups, staff roles -------------------------------------------


def staff_choices(generation: int | None) -> dict[str, str]:
    return {} if generation is None else settings_ui.staff_names(data_dir(), generation)


def referral_section(generation: int | None, actor: str) -> None:
    st.caption(
        "Who staff can refer a pupil to (e.g. 'Head of Year 9'). Switched-off entries stay "
        "on past referrals but cannot be chosen for new ones. Select one entry to change it."
    )
    engine = get_ops_engine()
    names = staff_choices(generation)
    warehouse = None if generation is None else get_warehouse()
    shown = settings_ui.referral_table(
        run_or_stop("read the referral list", list_options, engine), names
    )
    ids: list[int] = []
    if shown.empty:
        st.info("The referral list is empty: add the first entry below.", icon=":material/add:")
    else:
        event = st.dataframe(
            shown,
            key="referral_options",
            on_select="rerun",
            selection_mode="multi-row",
            hide_index=True,
            width="stretch",
            column_config={
                "id": None,
                "label": "Refer to",
                "staff_id": None,
                "staff": "Member of staff",
                "enabled": st.column_config.CheckboxColumn("On"),
                "updated_by": "Changed by",
            },
        )
        download(shown, "referral-list.csv", "referral_csv")
        ids = [int(shown.iloc[r]["id"]) for r in settings_ui.selected_rows(event, len(shown))]
        left, right = st.columns(2)
        for column, enabled in ((left, True), (right, False)):
            word = "on" if enabled else "off"
            if column.button(
                f"Switch {word} {len(ids)} selected" if ids else f"Switch {word} selected",
                key=f"referral_{word}",
                disabled=not ids,
            ):
                run_or_stop("change the referral list", require_action, EDIT)
                changed = 0
                for option_id in ids:
                    changed += run_or_stop(
                        "change the referral list",
                        set_option_enabled,
                        engine,
                        option_id,
                        enabled,
                        actor,
                    )
                entries = "entry" if changed == 1 else "entries"
                finish("success", f"Switched {word} {changed} referral list {entries}.")
    chosen = shown[shown["id"] == ids[0]].iloc[0].to_dict() if len(ids) == 1 else None
    which = f"{chosen['id']}" if chosen else "new"
    with st.form("referral_form", clear_on_submit=chosen is None):
        st.markdown(f"**Change {chosen['label']!r}**" if chosen else "**Add an entry**")
        label = st.text_input(
            "Refer to (as staff will see it)",
            value=chosen["label"] if chosen else "",
            key=f"referral_label_{which}",
        )
        current = str(chosen["staff_id"]) if chosen else None
        if names:
            options = list(dict.fromkeys([*names, *([current] if current else [])]))
            staff_id = st.selectbox(
                "Member of staff",
                options,
                index=options.index(current) if current else None,
                format_func=lambda s: names.get(s, s),
                placeholder="Choose a member of staff",
                key=f"referral_staff_{which}",
            )
        else:
            staff_id = st.text_input("Staff id", value=current or "", key=f"referral_id_{which}")
        submitted = st.form_submit_button(
            "Save the change" if chosen else "Add to the referral list", key="referral_save"
        )
    if submitted:
        run_or_stop("change the referral list", require_action, EDIT)
        try:
            if chosen:
                update_option(
                    engine,
                    int(chosen["id"]),
                    actor=actor,
                    label=label,
                    staff_id=staff_id or "",
                    warehouse=warehouse,
                )
            else:
                add_option(
                    engine, label=label, staff_id=staff_id or "", actor=actor, warehouse=warehouse
                )
        except ReferralProblem as exc:
            finish("error", f"Not saved: {exc}")
        verb = "Saved" if chosen else "Added"
        finish("success", f"{verb} {label.strip()!r} on the referral list.")


def load_group(groups: list[dict[str, Any]]) -> None:
    chosen = st.session_state.get("group_choice")
    group = next((g for g in groups if g["id"] == chosen), None)
    st.session_state["group_name"] = group["name"] if group else ""
    st.session_state["group_staff"] = list(group["staff_ids"]) if group else []


def groups_section(generation: int | None, actor: str) -> None:
    state = st.session_state
    st.caption(
        "Named groups of staff (e.g. the safeguarding team) that alert rules can tell "
        "together; a group used by a rule cannot be deleted."
    )
    engine = get_ops_engine()
    names = staff_choices(generation)
    groups = run_or_stop("read the recipient groups", list_groups, engine)
    if groups:
        shown = settings_ui.groups_table(groups, names)
        event = st.dataframe(
            shown,
            key="groups_table",
            on_select="rerun",
            selection_mode="multi-row",
            hide_index=True,
            width="stretch",
            column_config={
                "id": None,
                "name": "Group",
                "members": "Members",
                "count": "Size",
                "used_by": "Used by rules",
                "updated_by": "Changed by",
            },
        )
        download(shown, "recipient-groups.csv", "groups_csv")
        picked = [int(shown.iloc[r]["id"]) for r in settings_ui.selected_rows(event, len(shown))]
        if st.button(
            f"Delete {len(picked)} selected" if picked else "Delete selected",
            key="groups_delete",
            disabled=not picked,
        ):
            run_or_stop("delete the recipient groups", require_action, EDIT)
            try:
                for group_id in picked:
                    delete_group(engine, group_id, actor)
            except (RuleProblem, LookupError) as exc:
                finish("problems", getattr(exc, "problems", [str(exc)]))
            finish("success", f"Deleted {len(picked)} recipient group(s).")
    else:
        st.info("No recipient groups yet: create one below.", icon=":material/group_add:")
    if generation is None:
        st.caption("Load the staff extract to choose members by name.")
    ids = [g["id"] for g in groups]
    if state.get("group_choice") not in (NEW, *ids):
        state["group_choice"] = NEW
        load_group(groups)
    state.setdefault("group_name", "")
    state.setdefault("group_staff", [])
    titles = {g["id"]: g["name"] for g in groups}
    choice = st.selectbox(
        "Group",
        [NEW, *ids],
        format_func=lambda i: "A new group" if i == NEW else titles.get(i, str(i)),
        key="group_choice",
        on_change=load_group,
        args=(groups,),
    )
    name = st.text_input("Group name", key="group_name", max_chars=255)
    known = list(dict.fromkeys([*names, *state.get("group_staff", [])]))
    members = st.multiselect(
        "Members", known, format_func=lambda s: names.get(s, s), key="group_staff"
    )
    if st.button("Save group", key="group_save", icon=":material/save:"):
        run_or_stop("save the recipient group", require_action, EDIT)
        try:
            if choice == NEW:
                create_group(engine, name=name, staff_ids=members, actor=actor)
            else:
                update_group(engine, choice, actor=actor, name=name, staff_ids=members)
        except (RuleProblem, LookupError) as exc:
            finish("problems", getattr(exc, "problems", [str(exc)]))
        state.pop("group_choice", None)
        finish("success", f"Saved the recipient group {name.strip()!r}.")


def roles_section(generation: int | None) -> None:
    st.markdown(
        "Dashboard accounts and their roles (who may open which page and do what) are "
        "managed on the **Users** page."
    )
    page_link_or_text(USERS_PAGE, "Users", icon=":material/group:")
    st.markdown("**Staff responsibilities** (from the MIS: read only)")
    if generation is None:
        st.info(
            "No data loaded yet: load the staff and responsibilities extracts on Data loads.",
            icon=":material/inbox:",
        )
        return
    frame = run_or_stop(
        "read the staff responsibilities", settings_ui.responsibilities, data_dir(), generation
    )
    if frame.empty:
        st.info(
            "No responsibilities are loaded: add the responsibilities extract (form tutors, "
            "heads of year and department, attendance officer, …) on Data loads, so alerts "
            "and reminders reach the right people.",
            icon=":material/badge:",
        )
        return
    st.dataframe(
        frame,
        key="responsibilities",
        hide_index=True,
        width="stretch",
        column_config={
            "staff": "Member of staff",
            "staff_id": "Staff id",
            "role": "Responsibility",
            "scope": "For",
        },
    )
    download(frame, "staff-responsibilities.csv", "responsibilities_csv")


def overview_section(settings: Settings) -> None:
    frame = settings_ui.overview(settings)
    st.dataframe(frame, key="settings_overview", hide_index=True, width="stretch")
    download(frame, "settings.csv", "settings_csv")
    st.caption(
        f"Saved values live in {settings.settings_file}; the environment (SCHOOLCOMMS_…) "
        "overrides them; secrets come only from the environment or .streamlit/secrets.toml. "
        "From the command line: `schoolcomms settings`."
    )


def main() -> None:
    """The page."""
    user = require_page("settings")
    st.title("Settings")
    settings = get_settings()
    generation = current_generation(get_warehouse())
    show_result()
    tabs = settings_ui.tab_sections()
    titles = [title for title, _ in tabs]
    extra = ["Referrals", "Groups", "Roles and users", "All settings"]
    shown = dict(zip([*titles, *extra], st.tabs([*titles, *extra]), strict=True))
    for title, sections in tabs:
        with shown[title]:
            channel = {"E-mail": "email", "SMS": "sms"}.get(title)
            if channel:
                icon = ":material/mail:" if channel == "email" else ":material/sms:"
                st.info(where_messages_go(settings)[channel], icon=icon)
            settings_form(settings, title, sections, user.email)
            if channel == "email":
                email_test(settings, user)
            elif channel == "sms":
                sms_test(settings, user)
    with shown["Referrals"]:
        referral_section(generation, user.email)
    with shown["Groups"]:
        groups_section(generation, user.email)
    with shown["Roles and users"]:
        roles_section(generation)
    with shown["All settings"]:
        overview_section(settings)


main()
