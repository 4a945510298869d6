"""Attendance and behaviour report queries on a tiny hand-made school with known answers.

Week 16–22 November 2026: ten AM/PM sessions a pupil (Monday to Friday), plus lessons
and marks that must not count. Every percentage below is worked out by hand.

    7A  S1  10 × /                          10/10  100.0
    7A  S2   9 × /, 1 × O                    9/10   90.0  (at the threshold: not PA)
    7B  S3   8 × /, 1 × I, 1 × X             8/9    88.9  (X is not a possible session)
    7B  S4   5 × /, 3 × V, 2 × N             8/10   80.0  (V, approved activity, attends)
    8A  S5   6 × \\, 4 × #                    6/6   100.0
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from conftest import write_extracts

from pipelines.load import load_paths
from reports import attendance, behaviour
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

MONDAY = dt.date(2026, 11, 16)
WEEK = (MONDAY, MONDAY + dt.timedelta(days=6))
DAYS = [MONDAY + dt.timedelta(days=i) for i in range(5)]
EVIL = '<b>Zoë</b> & "Co"'  # a name that must be escaped in HTML


def pupil(sid: str, year: str, form: str, forename: str = "Pat") -> dict[str, Any]:
    return {
        "student_id": sid,
        "forename": forename,
        "surname": f"Pupil{sid}",
        "year_group": year,
        "form": form,
        "status": "C01",
        "cohort": "school",
    }


def sessions(days: list[dt.date] = DAYS) -> list[dict[str, Any]]:
    out = []
    for day in days:
        for period, start, end in (("AM", "08:40", "08:50"), ("PM", "13:10", "13:20")):
            out.append(
                {
                    "lesson_id": f"{day:%m%d}{period}",
                    "date": day.isoformat(),
                    "start_time": start,
                    "end_time": end,
                    "kind": "session",
                    "period": period,
                    "register_taken_at": f"{day} {end}",
                }
            )
    return out


def marks_for(sid: str, codes: list[str]) -> list[dict[str, Any]]:
    ids = [s["lesson_id"] for s in sessions()]
    pairs = zip(ids, codes, strict=True)
    return [{"lesson_id": lid, "student_id": sid, "mark": code} for lid, code in pairs]


def school_tables() -> dict[str, list[dict[str, Any]]]:
    """The week above, a lesson per day marked O (ignored: sessions exist), an O session
    the week before (out of range) and behaviour incidents."""
    lessons = sessions() + sessions([MONDAY - dt.timedelta(days=7)])
    lessons += [
        {
            "lesson_id": f"LES{day:%m%d}",
            "date": day.isoformat(),
            "start_time": "09:00",
            "end_time": "10:00",
            "kind": "lesson",
            "staff_id": "T1",
            "subject": "Maths",
            "register_taken_at": f"{day} 09:05",
        }
        for day in DAYS
    ]
    marks = (
        marks_for("S1", ["/", "\\"] * 5)
        + marks_for("S2", ["/"] * 9 + ["O"])
        + marks_for("S3", ["/"] * 8 + ["I", "X"])
        + marks_for("S4", ["/"] * 5 + ["V"] * 3 + ["N"] * 2)
        + marks_for("S5", ["\\"] * 6 + ["#"] * 4)
        + [{"lesson_id": f"LES{day:%m%d}", "student_id": "S1", "mark": "O"} for day in DAYS]
        + [{"lesson_id": "1109AM", "student_id": "S1", "mark": "O"}]
    )
    return {
        "staff": [{"staff_id": "T1", "forename": "Tara", "surname": "Teach"}],
        "students": [
            pupil("S1", "7", "7A", EVIL),
            pupil("S2", "7", "7A"),
            pupil("S3", "7", "7B"),
            pupil("S4", "7", "7B"),
            pupil("S5", "8", "8A"),
        ],
        "lessons": lessons,
        "marks": marks,
        "behaviour": [
            incident("B1", "S1", "2026-11-16 10:00", "Disruption", "negative", "-2"),
            incident("B2", "S1", "2026-11-17 11:00", "Disruption", "Negative", ""),
            incident("B3", "S1", "2026-11-18 12:00", "Homework not done", "negative", "-1"),
            incident("B4", "S2", "2026-11-18 12:00", "Disruption", "negative", "-1"),
            incident("B5", "S2", "2026-11-19 09:00", "Praise", "positive", "3"),
            incident("B6", "S5", "2026-11-22 23:59", "Praise", "positive", "1"),  # Sunday: in
            incident("B7", "S5", "2026-11-23 00:00", "Praise", "positive", "1"),  # Monday: out
            incident("B8", "S3", "2026-11-15 23:59", "Disruption", "negative", "-1"),  # out
        ],
    }


def incident(iid: str, sid: str, at: str, kind: str, polarity: str, points: str) -> dict[str, Any]:
    return {
        "incident_id": iid,
        "student_id": sid,
        "occurred_at": at,
        "type": kind,
        "polarity": polarity,
        "points": points,
    }


def load_school(settings: Settings, tables: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """Load :func:`school_tables` (or ``tables``) into the data directory of ``settings``."""
    folder = (
        Path(settings.data_dir).parent / f"extracts{len(list(settings.data_dir.parent.iterdir()))}"
    )
    write_extracts(folder, tables or school_tables())
    report = load_paths([folder], settings)
    assert report.ok, [p.as_text() for p in report.problems]


@pytest.fixture
def school(settings: Settings) -> Warehouse:
    load_school(settings)
    return Warehouse.from_settings(settings)


def by_id(frame: Any) -> dict[str, dict[str, Any]]:
    return {row["student_id"]: row for row in frame.to_dict("records")}


def test_pupil_percentages_count_sessions_only_and_leave_out_not_possible(school) -> None:
    assert attendance.attendance_basis(school) == "session"
    pupils = by_id(attendance.attendance_by_pupil(school, *WEEK))
    got = {
        sid: (r["possible"], r["attended"], r["authorised"], r["unauthorised"], r["percent"])
        for sid, r in pupils.items()
    }
    assert got == {
        "S1": (10, 10, 0, 0, 100.0),  # its lessons marked O do not count
        "S2": (10, 9, 0, 1, 90.0),
        "S3": (9, 8, 1, 0, 88.9),  # X left out of possible sessions
        "S4": (10, 8, 0, 2, 80.0),  # V counts as attended
        "S5": (6, 6, 0, 0, 100.0),
    }
    assert pupils["S3"]["not_possible"] == 1 and pupils["S5"]["not_possible"] == 4
    # The week before holds one O session for S1 and nothing else.
    before = attendance.attendance_by_pupil(school, MONDAY - dt.timedelta(days=7), MONDAY)
    assert by_id(before)["S1"]["percent"] == pytest.approx(100 * 2 / 3, abs=0.05)


def test_persistent_absentees_are_below_the_threshold_not_at_it(school) -> None:
    absentees = attendance.persistent_absentees(school, *WEEK, 90.0)
    assert absentees["student_id"].tolist() == ["S4", "S3"]  # lowest first; S2 is at 90.0
    assert attendance.persistent_absentees(school, *WEEK, 80.0).empty
    assert attendance.persistent_absentees(school, *WEEK, 80.1)["student_id"].tolist() == ["S4"]


def test_group_percentages_weigh_sessions(school) -> None:
    forms = attendance.attendance_by_group(school, *WEEK, "form", threshold_percent=90)
    assert forms["form"].tolist() == ["7A", "7B", "8A"]
    rows = {r["form"]: r for r in forms.to_dict("records")}
    assert (rows["7A"]["possible"], rows["7A"]["attended"], rows["7A"]["percent"]) == (20, 19, 95.0)
    assert (rows["7B"]["possible"], rows["7B"]["attended"], rows["7B"]["percent"]) == (19, 16, 84.2)
    assert [rows[f]["persistent_absentees"] for f in ("7A", "7B", "8A")] == [0, 2, 0]
    years = attendance.attendance_by_group(school, *WEEK, "year_group")
    assert years["year_group"].tolist() == ["7", "8"]  # no threshold: no PA column
    assert "persistent_absentees" not in years.columns
    assert years["percent"].tolist() == [89.7, 100.0]  # 35 of 39; 6 of 6
    assert attendance.overall_attendance(school, *WEEK) == {
        "pupils": 5,
        "possible": 45,
        "attended": 41,
        "percent": 91.1,
    }
    with pytest.raises(ValueError, match="year_group, form"):
        attendance.attendance_by_group(school, *WEEK, "house")


def test_without_sessions_lessons_count_and_school_codes_are_used(tmp_path) -> None:
    settings = Settings(
        tmp_path / "data", env={}, overrides={"extra_attendance_codes": "EX:present"}
    )
    lessons = [
        {
            "lesson_id": f"L{i}",
            "date": "2026-11-17",
            "start_time": f"{9 + i:02d}:00",
            "end_time": f"{9 + i:02d}:50",
            "kind": "lesson",
        }
        for i in range(4)
    ]
    marks = [
        {"lesson_id": "L0", "student_id": "S1", "mark": "/"},
        {"lesson_id": "L1", "student_id": "S1", "mark": "ex"},  # the school's own: present
        {"lesson_id": "L2", "student_id": "S1", "mark": "O"},
        {"lesson_id": "L3", "student_id": "S1", "mark": "Y3"},
    ]
    load_school(
        settings, {"students": [pupil("S1", "12", "12X")], "lessons": lessons, "marks": marks}
    )
    warehouse = Warehouse.from_settings(settings)
    assert attendance.attendance_basis(warehouse) == "lesson"
    [row] = attendance.attendance_by_pupil(
        warehouse, dt.date(2026, 11, 17), dt.date(2026, 11, 17), extra_codes="EX:present"
    ).to_dict("records")
    assert (row["possible"], row["attended"], row["percent"]) == (3, 2, 66.7)
    # Without the school's code, EX counts as nothing at all.
    [row] = attendance.attendance_by_pupil(
        warehouse, dt.date(2026, 11, 17), dt.date(2026, 11, 17)
    ).to_dict("records")
    assert (row["possible"], row["attended"]) == (2, 1)


def test_academic_year_starts_on_1_september() -> None:
    assert attendance.academic_year_start(dt.date(2026, 11, 20)) == dt.date(2026, 9, 1)
    assert attendance.academic_year_start(dt.date(2027, 3, 1)) == dt.date(2026, 9, 1)
    assert attendance.academic_year_start(dt.date(2026, 9, 1)) == dt.date(2026, 9, 1)
    assert attendance.academic_year_start(dt.date(2026, 8, 31)) == dt.date(2025, 9, 1)


def test_behaviour_summary_counts(school) -> None:
    summary = behaviour.behaviour_summary(school, *WEEK)
    assert (summary.incidents, summary.positive, summary.negative, summary.pupils) == (6, 2, 4, 3)
    assert summary.points == -2 + 0 - 1 - 1 + 3 + 1
    by_type = [tuple(r) for r in summary.by_type.itertuples(index=False)]
    assert by_type == [
        ("Disruption", "negative", 3, 2, -3),  # "Negative" counts as negative; blank points 0
        ("Praise", "positive", 2, 2, 4),
        ("Homework not done", "negative", 1, 1, -1),
    ]
    years = {r["year_group"]: r for r in summary.by_year_group.to_dict("records")}
    assert (years["7"]["positive"], years["7"]["negative"], years["7"]["negative_points"]) == (
        1,
        4,
        -4,
    )
    assert (years["8"]["positive"], years["8"]["negative"]) == (1, 0)
    top = summary.top_pupils
    assert top["student_id"].tolist() == ["S1", "S2"]  # only pupils with a negative
    assert top["negative"].tolist() == [3, 1] and top["positive"].tolist() == [0, 1]
    assert top.iloc[0]["forename"] == EVIL
    assert behaviour.top_pupils_by_negative(school, *WEEK, limit=1)["student_id"].tolist() == ["S1"]
    with pytest.raises(ValueError, match="before it starts"):
        behaviour.behaviour_summary(school, WEEK[1], WEEK[0])
