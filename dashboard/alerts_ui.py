"""Helpers for the "Alert rules" page: cached pickers, the rule form's fields, tables.

Warehouse reads for the pickers (behaviour types, forms and year groups, staff) are
cached per data directory and warehouse generation: a generation never changes. The
rule form keeps its values in ``st.session_state`` under the keys of :data:`FIELDS`;
:func:`state_for` fills them from a stored rule and :func:`rule_from_state` reads them
back into the fields :func:`senders.alerts.rules.create_rule` takes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboard.common import _warehouse_for
from reports import alerts as alert_reads
from reports.staff import ROLE_LABELS, staff_directory
from scheduler.freshness import check_freshness
from schoolcomms.codes import code_table
from senders.alerts.evaluate import PlannedAlert
from senders.alerts.rules import ATTENDANCE_KINDS, LESSON_ROLES, ROLES

UK = ZoneInfo("Europe/London")
TTL_SECONDS = 300
DEFAULTS: dict[str, Any] = {
    "ar_name": "",
    "ar_kind": "behaviour_threshold",
    "ar_threshold": 5,
    "ar_types": [],
    "ar_polarity": "negative",
    "ar_window": "week",
    "ar_days": 7,
    "ar_lookback": 1,
    "ar_codes": ["O"],
    "ar_years": [],
    "ar_forms": [],
    "ar_sessions": True,
    "ar_roles": ["form_tutor"],
    "ar_staff": [],
    "ar_groups": [],
    "ar_parents": False,
    "ar_template": "",
    "ar_urgent": False,
    "ar_email": True,
    "ar_enabled": True,
}
"""The rule form's session-state keys and their values for a new rule."""
FIELDS = tuple(DEFAULTS)


def local_now() -> dt.datetime:
    """The current UK local time, naive and to the minute (as the warehouse keeps time)."""
    return dt.datetime.now(UK).replace(tzinfo=None, second=0, microsecond=0)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def behaviour_types(data_dir: str, generation: int) -> list[str]:
    """The behaviour types in the warehouse, negative ones first."""
    frame = alert_reads.behaviour_types(_warehouse_for(data_dir))
    return list(dict.fromkeys(str(t) for t in frame["type"]))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def years_and_forms(data_dir: str, generation: int) -> dict[str, list[str]]:
    """The year groups and forms of current pupils."""
    return alert_reads.year_groups_and_forms(_warehouse_for(data_dir))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def staff(data_dir: str, generation: int) -> dict[str, str]:
    """``{staff_id: "Ms Tara Teach (T1)"}`` for every member of staff."""
    frame = staff_directory(_warehouse_for(data_dir))
    return {
        str(row.staff_id): f"{row.name} ({row.staff_id})" for row in frame.itertuples(index=False)
    }


@st.cache_data(ttl=60, show_spinner=False)
def freshness(data_dir: str, generation: int, at: dt.datetime, minutes: int) -> tuple[bool, str]:
    """Whether the registers are fresh at ``at`` (scheduler.freshness), and why not."""
    guard = check_freshness(_warehouse_for(data_dir), at, dt.timedelta(minutes=minutes))
    return guard.fresh, guard.reason


def codes(extra: str) -> dict[str, str]:
    """``{code: "O: Absent in other or unknown circumstances"}``, the school's own too."""
    return {c.upper(): f"{c}: {meaning}" for c, _, meaning, _ in code_table(extra)}


def roles_for(kind: str) -> list[str]:
    """The roles a rule of ``kind`` can notify (lesson roles need an attendance kind)."""
    return [r for r in ROLES if kind in ATTENDANCE_KINDS or r not in LESSON_ROLES]


def role_label(role: str) -> str:
    """A role in words."""
    return ROLE_LABELS.get(role, role)


def with_current(options: Sequence[str], current: Sequence[str] | None) -> list[str]:
    """``options`` plus any current values they lack (a multiselect needs its values)."""
    return list(dict.fromkeys([*options, *(current or [])]))


def state_for(rule: Mapping[str, Any] | None) -> dict[str, Any]:
    """The form's values for a stored rule (``list_rules`` dict), or a new rule's."""
    if rule is None:
        return dict(DEFAULTS)
    p, n = rule["params"], rule["notify"]
    return DEFAULTS | {
        "ar_name": rule["name"],
        "ar_kind": rule["kind"],
        "ar_threshold": int(p.get("threshold", DEFAULTS["ar_threshold"])),
        "ar_types": list(p.get("types", [])),
        "ar_polarity": p.get("polarity", "any"),
        "ar_window": p.get("window", "week"),
        "ar_days": int(p.get("days", DEFAULTS["ar_days"])),
        "ar_lookback": int(p.get("lookback_days", 1)),
        "ar_codes": list(p.get("codes", DEFAULTS["ar_codes"])),
        "ar_years": list(p.get("year_groups", [])),
        "ar_forms": list(p.get("forms", [])),
        "ar_sessions": bool(p.get("include_sessions", True)),
        "ar_roles": list(n.get("roles", [])),
        "ar_staff": list(n.get("staff_ids", [])),
        "ar_groups": list(n.get("groups", [])),
        "ar_parents": bool(n.get("parents", False)),
        "ar_template": rule.get("parent_template") or "",
        "ar_urgent": bool(rule["urgent"]),
        "ar_email": bool(rule["email"]),
        "ar_enabled": bool(rule["enabled"]),
    }


def rule_from_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values as ``create_rule`` fields: name, kind, params, notify, flags.

    Keys missing from ``state`` (widgets of another kind are not on the page) take
    their defaults.
    """
    state = DEFAULTS | {k: state[k] for k in FIELDS if k in state}
    kind = state["ar_kind"]
    params: dict[str, Any] = {}
    if kind == "behaviour_threshold":
        params = {
            "threshold": int(state["ar_threshold"]),
            "types": list(state["ar_types"]),
            "polarity": state["ar_polarity"],
            "window": state["ar_window"],
        }
        if state["ar_window"] == "rolling":
            params["days"] = int(state["ar_days"])
    elif kind == "behaviour_incident":
        params = {
            "types": list(state["ar_types"]),
            "polarity": state["ar_polarity"],
            "lookback_days": int(state["ar_lookback"]),
        }
    elif kind == "attendance_code":
        params = {
            "codes": list(state["ar_codes"]),
            "year_groups": list(state["ar_years"]),
            "forms": list(state["ar_forms"]),
            "include_sessions": bool(state["ar_sessions"]),
        }
    allowed = roles_for(kind)
    return {
        "name": str(state["ar_name"]),
        "kind": kind,
        "params": params,
        "notify": {
            "roles": [r for r in state["ar_roles"] if r in allowed],
            "staff_ids": list(state["ar_staff"]),
            "groups": list(state["ar_groups"]),
            "parents": bool(state["ar_parents"]),
        },
        "urgent": bool(state["ar_urgent"]),
        "email": bool(state["ar_email"]),
        "parent_template": (state["ar_template"] or None) if state["ar_parents"] else None,
        "enabled": bool(state["ar_enabled"]),
    }


def in_london(value: Any) -> Any:
    """An aware UTC time as naive London time (None stays None)."""
    if value is None:
        return None
    return value.astimezone(UK).replace(tzinfo=None)


def rules_table(rules: Sequence[Mapping[str, Any]], kind_labels: Mapping[str, str]) -> pd.DataFrame:
    """One row per rule, as the page lists them."""
    columns = ["id", "enabled", "name", "kind", "summary", "recipients", "urgent", "last_fired"]
    rows = [
        {
            "id": r["id"],
            "enabled": bool(r["enabled"]),
            "name": r["name"],
            "kind": kind_labels.get(r["kind"], r["kind"]),
            "summary": r["summary"],
            "recipients": r["recipients"],
            "urgent": bool(r["urgent"]),
            "last_fired": in_london(r["last_fired"]),
            "firings": int(r["firings"]),
        }
        for r in rules
    ]
    return pd.DataFrame(rows, columns=[*columns, "firings"])


def preview_table(alerts: Sequence[PlannedAlert]) -> pd.DataFrame:
    """One row per alert that would fire: about whom, who hears, what is missing."""
    rows = [
        {
            "pupil": a.student_id or "",
            "alert": a.title,
            "staff": ", ".join(r["name"] for r in a.recipients) or "nobody",
            "parents": len(a.parent_messages),
            "gaps": "; ".join(a.unresolved),
        }
        for a in alerts
    ]
    return pd.DataFrame(rows, columns=["pupil", "alert", "staff", "parents", "gaps"])


def groups_table(groups: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> pd.DataFrame:
    """One row per staff group, members named."""
    rows = [
        {
            "name": g["name"],
            "members": ", ".join(names.get(s, s) for s in g["staff_ids"]) or "(nobody)",
            "used_by": ", ".join(g["used_by"]),
            "updated_by": g["updated_by"],
        }
        for g in groups
    ]
    return pd.DataFrame(rows, columns=["name", "members", "used_by", "updated_by"])
