"""Checking what people type for a weekly report schedule: recipients, day and time.

Every parser raises :class:`ScheduleProblem`, whose ``problems`` say in words what is
wrong, so the dashboard and the CLI can show all the reasons at once. Nothing here
touches the database; :mod:`senders.report_schedules` checks before it writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from email_validator import EmailNotValidError, validate_email

from reports.weekly import REPORTS
from schoolcomms.settings import Settings, SettingsError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_RECIPIENTS = 50


class ScheduleProblem(ValueError):
    """A schedule that cannot be saved; ``problems`` says every reason, in words."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


def parse_recipients(value: str | Iterable[str]) -> list[str]:
    """E-mail addresses from text (commas, semicolons, spaces or lines) or a list.

    Returns them normalised (as ``email_validator`` writes them), without duplicates,
    in order. Raises :class:`ScheduleProblem` naming every address that is not valid.
    """
    items = re.split(r"[,;\s]+", value) if isinstance(value, str) else list(value)
    found: dict[str, str] = {}
    problems = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            address = validate_email(item, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            problems.append(f"{item!r} is not an e-mail address ({exc}).")
            continue
        found.setdefault(address.lower(), address)
    if len(found) > MAX_RECIPIENTS:
        problems.append(
            f"A schedule can have at most {MAX_RECIPIENTS} recipients; use a mailing list "
            "address for more."
        )
    if problems:
        problems.append("Write e-mail addresses separated by commas, e.g. head@school.example.org.")
        raise ScheduleProblem(problems)
    return list(found.values())


def parse_time(text: str) -> str:
    """``HH:MM`` (24-hour) from ``7:00``, ``07:00`` or ``07:00:00``; ScheduleProblem if not."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::00)?\s*", str(text or ""))
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        return f"{int(match[1]):02d}:{match[2]}"
    raise ScheduleProblem(
        [f"{text!r} is not a time of day: write HH:MM on the 24-hour clock, e.g. 07:00."]
    )


def parse_weekday(value: int | str) -> int:
    """0–6 (Monday = 0) from a number or a day's name (``Mon``, ``monday``)."""
    if isinstance(value, str) and not value.strip().isdigit():
        name = value.strip().lower()
        for number, day in enumerate(WEEKDAYS):
            if len(name) >= 3 and day.lower().startswith(name):
                return number
        raise ScheduleProblem([f"{value!r} is not a day of the week: write Monday … Sunday."])
    number = int(value)
    if not 0 <= number <= 6:
        raise ScheduleProblem([f"The day must be 0 (Monday) to 6 (Sunday), not {number}."])
    return number


def parse_when(text: str) -> tuple[int, str]:
    """``(weekday, "HH:MM")`` from text such as ``Monday 07:00``."""
    day, _, time_text = str(text or "").strip().partition(" ")
    return parse_weekday(day), parse_time(time_text)


def default_when(settings: Settings) -> tuple[int, str]:
    """The setting ``weekly_report_default_time`` as ``(weekday, "HH:MM")``."""
    try:
        return parse_when(str(settings["weekly_report_default_time"]))
    except ScheduleProblem as exc:
        raise SettingsError(
            f"The setting weekly_report_default_time is "
            f"{settings['weekly_report_default_time']!r}: {exc} Write a day and a time, "
            "e.g. 'Monday 07:00'."
        ) from exc


def check_schedule(
    report: str,
    recipients: str | Iterable[str],
    weekday: int | str,
    time_of_day: str,
    enabled: bool,
) -> tuple[str, list[str], int, str]:
    """A whole schedule checked: ``(report, recipients, weekday, "HH:MM")``.

    Raises one :class:`ScheduleProblem` listing every problem found, not just the first.
    """
    problems: list[str] = []
    if report not in REPORTS:
        problems.append(
            f"There is no report called {report!r}; choose one of {', '.join(REPORTS)}."
        )
    checked: dict[str, Any] = {}
    for name, parse, value in (
        ("recipients", parse_recipients, recipients),
        ("weekday", parse_weekday, weekday),
        ("time", parse_time, time_of_day),
    ):
        try:
            checked[name] = parse(value)
        except ScheduleProblem as exc:
            problems += exc.problems
        except (TypeError, ValueError):
            problems.append(f"The {name} {value!r} cannot be read.")
    if enabled and "recipients" in checked and not checked["recipients"]:
        problems.append(
            "An enabled schedule needs at least one recipient: add an e-mail address, or "
            "switch the schedule off."
        )
    if problems:
        raise ScheduleProblem(problems)
    return report, checked["recipients"], checked["weekday"], checked["time"]


__all__ = [
    "MAX_RECIPIENTS",
    "WEEKDAYS",
    "ScheduleProblem",
    "check_schedule",
    "default_when",
    "parse_recipients",
    "parse_time",
    "parse_weekday",
    "parse_when",
]
