"""Missing-register reminders: the rule's boundaries, escalation targets, once-only
delivery, the CLI and the scheduler job, over a real warehouse and ops store.

One school day is loaded from canonical CSVs; `schoolcomms reminders --at … --dry-run
--json` says what is due, and real runs deliver notices (and their e-mails) into the
ops store: SQLite, and PostgreSQL (every test runs on both).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import Cli, minimal_school, write_extracts
from sqlalchemy import select

from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Message, Notice
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

UK = ZoneInfo("Europe/London")
# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store
DAY, YESTERDAY = "2026-11-20", "2026-11-19"
JSON_KEYS = {"lesson_id", "stage", "to_staff_id", "to_audience", "email", "title", "body"}


def person(sid: str, surname: str, email: str = "") -> dict:
    return {"staff_id": sid, "title": "Ms", "forename": "", "surname": surname, "email": email}


def lesson(
    lid: str,
    start: str,
    staff: str,
    *,
    subject: str = "Maths",
    class_id: str = "10A/Ma",
    kind: str = "lesson",
    period: str = "1",
    taken: str = "",
    day: str = DAY,
) -> dict:
    hour, minute = map(int, start.split(":"))
    return {
        "lesson_id": lid,
        "date": day,
        "start_time": start,
        "end_time": f"{hour:02d}:{minute + 10:02d}" if kind == "session" else f"{hour + 1}:00",
        "kind": kind,
        "period": period,
        "class_id": class_id,
        "subject": subject,
        "staff_id": staff,
        "room": "M1" if kind == "lesson" else "T10",
        "register_taken_at": f"{day} {taken}" if taken else "",
    }


def school() -> dict[str, list[dict[str, Any]]]:
    tables = minimal_school()
    tables["staff"] += [
        person("T3", "Nomail"),
        person("HM", "Head-Maths", "hm@school.example.com"),
        person("HY", "Head-Ten", "hy@school.example.com"),
        person("AO", "Officer", "ao@school.example.com"),
        person("TUT", "Tutor-Ten", "tut@school.example.com"),
    ]
    tables["classes"] += [
        {"class_id": "10A-REG", "subject": "", "year_group": "10", "staff_id": "TUT"},
        {"class_id": "MIX-REG", "subject": "", "year_group": "", "staff_id": "TUT"},
        {"class_id": "ART", "subject": "Art", "year_group": "10", "staff_id": "T3"},
    ]
    tables["class_members"] += [
        {"class_id": "10A-REG", "student_id": "S1"},
        {"class_id": "10A-REG", "student_id": "S2"},
        {"class_id": "MIX-REG", "student_id": "S1"},
        {"class_id": "MIX-REG", "student_id": "S3"},
    ]
    tables["responsibilities"] = [
        {"staff_id": "HM", "role": "head_of_department", "scope": "maths"},
        {"staff_id": "HY", "role": "head_of_year", "scope": "10"},
        {"staff_id": "AO", "role": "attendance_officer", "scope": ""},
    ]
    tables["lessons"] = [
        lesson("MA", "09:00", "T1"),
        lesson("EN", "09:00", "T2", subject="English", class_id="8B/En"),  # no HoD English
        lesson("AR", "09:00", "T3", subject="Art", class_id="ART"),  # T3 has no e-mail
        lesson("AM", "08:40", "TUT", subject="", class_id="10A-REG", kind="session", period="AM"),
        lesson("MX", "08:40", "TUT", subject="", class_id="MIX-REG", kind="session", period="AM"),
        lesson("NT", "09:00", ""),  # no teacher
        lesson("HS", "09:00", "HM"),  # the head of department's own lesson
        lesson("LT", "09:00", "T1", taken="09:20"),  # register taken later
        lesson("MK", "09:00", "T1"),  # register shown by a mark only (09:15)
        lesson("YS", "09:00", "T1", day=YESTERDAY),  # yesterday, never taken
    ]
    tables["marks"] = [
        {"lesson_id": "MK", "student_id": "S1", "mark": "/", "recorded_at": f"{DAY} 09:15"}
    ]
    return tables


@pytest.fixture
def day(cli: Cli, tmp_path: Path) -> Cli:
    """The school day loaded; the CLI ready to ask."""
    write_extracts(tmp_path / "day", school())
    result = cli("load", tmp_path / "day")
    assert result.exit_code == 0, result.output
    return cli


def due(cli: Cli, hhmm: str, date: str = DAY, env: dict | None = None) -> list[dict]:
    result = cli("reminders", "--at", f"{date} {hhmm}", "--dry-run", "--json", env=env)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def run(cli: Cli, hhmm: str, *extra: str) -> list[dict]:
    result = cli("reminders", "--at", f"{DAY} {hhmm}", "--json", *extra)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def about(plan: list[dict], lesson_id: str) -> list[tuple[str, str | None]]:
    return [
        (n["stage"], n["to_staff_id"] or n["to_audience"])
        for n in plan
        if n["lesson_id"] == lesson_id
    ]


def notices(settings: Settings) -> list[Notice]:
    with session_scope(open_ops(settings), immediate=False) as session:
        return list(session.scalars(select(Notice).order_by(Notice.key)))


def emails(settings: Settings) -> list[str]:
    with session_scope(open_ops(settings), immediate=False) as session:
        return sorted(session.scalars(select(Message.to_address)))


def test_teacher_is_reminded_n_minutes_after_the_start(day: Cli) -> None:
    assert about(due(day, "09:09"), "MA") == []
    plan = due(day, "09:10")
    assert about(plan, "MA") == [("teacher", "T1")]
    (notice,) = [n for n in plan if n["lesson_id"] == "MA"]
    assert set(notice) == JSON_KEYS
    assert notice["email"] == "t.teach@school.example.com" and notice["to_audience"] is None
    assert notice["title"] == "Register not taken: 10A/Ma Maths P1 09:00"
    for words in ("10A/Ma", "(Maths)", "period 1", "room M1", "09:00", "10 min"):
        assert words in notice["body"]
    assert "take the register in the MIS" in notice["body"]


def test_escalation_m_minutes_after_the_start_to_the_head_of_department(day: Cli) -> None:
    assert about(due(day, "09:29"), "MA") == [("teacher", "T1")]
    plan = due(day, "09:30")
    assert about(plan, "MA") == [("teacher", "T1"), ("escalation", "HM")]
    (escalation,) = [n for n in plan if n["lesson_id"] == "MA" and n["stage"] == "escalation"]
    assert escalation["email"] == "hm@school.example.com"
    assert "Ms Tara Teach (T1)" in escalation["body"] and "30 min" in escalation["body"]
    assert "head of department for Maths" in escalation["body"]


def test_settings_move_the_boundaries(day: Cli) -> None:
    env = {
        "SCHOOLCOMMS_REGISTER_REMINDER_MINUTES": "5",
        "SCHOOLCOMMS_REGISTER_ESCALATE_MINUTES": "15",
    }
    assert about(due(day, "09:04", env=env), "MA") == []
    assert about(due(day, "09:05", env=env), "MA") == [("teacher", "T1")]
    assert about(due(day, "09:15", env=env), "MA") == [("teacher", "T1"), ("escalation", "HM")]


def test_once_only_over_reruns_and_a_dry_run_after_a_real_run(day: Cli, settings: Settings) -> None:
    first = run(day, "09:10")
    assert {(n["lesson_id"], n["stage"]) for n in first} >= {
        ("MA", "teacher"),
        ("AM", "escalation"),
    }
    assert due(day, "09:10") == []  # a dry run right after prints []
    assert run(day, "09:10") == []  # a re-run delivers nothing more
    stored = notices(settings)
    assert len(stored) == len(first) == len({n.key for n in stored})
    assert "register:MA:teacher" in {n.key for n in stored}
    later = run(day, "09:40")  # only the escalations are new
    assert {n["stage"] for n in later} == {"escalation"}
    assert about(later, "MA") == [("escalation", "HM")]
    assert run(day, "09:45") == []
    keys = [n.key for n in notices(settings)]
    assert "register:MA:escalation:HM" in keys and len(keys) == len(set(keys))
    # One e-mail per notice with an address; T3 (no e-mail) has none.
    addresses = emails(settings)
    assert addresses.count("t.teach@school.example.com") == 3  # MA, LT, MK at 09:10
    assert addresses.count("hm@school.example.com") == 3  # HS at 09:10; MA, NT escalated
    assert len(first) == 11 and len(later) == 5


def test_two_concurrent_runs_deliver_each_notice_once(day: Cli, settings: Settings) -> None:
    from senders.reminders import plan_reminders, send_reminders

    at = dt.datetime(2026, 11, 20, 9, 40)
    engine = open_ops(settings)
    plans = [plan_reminders(settings, Warehouse.from_settings(settings), engine, at) for _ in "ab"]
    assert plans[0] == plans[1] and len(plans[0]) > 5
    delivered: list[list] = [[], []]

    def worker(i: int) -> None:
        delivered[i] = send_reminders(engine, settings, plans[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(delivered[0]) + len(delivered[1]) == len(plans[0])
    assert sorted(n.key for n in notices(settings)) == sorted(n.key for n in plans[0])
    assert plan_reminders(settings, Warehouse.from_settings(settings), engine, at) == []


def test_a_register_taken_later_stops_the_reminder(day: Cli) -> None:
    assert about(due(day, "09:10"), "LT") == [("teacher", "T1")]
    assert about(due(day, "09:19"), "LT") == [("teacher", "T1")]
    assert about(due(day, "09:20"), "LT") == []
    assert about(due(day, "09:45"), "LT") == []


def test_a_register_shown_by_marks_only(day: Cli) -> None:
    assert about(due(day, "09:14"), "MK") == [("teacher", "T1")]
    assert about(due(day, "09:15"), "MK") == []


def test_sessions_escalate_to_the_head_of_year_of_a_form_group(day: Cli) -> None:
    plan = due(day, "09:10")  # the AM sessions began at 08:40: 30 minutes
    assert about(plan, "AM") == [("teacher", "TUT"), ("escalation", "HY")]
    (am,) = [n for n in plan if n["lesson_id"] == "AM" and n["stage"] == "escalation"]
    assert "head of year for the form 10A-REG" in am["body"]
    assert am["title"] == "Register still missing: 10A-REG AM session 08:40"
    # MIX-REG has pupils of two forms: not a form group, so the attendance officer.
    assert about(plan, "MX") == [("teacher", "TUT"), ("escalation", "AO")]
    (mx,) = [n for n in plan if n["lesson_id"] == "MX" and n["stage"] == "escalation"]
    assert "attendance officer" in mx["body"] and "not a form group" in mx["body"]
    assert about(due(day, "09:09"), "AM") == [("teacher", "TUT")]


def test_a_lesson_with_no_teacher_goes_to_the_data_managers(day: Cli) -> None:
    result = day("reminders", "--at", f"{DAY} 09:40", "--dry-run", "--json")
    plan = json.loads(result.stdout)
    assert about(plan, "NT") == [("teacher", "data_manager"), ("escalation", "HM")]
    (notice,) = [n for n in plan if n["lesson_id"] == "NT" and n["stage"] == "teacher"]
    assert notice["to_staff_id"] is None and notice["email"] is None
    assert "no teacher" in notice["body"]
    assert "lesson NT" in result.stderr and "no teacher (staff_id)" in result.stderr


def test_a_teacher_without_email_still_gets_the_notice(day: Cli, settings: Settings) -> None:
    result = day("reminders", "--at", f"{DAY} 09:10", "--json")
    plan = json.loads(result.stdout)
    (notice,) = [n for n in plan if n["lesson_id"] == "AR"]
    assert (notice["to_staff_id"], notice["email"]) == ("T3", None)
    assert "Ms Nomail (T3) has no e-mail address" in result.stderr
    stored = {n.key: n for n in notices(settings)}
    assert stored["register:AR:teacher"].staff_id == "T3"
    assert stored["register:AR:teacher"].message_id is None
    assert stored["register:MA:teacher"].message_id is not None


def test_no_head_of_department_escalates_to_the_attendance_officers(day: Cli) -> None:
    result = day("reminders", "--at", f"{DAY} 09:40", "--dry-run", "--json")
    plan = json.loads(result.stdout)
    assert about(plan, "EN") == [("teacher", "T2"), ("escalation", "AO")]
    (en,) = [n for n in plan if n["lesson_id"] == "EN" and n["stage"] == "escalation"]
    assert "no head of department for English" in en["body"]
    assert en["email"] == "ao@school.example.com"
    assert "no head of department for English" in result.stderr
    # The head of department's own lesson is not escalated to them.
    assert about(plan, "HS") == [("teacher", "HM"), ("escalation", "AO")]


def test_no_attendance_officer_either_goes_to_the_senior_leaders(cli: Cli, tmp_path: Path) -> None:
    tables = school()
    tables["responsibilities"] = tables["responsibilities"][:1]  # the head of maths only
    write_extracts(tmp_path / "day", tables)
    assert cli("load", tmp_path / "day").exit_code == 0
    plan = due(cli, "09:40")
    assert about(plan, "EN") == [("teacher", "T2"), ("escalation", "senior_leader")]


def test_other_days_and_lessons_older_than_the_school_day_are_ignored(day: Cli) -> None:
    assert about(due(day, "09:40"), "YS") == []
    assert about(due(day, "09:40", date=YESTERDAY), "YS") == [
        ("teacher", "T1"),
        ("escalation", "HM"),
    ]
    assert about(due(day, "09:40", date=YESTERDAY), "MA") == []  # not yet that day
    # The school day is 08:00-18:00 (600 minutes): a 09:00 lesson is left alone after 19:00.
    assert about(due(day, "19:00"), "MA") == [("teacher", "T1"), ("escalation", "HM")]
    assert about(due(day, "19:01"), "MA") == []
    assert about(due(day, "18:41"), "AM") == []


def test_cli_dry_run_has_no_side_effects_and_text_output(day: Cli, settings: Settings) -> None:
    result = day("reminders", "--at", f"{DAY} 09:40", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would be delivered" in result.stdout and "teacher: T1 <t.teach@" in result.stdout
    assert notices(settings) == [] and emails(settings) == []
    bad = day("reminders", "--at", "20/11/2026 09:40")
    assert bad.exit_code == 2 and "YYYY-MM-DD HH:MM" in bad.stderr
    negative = day(
        "reminders", "--at", f"{DAY} 09:40", env={"SCHOOLCOMMS_REGISTER_REMINDER_MINUTES": "-1"}
    )
    assert negative.exit_code == 2 and "register_reminder_minutes" in negative.stderr


def test_cli_with_nothing_loaded_says_so(cli: Cli) -> None:
    result = cli("reminders", "--at", f"{DAY} 09:40")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith("Error:")


def test_cli_on_stale_registers_previews_but_does_not_deliver(day: Cli, settings: Settings) -> None:
    # At 10:30 the newest mark (09:15) is 75 minutes old: stale (freshness_minutes 30).
    plan = due(day, "10:30")
    assert plan
    result = day("reminders", "--at", f"{DAY} 10:30", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    assert "registers are stale" in result.stderr and "nothing was delivered" in result.stderr
    assert notices(settings) == []
    forced = run(day, "10:30", "--even-if-stale")
    assert forced == plan and len(notices(settings)) == len(plan)


def job_at(settings: Settings, hhmm: str):
    from scheduler.jobs import JobContext
    from scheduler.jobs_reminders import reminders_job

    moment = dt.datetime.combine(dt.date.fromisoformat(DAY), dt.time.fromisoformat(hhmm), UK)
    context = JobContext(
        settings, open_ops(settings), lambda: moment.astimezone(dt.UTC), threading.Event()
    )
    return reminders_job(context)


def test_job_skips_on_stale_registers_and_says_so(day: Cli, settings: Settings) -> None:
    result = job_at(settings, "10:30")
    assert result.outcome == "skipped"
    assert "registers are stale" in result.detail and "register reminders wait" in result.detail
    assert result.counts["fresh"] is False
    assert notices(settings) == []


def test_job_delivers_what_is_due_once(day: Cli, settings: Settings) -> None:
    result = job_at(settings, "09:40")
    assert result.outcome == "ok", result
    counts = result.counts
    stored = notices(settings)
    assert counts["sent"] == len(stored) == counts["reminders"] + counts["escalations"]
    assert counts["missing"] == 7  # MA EN AR AM MX NT HS (LT and MK were taken)
    assert counts["escalations"] == 7 and counts["fresh"] is True
    assert "missing register(s)" in result.detail
    again = job_at(settings, "09:40")
    assert again.outcome == "ok" and again.counts["sent"] == 0 and again.detail == ""


def test_remind_now_is_manual_repeatable_and_audited(day: Cli, settings: Settings) -> None:
    from senders.reminders import remind_now

    engine = open_ops(settings)
    warehouse = Warehouse.from_settings(settings)
    at = dt.datetime(2026, 11, 20, 9, 25)
    sent = remind_now(engine, settings, warehouse, ["MA", "LT", "NT"], "ms.head@example.org", at)
    # LT's register was taken at 09:20: no reminder.
    assert [(n.lesson_id, n.staff_id or n.audience) for n in sent] == [
        ("MA", "T1"),
        ("NT", "data_manager"),
    ]
    assert sent[0].key == "register:MA:manual:ms.head@example.org:2026-11-20T09:25"
    assert "ms.head@example.org asks you to take it" in sent[0].body
    assert remind_now(engine, settings, warehouse, ["MA"], "ms.head@example.org", at) == []
    again = remind_now(
        engine, settings, warehouse, ["MA"], "ms.head@example.org", at + dt.timedelta(minutes=1)
    )
    assert [n.lesson_id for n in again] == ["MA"]
    entries = recent_audit(engine, action="register.remind")
    assert len(entries) == 3 and set(entries["actor"]) == {"ms.head@example.org"}
    first = entries.iloc[-1]["details"]
    assert first["reminded"] == ["MA", "NT"] and first["not_missing"] == ["LT"]
    # The automatic reminder still goes: manual keys do not use it up.
    assert about(due(day, "09:25"), "MA") == [("teacher", "T1")]
    stored = {n.key: n for n in notices(settings)}
    assert stored[sent[0].key].created_by == "ms.head@example.org"
