"""Reader for DfE Common Transfer Files (CTF XML, versions 15 to 25).

A CTF is a transfer of *some* pupils: :func:`read_ctf` turns one into the canonical
``students`` and ``contacts`` tables (see the CTF section of the loading contract) for an
upsert. Only the stdlib ElementTree parser is used; it never resolves external entities.
Phone numbers are never printed or logged, not even in problems.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.problems import ExtractError, Problem, error, warning

STUDENT_COLUMNS = [
    "student_id",
    "upn",
    "forename",
    "surname",
    "preferred_forename",
    "date_of_birth",
    "year_group",
    "status",
    "sex",
    "email",
    "mobile",
]
CONTACT_COLUMNS = [
    "student_id",
    "contact_id",
    "title",
    "forename",
    "surname",
    "relationship",
    "priority",
    "parental_responsibility",
    "mobile",
    "home_phone",
    "email",
    "address_line1",
    "address_line2",
    "town",
    "postcode",
]
KEY_COLUMNS = {"students": ("student_id", "upn"), "contacts": ("student_id", "contact_id")}
SNIFF_BYTES = 4096
_BOOLEAN = {
    **dict.fromkeys(("true", "1", "y", "yes"), "Y"),
    **dict.fromkeys(("false", "0", "n", "no"), "N"),
}
_HOUSE_NUMBER = re.compile(r"\d+[A-Za-z]?(?:\s*-\s*\d+[A-Za-z]?)?")
_EXPORT_AGAIN = (
    "export the CTF again from your MIS (in SIMS: Routines > Data Out > CTF > Export CTF)"
)

Row = dict[str, str | None]


@dataclass
class CTFRead:
    """What one CTF holds, in canonical tables, with the warnings found reading it."""

    tables: dict[str, pd.DataFrame]
    warnings: list[Problem] = field(default_factory=list)
    partial: bool = False
    source_school: str = ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(el: ET.Element | None, *paths: str) -> str | None:
    """The first non-blank text at any of ``paths`` under ``el``, whitespace tidied."""
    if el is None:
        return None
    for path in paths:
        found = el.find(path)
        if found is not None and found.text and found.text.strip():
            return " ".join(found.text.split())
    return None


class _TagLines:
    """Line numbers of the n-th start tag of an element, found only when a problem needs one."""

    def __init__(self, path: Path):
        self.path = path
        self._lines: dict[str, list[int]] = {}

    def of(self, tag: str, index: int) -> int | None:
        if tag not in self._lines:
            data = self.path.read_bytes()
            found, line, last = [], 1, 0
            for match in re.finditer(rb"<" + tag.encode() + rb"[\s/>]", data):
                line += data.count(b"\n", last, match.start())
                last = match.start()
                found.append(line)
            self._lines[tag] = found
        lines = self._lines[tag]
        return lines[index] if 0 <= index < len(lines) else None


def _phones(el: ET.Element) -> tuple[str | None, str | None, int]:
    """(first mobile, first home phone, how many further mobiles), spaces removed."""
    mobiles: list[str] = []
    homes: list[str] = []
    for phone in el.findall("Phones/Phone"):
        number = _text(phone, "PhoneNo", "TelNo")
        kind = (_text(phone, "TelephoneType") or "").upper()
        if number and kind in ("M", "H"):
            (mobiles if kind == "M" else homes).append(re.sub(r"\s+", "", number))
    return (mobiles[0] if mobiles else None, homes[0] if homes else None, max(len(mobiles) - 1, 0))


def _address(addr: ET.Element | None) -> Row:
    """address_line1/2, town and postcode from a BS7666 or a lines address."""
    out: Row = dict.fromkeys(("address_line1", "address_line2", "town", "postcode"))
    if addr is None:
        return out
    bs7666 = addr.find("BS7666Address")
    town = None
    if bs7666 is not None:
        saon, paon, street = (_text(bs7666, tag) for tag in ("SAON", "PAON", "Street"))
        lines = [saon]
        if paon and street and _HOUSE_NUMBER.fullmatch(paon):
            lines.append(f"{paon} {street}")  # "11" + "Lea Close" -> "11 Lea Close"
        else:
            lines += [paon, street]
        lines.append(_text(bs7666, "Locality"))
        town = _text(bs7666, "PostTown", "Town")
    else:
        block = addr.find("AddressLines")  # AddressLine1..5, in order
        lines = [" ".join(x.text.split()) for x in block if x.text] if block is not None else []
    lines = [line for line in lines if line] or [None]
    out.update(
        address_line1=lines[0],
        address_line2=", ".join(lines[1:]) or None,
        town=town,
        postcode=_text(addr, "PostCode", "ZIP", "Zip"),
    )
    return out


def _header(el: ET.Element) -> tuple[bool, str]:
    """(partial?, "School Name (LEA/Estab)") from the CTF header."""
    partial = (_text(el, "DocumentQualifier") or "").lower() == "partial"
    school = el.find("SourceSchool")
    name = _text(school, "SchoolName")
    code = "/".join(part for part in (_text(school, "LEA"), _text(school, "Estab")) if part)
    return partial, (f"{name} ({code})" if name and code else name or code or "")


def _pupil(
    el: ET.Element,
    index: int,
    first_contact: int,
    label: str,
    lines: _TagLines,
    warnings: list[Problem],
) -> tuple[Row, list[tuple[int, Row]]]:
    """One pupil's student row and its (order, contact row) pairs."""

    def get(tag: str) -> str | None:
        return _text(el, tag, f"BasicDetails/{tag}")

    upn = get("UPN")
    name = " ".join(part for part in (get("Forename"), get("Surname")) if part) or "no name"
    where = {"file": label, "line": lines.of("Pupil", index)}
    if not upn:
        raise ExtractError(
            error(
                f"pupil {index + 1} in this CTF ({name}) has no UPN",
                f"record the pupil's UPN (or a temporary UPN) in your MIS, then {_EXPORT_AGAIN}",
                column="UPN",
                **where,
            )
        )
    dob = get("DOB")
    if dob:
        try:
            dob = date.fromisoformat(dob).isoformat()
        except ValueError:
            raise ExtractError(
                error(
                    f"pupil {upn} has a date of birth that is not a date",
                    f"correct the date of birth in your MIS, then {_EXPORT_AGAIN}",
                    column="DOB",
                    value=dob,
                    **where,
                )
            ) from None
    mobile, _home, extra = _phones(el)
    if extra:
        warnings.append(_extra_mobile(f"pupil {upn} ({name})", upn, "students", where))
    student: Row = {
        "student_id": upn,
        "upn": upn,
        "forename": get("Forename"),
        "surname": get("Surname"),
        "preferred_forename": get("PreferredForename"),
        "date_of_birth": dob,
        "year_group": get("NCyearActual"),
        "status": get("EnrolStatus"),
        "sex": get("Sex") or get("Gender"),
        "email": get("Email"),
        "mobile": mobile,
    }
    home = _address(el.find("Address"))
    contacts: list[tuple[int, Row]] = []
    for n, contact in enumerate(el.findall("Contacts/Contact")):
        where = {"file": label, "line": lines.of("Contact", first_contact + n), "value": upn}
        cname = " ".join(p for p in (_text(contact, "Forename"), _text(contact, "Surname")) if p)
        who = f"contact {cname or n + 1} of pupil {upn}"
        raw_order = _text(contact, "Order")
        try:
            order = int(raw_order or "")
        except ValueError:
            order = n + 1
            warnings.append(
                warning(
                    f"{who} has Order {raw_order!r}, not a whole number; position {order} used",
                    f"give the contact a priority in your MIS, then {_EXPORT_AGAIN}",
                    extract="contacts",
                    column="priority",
                    **where,
                )
            )
        raw_resp = _text(contact, "Responsibility")
        responsibility = _BOOLEAN.get((raw_resp or "").lower())
        if raw_resp and responsibility is None:
            warnings.append(
                warning(
                    f"{who} has Responsibility {raw_resp!r}, not true/false; left blank",
                    f"set parental responsibility for the contact in your MIS, then {_EXPORT_AGAIN}",
                    extract="contacts",
                    column="parental_responsibility",
                    **where,
                )
            )
        addr = contact.find("Address")
        as_pupil = _BOOLEAN.get((_text(addr, "AddressAsPupil") or "").lower()) == "Y"
        cmobile, chome, extra = _phones(contact)
        if extra:
            warnings.append(_extra_mobile(who, upn, "contacts", where))
        contacts.append(
            (
                order,
                {
                    "student_id": upn,
                    "contact_id": f"{upn}-{order}",
                    "title": _text(contact, "Title"),
                    "forename": _text(contact, "Forename"),
                    "surname": _text(contact, "Surname"),
                    "relationship": _text(contact, "Relationship"),
                    "priority": str(order),
                    "parental_responsibility": responsibility,
                    "mobile": cmobile,
                    "home_phone": chome,
                    "email": _text(contact, "Email"),
                    **(home if as_pupil else _address(addr)),
                },
            )
        )
    return student, contacts


def _extra_mobile(who: str, upn: str, extract: str, where: dict[str, Any]) -> Problem:
    # Never put the numbers themselves in a problem: problems are shown and logged.
    return warning(
        f"{who} has more than one mobile number; only the first listed is kept as mobile",
        "in your MIS, check which mobile the school should text, list it first and record "
        f"any other as a work or other number (or delete it), then {_EXPORT_AGAIN}",
        extract=extract,
        column="mobile",
        **{"value": upn, **where},
    )


def _frame(rows: list[Row], columns: list[str], keys: tuple[str, ...]) -> pd.DataFrame:
    """Object columns of str/None; a column with no value at all is left out."""
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    return frame[[c for c in columns if c in keys or frame[c].notna().any()]]


def is_ctf(path: Path) -> bool:
    """True when ``path`` is XML whose root element is ``CTfile`` (reads the first few KB)."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        parser = ET.XMLPullParser(events=("start",))
        parser.feed(head)
        for _event, el in parser.read_events():
            return _local(el.tag) == "CTfile"
    except (OSError, ET.ParseError):
        return False
    return False


def read_ctf(path: Path, file_label: str | None = None) -> CTFRead:
    """Read a CTF into canonical ``students`` and ``contacts`` tables.

    ``student_id`` is the UPN, ``contact_id`` is ``<UPN>-<Order>``; contacts are sorted by
    pupil then Order (``priority``). Raises :class:`ExtractError` for a file that is not
    well-formed XML, not a CTF, holds no pupils, or has a pupil without a UPN.
    """
    path = Path(path)
    label = file_label or path.name
    lines = _TagLines(path)
    partial, source, root_seen, contact_count = False, "", False, 0
    students: list[Row] = []
    contacts: list[tuple[str, int, Row]] = []
    warnings: list[Problem] = []
    seen: dict[str, int] = {}
    try:
        with path.open("rb") as handle:
            for event, el in ET.iterparse(handle, events=("start", "end")):
                el.tag = _local(el.tag)
                if event == "start":
                    if not root_seen and el.tag != "CTfile":
                        raise ExtractError(_not_ctf(label, f"its root element is <{el.tag}>"))
                    root_seen = True
                elif el.tag == "Header":
                    partial, source = _header(el)
                elif el.tag == "Pupil":
                    index = len(students)
                    student, pairs = _pupil(el, index, contact_count, label, lines, warnings)
                    contact_count += len(pairs)
                    upn = student["student_id"] or ""
                    if upn in seen:
                        first = lines.of("Pupil", seen[upn])
                        raise ExtractError(
                            error(
                                f"UPN {upn} is in this CTF twice (also at line {first})",
                                f"correct the duplicate UPN in your MIS, then {_EXPORT_AGAIN}",
                                file=label,
                                line=lines.of("Pupil", index),
                                column="UPN",
                                value=upn,
                            )
                        )
                    seen[upn] = index
                    students.append(student)
                    contacts += [(upn, order, row) for order, row in pairs]
                    el.clear()
    except OSError as exc:
        raise ExtractError(
            error(
                f"cannot open this file ({exc.strerror or exc})",
                "check the file is still there and readable, then load it again",
                file=label,
            )
        ) from None
    except ET.ParseError as exc:
        line, column = exc.position
        if not root_seen:
            raise ExtractError(_not_ctf(label, "it is not XML", line)) from None
        reason = str(exc).rsplit(": line", 1)[0]
        raise ExtractError(
            error(
                f"this CTF is not well-formed XML ({reason} at line {line}, column {column + 1})",
                f"do not edit the CTF by hand: {_EXPORT_AGAIN} and load the new file as it is "
                f"(if you must, repair the XML at line {line})",
                file=label,
                line=line,
            )
        ) from None
    if not students:
        raise ExtractError(
            error(
                "this CTF holds no pupils",
                f"{_EXPORT_AGAIN} with the pupils you are transferring selected",
                file=label,
            )
        )
    students.sort(key=lambda row: row["student_id"] or "")
    contacts.sort(key=lambda item: (item[0], item[1]))
    return CTFRead(
        tables={
            "students": _frame(students, STUDENT_COLUMNS, KEY_COLUMNS["students"]),
            "contacts": _frame(
                [row for *_, row in contacts], CONTACT_COLUMNS, KEY_COLUMNS["contacts"]
            ),
        },
        warnings=warnings,
        partial=partial,
        source_school=source,
    )


def _not_ctf(label: str, why: str, line: int | None = None) -> Problem:
    return error(
        f"this file is not a DfE Common Transfer File ({why}; a CTF is XML whose root "
        "element is <CTfile>)",
        "choose the CTF .xml file your MIS exported (it starts with <CTfile>); load CSV or "
        "XLSX extracts as extracts, not as a CTF",
        file=label,
        line=line,
    )
