"""The Settings page with AppTest against a real data folder, ops store, SMTP server
(aiosmtpd on 127.0.0.1) and the Text Anywhere stand-in."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from aiosmtpd.controller import Controller
from conftest import MINIMAL_SCHOOL, minimal_school, sign_in, write_extracts
from sqlalchemy import select
from standins.textanywhere import CLIENT_ID, CLIENT_PASS, TextAnywhereStandin
from streamlit.testing.v1 import AppTest
from test_email_smtp import Recorder, free_port

from pipelines.load import load_paths
from schoolcomms import auth, settings_store
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import AuditEntry
from schoolcomms.settings import DATA_DIR_ENV, MASK, Settings
from senders.alerts.groups import create_group, list_groups
from senders.alerts.rules import create_rule
from senders.channels.files import read_sms_outbox
from senders.referrals import add_option, list_options

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "pages" / "settings_page.py")
TIMEOUT = 60
ADMIN = "admin@school.example.org"
RESPONSIBILITIES = [
    {"staff_id": "T2", "role": "form_tutor", "scope": "8B"},
    {"staff_id": "T1", "role": "head_of_department", "scope": "Maths"},
    {"staff_id": "T1", "role": "attendance_officer", "scope": ""},
]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An empty data folder the app uses; nothing of the developer's set-up."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    return Settings(tmp_path / "data", env={})


@pytest.fixture
def school(data: Settings, tmp_path: Path) -> Settings:
    """The minimal school, with responsibilities, loaded into the app's data folder."""
    tables = minimal_school() | {"responsibilities": RESPONSIBILITIES}
    assert load_paths(write_extracts(tmp_path / "school", tables), data).ok
    return data


def run(at: AppTest | None = None, *roles: str) -> AppTest:
    at = at or sign_in(AppTest.from_file(PAGE, default_timeout=TIMEOUT), *(roles or ("admin",)))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements: object) -> str:
    return "\n".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def everything(at: AppTest) -> str:
    parts = [at.markdown, at.caption, at.info, at.success, at.warning, at.error, at.text_input]
    return "\n".join(texts(p) for p in parts)


def table(at: AppTest, key: str) -> pd.DataFrame:
    """A selectable dataframe by its key."""
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


def file_values(settings: Settings) -> dict:
    path = settings.settings_file
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def audit_rows(settings: Settings, prefix: str) -> list[AuditEntry]:
    with session_scope(open_ops(settings), immediate=False) as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like(f"{prefix}%")).order_by(AuditEntry.id)
        ).all()
        session.expunge_all()
        return list(rows)


def write_settings(settings: Settings, text: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.settings_file.write_text(text, encoding="utf-8")


# ---- who may open it -------------------------------------------------------------------------


def test_an_admin_sees_every_section_with_sources_and_help(school: Settings) -> None:
    at = run()
    assert at.title[0].value == "Settings"
    labels = [t.label for t in at.tabs]
    for tab in ("E-mail", "SMS", "Absence texts", "Scheduler", "Alerts", "Letters", "More"):
        assert tab in labels
    assert {"Referrals", "Groups", "Roles and users", "All settings"} <= set(labels)
    assert at.text_input(key="set_smtp_host").value == ""
    assert at.number_input(key="set_absence_text_delay_minutes").value == 20
    assert at.checkbox(key="set_alert_emails").value is True
    assert at.selectbox(key="set_sms_provider").value == "file"
    captions = texts(at.caption)
    assert "SMTP server for e-mail." in captions and "*the default*" in captions
    assert "NOT sent: no SMTP server is configured" in texts(at.info)
    overview = table_with(at, "section", "name", "source", "default")
    assert set(overview["name"]) >= {"smtp_host", "absence_text_link", "letter_signatory"}


@pytest.mark.parametrize("role", ["senior_leader", "data_manager", "teacher", "office"])
def test_other_roles_cannot_open_it(data: Settings, role: str) -> None:
    at = run(None, role)
    assert "cannot open this page" in texts(at.error)
    assert not at.text_input and not at.button


def test_a_role_taken_away_is_checked_again_when_saving(data: Settings) -> None:
    at = run()
    at.text_input(key="set_school_name").set_value("Hill School")
    auth.update_user(open_ops(data), ADMIN, "test", roles=["senior_leader"])
    at.button(key="save_more").click()
    run(at)
    assert "cannot open this page" in texts(at.error)
    assert file_values(data) == {}
    assert audit_rows(data, "settings.change") == []


# ---- saving ----------------------------------------------------------------------------------


def test_saving_writes_the_file_audits_and_shows_the_new_value_at_once(data: Settings) -> None:
    at = run()
    at.text_input(key="set_smtp_host").set_value("mail.school.example.org")
    at.number_input(key="set_smtp_port").set_value(465)
    at.button(key="save_e_mail").click()
    run(at)
    assert "Saved to" in texts(at.success)
    assert "smtp_host: (blank) → 'mail.school.example.org'" in texts(at.success)
    assert file_values(data) == {"smtp_host": "mail.school.example.org", "smtp_port": 465}
    rows = audit_rows(data, "settings.change")
    assert [(r.actor, r.target, r.details["new"]) for r in rows] == [
        (ADMIN, "setting:smtp_host", "mail.school.example.org"),
        (ADMIN, "setting:smtp_port", 465),
    ]
    # The cached settings were cleared: the page already works with the saved values.
    assert "E-mails are sent through mail.school.example.org:465" in texts(at.info)
    assert at.text_input(key="set_smtp_host").value == "mail.school.example.org"
    assert "*set in settings.toml*" in texts(at.caption)


def test_saving_without_a_change_writes_nothing(data: Settings) -> None:
    at = run()
    at.button(key="save_absence_texts").click()
    run(at)
    assert "Nothing changed." in texts(at.info)
    assert not data.settings_file.exists()


def test_a_bad_value_is_explained_and_nothing_is_saved(data: Settings) -> None:
    at = run()
    at.text_input(key="set_school_day_start").set_value("8am")
    at.number_input(key="set_freshness_minutes").set_value(40)
    at.button(key="save_scheduler").click()
    run(at)
    errors = texts(at.error)
    assert "Not saved" in errors and "school_day_start must be a time written HH:MM" in errors
    assert not data.settings_file.exists()


def test_reset_to_default_takes_the_value_out_of_the_file(data: Settings) -> None:
    write_settings(data, 'freshness_minutes = 45\nschool_name = "Hill School"\n')
    at = run()
    assert at.number_input(key="set_freshness_minutes").value == 45
    at.multiselect(key="reset_scheduler").set_value(["freshness_minutes"])
    at.button(key="save_scheduler").click()
    run(at)
    assert "freshness_minutes: 45 → 30 (the default)" in texts(at.success)
    assert file_values(data) == {"school_name": "Hill School"}
    assert at.number_input(key="set_freshness_minutes").value == 30
    (row,) = audit_rows(data, "settings.change")
    assert row.details["reset"] is True


def test_another_admins_change_is_not_saved_back_over(data: Settings) -> None:
    at = run()
    settings_store.save(
        data.data_dir, {"school_name": "Hill School"}, "other@x.org", open_ops(data)
    )
    st.cache_resource.clear()  # as when the cached settings expire
    at.text_input(key="set_letter_signatory").set_value("Mrs J Smith, Headteacher")
    at.button(key="save_letters").click()
    run(at)
    assert at.text_input(key="set_school_name").value == "Hill School"
    at.button(key="save_more").click()
    run(at)
    assert "Nothing changed." in texts(at.info)
    assert file_values(data) == {
        "school_name": "Hill School",
        "letter_signatory": "Mrs J Smith, Headteacher",
    }


def test_environment_and_secrets_are_shown_but_not_editable(
    data: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHOOLCOMMS_SMTP_PORT", "2525")
    monkeypatch.setenv("SCHOOLCOMMS_SMTP_PASSWORD", "Hunter-2-secret")
    at = run()
    port = at.number_input(key="set_smtp_port")
    assert port.value == 2525 and port.disabled
    password = at.text_input(key="show_smtp_password")
    assert password.value == MASK and password.disabled
    page = everything(at)
    assert "Hunter-2-secret" not in page
    assert "from the environment (SCHOOLCOMMS_SMTP_PORT)" in page
    assert "SCHOOLCOMMS_SMTP_PASSWORD in the environment" in page
    at.text_input(key="set_email_from").set_value("attendance@school.example.org")
    at.button(key="save_e_mail").click()
    run(at)
    assert file_values(data) == {"email_from": "attendance@school.example.org"}


# ---- test sends ------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Recorder]]:
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


def test_a_test_email_through_smtp(
    data: Settings, smtp_server: tuple[Controller, Recorder]
) -> None:
    controller, handler = smtp_server
    write_settings(
        data,
        f'smtp_host = "127.0.0.1"\nsmtp_port = {controller.port}\nsmtp_security = "none"\n',
    )
    at = run()
    assert at.text_input(key="test_email_to").value == ADMIN
    at.text_input(key="test_email_to").set_value("deputy@school.example.org")
    at.button(key="test_email_send").click()
    run(at)
    assert "Sent a test e-mail to deputy@school.example.org through 127.0.0.1" in texts(at.success)
    assert handler.envelopes[0]["rcpt_tos"] == ["deputy@school.example.org"]
    (row,) = audit_rows(data, "settings.test_send")
    assert (row.actor, row.target) == (ADMIN, "email:deputy@school.example.org")


def test_a_test_email_with_no_smtp_server_says_nothing_left(data: Settings) -> None:
    at = run()
    at.button(key="test_email_send").click()
    run(at)
    warning = texts(at.warning)
    assert "Nothing left this machine" in warning
    (eml,) = (data.data_dir / "outbox" / "email").glob("*.eml")
    assert str(eml) in warning


def test_a_failed_test_email_is_an_error_in_words(data: Settings) -> None:
    write_settings(
        data, f'smtp_host = "127.0.0.1"\nsmtp_port = {free_port()}\nsmtp_security = "none"\n'
    )
    at = run()
    at.button(key="test_email_send").click()
    run(at)
    assert "The test e-mail was NOT sent via 127.0.0.1" in texts(at.error)


def test_a_test_sms_through_text_anywhere(
    data: Settings, monkeypatch: pytest.MonkeyPatch, textanywhere_server: TextAnywhereStandin
) -> None:
    write_settings(
        data,
        'sms_provider = "textanywhere"\n'
        f'textanywhere_url = "{textanywhere_server.base_url}"\n'
        f'textanywhere_client_id = "{CLIENT_ID}"\n'
        'sms_sender_id = "MySchool"\n',
    )
    monkeypatch.setenv("SCHOOLCOMMS_TEXTANYWHERE_CLIENT_PASS", CLIENT_PASS)
    at = run()
    assert "SMS are sent through textanywhere" in texts(at.info)
    at.text_input(key="test_sms_to").set_value("07400 123456")
    at.button(key="test_sms_send").click()
    run(at)
    assert "Text Anywhere accepted a test SMS to +447400123456" in texts(at.success)
    assert "does not report the credit balance" in texts(at.caption)
    (request,) = textanywhere_server.sends()
    assert request.form["DestinationEx"] == "+447400123456"
    assert CLIENT_PASS not in everything(at)


def test_a_test_sms_with_the_file_gateway_and_the_credit_check(data: Settings) -> None:
    at = run()
    at.text_input(key="test_sms_to").set_value("07400 123456")
    at.button(key="test_sms_send").click()
    run(at)
    assert "Nothing left this machine" in texts(at.warning)
    assert [r["to"] for r in read_sms_outbox(data.data_dir)] == ["+447400123456"]
    at.button(key="sms_balance").click()
    run(at)
    assert "The file gateway sends nothing" in texts(at.caption)


# ---- referral lists --------------------------------------------------------------------------


def test_add_an_entry_to_the_referral_list(school: Settings) -> None:
    at = run()
    assert "The referral list is empty" in texts(at.info)
    at.text_input(key="referral_label_new").set_value("Head of Maths")
    at.selectbox(key="referral_staff_new").set_value("T1")
    at.button(key="referral_save").click()
    run(at)
    assert "Added 'Head of Maths' on the referral list." in texts(at.success)
    (option,) = list_options(open_ops(school))
    assert (option["label"], option["staff_id"], option["enabled"]) == ("Head of Maths", "T1", True)
    assert table(at, "referral_options").iloc[0]["staff"] == "Ms Tara Teach (T1)"
    (row,) = audit_rows(school, "referral_option.")
    assert (row.actor, row.action) == (ADMIN, "referral_option.add")


def test_a_referral_entry_needs_a_member_of_staff(school: Settings) -> None:
    at = run()
    at.text_input(key="referral_label_new").set_value("Nobody")
    at.button(key="referral_save").click()
    run(at)
    assert "Not saved: Give the member of staff" in texts(at.error)
    assert list_options(open_ops(school)) == []


def test_switch_referral_entries_off_and_on_in_bulk(school: Settings) -> None:
    engine = open_ops(school)
    for label, staff in (("Head of Year 8", "T2"), ("Head of Maths", "T1"), ("SENCo", "T1")):
        add_option(engine, label=label, staff_id=staff, actor="test")
    at = run()
    select_rows(at, "referral_options", [0, 2])  # by label: Head of Maths, SENCo
    run(at)
    at.button(key="referral_off").click()
    run(at)
    assert "Switched off 2 referral list entries." in texts(at.success)
    enabled = {o["label"]: o["enabled"] for o in list_options(engine)}
    assert enabled == {"Head of Maths": False, "Head of Year 8": True, "SENCo": False}
    select_rows(at, "referral_options", [0])
    run(at)
    at.button(key="referral_on").click()
    run(at)
    assert {o["label"]: o["enabled"] for o in list_options(engine)}["Head of Maths"] is True
    actions = [r.action for r in audit_rows(school, "referral_option.") if r.actor == ADMIN]
    assert actions == ["referral_option.disable"] * 2 + ["referral_option.enable"]


def test_change_one_selected_referral_entry(school: Settings) -> None:
    engine = open_ops(school)
    option_id = add_option(engine, label="Head of Yr 8", staff_id="T1", actor="test")
    at = run()
    select_rows(at, "referral_options", [0])
    run(at)
    assert "Change 'Head of Yr 8'" in texts(at.markdown)
    at.text_input(key=f"referral_label_{option_id}").set_value("Head of Year 8")
    at.selectbox(key=f"referral_staff_{option_id}").set_value("T2")
    at.button(key="referral_save").click()
    run(at)
    (option,) = list_options(engine)
    assert (option["label"], option["staff_id"]) == ("Head of Year 8", "T2")


def test_referral_entries_before_any_data_take_a_staff_id(data: Settings) -> None:
    at = run()
    at.text_input(key="referral_label_new").set_value("Safeguarding lead")
    at.text_input(key="referral_id_new").set_value("T9")
    at.button(key="referral_save").click()
    run(at)
    assert [o["staff_id"] for o in list_options(open_ops(data))] == ["T9"]


# ---- recipient groups, staff roles -----------------------------------------------------------


def test_create_and_delete_recipient_groups(school: Settings) -> None:
    at = run()
    assert "No recipient groups yet" in texts(at.info)
    at.text_input(key="group_name").set_value("Safeguarding team")
    at.multiselect(key="group_staff").set_value(["T1", "T2"])
    at.button(key="group_save").click()
    run(at)
    assert "Saved the recipient group 'Safeguarding team'" in texts(at.success)
    (group,) = list_groups(open_ops(school))
    assert group["staff_ids"] == ["T1", "T2"]
    shown = table(at, "groups_table")
    assert shown.iloc[0]["members"] == "Ms Tara Teach (T1), Mr Tom Tutor (T2)"
    select_rows(at, "groups_table", [0])
    run(at)
    at.button(key="groups_delete").click()
    run(at)
    assert "Deleted 1 recipient group(s)" in texts(at.success)
    assert list_groups(open_ops(school)) == []
    actions = [r.action for r in audit_rows(school, "staff_group.")]
    assert actions == ["staff_group.create", "staff_group.delete"]
    assert {r.actor for r in audit_rows(school, "staff_group.")} == {ADMIN}


def test_a_group_used_by_a_rule_is_not_deleted(school: Settings) -> None:
    engine = open_ops(school)
    create_group(engine, name="Pastoral", staff_ids=["T2"], actor="test")
    notify = {"groups": ["Pastoral"]}
    create_rule(engine, actor="test", name="Truancy", kind="truancy", params={}, notify=notify)
    at = run()
    select_rows(at, "groups_table", [0])
    run(at)
    at.button(key="groups_delete").click()
    run(at)
    assert "used by the rule(s) Truancy" in texts(at.error)
    assert len(list_groups(engine)) == 1


def test_edit_a_group(school: Settings) -> None:
    engine = open_ops(school)
    group_id = create_group(engine, name="Heads", staff_ids=["T1"], actor="test")
    at = run()
    at.selectbox(key="group_choice").set_value(group_id)
    run(at)
    assert at.text_input(key="group_name").value == "Heads"
    at.text_input(key="group_name").set_value("Heads of department")
    at.multiselect(key="group_staff").set_value(["T1", "T2"])
    at.button(key="group_save").click()
    run(at)
    (group,) = list_groups(engine)
    assert (group["name"], group["staff_ids"]) == ("Heads of department", ["T1", "T2"])


def test_staff_responsibilities_are_listed_read_only(school: Settings) -> None:
    at = run()
    shown = table_with(at, "staff", "role", "scope")
    rows = set(shown[["staff", "role", "scope"]].itertuples(index=False, name=None))
    assert rows == {
        ("Mr Tom Tutor", "Form tutor", "8B"),
        ("Ms Tara Teach", "Head of department", "Maths"),
        ("Ms Tara Teach", "Attendance officer", "Whole school"),
    }
    assert "Users" in everything(at)


def test_no_responsibilities_and_no_data_say_what_to_do(data: Settings, tmp_path: Path) -> None:
    at = run()
    assert "No data loaded yet: load the staff and responsibilities" in texts(at.info)
    assert load_paths(write_extracts(tmp_path / "school", MINIMAL_SCHOOL), data).ok
    st.cache_resource.clear()
    at = run()
    assert "No responsibilities are loaded" in texts(at.info)
