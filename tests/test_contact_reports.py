"""Contact reports: reports.contact_reports and the "Contact reports" page (AppTest).

Messages are real rows in a real SQLite ops store (queued through the outbox, then
marked sent or failed); the school is loaded into a real warehouse, with medical notes.
Medical notes are restricted: a role without ``medical.view`` must neither see them nor
cause the medical table to be read, which a spy on ``Warehouse.query`` checks.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
import time_machine
from conftest import minimal_school, sign_in, write_extracts
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from pipelines.load import load_paths
from reports import contact_reports, contacts
from reports.messages import message_activity
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import Message
from schoolcomms.roles import PermissionDenied
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse
from senders.outbox import NewMessage, enqueue

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "contact_reports.py")
TIMEOUT = 60
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)

MEDICAL = [
    {"student_id": "S1", "condition": "Asthma", "details": "Inhaler in bag", "severity": "mild"},
    {"student_id": "S3", "condition": "Epilepsy", "details": "Care plan", "severity": "severe"},
    {"student_id": "S4", "condition": "Diabetes", "details": "Left", "severity": "moderate"},
]


def school_tables() -> dict[str, list[dict[str, Any]]]:
    tables = minimal_school()
    tables["staff"][1]["email"] = ""  # Mr Tutor has no address
    tables["students"].append(
        {"student_id": "S4", "forename": "Dee", "surname": "Gone", "status": "L01"}
    )
    tables["contacts"][0]["home_phone"] = "12345"  # invalid
    tables["medical"] = MEDICAL
    return tables


def load(settings: Settings, folder: Path) -> Settings:
    report = load_paths(write_extracts(folder, school_tables()), settings)
    assert report.ok, [p.as_text() for p in report.problems]
    return settings


def add_messages(settings: Settings) -> None:
    """Texts and e-mails by two staff over three months, some sent, one failed."""
    engine = open_ops(settings)
    rows = [
        # (month, channel, by, status, segments, cost)
        (9, "sms", "ao@school.org", "sent", 2, 6.0),
        (9, "email", "ao@school.org", "sent", None, None),
        (10, "sms", "ao@school.org", "delivered", 1, 3.0),
        (10, "sms", "office@school.org", "failed", 1, 3.0),
        (11, "sms", "office@school.org", "sent", 3, 9.0),
        (11, "letter", "office@school.org", "queued", None, None),
    ]
    for i, (month, channel, by, status, segments, cost) in enumerate(rows):
        ids = enqueue(
            engine,
            [
                NewMessage(
                    channel,
                    "+447400200001" if channel == "sms" else "alice@home.example.com",
                    f"Message {i}",
                    subject="Hello" if channel == "email" else None,
                    segments=segments,
                    cost_pence=cost,
                    idempotency_key=f"test:{i}",
                )
            ],
            by,
            now=dt.datetime(2026, month, 10, 12, 0, tzinfo=dt.UTC),
        )
        with session_scope(engine) as session:
            session.execute(update(Message).where(Message.id == ids[0]).values(status=status))


# ------------------------------------------------------------------------ the reports


def test_message_summary_counts_and_costs_by_channel_staff_and_month(settings: Settings) -> None:
    add_messages(settings)
    activity = message_activity(open_ops(settings))
    by_channel = contact_reports.message_summary(activity, "channel")
    assert by_channel.set_index("channel")[["messages", "sent", "failed", "texts"]].to_dict(
        "index"
    ) == {
        "sms": {"messages": 4, "sent": 3, "failed": 1, "texts": 3},
        "email": {"messages": 1, "sent": 1, "failed": 0, "texts": 0},
        "letter": {"messages": 1, "sent": 0, "failed": 0, "texts": 0},
    }
    sms = by_channel.set_index("channel").loc["sms"]
    assert (sms["segments"], sms["cost_pence"], sms["cost_pounds"]) == (6, 18.0, 0.18)

    by_staff = contact_reports.message_summary(activity, "created_by").set_index("created_by")
    assert by_staff.loc["ao@school.org", "cost_pence"] == 9.0
    assert by_staff.loc["office@school.org", "cost_pence"] == 9.0  # the failed text is free
    assert by_staff.loc["office@school.org", "messages"] == 3

    by_month = contact_reports.message_summary(activity, "month")
    assert by_month["month"].dt.strftime("%Y-%m").tolist() == ["2026-09", "2026-10", "2026-11"]
    assert by_month["cost_pence"].tolist() == [6.0, 3.0, 9.0]
    assert by_month["messages"].tolist() == [2, 2, 2]


def test_message_summary_of_nothing_is_empty(settings: Settings) -> None:
    activity = message_activity(open_ops(settings))
    empty = contact_reports.message_summary(activity, "channel")
    assert empty.empty and list(empty.columns) == ["channel", *contact_reports.SUMMARY_COLUMNS]


def test_held_and_missing_and_staff_emails(settings: Settings, tmp_path: Path) -> None:
    load(settings, tmp_path / "school")
    warehouse = Warehouse.from_settings(settings)
    held = contact_reports.held_and_missing(contacts.contact_summary(warehouse))
    rows = held.set_index("detail").to_dict("index")
    assert rows["Priority-1 contact"] == {"held": 3, "missing": 0, "percent_held": 100.0}
    assert rows["Every number valid"] == {"held": 2, "missing": 1, "percent_held": 66.7}
    staff = contact_reports.staff_emails(warehouse)
    assert staff[["staff_id", "has_email"]].values.tolist() == [["T2", False], ["T1", True]]


class QuerySpy:
    """Records every SQL text the warehouse runs (in this process, pages included)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sql: list[str] = []
        original = Warehouse.query

        def query(warehouse: Warehouse, sql: str, params: Any = None) -> pd.DataFrame:
            self.sql.append(sql)
            return original(warehouse, sql, params)

        monkeypatch.setattr(Warehouse, "query", query)

    def medical(self) -> list[str]:
        return [s for s in self.sql if "medical" in s.lower()]


def test_medical_notes_need_the_medical_role_before_any_query(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(settings, tmp_path / "school")
    warehouse = Warehouse.from_settings(settings)
    spy = QuerySpy(monkeypatch)
    for roles in (["data_manager"], ["teacher"], ["attendance_officer"]):
        with pytest.raises(PermissionDenied, match="medical.view"):
            contact_reports.medical_notes(warehouse, roles)
    assert spy.sql == []
    notes = contact_reports.medical_notes(warehouse, ["pastoral"])
    assert notes[["student_id", "condition"]].values.tolist() == [
        ["S3", "Epilepsy"],  # year 8 first
        ["S1", "Asthma"],
    ]  # S4 has left: not listed
    assert notes.iloc[1]["name"] == "Ann Able"
    assert len(spy.medical()) == 1


# ------------------------------------------------------------------------------ the page


@pytest.fixture
def page_data(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(settings.data_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    return settings


@pytest.fixture
def school(page_data: Settings, tmp_path: Path) -> Settings:
    load(page_data, tmp_path / "school")
    add_messages(page_data)
    return page_data


@pytest.fixture
def in_november() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def run(*roles: str) -> AppTest:
    at = sign_in(AppTest.from_file(PAGE, default_timeout=TIMEOUT), *roles)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def sections(at: AppTest) -> list[str]:
    """The page's top-level tabs (the Messages tab has tabs of its own)."""
    return [
        t.label for t in at.tabs if t.label not in ("By channel", "By member of staff", "By month")
    ]


def frames(at: AppTest) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


def frame_with(at: AppTest, *columns: str) -> pd.DataFrame | None:
    for frame in frames(at):
        if set(columns) <= set(frame.columns):
            return frame
    return None


def test_an_admin_sees_every_section_with_medical_notes(
    school: Settings, in_november: None
) -> None:
    at = run("admin")
    assert at.title[0].value == "Contact reports"
    assert sections(at) == [
        "Messages",
        "Contact details",
        "Invalid numbers",
        "Staff e-mail",
        "Medical",
    ]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Messages"] == "6" and metrics["Texts sent"] == "3"
    assert metrics["SMS cost"] == "£0.18"
    assert metrics["Without an e-mail address"] == "1"
    assert metrics["Pupils with notes"] == "2"
    assert len(at.get("vega_lite_chart")) == 4  # month, cost, staff, held
    by_staff = frame_with(at, "created_by", "texts")
    assert by_staff is not None and set(by_staff["created_by"]) == {
        "ao@school.org",
        "office@school.org",
    }
    invalid = frame_with(at, "contact_id", "number")
    assert invalid is not None and invalid["number"].tolist() == ["12345"]
    medical = frame_with(at, "condition", "severity")
    assert medical is not None and sorted(medical["condition"]) == ["Asthma", "Epilepsy"]
    assert "Medical notes (restricted)" in texts(at.subheader)


def test_a_data_manager_never_reads_medical_notes(
    school: Settings, in_november: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = QuerySpy(monkeypatch)
    at = run("data_manager")
    labels = sections(at)
    assert "Medical" not in labels and "Staff e-mail" in labels
    assert "Medical" not in texts(at.subheader)
    assert frame_with(at, "condition") is None
    assert all("Epilepsy" not in frame.to_string() for frame in frames(at))
    assert spy.sql, "the page read the warehouse for its other sections"
    assert spy.medical() == []
    staff = frame_with(at, "staff_id", "has_email")
    assert staff is not None and staff["staff_id"].tolist() == ["T2", "T1"]


def test_an_attendance_officer_sees_no_staff_emails_nor_medical(
    school: Settings, in_november: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = QuerySpy(monkeypatch)
    at = run("attendance_officer")
    assert sections(at) == ["Messages", "Contact details", "Invalid numbers"]
    assert frame_with(at, "staff_id", "has_email") is None and spy.medical() == []


def test_teachers_and_pastoral_staff_cannot_open_the_page(school: Settings) -> None:
    for role in ("teacher", "pastoral"):
        at = run(role)
        assert "cannot open this page" in texts(at.error)
        assert not at.tabs and not at.dataframe


def test_nothing_loaded_and_no_messages(page_data: Settings) -> None:
    at = run("admin")
    assert "No messages in this period" in texts(at.info)
    assert "No data loaded yet" in texts(at.info)
    assert not at.exception
