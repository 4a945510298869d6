"""Message-body retention: old bodies, attachments and outbox copies go; the log row stays.

Real SQLite ops store, real files under the data directory, the real CLI for the
end-to-end case (send, dispatch to the file outbox, then purge a year and more later).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import minimal_school, write_extracts
from sqlalchemy import func, select, update

from scheduler.jobs import JobContext
from scheduler.jobs_retention import JOB_NAME, message_retention_job
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import AuditEntry, Batch, Message
from schoolcomms.settings import REGISTRY, Settings, SettingsError
from senders.base import SendResult
from senders.outbox import NewMessage, claim, create_batch, enqueue, message_log, record_sent
from senders.retention import ACTION, purge_bodies

NOW = dt.datetime(2027, 11, 20, 12, 0, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=400)
RECENT = NOW - dt.timedelta(days=10)


def with_days(settings: Settings, days: Any) -> Settings:
    return Settings(settings.data_dir, env={}, overrides={"message_body_retention_days": days})


def message(key: str, channel: str = "sms", **fields: Any) -> NewMessage:
    values: dict[str, Any] = {
        "to": "+447400200001" if channel == "sms" else "alice@home.example.com",
        "body": f"Ann Able was absent from Maths ({key}).",
        "student_id": "S1",
        "contact_id": "C1",
        "cost_pence": 3.0 if channel == "sms" else None,
        "segments": 1 if channel == "sms" else None,
    }
    if channel == "email":
        values |= {"subject": "About Ann", "html": "<p>Ann Able was absent.</p>"}
    values.update(fields)
    return NewMessage(channel, idempotency_key=key, **values)


def queue_and_send(engine: Any, messages: list[NewMessage], at: dt.datetime) -> list[int]:
    """Queue ``messages`` at ``at`` and record them sent then (the outbox's own functions)."""
    ids = enqueue(engine, messages, "office@school.example.org", now=at)
    for channel in {m.channel for m in messages}:
        for out in claim(engine, channel=channel, worker="w", limit=100, lease_seconds=60, now=at):
            assert record_sent(engine, out.id, SendResult("file", f"ref-{out.id}"), "w", now=at)
    return ids


def rows(engine: Any) -> dict[int, Message]:
    with session_scope(engine, immediate=False) as session:
        found = session.scalars(select(Message)).all()
        session.expunge_all()
    return {m.id: m for m in found}


def audit_rows(engine: Any) -> list[AuditEntry]:
    with session_scope(engine, immediate=False) as session:
        found = session.scalars(select(AuditEntry).where(AuditEntry.action == ACTION)).all()
        session.expunge_all()
    return list(found)


def test_the_setting_is_registered_with_a_default_of_a_year() -> None:
    setting = REGISTRY["message_body_retention_days"]
    assert (setting.type, setting.default, setting.section) == ("int", 365, "messaging")
    assert len(setting.help) > 20 and "0" in setting.help


def test_old_finished_bodies_are_blanked_and_the_log_row_kept(settings: Settings) -> None:
    engine = open_ops(settings)
    [sms] = queue_and_send(engine, [message("old-sms")], OLD)
    [mail] = queue_and_send(engine, [message("old-mail", "email")], OLD)
    [recent] = queue_and_send(engine, [message("recent")], RECENT)
    [waiting] = enqueue(engine, [message("old-queued")], "office@school.example.org", now=OLD)
    before = rows(engine)

    result = purge_bodies(engine, settings, NOW, actor="scheduler")

    assert result.messages == 2 and sorted(result.message_ids) == sorted([sms, mail])
    after = rows(engine)
    for purged in (sms, mail):
        row, was = after[purged], before[purged]
        assert (row.body, row.html_body, row.subject, row.attachments) == (None, None, None, [])
        kept = ("status", "to_address", "cost_pence", "segments", "created_by", "student_id")
        kept += ("contact_id", "created_at", "sent_at", "updated_at", "channel", "batch_id")
        assert {k: getattr(row, k) for k in kept} == {k: getattr(was, k) for k in kept}
    assert after[recent].body == before[recent].body  # finished 10 days ago: kept
    assert after[waiting].body == before[waiting].body  # never finished: kept
    log = message_log(engine)
    assert set(log["id"]) == {sms, mail, recent, waiting}
    assert log.set_index("id").loc[sms, "status"] == "sent"
    assert log.set_index("id").loc[sms, "cost_pence"] == 3.0


def test_every_finished_status_is_purged_and_open_ones_are_not(settings: Settings) -> None:
    engine = open_ops(settings)
    ids = enqueue(
        engine,
        [
            message(f"m-{s}")
            for s in ("sent", "delivered", "failed", "cancelled", "queued", "sending")
        ],
        "cli",
        now=OLD,
    )
    names = ("sent", "delivered", "failed", "cancelled", "queued", "sending")
    statuses = dict(zip(ids, names, strict=True))
    with session_scope(engine) as session:
        for message_id, status in statuses.items():
            # updated_at given explicitly, or the ORM would stamp it now.
            where = Message.id == message_id
            session.execute(update(Message).where(where).values(status=status, updated_at=OLD))
    purge_bodies(engine, settings, NOW)
    after = rows(engine)
    assert {statuses[i] for i, m in after.items() if m.body is None} == {
        "sent",
        "delivered",
        "failed",
        "cancelled",
    }
    assert {after[i].status for i in after} == set(statuses.values())


def test_a_late_receipt_keeps_the_body_until_the_period_has_passed_since(settings) -> None:
    engine = open_ops(settings)
    [message_id] = queue_and_send(engine, [message("late")], OLD)
    with session_scope(engine) as session:
        row = session.get(Message, message_id)
        row.status, row.delivered_at, row.updated_at = "delivered", RECENT, RECENT
    assert purge_bodies(engine, settings, NOW).messages == 0
    assert purge_bodies(engine, settings, RECENT + dt.timedelta(days=366)).messages == 1


def test_attachment_files_are_deleted_only_inside_the_data_dir(
    settings: Settings, tmp_path: Path
) -> None:
    engine = open_ops(settings)
    folder = settings.data_dir / "reports" / "2026-11-16" / "attendance"
    folder.mkdir(parents=True)
    mine, shared = folder / "attendance.csv", folder / "chart.png"
    outside = tmp_path / "elsewhere" / "keep-me.csv"
    outside.parent.mkdir()
    for path in (mine, shared, outside):
        path.write_text("student_id,name\nS1,Ann Able\n")
    queue_and_send(
        engine,
        [
            message("report-1", "email", attachments=[mine, shared]),
            message("report-2", "email", attachments=[outside]),
            message("dotdot", "email", attachments=[settings.data_dir / ".." / "elsewhere" / "x"]),
        ],
        OLD,
    )
    queue_and_send(engine, [message("report-3", "email", attachments=[shared])], RECENT)

    result = purge_bodies(engine, settings, NOW)

    assert result.messages == 3 and result.attachment_files == 1
    assert not mine.exists()
    assert shared.exists()  # a recent message still needs it
    assert outside.exists()  # outside the data directory: never deleted
    later = purge_bodies(engine, settings, RECENT + dt.timedelta(days=366))
    assert later.attachment_files == 1 and not shared.exists()
    assert not folder.exists()  # emptied folders are removed too


def test_a_letter_batch_loses_its_pdf_and_template_text_once_all_its_letters_are_purged(
    settings: Settings,
) -> None:
    engine = open_ops(settings)
    pdf = settings.data_dir / "letters" / "batch-1.pdf"
    pdf.parent.mkdir(parents=True)
    pdf.write_bytes(b"%PDF-1.4 Dear Mrs Able, Ann's attendance...")
    letters = [
        message(f"letter-{i}", "letter", to=f"Mrs Able\n{i} High Street\nLS1 1AA", cost_pence=None)
        for i in (1, 2)
    ]
    batch_id = create_batch(
        engine,
        created_by="office@school.example.org",
        channel="letter",
        template_name=None,
        subject="Attendance of Ann Able",
        body_template="Dear {{ contact.name }}, Ann has missed school.",
        filter={"student_ids": ["S1"]},
        messages=letters,
        excluded=0,
        estimated_cost_pence=0,
        now=OLD,
    )
    with session_scope(engine) as session:
        session.get(Batch, batch_id).document_path = str(pdf)
    for out in claim(engine, channel="letter", worker="w", limit=10, lease_seconds=60, now=OLD):
        record_sent(engine, out.id, SendResult("letter", f"letter-{out.id}"), "w", now=OLD)

    result = purge_bodies(engine, settings, NOW)

    assert result.messages == 2 and result.letter_batches == 1 and not pdf.exists()
    with session_scope(engine, immediate=False) as session:
        batch = session.get(Batch, batch_id)
        assert (batch.body_template, batch.subject, batch.document_path) == ("", None, None)
        assert (batch.state, batch.total, batch.created_by) == (
            "done",
            2,
            "office@school.example.org",
        )


def test_old_file_outbox_copies_are_deleted(settings: Settings) -> None:
    engine = open_ops(settings)
    sms = settings.data_dir / "outbox" / "sms"
    email = settings.data_dir / "outbox" / "email"
    sms.mkdir(parents=True)
    email.mkdir(parents=True)
    old_day = sms / f"{OLD:%Y-%m-%d}.jsonl"
    new_day = sms / f"{RECENT:%Y-%m-%d}.jsonl"
    for path in (old_day, new_day):
        path.write_text(json.dumps({"to": "+447400200001", "body": "Ann was absent"}) + "\n")
    old_eml, new_eml = email / "1-aaaaaaaaaaaa.eml", email / "2-bbbbbbbbbbbb.eml"
    for path, when in ((old_eml, OLD), (new_eml, RECENT)):
        path.write_text("Subject: About Ann\n\nAnn was absent.\n")
        os.utime(path, (when.timestamp(), when.timestamp()))

    result = purge_bodies(engine, settings, NOW)

    assert result.outbox_files == 2
    assert not old_day.exists() and not old_eml.exists()
    assert new_day.exists() and new_eml.exists()


def test_each_purge_is_audited_once_with_counts_and_a_rerun_does_nothing(settings) -> None:
    engine = open_ops(settings)
    queue_and_send(engine, [message("a"), message("b")], OLD)
    first = purge_bodies(engine, settings, NOW, actor="scheduler")
    second = purge_bodies(engine, settings, NOW, actor="scheduler")
    assert (first.messages, second.messages) == (2, 0)
    [entry] = audit_rows(engine)
    assert entry.actor == "scheduler" and entry.at.tzinfo is not None
    assert entry.details["messages"] == 2 and entry.details["days"] == 365
    assert entry.details["cutoff"] == (NOW - dt.timedelta(days=365)).isoformat()
    assert sorted(entry.details["message_ids"]) == sorted(first.message_ids)


def test_zero_days_keeps_everything_and_a_negative_value_is_refused(settings) -> None:
    engine = open_ops(settings)
    queue_and_send(engine, [message("forever")], OLD - dt.timedelta(days=3000))
    result = purge_bodies(engine, with_days(settings, 0), NOW)
    assert not result.enabled and result.messages == 0
    assert all(m.body for m in rows(engine).values()) and audit_rows(engine) == []
    with pytest.raises(SettingsError, match="message_body_retention_days"):
        purge_bodies(engine, with_days(settings, -1), NOW)
    shorter = purge_bodies(engine, with_days(settings, 30), NOW)
    assert shorter.messages == 1


def test_the_retention_job_runs_the_purge_with_the_scheduler_clock(settings) -> None:
    engine = open_ops(settings)
    queue_and_send(engine, [message("job")], OLD)

    def context(s: Settings) -> JobContext:
        return JobContext(s, engine, now=lambda: NOW, stop=threading.Event())

    assert JOB_NAME == "message_retention"
    skipped = message_retention_job(context(with_days(settings, 0)))
    assert skipped.outcome == "skipped" and "for ever" in skipped.detail
    done = message_retention_job(context(settings))
    assert done.outcome == "ok" and done.counts["messages"] == 1
    assert "purged 1 message" in done.detail
    again = message_retention_job(context(settings))
    assert again.outcome == "ok" and again.counts["messages"] == 0 and again.detail == ""


def test_end_to_end_send_dispatch_then_purge_a_year_later(loaded, cli, tmp_path) -> None:
    """A real SMS and e-mail through the CLI and the file outbox, purged after 400 days."""
    contacts = minimal_school()["contacts"]
    contacts[1]["email_consent"] = "Y"
    write_extracts(tmp_path / "update", {"contacts": contacts})
    assert cli("load", tmp_path / "update").exit_code == 0
    body = "Dear {{ contact.name }}, {{ student.forename }} was late today."
    for channel in ("sms", "email"):
        args = ["send", "--channel", channel, "--students", "S1", "--body", body]
        if channel == "email":
            args += ["--subject", "About {{ student.forename }}"]
        result = cli(*args)
        assert result.exit_code == 0, result.output
    assert cli("dispatch").exit_code == 0
    outbox = loaded.data_dir / "outbox"
    assert list((outbox / "sms").glob("*.jsonl")) and list((outbox / "email").glob("*.eml"))
    engine = open_ops(loaded)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)

    result = purge_bodies(engine, loaded, later, actor="cli")

    assert result.messages == 2 and result.outbox_files == 2
    log = json.loads(cli("messages", "--json").stdout)
    assert sorted((m["channel"], m["status"]) for m in log) == [("email", "sent"), ("sms", "sent")]
    with session_scope(engine, immediate=False) as session:
        assert session.scalar(select(func.count()).where(Message.body.is_not(None))) == 0
    leftovers = [p for p in outbox.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert leftovers == []
    for path in loaded.data_dir.rglob("*"):
        # The ops store's own files too: freed space zeroed, the write-ahead log emptied.
        if path.is_file() and not path.name.endswith(".lock"):
            assert b"was late today" not in path.read_bytes(), path


def test_a_failed_message_whose_body_was_purged_is_never_retried(settings: Settings) -> None:
    from senders.outbox import retry_failed

    engine = open_ops(settings)
    old, recent = enqueue(engine, [message("old-f"), message("new-f")], "cli", now=OLD)
    with session_scope(engine) as session:
        session.execute(
            update(Message).where(Message.id == old).values(status="failed", updated_at=OLD)
        )
        session.execute(
            update(Message).where(Message.id == recent).values(status="failed", updated_at=NOW)
        )
    purge_bodies(engine, settings, NOW)
    assert rows(engine)[old].body is None and rows(engine)[recent].body is not None
    assert retry_failed(engine, message_ids=[old, recent], actor="office") == 1
    after = rows(engine)
    assert (after[old].status, after[recent].status) == ("failed", "queued")
