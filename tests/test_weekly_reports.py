"""Weekly reports end to end: content, the e-mail over real SMTP, schedules, the job, the CLI.

The school is the hand-made week of tests/test_attendance_reports.py (16–22 November
2026), loaded into a real warehouse; schedules live in a real ops store (SQLite, and
PostgreSQL: each test runs on both); the e-mail goes through the real dispatcher to an
aiosmtpd server on 127.0.0.1. Times in November are GMT, so UK local time and UTC agree;
:func:`utc` converts all the same.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from postgres import DataDirs
from sqlalchemy import select
from test_attendance_reports import EVIL, load_school

from reports.weekly import REPORTS, build_report, previous_week, week_containing, week_label
from scheduler.jobs import JobContext
from scheduler.jobs_reports import weekly_reports_job
from schoolcomms import cli_reports
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Message
from schoolcomms.settings import Settings, SettingsError
from schoolcomms.warehouse import Warehouse
from senders.dispatcher import Dispatcher
from senders.messengers import build_messengers
from senders.report_mail import render_report_email
from senders.report_schedules import (
    ScheduleProblem,
    create_schedule,
    default_when,
    due_schedules,
    get_schedule,
    list_schedules,
    schedules_frame,
    seed_default_schedules,
    send_report,
    send_report_now,
    update_schedule,
)

UK = ZoneInfo("Europe/London")
# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store
WEEK = dt.date(2026, 11, 16)
MONDAY = dt.datetime(2026, 11, 23)  # the Monday after the week, naive UK local
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TO = ["head@school.example.org", "deputy@school.example.org"]


def utc(local: dt.datetime) -> dt.datetime:
    return local.replace(tzinfo=UK).astimezone(dt.UTC)


def at(day: int, hhmm: str) -> dt.datetime:
    """A naive UK local time in November 2026."""
    hours, minutes = map(int, hhmm.split(":"))
    return dt.datetime(2026, 11, day, hours, minutes)


def report_mails(engine: Any) -> list[tuple[str, str]]:
    """(idempotency key, to) of every report e-mail in the outbox."""
    with session_scope(engine, immediate=False) as s:
        rows = s.execute(
            select(Message.idempotency_key, Message.to_address)
            .where(Message.idempotency_key.like("report:%"))
            .order_by(Message.id)
        )
        return [(k, t) for k, t in rows]


@pytest.fixture
def school(settings: Settings) -> Settings:
    load_school(settings)
    return settings


def schedule(engine: Any, report: str = "messages", **fields: Any) -> Any:
    """A schedule created on Friday 20 November (so Monday 23rd 07:00 is its first slot)."""
    values: dict[str, Any] = {
        "report": report,
        "recipients": TO,
        "weekday": 0,
        "time_of_day": "07:00",
        "actor": "head@school.example.org",
        "now": utc(at(20, "12:00")),
        **fields,
    }
    return create_schedule(engine, **values)


def due_ids(engine: Any, now_local: dt.datetime, **kwargs: Any) -> list[tuple[int, str]]:
    found = due_schedules(engine, now_local, **kwargs)
    return [(s.id, f"{slot:%Y-%m-%d %H:%M}") for s, slot in found.due]


# ---- weeks and content ---------------------------------------------------------------------


def test_the_report_week_is_the_previous_complete_week() -> None:
    assert previous_week(MONDAY.replace(hour=7)) == WEEK
    assert previous_week(dt.datetime(2026, 11, 23, 0, 0)) == WEEK  # the week just ended
    assert previous_week(dt.datetime(2026, 11, 29, 23, 59)) == WEEK  # that week is not over
    assert previous_week(dt.date(2026, 11, 30)) == dt.date(2026, 11, 23)
    assert week_containing(dt.date(2026, 11, 22)) == WEEK
    assert week_label(WEEK) == "16–22 November 2026"
    assert week_label(dt.date(2026, 11, 30)) == "30 November – 6 December 2026"
    assert week_label(dt.date(2026, 12, 28)) == "28 December 2026 – 3 January 2027"
    assert list(REPORTS) == ["attendance", "behaviour", "missing_registers", "messages"]
    assert tuple(REPORTS) == cli_reports.REPORT_NAMES


def test_attendance_report_content(school: Settings) -> None:
    engine, warehouse = open_ops(school), Warehouse.from_settings(school)
    content = build_report("attendance", school, warehouse, engine, WEEK, MONDAY)
    assert content.intro.startswith("Attendance for the week 16–22 November 2026 was 91.1% of 45")
    tables = dict(content.tables)
    years = tables["By year group"]
    assert years["Year group"].tolist() == ["7", "8"]
    assert years["Attendance % (week)"].tolist() == [89.7, 100.0]
    # Since 1 September S1 also has the O of 9 November: 10 of 11, still above 90%.
    absentees = tables["Persistent absentees (below 90% since 1 September 2026)"]
    assert absentees["Pupil ID"].tolist() == ["S4", "S3"]
    assert absentees["Sessions missed"].tolist() == [2, 1]
    csv_rows = {r["Pupil ID"]: r for r in content.csv.to_dict("records")}
    assert csv_rows["S1"]["Attendance % (year to date)"] == 90.9
    assert [csv_rows[s]["Persistent absentee"] for s in ("S1", "S2", "S3", "S4", "S5")] == [
        "no",
        "no",
        "yes",
        "yes",
        "no",
    ]
    assert "AM/PM registration sessions" in content.notes[0]
    with pytest.raises(ValueError, match="starts on a Monday"):
        build_report("attendance", school, warehouse, engine, dt.date(2026, 11, 17), MONDAY)
    with pytest.raises(ValueError, match="no report called 'tea'"):
        build_report("tea", school, warehouse, engine, WEEK, MONDAY)


@pytest.mark.parametrize("by", ["year_group", "form"])
def test_group_figures_from_the_pupils_match_the_attendance_queries(
    school: Settings, by: str
) -> None:
    # The weekly report reads the marks once a range and totals the pupils itself: the
    # same figures, to the digit, as reports.attendance computes in SQL.
    import pandas as pd

    from reports import attendance
    from reports.weekly_attendance import group_attendance, overall

    warehouse = Warehouse.from_settings(school)
    start, end = dt.date(2026, 9, 1), WEEK + dt.timedelta(days=6)
    for first in (start, WEEK):
        pupils = attendance.attendance_by_pupil(warehouse, first, end)
        for threshold in (None, 90.0, 95.0):
            wanted = attendance.attendance_by_group(
                warehouse, first, end, by, threshold_percent=threshold
            )
            got = group_attendance(pupils, by, threshold).set_index(by).loc[wanted[by]]
            pd.testing.assert_frame_equal(
                got.reset_index()[list(wanted.columns)], wanted, check_exact=True
            )
        assert overall(pupils) == attendance.overall_attendance(warehouse, first, end)


def test_missing_registers_and_messages_reports(school: Settings) -> None:
    engine, warehouse = open_ops(school), Warehouse.from_settings(school)
    registers = build_report("missing_registers", school, warehouse, engine, WEEK, MONDAY)
    assert registers.intro.startswith("Every register of the week 16–22 November 2026")
    send_report_now(
        engine,
        school,
        warehouse,
        report="messages",
        recipients=TO,
        actor="t",
        now=utc(at(18, "10:00")),
    )
    week_of_now = dt.date(2026, 11, 16)
    messages = build_report("messages", school, None, engine, week_of_now, MONDAY)
    assert messages.intro.startswith("2 message(s) were created in the week 16–22 November")
    by_status = dict(messages.tables)["By channel and status"]
    assert by_status.to_dict("records") == [{"Channel": "email", "Status": "queued", "Messages": 2}]


def test_email_html_escapes_names_and_attaches_csv_and_png(school: Settings) -> None:
    engine, warehouse = open_ops(school), Warehouse.from_settings(school)
    content = build_report("behaviour", school, warehouse, engine, WEEK, MONDAY)
    subject, text, html, attachments = render_report_email(content, 'St <Mary>\'s & "All"')
    assert subject == 'St <Mary>\'s & "All": Weekly behaviour summary, week 16–22 November 2026'
    assert "&lt;b&gt;Zoë&lt;/b&gt; &amp; &quot;Co&quot;" in html
    assert "<b>Zoë" not in html and "<Mary>" not in html
    assert "St &lt;Mary&gt;&#x27;s &amp; &quot;All&quot;" in html
    assert EVIL in text  # the plain-text part is not HTML
    assert [a.name for a in attachments] == ["behaviour-2026-11-16.csv", "behaviour-2026-11-16.png"]
    assert attachments[1].data.startswith(PNG_SIGNATURE)
    rows = list(csv.reader(io.StringIO(attachments[0].data.decode("utf-8-sig"))))
    assert rows[0] == ["Type", "Polarity", "Incidents", "Pupils", "Points"]
    assert rows[1] == ["Disruption", "negative", "3", "2", "'-3"]  # formula-like: escaped


# ---- the e-mail over SMTP ---------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler keeping what arrived."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default)
            for e in self.envelopes
        ]


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def test_a_scheduled_report_arrives_by_smtp_with_table_csv_and_png(school, smtp) -> None:
    port, inbox = smtp
    settings = Settings(
        school.data_dir,
        env={},
        overrides={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "email_from": "office@school.example.org",
            "school_name": "Hill & Dale School",
        },
    )
    engine, warehouse = open_ops(settings), Warehouse.from_settings(settings)
    sched = schedule(engine, "attendance", recipients=["head@school.example.org"])
    [(found, slot)] = due_schedules(engine, MONDAY.replace(hour=7)).due
    outcome = send_report(engine, settings, warehouse, found, slot, now=utc(at(23, "07:00")))
    assert (outcome.queued, outcome.slot, outcome.week_start) == (1, "2026-11-23 07:00", WEEK)
    assert all(
        p.is_relative_to(settings.data_dir / "reports" / "2026-11-23") for p in outcome.attachments
    )
    dispatch_time = utc(at(23, "07:01"))  # the report was queued, due, at 07:00
    Dispatcher(engine, build_messengers(settings), settings, now=lambda: dispatch_time).run_once()

    [envelope] = inbox.envelopes
    assert envelope.rcpt_tos == ["head@school.example.org"]
    [msg] = inbox.messages()
    assert msg["Subject"] == "Hill & Dale School: Weekly attendance, week 16–22 November 2026"
    html = msg.get_body(("html",)).get_content()
    assert "<table" in html and "<th" in html and "Persistent absentees" in html
    assert ">Pat PupilS3</td>" in html and ">88.9</td>" in html
    assert "Hill &amp; Dale School" in html
    attachments = {a.get_filename(): a.get_payload(decode=True) for a in msg.iter_attachments()}
    assert set(attachments) == {"attendance-2026-11-16.csv", "attendance-2026-11-16.png"}
    assert attachments["attendance-2026-11-16.png"].startswith(PNG_SIGNATURE)
    rows = list(
        csv.DictReader(io.StringIO(attachments["attendance-2026-11-16.csv"].decode("utf-8-sig")))
    )
    content = build_report("attendance", settings, warehouse, engine, WEEK, MONDAY)
    assert [r["Pupil ID"] for r in rows] == content.csv["Pupil ID"].tolist()
    assert list(rows[0]) == list(content.csv.columns)
    got = {r["Pupil ID"]: (r["Attendance % (week)"], r["Persistent absentee"]) for r in rows}
    assert got == {
        "S1": ("100.0", "no"),
        "S2": ("90.0", "no"),
        "S3": ("88.9", "yes"),
        "S4": ("80.0", "yes"),
        "S5": ("100.0", "no"),
    }
    assert next(r for r in rows if r["Pupil ID"] == "S1")["Forename"] == EVIL
    assert report_mails(engine) == [
        (f"report:{sched.id}:2026-11-23 07:00:head@school.example.org", "head@school.example.org")
    ]


# ---- schedules: due logic ------------------------------------------------------------------------


def test_monday_0700_is_due_at_0700_not_0659_and_sent_once(school: Settings) -> None:
    engine, warehouse = open_ops(school), Warehouse.from_settings(school)
    sched = schedule(engine)
    assert due_ids(engine, at(23, "06:59")) == []
    assert due_ids(engine, at(23, "07:00")) == [(sched.id, "2026-11-23 07:00")]
    slot = at(23, "07:00")
    first = send_report(engine, school, warehouse, sched, slot, now=utc(at(23, "07:00")))
    again = send_report(engine, school, warehouse, sched, slot, now=utc(at(23, "07:05")))
    assert (first.queued, first.already_sent) == (2, False)
    assert (again.queued, again.already_sent) == (0, True)
    assert due_ids(engine, at(23, "07:05")) == []
    assert due_ids(engine, at(29, "23:59")) == []
    assert due_ids(engine, at(30, "07:00")) == [(sched.id, "2026-11-30 07:00")]
    assert sorted(t for _, t in report_mails(engine)) == sorted(TO)
    [audit] = recent_audit(engine, action="report.send").to_dict("records")
    assert audit["actor"] == "scheduler" and audit["details"]["queued"] == 2


def test_two_concurrent_runs_send_once(school: Settings) -> None:
    engine = open_ops(school)
    sched = schedule(engine)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def run() -> None:
        ctx = JobContext(school, engine, lambda: utc(at(23, "07:01")), threading.Event())
        barrier.wait()
        results.append(weekly_reports_job(ctx))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [r.outcome for r in results] == ["ok", "ok"], [r.error for r in results]
    assert sorted(r.counts["sent"] for r in results) == [0, 1]
    assert sum(r.counts["emails"] for r in results) == 2
    assert len(report_mails(engine)) == 2
    assert len(recent_audit(engine, action="report.send")) == 1
    assert get_schedule(engine, sched.id).last_slot == "2026-11-23 07:00"


def test_a_slot_missed_beyond_the_catch_up_is_skipped_and_recorded(school: Settings) -> None:
    engine = open_ops(school)
    late = schedule(engine)
    on_time = schedule(engine, time_of_day="07:01")
    found = due_schedules(engine, at(23, "19:01"))  # 12 h 1 min and 12 h after the slots
    assert [(s.id, slot) for s, slot in found.due] == [(on_time.id, at(23, "07:01"))]
    assert [(s.id, slot) for s, slot in found.skipped] == [(late.id, at(23, "07:00"))]
    assert get_schedule(engine, late.id).last_slot == "2026-11-23 07:00"
    [missed] = recent_audit(engine, action="report.missed").to_dict("records")
    assert missed["target"] == f"report_schedule:{late.id}"
    assert missed["details"]["late_minutes"] == 12 * 60 + 1
    later = due_schedules(engine, at(23, "19:30"))  # the missed one is recorded once
    assert [s.id for s, _ in later.skipped] == [on_time.id]  # due at 19:01, never sent
    assert due_ids(engine, at(30, "07:00")) == [(late.id, "2026-11-30 07:00")]
    assert report_mails(engine) == []


def test_the_job_counts_due_sent_and_skipped_late(school: Settings) -> None:
    engine = open_ops(school)
    schedule(engine, "attendance")
    schedule(engine, "behaviour", weekday=6, time_of_day="08:00")  # Sunday 22nd: 23 h late

    def job(now_local: dt.datetime) -> Any:
        return weekly_reports_job(
            JobContext(school, engine, lambda: utc(now_local), threading.Event())
        )

    first = job(at(23, "07:02"))
    assert first.outcome == "ok"
    assert first.counts == {"due": 1, "sent": 1, "emails": 2, "skipped_late": 1, "failed": 0}
    assert "sent 1 report(s)" in first.detail and "behaviour 2026-11-22 08:00" in first.detail
    second = job(at(23, "07:07"))
    assert second.counts == {"due": 0, "sent": 0, "emails": 0, "skipped_late": 0, "failed": 0}
    assert [k.rsplit(":", 1)[1] for k, _ in report_mails(engine)] == [t.lower() for t in TO]


def test_a_report_that_cannot_be_built_fails_alone_and_is_retried(settings: Settings) -> None:
    engine = open_ops(settings)  # nothing loaded: attendance cannot be built
    schedule(engine, "attendance")
    messages = schedule(engine, "messages")
    ctx = JobContext(settings, engine, lambda: utc(at(23, "07:00")), threading.Event())
    result = weekly_reports_job(ctx)
    assert result.outcome == "error"
    assert result.counts["sent"] == 1 and result.counts["failed"] == 1
    assert "No data has been loaded yet" in (result.error or "")
    assert [k for k, _ in report_mails(engine)][0].startswith(f"report:{messages.id}:")
    load_school(settings)
    retry = weekly_reports_job(ctx)
    assert (retry.outcome, retry.counts["sent"]) == ("ok", 1)


def test_changing_the_day_or_time_never_sends_a_week_twice(school: Settings) -> None:
    engine, warehouse = open_ops(school), Warehouse.from_settings(school)
    sched = schedule(engine)
    send_report(engine, school, warehouse, sched, at(23, "07:00"), now=utc(at(23, "07:00")))
    update_schedule(engine, sched.id, time_of_day="09:00", actor="head", now=utc(at(23, "08:00")))
    assert due_ids(engine, at(23, "09:00")) == []  # 16–22 November was sent at 07:00
    update_schedule(engine, sched.id, weekday="Wednesday", actor="head", now=utc(at(23, "09:30")))
    assert due_ids(engine, at(25, "09:00")) == []  # still the week of 16–22 November
    assert due_ids(engine, dt.datetime(2026, 12, 2, 9, 0)) == [(sched.id, "2026-12-02 09:00")]
    [change] = recent_audit(engine, action="report_schedule.update", limit=1).to_dict("records")
    assert change["details"] == {"weekday": {"old": 0, "new": 2}} and change["actor"] == "head"


def test_a_change_before_the_send_moves_it(school: Settings) -> None:
    engine = open_ops(school)
    sched = schedule(engine)
    update_schedule(engine, sched.id, time_of_day="6:30", actor="head", now=utc(at(23, "06:00")))
    assert get_schedule(engine, sched.id).time_of_day == "06:30"
    assert due_ids(engine, at(23, "06:29")) == []
    assert due_ids(engine, at(23, "06:30")) == [(sched.id, "2026-11-23 06:30")]


def test_new_and_switched_on_schedules_start_at_their_next_time(school: Settings) -> None:
    engine = open_ops(school)
    new = schedule(engine, now=utc(at(23, "10:00")))  # created after Monday's 07:00
    off = schedule(engine, enabled=False)
    assert due_ids(engine, at(23, "10:00")) == []
    update_schedule(engine, off.id, enabled=True, actor="head", now=utc(at(23, "08:00")))
    assert due_ids(engine, at(23, "18:00")) == []
    assert due_ids(engine, at(30, "07:00")) == [
        (new.id, "2026-11-30 07:00"),
        (off.id, "2026-11-30 07:00"),
    ]
    update_schedule(engine, off.id, enabled=False, actor="head")
    assert due_ids(engine, at(30, "07:00")) == [(new.id, "2026-11-30 07:00")]


# ---- schedules: validation, audit, seeding --------------------------------------------------------


def test_bad_recipients_time_day_and_report_are_refused_with_every_reason(school: Settings) -> None:
    engine = open_ops(school)
    with pytest.raises(ScheduleProblem) as raised:
        create_schedule(
            engine,
            report="tea",
            recipients="head@school.example.org, not-an-address; x@@y.org",
            weekday=7,
            time_of_day="25:00",
            actor="head",
        )
    text = " ".join(raised.value.problems)
    assert "no report called 'tea'" in text
    assert "'not-an-address' is not an e-mail address" in text and "'x@@y.org'" in text
    assert "0 (Monday) to 6 (Sunday), not 7" in text
    assert "'25:00' is not a time of day" in text
    with pytest.raises(ScheduleProblem, match="7pm"):
        create_schedule(
            engine, report="behaviour", recipients=TO, weekday=0, time_of_day="7pm", actor="h"
        )
    with pytest.raises(ScheduleProblem, match="at least one recipient"):
        create_schedule(
            engine, report="behaviour", recipients="", weekday=0, time_of_day="07:00", actor="h"
        )
    assert list_schedules(engine) == []
    assert recent_audit(engine, action="report_schedule.create").empty
    sched = schedule(
        engine, recipients="Head@School.example.org\nhead@school.example.org, b@school.example.org"
    )
    assert sched.recipients == ("Head@school.example.org", "b@school.example.org")
    with pytest.raises(ScheduleProblem, match="at least one recipient"):
        update_schedule(engine, sched.id, recipients=[], actor="h")
    assert get_schedule(engine, sched.id).recipients == sched.recipients  # unchanged
    off = update_schedule(engine, sched.id, recipients=[], enabled=False, actor="h")
    assert off.recipients == () and not off.enabled
    [created] = recent_audit(engine, action="report_schedule.create").to_dict("records")
    assert (
        created["actor"] == "head@school.example.org" and created["details"]["report"] == "messages"
    )


def test_seeding_one_schedule_per_report_at_the_default_time(
    settings: Settings, tmp_path: Path, ops_data_dir: DataDirs
) -> None:
    with_emails = Settings(
        ops_data_dir(tmp_path / "a"),
        env={},
        overrides={"data_manager_emails": "dm@school.example.org, oops"},
    )
    added = seed_default_schedules(open_ops(with_emails), with_emails)
    assert [s.report for s in added] == list(REPORTS)
    assert all(s.enabled and s.recipients == ("dm@school.example.org",) for s in added)
    assert all((s.weekday, s.time_of_day, s.created_by) == (0, "07:00", "setup") for s in added)
    assert seed_default_schedules(open_ops(with_emails), with_emails) == []  # nothing twice

    nobody = Settings(
        ops_data_dir(tmp_path / "b"), env={}, overrides={"weekly_report_default_time": "Fri 16:30"}
    )
    added = seed_default_schedules(open_ops(nobody), nobody)
    assert all(not s.enabled and s.recipients == () for s in added)
    assert {(s.weekday, s.time_of_day) for s in added} == {(4, "16:30")}
    frame = schedules_frame(open_ops(nobody))
    assert frame["next_send"].isna().all() and frame["last_sent_at"].isna().all()

    broken = Settings(tmp_path / "c", env={}, overrides={"weekly_report_default_time": "Someday"})
    with pytest.raises(SettingsError, match="weekly_report_default_time"):
        default_when(broken)


def test_send_now_has_its_own_key_per_minute(school: Settings) -> None:
    engine, warehouse = open_ops(school), Warehouse.from_settings(school)
    sched = schedule(engine, "behaviour")
    kwargs: dict[str, Any] = {"report": "behaviour", "actor": "head", "schedule_id": sched.id}
    first = send_report_now(
        engine, school, warehouse, recipients=TO, now=utc(at(24, "10:00")), **kwargs
    )
    same_minute = send_report_now(
        engine, school, warehouse, recipients=TO, now=utc(at(24, "10:00")), **kwargs
    )
    later = send_report_now(
        engine, school, warehouse, recipients=TO[:1], now=utc(at(24, "10:01")), **kwargs
    )
    assert (first.queued, same_minute.queued, later.queued) == (2, 0, 1)
    assert first.week_start == WEEK
    keys = [k for k, _ in report_mails(engine)]
    assert keys[0] == f"report:{sched.id}:now:2026-11-16:2026-11-24 10:00:head@school.example.org"
    assert schedules_frame(engine)["last_sent_at"].notna().all()
    with pytest.raises(ScheduleProblem, match="at least one e-mail address"):
        send_report_now(engine, school, warehouse, recipients=" ", **kwargs)


# ---- the CLI ---------------------------------------------------------------------------------


def test_cli_report_json_out_and_to(cli, settings: Settings, tmp_path: Path) -> None:
    assert cli("report", "attendance").exit_code == 2  # nothing loaded
    load_school(settings)
    result = cli("report", "attendance", "--week-of", "2026-11-18", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["week_start"], data["week_end"]) == ("2026-11-16", "2026-11-22")
    years = data["tables"][0]
    assert years["heading"] == "By year group"
    assert [(r["Year group"], r["Attendance % (week)"]) for r in years["rows"]] == [
        ("7", 89.7),
        ("8", 100.0),
    ]

    page = tmp_path / "behaviour.html"
    result = cli("report", "behaviour", "--week-of", "2026-11-22", "--out", page)
    assert result.exit_code == 0, result.output
    assert "6 behaviour incident(s)" in result.stdout
    saved = page.read_text(encoding="utf-8")
    assert "&lt;b&gt;Zoë&lt;/b&gt;" in saved and "data:image/png;base64," in saved

    result = cli("report", "messages", "--week-of", "2026-11-16", "--to", ",".join(TO))
    assert result.exit_code == 0, result.output
    assert "Queued 2 e-mail(s)" in result.stdout
    assert sorted(t for _, t in report_mails(open_ops(settings))) == sorted(TO)

    refused = cli("report", "messages", "--to", "nobody")
    assert refused.exit_code == 2 and "'nobody' is not an e-mail address" in refused.stderr
    refused = cli("report", "messages", "--week-of", "2026-13-01")
    assert refused.exit_code == 2 and "--week-of '2026-13-01' is not a date" in refused.stderr
    assert cli("report", "tea").exit_code == 2


def test_cli_report_schedules(cli, settings: Settings) -> None:
    result = cli("report-schedules")
    assert result.exit_code == 0 and "No weekly report schedules" in result.stdout
    engine = open_ops(settings)
    sched = schedule(engine, "behaviour", weekday=4, time_of_day="16:30")
    result = cli("report-schedules", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["id"], row["report"], row["day"], row["time"]) == (
        sched.id,
        "behaviour",
        "Friday",
        "16:30",
    )
    assert row["recipients"] == ", ".join(TO) and row["last_sent_at"] is None
    text = cli("report-schedules").stdout
    assert "behaviour" in text and "Friday 16:30" in text and "last sent never" in text
