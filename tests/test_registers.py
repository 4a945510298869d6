"""Missing-register reads (reports/registers.py) over a real warehouse.

A small day is loaded from canonical CSVs; the reads are asked "as of" moments before
and after registers were taken, by register_taken_at or by marks only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import minimal_school, write_extracts

from pipelines.load import load_paths
from reports.registers import (
    BY_DEPARTMENT_COLUMNS,
    BY_TEACHER_COLUMNS,
    COLUMNS,
    form_heads_of_year,
    missing_by_department,
    missing_by_teacher,
    missing_registers,
    still_missing,
    whole_school_role,
)
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

DAY = dt.date(2026, 11, 20)  # a Friday
MONDAY, SUNDAY = dt.date(2026, 11, 16), dt.date(2026, 11, 22)


def lesson(
    lid: str,
    start: str,
    *,
    day: dt.date = DAY,
    staff: str = "T1",
    subject: str = "Maths",
    class_id: str = "10A/Ma",
    kind: str = "lesson",
    taken: str = "",
    period: str = "1",
) -> dict:
    hour, minute = map(int, start.split(":"))
    return {
        "lesson_id": lid,
        "date": day.isoformat(),
        "start_time": start,
        "end_time": f"{hour + 1:02d}:{minute:02d}",
        "kind": kind,
        "period": period,
        "class_id": class_id,
        "subject": subject,
        "staff_id": staff,
        "room": "R1",
        "register_taken_at": f"{day.isoformat()} {taken}" if taken else "",
    }


def mark(lid: str, recorded: str | None, sid: str = "S1") -> dict:
    return {
        "lesson_id": lid,
        "student_id": sid,
        "mark": "/",
        "recorded_at": f"{DAY.isoformat()} {recorded}" if recorded else "",
    }


LESSONS = [
    lesson("A", "09:00", taken="09:20"),  # taken at 09:20
    lesson("B", "09:00", staff="T2", subject="English", class_id="8B/En"),  # a mark at 09:15
    lesson("C", "09:00", staff="T2", subject="English", class_id="8B/En"),  # mark, no time
    lesson("D", "10:00", period="2"),  # never taken
    lesson("E", "08:40", staff="T2", subject="", class_id="10A", kind="session", period="AM"),
    lesson("F", "09:00", taken="09:30"),  # a mark at 09:05 but the register at 09:30
    lesson("G", "09:00", day=dt.date(2026, 11, 19)),  # yesterday, never taken
    lesson("H", "09:00", day=dt.date(2026, 11, 13)),  # last week, never taken
    lesson("N", "09:00", staff=""),  # no teacher
    lesson("U", "09:00", staff="T9"),  # a teacher not in the staff extract
]
MARKS = [mark("B", "09:15"), mark("C", None), mark("F", "09:05")]


@pytest.fixture
def warehouse(settings: Settings, tmp_path: Path) -> Warehouse:
    tables = minimal_school()
    tables["classes"].append({"class_id": "10A", "subject": "", "year_group": "10"})
    tables["classes"].append({"class_id": "MIXED", "subject": "Art", "year_group": ""})
    tables["class_members"] += [
        {"class_id": "10A", "student_id": "S1"},
        {"class_id": "MIXED", "student_id": "S1"},
        {"class_id": "MIXED", "student_id": "S3"},
    ]
    tables["lessons"] = LESSONS
    tables["marks"] = MARKS
    tables["responsibilities"] = [
        {"staff_id": "T1", "role": "head_of_year", "scope": "10"},
        {"staff_id": "T2", "role": "head_of_year", "scope": "8"},
        {"staff_id": "T2", "role": "attendance_officer", "scope": ""},
    ]
    write_extracts(tmp_path / "day", tables)
    report = load_paths([tmp_path / "day"], settings)
    assert report.ok, [p.as_text() for p in report.problems]
    return Warehouse.from_settings(settings)


def at(hhmm: str, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm))


def ids(frame) -> list[str]:
    return sorted(frame["lesson_id"])


def today(warehouse: Warehouse, hhmm: str, after: int = 0):
    return missing_registers(warehouse, start=DAY, end=DAY, at=at(hhmm), after_minutes=after)


def test_as_of_semantics_register_taken_at_and_marks_only(warehouse: Warehouse) -> None:
    assert ids(today(warehouse, "08:39")) == []  # nothing has started
    assert ids(today(warehouse, "09:10")) == ["A", "B", "E", "F", "N", "U"]
    # 09:15: B's first mark makes its register taken; A is taken at 09:20 exactly.
    assert ids(today(warehouse, "09:15")) == ["A", "E", "F", "N", "U"]
    assert ids(today(warehouse, "09:19")) == ["A", "E", "F", "N", "U"]
    assert ids(today(warehouse, "09:20")) == ["E", "F", "N", "U"]
    # F had a mark at 09:05, but its register_taken_at (09:30) is what counts.
    assert ids(today(warehouse, "09:29")) == ["E", "F", "N", "U"]
    assert ids(today(warehouse, "09:30")) == ["E", "N", "U"]


def test_after_minutes_boundary_and_minutes_missing(warehouse: Warehouse) -> None:
    assert "D" not in ids(today(warehouse, "10:09", after=10))
    frame = today(warehouse, "10:10", after=10)
    assert "D" in ids(frame)
    row = frame.set_index("lesson_id").loc["D"]
    assert row["minutes_missing"] == 10
    assert today(warehouse, "10:10").set_index("lesson_id").loc["E", "minutes_missing"] == 90
    # Seconds do not round up: 09:10:59 is still 10 whole minutes after 09:00.
    late = missing_registers(warehouse, start=DAY, end=DAY, at=dt.datetime(2026, 11, 20, 9, 10, 59))
    assert late.set_index("lesson_id").loc["N", "minutes_missing"] == 10


def test_columns_names_and_sessions(warehouse: Warehouse) -> None:
    frame = today(warehouse, "09:10")
    assert list(frame.columns) == COLUMNS
    rows = frame.set_index("lesson_id")
    assert rows.loc["A", "teacher"] == "Ms Tara Teach" and rows.loc["A", "department"] == "Maths"
    assert rows.loc["E", "kind"] == "session" and rows.loc["E", "department"] == ""
    assert rows.loc["E", "period"] == "AM" and rows.loc["E", "teacher"] == "Mr Tom Tutor"
    assert (rows.loc["N", "staff_id"], rows.loc["N", "teacher"]) == ("", "")
    assert (rows.loc["U", "staff_id"], rows.loc["U", "teacher"]) == ("T9", "")
    assert frame["lesson_id"].tolist()[0] == "E"  # ordered by start time
    assert list(missing_registers(warehouse, start=DAY, end=DAY, at=at("07:00")).columns) == (
        COLUMNS
    )


def test_date_range_is_inclusive_and_other_days_are_left_out(warehouse: Warehouse) -> None:
    week = missing_registers(warehouse, start=MONDAY, end=SUNDAY, at=at("23:00"))
    assert ids(week) == ["D", "E", "G", "N", "U"]
    yesterday = missing_registers(warehouse, start=DAY, end=DAY, at=at("23:00"))
    assert "G" not in ids(yesterday) and "H" not in ids(week)
    # As of yesterday evening, today's lessons had not started.
    assert ids(
        missing_registers(
            warehouse, start=MONDAY, end=SUNDAY, at=at("23:00", dt.date(2026, 11, 19))
        )
    ) == ["G"]


def test_grouping_by_teacher_and_department(warehouse: Warehouse) -> None:
    week = missing_registers(warehouse, start=MONDAY, end=SUNDAY, at=at("23:00"))
    by_teacher = missing_by_teacher(week)
    assert list(by_teacher.columns) == BY_TEACHER_COLUMNS
    assert by_teacher.values.tolist() == [
        ["T1", "Ms Tara Teach", "Maths", 2],
        ["", "", "Maths", 1],
        ["T9", "", "Maths", 1],
        ["T2", "Mr Tom Tutor", "", 1],
    ]
    by_department = missing_by_department(week)
    assert list(by_department.columns) == BY_DEPARTMENT_COLUMNS
    assert by_department.values.tolist() == [["Maths", 4, 2], ["", 1, 1]]
    empty = week.iloc[0:0]
    assert list(missing_by_teacher(empty).columns) == BY_TEACHER_COLUMNS
    assert list(missing_by_department(empty).columns) == BY_DEPARTMENT_COLUMNS


def test_teacher_with_several_departments(warehouse: Warehouse) -> None:
    frame = missing_registers(warehouse, start=MONDAY, end=SUNDAY, at=at("23:00"))
    frame.loc[frame["lesson_id"] == "G", "department"] = "Statistics"
    row = missing_by_teacher(frame).set_index("staff_id").loc["T1"]
    assert (row["department"], row["missing"]) == ("Maths, Statistics", 2)


def test_still_missing_for_chosen_lessons(warehouse: Warehouse) -> None:
    frame = still_missing(warehouse, ["A", "B", "D", "G", "nope"], at("09:16"))
    assert ids(frame) == ["A", "G"]  # B taken by mark, D not started, G yesterday
    assert list(still_missing(warehouse, [], at("09:16")).columns) == COLUMNS


def test_heads_of_year_of_form_groups_and_whole_school_roles(warehouse: Warehouse) -> None:
    # "10A" is a form code; "10A/Ma" has members of form 10A only; MIXED spans forms.
    assert form_heads_of_year(warehouse, ["10A", "10A/Ma", "MIXED", "8B/En", "none"]) == {
        "10A": ["T1"],
        "10A/Ma": ["T1"],
        "8B/En": ["T2"],
    }
    assert form_heads_of_year(warehouse, []) == {}
    assert whole_school_role(warehouse, "attendance_officer") == ["T2"]
    assert whole_school_role(warehouse, "senior_leader") == []
