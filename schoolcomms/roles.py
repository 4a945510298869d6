"""Roles and what each may do: the one role matrix for pages and actions.

Every dashboard page declares its page key (``require_page("compose")``) and every
action re-checks its action key on the server at the moment it runs
(``check_action(user_roles, "send.bulk")``), so the matrix here is the whole truth;
``docs/roles.md`` is generated from it and a test fails when they drift.
"""

from __future__ import annotations

from collections.abc import Iterable

ROLES: tuple[str, ...] = (
    "admin",
    "senior_leader",
    "attendance_officer",
    "data_manager",
    "pastoral",
    "teacher",
    "office",
)
ROLE_HELP: dict[str, str] = {
    "admin": "Everything, including users, settings and the audit log.",
    "senior_leader": "Sees every report and dashboard, sets alert rules and weekly reports; "
    "does not send messages to parents.",
    "attendance_officer": "Attendance, absence follow-up and messaging parents in bulk.",
    "data_manager": "Loads extracts, watches data quality and the scheduler.",
    "pastoral": "Behaviour, detentions and messaging parents; sees medical notes.",
    "teacher": "Their notices, registers and referrals; may message one pupil's parents "
    "at a time, never in bulk; never sees medical notes.",
    "office": "Messaging and letters, the message bank, assistance requests; sees "
    "medical notes (first aid).",
}

EVERYONE = ROLES
_STAFF_WHO_SEND = ("admin", "attendance_officer", "pastoral", "office")

# page key -> roles that may open it
PAGE_ROLES: dict[str, tuple[str, ...]] = {
    "home": EVERYONE,
    "compose": (*_STAFF_WHO_SEND, "teacher"),
    "message_history": ("admin", "senior_leader", "attendance_officer", "pastoral", "office"),
    "message_bank": ("admin", "senior_leader", "attendance_officer", "pastoral", "office"),
    "record_contact": (
        "admin",
        "senior_leader",
        "attendance_officer",
        "pastoral",
        "office",
        "teacher",
    ),
    "contact_details": (
        "admin",
        "senior_leader",
        "attendance_officer",
        "data_manager",
        "pastoral",
        "office",
    ),
    "data_loads": ("admin", "data_manager"),
    "scheduler": ("admin", "data_manager", "senior_leader"),
    "missing_registers": ("admin", "senior_leader", "attendance_officer", "data_manager"),
    "weekly_reports": ("admin", "senior_leader"),
    "alert_rules": ("admin", "senior_leader"),
    "audit_log": ("admin",),
    "users": ("admin",),
    "attendance": (
        "admin",
        "senior_leader",
        "attendance_officer",
        "pastoral",
        "office",
        "data_manager",
    ),
    "behaviour": ("admin", "senior_leader", "pastoral", "teacher", "office"),
    "detentions": ("admin", "senior_leader", "pastoral", "office"),
    "homework": ("admin", "senior_leader", "pastoral", "teacher", "office"),
    "grades": ("admin", "senior_leader", "pastoral", "teacher"),
    "contact_reports": (
        "admin",
        "senior_leader",
        "attendance_officer",
        "data_manager",
        "office",
    ),
    "notices": ("admin", "senior_leader", "data_manager", "pastoral", "office"),
    "settings": ("admin",),
}

# action key -> roles that may do it (checked again when the action runs)
ACTION_ROLES: dict[str, tuple[str, ...]] = {
    "send.bulk": _STAFF_WHO_SEND,
    "send.single": (*_STAFF_WHO_SEND, "teacher"),
    "send.over_budget": ("admin", "attendance_officer"),
    "batch.manage": ("admin", "attendance_officer", "office"),
    "templates.edit": ("admin", "attendance_officer", "pastoral", "office"),
    "contact.record": PAGE_ROLES["record_contact"],
    "medical.view": ("admin", "senior_leader", "pastoral", "office"),
    "data.load": ("admin", "data_manager"),
    "data.rollback": ("admin", "data_manager"),
    "registers.remind": ("admin", "senior_leader", "attendance_officer", "data_manager"),
    "alerts.edit": ("admin", "senior_leader"),
    "reports.schedule": ("admin", "senior_leader"),
    "reports.send_now": ("admin", "senior_leader"),
    "notices.read_all": ("admin", "senior_leader", "data_manager"),
    "users.manage": ("admin",),
    "audit.view": ("admin",),
    "query.mark": (
        "admin",
        "senior_leader",
        "attendance_officer",
        "pastoral",
        "office",
        "data_manager",
    ),
    "query.grade": ("admin", "senior_leader", "pastoral", "teacher"),
    # Answering is also limited to the query's own teacher (or an admin) by the code.
    "query.answer": EVERYONE,
    "referral.create": (
        "admin",
        "senior_leader",
        "attendance_officer",
        "pastoral",
        "teacher",
        "office",
    ),
    # Actioning is also limited to the referral's own member of staff (or pastoral/admin).
    "referral.action": EVERYONE,
    "assistance.request": EVERYONE,
    "assistance.acknowledge": ("admin", "senior_leader", "office"),
    "notices.send": ("admin", "senior_leader", "data_manager", "pastoral", "office"),
    "letters.print": ("admin", "attendance_officer", "pastoral", "office"),
    "staff_emails.view": ("admin", "senior_leader", "data_manager", "office"),
    "settings.edit": ("admin",),
    "settings.test_send": ("admin",),
    "calendar.own": EVERYONE,
}


class PermissionDenied(PermissionError):
    """The user's roles do not allow this page or action; the message names who may."""


def _known(roles: Iterable[str]) -> set[str]:
    return {r for r in roles if r in ROLES}


def can_open(user_roles: Iterable[str], page: str) -> bool:
    """Whether someone with ``user_roles`` may open ``page`` (a :data:`PAGE_ROLES` key)."""
    if page not in PAGE_ROLES:
        raise KeyError(f"Unknown page {page!r}; add it to schoolcomms.roles.PAGE_ROLES")
    return bool(_known(user_roles) & set(PAGE_ROLES[page]))


def can(user_roles: Iterable[str], action: str) -> bool:
    """Whether someone with ``user_roles`` may do ``action`` (an :data:`ACTION_ROLES` key)."""
    if action not in ACTION_ROLES:
        raise KeyError(f"Unknown action {action!r}; add it to schoolcomms.roles.ACTION_ROLES")
    return bool(_known(user_roles) & set(ACTION_ROLES[action]))


def _names(roles: Iterable[str]) -> str:
    return ", ".join(r.replace("_", " ") for r in roles)


def check_action(user_roles: Iterable[str], action: str) -> None:
    """Raise :class:`PermissionDenied` unless ``user_roles`` may do ``action``."""
    if not can(user_roles, action):
        raise PermissionDenied(
            f"Your account may not do this ({action}); it needs one of these roles: "
            f"{_names(ACTION_ROLES[action])}. Ask an administrator if you need it."
        )


def check_page(user_roles: Iterable[str], page: str) -> None:
    """Raise :class:`PermissionDenied` unless ``user_roles`` may open ``page``."""
    if not can_open(user_roles, page):
        raise PermissionDenied(
            f"Your account cannot open this page; it needs one of these roles: "
            f"{_names(PAGE_ROLES[page])}. Ask an administrator if you need it."
        )


def validate_roles(roles: Iterable[str]) -> list[str]:
    """The roles, checked and in matrix order; unknown names raise ``ValueError``."""
    given = [r.strip() for r in roles if r and r.strip()]
    unknown = [r for r in given if r not in ROLES]
    if unknown:
        raise ValueError(f"Unknown role(s): {', '.join(unknown)}. Roles are: {', '.join(ROLES)}.")
    if not given:
        raise ValueError(f"Give at least one role, from: {', '.join(ROLES)}.")
    return [r for r in ROLES if r in given]


def matrix_markdown() -> str:
    """The role matrix as Markdown tables (pages, then actions), for docs/roles.md."""
    header = "| | " + " | ".join(r.replace("_", " ") for r in ROLES) + " |"
    rule = "|---|" + "---|" * len(ROLES)

    def rows(table: dict[str, tuple[str, ...]]) -> list[str]:
        return [
            f"| `{key}` | " + " | ".join("✔" if r in allowed else "" for r in ROLES) + " |"
            for key, allowed in table.items()
        ]

    lines = [
        "## Roles",
        "",
        *[f"- **{r.replace('_', ' ')}**: {ROLE_HELP[r]}" for r in ROLES],
        "",
        "## Pages",
        "",
        header,
        rule,
        *rows(PAGE_ROLES),
        "",
        "## Actions (checked again on the server when they run)",
        "",
        header,
        rule,
        *rows(ACTION_ROLES),
        "",
    ]
    return "\n".join(lines)
