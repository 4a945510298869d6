"""Mail-merged postal letters: one PDF, each letter starting on a new page.

Each letter has the school's letterhead (``school_name`` and ``school_address``), the
date and a reference, the address block placed for a DL window envelope (20 mm from
the left, 45 mm from the top of an A4 sheet folded in three), a salutation, the body
(plain text; paragraphs separated by blank lines) and a sign-off above
``letter_signatory``. Long letters flow onto more pages, each continuation page
headed with the addressee's name and the page number.

Fonts: fpdf2's built-in fonts only know Latin-1, so a Unicode TrueType font is looked
for in :data:`FONT_CANDIDATES` (DejaVu Sans from Debian's ``fonts-dejavu-core``,
Liberation, Noto, Arial on Windows and macOS) or passed as ``font_path``. A character
the font lacks is printed as its plain equivalent (’ → ', ŵ → w, € → EUR) or ``?``.
If no TrueType font is found at all, the letters use Helvetica and every character
outside Latin-1 is replaced in the same way; Zoë, Siobhán and Ní stay as they are,
since Latin-1 has those letters. No character ever stops a letter being printed.
"""

from __future__ import annotations

import datetime
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from senders.segments import SMART_ENCODING_MAP

# (regular, bold) TrueType files to try, in order; the first regular one found is used.
BUNDLED_FONTS = Path(__file__).resolve().parent / "fonts"
FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
    (
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
        "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
    ),
    ("C:/Windows/Fonts/arial.ttf", "C:/Windows/Fonts/arialbd.ttf"),
    (
        "/System/Library/Fonts/Supplemental/Arial.ttf",
        "/System/Library/Fonts/Supplemental/Arial Bold.ttf",
    ),
    ("/Library/Fonts/Arial.ttf", "/Library/Fonts/Arial Bold.ttf"),
    # Shipped with schoolcomms (Bitstream Vera / DejaVu licence): letters print every
    # name as typed even on a machine with no fonts installed.
    (str(BUNDLED_FONTS / "DejaVuSans.ttf"), str(BUNDLED_FONTS / "DejaVuSans-Bold.ttf")),
)
# Letters that Unicode does not decompose into letter + accent, and the euro sign.
_PLAIN_EXTRA = {"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "œ": "oe", "Œ": "OE", "ı": "i"}
_PLAIN_EXTRA["€"] = "EUR"
_MONTHS = ("January", "February", "March", "April", "May", "June", "July")
_MONTHS += ("August", "September", "October", "November", "December")  # whatever the locale
_IMPERSONAL = re.compile(r"\b(sir|madam|parents?|carers?|guardians?|colleagues?)\b", re.I)
_FAMILY = "letter"
WINDOW_LEFT_MM, WINDOW_TOP_MM, WINDOW_WIDTH_MM, WINDOW_HEIGHT_MM = 20.0, 45.0, 90.0, 40.0


@dataclass
class Letter:
    """One letter to one contact about one student; ``body`` is already merged."""

    contact_name: str
    address_lines: list[str]
    salutation: str
    body: str
    student_id: str
    contact_id: str
    date: datetime.date


def find_unicode_font(
    candidates: Sequence[tuple[str, str]] | None = None,
) -> tuple[Path, Path | None] | None:
    """The first (regular, bold or None) TrueType pair present here, or None if none is."""
    for regular, bold in FONT_CANDIDATES if candidates is None else candidates:
        if Path(regular).is_file():
            return Path(regular), (Path(bold) if Path(bold).is_file() else None)
    return None


def format_date(day: datetime.date) -> str:
    """A date as British letters write it, whatever the locale: ``3 September 2026``."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def sign_off(salutation: str) -> str:
    """``Yours faithfully`` after "Dear Sir or Madam" / "Dear Parent/Carer", else sincerely."""
    return "Yours faithfully" if _IMPERSONAL.search(salutation) else "Yours sincerely"


def _plain(char: str, printable: Callable[[str], bool]) -> str:
    """A stand-in for ``char`` made only of characters that ``printable`` accepts."""
    for option in (
        SMART_ENCODING_MAP.get(char),
        _PLAIN_EXTRA.get(char),
        "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)),
    ):
        if option is not None and option != char and all(printable(c) for c in option):
            return option
    return "?"


def safe_text(text: str, printable: Callable[[str], bool]) -> str:
    """``text`` with line breaks kept, controls and invisible marks dropped, and every
    character ``printable`` rejects replaced by a plain stand-in (see :func:`_plain`)."""
    text = unicodedata.normalize("NFC", str(text).replace("\r\n", "\n").replace("\r", "\n"))
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char == "\n" or (category[0] != "C" and printable(char)):
            out.append(char)
        elif char == "\t" or category == "Zs":
            out.append(" ")
        elif category in ("Cs", "Co", "Cn"):
            out.append("?")  # broken, private or unassigned: show that something was there
        elif category not in ("Cc", "Cf"):  # controls and invisible format marks are dropped
            out.append(_plain(char, printable))
    return "".join(out)


class _LetterPDF(FPDF):
    """FPDF that heads each continuation page of a letter with who it is for."""

    def __init__(self, font: tuple[Path, Path | None] | None) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.set_margins(20, 15, 20)
        self.set_auto_page_break(True, margin=20)
        self.first_page = 0
        self.continuation = ""
        if font is None:
            self.letter_font = "Helvetica"
            self.printable: Callable[[str], bool] = lambda c: ord(c) < 256
            return
        regular, bold = font
        self.letter_font = _FAMILY
        self.add_font(_FAMILY, "", str(regular))
        self.add_font(_FAMILY, "B", str(bold or regular))
        glyphs = set(self.fonts[_FAMILY].cmap) & set(self.fonts[_FAMILY + "B"].cmap)
        self.printable = lambda c: ord(c) in glyphs

    def safe(self, value: str, one_line: bool = False) -> str:
        """``value`` made safe for the font in use; ``one_line`` turns breaks into spaces."""
        text = safe_text(value, self.printable)
        return " ".join(text.split("\n")).strip() if one_line else text

    def header(self) -> None:
        if self.page > self.first_page and self.continuation:
            self.set_font(self.letter_font, size=8)
            self.set_text_color(90)
            number = self.page - self.first_page + 1
            self.cell(0, 4, f"{self.continuation} - page {number}", align="R")
            self.set_y(self.t_margin + 10)


def _lines(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _write_letter(pdf: _LetterPDF, letter: Letter, settings: Any) -> None:
    safe = pdf.safe
    pdf.continuation = ""
    pdf.first_page = pdf.page + 1
    pdf.add_page()
    pdf.continuation = safe(f"{letter.contact_name}, {format_date(letter.date)}", True)
    width = pdf.w - pdf.l_margin - pdf.r_margin

    # Letterhead, right-aligned so it never enters the envelope window.
    pdf.set_font(pdf.letter_font, "B", 16)
    pdf.cell(
        width,
        8,
        safe(settings["school_name"], True),
        align="R",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_font(pdf.letter_font, size=9)
    for line in _lines(settings["school_address"]):
        pdf.cell(width, 4.2, safe(line, True), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    top = max(WINDOW_TOP_MM, pdf.get_y() + 3)

    # Date and reference on the right, beside the window.
    pdf.set_xy(pdf.w - pdf.r_margin - 70, top)
    pdf.set_font(pdf.letter_font, size=10)
    pdf.cell(70, 5, format_date(letter.date), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(pdf.letter_font, size=8)
    reference = safe(f"Ref: {letter.student_id}/{letter.contact_id}", True)
    pdf.cell(70, 4, reference, align="R")

    # Address block inside the DL window; squeezed, not cut, if it is long.
    address = [letter.contact_name, *letter.address_lines]
    address = [safe(line, True) for line in address]
    address = [line for line in address if line]
    step = min(5.0, WINDOW_HEIGHT_MM / max(len(address), 1))
    pdf.set_xy(WINDOW_LEFT_MM, WINDOW_TOP_MM)
    for line in address:
        size = 10.0
        pdf.set_font(pdf.letter_font, size=size)
        while size > 7 and pdf.get_string_width(line) > WINDOW_WIDTH_MM - 8:
            size -= 0.5  # a long line shrinks to stay inside the window
            pdf.set_font(pdf.letter_font, size=size)
        pdf.set_x(WINDOW_LEFT_MM)
        pdf.cell(WINDOW_WIDTH_MM - 5, step, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.set_y(max(WINDOW_TOP_MM + WINDOW_HEIGHT_MM + 10, pdf.get_y() + 10))
    pdf.set_font(pdf.letter_font, size=11)
    salutation = letter.salutation.strip() or "Dear Parent/Carer"
    pdf.multi_cell(width, 5.5, safe(salutation), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    body = safe(letter.body).strip()
    for paragraph in re.split(r"\n[ \t]*\n\s*", body) if body else []:
        pdf.multi_cell(width, 5.5, paragraph, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(3)

    signatory = _lines(settings["letter_signatory"]) or [settings["school_name"]]
    if pdf.will_page_break(14 + 5.5 * (len(signatory) + 1)):
        pdf.add_page()  # keep the sign-off and signatory together
    pdf.ln(3)
    pdf.cell(width, 5.5, sign_off(salutation), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(14)  # room to sign
    for i, line in enumerate(signatory):
        pdf.set_font(pdf.letter_font, "B" if i == 0 else "", 11)
        pdf.cell(width, 5.5, safe(line, True), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def build_letters(
    letters: Sequence[Letter],
    settings: Any,
    out_path: Path,
    *,
    font_path: Path | None = None,
    compress: bool = True,
) -> Path:
    """Write ``letters`` into one PDF at ``out_path`` (replaced atomically) and return it.

    ``settings`` gives ``school_name``, ``school_address`` (lines separated by commas)
    and ``letter_signatory`` (likewise). ``font_path`` names a TrueType font to use
    instead of searching :data:`FONT_CANDIDATES`; ``compress=False`` leaves page
    content readable, for tests. Raises ValueError if there are no letters.
    """
    if not letters:
        raise ValueError("There are no letters to print.")
    font = (Path(font_path), None) if font_path else find_unicode_font()
    pdf = _LetterPDF(font)
    pdf.set_compression(compress)
    school = pdf.safe(settings["school_name"])
    pdf.set_title(f"Letters from {school}")
    pdf.set_author(school)
    pdf.set_creator("schoolcomms")
    for letter in letters:
        _write_letter(pdf, letter, settings)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")
    try:
        pdf.output(str(partial))
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return out_path
