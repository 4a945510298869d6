"""Attendance codes (England, from August 2024) and the school's own additions."""

from __future__ import annotations

CATEGORIES = ("present", "approved_activity", "authorised", "unauthorised", "not_possible")

_DFE_2024: dict[str, tuple[str, str]] = {
    "/": ("present", "Present (AM)"),
    "\\": ("present", "Present (PM)"),
    "L": ("present", "Late before registers close"),
    "K": ("approved_activity", "Attending education provision arranged by the local authority"),
    "V": ("approved_activity", "Attending an educational visit or trip"),
    "P": ("approved_activity", "Participating in a sporting activity"),
    "W": ("approved_activity", "Attending work experience"),
    "B": ("approved_activity", "Attending any other approved educational activity"),
    "C": ("authorised", "Leave of absence for exceptional circumstances"),
    "C1": ("authorised", "Leave for a regulated performance or employment abroad"),
    "C2": ("authorised", "Leave for a part-time timetable"),
    "E": ("authorised", "Suspended or permanently excluded, no alternative provision"),
    "I": ("authorised", "Illness"),
    "J1": ("authorised", "Leave for an interview"),
    "M": ("authorised", "Medical or dental appointment"),
    "R": ("authorised", "Religious observance"),
    "S": ("authorised", "Study leave"),
    "T": ("authorised", "Mobile child (Traveller) travelling"),
    "G": ("unauthorised", "Holiday not granted by the school"),
    "N": ("unauthorised", "Reason for absence not yet established"),
    "O": ("unauthorised", "Absent in other or unknown circumstances"),
    "U": ("unauthorised", "Arrived after registers closed"),
    "D": ("not_possible", "Dual registered, attending another school"),
    "Q": ("not_possible", "Unable to attend: lack of access arrangements"),
    "X": ("not_possible", "Non-compulsory school age, not required to attend"),
    "Y1": ("not_possible", "Unable to attend: transport not available"),
    "Y2": ("not_possible", "Unable to attend: widespread transport disruption"),
    "Y3": ("not_possible", "Unable to attend: part of premises closed"),
    "Y4": ("not_possible", "Unable to attend: whole school closed"),
    "Y5": ("not_possible", "Unable to attend: criminal justice detention"),
    "Y6": ("not_possible", "Unable to attend: public health guidance or law"),
    "Y7": ("not_possible", "Unable to attend: any other unavoidable cause"),
    "Z": ("not_possible", "Prospective pupil not on admission register"),
    "#": ("not_possible", "Planned whole-school closure"),
}

# Withdrawn in August 2024 but still found in older extracts: loaded with a warning.
WITHDRAWN: dict[str, tuple[str, str]] = {
    "H": ("authorised", "Holiday authorised by the school (withdrawn 2024)"),
    "F": ("unauthorised", "Extended family holiday (withdrawn 2024)"),
    "J": ("authorised", "Interview (withdrawn 2024; now J1)"),
    "Y": ("not_possible", "Enforced closure (withdrawn 2024; now Y1–Y7)"),
}

# Categories that count as attending for attendance percentages.
ATTENDING = ("present", "approved_activity")
# Categories that count as possible sessions.
POSSIBLE = ("present", "approved_activity", "authorised", "unauthorised")


class CodeConfigError(ValueError):
    """The setting extra_attendance_codes is malformed."""


def parse_extra_codes(text: str) -> dict[str, str]:
    """Parse ``'EX:authorised, 9:present'`` into ``{'EX': 'authorised', '9': 'present'}``."""
    codes: dict[str, str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        code, sep, category = item.rpartition(":")
        code, category = code.strip(), category.strip().lower()
        if not sep or not code or category not in CATEGORIES:
            raise CodeConfigError(
                f"The setting extra_attendance_codes has {item!r}, which is not CODE:category. "
                f"Write pairs like 'EX:authorised', with a category from: {', '.join(CATEGORIES)}."
            )
        codes[code] = category
    return codes


def code_table(extra: str = "") -> list[tuple[str, str, str, str]]:
    """Every known code as ``(code, category, meaning, origin)``; origin is dfe, withdrawn or school."""
    rows = [(c, cat, meaning, "dfe") for c, (cat, meaning) in _DFE_2024.items()]
    rows += [(c, cat, meaning, "withdrawn") for c, (cat, meaning) in WITHDRAWN.items()]
    for code, category in parse_extra_codes(extra).items():
        rows = [r for r in rows if r[0] != code]
        rows.append((code, category, "School's own code", "school"))
    return rows
