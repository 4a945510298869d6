"""Alert rules: list, create, edit, switch on and off, preview "who would be alerted now",
and manage the staff groups rules can notify. Nothing is sent from this page."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import streamlit as st

from dashboard import alerts_ui
from dashboard.common import (
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
from schoolcomms.ops.models import ALERT_KINDS
from senders.alerts.evaluate import plan_alerts
from senders.alerts.rules import (
    ATTENDANCE_KINDS,
    KIND_LABELS,
    POLARITIES,
    Rule,
    RuleProblem,
    create_group,
    create_rule,
    delete_group,
    delete_rule,
    list_groups,
    list_rules,
    seed_default_rules,
    set_enabled,
    update_group,
    update_rule,
    validate_rule,
)
from senders.bank import list_templates

log = logging.getLogger(__name__)

NEW = "__new__"
CHOICE = "ar_choice"
NEXT_CHOICE = "ar_next_choice"  # chosen after a save, set before the widget exists
RESULT = "ar_result"
GROUP_CHOICE = "ar_group_choice"
EDIT = "alerts.edit"  # re-checked on the server when a change runs
WINDOWS = {"week": "Calendar week (Monday–Sunday)", "rolling": "Rolling number of days"}


def finish(kind: str, message: str | list[str], choose: Any = None) -> NoReturn:
    """Keep the outcome of an action, optionally pick a rule, and show the page again."""
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
        st.error("Not saved:\n\n" + "\n".join(f"- {p}" for p in message), icon=":material/block:")
    else:
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)


def rules_section(engine: Any, actor: str) -> list[dict[str, Any]]:
    """The list of rules (and a way to add the starter rules when there are none)."""
    rules = run_or_stop("read the alert rules", list_rules, engine)
    if not rules:
        st.info(
            "No alert rules yet. Add the starter rules (5 negative incidents in a week, "
            "bullying or fighting, truancy, code O in a lesson) or write your own below.",
            icon=":material/notification_add:",
        )
        if may(EDIT, "ar_seed") and st.button(
            "Add the starter rules", key="ar_seed", icon=":material/library_add:"
        ):
            run_or_stop("add the starter rules", require_action, EDIT)
            added = run_or_stop("add the starter rules", seed_default_rules, engine, actor)
            finish("success", f"Added {len(added)} rule(s): {', '.join(added)}.")
        return rules
    table = alerts_ui.rules_table(rules, KIND_LABELS)
    st.dataframe(
        table,
        key="ar_rules",
        hide_index=True,
        width="stretch",
        column_config={
            "id": "Id",
            "enabled": st.column_config.CheckboxColumn("On"),
            "name": "Rule",
            "kind": "Kind",
            "summary": "Looks for",
            "recipients": "Tells",
            "urgent": st.column_config.CheckboxColumn("Urgent"),
            "last_fired": st.column_config.DatetimeColumn("Last fired", format="DD/MM HH:mm"),
            "firings": "Firings",
        },
    )
    download(table, "alert-rules.csv", "ar_rules_csv")
    return rules


def load_choice(rules: list[dict[str, Any]]) -> None:
    """Fill the form from the chosen rule (or blank it for a new one)."""
    chosen = st.session_state.get(CHOICE)
    rule = next((r for r in rules if r["id"] == chosen), None)
    st.session_state.update(alerts_ui.state_for(rule))


def kind_fields(kind: str, generation: int, settings: Any) -> None:
    """The settings of the chosen kind."""
    state = st.session_state
    if kind in ("behaviour_threshold", "behaviour_incident"):
        types = alerts_ui.behaviour_types(data_dir(), generation)
        st.multiselect(
            "Incident types",
            alerts_ui.with_current(types, state.get("ar_types")),
            key="ar_types",
            help="None chosen: any type (a threshold rule only).",
        )
        st.selectbox("Polarity", list(POLARITIES), key="ar_polarity")
    if kind == "behaviour_threshold":
        st.number_input("Threshold (incidents)", min_value=1, step=1, key="ar_threshold")
        window = st.radio("Window", list(WINDOWS), format_func=WINDOWS.get, key="ar_window")
        if window == "rolling":
            st.number_input("Days", min_value=1, step=1, key="ar_days")
    elif kind == "behaviour_incident":
        st.number_input(
            "Days to look back", min_value=1, step=1, key="ar_lookback", help="1: today only."
        )
    elif kind == "attendance_code":
        codes = alerts_ui.codes(str(settings["extra_attendance_codes"]))
        st.multiselect(
            "Codes",
            alerts_ui.with_current(list(codes), state.get("ar_codes")),
            format_func=lambda c: codes.get(c, c),
            key="ar_codes",
        )
        groups = alerts_ui.years_and_forms(data_dir(), generation)
        st.multiselect(
            "Year groups (none: all)",
            alerts_ui.with_current(groups["year_groups"], state.get("ar_years")),
            key="ar_years",
        )
        st.multiselect(
            "Forms (none: all)",
            alerts_ui.with_current(groups["forms"], state.get("ar_forms")),
            key="ar_forms",
        )
        st.checkbox("Include AM/PM registration sessions", key="ar_sessions")
    elif kind == "truancy":
        st.caption("Fires when a pupil present at a session or earlier lesson is O later.")


def notify_fields(kind: str, engine: Any, staff: dict[str, str]) -> None:
    """Whom the rule tells."""
    state = st.session_state
    st.multiselect(
        "Tell (roles, relative to the pupil or lesson)",
        alerts_ui.roles_for(kind),
        format_func=alerts_ui.role_label,
        key="ar_roles",
    )
    st.multiselect(
        "Named staff",
        alerts_ui.with_current(list(staff), state.get("ar_staff")),
        format_func=lambda s: staff.get(s, s),
        key="ar_staff",
    )
    groups = [g["name"] for g in run_or_stop("read the staff groups", list_groups, engine)]
    st.multiselect(
        "Staff groups", alerts_ui.with_current(groups, state.get("ar_groups")), key="ar_groups"
    )
    if st.checkbox("Also message parents (priority-1 contacts)", key="ar_parents"):
        frame = run_or_stop("read the message bank", list_templates, engine)
        names = frame[frame["channel"].isin(["sms", "email"])]["name"].tolist()
        st.selectbox(
            "Parent message template",
            alerts_ui.with_current(["", *names], [state.get("ar_template") or ""]),
            format_func=lambda n: n or "(choose an SMS or e-mail template)",
            key="ar_template",
        )
    flags = st.columns(3)
    flags[0].checkbox("Urgent (pop-up)", key="ar_urgent")
    flags[1].checkbox("E-mail staff too", key="ar_email")
    flags[2].checkbox("On", key="ar_enabled")


def editor_section(
    engine: Any, settings: Any, actor: str, rules: list[dict[str, Any]], generation: int
) -> None:
    state = st.session_state
    st.subheader("Create or edit a rule")
    ids = [r["id"] for r in rules]
    if NEXT_CHOICE in state:
        state[CHOICE] = state.pop(NEXT_CHOICE)
        load_choice(rules)
    if state.get(CHOICE) not in (NEW, *ids):
        state[CHOICE] = NEW
        load_choice(rules)
    for key, default in alerts_ui.DEFAULTS.items():
        state.setdefault(key, default)
    names = {r["id"]: r["name"] for r in rules}
    choice = st.selectbox(
        "Rule",
        [NEW, *ids],
        format_func=lambda i: "A new rule" if i == NEW else names.get(i, str(i)),
        key=CHOICE,
        on_change=load_choice,
        args=(rules,),
    )
    staff = alerts_ui.staff(data_dir(), generation)
    left, right = st.columns(2)
    with left:
        st.text_input("Name", key="ar_name", max_chars=255)
        kind = st.selectbox(
            "Kind", list(ALERT_KINDS), format_func=lambda k: KIND_LABELS.get(k, k), key="ar_kind"
        )
        kind_fields(kind, generation, settings)
    with right:
        notify_fields(kind, engine, staff)
    fields = alerts_ui.rule_from_state(state)
    may_edit = may(EDIT, "ar_save", "ar_toggle", "ar_delete")
    buttons = st.columns(4)
    if may_edit and buttons[0].button(
        "Save rule", key="ar_save", type="primary", icon=":material/save:"
    ):
        run_or_stop("save the rule", require_action, EDIT)
        save(engine, settings, actor, choice, fields)
    preview = buttons[1].button(
        "Who would be alerted now?", key="ar_preview", icon=":material/visibility:"
    )
    if choice != NEW and may_edit:
        stored = next(r for r in rules if r["id"] == choice)
        on = bool(stored["enabled"])
        if buttons[2].button("Switch off" if on else "Switch on", key="ar_toggle"):
            run_or_stop("switch the rule", require_action, EDIT)
            run_or_stop("switch the rule", set_enabled, engine, choice, not on, actor)
            finish("success", f"{stored['name']} switched {'off' if on else 'on'}.", choice)
        sure = buttons[3].checkbox("Really delete", key="ar_confirm_delete")
        if buttons[3].button("Delete rule", key="ar_delete", disabled=not sure):
            run_or_stop("delete the rule", require_action, EDIT)
            run_or_stop("delete the rule", delete_rule, engine, choice, actor)
            finish("success", f"{stored['name']} deleted (its past alerts are kept).", NEW)
    if preview:
        preview_section(engine, settings, None if choice == NEW else choice, fields, generation)


def save(engine: Any, settings: Any, actor: str, choice: Any, fields: dict[str, Any]) -> None:
    try:
        if choice == NEW:
            rule_id = create_rule(engine, actor=actor, settings=settings, **fields)
            finish("success", f"Saved the new rule {fields['name']!r}.", rule_id)
        changed = update_rule(engine, choice, actor=actor, settings=settings, **fields)
    except RuleProblem as exc:
        finish("problems", exc.problems)
    except LookupError as exc:
        finish("error", str(exc), NEW)
    if not changed:
        finish("info", "Nothing changed.", choice)
    finish("success", f"Saved {fields['name']!r}: {', '.join(changed)} changed.", choice)


def preview_section(
    engine: Any, settings: Any, rule_id: int | None, fields: dict[str, Any], generation: int
) -> None:
    """Who the rule as written would alert now (already-fired alerts left out); sends nothing."""
    try:
        params, notify = validate_rule(
            fields["kind"],
            fields["params"],
            fields["notify"],
            parent_template=fields["parent_template"],
            settings=settings,
            engine=engine,
        )
    except RuleProblem as exc:
        st.error("Fix the rule first:\n\n" + "\n".join(f"- {p}" for p in exc.problems))
        return
    rule = Rule.from_mapping(fields | {"id": rule_id, "params": params, "notify": notify})
    now = alerts_ui.local_now()
    if rule.kind in ATTENDANCE_KINDS:
        minutes = int(settings["freshness_minutes"])
        fresh, reason = alerts_ui.freshness(data_dir(), generation, now, minutes)
        if not fresh:
            st.warning(
                f"{reason[:1].upper()}{reason[1:]}: the scheduler holds this rule back until "
                "fresher marks are loaded.",
                icon=":material/schedule:",
            )
    alerts = run_or_stop(
        "work out who would be alerted",
        plan_alerts,
        settings,
        get_warehouse(),
        engine,
        now,
        rules=[rule],
    )
    st.markdown(f"**As of {now:%A %d %B %Y, %H:%M}** — a preview: nothing has been sent.")
    if not alerts:
        st.info("Nobody would be alerted now (alerts already sent are not repeated).")
        return
    cols = st.columns(4)
    cols[0].metric("Alerts", len(alerts))
    cols[1].metric("Pupils", len({a.student_id for a in alerts}))
    cols[2].metric("Staff notices", sum(len(a.recipients) for a in alerts))
    cols[3].metric("With gaps", sum(1 for a in alerts if a.unresolved))
    table = alerts_ui.preview_table(alerts)
    st.dataframe(
        table,
        key="ar_preview_table",
        hide_index=True,
        width="stretch",
        column_config={
            "pupil": "Pupil",
            "alert": "Alert",
            "staff": "Staff told",
            "parents": "Parent messages",
            "gaps": "Gaps",
        },
    )
    download(table, f"alert-preview-{now:%Y-%m-%d-%H%M}.csv", "ar_preview_csv")


def load_group(groups: list[dict[str, Any]]) -> None:
    chosen = st.session_state.get(GROUP_CHOICE)
    group = next((g for g in groups if g["id"] == chosen), None)
    st.session_state["ar_group_name"] = group["name"] if group else ""
    st.session_state["ar_group_staff"] = list(group["staff_ids"]) if group else []


def groups_section(engine: Any, actor: str, generation: int) -> None:
    state = st.session_state
    st.subheader("Staff groups")
    st.caption("A group can be told by any rule, e.g. a safeguarding or pastoral team.")
    groups = run_or_stop("read the staff groups", list_groups, engine)
    staff = alerts_ui.staff(data_dir(), generation)
    if groups:
        table = alerts_ui.groups_table(groups, staff)
        st.dataframe(
            table,
            key="ar_groups_table",
            hide_index=True,
            width="stretch",
            column_config={
                "name": "Group",
                "members": "Members",
                "used_by": "Used by",
                "updated_by": "Changed by",
            },
        )
        download(table, "staff-groups.csv", "ar_groups_csv")
    if not may(EDIT, "ar_group_save", "ar_group_delete"):
        return
    ids = [g["id"] for g in groups]
    if state.get(GROUP_CHOICE) not in (NEW, *ids):
        state[GROUP_CHOICE] = NEW
        load_group(groups)
    state.setdefault("ar_group_name", "")
    state.setdefault("ar_group_staff", [])
    names = {g["id"]: g["name"] for g in groups}
    choice = st.selectbox(
        "Group",
        [NEW, *ids],
        format_func=lambda i: "A new group" if i == NEW else names.get(i, str(i)),
        key=GROUP_CHOICE,
        on_change=load_group,
        args=(groups,),
    )
    name = st.text_input("Group name", key="ar_group_name", max_chars=255)
    members = st.multiselect(
        "Members",
        alerts_ui.with_current(list(staff), state.get("ar_group_staff")),
        format_func=lambda s: staff.get(s, s),
        key="ar_group_staff",
    )
    left, right = st.columns(2)
    if left.button("Save group", key="ar_group_save", icon=":material/group_add:"):
        run_or_stop("save the staff group", require_action, EDIT)
        try:
            if choice == NEW:
                create_group(engine, name=name, staff_ids=members, actor=actor)
            else:
                update_group(engine, choice, actor=actor, name=name, staff_ids=members)
        except RuleProblem as exc:
            finish("problems", exc.problems)
        finish("success", f"Saved the staff group {name.strip()!r}.")
    if choice != NEW and right.button("Delete group", key="ar_group_delete"):
        run_or_stop("delete the staff group", require_action, EDIT)
        try:
            delete_group(engine, choice, actor)
        except RuleProblem as exc:
            finish("problems", exc.problems)
        finish("success", f"Deleted the staff group {names[choice]!r}.")


def main() -> None:
    """The page."""
    actor = require_page("alert_rules").email
    st.title("Alert rules")
    st.caption(
        "Rules the scheduler checks every few minutes; each alert goes once, as a homepage "
        "notice (a pop-up when urgent) and an e-mail, to the staff the rule names."
    )
    generation = current_generation(get_warehouse())
    if generation is None:
        no_data_state()
        return
    engine, settings = get_ops_engine(), get_settings()
    show_result()
    rules = rules_section(engine, actor)
    editor_section(engine, settings, actor, rules, generation)
    groups_section(engine, actor, generation)


main()
