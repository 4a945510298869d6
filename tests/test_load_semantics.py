"""What a load does to the warehouse: snapshots, upserts, generations, sources, history.

Loads go through the real CLI (click's CliRunner on ``schoolcomms.cli.main``) with
``--data-dir`` under ``tmp_path`` and a clean environment; values are checked with
``schoolcomms query --json``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from click.testing import Result
from conftest import SHARED_FIXTURES, Cli, minimal_school, write_csv, write_extracts
from sqlalchemy import select

from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_loads
from schoolcomms.ops.models import LoadFile
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

CTF_DIR = SHARED_FIXTURES / "ctf"
CTF_FILES = sorted(p.name for p in CTF_DIR.glob("*.xml"))


def load_ok(cli: Cli, *args: str | Path, env: dict[str, str] | None = None) -> Result:
    result = cli("load", *args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    return result


def warnings_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning")]


def everything(cli: Cli) -> dict[str, list[dict[str, Any]]]:
    """Every warehouse table (but the generation log), in a stable order."""
    names = [
        r["table_name"]
        for r in cli.query(
            "SELECT table_name FROM duckdb_tables() WHERE table_name <> '_generations' ORDER BY 1"
        )
    ]
    return {name: cli.query(f"SELECT * FROM {name} ORDER BY ALL") for name in names}


# ---- a first load -------------------------------------------------------------------------
def test_first_load_into_an_empty_data_dir(cli: Cli, settings: Settings, school_dir: Path) -> None:
    assert Warehouse.from_settings(settings).generation() is None
    result = load_ok(cli, school_dir)
    assert warnings_of(result) == []
    assert "generation 1 is now current (was None)" in result.stdout
    counts = cli.query(
        "SELECT (SELECT count(*) FROM students) AS students, "
        "(SELECT count(*) FROM contacts) AS contacts, "
        "(SELECT count(*) FROM marks) AS marks, "
        "(SELECT count(*) FROM portal_links) AS portal_links"
    )
    assert counts == [{"students": 3, "contacts": 3, "marks": 5, "portal_links": 0}]
    assert cli.query(
        "SELECT student_id, form, mobile, mobile_e164 FROM students ORDER BY student_id"
    )[0] == {
        "student_id": "S1",
        "form": "10A",
        "mobile": "07400 123456",
        "mobile_e164": "+447400123456",
    }


# ---- snapshots and events ------------------------------------------------------------------
def test_snapshot_replaces_its_table_and_keeps_history_with_a_warning(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    marks_before = cli.query("SELECT * FROM marks ORDER BY ALL")
    students = minimal_school()["students"][:2]  # S3 has left; S3 has marks
    students[0]["form"] = "11A"
    students.append({"student_id": "S4", "forename": "Dan", "surname": "Dale", "status": "C01"})
    result = load_ok(cli, write_csv(tmp_path / "students.csv", students))
    rows = cli.query("SELECT student_id, form, forename FROM students ORDER BY student_id")
    assert rows == [
        {"student_id": "S1", "form": "11A", "forename": "Ann"},
        {"student_id": "S2", "form": "10A", "forename": "Ben"},
        {"student_id": "S4", "form": None, "forename": "Dan"},
    ]
    history = [w for w in warnings_of(result) if "kept as history" in w]
    assert any(
        "1 marks row(s) for 1 student_id(s) no longer in students are kept as "
        "history (e.g. S3)" in w
        for w in history
    ), result.stderr
    assert any(w.startswith("warning marks, column student_id") for w in history)
    assert any("contacts row(s)" in w for w in history)
    assert not any("lines )" in w for w in history), history
    assert cli.query("SELECT * FROM marks ORDER BY ALL") == marks_before


def test_event_extract_upserts_by_key(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    """An intraday register refresh changes only its own rows; other days are kept."""
    before = cli.query("SELECT * FROM marks ORDER BY ALL")
    refresh = [  # day 2 (L3) re-marked, plus one new mark for day 1
        {
            "lesson_id": "L3",
            "student_id": "S1",
            "mark": "L",
            "minutes_late": "5",
            "comment": "traffic",
            "recorded_at": "2026-09-04 09:20",
            "recorded_by": "T1",
        },
        {
            "lesson_id": "L3",
            "student_id": "S2",
            "mark": "M",
            "minutes_late": "",
            "comment": "",
            "recorded_at": "2026-09-04 09:21",
            "recorded_by": "T1",
        },
        {
            "lesson_id": "L1",
            "student_id": "S3",
            "mark": "/",
            "minutes_late": "",
            "comment": "",
            "recorded_at": "2026-09-04 09:22",
            "recorded_by": "T1",
        },
    ]
    load_ok(cli, write_csv(tmp_path / "marks.csv", refresh))
    kept = [r for r in before if r["lesson_id"] != "L3"]
    assert [r["lesson_id"] for r in kept] == ["L1", "L1", "L2"]
    new = [
        {
            "lesson_id": "L3",
            "student_id": "S1",
            "mark": "L",
            "minutes_late": 5,
            "comment": "traffic",
            "recorded_at": "2026-09-04T09:20:00",
            "recorded_by": "T1",
        },
        {
            "lesson_id": "L3",
            "student_id": "S2",
            "mark": "M",
            "minutes_late": None,
            "comment": None,
            "recorded_at": "2026-09-04T09:21:00",
            "recorded_by": "T1",
        },
        {
            "lesson_id": "L1",
            "student_id": "S3",
            "mark": "/",
            "minutes_late": None,
            "comment": None,
            "recorded_at": "2026-09-04T09:22:00",
            "recorded_by": "T1",
        },
    ]
    expected = sorted(kept + new, key=lambda r: (r["lesson_id"], r["student_id"]))
    assert cli.query("SELECT * FROM marks ORDER BY lesson_id, student_id") == expected
    assert kept[0] == {
        "lesson_id": "L1",
        "student_id": "S1",
        "mark": "/",
        "minutes_late": None,
        "comment": None,
        "recorded_at": "2026-09-03T09:05:00",
        "recorded_by": "T1",
    }


def test_references_resolve_across_the_load_and_the_warehouse(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    # A new lesson and its marks in one load; then marks alone for an existing lesson.
    lessons = [
        {
            "lesson_id": "L9",
            "date": "2026-09-07",
            "start_time": "13:00",
            "end_time": "14:00",
            "class_id": "8B/En",
        }
    ]
    marks = [{"lesson_id": "L9", "student_id": "S3", "mark": "O"}]
    load_ok(
        cli,
        write_csv(tmp_path / "a" / "lessons.csv", lessons),
        write_csv(tmp_path / "a" / "marks.csv", marks),
    )
    load_ok(
        cli,
        write_csv(
            tmp_path / "b" / "marks.csv", [{"lesson_id": "L2", "student_id": "S1", "mark": "B"}]
        ),
    )
    assert cli.query(
        "SELECT lesson_id, student_id, mark FROM marks WHERE mark IN ('O', 'B') ORDER BY ALL"
    ) == [
        {"lesson_id": "L1", "student_id": "S2", "mark": "O"},
        {"lesson_id": "L2", "student_id": "S1", "mark": "B"},
        {"lesson_id": "L9", "student_id": "S3", "mark": "O"},
    ]
    assert cli.query("SELECT count(*) AS n FROM lessons") == [{"n": 4}]
    # A missing staff member is only a warning (staff lists are often partial).
    result = load_ok(
        cli,
        write_csv(
            tmp_path / "c" / "marks.csv",
            [{"lesson_id": "L2", "student_id": "S3", "mark": "/", "recorded_by": "T404"}],
        ),
    )
    assert any(
        "marks.csv, line 2, column recorded_by: value 'T404': points at no staff row" in w
        and "the row is loaded anyway" in w
        for w in warnings_of(result)
    )


# ---- dry run, rollback, pruning, readers ---------------------------------------------------
def test_dry_run_changes_nothing(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    before = everything(cli)
    files_before = sorted(p.name for p in loaded.warehouse_dir.iterdir())
    path = write_csv(tmp_path / "students.csv", minimal_school()["students"][:1])
    result = cli("load", "--dry-run", path)
    assert result.exit_code == 0, result.stderr
    assert "Dry run: the load would succeed (students 1)" in result.stdout
    assert "Nothing was changed" in result.stdout
    assert Warehouse.from_settings(loaded).generation() == 1
    assert sorted(p.name for p in loaded.warehouse_dir.iterdir()) == files_before
    assert everything(cli) == before
    newest = recent_loads(open_ops(loaded)).iloc[0]
    assert newest["status"] == "dry_run"
    assert pd.isna(newest["generation_after"]) and newest["generation_before"] == 1
    bad = cli(
        "load",
        "--dry-run",
        write_csv(
            tmp_path / "bad" / "marks.csv", [{"lesson_id": "L1", "student_id": "S1", "mark": "QQ"}]
        ),
    )
    assert bad.exit_code == 2
    assert everything(cli) == before


def test_rollback_restores_the_previous_data_exactly(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    before = everything(cli)
    school = minimal_school()
    school["students"][0]["form"] = "11Z"
    school["marks"][0]["mark"] = "N"
    load_ok(cli, *write_extracts(tmp_path / "v2", {k: school[k] for k in ("students", "marks")}))
    changed = everything(cli)
    assert changed != before
    assert Warehouse.from_settings(loaded).generation() == 2

    result = cli("rollback")
    assert result.exit_code == 0, result.stderr
    assert "Generation 1 is current again (was 2)." in result.stdout
    assert Warehouse.from_settings(loaded).generation() == 1
    assert everything(cli) == before
    assert recent_loads(open_ops(loaded)).iloc[0]["status"] == "rolled_back"

    # A load after the rollback starts from the restored data and gets a new number.
    school["students"][0]["form"] = "11Y"
    load_ok(cli, write_csv(tmp_path / "v3" / "students.csv", school["students"]))
    assert Warehouse.from_settings(loaded).generation() == 3
    assert Warehouse.from_settings(loaded).generations() == [1, 3]  # 2 was rolled back
    assert cli.query("SELECT form FROM students WHERE student_id = 'S1'") == [{"form": "11Y"}]
    assert cli.query("SELECT mark FROM marks WHERE lesson_id = 'L1' AND student_id = 'S1'") == [
        {"mark": "/"}
    ]

    # Rolling back that load goes back to what it was built on (generation 1), never to
    # generation 2, the load that was rolled back.
    result = cli("rollback")
    assert result.exit_code == 0, result.stderr
    assert "Generation 1 is current again (was 3)." in result.stdout
    assert everything(cli) == before


def test_rollback_with_nothing_to_roll_back_is_refused(
    cli: Cli, settings: Settings, school_dir: Path
) -> None:
    result = cli("rollback")
    assert result.exit_code == 2
    assert "There is nothing to roll back: no extract has been loaded." in result.stderr
    load_ok(cli, school_dir)
    result = cli("rollback")
    assert result.exit_code == 2
    assert "Generation 1 is the oldest one kept" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_rollback_repairs_a_current_pointer_to_a_missing_generation(
    loaded: Settings, cli: Cli, school_dir: Path
) -> None:
    (loaded.warehouse_dir / "CURRENT").write_text("7\n")
    broken = cli("query", "SELECT count(*) AS n FROM students")
    assert broken.exit_code == 2
    assert "names generation '7', which is not on disk. Run `schoolcomms rollback`" in broken.stderr
    refused = cli("load", school_dir)
    assert refused.exit_code == 2, refused.output
    assert "Traceback" not in refused.output + refused.stderr
    assert (
        "names generation '7', which is not on disk. Run `schoolcomms rollback`" in refused.stderr
    )
    result = cli("rollback")
    assert result.exit_code == 0, result.output
    assert "Generation 1 is current again (was 7)." in result.stdout
    assert cli.query("SELECT count(*) AS n FROM students") == [{"n": 3}]


def test_generations_beyond_generations_kept_are_pruned(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    env = {"SCHOOLCOMMS_GENERATIONS_KEPT": "2"}
    for form in ("11A", "11B", "11C"):
        students = minimal_school()["students"]
        students[0]["form"] = form
        load_ok(cli, write_csv(tmp_path / form / "students.csv", students), env=env)
    wh = Warehouse.from_settings(loaded)
    assert wh.generation() == 4
    assert wh.generations() == [3, 4]
    assert sorted(p.name for p in loaded.warehouse_dir.glob("*.duckdb")) == [
        "000003.duckdb",
        "000004.duckdb",
    ]
    assert not list(loaded.warehouse_dir.glob("*.building*"))
    assert cli("rollback", env=env).exit_code == 0
    assert cli.query("SELECT form FROM students WHERE student_id = 'S1'") == [{"form": "11B"}]
    refused = cli("rollback", env=env)
    assert refused.exit_code == 2
    assert "Generation 3 is the oldest one kept" in refused.stderr


def test_a_reader_sees_the_new_generation_on_its_next_query(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    reader = Warehouse.from_settings(loaded)
    assert reader.query("SELECT form FROM students WHERE student_id = 'S1'")["form"].tolist() == [
        "10A"
    ]
    cursor = reader.cursor()  # a reader busy on the old generation does not block a load
    students = minimal_school()["students"]
    students[0]["form"] = "12Q"
    load_ok(cli, write_csv(tmp_path / "students.csv", students))
    assert reader.generation() == 2
    assert reader.query("SELECT form FROM students WHERE student_id = 'S1'")["form"].tolist() == [
        "12Q"
    ]
    assert cursor.execute("SELECT form FROM students WHERE student_id = 'S1'").fetchall() == [
        ("10A",)
    ]
    cursor.close()


def test_query_refuses_writes_and_prints_json_rows(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    before = everything(cli)
    outside = tmp_path / "leak.csv"
    for sql in [
        "DELETE FROM students",
        "UPDATE marks SET mark = 'O'",
        "CREATE TABLE x AS SELECT 1",
        "DROP TABLE students",
        f"COPY students TO '{outside}'",
    ]:
        result = cli("query", sql)
        assert result.exit_code == 2, (sql, result.output)
        assert result.stderr.startswith("Error: ")
        assert "Traceback" not in result.output + result.stderr
    assert "The warehouse is read-only to queries" in cli("query", "DELETE FROM students").stderr
    assert not outside.exists()
    assert everything(cli) == before
    assert Warehouse.from_settings(loaded).generation() == 1

    rows = cli.query(
        "SELECT s.student_id, s.date_of_birth, l.start_time, m.recorded_at, "
        "m.minutes_late, c.sms_consent FROM marks m "
        "JOIN students s USING (student_id) JOIN lessons l USING (lesson_id) "
        "JOIN contacts c USING (student_id) WHERE m.lesson_id = 'L2'"
    )
    assert rows == [
        {
            "student_id": "S3",
            "date_of_birth": "2012-07-08",
            "start_time": "10:00:00",
            "recorded_at": "2026-09-03T10:09:00",
            "minutes_late": 7,
            "sms_consent": True,
        }
    ]
    assert cli.query("SELECT * FROM portal_links") == []


# ---- Common Transfer Files --------------------------------------------------------------
@pytest.mark.parametrize("name", CTF_FILES)
def test_every_ctf_fixture_loads_as_an_upsert(name: str, loaded: Settings, cli: Cli) -> None:
    from pipelines.readers.ctf import read_ctf

    expected = read_ctf(CTF_DIR / name).tables
    before = everything(cli)
    load_ok(cli, CTF_DIR / name)
    students = cli.query("SELECT * FROM students ORDER BY ALL")
    upns = set(expected["students"]["student_id"])
    assert {r["student_id"] for r in students} == {"S1", "S2", "S3"} | upns
    assert [r for r in students if r["student_id"] not in upns] == before["students"]
    contacts = cli.query("SELECT * FROM contacts ORDER BY ALL")
    assert [r for r in contacts if r["student_id"] not in upns] == before["contacts"]
    ctf_contacts = [r for r in contacts if r["student_id"] in upns]
    assert len(ctf_contacts) == len(expected["contacts"])
    for row in ctf_contacts:
        assert row["contact_id"] == f"{row['student_id']}-{row['priority']}"
    assert cli.query("SELECT * FROM marks ORDER BY ALL") == before["marks"]


def test_partial_ctf_does_not_blank_columns_set_by_a_csv_load(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    students = minimal_school()["students"]
    students.append(
        {
            "student_id": "J933207636549",
            "upn": "J933207636549",
            "adno": "2001",
            "forename": "Michael",
            "surname": "Jagger",
            "form": "7X",
            "year_group": "7",
            "status": "C01",
            "cohort": "school",
            "email": "mick@pupils.example.com",
            "mobile": "07400 123499",
        }
    )
    load_ok(cli, write_csv(tmp_path / "students.csv", students))
    load_ok(cli, CTF_DIR / "y7_partial.xml")
    row = cli.query("SELECT * FROM students WHERE student_id = 'J933207636549'")[0]
    assert row == {
        "student_id": "J933207636549",
        "upn": "J933207636549",
        "adno": "2001",
        "forename": "Mick",
        "surname": "Jagger",
        "preferred_forename": "Mick",
        "date_of_birth": "2009-06-07",
        "year_group": "6",
        "form": "7X",
        "status": "C",
        "cohort": "school",
        "email": "mick@pupils.example.com",
        "mobile": "07400 123499",
        "mobile_e164": "+447400123499",
    }


def test_ctf_contacts_priority_and_e164_for_spaced_numbers(loaded: Settings, cli: Cli) -> None:
    result = load_ok(cli, CTF_DIR / "y7_spaced_numbers.xml")
    assert any("more than one mobile number" in w for w in warnings_of(result))
    pupil = cli.query(
        "SELECT mobile, mobile_e164, email FROM students WHERE student_id = 'C706200819999'"
    )
    assert pupil == [
        {"mobile": "07344756736", "mobile_e164": "+447344756736", "email": "sCocker2@hssd.gov.gg"}
    ]
    contacts = cli.query(
        "SELECT contact_id, priority, surname, relationship, "
        "parental_responsibility, mobile, mobile_e164, address_line1 "
        "FROM contacts WHERE student_id = 'C706200819999' ORDER BY priority"
    )
    assert contacts == [
        {
            "contact_id": "C706200819999-1",
            "priority": 1,
            "surname": "Cocker",
            "relationship": "PAM",
            "parental_responsibility": True,
            "mobile": "07874376894",
            "mobile_e164": "+447874376894",
            "address_line1": "The Supermarket",
        },
        {
            "contact_id": "C706200819999-2",
            "priority": 2,
            "surname": "Paddle",
            "relationship": "REL",
            "parental_responsibility": False,
            "mobile": "07689415547",
            "mobile_e164": None,
            "address_line1": None,
        },
        {
            "contact_id": "C706200819999-3",
            "priority": 3,
            "surname": "Ronson",
            "relationship": "REL",
            "parental_responsibility": False,
            "mobile": "07546157201",
            "mobile_e164": "+447546157201",
            "address_line1": None,
        },
    ]


# ---- Excel workbooks -------------------------------------------------------------------------
STUDENT_HEADER = [
    "student_id",
    "upn",
    "adno",
    "forename",
    "surname",
    "date_of_birth",
    "form",
    "status",
    "mobile",
]


def xlsx_students() -> list[list[Any]]:
    return [
        STUDENT_HEADER,
        ["S1", "Q933207636540", 1001, "Ann", "Able", dt.date(2010, 3, 4), "10A", "C01", 7400123456],
        ["S2", "D933207636550", 1002, "Ben", "Baker", dt.datetime(2010, 5, 6), "10A", "C01", None],
        ["S3", "R933207636560", 1003.0, "Cat", "Baker", "08/07/2012", "8B", "C01", "07400 123457"],
    ]


def workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_xlsx_first_sheet_with_excel_dates_and_numeric_phones(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "students.xlsx", {"Sheet1": xlsx_students()})
    load_ok(cli, path)
    rows = cli.query(
        "SELECT student_id, adno, date_of_birth, mobile, mobile_e164 "
        "FROM students ORDER BY student_id"
    )
    assert rows == [
        {
            "student_id": "S1",
            "adno": "1001",
            "date_of_birth": "2010-03-04",
            "mobile": "7400123456",
            "mobile_e164": "+447400123456",
        },
        {
            "student_id": "S2",
            "adno": "1002",
            "date_of_birth": "2010-05-06",
            "mobile": None,
            "mobile_e164": None,
        },
        {
            "student_id": "S3",
            "adno": "1003",
            "date_of_birth": "2012-07-08",
            "mobile": "07400 123457",
            "mobile_e164": "+447400123457",
        },
    ]


def test_xlsx_reads_the_sheet_named_like_the_extract(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    lessons = [
        ["lesson_id", "date", "start_time", "end_time", "register_taken_at"],
        ["L7", dt.date(2026, 9, 8), dt.time(9, 0), dt.time(9, 50), dt.datetime(2026, 9, 8, 9, 4)],
    ]
    path = workbook(
        tmp_path / "timetable.xlsx", {"Read me": [["exported by the MIS"]], "Lessons": lessons}
    )
    result = load_ok(cli, path)
    assert "lessons 1" in result.stdout
    assert cli.query(
        "SELECT date, start_time, end_time, register_taken_at, kind FROM lessons "
        "WHERE lesson_id = 'L7'"
    ) == [
        {
            "date": "2026-09-08",
            "start_time": "09:00:00",
            "end_time": "09:50:00",
            "register_taken_at": "2026-09-08T09:04:00",
            "kind": "lesson",
        }
    ]


def test_xlsx_with_students_and_contacts_sheets_loads_both(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    contacts = [
        ["student_id", "contact_id", "surname", "priority", "mobile"],
        ["S1", "C9", "Able", 1, 7400200009],
        ["S3", "C8", "Baker", 2, "07400 200008"],
    ]
    path = workbook(
        tmp_path / "mis export.xlsx", {"students": xlsx_students(), "contacts": contacts}
    )
    result = load_ok(cli, path)
    assert "contacts 2" in result.stdout and "students 3" in result.stdout
    assert cli.query(
        "SELECT student_id, contact_id, priority, mobile_e164, sms_consent "
        "FROM contacts ORDER BY ALL"
    ) == [
        {
            "student_id": "S1",
            "contact_id": "C9",
            "priority": 1,
            "mobile_e164": "+447400200009",
            "sms_consent": True,
        },
        {
            "student_id": "S3",
            "contact_id": "C8",
            "priority": 2,
            "mobile_e164": "+447400200008",
            "sms_consent": True,
        },
    ]


# ---- mapping profiles ---------------------------------------------------------------------
SIMS_ROWS = [
    {
        "Person ID": "S1",
        "Legal Forename": "Ann",
        "Legal Surname": "Able",
        "Reg Group": "10A",
        "Enrolment Status": "C01",
        "DOB": "04/03/2010",
    },
    {
        "Person ID": "S2",
        "Legal Forename": "Ben",
        "Legal Surname": "Baker",
        "Reg Group": "10A",
        "Enrolment Status": "C01",
        "DOB": "06/05/2010",
    },
    {
        "Person ID": "S3",
        "Legal Forename": "Cat",
        "Legal Surname": "Baker",
        "Reg Group": "8B",
        "Enrolment Status": "L01",
        "DOB": "8/7/2012",
    },
]
SIMS_LOADED = [
    {
        "student_id": "S1",
        "forename": "Ann",
        "surname": "Able",
        "form": "10A",
        "status": "C01",
        "date_of_birth": "2010-03-04",
    },
    {
        "student_id": "S2",
        "forename": "Ben",
        "surname": "Baker",
        "form": "10A",
        "status": "C01",
        "date_of_birth": "2010-05-06",
    },
    {
        "student_id": "S3",
        "forename": "Cat",
        "surname": "Baker",
        "form": "8B",
        "status": "L01",
        "date_of_birth": "2012-07-08",
    },
]
SIMS_QUERY = (
    "SELECT student_id, forename, surname, form, status, date_of_birth "
    "FROM students ORDER BY student_id"
)


def test_sims_export_with_the_profile(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "Student Details.csv", SIMS_ROWS)
    result = load_ok(cli, "--profile", "sims", path)
    assert warnings_of(result) == []
    assert cli.query(SIMS_QUERY) == SIMS_LOADED


def test_sims_headers_are_detected_without_a_profile(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "students.csv", SIMS_ROWS)
    result = load_ok(cli, path)
    assert any(
        "students.csv, line 1: column names read with the 'sims' mapping profile" in w
        for w in warnings_of(result)
    ), result.stderr
    assert cli.query(SIMS_QUERY) == SIMS_LOADED


def test_mapping_profile_setting_and_own_profile_file(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    own = tmp_path / "our_mis.toml"
    own.write_text(
        'name = "ours"\n[files]\n"pupil register" = "students"\n'
        '[columns.students]\n"pupil ref" = "student_id"\n"first" = "forename"\n'
        '"last" = "surname"\n"state" = "status"\n',
        "utf-8",
    )
    path = write_csv(
        tmp_path / "Pupil Register.csv",
        [{"Pupil Ref": "S1", "First": "Ann", "Last": "Able", "State": "C01"}],
    )
    load_ok(cli, path, env={"SCHOOLCOMMS_MAPPING_PROFILE": str(own)})
    assert cli.query("SELECT student_id, forename, surname, status FROM students") == [
        {"student_id": "S1", "forename": "Ann", "surname": "Able", "status": "C01"}
    ]


# ---- SQL sources --------------------------------------------------------------------------
def mis_database(path: Path) -> str:
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE pupil (person_id INTEGER, legal_forename TEXT, legal_surname TEXT,
                            reg_group TEXT, enrol_status TEXT, dob TEXT, nc_year INTEGER);
        INSERT INTO pupil VALUES (101, 'Ann', 'Able', '10A', 'C01', '2010-03-04', 10),
                                 (102, 'Ben', 'Baker', '10A', 'C01', '2010-05-06', 10),
                                 (103, 'Cat', 'Baker', '8B', 'C01', '2012-07-08', 8);
        CREATE TABLE guardian (person_id INTEGER, guardian_id INTEGER, surname TEXT,
                               priority INTEGER, mobile TEXT, sms INTEGER);
        INSERT INTO guardian VALUES (101, 9001, 'Able', 1, '07400 200001', 1),
                                    (102, 9002, 'Baker', 1, '07400 200002', 0),
                                    (103, 9002, 'Baker', 1, '07400 200002', 0);
    """)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


SQL_SOURCES = '''[sql_sources]
students = """SELECT 'P' || person_id AS student_id, legal_forename AS forename,
  legal_surname AS surname, reg_group AS form, enrol_status AS status,
  dob AS date_of_birth, nc_year AS year_group FROM pupil"""
contacts = """SELECT 'P' || person_id AS student_id, guardian_id AS contact_id, surname,
  priority, mobile, sms AS sms_consent FROM guardian"""
'''


def test_load_from_sql(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    url = mis_database(tmp_path / "mis.sqlite")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "settings.toml").write_text(SQL_SOURCES, "utf-8")
    env = {"SCHOOLCOMMS_MIS_DATABASE_URL": url}
    result = load_ok(cli, "--from-sql", env=env)
    assert "students 3, contacts 3" in result.stdout
    assert cli.query("SELECT student_id, form, year_group, date_of_birth FROM students ORDER BY 1")[
        0
    ] == {"student_id": "P101", "form": "10A", "year_group": "10", "date_of_birth": "2010-03-04"}
    assert cli.query(
        "SELECT student_id, contact_id, priority, mobile_e164, sms_consent "
        "FROM contacts ORDER BY ALL"
    ) == [
        {
            "student_id": "P101",
            "contact_id": "9001",
            "priority": 1,
            "mobile_e164": "+447400200001",
            "sms_consent": True,
        },
        {
            "student_id": "P102",
            "contact_id": "9002",
            "priority": 1,
            "mobile_e164": "+447400200002",
            "sms_consent": False,
        },
        {
            "student_id": "P103",
            "contact_id": "9002",
            "priority": 1,
            "mobile_e164": "+447400200002",
            "sms_consent": False,
        },
    ]
    history = recent_loads(open_ops(settings)).iloc[0]
    assert (history["origin"], history["status"]) == ("sql", "loaded")
    assert history["files"] == "sql:students, sql:contacts"

    # Only the extracts named; then a failing query is refused with its message.
    con = sqlite3.connect(tmp_path / "mis.sqlite")
    con.execute("UPDATE pupil SET reg_group = '11A' WHERE person_id = 101")
    con.commit()
    con.close()
    load_ok(cli, "--from-sql", "students", env=env)
    assert cli.query("SELECT form FROM students WHERE student_id = 'P101'") == [{"form": "11A"}]
    before = everything(cli)
    (settings.data_dir / "settings.toml").write_text(
        SQL_SOURCES.replace("FROM pupil", "FROM pupils_typo"), "utf-8"
    )
    refused = cli("load", "--from-sql", env=env)
    assert refused.exit_code == 2, refused.output
    assert "sql:students: the query failed: no such table: pupils_typo" in refused.stderr
    assert "correct the query for students in [sql_sources]" in refused.stderr
    assert "Nothing was loaded; the warehouse is unchanged (generation 2)" in refused.stdout
    assert "Traceback" not in refused.output + refused.stderr
    assert everything(cli) == before


def test_load_from_sql_without_a_database_is_refused(cli: Cli, settings: Settings) -> None:
    result = cli("load", "--from-sql")
    assert result.exit_code == 2
    assert "column mis_database_url: no MIS database is configured" in result.stderr
    assert "SCHOOLCOMMS_MIS_DATABASE_URL" in result.stderr


# ---- bulk e-mail import -------------------------------------------------------------------
def test_bulk_email_import_by_adno_and_by_upn(loaded: Settings, cli: Cli, tmp_path: Path) -> None:
    before = cli.query("SELECT * FROM students ORDER BY student_id")
    load_ok(
        cli,
        write_csv(
            tmp_path / "a" / "student_emails.csv",
            [{"adno": "1002", "email": "ben.baker@pupils.example.com"}],
        ),
    )
    after = cli.query("SELECT * FROM students ORDER BY student_id")
    assert after == [before[0], {**before[1], "email": "ben.baker@pupils.example.com"}, before[2]]
    load_ok(
        cli,
        write_csv(
            tmp_path / "b" / "pupil_emails.csv",
            [{"UPN": "r933207636560", "Email": "cat.baker@pupils.example.com"}],
        ),
    )
    final = cli.query("SELECT * FROM students ORDER BY student_id")
    assert final == [before[0], after[1], {**before[2], "email": "cat.baker@pupils.example.com"}]
    tables = cli.query("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%email%'")
    assert tables == []


def test_email_import_in_the_same_load_as_students(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    """The update applies to the students being loaded, whatever order the files come in."""
    folder = tmp_path / "in"
    students = minimal_school()["students"]
    students[2]["form"] = "9C"
    write_csv(folder / "students.csv", students)
    write_csv(folder / "student_emails.csv", [{"adno": "1003", "email": "cat@pupils.example.com"}])
    load_ok(cli, folder)
    assert cli.query("SELECT student_id, form, email FROM students ORDER BY student_id") == [
        {"student_id": "S1", "form": "10A", "email": "ann@pupils.example.com"},
        {"student_id": "S2", "form": "10A", "email": None},
        {"student_id": "S3", "form": "9C", "email": "cat@pupils.example.com"},
    ]


# ---- history, archive, lock -----------------------------------------------------------------
def files_of_run(settings: Settings, run_id: int) -> list[LoadFile]:
    with session_scope(open_ops(settings), immediate=False) as session:
        return list(
            session.execute(
                select(LoadFile).where(LoadFile.load_run_id == run_id).order_by(LoadFile.id)
            ).scalars()
        )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_history_and_archive(
    cli: Cli, settings: Settings, school_dir: Path, tmp_path: Path
) -> None:
    load_ok(cli, school_dir)
    run = recent_loads(open_ops(settings)).iloc[0]
    assert run["status"] == "loaded"
    assert pd.isna(run["generation_before"]) and run["generation_after"] == 1
    assert run["actor"] == "cli" and run["origin"] == "cli"
    assert run["error_count"] == 0 and run["warning_count"] == 0
    files = files_of_run(settings, int(run["id"]))
    names = sorted(f.file_name for f in files)
    assert names == sorted(p.name for p in school_dir.iterdir())
    for record in files:
        original = school_dir / record.file_name
        assert record.sha256 == sha256(original)
        assert record.size_bytes == original.stat().st_size
        archived = Path(record.archived_path)
        assert archived.is_file()
        assert settings.archive_dir in archived.parents
        assert sha256(archived) == record.sha256

    # Two files with the same name from different folders: both archived, neither lost.
    first = write_csv(
        tmp_path / "am" / "marks.csv", [{"lesson_id": "L1", "student_id": "S1", "mark": "L"}]
    )
    second = write_csv(
        tmp_path / "pm" / "marks.csv", [{"lesson_id": "L2", "student_id": "S3", "mark": "O"}]
    )
    load_ok(cli, first, second)
    run = recent_loads(open_ops(settings)).iloc[0]
    files = files_of_run(settings, int(run["id"]))
    assert [f.sha256 for f in files] == [sha256(first), sha256(second)]
    archived = [Path(f.archived_path) for f in files]
    assert len(set(archived)) == 2
    assert [sha256(p) for p in archived] == [sha256(first), sha256(second)]

    # A refused load is in the history, with its errors, and archives nothing.
    archive_before = sorted(p for p in settings.archive_dir.rglob("*") if p.is_file())
    bad = write_csv(
        tmp_path / "bad" / "marks.csv", [{"lesson_id": "L1", "student_id": "S1", "mark": "QQ"}]
    )
    assert cli("load", bad).exit_code == 2
    run = recent_loads(open_ops(settings)).iloc[0]
    assert (run["status"], run["error_count"]) == ("refused", 1)
    assert [f.sha256 for f in files_of_run(settings, int(run["id"]))] == [sha256(bad)]
    assert sorted(p for p in settings.archive_dir.rglob("*") if p.is_file()) == archive_before


def test_a_second_load_while_one_holds_the_lock_is_refused(
    loaded: Settings, cli: Cli, tmp_path: Path
) -> None:
    students = minimal_school()["students"]
    students[0]["form"] = "13Z"
    path = write_csv(tmp_path / "students.csv", students)
    with Warehouse.from_settings(loaded).write_lock():
        result = cli("load", path)
        assert result.exit_code == 2, result.output
        assert (
            "ERROR   load: another load is running (the warehouse lock is held). "
            "Fix: wait for it to finish, then load again" in result.stderr
        )
        assert "Traceback" not in result.output + result.stderr
    assert Warehouse.from_settings(loaded).generation() == 1
    assert cli.query("SELECT form FROM students WHERE student_id = 'S1'") == [{"form": "10A"}]
    load_ok(cli, path)  # and once the lock is free, the same load goes through
    assert cli.query("SELECT form FROM students WHERE student_id = 'S1'") == [{"form": "13Z"}]
