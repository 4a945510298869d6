"""Postal letters: one PDF of mail-merged letters, positioned for window envelopes.

The PDFs are read back with a small text extractor written here (pypdf is not a
project dependency): page content is left uncompressed with ``compress=False``, and
text drawn in an embedded TrueType font is decoded through the font's ToUnicode map.
"""

from __future__ import annotations

import datetime
import logging
import re
from pathlib import Path

import pytest

from schoolcomms.settings import Settings
from senders import letters as letters_module
from senders.letters import Letter, build_letters, find_unicode_font, format_date, sign_off

MM = 72 / 25.4  # PDF points per millimetre
A4_HEIGHT_PT = 841.89

# --- a minimal reader for fpdf2's uncompressed output ------------------------------

_OBJ = re.compile(rb"(\d+) 0 obj\s*(.*?)\s*endobj", re.S)
_STRING = rb"\((?:\\.|[^\\)])*\)"
_OPS = re.compile(
    rb"/(F\d+)\s+[\d.]+\s+Tf|([\d.-]+)\s+([\d.-]+)\s+Td|(" + _STRING + rb")\s*Tj"
    rb"|\[((?:" + _STRING + rb"|[^\]])*)\]\s*TJ",
    re.S,
)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(literal: bytes) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1].isdigit():
            return bytes([int(code, 8)])
        return _ESCAPES.get(code, code)

    return re.sub(rb"\\([0-7]{1,3}|.)", one, literal[1:-1], flags=re.S)


def _stream(body: bytes) -> bytes:
    return body.split(b"stream", 1)[1].split(b"endstream", 1)[0].strip(b"\r\n")


def read_pdf(path: Path) -> list[list[tuple[float, float, str]]]:
    """Per page, the text drawn as (x mm from left, y mm from top, text), in order."""
    data = path.read_bytes()
    objects = {int(n): body for n, body in _OBJ.findall(data)}
    decoders = {}
    for body in objects.values():
        for fonts in re.findall(rb"/Font\s*<<(.*?)>>", body, re.S):
            for name, ref in re.findall(rb"/(F\d+)\s+(\d+) 0 R", fonts):
                font = objects[int(ref)]
                to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", font)
                if to_unicode is None:  # a core font: Latin-1 bytes
                    decoders[name] = lambda raw: raw.decode("latin-1")
                    continue
                cmap_stream = _stream(objects[int(to_unicode.group(1))])
                cmap = {
                    int(cid, 16): bytes.fromhex(uni.decode()).decode("utf-16-be")
                    for cid, uni in re.findall(rb"<([0-9A-F]{4})> <([0-9A-F]+)>", cmap_stream)
                }
                decoders[name] = lambda raw, cmap=cmap: "".join(
                    cmap[int.from_bytes(raw[i : i + 2], "big")] for i in range(0, len(raw), 2)
                )
    pages = []
    for body in objects.values():
        if not re.search(rb"/Type /Page\b(?!s)", body):
            continue
        content = _stream(objects[int(re.search(rb"/Contents (\d+) 0 R", body).group(1))])
        font, x, y, texts = None, 0.0, 0.0, []
        for match in _OPS.finditer(content):
            if match.group(1):
                font = match.group(1)
            elif match.group(2):
                x, y = float(match.group(2)), float(match.group(3))
            else:
                pieces = [match.group(4)] if match.group(4) else re.findall(_STRING, match.group(5))
                text = "".join(decoders[font](_unescape(p)) for p in pieces)
                texts.append((x / MM, (A4_HEIGHT_PT - y) / MM, text))
        pages.append(texts)
    return pages


def page_text(page: list[tuple[float, float, str]]) -> str:
    return "\n".join(text for _, _, text in page)


def count_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", path.read_bytes()))


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.toml").write_text(
        'school_name = "Hillside Academy"\n'
        'school_address = "1 School Lane, Hilltown, Shire, HT1 2AB"\n'
        'letter_signatory = "Mrs J Smith, Headteacher"\n',
        encoding="utf-8",
    )
    return Settings(data, env={})


DAY = datetime.date(2026, 9, 3)


def three_letters() -> list[Letter]:
    return [
        Letter(
            "Mrs Alice Able",
            ["12 High Street", "Hilltown", "HT1 3CD"],
            "Dear Mrs Able",
            "Ann has been absent.\n\nPlease call the office.",
            "S1",
            "C1",
            DAY,
        ),
        Letter(
            "Zoë O’Brien",
            ["Flat 2, Tŷ Newydd", "Siobhán Court", "Hilltown", "HT1 4EF"],
            "Dear Ms O’Brien",
            "Thank you for Zoë’s form.",
            "S2",
            "C2",
            DAY,
        ),
        Letter(
            "Mr Bill Baker",
            ["3 Low Road", "HT1 5GH"],
            "Dear Parent/Carer",
            "Hello.",
            "S3",
            "C3",
            DAY,
        ),
    ]


# --- tests -------------------------------------------------------------------------


def test_three_letters_make_a_valid_pdf_of_three_pages(settings, tmp_path):
    out = build_letters(three_letters(), settings, tmp_path / "out" / "letters.pdf")
    data = out.read_bytes()
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    assert count_pages(out) == 3
    assert re.search(rb"/Type /Pages\s", data) and b"/Count 3" in data
    assert not list(out.parent.glob(".*partial"))


def test_each_page_carries_its_letter(settings, tmp_path):
    out = build_letters(three_letters(), settings, tmp_path / "l.pdf", compress=False)
    pages = [page_text(p) for p in read_pdf(out)]
    assert len(pages) == 3
    for page, letter in zip(pages, three_letters(), strict=True):
        lines = page.splitlines()
        assert lines[0] == "Hillside Academy"
        assert lines[1:5] == ["1 School Lane", "Hilltown", "Shire", "HT1 2AB"]
        assert "3 September 2026" in lines
        assert f"Ref: {letter.student_id}/{letter.contact_id}" in lines
        assert [letter.contact_name, *letter.address_lines] == lines[
            7 : 8 + len(letter.address_lines)
        ]
        assert letter.salutation in lines
        assert lines[-3:] == [sign_off(letter.salutation), "Mrs J Smith", "Headteacher"]
    assert "Ann has been absent." in pages[0] and "Please call the office." in pages[0]
    assert pages[2].splitlines()[-3] == "Yours faithfully"
    assert pages[0].splitlines()[-3] == "Yours sincerely"


def test_curly_apostrophe_and_accents_print_as_typed(settings, tmp_path, caplog):
    assert find_unicode_font() is not None, "schoolcomms ships DejaVu Sans (senders/fonts)"
    with caplog.at_level(logging.WARNING):
        out = build_letters(three_letters(), settings, tmp_path / "l.pdf", compress=False)
    text = page_text(read_pdf(out)[1])
    for expected in ["Zoë O’Brien", "Flat 2, Tŷ Newydd", "Siobhán Court", "Dear Ms O’Brien"]:
        assert expected in text.splitlines()
    assert "Thank you for Zoë’s form." in text
    assert b"/FontFile2" in out.read_bytes()  # the TrueType font is embedded
    assert "missing" not in caplog.text


def test_address_sits_in_the_dl_window(settings, tmp_path):
    out = build_letters(three_letters(), settings, tmp_path / "l.pdf", compress=False)
    for page, letter in zip(read_pdf(out), three_letters(), strict=True):
        wanted = [letter.contact_name, *letter.address_lines]
        block = [(x, y) for x, y, t in page if t in wanted and x < 100]  # not the letterhead
        assert len(block) == 1 + len(letter.address_lines)
        assert all(abs(x - 20) < 1.5 for x, _ in block)  # fpdf2 pads cells by 1 mm
        assert 45 < block[0][1] < 45 + 6  # first baseline just below the window's top
        assert all(45 <= y <= 45 + 40 for _, y in block)  # inside the window, top to bottom


def test_without_a_unicode_font_text_falls_back_to_latin1(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(letters_module, "FONT_CANDIDATES", ())
    odd = Letter(
        "Zoë O’Brien",
        ["Łódź Street", "Tŷ Newydd"],
        "Dear Ms O’Brien",
        "Fees: €5 – “due” soon… 😀 中",
        "S9",
        "C9",
        DAY,
    )
    out = build_letters([*three_letters(), odd], settings, tmp_path / "l.pdf", compress=False)
    assert b"/FontFile2" not in out.read_bytes() and b"/Helvetica" in out.read_bytes()
    lines = page_text(read_pdf(out)[3]).splitlines()
    for expected in ["Zoë O'Brien", "Lódz Street", "Ty Newydd", "Dear Ms O'Brien"]:
        assert expected in lines
    assert 'Fees: EUR5 - "due" soon... ? ?' in lines
    assert "Siobhán Court" in page_text(read_pdf(out)[1])  # Latin-1 has á


def test_no_character_stops_a_letter(settings, tmp_path, caplog):
    nasty = (
        "".join(map(chr, range(0, 0x250))) + "\ud800 \U0001f3f3\ufe0f\u200d\U0001f308 مرحبا \ue000"
    )
    letter = Letter(nasty, [nasty], nasty, nasty + "\r\n\r\n" + nasty, "S\x00", "C\t", DAY)
    with caplog.at_level(logging.WARNING):
        out = build_letters([letter], settings, tmp_path / "l.pdf", compress=False)
    assert count_pages(out) >= 1 and "missing" not in caplog.text
    assert "Zoë" not in page_text(read_pdf(out)[0])  # sanity: the reader is not guessing
    assert "ÀÁÂ" in page_text(read_pdf(out)[0])


def test_a_long_letter_flows_onto_headed_pages(settings, tmp_path):
    first, second, third = three_letters()
    first.body = "\n\n".join(f"Paragraph {i} " + "lorem ipsum " * 30 for i in range(40))
    out = build_letters([first, second], settings, tmp_path / "l.pdf", compress=False)
    pages = [page_text(p) for p in read_pdf(out)]
    assert len(pages) >= 3
    assert pages[1].splitlines()[0] == "Mrs Alice Able, 3 September 2026 - page 2"
    assert "Paragraph 39" in pages[-2]
    assert pages[-2].splitlines()[-2:] == ["Mrs J Smith", "Headteacher"]
    assert pages[-1].splitlines()[0] == "Hillside Academy"  # the next letter starts afresh
    assert "Zoë O’Brien" in pages[-1] or "Zoë O'Brien" in pages[-1]


def test_blank_settings_and_salutation_still_make_a_letter(tmp_path):
    blank = Settings(tmp_path / "data", env={})
    letter = Letter("Mr X", [], "", "", "S1", "C1", DAY)
    out = build_letters([letter], blank, tmp_path / "l.pdf", compress=False)
    lines = page_text(read_pdf(out)[0]).splitlines()
    assert lines[0] == "Sample School" and "Dear Parent/Carer" in lines
    assert lines[-2:] == ["Yours faithfully", "Sample School"]


def test_no_letters_is_an_error(settings, tmp_path):
    with pytest.raises(ValueError, match="no letters"):
        build_letters([], settings, tmp_path / "l.pdf")
    assert not (tmp_path / "l.pdf").exists()


@pytest.mark.parametrize(
    ("salutation", "expected"),
    [
        ("Dear Mrs Able", "Yours sincerely"),
        ("Dear Sir or Madam", "Yours faithfully"),
        ("Dear Parent/Carer", "Yours faithfully"),
        ("Dear Parents and Carers", "Yours faithfully"),
        ("Dear Mr Sirett", "Yours sincerely"),
    ],
)
def test_sign_off_follows_the_salutation(salutation, expected):
    assert sign_off(salutation) == expected


def test_dates_are_british_whatever_the_locale():
    assert format_date(datetime.date(2026, 1, 9)) == "9 January 2026"
    assert format_date(DAY) == "3 September 2026"
