"""A data manager uploads a bad extract, reads the errors, loads a good one, sees the change.

Data loads → upload a students.csv with a blank required cell and an impossible date →
Load is refused and the validation report names file, line, column and the fix →
upload a good students.csv (three new pupils) → Load → Contact details counts them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from .conftest import School
from .streamlit_ui import (
    dataframe,
    errors,
    exceptions,
    grid_rows,
    metric_value,
    open_page,
    settle,
    upload,
)

NEW_PUPILS = [
    {
        "student_id": f"E2E{n:04d}",
        "upn": "",
        "adno": f"9{n:05d}",
        "forename": forename,
        "surname": "Newcomer",
        "preferred_forename": "",
        "date_of_birth": "2011-02-03",
        "year_group": "11",
        "form": "11A",
        "status": "C01",
        "cohort": "school",
        "email": "",
        "mobile": "",
    }
    for n, forename in enumerate(["Nia", "Noel", "Nora"], start=1)
]


def write_students(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def sample_students(school: School) -> list[dict[str, str]]:
    with (school.sample / "students.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def count(text: str) -> int:
    return int(text.replace(",", ""))


def test_bad_extract_is_refused_with_reasons_then_a_good_one_changes_the_reports(
    signed_in: Callable[[str], Page], school: School, tmp_path: Path
) -> None:
    students = sample_students(school)
    bad_rows = [dict(row) for row in students]
    bad_rows[1]["surname"] = ""  # line 3: a required cell left blank
    bad_rows[3]["date_of_birth"] = "31/02/2011"  # line 5: no such date
    bad = write_students(tmp_path / "bad" / "students.csv", bad_rows)
    good = write_students(tmp_path / "good" / "students.csv", [*students, *NEW_PUPILS])

    page = signed_in("data_manager")
    open_page(page, "Contact details")
    before_students = count(metric_value(page, "Current students"))
    before_no_contact = count(metric_value(page, "Without a priority-1 contact"))

    open_page(page, "Data loads")
    upload(page, "Extract files", [bad])
    page.get_by_role("button", name="Load", exact=True).click()
    settle(page)
    assert errors(page), "a refused load says so in an error box"
    report = grid_rows(dataframe(page, near="Validation report"))
    problems = [r for r in report if r.get("severity") == "error"]
    assert {(r["file"], r["line"], r["column"]) for r in problems} >= {
        ("students.csv", "3", "surname"),
        ("students.csv", "5", "date_of_birth"),
    }, report
    assert all(r["fix"] for r in problems), "every error says how to fix it"
    assert not exceptions(page)

    upload(page, "Extract files", [good])
    page.get_by_role("button", name="Load", exact=True).click()
    settle(page)
    expect(page.locator('[data-testid="stAlertContentSuccess"]').first).to_contain_text(
        "generation"
    )
    assert not errors(page) and not exceptions(page)

    open_page(page, "Contact details")
    assert count(metric_value(page, "Current students")) == before_students + len(NEW_PUPILS)
    assert count(metric_value(page, "Without a priority-1 contact")) == before_no_contact + len(
        NEW_PUPILS
    )
    assert not exceptions(page)
