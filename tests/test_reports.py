"""reports/: real queries over a small real warehouse built by the loader."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest

from pipelines.load import load_paths
from reports import contacts, export, loads
from schoolcomms.ops.db import open_ops
from schoolcomms.settings import Settings
from schoolcomms.warehouse import NoWarehouse, Warehouse

STUDENTS = [
    [
        "student_id",
        "upn",
        "adno",
        "forename",
        "surname",
        "preferred_forename",
        "year_group",
        "form",
        "status",
        "cohort",
        "email",
        "mobile",
    ],
    ["S1", "", "1001", "Amy", "Adams", "", "7", "7A", "C01", "school", "", ""],
    ["S2", "", "1002", "Ben", "Brown", "", "7", "7A", "C01", "school", "", ""],
    ["S3", "", "1003", "Cara", "Clark", "", "8", "8B", "C02", "school", "", ""],
    ["S4", "", "1004", "Dan", "Dyer", "", "8", "8B", "L01", "school", "", ""],
    ["S5", "", "1005", "Evelyn", "Evans", "Evie", "10", "10C", "C01", "school", "", ""],
]
CONTACTS = [
    [
        "student_id",
        "contact_id",
        "title",
        "forename",
        "surname",
        "relationship",
        "priority",
        "parental_responsibility",
        "mobile",
        "email",
        "home_phone",
    ],
    # S1: priority 1 with a valid mobile and e-mail; a second contact's mobile is invalid.
    [
        "S1",
        "C1",
        "Mrs",
        "Alice",
        "Adams",
        "Mother",
        "1",
        "Y",
        "07400 123456",
        "alice@example.com",
        "0161 496 0000",
    ],
    ["S1", "C2", "Mr", "Adam", "Adams", "Father", "2", "Y", "12345", "", ""],
    # S2: no priority-1 contact, no e-mail, an invalid home phone.
    ["S2", "C3", "Ms", "Bea", "Brown", "Mother", "2", "Y", "07911 123456", "", "0770"],
    # S3: priority 1, no valid mobile (two invalid numbers), an e-mail.
    ["S3", "C4", "", "Carl", "Clark", "Father", "1", "Y", "0770", "carl@example.com", "999"],
    # S4 has left: its contact's bad number must not be reported.
    ["S4", "C5", "", "Dina", "Dyer", "Mother", "1", "Y", "11", "", ""],
    # S5 has no contacts at all.
]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    """Write ``rows`` (header first) as a UTF-8 CSV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_fixture(folder: Path) -> list[Path]:
    """The canonical students and contacts extracts of the test school."""
    return [
        write_csv(folder / "students.csv", STUDENTS),
        write_csv(folder / "contacts.csv", CONTACTS),
    ]


def make_settings(tmp_path: Path) -> Settings:
    """Settings for a fresh data dir, reading nothing from the developer's environment."""
    return Settings(tmp_path / "data", env={}, secrets_file=tmp_path / "no-secrets.toml")


def build_warehouse(tmp_path: Path) -> tuple[Settings, Warehouse]:
    """Load the fixture once; returns the settings and the warehouse."""
    settings = make_settings(tmp_path)
    report = load_paths(write_fixture(tmp_path / "extracts"), settings)
    assert report.ok, [p.as_text() for p in report.errors]
    return settings, Warehouse.from_settings(settings)


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[Settings, Warehouse]:
    return build_warehouse(tmp_path)


def test_contact_details_values(loaded: tuple[Settings, Warehouse]) -> None:
    _, warehouse = loaded
    frame = contacts.contact_details(warehouse)
    assert frame["student_id"].tolist() == ["S1", "S2", "S3", "S5"]  # S4 has left
    rows = frame.set_index("student_id")
    assert rows.loc["S1", "name"] == "Amy Adams"
    assert rows.loc["S5", "name"] == "Evie Evans"  # preferred forename
    assert rows.loc["S1", "form"] == "7A" and rows.loc["S3", "year_group"] == "8"
    assert rows["has_priority1"].to_dict() == {"S1": True, "S2": False, "S3": True, "S5": False}
    assert rows.loc["S1", "priority1_contact"] == "Mrs Alice Adams"
    assert rows.loc["S1", "priority1_mobile"] == "07400 123456"
    assert rows.loc["S3", "priority1_mobile"] == "0770"
    assert pd.isna(rows.loc["S2", "priority1_contact"])
    assert rows["has_valid_mobile"].to_dict() == {"S1": True, "S2": True, "S3": False, "S5": False}
    assert rows["has_email"].to_dict() == {"S1": True, "S2": False, "S3": True, "S5": False}
    assert rows["invalid_numbers"].to_dict() == {"S1": 1, "S2": 1, "S3": 2, "S5": 0}
    assert rows.loc["S1", "problems"] == "1 invalid number"
    assert rows.loc["S2", "problems"] == "no priority-1 contact; no e-mail; 1 invalid number"
    assert rows.loc["S3", "problems"] == "no valid mobile; 2 invalid numbers"
    assert rows.loc["S5", "problems"] == "no priority-1 contact; no valid mobile; no e-mail"


def test_contact_summary_counts(loaded: tuple[Settings, Warehouse]) -> None:
    _, warehouse = loaded
    assert contacts.contact_summary(warehouse) == {
        "students": 4,
        "without_priority1": 2,
        "without_valid_mobile": 2,
        "without_email": 2,
        "students_with_invalid_numbers": 3,
        "contacts_with_invalid_numbers": 3,
        "invalid_numbers": 4,
    }


def test_invalid_numbers_lists_each_number_as_given(loaded: tuple[Settings, Warehouse]) -> None:
    _, warehouse = loaded
    frame = contacts.invalid_numbers(warehouse)
    got = list(
        frame[["student_id", "contact_id", "column", "number"]].itertuples(index=False, name=None)
    )
    assert got == [
        ("S1", "C2", "mobile", "12345"),
        ("S2", "C3", "home_phone", "0770"),
        ("S3", "C4", "mobile", "0770"),
        ("S3", "C4", "home_phone", "999"),
    ]
    assert frame.loc[0, "contact_name"] == "Mr Adam Adams"
    assert "C5" not in set(frame["contact_id"])  # a left student's contact


def test_filters_and_chart_data(loaded: tuple[Settings, Warehouse]) -> None:
    _, warehouse = loaded
    frame = contacts.contact_details(warehouse)
    assert contacts.filter_details(frame, forms=["7A"])["student_id"].tolist() == ["S1", "S2"]
    assert contacts.filter_details(frame, year_groups=["10"])["student_id"].tolist() == ["S5"]
    no_email = contacts.filter_details(frame, kinds=[contacts.NO_EMAIL])
    assert no_email["student_id"].tolist() == ["S2", "S5"]
    either = contacts.filter_details(frame, kinds=[contacts.NO_PRIORITY1, contacts.NO_MOBILE])
    assert either["student_id"].tolist() == ["S2", "S3", "S5"]
    with pytest.raises(ValueError, match="Unknown problem kind"):
        contacts.filter_details(frame, kinds=["nonsense"])
    chart = contacts.problems_by(frame, "year_group")
    assert chart["year_group"].unique().tolist() == ["7", "8", "10"]  # school order
    counts = chart.set_index(["year_group", "problem"])["students"]
    assert counts[("7", contacts.NO_PRIORITY1)] == 1
    assert counts[("7", contacts.INVALID_NUMBERS)] == 2
    assert counts[("8", contacts.NO_MOBILE)] == 1
    assert counts[("10", contacts.NO_EMAIL)] == 1


def test_reports_need_a_warehouse(tmp_path: Path) -> None:
    warehouse = Warehouse.from_settings(make_settings(tmp_path))
    with pytest.raises(NoWarehouse):
        contacts.contact_details(warehouse)
    status = loads.warehouse_status(warehouse)
    assert status["generation"] is None and status["generations"] == [] and status["rows"] == {}


def test_warehouse_status(loaded: tuple[Settings, Warehouse]) -> None:
    settings, warehouse = loaded
    before = dt.datetime.now() - dt.timedelta(days=1)
    status = loads.warehouse_status(warehouse)
    assert status["generation"] == 1
    assert status["generations"] == [1]
    assert status["previous"] is None
    assert isinstance(status["loaded_at"], dt.datetime) and status["loaded_at"] > before
    assert status["extracts"] == ["contacts", "students"]
    assert status["rows"]["students"] == 5
    assert status["rows"]["contacts"] == 5
    assert status["rows"]["marks"] == 0
    assert not any(name.startswith("_") for name in status["rows"])
    table = loads.row_counts_frame(status).set_index("table")["rows"]
    assert table["students"] == 5

    # A second load: generation 2 is current, 1 is kept for rollback.
    extra = write_csv(tmp_path_of(settings) / "more" / "students.csv", STUDENTS[:3])
    extra_contacts = write_csv(extra.parent / "contacts.csv", CONTACTS[:3])
    assert load_paths([extra, extra_contacts], settings).ok
    status = loads.warehouse_status(warehouse)
    assert (status["generation"], status["generations"], status["previous"]) == (2, [1, 2], 1)
    assert status["rows"]["students"] == 2


def tmp_path_of(settings: Settings) -> Path:
    return settings.data_dir.parent


def test_load_history_wrappers(loaded: tuple[Settings, Warehouse], tmp_path: Path) -> None:
    settings, _ = loaded
    bad = write_csv(
        tmp_path / "bad" / "contacts.csv",
        [CONTACTS[0], ["NOPE", "C9", "", "", "Zed", "", "1", "", "", "", ""]],
    )
    report = load_paths([bad], settings, dry_run=True)
    assert not report.ok
    engine = open_ops(settings)
    history = loads.load_history(engine)
    assert history["status"].tolist() == ["refused", "loaded"]
    assert history.loc[0, "files"] == "contacts.csv"
    problems = loads.load_problems(engine, int(history.loc[0, "id"]))
    assert list(problems.columns) == loads.PROBLEM_TABLE_COLUMNS
    assert problems.loc[0, "severity"] == "error"
    assert problems.loc[0, "file"] == "contacts.csv"
    assert "NOPE" in set(problems["value"].dropna())
    label = loads.describe_run(
        {**history.iloc[0].to_dict(), "started_at": dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.UTC)}
    )
    assert label.startswith(f"#{history.loc[0, 'id']} · 01/07/2026 10:30 · refused")
    with pytest.raises(LookupError):
        loads.load_problems(engine, 999_999)


def test_problems_frame_puts_errors_first() -> None:
    from pipelines.problems import error, warning

    frame = loads.problems_frame(
        [
            warning("odd", "look", file="a.csv", line=3, column="x", value="1"),
            error("bad", "fix it", file="b.csv", line=2, column="y", value="2", count=4),
            {"severity": "warning", "problem": "p", "fix": "f", "file": "c.csv"},
        ]
    )
    assert frame["severity"].tolist() == ["error", "warning", "warning"]
    assert frame["file"].tolist() == ["b.csv", "a.csv", "c.csv"]
    assert frame.loc[0, "count"] == 4 and pd.isna(frame.loc[2, "line"])
    assert list(loads.problems_frame([]).columns) == loads.PROBLEM_TABLE_COLUMNS


def read_back(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))


def test_csv_bytes_escapes_formulas_and_keeps_text() -> None:
    frame = pd.DataFrame(
        {
            "cell": ["=SUM(A1)", "+447400123456", "-1", "@x", "\tx", "\rx", "plain", "Zoë", None],
            "n": [1, -2, 3, 4, 5, 6, 7, 8, 9],
        }
    )
    rows = read_back(export.csv_bytes(frame))
    assert rows[0] == ["cell", "n"]
    assert [r[0] for r in rows[1:]] == [
        "'=SUM(A1)",
        "'+447400123456",
        "'-1",
        "'@x",
        "'\tx",
        "'\rx",
        "plain",
        "Zoë",
        "",
    ]
    assert [r[1] for r in rows[1:]] == ["1", "'-2", "3", "4", "5", "6", "7", "8", "9"]
    assert frame.loc[0, "cell"] == "=SUM(A1)"  # the caller's frame is untouched
    assert b"\r\n" in export.csv_bytes(frame)


def test_csv_bytes_of_a_report(loaded: tuple[Settings, Warehouse]) -> None:
    _, warehouse = loaded
    rows = read_back(export.csv_bytes(contacts.contact_details(warehouse)))
    assert rows[0][:4] == ["student_id", "name", "year_group", "form"]
    assert len(rows) == 5
