"""Alert rule checks and words: strict validation of ``params`` and ``notify``, summaries.

A rule is a ``kind`` (:data:`schoolcomms.ops.models.ALERT_KINDS`) with its ``params`` and
whom to ``notify``. Both are checked here before anything is stored, every problem named
with its fix (:class:`RuleProblem`); stored params carry every default, so the evaluator
never guesses. Storing, listing and auditing live in :mod:`senders.alerts.rules`.

Parameters by kind:

- ``behaviour_threshold``: ``threshold`` (int >= 1), ``types`` (list; empty = any type),
  ``polarity`` (negative | positive | any; default negative), ``window`` (``week``: the
  calendar week Monday–Sunday; or ``rolling`` with ``days`` >= 1: the crossing's day and
  the ``days - 1`` days before it).
- ``behaviour_incident``: ``types`` (non-empty), ``polarity`` (default any),
  ``lookback_days`` (int >= 1, default 1: today only).
- ``attendance_code``: ``codes`` (non-empty; DfE codes or the school's own from the
  setting ``extra_attendance_codes``), ``year_groups`` and ``forms`` (empty = all
  pupils), ``include_sessions`` (bool, default true).
- ``truancy``: no parameters.

``notify`` is ``{"roles": [...], "staff_ids": [...], "groups": [...], "parents": bool}``;
a rule must reach at least one role, named staff member or staff group. ``parents``
needs ``parent_template``, an SMS or e-mail template in the message bank.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reports.staff import PUPIL_ROLES, ROLE_LABELS, SCHOOL_ROLES
from schoolcomms.codes import CodeConfigError, code_table
from schoolcomms.ops.models import ALERT_KINDS, AlertRule

KIND_LABELS: dict[str, str] = {
    "behaviour_threshold": "Behaviour threshold",
    "behaviour_incident": "Every incident of a type",
    "attendance_code": "Attendance code",
    "truancy": "Truancy (present, then O later)",
}
# Kinds read from registers: left out while the registers are stale.
ATTENDANCE_KINDS: tuple[str, ...] = ("attendance_code", "truancy")
# Roles that need the lesson a firing is about (attendance kinds have one).
LESSON_ROLES: tuple[str, ...] = ("head_of_department", "class_teacher")
ROLES: tuple[str, ...] = (*PUPIL_ROLES, *LESSON_ROLES, *SCHOOL_ROLES)
POLARITIES: tuple[str, ...] = ("negative", "positive", "any")
WINDOWS: tuple[str, ...] = ("week", "rolling")
PARENT_CHANNELS: tuple[str, ...] = ("sms", "email")
NOTIFY_KEYS: tuple[str, ...] = ("roles", "staff_ids", "groups", "parents")
RULE_FIELDS: tuple[str, ...] = (
    "name",
    "kind",
    "params",
    "notify",
    "urgent",
    "email",
    "parent_template",
    "enabled",
)
MAX_NAME = 255


class RuleProblem(ValueError):
    """A rule or staff group that cannot be saved; ``problems`` say what to fix."""

    def __init__(self, problems: str | Iterable[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(" ".join(self.problems))


@dataclass(frozen=True)
class Rule:
    """A rule as the evaluator uses it (``id`` None: an unsaved rule being previewed)."""

    id: int | None
    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)
    urgent: bool = False
    email: bool = True
    parent_template: str | None = None
    enabled: bool = True

    @classmethod
    def from_mapping(cls, rule: Mapping[str, Any] | AlertRule | Rule) -> Rule:
        """A :class:`Rule` from a :func:`list_rules` dict, an ``AlertRule`` row or a Rule."""
        if isinstance(rule, Rule):
            return rule
        get = rule.get if isinstance(rule, Mapping) else lambda k, d=None: getattr(rule, k, d)
        return cls(
            id=get("id"),
            name=str(get("name") or ""),
            kind=str(get("kind") or ""),
            params=dict(get("params") or {}),
            notify=dict(get("notify") or {}),
            urgent=bool(get("urgent", False)),
            email=bool(get("email", True)),
            parent_template=get("parent_template") or None,
            enabled=bool(get("enabled", True)),
        )


# ---- validation ------------------------------------------------------------------------


def known_codes(extra_codes: str = "") -> dict[str, str]:
    """Every attendance code (upper case) → its category, with the school's own codes."""
    return {code.upper(): category for code, category, _, _ in code_table(extra_codes)}


def _whole_number(
    problems: list[str], where: str, name: str, value: Any, default: int | None = None
) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        problems.append(f"{where}: {name} must be a whole number of at least 1, not {value!r}.")
        return default or 1
    if value < 1:
        problems.append(f"{where}: {name} is {int(value)}; it must be at least 1.")
    return int(value)


def text_list(problems: list[str], where: str, name: str, value: Any, example: str) -> list[str]:
    """``value`` as a list of distinct non-blank texts; problems are appended to ``problems``."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        problems.append(f'{where}: {name} must be a list, e.g. ["{example}"], not {value!r}.')
        return []
    out: list[str] = []
    for item in value:
        text = str(item).strip() if isinstance(item, str | int) else ""
        if not text:
            problems.append(f"{where}: {name} has a blank or non-text entry ({item!r}).")
        elif text not in out:
            out.append(text)
    return out


def _flag(problems: list[str], where: str, name: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.append(f"{where}: {name} must be true or false, not {value!r}.")
        return default
    return value


def _choice(
    problems: list[str], where: str, name: str, value: Any, allowed: tuple[str, ...], default: str
) -> str:
    if value is None:
        return default
    text = str(value).strip().lower()
    if text not in allowed:
        problems.append(f"{where}: {name} must be one of {', '.join(allowed)}, not {value!r}.")
        return default
    return text


PARAM_KEYS: dict[str, tuple[str, ...]] = {
    "behaviour_threshold": ("threshold", "types", "polarity", "window", "days"),
    "behaviour_incident": ("types", "polarity", "lookback_days"),
    "attendance_code": ("codes", "year_groups", "forms", "include_sessions"),
    "truancy": (),
}


def validate_params(
    kind: str, params: Mapping[str, Any] | None, *, extra_codes: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """``params`` of a ``kind`` with every default filled in, and the problems found."""
    problems: list[str] = []
    if kind not in ALERT_KINDS:
        return {}, [f"Unknown kind {kind!r}: choose one of {', '.join(ALERT_KINDS)}."]
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        return {}, [f"params must be an object (a JSON dict), not {params!r}."]
    where = f"params of a {kind} rule"
    unknown = sorted(set(params) - set(PARAM_KEYS[kind]))
    if unknown:
        allowed = ", ".join(PARAM_KEYS[kind]) or "none"
        problems.append(f"{where}: unknown setting(s) {', '.join(unknown)}; allowed: {allowed}.")
    out: dict[str, Any] = {}
    if kind == "behaviour_threshold":
        out["threshold"] = _whole_number(problems, where, "threshold", params.get("threshold"))
        if "threshold" not in params:
            problems.append(f"{where}: give a threshold, e.g. 5 (incidents in the window).")
        out["types"] = text_list(problems, where, "types", params.get("types"), "Disruption")
        out["polarity"] = _choice(
            problems, where, "polarity", params.get("polarity"), POLARITIES, "negative"
        )
        out["window"] = _choice(problems, where, "window", params.get("window"), WINDOWS, "week")
        if out["window"] == "rolling":
            if params.get("days") is None:
                problems.append(f"{where}: a rolling window needs days, e.g. 7.")
            out["days"] = _whole_number(problems, where, "days", params.get("days"), 7)
        elif params.get("days") is not None:
            problems.append(
                f"{where}: days is only used with window 'rolling'; remove it or set "
                "window to 'rolling'."
            )
    elif kind == "behaviour_incident":
        out["types"] = text_list(problems, where, "types", params.get("types"), "Bullying")
        if not out["types"]:
            problems.append(f'{where}: list the incident types to alert on, e.g. ["Bullying"].')
        out["polarity"] = _choice(
            problems, where, "polarity", params.get("polarity"), POLARITIES, "any"
        )
        out["lookback_days"] = _whole_number(
            problems, where, "lookback_days", params.get("lookback_days"), 1
        )
    elif kind == "attendance_code":
        codes = text_list(problems, where, "codes", params.get("codes"), "O")
        try:
            known = known_codes(extra_codes)
        except CodeConfigError as exc:
            problems.append(str(exc))
            known = known_codes()
        out["codes"] = [c.upper() for c in codes]
        for code in out["codes"]:
            if code not in known:
                problems.append(
                    f"{where}: {code!r} is not an attendance code. Use a DfE code (e.g. O, G, "
                    "N, U) or add your own to the setting extra_attendance_codes as "
                    f"'{code}:category'."
                )
        if not codes:
            problems.append(f'{where}: list the attendance codes to alert on, e.g. ["O"].')
        out["year_groups"] = text_list(
            problems, where, "year_groups", params.get("year_groups"), "10"
        )
        out["forms"] = text_list(problems, where, "forms", params.get("forms"), "10A")
        out["include_sessions"] = _flag(
            problems, where, "include_sessions", params.get("include_sessions"), True
        )
    return out, problems


def validate_notify(
    kind: str, notify: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """``notify`` with every key present, and the problems found."""
    problems: list[str] = []
    if notify is None:
        notify = {}
    if not isinstance(notify, Mapping):
        return {}, [f"notify must be an object (a JSON dict), not {notify!r}."]
    where = "notify"
    unknown = sorted(set(notify) - set(NOTIFY_KEYS))
    if unknown:
        problems.append(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(NOTIFY_KEYS)}."
        )
    roles = text_list(problems, where, "roles", notify.get("roles"), "form_tutor")
    for role in roles:
        if role not in ROLES:
            problems.append(f"{where}: unknown role {role!r}; choose from {', '.join(ROLES)}.")
        elif role in LESSON_ROLES and kind not in ATTENDANCE_KINDS:
            problems.append(
                f"{where}: {role} needs a lesson, and a {kind} rule has none; use form_tutor, "
                "head_of_year, a whole-school role, named staff or a group."
            )
    out = {
        "roles": roles,
        "staff_ids": text_list(problems, where, "staff_ids", notify.get("staff_ids"), "T1"),
        "groups": text_list(problems, where, "groups", notify.get("groups"), "Safeguarding"),
        "parents": _flag(problems, where, "parents", notify.get("parents"), False),
    }
    if not (out["roles"] or out["staff_ids"] or out["groups"]):
        problems.append(
            "Nobody would be told: choose at least one role (e.g. form_tutor), named staff "
            "member or staff group in notify."
        )
    return out, problems


def check_actor(actor: str) -> str:
    """``actor`` stripped; a blank actor is refused (every change says who made it)."""
    if not (actor or "").strip():
        raise ValueError('actor must name who acted (a user, "cli" or "scheduler")')
    return actor.strip()


# ---- words -----------------------------------------------------------------------------


def _either(items: list[str], word: str = "or") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def describe_rule(rule: Rule | Mapping[str, Any]) -> str:
    """What a rule looks for, in words, e.g. "5 or more negative incidents in a week"."""
    rule = Rule.from_mapping(rule)
    p = rule.params
    polarity = p.get("polarity", "any")
    adjective = "" if polarity == "any" else f"{polarity} "
    if rule.kind == "behaviour_threshold":
        types = f" of type {_either(p['types'])}" if p.get("types") else ""
        if p.get("window") == "rolling":
            window = f"within {p.get('days')} day(s) (rolling)"
        else:
            window = "in a calendar week (Monday–Sunday)"
        return f"{p.get('threshold')} or more {adjective}incidents{types} {window}"
    if rule.kind == "behaviour_incident":
        days = int(p.get("lookback_days", 1))
        when = "today" if days == 1 else f"in the last {days} days"
        return f"Every {adjective}{_either(p.get('types', []))} incident {when}"
    if rule.kind == "attendance_code":
        where = "lessons and sessions" if p.get("include_sessions", True) else "lessons"
        who = []
        if p.get("year_groups"):
            who.append(f"years {', '.join(p['year_groups'])}")
        if p.get("forms"):
            who.append(f"forms {', '.join(p['forms'])}")
        pupils = f" for {' and '.join(who)}" if who else ""
        return f"A mark of {_either(p.get('codes', []))} today in {where}{pupils}"
    if rule.kind == "truancy":
        return "Present at a session or an earlier lesson, then O in a later lesson the same day"
    return rule.kind


def describe_notify(notify: Mapping[str, Any], parent_template: str | None = None) -> str:
    """Whom a rule tells, in words, e.g. "Form tutor, Head of year; group Safeguarding"."""
    parts = [ROLE_LABELS.get(r, r) for r in notify.get("roles", [])]
    parts += [f"staff {s}" for s in notify.get("staff_ids", [])]
    parts += [f"group {g}" for g in notify.get("groups", [])]
    if notify.get("parents"):
        parts.append(f"parents ({parent_template})" if parent_template else "parents")
    return ", ".join(parts) or "nobody"
