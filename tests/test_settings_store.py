"""Saving settings to data/settings.toml (schoolcomms.settings_store) and the test sends
of the Settings page (senders.test_sends), against real files, a real SQLite ops store,
a real aiosmtpd server on 127.0.0.1 and the Text Anywhere stand-in."""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, select
from standins.textanywhere import CLIENT_ID, CLIENT_PASS, TextAnywhereStandin
from test_email_smtp import Recorder, free_port

from schoolcomms import settings_store
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import AuditEntry
from schoolcomms.settings import Settings, SettingsError
from schoolcomms.settings_store import RESET, SaveRefused, dump_toml, save
from senders.channels.files import read_sms_outbox
from senders.channels.smtp import SECURITY_MODES
from senders.channels.textanywhere import TextAnywhereSms
from senders.messengers import SMS_PROVIDERS
from senders.test_sends import mobile_number, send_test_email, send_test_sms, sms_balance

ADMIN = "head@school.example.org"


def audit_rows(settings: Settings, action: str = "settings.change") -> list[AuditEntry]:
    with session_scope(open_ops(settings), immediate=False) as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        ).all()
        session.expunge_all()
        return list(rows)


def fresh(settings: Settings, env: dict[str, str] | None = None) -> Settings:
    return Settings(settings.data_dir, env=env or {})


def write_file(settings: Settings, text: str) -> Path:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.settings_file.write_text(text, encoding="utf-8")
    return settings.settings_file


# ---- saving ----------------------------------------------------------------------------------


def test_save_writes_the_file_and_audits_old_and_new(settings: Settings) -> None:
    engine = open_ops(settings)
    changes = save(settings, {"smtp_host": " mail.school.org ", "smtp_port": "465"}, ADMIN, engine)
    assert [(c.name, c.old, c.new) for c in changes] == [
        ("smtp_host", "", "mail.school.org"),
        ("smtp_port", 587, 465),
    ]
    now = fresh(settings)
    assert (now["smtp_host"], now["smtp_port"]) == ("mail.school.org", 465)
    assert now.source("smtp_host") == "file" and now.source("smtp_security") == "default"
    rows = audit_rows(settings)
    assert [(r.actor, r.target) for r in rows] == [
        (ADMIN, "setting:smtp_host"),
        (ADMIN, "setting:smtp_port"),
    ]
    assert rows[1].details["old"] == 587 and rows[1].details["new"] == 465
    assert rows[0].details["reset"] is False


def test_other_keys_comments_and_tables_are_kept(settings: Settings) -> None:
    path = write_file(
        settings,
        "# Our school's settings\n"
        'school_name = "St Mary\'s"  # on letters\n'
        "generations_kept = 7\n"
        "\n"
        "[sql_sources]\n"
        'students = "SELECT * FROM pupils"\n',
    )
    save(settings, {"generations_kept": 9, "school_day_start": "08:15"}, ADMIN, open_ops(settings))
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Our school's settings\nschool_name = \"St Mary's\"  # on letters\n")
    assert "generations_kept = 9\n" in text
    assert text.index('school_day_start = "08:15"') < text.index("[sql_sources]")
    data = tomllib.loads(text)
    assert data == {
        "school_name": "St Mary's",
        "generations_kept": 9,
        "school_day_start": "08:15",
        "sql_sources": {"students": "SELECT * FROM pupils"},
    }
    assert fresh(settings)["sql_sources"] == {"students": "SELECT * FROM pupils"}


def test_a_table_setting_and_a_multiline_value_are_written_out_whole(settings: Settings) -> None:
    write_file(
        settings,
        'absence_text_template = """Student {student_id}\nwas absent"""\n'
        '[sql_sources]\nstudents = "SELECT 1"\n',
    )
    engine = open_ops(settings)
    save(settings, {"absence_text_template": 'Quote " back\\slash\tand Zoë'}, ADMIN, engine)
    assert fresh(settings)["absence_text_template"] == 'Quote " back\\slash\tand Zoë'
    save(
        settings.data_dir,
        {"sql_sources": '{"staff": "SELECT 2", "x y": "SELECT 3"}'},
        ADMIN,
        engine,
    )
    data = tomllib.loads(settings.settings_file.read_text(encoding="utf-8"))
    assert data["sql_sources"] == {"staff": "SELECT 2", "x y": "SELECT 3"}
    assert data["absence_text_template"] == 'Quote " back\\slash\tand Zoë'


def test_secrets_are_refused_and_nothing_is_written(settings: Settings) -> None:
    with pytest.raises(SaveRefused) as refused:
        save(
            settings,
            {"smtp_host": "mail.school.org", "smtp_password": "hunter2"},
            ADMIN,
            open_ops(settings),
        )
    message = str(refused.value)
    assert "SCHOOLCOMMS_SMTP_PASSWORD" in message and ".streamlit/secrets.toml" in message
    assert "hunter2" not in message
    assert not settings.settings_file.exists()
    assert audit_rows(settings) == []


def test_a_setting_from_the_environment_is_refused(settings: Settings) -> None:
    overridden = Settings(settings.data_dir, env={"SCHOOLCOMMS_SMTP_HOST": "env.example.org"})
    with pytest.raises(SaveRefused) as refused:
        save(overridden, {"smtp_host": "file.example.org"}, ADMIN, open_ops(settings))
    assert "SCHOOLCOMMS_SMTP_HOST" in str(refused.value)
    assert "would be ignored" in str(refused.value)
    assert not settings.settings_file.exists()


def test_a_data_dir_uses_the_process_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHOOLCOMMS_SMTP_PORT", "2525")
    with pytest.raises(SaveRefused, match="SCHOOLCOMMS_SMTP_PORT"):
        save(settings.data_dir, {"smtp_port": 25}, ADMIN, open_ops(settings))
    monkeypatch.delenv("SCHOOLCOMMS_SMTP_PORT")
    save(settings.data_dir, {"smtp_port": 25}, ADMIN, open_ops(settings))
    assert fresh(settings)["smtp_port"] == 25


def test_every_bad_value_is_named_with_its_fix(settings: Settings) -> None:
    bad = {
        "smtp_port": "five",
        "sms_provider": "carrier-pigeon",
        "school_day_start": "8am",
        "generations_kept": 0,
        "alert_emails": "maybe",
        "weekly_report_default_time": "Funday 07:00",
        "extra_attendance_codes": "EX:sunny",
        "email_from": "not an address",
        "sms_sender_id": "Far too long a name",
        "no_such_setting": 1,
    }
    with pytest.raises(SaveRefused) as refused:
        save(settings, bad, ADMIN, open_ops(settings))
    problems = refused.value.problems
    assert len(problems) == len(bad)
    text = "\n".join(problems)
    assert "smtp_port must be a whole number" in text
    assert "sms_provider must be one of file, textanywhere, twilio" in text
    assert "school_day_start must be a time written HH:MM" in text
    assert "generations_kept must be at least 1" in text
    assert "alert_emails must be true or false" in text
    assert "'Monday 07:00'" in text
    assert "CODE:category" in text
    assert "email_from: 'not an address' is not an e-mail address" in text
    assert "sms_sender_id must be up to 11 letters" in text
    assert "no setting called 'no_such_setting'" in text
    assert not settings.settings_file.exists()


def test_blank_school_day_end_is_allowed_but_not_a_blank_start(settings: Settings) -> None:
    engine = open_ops(settings)
    save(settings, {"school_day_end": "16:00"}, ADMIN, engine)
    save(settings, {"school_day_end": ""}, ADMIN, engine)
    assert fresh(settings)["school_day_end"] == ""
    with pytest.raises(SaveRefused, match="school_day_start"):
        save(settings, {"school_day_start": ""}, ADMIN, engine)


def test_reset_takes_the_setting_out_of_the_file(settings: Settings) -> None:
    engine = open_ops(settings)
    save(settings, {"freshness_minutes": 45, "school_name": "Hill School"}, ADMIN, engine)
    changes = save(settings, {"freshness_minutes": RESET}, ADMIN, engine)
    assert [(c.name, c.old, c.new, c.reset) for c in changes] == [
        ("freshness_minutes", 45, 30, True)
    ]
    assert "reset to" not in changes[0].as_text() and "(the default)" in changes[0].as_text()
    assert tomllib.loads(settings.settings_file.read_text()) == {"school_name": "Hill School"}
    assert fresh(settings).source("freshness_minutes") == "default"
    assert audit_rows(settings)[-1].details["reset"] is True


def test_saving_the_same_value_again_changes_nothing(settings: Settings) -> None:
    engine = open_ops(settings)
    save(settings, {"sms_pence_per_segment": 4.5}, ADMIN, engine)
    before = settings.settings_file.stat().st_mtime_ns
    assert save(settings, {"sms_pence_per_segment": "4.5"}, ADMIN, engine) == []
    assert save(settings, {"school_address": RESET}, ADMIN, engine) == []
    assert settings.settings_file.stat().st_mtime_ns == before
    assert len(audit_rows(settings)) == 1


def test_a_failed_audit_puts_the_old_file_back(settings: Settings, tmp_path: Path) -> None:
    path = write_file(settings, '# keep me\nschool_name = "Old"\n')
    no_tables = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    with pytest.raises(Exception, match="audit_log"):
        save(settings, {"school_name": "New"}, ADMIN, no_tables)
    assert path.read_text(encoding="utf-8") == '# keep me\nschool_name = "Old"\n'
    settings.settings_file.unlink()
    with pytest.raises(Exception, match="audit_log"):
        save(settings, {"school_name": "New"}, ADMIN, no_tables)
    assert not settings.settings_file.exists()
    assert not list(settings.data_dir.glob(".settings.*.tmp"))


def test_a_broken_file_is_named_not_overwritten(settings: Settings) -> None:
    path = write_file(settings, "school_name = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        save(settings.data_dir, {"school_name": "X"}, ADMIN, open_ops(settings))
    assert path.read_text() == "school_name = \n"


def test_two_admins_saving_at_once_lose_nothing(settings: Settings) -> None:
    engine = open_ops(settings)
    names = ["schedule_alerts_minutes", "schedule_reminders_minutes", "schedule_reports_minutes"]
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            for value in range(2, 12):
                save(settings, {name: value}, ADMIN, engine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {n: fresh(settings)[n] for n in names} == dict.fromkeys(names, 11)
    assert len(audit_rows(settings)) == 30


def test_an_actor_is_required(settings: Settings) -> None:
    with pytest.raises(ValueError, match="actor"):
        save(settings, {"school_name": "X"}, " ", open_ops(settings))


def test_dump_toml_round_trips_awkward_values() -> None:
    data: dict[str, Any] = {
        "a": 'quote " and \\ and \n newline \x01 control \u00e9',
        "b": 1.5e-7,
        "c": True,
        "d": [1, "two", {"three": 3}],
        "e": {"bare": "x", "needs quoting": "y", "nested": {"k": False}},
        "f": {},
    }
    assert tomllib.loads(dump_toml(data)) == data


def test_the_choices_match_what_the_senders_accept() -> None:
    assert settings_store.CHOICES["sms_provider"] == SMS_PROVIDERS
    assert settings_store.CHOICES["smtp_security"] == SECURITY_MODES


# ---- test sends: e-mail ----------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Recorder]]:
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


def smtp_settings(settings: Settings, port: int) -> Settings:
    values = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
    return Settings(settings.data_dir, env={}, overrides=values)


def test_a_test_email_goes_through_the_smtp_server(
    settings: Settings, smtp_server: tuple[Controller, Recorder]
) -> None:
    controller, handler = smtp_server
    configured = smtp_settings(settings, controller.port)
    outcome = send_test_email(
        configured, "Head@School.Example.org", engine=open_ops(settings), actor=ADMIN
    )
    assert outcome.ok and outcome.left_the_machine, outcome.message
    assert f"127.0.0.1:{controller.port}" in outcome.message and "250" in outcome.message
    (envelope,) = handler.envelopes
    assert envelope["rcpt_tos"] == ["Head@school.example.org"]
    (message,) = handler.messages()
    assert message["Subject"] == "Test e-mail from Sample School"
    assert ADMIN in message.get_body(("plain",)).get_content()
    assert not (settings.data_dir / "outbox" / "email").exists(), "not via the file outbox"
    (row,) = audit_rows(settings, "settings.test_send")
    assert (row.actor, row.target, row.details["ok"]) == (
        ADMIN,
        "email:Head@school.example.org",
        True,
    )


def test_a_refused_recipient_is_reported_in_words(
    settings: Settings, smtp_server: tuple[Controller, Recorder]
) -> None:
    controller, handler = smtp_server
    handler.refuse["nobody@school.example.org"] = "550 5.1.1 No such user"
    outcome = send_test_email(
        smtp_settings(settings, controller.port),
        "nobody@school.example.org",
        engine=open_ops(settings),
        actor=ADMIN,
    )
    assert not outcome.ok
    assert "NOT sent" in outcome.message and "No such user" in outcome.message
    assert handler.envelopes == []
    assert audit_rows(settings, "settings.test_send")[0].details["ok"] is False


def test_no_smtp_server_listening_is_reported_and_keeps_the_password_out(
    settings: Settings,
) -> None:
    port = free_port()
    configured = Settings(
        settings.data_dir,
        env={"SCHOOLCOMMS_SMTP_PASSWORD": "Very-Secret-1"},
        overrides={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "smtp_user": "office",
        },
    )
    outcome = send_test_email(configured, ADMIN, engine=open_ops(settings), actor=ADMIN)
    assert not outcome.ok and f"127.0.0.1:{port}" in outcome.message
    assert "Very-Secret-1" not in outcome.message
    assert "Very-Secret-1" not in json.dumps(audit_rows(settings, "settings.test_send")[0].details)


def test_without_smtp_the_test_email_is_a_file_and_says_so(settings: Settings) -> None:
    outcome = send_test_email(settings, ADMIN, engine=open_ops(settings), actor=ADMIN)
    assert outcome.ok and not outcome.left_the_machine
    assert outcome.message.startswith("Nothing left this machine")
    assert outcome.path is not None and outcome.path.is_file()
    assert str(outcome.path) in outcome.message
    assert outcome.path.parent == settings.data_dir / "outbox" / "email"
    assert f"To: {ADMIN}" in outcome.path.read_text(encoding="utf-8")


def test_a_bad_address_sends_nothing(settings: Settings) -> None:
    outcome = send_test_email(settings, "head at school", engine=open_ops(settings), actor=ADMIN)
    assert not outcome.ok and "is not an e-mail address" in outcome.message
    assert not (settings.data_dir / "outbox").exists()


# ---- test sends: SMS -------------------------------------------------------------------------


def ta_settings(settings: Settings, server: TextAnywhereStandin, **overrides: Any) -> Settings:
    values = {
        "sms_provider": "textanywhere",
        "textanywhere_url": server.base_url,
        "textanywhere_client_id": CLIENT_ID,
        "sms_sender_id": "MySchool",
        "sms_timeout_seconds": 3.0,
        **overrides,
    }
    env = {"SCHOOLCOMMS_TEXTANYWHERE_CLIENT_PASS": CLIENT_PASS}
    return Settings(settings.data_dir, env=env, overrides=values)


def test_a_test_sms_with_the_file_gateway_is_written_and_says_so(settings: Settings) -> None:
    outcome = send_test_sms(settings, "07400 123456", engine=open_ops(settings), actor=ADMIN)
    assert outcome.ok and not outcome.left_the_machine
    assert outcome.message.startswith("Nothing left this machine")
    assert outcome.path is not None and str(outcome.path) in outcome.message
    (record,) = read_sms_outbox(settings.data_dir)
    assert record["to"] == "+447400123456" and "Test SMS from Sample School" in record["body"]
    assert outcome.balance is not None and "no credit to count" in outcome.balance.message
    (row,) = audit_rows(settings, "settings.test_send")
    assert row.target == "sms:+447400123456" and row.details["provider"] == "file"


def test_a_test_sms_goes_through_text_anywhere(
    settings: Settings, textanywhere_server: TextAnywhereStandin
) -> None:
    configured = ta_settings(settings, textanywhere_server)
    outcome = send_test_sms(configured, "+447700900123", engine=open_ops(settings), actor=ADMIN)
    assert outcome.ok and outcome.left_the_machine, outcome.message
    assert outcome.message.startswith("Text Anywhere accepted a test SMS to +447700900123")
    (request,) = textanywhere_server.sends()
    assert request.form["DestinationEx"] == "+447700900123"
    assert request.form["Client_Ref"] == outcome.provider_ref
    assert int(outcome.provider_ref or 0) >= 9_000_000_000_000_000, "never a real message id"
    assert outcome.balance is not None and outcome.balance.credit is None
    assert "does not report the credit balance" in outcome.balance.message
    assert not (settings.data_dir / "outbox").exists()


def test_no_credit_at_text_anywhere_is_reported(
    settings: Settings, textanywhere_server: TextAnywhereStandin
) -> None:
    textanywhere_server.credit = 0
    configured = ta_settings(settings, textanywhere_server)
    outcome = send_test_sms(configured, "07400 123456", engine=open_ops(settings), actor=ADMIN)
    assert not outcome.ok
    assert "NOT sent through Text Anywhere" in outcome.message
    assert "insufficient credits" in outcome.message
    assert CLIENT_PASS not in outcome.message


def test_a_wrong_password_is_reported_without_the_password(
    settings: Settings, textanywhere_server: TextAnywhereStandin
) -> None:
    configured = Settings(
        settings.data_dir,
        env={"SCHOOLCOMMS_TEXTANYWHERE_CLIENT_PASS": "wrong-Pa55"},
        overrides={
            "sms_provider": "textanywhere",
            "textanywhere_url": textanywhere_server.base_url,
            "textanywhere_client_id": CLIENT_ID,
        },
    )
    outcome = send_test_sms(configured, "07400 123456", engine=open_ops(settings), actor=ADMIN)
    assert not outcome.ok and "authentication failed" in outcome.message
    assert "wrong-Pa55" not in outcome.message
    assert textanywhere_server.accepted == {}


def test_the_balance_is_shown_where_the_provider_reports_it(
    settings: Settings, textanywhere_server: TextAnywhereStandin
) -> None:
    class Reporting(TextAnywhereSms):
        def balance(self) -> float | None:
            return 412.0

    configured = ta_settings(settings, textanywhere_server)
    balance = sms_balance(configured, Reporting(configured))
    assert (balance.credit, balance.message) == (412.0, "Text Anywhere reports 412 credits left.")
    outcome = send_test_sms(
        configured,
        "07400 123456",
        engine=open_ops(settings),
        actor=ADMIN,
        messenger=Reporting(configured),
    )
    assert outcome.ok and outcome.balance is not None and outcome.balance.credit == 412.0


def test_an_unknown_provider_and_a_bad_number_send_nothing(settings: Settings) -> None:
    broken = Settings(settings.data_dir, env={}, overrides={"sms_provider": "pigeon"})
    outcome = send_test_sms(broken, "07400 123456", engine=open_ops(settings), actor=ADMIN)
    assert not outcome.ok and "sms_provider" in outcome.message
    assert "not set up" in sms_balance(broken).message
    outcome = send_test_sms(settings, "12", engine=open_ops(settings), actor=ADMIN)
    assert not outcome.ok and "is not a mobile number" in outcome.message
    assert not (settings.data_dir / "outbox").exists()
    assert len(audit_rows(settings, "settings.test_send")) == 2


def test_mobile_numbers_are_made_e164() -> None:
    assert mobile_number(" 07400 123456 ") == "+447400123456"
    assert mobile_number("+44 7700 900123") == "+447700900123"
    with pytest.raises(ValueError, match="07700 900123"):
        mobile_number("")
