"""Property-based tests (hypothesis): readers, SMS segments and the template sandbox.

- Any bytes given to the extract readers (as students.csv, marks.csv, an .xlsx or a CTF
  .xml, raw or shaped like the real thing) give a load report in words or a valid load:
  never an exception, and a refused load leaves the warehouse generation as it was.
- :func:`senders.segments.count` agrees with an independent count written here from
  3GPP TS 23.038 (the GSM 7-bit default alphabet and its extension table) and Python's
  UTF-16 codec, cutting the *encoded* units into parts.
- Random attribute-access payloads and the classic Jinja escapes are refused when a
  template is saved to the bank and when one is rendered; merge values are never
  rendered a second time.

Example counts are modest (deadline off, 40–100 examples) so the suite stays fast.
"""

from __future__ import annotations

import csv
import io
import itertools
import shutil
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import openpyxl
import pytest
from conftest import MINIMAL_SCHOOL, Cli, write_extracts
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.load import load_paths
from schoolcomms.ops.db import close_all, open_ops
from schoolcomms.ops.history import recent_audit
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders import segments
from senders.bank import list_templates, save_template
from senders.templates import TemplateProblem, render, render_message, validate
from senders.templates import TemplateText as Text

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_dirs = itertools.count()


# ---- readers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data directory with the minimal school loaded, shared by a module's examples."""
    root = tmp_path_factory.mktemp("fuzz")
    write_extracts(root / "school", MINIMAL_SCHOOL)
    settings_ = Settings(root / "data", env={})
    assert load_paths([root / "school"], settings_).ok
    yield settings_
    close_all()


def drop(school: Settings, name: str, data: bytes) -> Path:
    """``data`` written as ``name`` in a fresh folder beside the data directory."""
    folder = school.data_dir.parent / f"in-{next(_dirs)}"
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    return path


def check_load(school: Settings, path: Path) -> None:
    """The load gives a report in words, never an exception; refused means unchanged."""
    warehouse = Warehouse.from_settings(school)
    before = warehouse.generation()
    report = load_paths([path], school)  # an exception here fails the example
    after = Warehouse.from_settings(school).generation()
    texts = [p.as_text() for p in report.problems]
    assert all(text.strip() and "Traceback" not in text for text in texts)
    if report.ok:
        assert after == before + 1, report.summary()
    else:
        assert report.errors and after == before, texts
        assert all(p.fix for p in report.errors), texts
    shutil.rmtree(path.parent, ignore_errors=True)


ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16", "latin-1"])
CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "S1", "L1", "O", "/", "2026-09-03", "03/09/2026", "2026-09-03 09:05", "Y", "N"]
    ),
    st.sampled_from(['=HYPERLINK("http://x")', "\x00", '"', ",", "\r\n", "31/02/2026", "99:99"]),
)


@st.composite
def csv_bytes_like(draw: st.DrawFn, columns: list[str]) -> bytes:
    """A CSV shaped like an extract: some real headers (maybe mangled), random cells."""
    header = draw(st.lists(st.sampled_from([*columns, "junk", ""]), min_size=1, max_size=9))
    header = [draw(st.sampled_from([h, h.upper(), h.replace("_", " "), f" {h} "])) for h in header]
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=len(header) + 2), max_size=6))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    encoding = draw(ENCODINGS)
    return out.getvalue().encode(encoding, errors="replace")


STUDENT_COLUMNS = list(MINIMAL_SCHOOL["students"][0])
MARK_COLUMNS = list(MINIMAL_SCHOOL["marks"][0])


@FAST
@given(data=st.binary(max_size=600))
@example(data=b"")
@example(data=b"\xef\xbb\xbf")
@example(data=b"student_id,forename,surname,status\n")
@example(data=b"\xff\xfe\x00\x00")
def test_any_bytes_as_students_csv(school: Settings, data: bytes) -> None:
    check_load(school, drop(school, "students.csv", data))


@FAST
@given(data=csv_bytes_like(STUDENT_COLUMNS))
def test_students_csv_shaped_input(school: Settings, data: bytes) -> None:
    check_load(school, drop(school, "students.csv", data))


@FAST
@given(data=st.one_of(st.binary(max_size=400), csv_bytes_like(MARK_COLUMNS)))
def test_marks_csv_any_bytes_or_shaped(school: Settings, data: bytes) -> None:
    check_load(school, drop(school, "marks.csv", data))


XLSX_VALUE = st.one_of(
    st.none(),
    st.text(max_size=10).map(lambda t: "".join(c for c in t if c.isprintable())),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.dates(),
    st.sampled_from(["=1+1", "S1", "C01", "Smith"]),
)


@st.composite
def workbook(draw: st.DrawFn) -> bytes:
    """A real .xlsx whose sheet is named after an extract (or not), random cells."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = draw(st.sampled_from(["students", "marks", "Sheet1", "staff"]))
    header = draw(st.lists(st.sampled_from([*STUDENT_COLUMNS, *MARK_COLUMNS, "x"]), max_size=8))
    if header:
        sheet.append(header)
    for row in draw(st.lists(st.lists(XLSX_VALUE, max_size=9), max_size=5)):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@FAST
@given(data=st.one_of(st.binary(max_size=400), workbook()), name=st.sampled_from(["a", "students"]))
def test_xlsx_any_bytes_or_random_workbook(school: Settings, data: bytes, name: str) -> None:
    check_load(school, drop(school, f"{name}.xlsx", data))


CTF_FIELDS = ["UPN", "Surname", "Forename", "DOB", "Sex", "Gender", "EnrolStatus", "Order"]


@st.composite
def ctf_like(draw: st.DrawFn) -> bytes:
    """A CTF skeleton with random (sometimes unescaped) text in its fields."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<CTfile>\n<Header>']
    parts.append(f"<CTFversion>{draw(st.sampled_from(['25.0', '15.0', 'x', '']))}</CTFversion>")
    parts.append("</Header>\n<CTFpupilData>")
    for _ in range(draw(st.integers(0, 3))):
        parts.append("<Pupil>")
        for field in draw(st.lists(st.sampled_from(CTF_FIELDS), max_size=6)):
            value = draw(st.one_of(st.text(max_size=14), st.sampled_from(["A123456789012"])))
            value = escape(value) if draw(st.booleans()) else value
            parts.append(f"<{field}>{value}</{field}>")
        if draw(st.booleans()):
            parts.append("<Contacts><Contact><Order>1</Order><Surname>P</Surname></Contact>")
            parts.append("</Contacts>")
        parts.append("</Pupil>")
    parts.append("</CTFpupilData>\n</CTfile>\n")
    text = "\n".join(parts)
    cut = draw(st.integers(0, len(text)))
    return (text if draw(st.booleans()) else text[:cut]).encode("utf-8", errors="replace")


@FAST
@given(data=st.one_of(st.binary(max_size=400), ctf_like()))
@example(data=b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><CTfile>&a;</CTfile>')
def test_ctf_xml_any_bytes_or_shaped(school: Settings, data: bytes) -> None:
    check_load(school, drop(school, "transfer.xml", data))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=300), csv_bytes_like(STUDENT_COLUMNS)))
def test_the_load_command_exits_0_or_2_and_never_shows_a_traceback(
    school: Settings, data: bytes
) -> None:
    path = drop(school, "students.csv", data)
    result = Cli(school.data_dir)("load", path)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output + result.stderr
    shutil.rmtree(path.parent, ignore_errors=True)


# ---- SMS segments: an independent count ------------------------------------------------

# 3GPP TS 23.038 §6.2.1, the GSM 7-bit default alphabet in code order; "\x1b" (0x1B) is
# the escape to the extension table, not a character of its own.
GSM_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
ESCAPE = 0x1B
# §6.2.1.1, the extension table: character → its code after the escape.
GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C}
GSM_EXTENSION |= {"~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
SEPTET = {char: code for code, char in enumerate(GSM_DEFAULT) if code != ESCAPE}


def gsm_septets(text: str) -> list[int] | None:
    """The septets of ``text`` in GSM-7 (escape pairs included), or None if it cannot be."""
    out: list[int] = []
    for char in text:
        if char in SEPTET:
            out.append(SEPTET[char])
        elif char in GSM_EXTENSION:
            out += [ESCAPE, GSM_EXTENSION[char]]
        else:
            return None
    return out


def ucs2_units(text: str) -> list[int]:
    """UTF-16 code units, from Python's codec."""
    data = text.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def independent_count(text: str) -> tuple[str, list[int]]:
    """(encoding, units per part): the encoded units cut at 160/153 or 70/67, never
    between an escape and its character or between the halves of a surrogate pair."""
    septets = gsm_septets(text)
    if septets is not None:
        units, single, multi, encoding = septets, 160, 153, "gsm7"

        def bad_cut(i: int) -> bool:
            return units[i - 1] == ESCAPE
    else:
        units, single, multi, encoding = ucs2_units(text), 70, 67, "ucs2"

        def bad_cut(i: int) -> bool:
            return 0xD800 <= units[i - 1] <= 0xDBFF

    if len(units) <= single:
        return encoding, [len(units)]
    parts, start = [], 0
    while start < len(units):
        end = min(start + multi, len(units))
        if end < len(units) and bad_cut(end):
            end -= 1
        parts.append(end - start)
        start = end
    return encoding, parts


GSM_CHARS = [c for c in GSM_DEFAULT if c != "\x1b"] + list(GSM_EXTENSION)
OTHER_CHARS = ["😀", "👍🏽", "🇬🇧", "’", "ç", "Ł", "你", "\u00a0", "é", "\u0301", "𝄞", "\ufeff"]
SMS_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=480),
    st.lists(st.sampled_from(GSM_CHARS + OTHER_CHARS), max_size=240).map("".join),
    st.text(max_size=200),
    st.builds(
        lambda a, n, b: a * n + b,
        st.sampled_from(["a", "€", "😀", "ç", "{"]),
        st.integers(0, 170),
        st.lists(st.sampled_from(GSM_CHARS + OTHER_CHARS), max_size=4).map("".join),
    ),
)


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("a" * 160, "gsm7", [160]),
        ("a" * 161, "gsm7", [153, 8]),
        ("€" + "a" * 159, "gsm7", [153, 8]),
        ("a" * 152 + "€" + "a" * 10, "gsm7", [152, 12]),  # an escape is not split from its code
        ("😀" * 36, "ucs2", [66, 6]),  # nor a surrogate pair
        ("", "gsm7", [0]),
    ],
)
def test_the_independent_count_itself(text: str, encoding: str, parts: list[int]) -> None:
    assert independent_count(text) == (encoding, parts)


@settings(max_examples=100, deadline=None)
@given(text=SMS_TEXT)
def test_segment_count_agrees_with_an_independent_encoding(text: str) -> None:
    encoding, parts = independent_count(text)
    counted = segments.count(text)
    assert (counted.encoding, counted.per_segment) == (encoding, parts)
    assert counted.segments == len(parts) and counted.units == sum(parts)
    assert "".join(segments.split(text)) == text
    single, multi = segments.LIMITS[encoding]
    assert all(p <= (single if len(parts) == 1 else multi) for p in parts)


@settings(max_examples=60, deadline=None)
@given(text=SMS_TEXT)
def test_normalised_text_never_costs_more(text: str) -> None:
    plain, _ = segments.normalise(text)
    assert segments.count(plain).encoding == independent_count(plain)[0]
    if segments.encoding_for(text) == "gsm7":
        assert segments.count(plain).segments <= segments.count(text).segments


# ---- templates: the sandbox ---------------------------------------------------------------

CLASSIC_ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ student.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ student|attr('__class__') }}",
    "{{ student|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ students|map(attribute='__class__')|list }}",
    "{{ students|map('attr', '__class__')|list }}",
    "{{ students|selectattr('__class__')|list }}",
    "{{ students|sort(attribute='forename.__class__') }}",
    "{{ '{0.__class__}'.format(student) }}",
    "{{ '%s'|format(student.__class__) }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{% extends 'base.html' %}",
    "{% set x = student|attr('__cl' ~ 'ass__') %}{{ x }}",
    "{{ student.forename|safe }}",
]
LEAKS = ("<class", "<built-in", "<function", "<module", "object at 0x", "/etc/", "root:")


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Any:
    engine = open_ops(Settings(tmp_path_factory.mktemp("bank") / "data", env={}))
    yield engine
    close_all()


def sample() -> dict[str, Any]:
    from senders.templates import sample_context

    return sample_context()


def refused_everywhere(engine: Any, payload: str) -> None:
    """Refused by the save-time check, by the bank, and at render (or renders nothing)."""
    assert validate(payload, channel="sms"), payload
    with pytest.raises(TemplateProblem):
        save_template(engine, name="x", channel="sms", subject=None, body=payload, actor="t")
    try:
        rendered = render(payload, sample())
    except TemplateProblem:
        return
    assert not any(leak in rendered for leak in LEAKS), rendered


@pytest.mark.parametrize("payload", CLASSIC_ESCAPES)
def test_classic_escapes_are_refused_at_save_and_at_render(bank: Any, payload: str) -> None:
    refused_everywhere(bank, payload)
    assert list_templates(bank, include_archived=True).empty
    assert "template.save" not in recent_audit(bank)["action"].tolist()


IDENT = st.from_regex(r"_[A-Za-z0-9_]{0,10}", fullmatch=True)
BASES = ["student", "contact", "school", "students[0]", "student.forename", "''", "()"]
ACCESS = [
    "{b}.{n}",
    "{b}['{n}']",
    "{b}|attr('{n}')",
    "students|map(attribute='{n}')|list",
    "students|map(attribute='forename.{n}')|list",
    "students|map('attr', '{n}')|list",
    "students|selectattr('{n}')|list",
    "students|rejectattr('{n}')|list",
    "students|sort(attribute='{n}')",
    "students|groupby('{n}')",
    "students|sum(attribute='{n}')",
    "students|unique(attribute='{n}')|list",
    "students|max(attribute='{n}')",
]


@settings(max_examples=80, deadline=None)
@example(base="student", access="{b}.{n}", name="__class__", more="", wrap="{{{{ {x} }}}}")
@example(base="''", access="{b}|attr('{n}')", name="__class__", more="", wrap="{{{{ {x} }}}}")
@given(
    base=st.sampled_from(BASES),
    access=st.sampled_from(ACCESS),
    name=IDENT,
    more=st.sampled_from(["", ".__globals__", "()", "[0]", "|string"]),
    wrap=st.sampled_from(
        ["{{{{ {x} }}}}", "{{% set v = {x} %}}{{{{ v }}}}", "{{% if {x} %}}y{{% endif %}}"]
    ),
)
def test_random_attribute_access_is_refused(
    bank: Any, base: str, access: str, name: str, more: str, wrap: str
) -> None:
    payload = wrap.format(x=access.format(b=base, n=name) + more)
    refused_everywhere(bank, payload)


@settings(max_examples=60, deadline=None)
@given(
    value=st.one_of(
        st.sampled_from(
            ["{{ 7*7 }}", "{{ ''.__class__ }}", "{% raw %}", "{#", "<script>x</script>"]
        ),
        st.text(max_size=30),
    )
)
def test_merge_values_are_never_rendered_twice(value: str) -> None:
    """A pupil whose name is template code appears as written: values are not templates."""
    context = sample()
    context["student"] = {**context["student"], "forename": value}
    text = render("Hello {{ student.forename }}!", context)
    assert text == f"Hello {value}!"
    email = render_message(
        Text("email", "About {{ student.forename }}", "Hi {{ student.forename }}"), context
    )
    assert email.html is not None and "<script>" not in email.html
    assert email.subject is not None and "\n" not in email.subject and "\r" not in email.subject
