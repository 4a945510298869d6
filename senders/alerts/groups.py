"""Staff groups: named sets of staff that alert rules notify together (e.g. "Safeguarding").

Every change writes an audit row in the same transaction (``staff_group.create``,
``staff_group.update``, ``staff_group.delete``). Renaming a group carries the new name
into every rule that names it; a group still used by a rule cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AlertRule, AuditEntry, StaffGroup, utcnow
from senders.alerts.validation import MAX_NAME, RuleProblem, check_actor, text_list


def audit_in(session: Session, actor: str, action: str, target: str, details: Any) -> None:
    """Add an audit row (who, when, what) to ``session``, so it commits with the change."""
    session.add(AuditEntry(at=utcnow(), actor=actor, action=action, target=target, details=details))


def _group_fields(name: Any, staff_ids: Any) -> tuple[str, list[str]]:
    problems: list[str] = []
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        problems.append("The staff group needs a name, e.g. 'Safeguarding team'.")
    elif len(text) > MAX_NAME:
        problems.append(f"The group name is too long: at most {MAX_NAME} characters.")
    ids = text_list(problems, "staff group", "staff_ids", staff_ids, "T1")
    if problems:
        raise RuleProblem(problems)
    return text, ids


def group_names(engine: Engine) -> list[str]:
    """The names of every staff group."""
    with session_scope(engine, immediate=False) as session:
        return list(session.scalars(select(StaffGroup.name).order_by(StaffGroup.name)))


def groups_by_name(engine: Engine, names: Iterable[str]) -> dict[str, list[str]]:
    """``{name: [staff_id, …]}`` for the named groups that exist."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    with session_scope(engine, immediate=False) as session:
        rows = session.execute(
            select(StaffGroup.name, StaffGroup.staff_ids).where(StaffGroup.name.in_(wanted))
        )
        return {name: list(ids or []) for name, ids in rows}


def _rules_using(session: Session, group: str) -> list[AlertRule]:
    return [
        row
        for row in session.scalars(select(AlertRule).order_by(AlertRule.name))
        if group in (row.notify or {}).get("groups", [])
    ]


def create_group(engine: Engine, *, name: str, staff_ids: Iterable[str], actor: str) -> int:
    """Store a new staff group; return its id (audit ``staff_group.create``)."""
    actor = check_actor(actor)
    text, ids = _group_fields(name, list(staff_ids))
    try:
        with session_scope(engine) as session:
            if session.scalar(select(StaffGroup.id).where(StaffGroup.name == text)):
                raise RuleProblem(f"A staff group called {text!r} already exists.")
            row = StaffGroup(name=text, staff_ids=ids, updated_at=utcnow(), updated_by=actor)
            session.add(row)
            session.flush()
            details = {"name": text, "staff_ids": ids}
            audit_in(session, actor, "staff_group.create", f"staff_group:{row.id}", details)
            return row.id
    except IntegrityError as exc:
        raise RuleProblem(f"A staff group called {text!r} already exists.") from exc


def update_group(
    engine: Engine,
    group_id: int,
    *,
    actor: str,
    name: str | None = None,
    staff_ids: Iterable[str] | None = None,
) -> list[str]:
    """Rename a group and/or replace its members; return what changed.

    A rename is carried into every rule that names the group, in the same transaction.
    """
    actor = check_actor(actor)
    with session_scope(engine) as session:
        row = session.get(StaffGroup, group_id)
        if row is None:
            raise LookupError(f"There is no staff group {group_id}.")
        text, ids = _group_fields(
            row.name if name is None else name,
            list(row.staff_ids or []) if staff_ids is None else list(staff_ids),
        )
        old = {"name": row.name, "staff_ids": list(row.staff_ids or [])}
        new = {"name": text, "staff_ids": ids}
        changed = [k for k in old if old[k] != new[k]]
        if not changed:
            return []
        if "name" in changed:
            clash = select(StaffGroup.id).where(StaffGroup.name == text, StaffGroup.id != group_id)
            if session.scalar(clash):
                raise RuleProblem(f"A staff group called {text!r} already exists.")
            for rule in _rules_using(session, old["name"]):
                before = dict(rule.notify)
                notify = before | {
                    "groups": [text if g == old["name"] else g for g in before["groups"]]
                }
                rule.notify, rule.updated_at, rule.updated_by = notify, utcnow(), actor
                details = {
                    "name": rule.name,
                    "changes": {"notify": {"old": before, "new": notify}},
                    "because": f"staff group {old['name']!r} renamed to {text!r}",
                }
                audit_in(session, actor, "alert_rule.update", f"alert_rule:{rule.id}", details)
        row.name, row.staff_ids = text, ids
        row.updated_at, row.updated_by = utcnow(), actor
        details = {"changes": {k: {"old": old[k], "new": new[k]} for k in changed}}
        audit_in(session, actor, "staff_group.update", f"staff_group:{group_id}", details)
        return changed


def delete_group(engine: Engine, group_id: int, actor: str) -> None:
    """Delete a staff group no rule uses (audit ``staff_group.delete``)."""
    actor = check_actor(actor)
    with session_scope(engine) as session:
        row = session.get(StaffGroup, group_id)
        if row is None:
            raise LookupError(f"There is no staff group {group_id}.")
        users = [r.name for r in _rules_using(session, row.name)]
        if users:
            raise RuleProblem(
                f"The staff group {row.name!r} is used by the rule(s) {', '.join(users)}; "
                "take it out of them first."
            )
        details = {"name": row.name, "staff_ids": list(row.staff_ids or [])}
        session.delete(row)
        audit_in(session, actor, "staff_group.delete", f"staff_group:{group_id}", details)


def list_groups(engine: Engine) -> list[dict[str, Any]]:
    """Every staff group: id, name, staff_ids, updated_at, updated_by, used_by (rule names)."""
    with session_scope(engine, immediate=False) as session:
        rules = list(session.scalars(select(AlertRule).order_by(AlertRule.name)))
        return [
            {
                "id": row.id,
                "name": row.name,
                "staff_ids": list(row.staff_ids or []),
                "updated_at": row.updated_at,
                "updated_by": row.updated_by,
                "used_by": [
                    r.name for r in rules if row.name in (r.notify or {}).get("groups", [])
                ],
            }
            for row in session.scalars(select(StaffGroup).order_by(StaffGroup.name))
        ]
