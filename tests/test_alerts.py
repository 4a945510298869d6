"""Staff alerts: rules, evaluation, recipients, parents, delivery and the scheduler job.

A small school day (Friday 20 November 2026) is loaded into a real warehouse; rules are
stored in a real ops store (SQLite, and PostgreSQL: every test runs on both) and fired
for real (notices, e-mails and parent messages in the outbox). Behaviour incidents are loaded per test.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import minimal_school, write_extracts
from sqlalchemy import func, select

from pipelines.load import load_paths
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import (
    AlertFiring,
    AlertRule,
    AuditEntry,
    Message,
    Notice,
    PastoralEntry,
)
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse
from senders.alerts.deliver import fire
from senders.alerts.evaluate import PlannedAlert, plan_alerts
from senders.alerts.rules import (
    Rule,
    RuleProblem,
    create_group,
    create_rule,
    delete_group,
    delete_rule,
    list_groups,
    list_rules,
    seed_default_rules,
    set_enabled,
    update_group,
    update_rule,
)

DAY = "2026-11-20"  # a Friday; Monday is the 16th (ISO week 47)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text if " " in text else f"{DAY} {text}")


def lesson(lid: str, start: str, subject: str, staff: str, class_id: str, **kw: str) -> dict:
    return {
        "lesson_id": lid,
        "date": DAY,
        "start_time": start,
        "end_time": kw.get("end", f"{int(start[:2]) + 1:02d}:{start[3:]}"),
        "kind": kw.get("kind", "lesson"),
        "period": kw.get("period", "1"),
        "class_id": class_id,
        "subject": subject,
        "staff_id": staff,
        "register_taken_at": f"{DAY} {start}",
    }


def mark(lid: str, student: str, code: str, recorded: str | None = None) -> dict:
    return {
        "lesson_id": lid,
        "student_id": student,
        "mark": code,
        "recorded_at": "" if recorded is None else f"{DAY} {recorded}",
    }


def incident(iid: str, student: str, when: str, kind: str = "Disruption", **kw: str) -> dict:
    return {
        "incident_id": iid,
        "student_id": student,
        "occurred_at": when if " " in when else f"{DAY} {when}",
        "type": kind,
        "polarity": kw.get("polarity", "positive" if kind == "Praise" else "negative"),
        "points": kw.get("points", "1" if kind == "Praise" else "-1"),
        "location": kw.get("location", ""),
        "comment": kw.get("comment", ""),
    }


def school_day() -> dict[str, list[dict[str, Any]]]:
    """S1 and S2 are in form 10A (year 10), S3 in 8B (year 8). S1 truants (present at
    the AM session and P1, O at P3); S2 is never present; S3 is O at P1, late at P3."""
    tables = minimal_school()
    tables["staff"] += [
        {"staff_id": "T3", "title": "Mrs", "forename": "Hana", "surname": "Year",
         "email": "h.year@school.example.com"},
        {"staff_id": "T4", "title": "Mr", "forename": "Dan", "surname": "Head",
         "email": "d.head@school.example.com"},
        {"staff_id": "T5", "title": "Ms", "forename": "Olly", "surname": "Attend",
         "email": "o.attend@school.example.com"},
        {"staff_id": "T6", "title": "Mr", "forename": "Nomail", "surname": "Staff", "email": ""},
    ]  # fmt: skip
    tables["responsibilities"] = [
        {"staff_id": "T2", "role": "form_tutor", "scope": "10A"},
        {"staff_id": "T3", "role": "head_of_year", "scope": "10"},
        {"staff_id": "T4", "role": "head_of_department", "scope": "Maths"},
        {"staff_id": "T5", "role": "attendance_officer", "scope": ""},
    ]
    tables["lessons"] += [
        lesson("AM", "08:45", "", "T2", "", kind="session", period="AM", end="08:55"),
        lesson("MA1", "09:00", "Maths", "T1", "10A/Ma"),
        lesson("EN1", "09:00", "English", "T2", "8B/En"),
        lesson("MA3", "11:00", "Maths", "T1", "10A/Ma", period="3"),
        lesson("EN3", "11:00", "English", "T2", "8B/En", period="3"),
    ]
    tables["marks"] += [
        mark("AM", "S1", "/", "08:50"),
        mark("AM", "S2", "N", "08:50"),
        mark("MA1", "S1", "/", "09:05"),
        mark("MA1", "S2", "O", "09:05"),
        mark("EN1", "S3", "O", "09:05"),
        mark("MA3", "S1", "O", "11:05"),
        mark("MA3", "S2", "O", "11:05"),
        mark("EN3", "S3", "L"),  # no recorded_at: counts as known
    ]
    return tables


def load(settings: Settings, folder: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    report = load_paths(write_extracts(folder, tables), settings)
    assert report.ok, [p.as_text() for p in report.problems]


@pytest.fixture
def school(settings: Settings, tmp_path: Path) -> Settings:
    load(settings, tmp_path / "day", school_day())
    return settings


def behaviour(settings: Settings, tmp_path: Path, *rows: dict) -> None:
    load(settings, tmp_path / f"behaviour-{uuid.uuid4().hex}", {"behaviour": rows})


def rule(settings: Settings, name: str, kind: str, params: dict, notify: dict, **kw: Any) -> int:
    return create_rule(
        open_ops(settings),
        name=name,
        kind=kind,
        params=params,
        notify=notify,
        actor="test",
        settings=settings,
        **kw,
    )


def plan(settings: Settings, when: str, **kw: Any) -> list[PlannedAlert]:
    return plan_alerts(
        settings, Warehouse.from_settings(settings), open_ops(settings), at(when), **kw
    )


def keys(alerts: list[PlannedAlert]) -> list[str]:
    return sorted(a.key for a in alerts)


def count(settings: Settings, model: Any) -> int:
    with session_scope(open_ops(settings), immediate=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def fire_all(settings: Settings, alerts: list[PlannedAlert]) -> list[PlannedAlert]:
    return fire(open_ops(settings), settings, alerts, actor="test")


# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store

WEEK = {"threshold": 3, "types": [], "polarity": "negative", "window": "week"}
TUTOR = {"roles": ["form_tutor"]}


# ---- behaviour threshold -----------------------------------------------------------------


def test_calendar_week_threshold_fires_once_per_week(school: Settings, tmp_path: Path) -> None:
    behaviour(
        school,
        tmp_path,
        incident("B1", "S1", "2026-11-16 09:00"),
        incident("B2", "S1", "2026-11-17 09:00"),
        incident("B3", "S1", "2026-11-18 09:00"),
        incident("B4", "S1", "2026-11-19 09:00"),
        incident("B5", "S1", "2026-11-23 09:00"),
        incident("B6", "S1", "2026-11-24 09:00"),
        incident("B7", "S1", "2026-11-25 09:00"),
    )
    rule(school, "Three this week", "behaviour_threshold", WEEK, TUTOR)
    assert plan(school, "2026-11-17 16:00") == [], "two incidents: under the threshold"
    crossing = plan(school, "2026-11-18 09:00")
    assert keys(crossing) == ["S1:2026-W47"]
    assert crossing[0].details["incidents"] == 3
    assert crossing[0].details["crossing_incident_id"] == "B3"
    assert "3 negative incident(s) this week" in crossing[0].title
    assert [len(fire_all(school, crossing))] == [1]
    assert plan(school, "2026-11-19 10:00") == [], "a fourth in the same week: not again"
    assert plan(school, "2026-11-24 10:00") == [], "a new week starts the count again"
    again = plan(school, "2026-11-25 10:00")
    assert keys(again) == ["S1:2026-W48"]


def test_rolling_window_restarts_after_each_crossing(school: Settings, tmp_path: Path) -> None:
    behaviour(
        school,
        tmp_path,
        incident("R1", "S1", "2026-11-16 09:00"),
        incident("R2", "S1", "2026-11-17 09:00"),  # crossing: R1, R2
        incident("R3", "S1", "2026-11-18 09:00"),  # restart: R3 alone
        incident("R4", "S1", "2026-11-19 09:00"),  # crossing: R3, R4
        incident("R5", "S1", "2026-11-22 09:00"),  # R4 is out of the 3 days
        incident("X1", "S2", "2026-11-16 09:00"),
        incident("X2", "S2", "2026-11-19 09:00"),  # 4 days apart: never 2 within 3 days
    )
    params = {"threshold": 2, "polarity": "negative", "window": "rolling", "days": 3}
    rule(school, "Two in three days", "behaviour_threshold", params, TUTOR)
    assert plan(school, "2026-11-16 12:00") == []
    assert keys(plan(school, "2026-11-18 10:00")) == ["S1:R2"], "R2+R3 is no new crossing"
    assert keys(plan(school, "2026-11-19 10:00")) == ["S1:R2", "S1:R4"]
    assert keys(plan(school, "2026-11-22 10:00")) == [], "old crossings do not fire"
    fire_all(school, plan(school, "2026-11-17 10:00"))
    later = plan(school, "2026-11-19 10:00")
    assert keys(later) == ["S1:R4"]
    assert later[0].details["incident_ids"] == ["R3", "R4"]


@pytest.mark.parametrize(
    ("params", "fires"),
    [
        ({"threshold": 2, "types": ["disruption"], "polarity": "negative"}, False),
        ({"threshold": 2, "types": [], "polarity": "negative"}, True),
        ({"threshold": 2, "types": ["Disruption", "Late to lesson"]}, True),
        ({"threshold": 2, "types": [], "polarity": "positive"}, True),
        ({"threshold": 3, "types": [], "polarity": "positive"}, False),
        ({"threshold": 4, "types": [], "polarity": "any"}, True),
        ({"threshold": 5, "types": [], "polarity": "any"}, False),
    ],
)
def test_types_and_polarity_filter_the_count(
    school: Settings, tmp_path: Path, params: dict, fires: bool
) -> None:
    behaviour(
        school,
        tmp_path,
        incident("P1", "S2", "2026-11-16 09:00", "Disruption"),
        incident("P2", "S2", "2026-11-17 09:00", "Late to lesson"),
        incident("P3", "S2", "2026-11-18 09:00", "Praise"),
        incident("P4", "S2", "2026-11-19 09:00", "Praise"),
    )
    rule(school, "Filtered", "behaviour_threshold", params | {"window": "week"}, TUTOR)
    assert keys(plan(school, "12:00")) == (["S2:2026-W47"] if fires else [])


# ---- behaviour incident ------------------------------------------------------------------


def test_every_incident_of_a_type_today(school: Settings, tmp_path: Path) -> None:
    behaviour(
        school,
        tmp_path,
        incident("F0", "S3", "2026-11-19 10:30", "Fighting"),
        incident("F1", "S3", "10:30", "Fighting", location="Field", comment="At break."),
        incident("D1", "S1", "10:00", "Disruption"),
        incident("F2", "S2", "14:00", "Fighting"),  # after the evaluation time
    )
    params = {"types": ["Fighting"], "polarity": "negative"}
    rule(school, "Fights", "behaviour_incident", params, {"roles": ["head_of_year"]}, urgent=True)
    rule(school, "Fights (2 days)", "behaviour_incident", params | {"lookback_days": 2}, TUTOR)
    rule(school, "Positive fights", "behaviour_incident", params | {"polarity": "positive"}, TUTOR)
    found = {a.rule_name: a for a in plan(school, "12:00") if a.rule_name == "Fights"}
    alert = found["Fights"]
    assert (alert.key, alert.student_id, alert.urgent) == ("F1", "S3", True)
    assert "Fighting" in alert.title and "in Field" in alert.body and "At break." in alert.body
    by_rule = {}
    for a in plan(school, "12:00"):
        by_rule.setdefault(a.rule_name, []).append(a.key)
    assert by_rule == {"Fights": ["F1"], "Fights (2 days)": ["F0", "F1"]}


# ---- attendance --------------------------------------------------------------------------


def test_attendance_codes_known_at_the_time(school: Settings) -> None:
    rule(school, "O", "attendance_code", {"codes": ["o"]}, TUTOR)
    alerts = {a.student_id: a for a in plan(school, "11:10")}
    assert sorted(alerts) == ["S1", "S2", "S3"]
    assert alerts["S2"].key == "S2:2026-11-20"
    assert alerts["S2"].details["lessons"] == ["MA1", "MA3"]
    assert "P1 Maths at 09:00 (MA1): O" in alerts["S2"].body
    assert "P3 Maths at 11:00 (MA3): O" in alerts["S2"].body
    early = plan(school, "09:30")
    assert sorted(a.student_id for a in early) == ["S2", "S3"], "11:05 marks not known yet"
    assert early[0].details["lessons"] == ["MA1"]
    assert plan(school, "08:55") == []
    assert plan(school, "2026-11-21 11:10") == [], "another day's marks"


def test_attendance_code_groups_sessions_and_blank_times(school: Settings) -> None:
    rule(school, "Year 10", "attendance_code", {"codes": ["O"], "year_groups": ["10"]}, TUTOR)
    rule(school, "Form 8B", "attendance_code", {"codes": ["O"], "forms": ["8b"]}, TUTOR)
    rule(school, "N anywhere", "attendance_code", {"codes": ["N"]}, TUTOR)
    lessons_only = {"codes": ["N"], "include_sessions": False}
    rule(school, "N in lessons", "attendance_code", lessons_only, TUTOR)
    rule(school, "Late", "attendance_code", {"codes": ["L"]}, TUTOR)
    found: dict[str, list[str]] = {}
    for alert in plan(school, "09:30"):
        found.setdefault(alert.rule_name, []).append(str(alert.student_id))
    assert found == {"Year 10": ["S2"], "Form 8B": ["S3"], "N anywhere": ["S2"], "Late": ["S3"]}


def test_truancy_present_then_o_later(school: Settings) -> None:
    rule(school, "Truancy", "truancy", {}, {"roles": ["attendance_officer"]}, urgent=True)
    assert plan(school, "10:30") == [], "S1's O at P3 is not recorded until 11:05"
    alerts = plan(school, "11:05")
    assert [(a.student_id, a.lesson_id, a.key) for a in alerts] == [
        ("S1", "MA3", "S1:2026-11-20")
    ], "S2 was never present; S3 was O first and late after"
    assert "present at the AM session at 08:45" in alerts[0].body
    assert "O in P3 Maths at 11:00" in alerts[0].title


# ---- recipients --------------------------------------------------------------------------


def test_recipients_by_role_name_and_group_with_gaps(school: Settings) -> None:
    engine = open_ops(school)
    create_group(engine, name="Pastoral", staff_ids=["T3", "T6"], actor="test")
    create_group(engine, name="Empty", staff_ids=[], actor="test")
    notify = {
        "roles": [
            "form_tutor",
            "head_of_year",
            "head_of_department",
            "class_teacher",
            "attendance_officer",
            "safeguarding_lead",
        ],
        "staff_ids": ["T99"],
        "groups": ["Pastoral", "Empty"],
    }
    rule(school, "Truancy", "truancy", {}, notify)
    rule(school, "O", "attendance_code", {"codes": ["O"], "forms": ["8B"]}, notify)
    alerts = {a.rule_name: a for a in plan(school, "11:10")}
    truant = alerts["Truancy"]
    why = {r["staff_id"]: r["why"] for r in truant.recipients}
    assert why == {
        "T2": "form tutor (form 10A)",
        "T3": "head of year (year 10), group Pastoral",
        "T4": "head of department (Maths)",
        "T1": "class teacher (P3 Maths at 11:00)",
        "T5": "attendance officer",
        "T99": "named in the rule",
        "T6": "group Pastoral",
    }
    names = {r["staff_id"]: (r["name"], r["email"]) for r in truant.recipients}
    assert names["T4"] == ("Mr Dan Head", "d.head@school.example.com")
    assert truant.unresolved == [
        "nobody is recorded as safeguarding lead",
        "staff group 'Empty' has nobody in it",
        "staff member T99 is not in the staff list (notice only)",
        "no e-mail address for Mr Nomail Staff (notice only)",
    ]
    gaps = alerts["O"].unresolved
    assert "no form tutor for form 8B" in gaps and "no head of year for year 8" in gaps
    assert "no head of department for English" in gaps
    assert {r["staff_id"] for r in alerts["O"].recipients} == {"T2", "T3", "T5", "T6", "T99"}


def test_a_firing_nobody_receives_is_still_recorded(school: Settings) -> None:
    rule(school, "O in 8B", "attendance_code", {"codes": ["O"], "forms": ["8B"]}, TUTOR)
    alerts = plan(school, "11:10")
    assert [a.recipients for a in alerts] == [[]]
    assert alerts[0].unresolved == ["no form tutor for form 8B"]
    fired = fire_all(school, alerts)
    assert [(a.key, a.notices) for a in fired] == [("S3:2026-11-20", 0)]
    with session_scope(open_ops(school), immediate=False) as session:
        firing = session.scalars(select(AlertFiring)).one()
    assert firing.notices == 0 and firing.details["unresolved"] == ["no form tutor for form 8B"]
    assert plan(school, "11:10") == [] and count(school, Notice) == 0


# ---- delivery ----------------------------------------------------------------------------


def test_fire_delivers_notices_with_email_once(school: Settings) -> None:
    rule_id = rule(school, "Truancy", "truancy", {}, {"roles": ["attendance_officer"]}, urgent=True)
    alerts = plan(school, "11:10")
    fired = fire_all(school, alerts)
    assert [(a.key, a.notices) for a in fired] == [("S1:2026-11-20", 1)]
    assert fire_all(school, alerts) == [], "a re-run fires nothing"
    with session_scope(open_ops(school), immediate=False) as session:
        notice = session.scalars(select(Notice)).one()
        email = session.scalars(select(Message)).one()
    assert notice.key == f"alert:{rule_id}:S1:2026-11-20:T5"
    assert (notice.staff_id, notice.student_id, notice.urgent) == ("T5", "S1", True)
    assert notice.source == "alert" and notice.rule_id == rule_id
    assert notice.details["lesson_id"] == "MA3" and notice.lesson_id is None
    assert email.to_address == "o.attend@school.example.com" and notice.message_id == email.id
    assert (email.subject or "").startswith("[Urgent] Possible truancy: Ann Able (10A)")


def test_rule_without_email_gives_notices_only(school: Settings) -> None:
    rule(school, "Truancy", "truancy", {}, {"roles": ["attendance_officer"]}, email=False)
    fire_all(school, plan(school, "11:10"))
    assert count(school, Notice) == 1 and count(school, Message) == 0


def test_dry_run_changes_nothing_and_is_empty_after_a_real_run(school: Settings) -> None:
    rule(school, "O", "attendance_code", {"codes": ["O"]}, TUTOR)
    tables = (AlertFiring, Notice, Message, AuditEntry, PastoralEntry)
    before = [count(school, t) for t in tables]
    first = plan(school, "11:10")
    assert len(first) == 3 and [count(school, t) for t in tables] == before
    fire_all(school, first)
    assert plan(school, "11:10") == []


def test_concurrent_fires_fire_each_alert_once(school: Settings) -> None:
    rule(school, "O", "attendance_code", {"codes": ["O"]}, {"roles": ["attendance_officer"]})
    alerts = plan(school, "11:10")
    assert len(alerts) == 3
    start = threading.Barrier(4)
    results: list[list[PlannedAlert]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            results.append(fire(open_ops(school), school, alerts, actor="test"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(a.key for result in results for a in result) == keys(alerts)
    assert count(school, AlertFiring) == 3 and count(school, Notice) == 3
    assert count(school, Message) == 3


def test_an_unsaved_rule_previews_but_cannot_fire(school: Settings) -> None:
    draft = Rule(id=None, name="Draft", kind="truancy", notify={"roles": ["form_tutor"]})
    alerts = plan(school, "11:10", rules=[draft])
    assert [(a.rule_id, a.student_id) for a in alerts] == [(None, "S1")]
    with pytest.raises(ValueError, match="Save the rule 'Draft'"):
        fire_all(school, alerts)


# ---- parents -----------------------------------------------------------------------------


def _templates(settings: Settings) -> None:
    from senders.bank import save_template

    engine = open_ops(settings)
    save_template(
        engine,
        name="Fight - parents",
        channel="sms",
        subject=None,
        body="{{ student.forename }} was involved in {{ incident.type }} on "
        "{{ incident.date|ukdate('day') }}. {{ school.name }}",
        actor="test",
    )
    save_template(
        engine,
        name="Fight - email",
        channel="email",
        subject="About {{ student.name }}",
        body="Dear {{ contact.name }},\n\n{{ incident.type }} today.",
        actor="test",
    )


def test_parents_are_messaged_once_with_consent_respected(school: Settings, tmp_path: Path) -> None:
    _templates(school)
    behaviour(
        school,
        tmp_path,
        incident("F1", "S1", "10:30", "Fighting"),
        incident("F2", "S2", "10:40", "Fighting"),
    )
    parents = TUTOR | {"parents": True}
    params = {"types": ["Fighting"]}
    rule(school, "Fights", "behaviour_incident", params, parents, parent_template="Fight - parents")
    rule(
        school,
        "Fights mail",
        "behaviour_incident",
        params,
        parents,
        parent_template="Fight - email",
    )
    alerts = {(a.rule_name, a.student_id): a for a in plan(school, "12:00")}
    sms = alerts[("Fights", "S1")].parent_messages
    assert [(m["contact_id"], m["to"], m["channel"]) for m in sms] == [
        ("C1", "+447400200001", "sms")
    ]
    assert sms[0]["body"] == "Ann was involved in Fighting on Friday 20 November. Sample School"
    assert sms[0]["segments"] == 1 and sms[0]["cost_pence"] == 3
    mail = alerts[("Fights mail", "S2")]
    assert mail.parent_messages == []
    assert mail.parent_excluded == [
        {"student_id": "S2", "contact_id": "C2", "reason": "no e-mail consent"}
    ]
    assert "no parent can be messaged (see the contacts left out)" in mail.unresolved
    assert [m["to"] for m in alerts[("Fights mail", "S1")].parent_messages] == [
        "alice@home.example.com"
    ]
    fired = fire_all(school, list(alerts.values()))
    assert sum(a.parent_messages_queued or 0 for a in fired) == 3  # S1 sms, S2 sms, S1 mail
    fire_all(school, list(alerts.values()))
    with session_scope(open_ops(school), immediate=False) as session:
        messages = list(session.scalars(select(Message).where(Message.contact_id.is_not(None))))
        entries = list(session.scalars(select(PastoralEntry)))
    assert sorted((m.channel, m.to_address) for m in messages) == [
        ("email", "alice@home.example.com"),
        ("sms", "+447400200001"),
        ("sms", "+447400200002"),
    ]
    assert all(m.idempotency_key.startswith("alert-parent:") for m in messages)
    assert sorted(e.student_id for e in entries) == ["S1", "S1", "S2"]


def test_opted_out_parents_are_left_out(school: Settings, tmp_path: Path) -> None:
    from senders.outbox import add_opt_out

    _templates(school)
    behaviour(school, tmp_path, incident("F1", "S1", "10:30", "Fighting"))
    add_opt_out(open_ops(school), "sms", "+447400200001", "asked", "parent", "test")
    notify = TUTOR | {"parents": True}
    params = {"types": ["Fighting"]}
    rule(school, "Fights", "behaviour_incident", params, notify, parent_template="Fight - parents")
    (alert,) = plan(school, "12:00")
    assert alert.parent_messages == []
    assert alert.parent_excluded[0]["reason"] == "opted out of SMS"


# ---- validation, audit, groups -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "notify", "message"),
    [
        ("nonsense", {}, TUTOR, "Unknown kind 'nonsense': choose one of behaviour_threshold"),
        ("behaviour_threshold", {"threshold": 0}, TUTOR, "threshold is 0; it must be at least 1"),
        ("behaviour_threshold", {}, TUTOR, "give a threshold, e.g. 5"),
        ("behaviour_threshold", {"threshold": 2, "window": "rolling"}, TUTOR, "needs days"),
        ("behaviour_threshold", {"threshold": 2, "polarity": "bad"}, TUTOR, "polarity must be"),
        ("behaviour_incident", {"types": []}, TUTOR, "list the incident types"),
        ("attendance_code", {"codes": ["ZZ"]}, TUTOR, "'ZZ' is not an attendance code"),
        ("attendance_code", {"codes": []}, TUTOR, "list the attendance codes"),
        ("truancy", {"extra": 1}, TUTOR, "unknown setting(s) extra"),
        ("truancy", {}, {}, "Nobody would be told"),
        ("truancy", {}, {"roles": ["caretaker"]}, "unknown role 'caretaker'"),
        ("behaviour_incident", {"types": ["X"]}, {"roles": ["class_teacher"]}, "needs a lesson"),
        ("truancy", {}, {"groups": ["Nobody"]}, "no staff group called 'Nobody'"),
        ("truancy", {}, TUTOR | {"parents": True}, "no parent template is chosen"),
    ],
)
def test_validation_errors_are_clear_and_store_nothing(
    settings: Settings, kind: str, params: dict, notify: dict, message: str
) -> None:
    with pytest.raises(RuleProblem) as problem:
        rule(settings, "Bad", kind, params, notify)
    assert message in str(problem.value)
    assert count(settings, AlertRule) == 0 and count(settings, AuditEntry) == 0


@pytest.mark.usefixtures("ops_url")  # tmp_path / "data" on either store
def test_school_codes_count_and_names_are_unique(tmp_path: Path) -> None:
    settings = Settings(
        tmp_path / "data", env={}, overrides={"extra_attendance_codes": "ZZ:authorised"}
    )
    rule(settings, "School code", "attendance_code", {"codes": ["zz"]}, TUTOR)
    assert list_rules(open_ops(settings))[0]["params"]["codes"] == ["ZZ"]
    with pytest.raises(RuleProblem, match="already exists"):
        rule(settings, "School code", "truancy", {}, TUTOR)
    with pytest.raises(ValueError, match="actor"):
        create_rule(
            open_ops(settings), name="X", kind="truancy", params={}, notify=TUTOR, actor=" "
        )


def _audit(settings: Settings) -> list[tuple[str, str, str]]:
    with session_scope(open_ops(settings), immediate=False) as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(r.actor, r.action, r.target) for r in rows]


def test_every_rule_change_is_audited(settings: Settings) -> None:
    engine = open_ops(settings)
    rule_id = rule(settings, "Week", "behaviour_threshold", WEEK, TUTOR)
    stored = list_rules(engine)[0]
    assert stored["params"] == WEEK and stored["notify"] == TUTOR | {
        "staff_ids": [],
        "groups": [],
        "parents": False,
    }
    assert stored["summary"] == "3 or more negative incidents in a calendar week (Monday–Sunday)"
    assert update_rule(engine, rule_id, actor="amy", params=WEEK | {"threshold": 4}) == ["params"]
    assert update_rule(engine, rule_id, actor="amy", params=WEEK | {"threshold": 4}) == []
    assert set_enabled(engine, rule_id, False, "ben") and not set_enabled(
        engine, rule_id, False, "ben"
    )
    assert set_enabled(engine, rule_id, True, "ben")
    delete_rule(engine, rule_id, "cat")
    target = f"alert_rule:{rule_id}"
    assert _audit(settings) == [
        ("test", "alert_rule.create", target),
        ("amy", "alert_rule.update", target),
        ("ben", "alert_rule.disable", target),
        ("ben", "alert_rule.enable", target),
        ("cat", "alert_rule.delete", target),
    ]
    with session_scope(engine, immediate=False) as session:
        update = session.scalars(select(AuditEntry).where(AuditEntry.actor == "amy")).one()
    assert update.details["changes"]["params"]["old"]["threshold"] == 3
    assert update.details["changes"]["params"]["new"]["threshold"] == 4
    assert list_rules(engine) == []


def test_a_deleted_rule_id_is_never_reused(school: Settings) -> None:
    engine = open_ops(school)
    first = rule(
        school, "O", "attendance_code", {"codes": ["O"]}, {"roles": ["attendance_officer"]}
    )
    fire_all(school, plan(school, "11:10"))
    delete_rule(engine, first, "test")
    second = rule(
        school, "O again", "attendance_code", {"codes": ["O"]}, {"roles": ["attendance_officer"]}
    )
    assert second > first
    assert len(plan(school, "11:10")) == 3, "the old rule's firings are not the new rule's"


def test_staff_groups_are_audited_renamed_into_rules_and_kept_while_used(
    settings: Settings,
) -> None:
    engine = open_ops(settings)
    group_id = create_group(engine, name="Pastoral", staff_ids=["T1", "T1", "T2"], actor="amy")
    rule_id = rule(settings, "Truancy", "truancy", {}, {"groups": ["Pastoral"]})
    assert update_group(engine, group_id, actor="ben", name="Care team") == ["name"]
    assert list_rules(engine)[0]["notify"]["groups"] == ["Care team"]
    with pytest.raises(RuleProblem, match="used by the rule"):
        delete_group(engine, group_id, "cat")
    assert list_groups(engine)[0] | {"updated_at": None} == {
        "id": group_id,
        "name": "Care team",
        "staff_ids": ["T1", "T2"],
        "updated_at": None,
        "updated_by": "ben",
        "used_by": ["Truancy"],
    }
    delete_rule(engine, rule_id, "cat")
    delete_group(engine, group_id, "cat")
    actions = [a for _, a, _ in _audit(settings)]
    assert actions == [
        "staff_group.create",
        "alert_rule.create",
        "alert_rule.update",
        "staff_group.update",
        "alert_rule.delete",
        "staff_group.delete",
    ]


def test_starter_rules_are_added_once_and_valid(settings: Settings) -> None:
    engine = open_ops(settings)
    added = seed_default_rules(engine)
    assert "Truancy" in added and len(added) >= 3
    assert seed_default_rules(engine) == []
    assert all(r["enabled"] for r in list_rules(engine))


# ---- the scheduler job ---------------------------------------------------------------------


def _job(settings: Settings, utc: str) -> Any:
    from scheduler.jobs import JobContext
    from scheduler.jobs_alerts import alerts_job

    now = dt.datetime.fromisoformat(f"{utc}+00:00")  # November: UK time is UTC
    ctx = JobContext(settings, open_ops(settings), lambda: now, threading.Event())
    return alerts_job(ctx)


def test_job_skips_without_rules_or_data(settings: Settings) -> None:
    result = _job(settings, f"{DAY} 11:10")
    assert (result.outcome, result.detail) == ("skipped", "no alert rule is enabled")
    rule(settings, "Truancy", "truancy", {}, TUTOR)
    result = _job(settings, f"{DAY} 11:10")
    assert (result.outcome, result.detail) == ("skipped", "no data has been loaded yet")


def test_job_fires_and_waits_for_fresh_registers(school: Settings, tmp_path: Path) -> None:
    behaviour(school, tmp_path, incident("F1", "S1", "10:30", "Fighting"))
    rule(school, "Truancy", "truancy", {}, {"roles": ["attendance_officer"]}, urgent=True)
    rule(school, "Fights", "behaviour_incident", {"types": ["Fighting"]}, TUTOR)
    # 14:00: the newest mark is from 11:05, 55 minutes before the last lesson ended.
    stale = _job(school, f"{DAY} 14:00")
    assert stale.outcome == "ok"
    assert stale.counts["skipped_attendance"] == 1 and stale.counts["fresh"] is False
    assert stale.counts["fired"] == 1 and stale.counts["notices"] == 1
    assert "attendance rule(s) waiting (Truancy)" in stale.detail
    assert count(school, AlertFiring) == 1
    fresh = _job(school, f"{DAY} 11:10")
    assert fresh.counts == fresh.counts | {
        "rules": 2,
        "planned": 1,
        "fired": 1,
        "notices": 1,
        "parent_messages": 0,
        "skipped_attendance": 0,
        "fresh": True,
    }
    assert _job(school, f"{DAY} 11:15").counts["fired"] == 0


def test_the_benchmark_runs_on_a_loaded_data_dir(school: Settings) -> None:
    from benchmarks.alerts import RUNS, bench_alerts

    result = bench_alerts(school.data_dir)
    assert result["rules"] == len(result["seeded"]) >= 3
    assert result["at"] == "2026-11-20 14:00" and len(result["seconds"]) == RUNS
    assert result["alerts"] == sum(result["by_rule"].values()) > 0
    assert result["students"] == 3 and result["median_seconds"] > 0
    assert count(school, AlertFiring) == 0, "the benchmark fires nothing"
