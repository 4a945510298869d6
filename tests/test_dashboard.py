"""The dashboard pages, driven with Streamlit's AppTest against a real data folder."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from conftest import sign_in
from streamlit.testing.v1 import AppTest
from test_reports import CONTACTS, STUDENTS, write_csv, write_fixture

from dashboard import actions, common
from pipelines.load import load_paths
from reports.export import csv_bytes
from reports.loads import PROBLEM_TABLE_COLUMNS, load_history
from schoolcomms.ops.db import open_ops
from schoolcomms.roles import ACTION_ROLES, PAGE_ROLES
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
DATA_LOADS = str(ROOT / "dashboard" / "pages" / "data_loads.py")
CONTACT_DETAILS = str(ROOT / "dashboard" / "pages" / "contact_details.py")
TIMEOUT = 60


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh data folder that the app will use, and nothing of the developer's set-up.

    Every SCHOOLCOMMS_* variable is removed, the working directory (where
    .streamlit/secrets.toml would be read) and HOME are the empty tmp folder.
    """
    import os

    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    return Settings(data, env={}, secrets_file=tmp_path / "no-secrets.toml")


def load_fixture(settings: Settings) -> None:
    report = load_paths(write_fixture(settings.data_dir.parent / "extracts"), settings)
    assert report.ok, [p.as_text() for p in report.errors]


def run(path: str) -> AppTest:
    at = sign_in(AppTest.from_file(path, default_timeout=TIMEOUT)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def offered_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[pd.DataFrame, str]]:
    """Record each table a page offers as CSV (key -> (table, file name)), still drawing it."""
    offered: dict[str, tuple[pd.DataFrame, str]] = {}
    real = common.download

    def download(frame: pd.DataFrame, file_name: str, key: str, **kw: Any) -> None:
        offered[key] = (frame, file_name)
        real(frame, file_name, key, **kw)

    monkeypatch.setattr(common, "download", download)
    return offered


def past_the_page_gate(monkeypatch: pytest.MonkeyPatch, *, controls: bool) -> None:
    """Let any account through ``require_page``, as if it opened the page with the role.

    With ``controls`` the page also shows it every control (``user_can`` says yes): what
    is left to refuse an action is the check on the server when the action runs.
    """
    monkeypatch.setattr(common, "check_page", lambda roles, page: None)
    if controls:
        monkeypatch.setattr(common, "user_can", lambda action: True)


def csv_file(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


# ---- no data ---------------------------------------------------------------------------


def test_contact_details_without_data_shows_the_empty_state(settings: Settings) -> None:
    at = run(CONTACT_DETAILS)
    assert "No data loaded yet" in texts(at.info)
    assert "Data loads" in texts(at.info)
    assert not at.metric and not at.dataframe and not at.error


def test_data_loads_without_data(settings: Settings) -> None:
    at = run(DATA_LOADS)
    assert "No data loaded yet" in texts(at.info)
    assert "No loads yet" in texts(at.info)
    assert at.button(key="rollback").disabled
    assert not at.error


def test_app_uses_the_school_name_and_opens_data_loads_first(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHOOLCOMMS_SCHOOL_NAME", "Test Academy")
    at = run(APP)
    assert "Test Academy" in texts(at.sidebar.markdown)
    assert [t.value for t in at.title] == ["Data loads"]
    at.switch_page("pages/contact_details.py").run()
    assert "No data loaded yet" in texts(at.info)
    assert len(at.get("page_link")) == 1  # a real link to Data loads inside the app
    load_fixture(settings)
    at = run(APP)
    assert [t.value for t in at.title] == ["Test Academy"], "Home, with the staff notices"
    at.switch_page("pages/contact_details.py").run()
    assert [t.value for t in at.title] == ["Contact details"]
    at.switch_page("pages/data_loads.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Data loads"]


def test_a_broken_warehouse_pointer_is_an_error_in_words(settings: Settings) -> None:
    load_fixture(settings)
    (settings.warehouse_dir / "CURRENT").write_text("99\n")
    for page in (CONTACT_DETAILS, DATA_LOADS):
        at = run(page)
        assert "not on disk" in texts(at.error)


# ---- contact details --------------------------------------------------------------------


def test_contact_details_with_data(settings: Settings) -> None:
    load_fixture(settings)
    at = run(CONTACT_DETAILS)
    assert metrics(at) == {
        "Current students": "4",
        "Without a priority-1 contact": "2",
        "Without a valid mobile": "2",
        "Without an e-mail": "2",
        "Contacts with invalid numbers": "3",
    }
    students, invalid = at.dataframe[0].value, at.dataframe[1].value
    assert students["student_id"].tolist() == ["S1", "S2", "S3", "S5"]
    assert invalid["number"].tolist() == ["12345", "0770", "0770", "999"]
    assert len(at.get("vega_lite_chart")) == 1
    assert [b.label for b in at.get("download_button")] == [
        "Download these students (CSV)",
        "Download invalid numbers (CSV)",
    ]

    at.multiselect(key="filter_forms").set_value(["7A"]).run()
    assert "2 of 4 students shown" in texts(at.caption)
    assert at.dataframe[0].value["student_id"].tolist() == ["S1", "S2"]
    assert at.dataframe[1].value["student_id"].tolist() == ["S1", "S2"]

    at.multiselect(key="filter_forms").set_value([])
    at.multiselect(key="filter_kinds").set_value(["no e-mail"]).run()
    assert at.dataframe[0].value["student_id"].tolist() == ["S2", "S5"]

    at.multiselect(key="filter_kinds").set_value([])
    at.multiselect(key="filter_years").set_value(["10"]).run()
    assert at.dataframe[0].value["student_id"].tolist() == ["S5"]
    assert "No invalid phone numbers" in texts(at.success)
    at.radio(key="chart_group").set_value("Year group").run()
    assert not at.exception


def test_contact_details_follow_a_new_generation(settings: Settings) -> None:
    load_fixture(settings)
    at = run(CONTACT_DETAILS)
    assert metrics(at)["Current students"] == "4"
    forms = at.multiselect(key="filter_forms").options
    years = at.multiselect(key="filter_years").options
    assert "10" in years
    folder = settings.data_dir.parent / "smaller"
    report = load_paths(
        [
            write_csv(folder / "students.csv", STUDENTS[:3]),
            write_csv(folder / "contacts.csv", CONTACTS[:3]),
        ],
        settings,
    )
    assert report.ok
    at.run()  # the cache key is the generation: no clearing needed
    assert metrics(at)["Current students"] == "2"
    assert at.dataframe[0].value["student_id"].tolist() == ["S1", "S2"]
    # The filter choices and the chart are the new generation's too (cached on it).
    assert at.multiselect(key="filter_forms").options == ["7A"] != forms
    assert "10" not in at.multiselect(key="filter_years").options != years
    at.radio(key="chart_group").set_value("Year group").run()
    (chart,) = at.get("vega_lite_chart")
    assert '"10"' not in chart.proto.spec and '"7"' in chart.proto.spec


# ---- data loads -------------------------------------------------------------------------


def test_data_loads_shows_status_and_history(settings: Settings) -> None:
    load_fixture(settings)
    bad = write_csv(
        settings.data_dir.parent / "bad" / "contacts.csv",
        [CONTACTS[0], ["NOPE", "C9", "", "", "Zed", "", "1", "", "", "", ""]],
    )
    assert not load_paths([bad], settings, dry_run=True).ok
    at = run(DATA_LOADS)
    assert metrics(at)["Current generation"] == "1"
    assert metrics(at)["Generations kept"] == "1"
    history = at.dataframe[1].value
    assert history["status"].tolist() == ["refused", "loaded"]
    assert set(history["files"].tolist()[1].split(", ")) == {"students.csv", "contacts.csv"}
    counts = at.dataframe[0].value.set_index("table")["rows"]
    assert counts["students"] == 5 and counts["contacts"] == 5
    # The newest run (refused) is selected first: its problems are shown.
    problems = at.dataframe[2].value
    assert list(problems.columns) == PROBLEM_TABLE_COLUMNS
    assert problems.loc[0, "severity"] == "error" and "NOPE" in set(problems["value"])
    # The successful load had only warnings: the invalid phone numbers.
    loaded_id = int(history["id"].tolist()[1])
    at.selectbox(key="history_run").set_value(loaded_id).run()
    problems = at.dataframe[2].value
    assert set(problems["severity"]) == {"warning"}
    assert problems[["column", "value", "count"]].values.tolist() == [
        ["mobile", "12345", 3],
        ["home_phone", "0770", 2],
    ]


def test_rollback_needs_confirmation(settings: Settings) -> None:
    load_fixture(settings)
    load_fixture(settings)
    warehouse = Warehouse.from_settings(settings)
    assert warehouse.generation() == 2
    at = run(DATA_LOADS)
    at.button(key="rollback").click().run()
    assert "Make generation 1 current again" in texts(at.warning)
    assert warehouse.generation() == 2  # asking changes nothing
    at.button(key="rollback_cancel").click().run()
    assert not at.warning and warehouse.generation() == 2

    at.button(key="rollback").click().run()
    at.button(key="rollback_confirm").click().run()
    assert not at.exception
    assert warehouse.generation() == 1
    assert "generation 1 is current again (was 2)" in texts(at.success)
    assert metrics(at)["Current generation"] == "1"
    newest = load_history(open_ops(settings)).iloc[0]
    assert (newest["status"], newest["origin"]) == ("rolled_back", "dashboard")
    assert (newest["generation_before"], newest["generation_after"]) == (2, 1)
    # Generation 1 is now the oldest: nothing further back.
    assert at.button(key="rollback").disabled


def test_check_and_load_through_the_uploader(settings: Settings) -> None:
    warehouse = Warehouse.from_settings(settings)
    at = run(DATA_LOADS)
    at.button(key="check_extracts").click().run()
    assert "Choose one or more extract files first" in texts(at.warning)

    files = [
        ("students.csv", csv_file(STUDENTS), "text/csv"),
        ("contacts.csv", csv_file(CONTACTS), "text/csv"),
    ]
    at.file_uploader(key="extract_files").set_value(files)
    at.button(key="check_extracts").click().run()
    assert not at.exception
    assert "Dry run: the load would succeed" in texts(at.success)
    assert warehouse.generation() is None
    report = at.dataframe[0].value  # the validation report (invalid numbers are warnings)
    assert list(report.columns) == PROBLEM_TABLE_COLUMNS
    assert set(report["severity"]) == {"warning"}

    at.button(key="load_extracts").click().run()
    assert "generation 1 is now current" in texts(at.success)
    assert warehouse.generation() == 1
    assert not list((settings.tmp_dir / "uploads").iterdir())  # upload copies removed

    broken = [
        (
            "contacts.csv",
            csv_file([CONTACTS[0], ["NOPE", "C9", "", "", "Zed", "", "x", "", "", "", ""]]),
            "text/csv",
        )
    ]
    at.file_uploader(key="extract_files").set_value(broken)
    at.button(key="load_extracts").click().run()
    assert "Refused" in texts(at.error)
    report = at.dataframe[0].value
    assert report.loc[0, "severity"] == "error" and report.loc[0, "file"] == "contacts.csv"
    assert warehouse.generation() == 1


def test_page_renders_a_report_from_session_state(settings: Settings) -> None:
    outcome = actions.load_uploads(
        [
            (
                "contacts.csv",
                csv_file([CONTACTS[0], ["NOPE", "C9", "", "", "Zed", "", "1", "", "", "", ""]]),
            )
        ],
        settings,
        dry_run=True,
        actor="tester",
    )
    assert outcome["status"] == "refused" and not outcome["ok"]
    at = sign_in(AppTest.from_file(DATA_LOADS, default_timeout=TIMEOUT))
    at.session_state["load_result"] = outcome
    at.run()
    assert not at.exception
    assert outcome["summary"] in texts(at.error)
    report = at.dataframe[0].value
    assert report["severity"].tolist()[0] == "error"
    assert report["value"].tolist()[0] == "NOPE"


# ---- actions ----------------------------------------------------------------------------


def test_actions_save_check_and_clean_up(settings: Settings) -> None:
    outcome = actions.load_uploads(
        [("students.csv", csv_file(STUDENTS)), ("contacts.csv", csv_file(CONTACTS))],
        settings,
        dry_run=True,
        actor="tester",
    )
    assert outcome["ok"] and outcome["status"] == "dry_run"
    assert outcome["rows"] == {"students": 5, "contacts": 5}
    assert [(w["column"], w["count"]) for w in outcome["warnings"]] == [
        ("mobile", 3),
        ("home_phone", 2),
    ]
    assert not list((settings.tmp_dir / "uploads").iterdir())
    assert Warehouse.from_settings(settings).generation() is None

    paths = actions.save_uploads([("../../evil/students.csv", b"x")], settings)
    assert paths[0].name == "students.csv"
    assert paths[0].parent.parent == settings.tmp_dir / "uploads"
    with pytest.raises(actions.UploadError, match="Two files are called"):
        actions.save_uploads([("a.csv", b"1"), ("A.csv", b"2")], settings)
    refused = actions.load_uploads([], settings, dry_run=False, actor="tester")
    assert not refused["ok"] and "Choose one or more" in refused["summary"]


def test_bulk_email_import(settings: Settings) -> None:
    load_fixture(settings)
    emails = csv_file(
        [["adno", "email"], ["1001", "amy@pupils.example.org"], ["1003", "cara@pupils.example.org"]]
    )
    checked = actions.email_import(emails, settings, dry_run=True, actor="tester")
    assert checked["ok"], checked["errors"]
    warehouse = Warehouse.from_settings(settings)
    assert warehouse.generation() == 1

    at = run(DATA_LOADS)
    at.file_uploader(key="email_file").set_value(("my emails.csv", emails, "text/csv"))
    at.button(key="import_emails").click().run()
    assert not at.exception
    assert "generation 2 is now current" in texts(at.success)
    got = warehouse.query(
        "SELECT student_id, email FROM students WHERE email IS NOT NULL ORDER BY student_id"
    )
    assert got.values.tolist() == [
        ["S1", "amy@pupils.example.org"],
        ["S3", "cara@pupils.example.org"],
    ]
    history = load_history(open_ops(settings))
    assert history.loc[0, "files"] == "student_emails.csv"

    unknown = csv_file([["adno", "email"], ["9999", "x@example.org"]])
    refused = actions.email_import(unknown, settings, dry_run=False, actor="tester")
    assert not refused["ok"] and refused["errors"][0]["value"] == "9999"


def test_rollback_action_refuses_a_stale_confirmation(settings: Settings) -> None:
    load_fixture(settings)
    load_fixture(settings)
    engine = open_ops(settings)
    result = actions.rollback(settings, engine, actor="tester", expected_generation=1)
    assert not result["ok"] and "changed from 1 to 2" in result["message"]
    assert Warehouse.from_settings(settings).generation() == 2
    result = actions.rollback(settings, engine, actor="tester", expected_generation=2)
    assert result["ok"] and (result["generation_before"], result["generation_after"]) == (2, 1)
    result = actions.rollback(settings, engine, actor="tester")
    assert not result["ok"] and "nothing earlier" in result["message"]


# ---- roles and downloads ----------------------------------------------------------------


def test_data_loads_checks_the_role_again_when_each_action_runs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every role that may open Data loads may also load and roll back, so the page gate
    # is opened for a teacher here: what must refuse is the check at each action.
    assert set(PAGE_ROLES["data_loads"]) == set(ACTION_ROLES["data.load"])
    assert set(PAGE_ROLES["data_loads"]) == set(ACTION_ROLES["data.rollback"])
    load_fixture(settings)
    load_fixture(settings)
    warehouse = Warehouse.from_settings(settings)
    runs = len(load_history(open_ops(settings)))
    past_the_page_gate(monkeypatch, controls=False)
    at = sign_in(AppTest.from_file(DATA_LOADS, default_timeout=TIMEOUT), "teacher").run()
    assert not at.exception and [t.value for t in at.title] == ["Data loads"]
    shown = {b.key for b in at.button}
    assert not shown & {"check_extracts", "load_extracts", "check_emails", "import_emails"}
    assert "rollback" not in shown
    assert "may not load extracts" in texts(at.info)

    past_the_page_gate(monkeypatch, controls=True)
    at.run()
    files = [("students.csv", csv_file(STUDENTS), "text/csv")]
    at.file_uploader(key="extract_files").set_value(files)
    at.button(key="load_extracts").click().run()
    assert not at.exception
    assert "may not do this (data.load)" in texts(at.error)
    at.run()
    at.button(key="check_extracts").click().run()
    assert "may not do this (data.load)" in texts(at.error)
    at.run()
    emails = csv_file([["adno", "email"], ["1001", "amy@pupils.example.org"]])
    at.file_uploader(key="email_file").set_value(("emails.csv", emails, "text/csv"))
    at.button(key="import_emails").click().run()
    assert "may not do this (data.load)" in texts(at.error)
    at.run()
    at.button(key="rollback").click().run()
    at.button(key="rollback_confirm").click().run()
    assert not at.exception
    assert "may not do this (data.rollback)" in texts(at.error)
    assert "admin, data manager" in texts(at.error)
    assert warehouse.generation() == 2
    assert len(load_history(open_ops(settings))) == runs  # nothing checked, loaded or rolled


def test_data_loads_offers_every_table_as_csv(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    offered = offered_downloads(monkeypatch)
    load_fixture(settings)
    at = run(DATA_LOADS)
    assert set(offered) == {"row_counts_csv", "history_csv", "history_problems_csv"}
    history, _ = offered["history_csv"]
    assert history["status"].tolist() == ["loaded"]
    counts, name = offered["row_counts_csv"]
    assert name == "rows-generation-1.csv" and "students" in set(counts["table"])
    problems, _ = offered["history_problems_csv"]
    assert problems.equals(at.dataframe[2].value)  # the problems shown are the ones offered

    formula = [CONTACTS[0], ["=HYPERLINK(1)", "C9", "", "", "Zed", "", "1", "", "", "", ""]]
    at.file_uploader(key="extract_files").set_value(
        [("contacts.csv", csv_file(formula), "text/csv")]
    )
    at.button(key="check_extracts").click().run()
    report, name = offered["load_report_csv"]
    assert name == "validation-report.csv" and "=HYPERLINK(1)" in set(report["value"])
    assert "'=HYPERLINK(1)" in csv_bytes(report).decode("utf-8-sig")
    labels = {b.proto.label for b in at.get("download_button")}
    assert "Download the report (CSV)" in labels
