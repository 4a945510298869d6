"""Bad extracts through the real CLI: refused (exit 2), explained, and nothing changes.

Every case runs ``schoolcomms --data-dir … load …`` on top of a warehouse that already
holds the minimal school (generation 1) and checks the exit code, the message (file,
line, column, value and the fix), that the generation is unchanged, that a ``query``
of the affected tables returns exactly what it did before, and that no traceback
escaped. The second half loads awkward but valid input and checks the stored values.
"""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import Result
from conftest import SHARED_FIXTURES, Cli, minimal_school, write_csv

from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

CLI_BIN = Path(sys.executable).with_name("schoolcomms")
CTF_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n<CTfile>\n<Header>\n'
    "<CTFversion>25.0</CTFversion>\n</Header>\n"
)


# ---- helpers --------------------------------------------------------------------------
Change = Callable[[list[dict[str, Any]]], Any]


def school_csv(folder: Path, name: str, change: Change | None = None, **kwargs: Any) -> Path:
    """The minimal school's ``name`` extract, after ``change`` edits its rows."""
    rows = minimal_school()[name]
    if change is not None:
        change(rows)
    return write_csv(folder / f"{name}.csv", rows, **kwargs)


def set_cell(index: int, column: str, value: Any) -> Change:
    def change(rows: list[dict[str, Any]]) -> None:
        rows[index][column] = value

    return change


def append(row: dict[str, Any]) -> Change:
    return lambda rows: rows.append(row)


def table(cli: Cli, name: str) -> list[dict[str, Any]]:
    return cli.query(f"SELECT * FROM {name} ORDER BY ALL")


def no_traceback(result: Result | subprocess.CompletedProcess[str]) -> None:
    """No exception escaped the command (an in-process run) and none was printed."""
    if isinstance(result, Result):
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(
            result.exception
        )
    assert "Traceback" not in result.stdout + result.stderr


def errors_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("ERROR")]


def run_subprocess(
    data_dir: Path, args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        **env,
    }
    return subprocess.run(
        [str(CLI_BIN), "--data-dir", str(data_dir), *args],
        env=clean,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


# ---- the bad extracts ------------------------------------------------------------------
@dataclass
class Case:
    id: str
    make: Callable[[Path], list[Path]]
    expect: list[str]
    tables: list[str]
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()


def _missing_column(d: Path) -> list[Path]:
    rows = minimal_school()["students"]
    columns = [c for c in rows[0] if c != "surname"]
    return [write_csv(d / "students.csv", rows, columns)]


def _bad_bytes(d: Path) -> list[Path]:
    path = school_csv(d, "students", set_cell(1, "surname", "BAKERX"))
    path.write_bytes(path.read_bytes().replace(b"BAKERX", b"Bak\x81r"))
    return [path]


def _empty(d: Path) -> list[Path]:
    path = d / "students.csv"
    path.write_bytes(b"")
    return [path]


def _header_only(d: Path) -> list[Path]:
    return [write_csv(d / "students.csv", [], list(minimal_school()["students"][0]))]


def _ragged(extra: bool) -> Callable[[Path], list[Path]]:
    def make(d: Path) -> list[Path]:
        path = school_csv(d, "students")
        lines = path.read_text(encoding="utf-8").splitlines()
        lines[2] = lines[2] + ",surplus" if extra else lines[2].rsplit(",", 2)[0]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [path]

    return make


def _binary(d: Path) -> list[Path]:
    path = d / "students.csv"
    path.write_bytes(b"student_id,forename\nS1,\x00\x01\x02\xff\xfe\x00binary\n")
    return [path]


def _xlsx_as_csv(d: Path) -> list[Path]:
    book = workbook(
        d / "tmp.xlsx",
        {
            "students": [
                ["student_id", "forename", "surname", "status"],
                ["S9", "Zed", "Zee", "C01"],
            ]
        },
    )
    return [book.rename(d / "students.csv")]


def _utf16(bom: bool) -> Callable[[Path], list[Path]]:
    def make(d: Path) -> list[Path]:
        path = school_csv(d, "students")
        text = path.read_text(encoding="utf-8")
        path.write_bytes((codecs.BOM_UTF16_LE if bom else b"") + text.encode("utf-16-le"))
        return [path]

    return make


def _xlsx_no_extract(d: Path) -> list[Path]:
    rows = [["student_id", "forename", "surname", "status"], ["S9", "Zed", "Zee", "C01"]]
    return [workbook(d / "export.xlsx", {"Sheet A": rows, "Summary": [["total", 1]]})]


def _xlsx_bad_date(d: Path) -> list[Path]:
    rows = minimal_school()["students"]
    header = list(rows[0])
    data = [[row[c] for c in header] for row in rows]
    data[1][header.index("date_of_birth")] = "31/02/2010"
    return [workbook(d / "students.xlsx", {"Notes": [["exported"]], "students": [header, *data]})]


def _ctf_no_pupils(d: Path) -> list[Path]:
    path = d / "transfer.xml"
    path.write_text(CTF_HEAD + "<CTFpupilData>\n</CTFpupilData>\n</CTfile>\n", "utf-8")
    return [path]


def _ctf_malformed(d: Path) -> list[Path]:
    path = d / "transfer.xml"
    path.write_text(
        CTF_HEAD + "<CTFpupilData>\n<Pupil>\n<UPN>B801200005001</UPN>\n"
        "<Surname>Smith</Surnam>\n</Pupil>\n</CTFpupilData>\n</CTfile>\n",
        "utf-8",
    )
    return [path]  # the mismatched tag is on line 9


def _ctf_too_large(d: Path) -> list[Path]:
    path = d / "transfer.xml"
    padding = "<!-- " + "x" * 1000 + " -->\n"
    path.write_text(
        CTF_HEAD + padding * 2100 + "<CTFpupilData>\n<Pupil>\n"
        "<UPN>B801200005001</UPN>\n<Surname>Smith</Surname>\n<Forename>Sam"
        "</Forename>\n<EnrolStatus>C</EnrolStatus>\n</Pupil>\n</CTFpupilData>\n"
        "</CTfile>\n",
        "utf-8",
    )
    return [path]


def _unknown_name(d: Path) -> list[Path]:
    return [write_csv(d / "pupil_list_final.csv", minimal_school()["students"])]


def _contact_differs(d: Path) -> list[Path]:
    return [school_csv(d, "contacts", set_cell(2, "mobile", "07400 299999"))]


def _emails(
    rows: list[dict[str, Any]], students: list[dict[str, Any]] | None = None
) -> Callable[[Path], list[Path]]:
    def make(d: Path) -> list[Path]:
        out = [write_csv(d / "student_emails.csv", rows)]
        if students is not None:
            out.append(write_csv(d / "students.csv", students))
        return out

    return make


def _twins_by_upn() -> list[dict[str, Any]]:
    students = minimal_school()["students"]
    students[2]["upn"] = students[1]["upn"]
    return students


def _too_large(d: Path) -> list[Path]:
    path = d / "marks.csv"
    line = "L1,S1,/,,padding " + "x" * 80 + "\n"
    path.write_text("lesson_id,student_id,mark,minutes_late,comment\n" + line * 21000, "utf-8")
    assert path.stat().st_size > 2 * 1024 * 1024 - 100_000
    return [path]


def _long_line(d: Path) -> list[Path]:
    return [school_csv(d, "marks", set_cell(1, "comment", "y" * (2 * 1024 * 1024 + 10)))]


def _good_plus_bad(d: Path) -> list[Path]:
    return [
        school_csv(d, "students", set_cell(0, "form", "11Z")),
        school_csv(d, "marks", set_cell(3, "mark", "ZZ")),
    ]


def _portal_links(link_status: str) -> Callable[[Path], list[Path]]:
    def make(d: Path) -> list[Path]:
        rows = [
            {
                "account_id": "A1",
                "student_id": "S1",
                "name": "Alice Able",
                "mobile": "07400 200001",
                "registered": "Y",
                "link_status": "active",
            },
            {
                "account_id": "A2",
                "student_id": "S2",
                "name": "Bill Baker",
                "mobile": "07400 200002",
                "registered": "Y",
                "link_status": link_status,
            },
        ]
        return [write_csv(d / "portal_links.csv", rows)]

    return make


def _no_extracts_folder(d: Path) -> list[Path]:
    folder = d / "empty_folder"
    folder.mkdir()
    (folder / "notes.docx").write_bytes(b"not an extract")
    return [folder]


LINE2 = "line 2"
CASES = [
    Case(
        "missing_required_column",
        _missing_column,
        [
            "students.csv, line 1, column surname",
            "the required column surname is missing",
            "add a column headed 'surname'",
        ],
        ["students"],
    ),
    Case(
        "blank_required_cell",
        lambda d: [school_csv(d, "students", set_cell(1, "forename", ""))],
        [
            "students.csv, line 3, column forename",
            "the required cell forename is blank",
            "fill in forename on every row",
        ],
        ["students"],
    ),
    Case(
        "bad_date",
        lambda d: [school_csv(d, "students", set_cell(2, "date_of_birth", "2012-02-30"))],
        [
            "students.csv, line 4, column date_of_birth: value '2012-02-30'",
            "is not a date as YYYY-MM-DD or DD/MM/YYYY",
            "Fix: write a date",
        ],
        ["students"],
    ),
    Case(
        "two_digit_year",
        lambda d: [school_csv(d, "students", set_cell(0, "date_of_birth", "4/3/10"))],
        [
            "students.csv, line 2, column date_of_birth: value '4/3/10'",
            "is not a date as YYYY-MM-DD or DD/MM/YYYY",
        ],
        ["students"],
    ),
    Case(
        "two_digit_year_timestamp",
        lambda d: [school_csv(d, "marks", set_cell(0, "recorded_at", "3/9/26 09:05"))],
        ["marks.csv, line 2, column recorded_at: value '3/9/26 09:05'", "is not a date and time"],
        ["marks"],
    ),
    Case(
        "fractional_integer",
        lambda d: [school_csv(d, "marks", set_cell(2, "minutes_late", "7.5"))],
        ["marks.csv, line 4, column minutes_late: value '7.5'", "is not a whole number"],
        ["marks"],
    ),
    Case(
        "month_first_date",
        lambda d: [school_csv(d, "lessons", set_cell(1, "date", "09/23/2026"))],
        [
            "lessons.csv, line 3, column date: value '09/23/2026'",
            "month-first",
            "export dates as DD/MM/YYYY or YYYY-MM-DD",
        ],
        ["lessons"],
    ),
    Case(
        "bad_time",
        lambda d: [school_csv(d, "lessons", set_cell(0, "start_time", "9.15"))],
        [
            "lessons.csv, line 2, column start_time: value '9.15'",
            "is not a time as HH:MM (24-hour)",
            "Fix: write a time",
        ],
        ["lessons"],
    ),
    Case(
        "end_before_start",
        lambda d: [school_csv(d, "lessons", set_cell(2, "start_time", "10:00"))],
        [
            "lessons.csv, line 4, column end_time: value '10:00 to 10:00'",
            "the end time is not after the start time",
            "a lesson must end after it starts",
        ],
        ["lessons"],
    ),
    Case(
        "bad_timestamp",
        lambda d: [school_csv(d, "marks", set_cell(2, "recorded_at", "2026-09-03 25:10"))],
        [
            "marks.csv, line 4, column recorded_at: value '2026-09-03 25:10'",
            "is not a date and time as YYYY-MM-DD HH:MM",
            "Fix: write a date and time",
        ],
        ["marks"],
    ),
    Case(
        "duplicate_key",
        lambda d: [
            school_csv(
                d, "students", append(dict(minimal_school()["students"][1], forename="Benjamin"))
            )
        ],
        [
            "students.csv, line 3, column student_id: value 'S2'",
            "appears more than once: at students.csv line 3, students.csv line 5",
            "keep one row per key",
        ],
        ["students"],
    ),
    Case(
        "unknown_student_in_marks",
        lambda d: [
            school_csv(d, "marks", append({"lesson_id": "L1", "student_id": "S99", "mark": "/"}))
        ],
        [
            "marks.csv, line 7, column student_id: value 'S99'",
            "points at no students row",
            "load the students extract with this student_id",
        ],
        ["marks"],
    ),
    Case(
        "unknown_lesson_in_marks",
        lambda d: [
            school_csv(d, "marks", append({"lesson_id": "L99", "student_id": "S1", "mark": "/"}))
        ],
        [
            "marks.csv, line 7, column lesson_id: value 'L99'",
            "points at no lessons row",
            "load the lessons extract with this lesson_id",
        ],
        ["marks"],
    ),
    Case(
        "unknown_attendance_code",
        lambda d: [school_csv(d, "marks", set_cell(1, "mark", "QQ"))],
        [
            "marks.csv, line 3, column mark: value 'QQ'",
            "'QQ' is not an attendance code",
            "add it to the setting extra_attendance_codes as 'QQ:category'",
        ],
        ["marks"],
    ),
    Case(
        "non_integer_priority",
        lambda d: [school_csv(d, "contacts", set_cell(0, "priority", "first"))],
        [
            "contacts.csv, line 2, column priority: value 'first'",
            "is not a whole number",
            "Fix: write a whole number",
        ],
        ["contacts"],
    ),
    Case(
        "bad_boolean",
        lambda d: [school_csv(d, "contacts", set_cell(1, "sms_consent", "Yep"))],
        [
            "contacts.csv, line 3, column sms_consent: value 'Yep'",
            "is not Y or N (also Yes/No, true/false, 1/0)",
        ],
        ["contacts"],
    ),
    Case(
        "bad_enum",
        _portal_links("maybe"),
        [
            "portal_links.csv, line 3, column link_status: value 'maybe'",
            "must be one of: active, suspended",
            "use one of active, suspended",
        ],
        ["portal_links"],
    ),
    Case(
        "bad_encoding_bytes",
        _bad_bytes,
        ["students.csv, line 3:", "the byte 0x81", "save it as 'CSV UTF-8'"],
        ["students"],
    ),
    Case(
        "empty_file",
        _empty,
        ["students.csv: the file is empty (0 bytes)", "should start with a header row"],
        ["students"],
    ),
    Case(
        "header_only",
        _header_only,
        [
            "students.csv, line 2: the file has a header but no rows",
            "export the extract again with its rows",
        ],
        ["students"],
    ),
    Case(
        "ragged_too_many",
        _ragged(True),
        [
            "students.csv, line 3: the row has more values than the header has columns",
            "every row needs exactly 12 values",
        ],
        ["students"],
    ),
    Case(
        "ragged_too_few",
        _ragged(False),
        [
            "students.csv, line 3: the row has fewer values than the header has columns",
            "every row needs exactly 12 values",
        ],
        ["students"],
    ),
    Case(
        "binary_file",
        _binary,
        ["students.csv, line 2: the file holds binary data", "export the extract"],
        ["students"],
    ),
    Case(
        "xlsx_renamed_csv",
        _xlsx_as_csv,
        ["students.csv: the file is an Excel workbook or ZIP archive", "rename it to .xlsx"],
        ["students"],
    ),
    Case(
        "utf16_with_bom",
        _utf16(True),
        ["students.csv: the file is encoded as UTF-16", "save it as 'CSV UTF-8'"],
        ["students"],
    ),
    Case(
        "utf16_without_bom",
        _utf16(False),
        ["students.csv: the file is encoded as UTF-16", "save it as 'CSV UTF-8'"],
        ["students"],
    ),
    Case(
        "xlsx_no_extract_sheet",
        _xlsx_no_extract,
        [
            "export.xlsx: cannot tell which extract this workbook holds",
            "(Sheet A, Summary)",
            "name the file or the sheet after the extract",
        ],
        ["students"],
    ),
    Case(
        "xlsx_bad_date",
        _xlsx_bad_date,
        [
            "students.xlsx [students], line 3, column date_of_birth: value '31/02/2010'",
            "is not a date",
        ],
        ["students"],
    ),
    Case(
        "ctf_no_pupils",
        _ctf_no_pupils,
        ["transfer.xml: this CTF holds no pupils", "export the CTF again"],
        ["students", "contacts"],
    ),
    Case(
        "ctf_malformed_xml",
        _ctf_malformed,
        [
            "transfer.xml, line 9: this CTF is not well-formed XML",
            "mismatched tag",
            "repair the XML at line 9",
        ],
        ["students", "contacts"],
    ),
    Case(
        "file_names_no_extract",
        _unknown_name,
        [
            "pupil_list_final.csv: cannot tell which extract 'pupil_list_final.csv' is",
            "name the file after its extract, one of: students.csv",
        ],
        ["students"],
    ),
    Case(
        "contact_details_differ",
        _contact_differs,
        [
            "contacts.csv, line 3, column contact_id: value 'C2'",
            "contact C2 has different details on different rows (lines 3, 4)",
            "correct the rows so they agree",
        ],
        ["contacts"],
    ),
    Case(
        "email_upn_matches_no_pupil",
        _emails(
            [
                {"upn": "Q933207636540", "email": "ann.new@pupils.example.com"},
                {"upn": "B801200005001", "email": "who@pupils.example.com"},
            ]
        ),
        [
            "student_emails.csv, line 3, column upn: value 'B801200005001'",
            "matches no pupil by upn",
            "check the upn",
        ],
        ["students"],
    ),
    Case(
        "email_upn_matches_two_pupils",
        _emails([{"upn": "D933207636550", "email": "ben@pupils.example.com"}], _twins_by_upn()),
        [
            "student_emails.csv, line 2, column upn: value 'D933207636550'",
            "matches more than one pupil by upn",
            "or use adno instead",
        ],
        ["students"],
    ),
    Case(
        "email_invalid_address",
        _emails(
            [
                {"adno": "1001", "email": "ann.new@pupils.example.com"},
                {"adno": "1002", "email": "ben at home"},
            ]
        ),
        [
            "student_emails.csv, line 3, column email: value 'ben at home'",
            "is not a valid e-mail address",
            "correct the address in the MIS",
        ],
        ["students"],
    ),
    Case(
        "line_over_2mb",
        _long_line,
        ["marks.csv, line 3: the line is longer than the 2 MB a row may be"],
        ["marks"],
    ),
    Case(
        "good_file_plus_bad_file",
        _good_plus_bad,
        ["marks.csv, line 5, column mark: value 'ZZ'", "'ZZ' is not an attendance code"],
        ["students", "marks"],
    ),
    Case(
        "unknown_profile",
        lambda d: [school_csv(d, "students")],
        [
            "column mapping_profile: there is no mapping profile 'nosuch'",
            "use one of arbor, bromcom, sims",
        ],
        ["students"],
        args=("--profile", "nosuch"),
    ),
    Case(
        "ctf_larger_than_max_extract_mb",
        _ctf_too_large,
        ["transfer.xml: the file is 2 MiB, more than the 1 MiB limit", "max_extract_mb"],
        ["students", "contacts"],
        env={"SCHOOLCOMMS_MAX_EXTRACT_MB": "1"},
    ),
    Case(
        "bad_extra_codes_setting",
        lambda d: [school_csv(d, "marks")],
        ["column extra_attendance_codes:", "'EX', which is not CODE:category"],
        ["marks"],
        env={"SCHOOLCOMMS_EXTRA_ATTENDANCE_CODES": "EX"},
    ),
    Case(
        "folder_without_extracts",
        _no_extracts_folder,
        ["empty_folder: the folder holds no extract files"],
        ["students"],
    ),
    Case(
        "no_such_file",
        lambda d: [d / "marks.csv"],
        ["marks.csv: no such file or folder", "check the path"],
        ["marks"],
    ),
    Case(
        "xml_that_is_not_a_ctf",
        lambda d: (
            [d / "students.xml"]
            if (d / "students.xml").write_text(
                "<?xml version='1.0'?>\n<Students><Pupil/></Students>\n", "utf-8"
            )
            else []
        ),
        [
            "students.xml: this file is not a DfE Common Transfer File",
            "its root element is <Students>",
        ],
        ["students"],
    ),
    Case(
        "corrupt_xlsx",
        lambda d: (
            [d / "students.xlsx"]
            if (d / "students.xlsx").write_bytes(b"PK\x03\x04 not really a zip file")
            else []
        ),
        ["students.xlsx: the file is not a readable Excel workbook", "save it again as .xlsx"],
        ["students"],
    ),
    Case(
        "two_columns_mean_the_same",
        lambda d: (
            [d / "students.csv"]
            if (d / "students.csv").write_text(
                "student_id,forename,surname,status,FORENAME\nS9,Zed,Zee,C01,Zak\n", "utf-8"
            )
            else []
        ),
        [
            "students.csv, line 1, column FORENAME: two columns both mean forename",
            "remove one of the two columns",
        ],
        ["students"],
    ),
    Case(
        "twelve_hour_time",
        lambda d: [school_csv(d, "lessons", set_cell(1, "end_time", "1:30pm"))],
        ["lessons.csv, line 3, column end_time: value '1:30pm'", "times must be 24-hour"],
        ["lessons"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_extract_is_refused_and_changes_nothing(
    case: Case, loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = case.make(folder)
    before = {name: table(cli, name) for name in case.tables}
    assert Warehouse.from_settings(loaded).generation() == 1

    result = cli("load", *case.args, *paths, env=case.env)

    no_traceback(result)
    assert result.exit_code == 2, result.output + result.stderr
    errors = "\n".join(errors_of(result.stderr))
    for text in case.expect:
        assert text in errors, f"{text!r} not in:\n{result.stderr}"
    assert "Fix:" in errors and ".. Fix:" not in errors
    assert "Nothing was loaded; the warehouse is unchanged (generation 1)" in result.stdout
    assert Warehouse.from_settings(loaded).generation() == 1
    assert {name: table(cli, name) for name in case.tables} == before


def test_file_larger_than_max_extract_mb_via_subprocess(loaded: Settings, tmp_path: Path) -> None:
    """The real executable, a clean environment, and a ~2 MB file over a 1 MiB limit."""
    path = _too_large(tmp_path)[0]
    wh = Warehouse.from_settings(loaded)
    before = wh.rows("SELECT * FROM marks ORDER BY ALL")
    result = run_subprocess(
        loaded.data_dir, ["load", str(path)], {"SCHOOLCOMMS_MAX_EXTRACT_MB": "1"}, tmp_path
    )
    no_traceback(result)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "marks.csv: the file is 2 MiB, more than the 1 MiB limit" in result.stderr
    assert "split it into smaller files" in result.stderr
    assert "raise the setting max_extract_mb" in result.stderr
    assert wh.generation() == 1
    assert wh.rows("SELECT * FROM marks ORDER BY ALL") == before
    assert len(before[1]) == 5


def test_every_error_is_reported_not_just_the_first(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    rows = minimal_school()["marks"]
    rows[0]["mark"] = "QQ"
    rows[2]["minutes_late"] = "seven"
    rows[4]["student_id"] = "S404"
    path = write_csv(tmp_path / "marks.csv", rows)
    result = cli("load", path)
    assert result.exit_code == 2
    errors = errors_of(result.stderr)
    assert len(errors) == 3, result.stderr
    assert any("line 2, column mark: value 'QQ'" in e for e in errors)
    assert any("line 4, column minutes_late: value 'seven'" in e for e in errors)
    assert any("line 6, column student_id: value 'S404'" in e for e in errors)


# ---- line numbers after multi-line records and blank lines ------------------------------
MARKS_HEADER = "lesson_id,student_id,mark,comment\n"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        # A comment with quoted newlines spans lines 2-4; the bad mark is on line 5.
        ('L1,S1,/,"first line\nsecond line\nthird line"\nL1,S2,QQ,\n', 5),
        # A blank line in the middle (line 3); the bad mark is on line 4.
        ("L1,S1,/,\n\nL1,S2,QQ,\n", 4),
        # Both, with CRLF line ends.
        ('L1,S1,/,"a\r\nb"\r\n\r\nL2,S3,L,\r\nL1,S2,QQ,\r\n', 6),
    ],
    ids=["quoted_newlines", "blank_line", "both_crlf"],
)
def test_value_error_after_multiline_record_names_the_physical_line(
    body: str, line: int, loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "marks.csv"
    header = MARKS_HEADER.replace("\n", "\r\n") if "\r\n" in body else MARKS_HEADER
    path.write_bytes((header + body).encode())
    result = cli("load", path)
    assert result.exit_code == 2, result.stderr
    assert f"marks.csv, line {line}, column mark: value 'QQ'" in result.stderr


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('L1,S1,/,"first\nsecond"\nL1,S2,O,,surplus\n', {"more": [4]}),
        ("L1,S1,/,\n\nL1,S2,O,,surplus\nL2,S3,L\nL3,S1,/,,x\n", {"more": [4, 6], "fewer": [5]}),
        ('L1,S1,/,"a\nb"\n\n\nL1,S2,O,,surplus\n', {"more": [6]}),
    ],
    ids=["quoted_newline", "blank_line", "both"],
)
def test_ragged_row_after_multiline_record_names_the_physical_line(
    body: str, expected: dict[str, list[int]], loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "marks.csv"
    path.write_bytes((MARKS_HEADER + body).encode())
    result = cli("load", path)
    assert result.exit_code == 2, result.stderr
    errors = errors_of(result.stderr)
    for word, lines in expected.items():
        found = [e for e in errors if f"the row has {word} values than the header" in e]
        assert len(found) == 1, result.stderr
        assert f"marks.csv, line {lines[0]}:" in found[0]
        if len(lines) > 1:
            assert f"lines {', '.join(str(n) for n in lines)})" in found[0]


# ---- awkward but valid input --------------------------------------------------------------
def load_ok(cli: Cli, *paths: Path, env: dict[str, str] | None = None) -> Result:
    result = cli("load", *paths, env=env)
    no_traceback(result)
    assert result.exit_code == 0, result.output + result.stderr
    return result


def warnings_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning")]


def test_quoted_newlines_are_kept_in_the_value(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "marks.csv"
    path.write_text(
        MARKS_HEADER + 'L1,S1,/,"Arrived with mum.\nNote from GP, ""see file"""\nL1,S2,O,\n',
        "utf-8",
    )
    load_ok(cli, path)
    rows = cli.query(
        "SELECT student_id, comment FROM marks WHERE lesson_id = 'L1' ORDER BY student_id"
    )
    assert rows == [
        {"student_id": "S1", "comment": 'Arrived with mum.\nNote from GP, "see file"'},
        {"student_id": "S2", "comment": None},
    ]


def test_formula_like_cells_are_stored_verbatim(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    values = ["=SUM(A1:A3)", "+44 7400 123456", "-5 points", "@mention", "=cmd|' /C calc'!A0"]
    rows = [
        {"lesson_id": "L1", "student_id": s, "mark": "/", "comment": v}
        for s, v in zip(["S1", "S2"], values[:2], strict=True)
    ]
    rows += [
        {"lesson_id": "L3", "student_id": s, "mark": "/", "comment": v}
        for s, v in zip(["S1", "S2"], values[2:4], strict=True)
    ]
    rows.append({"lesson_id": "L2", "student_id": "S3", "mark": "/", "comment": values[4]})
    load_ok(cli, write_csv(tmp_path / "marks.csv", rows))
    got = cli.query("SELECT comment FROM marks ORDER BY lesson_id, student_id")
    assert [r["comment"] for r in got] == [values[0], values[1], values[4], values[2], values[3]]


def test_utf8_with_bom(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    path = school_csv(tmp_path, "students", set_cell(0, "forename", "Zoë"), encoding="utf-8-sig")
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    result = load_ok(cli, path)
    assert warnings_of(result) == []
    rows = cli.query("SELECT student_id, forename FROM students ORDER BY student_id")
    assert rows[0] == {"student_id": "S1", "forename": "Zoë"}
    assert len(rows) == 3


def test_windows_1252_is_read_as_unicode(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    def change(rows: list[dict[str, Any]]) -> None:
        rows[0]["forename"] = "Renée"
        rows[1]["surname"] = "O’Brien"  # a curly apostrophe: byte 0x92 in Windows-1252

    path = school_csv(tmp_path, "students", change, encoding="cp1252", newline="\r\n")
    assert b"\x92" in path.read_bytes() and b"\xe9" in path.read_bytes()
    result = load_ok(cli, path)
    assert any("students.csv: read as windows-1252" in w for w in warnings_of(result))
    rows = cli.query("SELECT forename, surname FROM students ORDER BY student_id")
    assert rows[0]["forename"] == "Renée"
    assert rows[1]["surname"] == "O\u2019Brien"
    assert not list((loaded.tmp_dir).glob("*.utf8*")), "the UTF-8 working copy is left behind"


def test_headers_with_spaces_and_case(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "Students.csv"
    path.write_text(
        "Student ID,UPN,Forename,SURNAME,Date Of Birth,Status,Year-Group\n"
        "S1,Q933207636540,Ann,Able,04/03/2010,C01,10\n",
        "utf-8",
    )
    load_ok(cli, path)
    rows = cli.query(
        "SELECT student_id, upn, surname, date_of_birth, year_group, status FROM students"
    )
    assert rows == [
        {
            "student_id": "S1",
            "upn": "Q933207636540",
            "surname": "Able",
            "date_of_birth": "2010-03-04",
            "year_group": "10",
            "status": "C01",
        }
    ]


def test_unknown_columns_warn_and_stay_out(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    def change(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            row["Shoe Size"] = "5"
            row["fav_colour"] = "blue"

    result = load_ok(cli, school_csv(tmp_path, "students", change))
    assert any(
        "students.csv, line 1: unknown column(s) left out of the warehouse: "
        "Shoe Size, fav_colour" in w
        for w in warnings_of(result)
    )
    columns = cli.query("SELECT column_name FROM duckdb_columns() WHERE table_name = 'students'")
    names = {c["column_name"] for c in columns}
    assert "forename" in names
    assert not names & {"Shoe Size", "shoe_size", "fav_colour"}


def test_invalid_phone_is_a_warning_and_the_row_is_kept(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    result = load_ok(cli, school_csv(tmp_path, "students", set_cell(1, "mobile", "07700 900123")))
    assert any(
        "students.csv, line 3, column mobile: value '07700 900123': is not a valid "
        "phone number" in w
        for w in warnings_of(result)
    )
    rows = cli.query("SELECT student_id, mobile, mobile_e164 FROM students ORDER BY student_id")
    assert rows[:2] == [
        {"student_id": "S1", "mobile": "07400 123456", "mobile_e164": "+447400123456"},
        {"student_id": "S2", "mobile": "07700 900123", "mobile_e164": None},
    ]


def test_wrong_upn_check_letter_is_a_warning(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    result = load_ok(cli, school_csv(tmp_path, "students", set_cell(2, "upn", "A933207636560")))
    assert any(
        "students.csv, line 4, column upn: value 'A933207636560': has a wrong UPN check letter" in w
        for w in warnings_of(result)
    )
    rows = cli.query("SELECT upn FROM students WHERE student_id = 'S3'")
    assert rows == [{"upn": "A933207636560"}]


def test_withdrawn_code_is_a_warning(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    result = load_ok(cli, school_csv(tmp_path, "marks", set_cell(4, "mark", "h")))
    assert any(
        "marks.csv, line 6, column mark: value 'h': 'H' was withdrawn in August 2024" in w
        for w in warnings_of(result)
    )
    assert cli.query("SELECT mark FROM marks WHERE lesson_id = 'L3' AND student_id = 'S2'") == [
        {"mark": "H"}
    ]


def test_school_code_from_the_environment_loads(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    path = school_csv(tmp_path, "marks", set_cell(1, "mark", "EX"))
    refused = cli("load", path)
    assert refused.exit_code == 2
    load_ok(cli, path, env={"SCHOOLCOMMS_EXTRA_ATTENDANCE_CODES": "EX:authorised, 9:present"})
    assert cli.query("SELECT mark FROM marks WHERE lesson_id = 'L1' AND student_id = 'S2'") == [
        {"mark": "EX"}
    ]


def test_uk_dates_times_with_seconds_and_booleans(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    lessons = minimal_school()["lessons"]
    lessons[0].update(
        date="3/9/2026",
        start_time="09:00:30",
        end_time="9:59:59",
        register_taken_at="3/9/2026 9:05:07",
    )
    contacts = minimal_school()["contacts"]
    for row, consent, resp in zip(contacts, ["Yes", "no", "TRUE"], ["0", "n", "YES"], strict=True):
        row.update(sms_consent=consent, parental_responsibility=resp)
    contacts[0]["email_consent"] = ""  # blank = the default, Y
    load_ok(
        cli,
        write_csv(tmp_path / "lessons.csv", lessons),
        write_csv(tmp_path / "contacts.csv", contacts),
    )
    lesson = cli.query(
        "SELECT date, start_time, end_time, register_taken_at FROM lessons WHERE lesson_id = 'L1'"
    )
    assert lesson == [
        {
            "date": "2026-09-03",
            "start_time": "09:00:30",
            "end_time": "09:59:59",
            "register_taken_at": "2026-09-03T09:05:07",
        }
    ]
    flags = cli.query(
        "SELECT student_id, sms_consent, parental_responsibility, "
        "email_consent FROM contacts ORDER BY student_id"
    )
    assert flags == [
        {
            "student_id": "S1",
            "sms_consent": True,
            "parental_responsibility": False,
            "email_consent": True,
        },
        {
            "student_id": "S2",
            "sms_consent": False,
            "parental_responsibility": False,
            "email_consent": False,
        },
        {
            "student_id": "S3",
            "sms_consent": True,
            "parental_responsibility": True,
            "email_consent": False,
        },
    ]


PHONE_TABLE = SHARED_FIXTURES / "phone" / "uk_numbers.txt"


def crown_dependency_mobiles() -> dict[str, str]:
    """Guernsey, Jersey and Isle of Man mobiles → E.164, as libphonenumber gives them.

    Read in place from the shared fixture: its table of parsed numbers, plus the example
    number of its Jersey mobile pattern (the table has no Jersey row).
    """
    out = {}
    for line in PHONE_TABLE.read_text(encoding="utf-8").splitlines():
        parts = [p.strip() for p in line.split("|")]
        if (
            len(parts) == 7
            and parts[0].startswith("'0")
            and parts[4] == "MOBILE"
            and parts[5] in ("GG", "JE", "IM")
        ):
            out[parts[0].strip("'")] = parts[1]
        if line.startswith("JE mobile:"):
            example = line.rsplit(" ex ", 1)[1].strip()
            out["0" + example[:4] + " " + example[4:]] = "+44" + example
    return out


def test_crown_dependency_mobiles_get_plus44(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    expected = crown_dependency_mobiles()
    guernsey, man, jersey = "07911 123456", "07624 123456", "07797 712345"
    assert {
        guernsey: "+447911123456",
        man: "+447624123456",
        jersey: "+447797712345",
    }.items() <= expected.items()
    students = minimal_school()["students"]
    for row, number in zip(students, [guernsey, man, jersey], strict=True):
        row["mobile"] = number
    result = load_ok(cli, write_csv(tmp_path / "students.csv", students))
    assert warnings_of(result) == []
    rows = cli.query("SELECT mobile, mobile_e164 FROM students ORDER BY student_id")
    assert rows == [{"mobile": n, "mobile_e164": expected[n]} for n in (guernsey, man, jersey)]


def _many_lessons(last_room: str) -> list[dict[str, Any]]:
    rows = [
        {
            "lesson_id": f"L{n}",
            "date": "2026-09-10",
            "start_time": "09:00",
            "end_time": "10:00",
            "room": f"Room {n}",
        }
        for n in range(100, 2100)
    ]
    rows[-1]["room"] = last_room
    return rows


def test_windows_1252_found_only_after_the_first_64_kb(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "lessons.csv", _many_lessons("Salle d’étude"), encoding="cp1252")
    assert path.stat().st_size > 70_000 and path.read_bytes()[:65536].isascii()
    result = load_ok(cli, path)
    assert any("lessons.csv: read as windows-1252" in w for w in warnings_of(result))
    assert cli.query("SELECT room FROM lessons WHERE lesson_id = 'L2099'") == [
        {"room": "Salle d\u2019étude"}
    ]
    assert cli.query("SELECT count(*) AS n FROM lessons") == [{"n": 2003}]
    assert not list(loaded.tmp_dir.glob("*.utf8*"))


def test_undefined_byte_after_the_first_64_kb(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "lessons.csv", _many_lessons("ROOMX"))
    path.write_bytes(path.read_bytes().replace(b"ROOMX", b"Room \x8f"))
    before = cli.query("SELECT * FROM lessons ORDER BY ALL")
    result = cli("load", path)
    no_traceback(result)
    assert result.exit_code == 2, result.output
    assert "lessons.csv, line 2001: the file has the byte 0x8F" in result.stderr
    assert cli.query("SELECT * FROM lessons ORDER BY ALL") == before
    assert not list(loaded.tmp_dir.glob("*.utf8*"))
