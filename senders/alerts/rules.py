"""Alert rules in the ops store: validated, audited changes, lists, starter rules.

Every change (create, update, enable, disable, delete) writes an audit row in the same
transaction: who, when, and what changed (old and new values). ``params`` and ``notify``
are checked by :mod:`senders.alerts.validation` (every problem named with its fix, as a
:class:`RuleProblem`); staff groups live in :mod:`senders.alerts.groups`. Both modules'
public names are re-exported here, so ``senders.alerts.rules`` is the one import for
everything about rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import (
    AlertFiring,
    AlertRule,
    Notice,
    Template,
    UTCDateTime,
    utcnow,
)
from schoolcomms.settings import Settings
from senders.alerts.groups import (
    audit_in,
    create_group,
    delete_group,
    group_names,
    groups_by_name,
    list_groups,
    update_group,
)
from senders.alerts.validation import (
    ATTENDANCE_KINDS,
    KIND_LABELS,
    LESSON_ROLES,
    MAX_NAME,
    PARENT_CHANNELS,
    POLARITIES,
    ROLES,
    RULE_FIELDS,
    WINDOWS,
    Rule,
    RuleProblem,
    check_actor,
    describe_notify,
    describe_rule,
    known_codes,
    validate_notify,
    validate_params,
)

__all__ = [
    "ATTENDANCE_KINDS",
    "DEFAULT_RULES",
    "KIND_LABELS",
    "LESSON_ROLES",
    "POLARITIES",
    "ROLES",
    "RULE_FIELDS",
    "WINDOWS",
    "Rule",
    "RuleProblem",
    "create_group",
    "create_rule",
    "delete_group",
    "delete_rule",
    "describe_notify",
    "describe_rule",
    "get_rule",
    "group_names",
    "groups_by_name",
    "known_codes",
    "list_groups",
    "list_rules",
    "seed_default_rules",
    "set_enabled",
    "update_group",
    "update_rule",
    "validate_rule",
]


def _extra_codes(settings: Settings | None) -> str:
    return str(settings["extra_attendance_codes"]) if settings is not None else ""


def validate_rule(
    kind: str,
    params: Mapping[str, Any] | None,
    notify: Mapping[str, Any] | None,
    *,
    name: str | None = None,
    parent_template: str | None = None,
    settings: Settings | None = None,
    engine: Engine | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a rule; return its params and notify with defaults filled in.

    Raises :class:`RuleProblem` listing every problem. With ``settings`` the school's own
    attendance codes count; with ``engine`` staff groups and the parent template are
    looked up in the ops store.
    """
    problems: list[str] = []
    if name is not None:
        if not name.strip():
            problems.append("The rule needs a name, e.g. '5 negative incidents this week'.")
        elif len(name.strip()) > MAX_NAME:
            problems.append(f"The name is too long: at most {MAX_NAME} characters.")
    clean_params, found = validate_params(kind, params, extra_codes=_extra_codes(settings))
    problems += found
    clean_notify, found = validate_notify(kind, notify)
    problems += found
    template = (parent_template or "").strip()
    if clean_notify.get("parents") and not template:
        problems.append(
            "Parents are to be told, but no parent template is chosen: pick an SMS or e-mail "
            "template from the message bank, or untick parents."
        )
    if engine is not None:
        groups = set(group_names(engine))
        for group in clean_notify.get("groups", []):
            if group not in groups:
                problems.append(
                    f"notify: there is no staff group called {group!r}; create it first "
                    "(Alert rules page, Staff groups) or check the spelling."
                )
        if template:
            problems += _template_problems(engine, template)
    if problems:
        raise RuleProblem(problems)
    return clean_params, clean_notify


def _template_problems(engine: Engine, name: str) -> list[str]:
    with session_scope(engine, immediate=False) as session:
        row = session.scalars(select(Template).where(Template.name == name)).one_or_none()
        if row is None or row.archived:
            return [f"There is no template called {name!r} in the message bank; pick another."]
        if row.channel not in PARENT_CHANNELS:
            return [
                f"The template {name!r} is a {row.channel}; an alert can text or e-mail "
                "parents, so pick an SMS or e-mail template."
            ]
    return []


# ---- storing ---------------------------------------------------------------------------


def _row_dict(row: AlertRule) -> dict[str, Any]:
    return {name: getattr(row, name) for name in RULE_FIELDS}


def create_rule(
    engine: Engine,
    *,
    name: str,
    kind: str,
    params: Mapping[str, Any] | None,
    notify: Mapping[str, Any] | None,
    urgent: bool = False,
    email: bool = True,
    parent_template: str | None = None,
    enabled: bool = True,
    actor: str,
    settings: Settings | None = None,
) -> int:
    """Validate and store a new rule; return its id (audit action ``alert_rule.create``)."""
    actor = check_actor(actor)
    clean_params, clean_notify = validate_rule(
        kind,
        params,
        notify,
        name=name,
        parent_template=parent_template,
        settings=settings,
        engine=engine,
    )
    now = utcnow()
    row = AlertRule(
        name=name.strip(),
        kind=kind,
        enabled=bool(enabled),
        params=clean_params,
        notify=clean_notify,
        urgent=bool(urgent),
        email=bool(email),
        parent_template=(parent_template or "").strip() or None,
        created_at=now,
        created_by=actor,
        updated_at=now,
        updated_by=actor,
    )
    try:
        with session_scope(engine) as session:
            if session.scalar(select(AlertRule.id).where(AlertRule.name == row.name)):
                raise RuleProblem(_name_taken(row.name))
            row.id = _next_id(session)
            session.add(row)
            session.flush()
            audit_in(session, actor, "alert_rule.create", f"alert_rule:{row.id}", _row_dict(row))
            return row.id
    except IntegrityError as exc:
        raise RuleProblem(_name_taken(row.name)) from exc


def _next_id(session: Session) -> int:
    """An id no rule ever had: a deleted rule's firings and notices (kept for history)
    must never count as a new rule's, which SQLite's reuse of the highest id would do."""
    used = [
        session.scalar(select(func.max(AlertRule.id))),
        session.scalar(select(func.max(AlertFiring.rule_id))),
        session.scalar(select(func.max(Notice.rule_id))),
    ]
    return max((int(u) for u in used if u is not None), default=0) + 1


def _name_taken(name: str) -> str:
    return f"A rule called {name!r} already exists; choose another name or edit that rule."


def _get(session: Session, rule_id: int) -> AlertRule:
    row = session.get(AlertRule, rule_id)
    if row is None:
        raise LookupError(f"There is no alert rule {rule_id}.")
    return row


def _change(
    engine: Engine,
    rule_id: int,
    actor: str,
    changes: Mapping[str, Any],
    settings: Settings | None,
    action: str = "alert_rule.update",
) -> list[str]:
    actor = check_actor(actor)
    unknown = sorted(set(changes) - set(RULE_FIELDS))
    if unknown:
        raise RuleProblem(
            f"Unknown rule field(s) {', '.join(unknown)}; a rule has {', '.join(RULE_FIELDS)}."
        )
    with session_scope(engine, immediate=False) as session:
        merged = _row_dict(_get(session, rule_id)) | dict(changes)
    if isinstance(merged["name"], str):
        merged["name"] = merged["name"].strip()
    merged["parent_template"] = (merged.get("parent_template") or "").strip() or None
    merged["params"], merged["notify"] = validate_rule(
        merged["kind"],
        merged["params"],
        merged["notify"],
        name=merged["name"],
        parent_template=merged["parent_template"],
        settings=settings,
        engine=engine,
    )
    for flag in ("urgent", "email", "enabled"):
        merged[flag] = bool(merged[flag])
    try:
        with session_scope(engine) as session:
            row = _get(session, rule_id)
            old = _row_dict(row)
            changed = [k for k in RULE_FIELDS if old[k] != merged[k]]
            if "name" in changed and session.scalar(
                select(AlertRule.id).where(
                    AlertRule.name == merged["name"], AlertRule.id != rule_id
                )
            ):
                raise RuleProblem(_name_taken(merged["name"]))
            if not changed:
                return []
            for key in changed:
                setattr(row, key, merged[key])
            row.updated_at, row.updated_by = utcnow(), actor
            details = {
                "name": row.name,
                "changes": {k: {"old": old[k], "new": merged[k]} for k in changed},
            }
            audit_in(session, actor, action, f"alert_rule:{rule_id}", details)
            return changed
    except IntegrityError as exc:
        raise RuleProblem(_name_taken(str(merged["name"]))) from exc


def update_rule(
    engine: Engine, rule_id: int, *, actor: str, settings: Settings | None = None, **changes: Any
) -> list[str]:
    """Change fields of a rule (validated as a whole); return the fields that changed.

    ``changes`` are any of name, kind, params, notify, urgent, email, parent_template,
    enabled. Nothing changed: no audit row. Raises ``LookupError`` for an unknown id.
    """
    return _change(engine, rule_id, actor, changes, settings)


def set_enabled(engine: Engine, rule_id: int, enabled: bool, actor: str) -> bool:
    """Switch a rule on or off; return whether it changed (``alert_rule.enable``/``disable``)."""
    action = "alert_rule.enable" if enabled else "alert_rule.disable"
    with session_scope(engine, immediate=False) as session:
        if _get(session, rule_id).enabled == bool(enabled):
            return False
    actor = check_actor(actor)
    with session_scope(engine) as session:
        row = _get(session, rule_id)
        if row.enabled == bool(enabled):
            return False
        row.enabled, row.updated_at, row.updated_by = bool(enabled), utcnow(), actor
        audit_in(session, actor, action, f"alert_rule:{rule_id}", {"name": row.name})
        return True


def delete_rule(engine: Engine, rule_id: int, actor: str) -> None:
    """Delete a rule; audit ``alert_rule.delete`` with everything it was.

    Its past firings and notices stay, for history; a later rule never gets its id.
    """
    actor = check_actor(actor)
    with session_scope(engine) as session:
        row = _get(session, rule_id)
        details = _row_dict(row)
        session.delete(row)
        audit_in(session, actor, "alert_rule.delete", f"alert_rule:{rule_id}", details)


def _listed(row: AlertRule, last_fired: Any, firings: int) -> dict[str, Any]:
    rule = Rule.from_mapping(row)
    return {
        "id": row.id,
        **_row_dict(row),
        "summary": describe_rule(rule),
        "recipients": describe_notify(rule.notify, rule.parent_template),
        "last_fired": last_fired,
        "firings": firings,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }


def list_rules(engine: Engine, *, enabled_only: bool = False) -> list[dict[str, Any]]:
    """Every rule by name: its fields, ``summary`` and ``recipients`` in words,
    ``last_fired`` (UTC or None) and ``firings`` (how many times it fired)."""
    fired = (
        select(
            AlertFiring.rule_id,
            # Typed as the column, so SQLite's text comes back as an aware datetime.
            func.max(AlertFiring.fired_at, type_=UTCDateTime()).label("last"),
            func.count().label("n"),
        )
        .group_by(AlertFiring.rule_id)
        .subquery()
    )
    query = (
        select(AlertRule, fired.c.last, fired.c.n)
        .outerjoin(fired, fired.c.rule_id == AlertRule.id)
        .order_by(AlertRule.name)
    )
    if enabled_only:
        query = query.where(AlertRule.enabled.is_(True))
    with session_scope(engine, immediate=False) as session:
        rows = session.execute(query).all()
        return [_listed(row, last, int(count or 0)) for row, last, count in rows]


def get_rule(engine: Engine, rule_id: int) -> dict[str, Any] | None:
    """One rule as :func:`list_rules` shows it, or None."""
    return next((r for r in list_rules(engine) if r["id"] == rule_id), None)


# ---- starter rules ---------------------------------------------------------------------

DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {
        "name": "5 negative incidents this week",
        "kind": "behaviour_threshold",
        "params": {"threshold": 5, "types": [], "polarity": "negative", "window": "week"},
        "notify": {"roles": ["form_tutor"]},
    },
    {
        "name": "Bullying or fighting",
        "kind": "behaviour_incident",
        "params": {"types": ["Bullying", "Fighting"], "polarity": "negative"},
        "notify": {"roles": ["head_of_year", "safeguarding_lead"]},
        "urgent": True,
    },
    {
        "name": "Truancy",
        "kind": "truancy",
        "params": {},
        "notify": {"roles": ["head_of_year", "attendance_officer"]},
        "urgent": True,
    },
    {
        "name": "Code O in any lesson",
        "kind": "attendance_code",
        "params": {"codes": ["O"], "include_sessions": False},
        "notify": {"roles": ["attendance_officer"]},
    },
)
"""The starter rules :func:`seed_default_rules` adds (all enabled)."""


def seed_default_rules(engine: Engine, actor: str = "setup") -> list[str]:
    """Add the starter rules whose names are not taken yet; return the names added."""
    taken = {rule["name"] for rule in list_rules(engine)}
    added: list[str] = []
    for rule in DEFAULT_RULES:
        if rule["name"] in taken:
            continue
        try:
            create_rule(engine, actor=actor, **rule)
        except RuleProblem:
            # Added meanwhile by another process under the same name: keep theirs.
            continue
        added.append(rule["name"])
    return added
