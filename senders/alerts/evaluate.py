"""Plan staff alerts: which rules fire at a time, about whom, and who hears of it.

Pure planning (reads only): :func:`plan_alerts` is the dashboard's "who would be
alerted now", ``schoolcomms alerts --dry-run`` and the scheduler's plan, so a preview
and the real run agree. Each rule is one warehouse query (:mod:`senders.alerts.findings`
over :mod:`reports.alerts`); recipients and parents are then resolved in a few bulk
reads for every alert at once (:mod:`senders.alerts.recipients`). Pairs of (rule, key)
already in ``alert_firings`` are left out, so a dry run right after a real run plans
nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AlertFiring
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders.alerts.findings import Finding, find
from senders.alerts.recipients import StaffResolver, plan_parents
from senders.alerts.rules import ATTENDANCE_KINDS, Rule, get_rule, list_rules

UK = ZoneInfo("Europe/London")
_CHUNK = 500


@dataclass
class PlannedAlert:
    """One firing of one rule, with its staff recipients and any parent messages.

    ``recipients`` are ``{staff_id, name, email, why}``; ``unresolved`` the gaps in
    words (e.g. "no form tutor for form 10A"); ``parent_messages`` the messages that
    would be queued to parents and ``parent_excluded`` the contacts left out, with the
    reason. After :func:`senders.alerts.deliver.fire`, ``notices`` and
    ``parent_messages_queued`` say what was stored.
    """

    rule_id: int | None
    rule_name: str
    kind: str
    key: str
    student_id: str | None
    lesson_id: str | None
    title: str
    body: str
    urgent: bool
    email: bool
    recipients: list[dict[str, Any]] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    parent_messages: list[dict[str, Any]] = field(default_factory=list)
    parent_excluded: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notices: int | None = None
    parent_messages_queued: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape of ``schoolcomms alerts --json`` (see docs/alerts.md)."""
        out: dict[str, Any] = {
            "rule_id": self.rule_id,
            "rule": self.rule_name,
            "kind": self.kind,
            "key": self.key,
            "student_id": self.student_id,
            "lesson_id": self.lesson_id,
            "title": self.title,
            "body": self.body,
            "urgent": self.urgent,
            "recipients": [dict(r) for r in self.recipients],
            "unresolved": list(self.unresolved),
            "parent_messages": [
                {k: v for k, v in m.items() if k != "html"} for m in self.parent_messages
            ],
            "parent_excluded": [dict(e) for e in self.parent_excluded],
            "details": dict(self.details),
        }
        if self.notices is not None:
            out["fired"] = {
                "notices": self.notices,
                "parent_messages": self.parent_messages_queued or 0,
            }
        return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _local(at: dt.datetime) -> dt.datetime:
    """Naive UK local time (the warehouse's), whatever ``at`` was given as."""
    if at.tzinfo is not None:
        return at.astimezone(UK).replace(tzinfo=None)
    return at


def _rules(engine: Engine, rules: Iterable[Rule | Mapping[str, Any] | int] | None) -> list[Rule]:
    if rules is None:
        return [Rule.from_mapping(r) for r in list_rules(engine, enabled_only=True)]
    out = []
    for rule in rules:
        if isinstance(rule, int):
            found = get_rule(engine, rule)
            if found is None:
                raise LookupError(f"There is no alert rule {rule}.")
            rule = found
        out.append(Rule.from_mapping(rule))
    return out


def already_fired(engine: Engine, pairs: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """The (rule id, key) pairs among ``pairs`` that are in ``alert_firings``."""
    by_rule: dict[int, list[str]] = {}
    for rule_id, key in pairs:
        by_rule.setdefault(rule_id, []).append(key)
    fired: set[tuple[int, str]] = set()
    with session_scope(engine, immediate=False) as session:
        for rule_id, keys in by_rule.items():
            for start in range(0, len(keys), _CHUNK):
                query = select(AlertFiring.key).where(
                    AlertFiring.rule_id == rule_id,
                    AlertFiring.key.in_(keys[start : start + _CHUNK]),
                )
                fired.update((rule_id, k) for k in session.scalars(query))
    return fired


def plan_alerts(
    settings: Settings,
    warehouse: Warehouse,
    engine: Engine,
    at: dt.datetime,
    *,
    rules: Iterable[Rule | Mapping[str, Any] | int] | None = None,
    include_attendance: bool = True,
) -> list[PlannedAlert]:
    """The alerts due at ``at`` (naive UK local time), not yet fired, with recipients.

    ``rules``: the rules to evaluate (:class:`Rule` objects, dicts as
    :func:`senders.alerts.rules.list_rules` gives them, or ids), enabled or not, saved
    or not (a preview); default every enabled rule. ``include_attendance=False`` leaves
    out attendance_code and truancy rules (stale registers). Reads only: nothing is
    stored or sent. Raises :class:`schoolcomms.warehouse.NoWarehouse` before any load.
    """
    at = _local(at)
    chosen = [
        r for r in _rules(engine, rules) if include_attendance or r.kind not in ATTENDANCE_KINDS
    ]
    items: list[tuple[Rule, Finding]] = []
    for rule in chosen:
        items += [(rule, f) for f in find(warehouse, rule, at, settings)]
    fired = already_fired(engine, ((r.id, f.key) for r, f in items if r.id is not None))
    items = [(r, f) for r, f in items if (r.id, f.key) not in fired]
    if not items:
        return []
    resolver = StaffResolver(warehouse, engine, items)
    emails = bool(settings["alert_emails"])
    planned: list[tuple[Rule, Finding, PlannedAlert]] = []
    for rule, finding in items:
        recipients, gaps = resolver.resolve(rule, finding, emails and rule.email)
        alert = PlannedAlert(
            rule_id=rule.id,
            rule_name=rule.name,
            kind=rule.kind,
            key=finding.key,
            student_id=finding.student_id,
            lesson_id=finding.lessons[0]["lesson_id"] if finding.lessons else None,
            title=finding.title,
            body=finding.body,
            urgent=rule.urgent,
            email=rule.email,
            recipients=recipients,
            unresolved=gaps,
            details=_jsonable(finding.details | {"at": at.isoformat(sep=" ", timespec="minutes")}),
        )
        planned.append((rule, finding, alert))
    plan_parents(settings, warehouse, engine, at, planned)
    return [alert for _, _, alert in planned]
