"""The dashboard's pages: section, file, title, icon and role-matrix key of each.

:func:`permitted_pages` is what the navigation shows an account; every page checks the
same matrix (:data:`schoolcomms.roles.PAGE_ROLES`) again itself, on the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schoolcomms.roles import PAGE_ROLES, can_open


@dataclass(frozen=True)
class PageEntry:
    """One page of the navigation: its section, file, title, icon and role-matrix key."""

    section: str
    path: str
    title: str
    icon: str
    key: str


PAGES: tuple[PageEntry, ...] = (
    PageEntry("", "pages/home.py", "Home", ":material/home:", "home"),
    PageEntry("Messaging", "pages/compose.py", "Compose", ":material/edit_square:", "compose"),
    PageEntry(
        "Messaging",
        "pages/message_history.py",
        "Message history",
        ":material/history:",
        "message_history",
    ),
    PageEntry(
        "Messaging",
        "pages/message_bank.py",
        "Message bank",
        ":material/library_books:",
        "message_bank",
    ),
    PageEntry(
        "Messaging",
        "pages/record_contact.py",
        "Record a contact",
        ":material/call:",
        "record_contact",
    ),
    PageEntry(
        "Staff",
        "pages/missing_registers.py",
        "Missing registers",
        ":material/assignment_late:",
        "missing_registers",
    ),
    PageEntry(
        "Staff", "pages/alert_rules.py", "Alert rules", ":material/notifications:", "alert_rules"
    ),
    PageEntry(
        "Pupils", "pages/attendance.py", "Attendance", ":material/event_available:", "attendance"
    ),
    PageEntry(
        "Pupils", "pages/behaviour.py", "Behaviour", ":material/thumbs_up_down:", "behaviour"
    ),
    PageEntry("Pupils", "pages/detentions.py", "Detentions", ":material/timer:", "detentions"),
    PageEntry("Pupils", "pages/homework.py", "Homework", ":material/menu_book:", "homework"),
    PageEntry("Pupils", "pages/grades.py", "Grades", ":material/grading:", "grades"),
    PageEntry("Staff", "pages/notices.py", "Send a notice", ":material/campaign:", "notices"),
    PageEntry(
        "Reports",
        "pages/contact_reports.py",
        "Contact reports",
        ":material/summarize:",
        "contact_reports",
    ),
    PageEntry(
        "Reports",
        "pages/weekly_reports.py",
        "Weekly reports",
        ":material/event_repeat:",
        "weekly_reports",
    ),
    PageEntry(
        "Data",
        "pages/contact_details.py",
        "Contact details",
        ":material/contacts:",
        "contact_details",
    ),
    PageEntry("Data", "pages/data_loads.py", "Data loads", ":material/upload_file:", "data_loads"),
    PageEntry("Data", "pages/scheduler_jobs.py", "Scheduler", ":material/schedule:", "scheduler"),
    PageEntry("Admin", "pages/settings_page.py", "Settings", ":material/settings:", "settings"),
    PageEntry("Admin", "pages/users.py", "Users", ":material/group:", "users"),
    PageEntry("Admin", "pages/audit_log.py", "Audit log", ":material/policy:", "audit_log"),
)


def permitted_pages(roles: Iterable[str]) -> list[PageEntry]:
    """The pages an account with ``roles`` may open, in navigation order."""
    held = list(roles)
    return [p for p in PAGES if can_open(held, p.key)]


def unlisted_page_keys() -> set[str]:
    """Role-matrix page keys with no page in the navigation (should be none)."""
    return set(PAGE_ROLES) - {p.key for p in PAGES}
