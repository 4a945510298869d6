"""The messaging pages (Compose, Message history, Message bank, Record a contact).

Driven with Streamlit's AppTest against a real data folder holding the minimal school
(tests/conftest.py), a real SQLite ops store and the real file SMS gateway: what the
pages queue is sent by the real dispatcher in the test.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
import time_machine
from conftest import sign_in
from streamlit.testing.v1 import AppTest

from dashboard import common, messaging
from reports import messages as message_reports
from schoolcomms import auth
from schoolcomms.ops.db import open_ops
from schoolcomms.ops.history import recent_audit
from schoolcomms.roles import ACTION_ROLES, PAGE_ROLES, PermissionDenied
from schoolcomms.settings import DATA_DIR_ENV, Settings
from schoolcomms.warehouse import Warehouse
from senders.bank import list_templates, save_template
from senders.base import Rejected, SendResult
from senders.compose import ComposeError, Composition, enqueue_plan, plan_send
from senders.dispatcher import Dispatcher
from senders.logbook import contact_history
from senders.messengers import build_messengers
from senders.outbox import batch_progress, claim, message_log, record_failure, record_sent

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
PAGES = ROOT / "dashboard" / "pages"
SIGNED_IN = "admin@school.example.org"  # conftest.sign_in's default account
COMPOSE = str(PAGES / "compose.py")
HISTORY = str(PAGES / "message_history.py")
BANK = str(PAGES / "message_bank.py")
RECORD = str(PAGES / "record_contact.py")
TIMEOUT = 60
SMART = "Hello {{ contact.name }}, {{ student_names }}’s trip letter is home – thanks"


def use_data_dir(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the app at ``data``, with nothing of the developer's set-up."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def school(loaded: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The minimal school loaded, and the app using its data folder."""
    use_data_dir(loaded.data_dir, tmp_path, monkeypatch)
    return loaded


@pytest.fixture
def empty(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A data folder with nothing loaded, used by the app."""
    use_data_dir(settings.data_dir, tmp_path, monkeypatch)
    return settings


def run(path: str) -> AppTest:
    at = sign_in(AppTest.from_file(path, default_timeout=TIMEOUT)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: Any) -> str:
    return "\n".join(str(e.value) for e in elements)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def frame(at: AppTest, key: str) -> pd.DataFrame:
    """The selectable dataframe with this key (only those carry their key)."""
    for element in at.dataframe:
        if element.proto.id.endswith(f"-{key}"):
            return element.value
    raise AssertionError(f"no dataframe with key {key!r}")


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first dataframe shown that has all these columns."""
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no dataframe with columns {columns}")


def select_rows(at: AppTest, key: str, rows: list[int]) -> None:
    at.session_state[key] = {"selection": {"rows": rows, "columns": []}}


def signed_in(path: str, *roles: str) -> AppTest:
    return rerun(sign_in(AppTest.from_file(path, default_timeout=TIMEOUT), *roles))


def email_of(*roles: str) -> str:
    """The address conftest.sign_in gives an account holding ``roles``."""
    return f"{'-'.join(roles)}@school.example.org"


def offered_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[pd.DataFrame, str]]:
    """Record each table a page offers as CSV (key -> (table, file name)), still drawing it."""
    offered: dict[str, tuple[pd.DataFrame, str]] = {}
    real = common.download

    def download(frame: pd.DataFrame, file_name: str, key: str, **kw: Any) -> None:
        offered[key] = (frame, file_name)
        real(frame, file_name, key, **kw)

    monkeypatch.setattr(common, "download", download)
    return offered


def dispatch(settings: Settings) -> None:
    engine = open_ops(settings)
    Dispatcher(engine, build_messengers(settings), settings).run_once()


def queue_sms(
    settings: Settings, student_ids: list[str], body: str = "Hi {{ contact.name }}"
) -> int:
    """A real SMS batch queued through senders.compose, as the Compose page does."""
    engine = open_ops(settings)
    composition = Composition("sms", student_ids, created_by="ms.office@example.org", body=body)
    plan = plan_send(settings, Warehouse.from_settings(settings), engine, composition)
    return enqueue_plan(engine, settings, plan)


# ---- Compose ----------------------------------------------------------------------------


def test_compose_preview_send_once_and_follow_progress(school: Settings) -> None:
    engine = open_ops(school)
    at = run(COMPOSE)
    assert "NOT sent" in texts(at.info) and "outbox/sms" in texts(at.info)
    pupils = frame(at, messaging.picker_key([], [], ""))
    assert pupils["student_id"].tolist() == ["S3", "S1", "S2"]  # year 8 first
    select_rows(at, messaging.picker_key([], [], ""), [1, 2])  # S1 and S2
    at.radio(key="compose_source").set_value("text")
    rerun(at)
    at.text_area(key="compose_body").set_value(SMART)
    rerun(at)
    assert "2 pupil(s) chosen" in texts(at.markdown)
    counter = metrics(at)
    assert counter["Texts (segments)"] == "1" and counter["Cost per message"] == "3p"
    assert "1 curly apostrophe (’) made plain (')" in texts(at.caption)
    assert "1 en dash (–) made plain (-)" in texts(at.caption)

    at.button(key="compose_preview").click()
    rerun(at)
    assert not at.error
    shown = metrics(at)
    assert (shown["Messages"], shown["Left out"], shown["Total cost"]) == ("2", "0", "£0.06")
    planned = table_with(at, "contact", "body")
    assert planned["to"].tolist() == ["+447400200001", "+447400200002"]
    assert planned["body"].tolist()[1] == "Hello Mr Baker, Ben's trip letter is home - thanks"
    assert planned["cost_pence"].tolist() == [3.0, 3.0]
    at.selectbox(key="compose_view_message").set_value(1)
    rerun(at)
    assert "Hello Mr Baker, Ben's trip letter is home - thanks" in texts(at.code)
    assert message_log(engine).empty  # a preview queues nothing

    at.button(key="compose_send").click()
    rerun(at)
    log = message_log(engine)
    assert sorted(log["to_address"]) == ["+447400200001", "+447400200002"]
    assert set(log["status"]) == {"queued"} and log["batch_id"].nunique() == 1
    batch_id = int(log["batch_id"].iloc[0])
    assert f"as batch {batch_id}" in texts(at.success)
    assert metrics(at)["Queued"] == "2"
    assert set(log["created_by"]) == {SIGNED_IN}
    sends = recent_audit(engine, action="send")
    assert sends["target"].tolist() == [f"batch:{batch_id}"]

    at.button(key="compose_send").click()  # a second press: nothing new
    rerun(at)
    assert "already queued as batch" in texts(at.info)
    assert len(message_log(engine)) == 2
    assert message_report_batches(school) == [batch_id]

    dispatch(school)
    rerun(at)
    progress = metrics(at)
    assert (progress["Sent"], progress["Queued"], progress["Failed"]) == ("2", "0", "0")
    assert "All 2 message(s) sent." in texts(at.success)
    assert set(message_log(engine)["status"]) == {"sent"}


def message_report_batches(settings: Settings) -> list[int]:
    return message_reports.batch_list(open_ops(settings))["id"].tolist()


def test_compose_with_pasted_ids_lists_who_is_left_out_and_why(school: Settings) -> None:
    at = run(COMPOSE)
    at.radio(key="compose_channel").set_value("email")
    at.radio(key="compose_source").set_value("text")
    rerun(at)
    at.text_area(key="compose_paste_ids").set_value("S1, S2\nS3 NOPE")
    at.text_area(key="compose_body").set_value("Dear {{ contact.name }}")
    rerun(at)
    assert "E-mails are written to" in texts(at.info)
    assert "Not current pupils in the loaded data: NOPE" in texts(at.warning)
    at.button(key="compose_preview").click()
    rerun(at)
    # No subject: refused in words, nothing planned.
    assert "An e-mail needs a subject" in texts(at.error)
    assert "Messages" not in metrics(at)

    at.text_input(key="compose_subject").set_value("Trip to {{ school.name }}")
    at.button(key="compose_preview").click()
    rerun(at)
    assert metrics(at)["Messages"] == "1"
    assert metrics(at)["Total cost"] == "no charge"
    excluded = table_with(at, "reason")
    assert excluded.fillna("-").values.tolist() == [
        ["S2", "C2", "no e-mail consent"],
        ["S3", "C2", "no e-mail consent"],
        ["NOPE", "-", "not a pupil in the current data"],
    ]
    # Changing the inputs after a preview: the stale preview cannot be sent.
    at.text_area(key="compose_body").set_value("Dear {{ contact.name }}, changed")
    rerun(at)
    assert "press **Preview** again" in texts(at.info)
    assert not [b for b in at.button if b.key == "compose_send"]


def test_compose_from_a_bank_template_and_a_broken_message(school: Settings) -> None:
    engine = open_ops(school)
    save_template(
        engine,
        name="Trip",
        channel="sms",
        subject=None,
        body="{{ student.forename }} is going on the trip.",
        category="general",
        actor="tester",
    )
    at = run(COMPOSE)
    at.text_area(key="compose_paste_ids").set_value("S1")
    rerun(at)
    assert at.selectbox(key="compose_template_sms").value == "Trip"
    assert "{{ student.forename }} is going on the trip." in texts(at.code)
    at.button(key="compose_preview").click()
    rerun(at)
    assert table_with(at, "contact", "body")["body"].tolist() == ["Ann is going on the trip."]

    at.radio(key="compose_source").set_value("text")
    rerun(at)
    at.text_area(key="compose_body").set_value("Hello {{ pupil.name }")
    at.button(key="compose_preview").click()
    rerun(at)
    assert "The message cannot be planned" in texts(at.error)
    assert "Traceback" not in texts(at.error) and not at.exception


def test_an_over_budget_sms_batch_needs_confirming(
    school: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHOOLCOMMS_SMS_BATCH_BUDGET_PENCE", "5")
    engine = open_ops(school)
    at = run(COMPOSE)
    at.text_area(key="compose_paste_ids").set_value("S1 S2")
    at.radio(key="compose_source").set_value("text")
    rerun(at)
    at.text_area(key="compose_body").set_value("Hello {{ contact.name }}")
    at.button(key="compose_preview").click()
    rerun(at)
    assert "more than the £0.05" in texts(at.warning)
    at.button(key="compose_send").click()
    rerun(at)
    assert "would cost about £0.06" in texts(at.error)
    assert message_log(engine).empty
    at.checkbox(key="compose_confirm_budget").check()
    at.button(key="compose_send").click()
    rerun(at)
    assert len(message_log(engine)) == 2
    assert recent_audit(engine, action="send")["details"][0]["over_budget_confirmed"] is True


def test_compose_and_record_contact_without_data_show_the_empty_state(empty: Settings) -> None:
    for page in (COMPOSE, RECORD):
        at = run(page)
        assert "No data loaded yet" in texts(at.info)
        assert not at.error


# ---- Message history --------------------------------------------------------------------


def test_message_history_lists_messages_and_retries_a_failed_one(school: Settings) -> None:
    engine = open_ops(school)
    batch_id = queue_sms(school, ["S1", "S2"])
    claimed = claim(engine, channel="sms", worker="w", limit=10, lease_seconds=60)
    first, second = sorted(claimed, key=lambda m: m.to)
    record_sent(engine, first.id, SendResult(provider="file", provider_ref="r1"), "w")
    assert record_failure(engine, second.id, Rejected("Invalid number"), "w") == "failed"

    at = run(HISTORY)
    table = frame(at, "history_messages")
    assert sorted(table["status"]) == ["failed", "sent"]
    failed_row = table.index[table["status"] == "failed"][0]
    assert "Invalid number" in table.loc[failed_row, "error"]
    assert table["cost_pence"].tolist() == [3.0, 3.0]
    assert at.button(key="history_retry").disabled
    assert len(at.get("vega_lite_chart")) == 2  # SMS cost by month, messages by channel
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download these messages (CSV)", *["Download CSV"] * 3]  # batches, counts
    batches = table_with(at, "progress", "state")
    assert batches[["id", "state", "sent", "failed"]].values.tolist() == [[batch_id, "done", 1, 1]]

    select_rows(at, "history_messages", [int(failed_row)])
    rerun(at)
    assert at.button(key="history_retry").label == "Retry 1 failed message(s)"
    at.button(key="history_retry").click()
    rerun(at)
    assert "1 failed message(s) queued again." in texts(at.success)
    log = message_log(engine).set_index("id")
    assert log.loc[second.id, "status"] == "queued" and log.loc[first.id, "status"] == "sent"
    assert batch_progress(engine, batch_id)["state"] == "running"

    # Filters: only failed messages now: none.
    at.multiselect(key="history_status").set_value(["failed"])
    rerun(at)
    assert "No messages match these filters" in texts(at.info)
    at.multiselect(key="history_status").set_value([])
    at.text_input(key="history_pupil").set_value("S1")
    rerun(at)
    assert frame(at, "history_messages")["student_id"].tolist() == ["S1"]


def test_message_history_pauses_resumes_and_cancels_a_batch(school: Settings) -> None:
    engine = open_ops(school)
    batch_id = queue_sms(school, ["S1", "S2"])
    at = run(HISTORY)
    assert at.selectbox(key="history_manage_batch").value == batch_id
    at.button(key="history_pause").click()
    rerun(at)
    assert f"Batch {batch_id} paused" in texts(at.success)
    assert batch_progress(engine, batch_id)["state"] == "paused"
    at.button(key="history_resume").click()
    rerun(at)
    assert batch_progress(engine, batch_id)["state"] == "running"

    assert at.button(key="history_cancel").disabled  # not confirmed yet
    at.checkbox(key=f"history_confirm_cancel_{batch_id}").check()
    rerun(at)
    at.button(key="history_cancel").click()
    rerun(at)
    assert "2 queued message(s) will not be sent" in texts(at.success)
    assert set(message_log(engine)["status"]) == {"cancelled"}
    assert batch_progress(engine, batch_id)["state"] == "cancelled"


def test_message_history_without_messages(empty: Settings) -> None:
    at = run(HISTORY)
    assert "No messages match these filters" in texts(at.info)
    assert "No batches yet" in texts(at.info)
    assert "No messages in this period yet." in texts(at.info)


# ---- Message bank -----------------------------------------------------------------------


def test_message_bank_saves_a_valid_template_and_refuses_a_broken_one(school: Settings) -> None:
    engine = open_ops(school)
    at = run(BANK)
    assert "The message bank is empty" in texts(at.info)
    at.text_input(key="bank_name").set_value("Trip reminder")
    at.text_input(key="bank_category").set_value("trips")
    at.text_area(key="bank_body").set_value("{{ student.forename }} needs a packed lunch.")
    rerun(at)
    assert "Amelia needs a packed lunch." in texts(at.code)  # the live preview
    at.button(key="bank_save").click()
    rerun(at)
    assert "Saved the template “Trip reminder”." in texts(at.success)
    assert list_templates(engine)["name"].tolist() == ["Trip reminder"]
    assert table_with(at, "name", "category")["name"].tolist() == ["Trip reminder"]
    assert at.selectbox(key="bank_choice").value == "Trip reminder"

    at.selectbox(key="bank_choice").set_value("__new__")
    rerun(at)
    assert at.text_input(key="bank_name").value == ""
    at.text_input(key="bank_name").set_value("Broken")
    at.text_area(key="bank_body").set_value("Hello {{ pupil.name }}")
    rerun(at)
    assert "pupil" in texts(at.error)  # the live check lists the problem
    at.button(key="bank_save").click()
    rerun(at)
    assert "The template was not saved" in texts(at.error)
    assert "pupil" in texts(at.error)
    assert list_templates(engine)["name"].tolist() == ["Trip reminder"]

    at.selectbox(key="bank_choice").set_value("Trip reminder")
    rerun(at)
    assert at.text_area(key="bank_body").value == "{{ student.forename }} needs a packed lunch."
    at.button(key="bank_archive").click()
    rerun(at)
    assert "Archived the template “Trip reminder”." in texts(at.success)
    assert list_templates(engine).empty
    at.toggle(key="bank_show_archived").set_value(True)
    rerun(at)
    assert table_with(at, "name", "archived")["archived"].tolist() == [True]
    at.selectbox(key="bank_choice").set_value("Trip reminder")
    rerun(at)
    assert at.button(key="bank_archive").disabled
    at.button(key="bank_save").click()  # saving an archived template brings it back
    rerun(at)
    assert list_templates(engine)["name"].tolist() == ["Trip reminder"]


def test_message_bank_adds_the_default_templates(school: Settings) -> None:
    at = run(BANK)
    at.button(key="bank_seed").click()
    rerun(at)
    assert "Added 7 template(s)" in texts(at.success)
    assert len(list_templates(open_ops(school))) == 7
    assert not [b for b in at.button if b.key == "bank_seed"]
    at.selectbox(key="bank_choice").set_value("Attendance concern")
    rerun(at)
    assert at.selectbox(key="bank_channel").value == "email"
    assert "Subject: Attendance of Millie Jones" in texts(at.markdown).replace("**", "")


# ---- Record a contact -------------------------------------------------------------------


def test_record_a_contact_saves_it_and_shows_it_in_the_history(school: Settings) -> None:
    engine = open_ops(school)
    at = run(RECORD)
    assert "Choose the pupil" in texts(at.info)
    at.selectbox(key="contact_pupil").set_value("S1")
    rerun(at)
    who = at.selectbox(key="contact_who")
    assert who.options[0] == "Mrs Alice Able (Mother, priority 1)"
    assert "No contacts recorded for this pupil yet." in texts(at.info)
    at.selectbox(key="contact_method").set_value("phone")
    at.date_input(key="contact_date").set_value(dt.date(2025, 6, 16))  # BST
    at.time_input(key="contact_time").set_value(dt.time(10, 15))
    at.text_input(key="contact_outcome").set_value("Spoke to mum")
    at.text_area(key="contact_notes").set_value("Ann will be in tomorrow.")
    at.date_input(key="contact_follow_up").set_value(dt.date(2025, 6, 20))
    at.button(key="contact_save").click()
    rerun(at)
    assert not at.error, texts(at.error)
    assert "Saved (entry" in texts(at.success)

    history = contact_history(engine, "S1")
    assert len(history) == 1
    row = history.iloc[0]
    assert row.happened_at == dt.datetime(2025, 6, 16, 9, 15, tzinfo=dt.UTC)
    assert (row.contact_id, row.contact_name, row.method, row.direction) == (
        "C1",
        "Mrs Alice Able",
        "phone",
        "out",
    )
    assert (row.outcome, row.notes, row.created_by) == (
        "Spoke to mum",
        "Ann will be in tomorrow.",
        SIGNED_IN,
    )
    assert row.follow_up_on == dt.datetime(2025, 6, 19, 23, 0, tzinfo=dt.UTC)
    shown = table_with(at, "happened_at")
    assert shown[["method", "outcome"]].values.tolist() == [["phone", "Spoke to mum"]]
    assert shown["happened_at"].tolist() == [pd.Timestamp("2025-06-16 10:15")]  # UK time
    assert at.text_input(key="contact_outcome").value == ""  # cleared for the next one


@time_machine.travel(dt.datetime(2026, 11, 20, 11, 0, tzinfo=dt.UTC), tick=True)
def test_record_a_contact_with_someone_else_and_a_refusal(school: Settings) -> None:
    engine = open_ops(school)
    at = run(RECORD)
    at.selectbox(key="contact_pupil").set_value("S2")
    rerun(at)
    at.selectbox(key="contact_who").set_value(messaging.OTHER_CONTACT)
    rerun(at)
    at.text_input(key="contact_other_name").set_value("Grandma Baker")
    at.radio(key="contact_direction").set_value("in")
    at.selectbox(key="contact_method").set_value("meeting")
    at.button(key="contact_save").click()
    rerun(at)
    row = contact_history(engine, "S2").iloc[0]
    assert (row.contact_id, row.contact_name, row.direction) == (None, "Grandma Baker", "in")

    future = messaging.london_now() + dt.timedelta(hours=2)  # 13:00, still today
    at.time_input(key="contact_time").set_value(future.time())
    at.button(key="contact_save").click()
    rerun(at)
    assert "Not saved: The contact cannot have happened in the future." in texts(at.error)
    assert len(contact_history(engine, "S2")) == 1


# ---- navigation -------------------------------------------------------------------------


def test_the_app_groups_the_pages_and_opens_each_messaging_page(school: Settings) -> None:
    at = run(APP)
    assert [t.value for t in at.title] == ["Sample School"], "Home first"
    for page, title in (
        ("pages/compose.py", "Compose a message"),
        ("pages/message_history.py", "Message history"),
        ("pages/message_bank.py", "Message bank"),
        ("pages/record_contact.py", "Record a contact"),
        ("pages/data_loads.py", "Data loads"),
    ):
        at.switch_page(page)
        rerun(at)
        assert [t.value for t in at.title] == [title]


# ---- helpers without Streamlit ----------------------------------------------------------


def test_roles_per_page() -> None:
    assert messaging.ADMIN == common.ADMIN and messaging.OFFICE == common.OFFICE
    assert messaging.SENIOR_LEADER == common.SENIOR_LEADER
    assert messaging.ATTENDANCE_OFFICER == common.ATTENDANCE_OFFICER
    assert messaging.DATA_MANAGER == common.DATA_MANAGER
    assert common.SENIOR_LEADER not in messaging.COMPOSE_ROLES  # a senior leader cannot send
    assert common.SENIOR_LEADER in messaging.HISTORY_ROLES
    assert set(messaging.HISTORY_ROLES) <= set(messaging.RECORD_CONTACT_ROLES)
    assert messaging.may_confirm_over_budget(["attendance_officer"])
    assert not messaging.may_confirm_over_budget(["senior_leader"])
    assert not messaging.may_confirm_over_budget(["office"])


def test_pasted_and_uploaded_ids() -> None:
    assert messaging.parse_student_ids(" S1, S2;S3\n\nS1 'S4' ") == ["S1", "S2", "S3", "S4"]
    csv_upload = b"\xef\xbb\xbfname,student_id\nAnn,S1\nBen,S2\n"
    assert messaging.ids_from_file("a.csv", csv_upload) == ["S1", "S2"]
    assert messaging.ids_from_file("a.txt", b"S1\nS2\n") == ["S1", "S2"]
    assert messaging.ids_from_file("a.csv", b"adno,x\nS9,1\n") == ["S9"]
    with pytest.raises(ValueError, match="empty"):
        messaging.ids_from_file("a.csv", b"\n")


def test_uk_times() -> None:
    summer = messaging.london_to_utc(dt.date(2026, 6, 1), dt.time(9, 0))
    winter = messaging.london_to_utc(dt.date(2026, 12, 1), dt.time(9, 0))
    assert summer == dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    assert winter == dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    since, until = messaging.day_bounds(dt.date(2026, 10, 25), dt.date(2026, 10, 25))
    assert until - since == dt.timedelta(hours=25)  # the clocks go back that night


def test_send_queues_a_plan_once_even_from_another_session(loaded: Settings) -> None:
    engine = open_ops(loaded)
    composition = Composition("sms", ["S1", "S2"], created_by="t", body="Hi {{ contact.name }}")
    plan = plan_send(loaded, Warehouse.from_settings(loaded), engine, composition)
    sent: dict[str, int] = {}
    first = messaging.send(engine, loaded, plan, actor="t", sent=sent)
    assert first.queued and sent == {composition.request_key: first.batch_id}
    again = messaging.send(engine, loaded, plan, actor="t", sent=sent)
    other_tab = messaging.send(engine, loaded, plan, actor="t", sent={})
    assert (again.queued, other_tab.queued) == (False, False)
    assert again.batch_id == other_tab.batch_id == first.batch_id
    assert len(message_log(engine)) == 2 and len(message_reports.batch_list(engine)) == 1

    over = Composition("sms", ["S1", "S2"], created_by="t", body="Hi {{ contact.name }}")
    big = plan_send(loaded, Warehouse.from_settings(loaded), engine, over)
    big.budget_pence = 1
    with pytest.raises(ComposeError, match="only an admin or attendance officer"):
        messaging.send(
            engine, loaded, big, actor="t", over_budget_confirmed=True, user_roles=["office"]
        )
    with pytest.raises(ComposeError, match="more than"):
        messaging.send(engine, loaded, big, actor="t")
    assert len(message_log(engine)) == 2


def test_message_reports(loaded: Settings) -> None:
    engine = open_ops(loaded)
    batch_id = queue_sms(loaded, ["S1", "S2"])
    dispatch(loaded)
    batches = message_reports.batch_list(engine)
    assert batches[
        ["id", "state", "total", "sent", "finished", "progress", "cost_pence"]
    ].values.tolist() == [[batch_id, "done", 2, 2, 2, 1.0, 6.0]]
    activity = message_reports.message_activity(engine)
    cost = message_reports.sms_cost_by_month(activity)
    assert cost[["messages", "segments", "cost_pence", "cost_pounds"]].values.tolist() == [
        [2, 2, 6.0, 0.06]
    ]
    by = message_reports.messages_by(activity, "channel", "status")
    assert by.values.tolist() == [["sms", "sent", 2]]
    assert message_reports.senders_of_messages(engine) == ["ms.office@example.org"]
    assert message_reports.batch_of_keys(engine, ["nope"]) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        message_reports.batch_list(engine, since=dt.datetime(2026, 1, 1))


def letter_batch(school: Settings, tmp_path: Path) -> int:
    """A letter batch for S1 (whose contact is given an address first); its id."""
    from conftest import minimal_school, write_extracts

    from pipelines.load import load_paths

    contacts = minimal_school()["contacts"]
    contacts[0].update(address_line1="1 High Street", town="Leeds", postcode="LS1 1AA")
    write_extracts(tmp_path / "update", {"contacts": contacts})
    assert load_paths([tmp_path / "update"], school).ok
    engine = open_ops(school)
    composition = Composition(
        channel="letter",
        student_ids=["S1"],
        created_by="test",
        body="{{ student.forename }} has done well this term.",
    )
    plan = plan_send(school, Warehouse.from_settings(school), engine, composition)
    return enqueue_plan(engine, school, plan)


def test_history_offers_a_letter_batch_pdf_for_printing(school: Settings, tmp_path: Path) -> None:
    batch_id = letter_batch(school, tmp_path)
    label = f"Download the letters of batch {batch_id} (PDF, ready to print)"
    at = run(HISTORY)
    at.selectbox(key="history_manage_batch").select(batch_id).run()
    assert not at.exception
    assert label in [b.proto.label for b in at.get("download_button")]
    # A senior leader may follow the batch but not print its letters.
    at = signed_in(HISTORY, "senior_leader")
    at.selectbox(key="history_manage_batch").select(batch_id).run()
    assert label not in [b.proto.label for b in at.get("download_button")]
    assert f"The letters of batch {batch_id} are ready" in texts(at.caption)


# ---- roles: hidden controls, and the check when an action runs ------------------------

MANAGE_BUTTONS = {
    "history_retry",
    "history_pause",
    "history_resume",
    "history_retry_batch",
    "history_cancel",
}


def test_a_senior_leader_reads_message_history_but_cannot_manage_batches(
    school: Settings,
) -> None:
    assert "senior_leader" in PAGE_ROLES["message_history"]
    assert "senior_leader" not in ACTION_ROLES["batch.manage"]
    queue_sms(school, ["S1", "S2"])
    at = signed_in(HISTORY, "senior_leader")
    assert len(frame(at, "history_messages")) == 2
    assert not {b.key for b in at.button} & MANAGE_BUTTONS
    assert "may follow batches here but not pause" in texts(at.caption)
    assert "Select rows to retry" not in texts(at.caption)
    assert at.selectbox(key="history_manage_batch").label == "Batch"


def test_batch_actions_are_checked_again_when_they_run(
    school: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_ops(school)
    done_batch = queue_sms(school, ["S1", "S2"])
    claimed = claim(engine, channel="sms", worker="w", limit=10, lease_seconds=60)
    first, second = sorted(claimed, key=lambda m: m.to)
    record_sent(engine, first.id, SendResult(provider="file", provider_ref="r1"), "w")
    assert record_failure(engine, second.id, Rejected("Invalid number"), "w") == "failed"
    running = queue_sms(school, ["S1"], body="Second {{ contact.name }}")
    before = message_log(engine).set_index("id")["status"].to_dict()

    # The office role is taken away while the page is open: the retry is refused in words.
    roles = ("senior_leader", "office")
    at = signed_in(HISTORY, *roles)
    table = frame(at, "history_messages")
    failed_row = int(table.index[table["status"] == "failed"][0])
    select_rows(at, "history_messages", [failed_row])
    rerun(at)
    auth.update_user(engine, email_of(*roles), "admin", roles=["senior_leader"])
    at.button(key="history_retry").click()
    rerun(at)
    assert "may not do this (batch.manage)" in texts(at.error)
    assert not {b.key for b in at.button} & MANAGE_BUTTONS

    # Every control forced onto a senior leader's page: each action refuses when it runs.
    monkeypatch.setattr(common, "user_can", lambda action: True)
    at = signed_in(HISTORY, "senior_leader")

    def refused(key: str, **state: Any) -> None:
        for name, value in state.items():
            at.session_state[name] = value
        rerun(at)
        assert not at.button(key=key).disabled, key
        at.button(key=key).click()
        rerun(at)
        assert "Could not" in texts(at.error), key
        assert "may not do this (batch.manage)" in texts(at.error), key

    refused("history_retry", history_messages={"selection": {"rows": [failed_row], "columns": []}})
    refused("history_retry_batch", history_manage_batch=done_batch)
    refused("history_pause", history_manage_batch=running)
    refused(
        "history_cancel",
        history_manage_batch=running,
        **{f"history_confirm_cancel_{running}": True},
    )
    assert message_log(engine).set_index("id")["status"].to_dict() == before
    assert batch_progress(engine, running)["state"] == "running"
    assert batch_progress(engine, done_batch)["state"] == "done"


def test_message_bank_editing_is_hidden_and_checked_again_when_it_runs(
    school: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_ops(school)
    assert "senior_leader" in PAGE_ROLES["message_bank"]
    assert "senior_leader" not in ACTION_ROLES["templates.edit"]
    at = signed_in(BANK, "senior_leader")
    assert not {b.key for b in at.button} & {"bank_seed", "bank_save", "bank_archive"}
    assert "not save or archive them" in texts(at.info)
    at.text_area(key="bank_body").set_value("{{ student.forename }} was great.")
    rerun(at)
    assert "Amelia was great." in texts(at.code)  # a senior leader may still try one out

    # The pastoral role is taken away while the page is open: the save is refused in words.
    roles = ("senior_leader", "pastoral")
    at = signed_in(BANK, *roles)
    at.text_input(key="bank_name").set_value("Trip reminder")
    at.text_area(key="bank_body").set_value("{{ student.forename }} needs a packed lunch.")
    rerun(at)
    auth.update_user(engine, email_of(*roles), "admin", roles=["senior_leader"])
    at.button(key="bank_save").click()
    rerun(at)
    assert "may not do this (templates.edit)" in texts(at.error)
    assert "bank_save" not in {b.key for b in at.button}

    # Every control forced onto a senior leader's page: each action refuses when it runs.
    monkeypatch.setattr(common, "user_can", lambda action: True)
    at = signed_in(BANK, "senior_leader")
    at.button(key="bank_seed").click()
    rerun(at)
    assert "Could not add the default templates: Your account may not do this" in texts(at.error)
    rerun(at)
    at.text_input(key="bank_name").set_value("Trip reminder")
    at.text_area(key="bank_body").set_value("{{ student.forename }} needs a packed lunch.")
    at.button(key="bank_save").click()
    rerun(at)
    assert "may not do this (templates.edit)" in texts(at.error)
    assert list_templates(engine, include_archived=True).empty

    save_template(
        engine, name="Old", channel="sms", subject=None, body="Hi", category="x", actor="t"
    )
    at.session_state["bank_next_choice"] = "Old"
    rerun(at)
    at.button(key="bank_archive").click()
    rerun(at)
    assert "may not do this (templates.edit)" in texts(at.error)
    assert list_templates(engine)["name"].tolist() == ["Old"]  # not archived


def test_recording_a_contact_is_checked_again_when_save_runs(
    school: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every role that may open the page may record a contact: the page gate is opened
    # for a data manager here, so what must refuse is the check when Save runs.
    assert set(ACTION_ROLES["contact.record"]) == set(PAGE_ROLES["record_contact"])
    assert "data_manager" not in PAGE_ROLES["record_contact"]
    engine = open_ops(school)
    monkeypatch.setattr(common, "check_page", lambda roles, page: None)
    at = signed_in(RECORD, "data_manager")
    at.selectbox(key="contact_pupil").set_value("S1")
    rerun(at)
    assert "contact_save" not in {b.key for b in at.button}
    assert "not record contacts" in texts(at.info)

    monkeypatch.setattr(common, "user_can", lambda action: True)
    rerun(at)
    at.text_input(key="contact_outcome").set_value("Spoke to mum")
    at.button(key="contact_save").click()
    rerun(at)
    assert "may not do this (contact.record)" in texts(at.error)
    assert contact_history(engine, "S1").empty


def test_letters_are_read_when_downloaded_and_only_for_those_who_may_print(
    school: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_ops(school)
    pdf = tmp_path / "letters.pdf"
    pdf.write_bytes(b"%PDF-1.4 the letters")
    user_id = auth.create_user(engine, email="o@s.org", roles=["office"], actor="t")
    assert messaging.letters_pdf(engine, user_id, pdf) == b"%PDF-1.4 the letters"
    auth.update_user(engine, "o@s.org", "admin", roles=["senior_leader"])
    with pytest.raises(PermissionDenied, match=r"letters\.print"):
        messaging.letters_pdf(engine, user_id, pdf)
    auth.update_user(engine, "o@s.org", "admin", roles=["office"])
    auth.set_disabled(engine, "o@s.org", True, "admin")
    with pytest.raises(PermissionDenied):
        messaging.letters_pdf(engine, user_id, pdf)

    # Through the page: the button's data is read only when it is pressed, as the
    # account is then.
    batch_id = letter_batch(school, tmp_path)
    buttons: dict[str, Any] = {}
    real = st.download_button

    def download_button(label: str, data: Any = None, **kw: Any) -> Any:
        buttons[label] = data
        return real(label, data, **kw)

    monkeypatch.setattr(st, "download_button", download_button)
    roles = ("office", "senior_leader")
    at = signed_in(HISTORY, *roles)
    at.selectbox(key="history_manage_batch").select(batch_id)
    rerun(at)
    data = buttons[f"Download the letters of batch {batch_id} (PDF, ready to print)"]
    assert callable(data) and data().startswith(b"%PDF")
    auth.update_user(engine, email_of(*roles), "admin", roles=["senior_leader"])
    with pytest.raises(PermissionDenied, match=r"letters\.print"):
        data()
    buttons.clear()
    rerun(at)
    assert not [label for label in buttons if label.startswith("Download the letters")]
    assert f"The letters of batch {batch_id} are ready" in texts(at.caption)


def test_the_messaging_pages_offer_their_tables_as_csv(
    school: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    offered = offered_downloads(monkeypatch)
    engine = open_ops(school)
    batch_id = queue_sms(school, ["S1"])
    save_template(
        engine, name="Trip", channel="sms", subject=None, body="=1+1", category="x", actor="t"
    )
    signed_in(HISTORY, "office")
    batches, _ = offered["history_batches_csv"]
    assert batches["id"].tolist() == [batch_id]
    assert {"history_by_status_csv", "history_by_staff_csv"} <= set(offered)
    signed_in(BANK, "office")
    templates, name = offered["bank_templates_csv"]
    assert name == "message-bank.csv" and templates["body"].tolist() == ["=1+1"]
    at = signed_in(RECORD, "office")
    at.selectbox(key="contact_pupil").set_value("S1")
    rerun(at)
    at.text_input(key="contact_outcome").set_value("Spoke to mum")
    at.button(key="contact_save").click()
    rerun(at)
    contacts, name = offered["contact_history_csv"]
    assert name == "contacts-S1.csv" and contacts["outcome"].tolist() == ["Spoke to mum"]
    messages, _ = offered["contact_messages_csv"]
    assert len(messages) == 1
