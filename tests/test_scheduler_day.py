"""A whole synthetic school day, minute by minute, through the real scheduler.

time-machine moves the clock from 07:55 to 18:05 on Friday 20 November 2026 (GMT, so UK
local time is UTC) and the real :class:`~scheduler.loop.SchedulerLoop`, with every job
of the real job table, ticks once a minute against a real warehouse and ops store. The
day holds the cases that matter: an absence text paused by stale registers and sent
when they are fresh again, a second student's text later, a mark recorded too late to
text about, a missing register reminded and escalated, a register never taken, a
truant, a behaviour threshold crossed. Half-way through the day the scheduler is
"killed" and a new one started. At the end, everything happened once.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import time_machine
from conftest import write_extracts
from sqlalchemy import select

from pipelines.load import load_paths
from schoolcomms.ops import db
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import JobRun, Message, Notice, PastoralEntry
from schoolcomms.settings import Settings
from senders.alerts.rules import create_rule
from senders.channels.files import read_sms_outbox

DAY = "2026-11-20"
MONDAY = "2026-11-16"


def at(hhmm: str, day: str = DAY) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")


def lesson(lid: str, cls: str, subject: str, staff: str, start: str, end: str, taken: str = ""):
    return {
        "lesson_id": lid,
        "date": DAY,
        "start_time": start,
        "end_time": end,
        "kind": "lesson",
        "class_id": cls,
        "subject": subject,
        "staff_id": staff,
        "register_taken_at": f"{DAY} {taken}" if taken else "",
    }


def marks(lid: str, when: str, **codes: str) -> list[dict[str, str]]:
    return [
        {"lesson_id": lid, "student_id": s, "mark": c, "recorded_at": f"{DAY} {when}"}
        for s, c in codes.items()
    ]


def incident(n: int, student: str, day: str, time: str, polarity: str = "negative"):
    return {
        "incident_id": f"INC{n}",
        "student_id": student,
        "occurred_at": f"{day} {time}",
        "type": "Disruption" if polarity == "negative" else "Praise",
        "polarity": polarity,
        "points": "-1" if polarity == "negative" else "1",
    }


def college_day() -> dict[str, list[dict[str, Any]]]:
    staff = [
        ("T1", "Maths", "Teach"),
        ("T2", "Head", "Maths-Physics"),
        ("T3", "Olly", "Attend"),
        ("T4", "Yara", "Year"),
        ("T5", "Phil", "Physics"),
        ("T6", "Hana", "History"),
    ]
    students = [
        {
            "student_id": s,
            "forename": f"Student{s}",
            "surname": "Day",
            "year_group": "12",
            "form": "12A",
            "status": "C01",
            "cohort": "16-19",
        }
        for s in ("S1", "S2", "S3", "S4", "S5", "S6")
    ]
    return {
        "staff": [
            {
                "staff_id": sid,
                "forename": fore,
                "surname": sur,
                "email": f"{sid.lower()}@college.example.com",
            }
            for sid, fore, sur in staff
        ],
        "students": students,
        "responsibilities": [
            {"staff_id": "T1", "role": "form_tutor", "scope": "12A"},
            {"staff_id": "T2", "role": "head_of_department", "scope": "Maths"},
            {"staff_id": "T2", "role": "head_of_department", "scope": "Physics"},
            {"staff_id": "T3", "role": "attendance_officer", "scope": ""},
            {"staff_id": "T4", "role": "head_of_year", "scope": "12"},
        ],
        "classes": [
            {"class_id": "C1", "subject": "Maths", "year_group": "12", "staff_id": "T1"},
            {"class_id": "C2", "subject": "Physics", "year_group": "12", "staff_id": "T5"},
            {"class_id": "C3", "subject": "History", "year_group": "12", "staff_id": "T6"},
        ],
        "class_members": [
            {"class_id": c, "student_id": s}
            for c, group in (("C1", "S1 S2 S3 S4"), ("C2", "S1 S2 S3 S4"), ("C3", "S5 S6"))
            for s in group.split()
        ],
        "lessons": [
            lesson("L1", "C1", "Maths", "T1", "09:00", "10:00", "09:05"),
            lesson("L2", "C2", "Physics", "T5", "10:00", "11:00", "10:50"),
            lesson("L3", "C1", "Maths", "T1", "11:00", "12:00", "11:05"),
            lesson("L6", "C3", "History", "T6", "12:00", "13:00", "12:05"),
            lesson("L4", "C1", "Maths", "T1", "13:00", "14:00"),  # never taken
            lesson("L7", "C3", "History", "T6", "13:00", "14:00", "13:05"),
            lesson("L5", "C2", "Physics", "T5", "14:00", "15:00", "14:05"),
        ],
        "marks": [
            *marks("L1", "09:05", S1="O", S2="/", S3="/"),
            *marks("L1", "10:30", S4="O"),  # recorded after the lesson ended: never a text
            *marks("L2", "10:50", S1="O", S2="/", S3="/", S4="/"),
            *marks("L3", "11:05", S1="O", S2="O", S3="/", S4="/"),  # S2 truants
            *marks("L6", "12:05", S5="/", S6="/"),
            *marks("L7", "13:05", S5="/", S6="/"),
            *marks("L5", "14:05", S1="/", S2="/", S3="/", S4="/"),
        ],
        "portal_links": [
            {
                "account_id": f"A{s[1]}",
                "student_id": s,
                "mobile": f"07400 10000{s[1]}",
                "link_status": "active",
                "registered": "Y",
            }
            for s in ("S1", "S2", "S4")
        ],
        "behaviour": [
            incident(1, "S3", MONDAY, "10:00"),
            incident(2, "S3", "2026-11-17", "10:00"),
            incident(3, "S3", "2026-11-18", "10:00"),
            incident(4, "S3", "2026-11-19", "10:00"),
            incident(5, "S3", "2026-11-19", "11:00", polarity="positive"),
            incident(6, "S3", DAY, "11:32"),  # the fifth negative one this week
        ],
    }


@pytest.fixture
def day_settings(tmp_path: Path) -> Settings:
    settings = Settings(tmp_path / "data", env={}, overrides={"freshness_minutes": 60})
    report = load_paths(write_extracts(tmp_path / "extracts", college_day()), settings)
    assert report.ok, [p.as_text() for p in report.problems]
    engine = open_ops(settings)
    create_rule(
        engine,
        name="Five negative incidents this week",
        kind="behaviour_threshold",
        params={"threshold": 5, "types": [], "polarity": "negative", "window": "week"},
        notify={"roles": ["form_tutor"]},
        actor="test",
    )
    create_rule(
        engine,
        name="Truancy",
        kind="truancy",
        params={},
        notify={"roles": ["head_of_year", "attendance_officer"]},
        urgent=True,
        actor="test",
    )
    yield settings
    db.close_all()


def local(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%H:%M")


def test_a_whole_day_happens_once_and_on_time_across_a_restart(day_settings: Settings) -> None:
    from scheduler.loop import SchedulerLoop

    settings = day_settings
    with time_machine.travel(at("07:55"), tick=False) as traveller:
        loop = SchedulerLoop(settings, threaded=False, worker="day:1")
        loop.prepare()
        moment = at("07:55")
        while moment <= at("18:05"):
            traveller.move_to(moment)
            if moment == at("12:00"):
                # Killed without a goodbye; a new scheduler picks up where it left off.
                loop = SchedulerLoop(settings, threaded=False, worker="day:2")
                loop.prepare()
            loop.tick()
            moment += dt.timedelta(minutes=1)

    engine = open_ops(settings)
    with session_scope(engine, immediate=False) as session:
        runs = list(session.scalars(select(JobRun)))
        sms = list(session.scalars(select(Message).where(Message.channel == "sms")))
        emails = list(session.scalars(select(Message).where(Message.channel == "email")))
        notices = list(session.scalars(select(Notice).order_by(Notice.id)))
        pastoral = list(session.scalars(select(PastoralEntry)))

    errors = [(r.job, r.slot, r.error) for r in runs if r.outcome == "error"]
    assert errors == []
    assert {r.worker for r in runs} == {"day:1", "day:2"}
    assert not [job for job, n in Counter((r.job, r.slot) for r in runs).items() if n > 1]

    # Absence texts: S1's (due 10:20) waited for fresh registers (10:30); S2's at 12:20.
    texts = {m.student_id: m for m in sms}
    assert sorted(texts) == ["S1", "S2"], "S4's O was recorded after the lesson ended"
    assert local(texts["S1"].created_at) == "10:30"
    assert local(texts["S2"].created_at) == "12:20"
    assert "at 09:00" in (texts["S1"].body or "") and "at 11:00" in (texts["S2"].body or "")
    assert texts["S1"].to_address == "+447400100001" and texts["S1"].status == "sent"
    assert len(read_sms_outbox(settings.data_dir)) == 2, "each text left once"
    assert sorted(p.student_id for p in pastoral if p.kind == "absence_text") == ["S1", "S2"]

    by_key = {n.key: n for n in notices}
    assert len(by_key) == len(notices)
    stale = [n for n in notices if n.audience == "data_manager"]
    assert len(stale) == 1 and local(stale[0].created_at) == "10:06"

    # L2's register: the 10:10 reminder waited out the stale spell; at 10:30 both went.
    l2 = sorted((n.staff_id, local(n.created_at)) for n in notices if n.lesson_id == "L2")
    assert l2 == [("T2", "10:30"), ("T5", "10:30")]
    # L4's register was never taken: reminder at 13:10, escalation at 13:30.
    l4 = sorted((n.staff_id, local(n.created_at)) for n in notices if n.lesson_id == "L4")
    assert l4 == [("T1", "13:10"), ("T2", "13:30")]
    assert not [n for n in notices if n.lesson_id in {"L1", "L3", "L5", "L6", "L7"}]

    truancy = sorted(
        (n.staff_id, local(n.created_at), n.urgent) for n in notices if n.student_id == "S2"
    )
    assert truancy == [("T3", "11:05", True), ("T4", "11:05", True)]
    behaviour = [(n.staff_id, local(n.created_at)) for n in notices if n.student_id == "S3"]
    assert behaviour == [("T1", "11:35")]

    staff_notices = [n for n in notices if n.staff_id]
    assert sorted(m.to_address for m in emails if (m.template_name or "").startswith("notice")) == (
        sorted(f"{n.staff_id.lower()}@college.example.com" for n in staff_notices)
    )
    assert all(m.status == "sent" for m in emails), [(m.to_address, m.error) for m in emails]
    assert len(list((settings.data_dir / "outbox" / "email").glob("*.eml"))) == len(emails)


def test_a_second_pass_over_the_same_day_adds_nothing(day_settings: Settings) -> None:
    """Re-running every job over the whole day again (say, a restored backup of job
    runs) queues no text, notice or e-mail twice."""
    from scheduler.jobs import JobContext, build_jobs

    settings = day_settings
    engine = open_ops(settings)
    counts = []
    for _ in range(2):
        for hhmm in ("10:31", "12:21", "13:31", "18:00"):
            now = at(hhmm)
            ctx = JobContext(settings, engine, lambda now=now: now, __import__("threading").Event())
            for spec in build_jobs(settings):
                if spec.name not in {"dispatch", "delivery"}:
                    result = spec.run(ctx)
                    assert result.outcome in {"ok", "skipped"}, (spec.name, result)
        with session_scope(engine, immediate=False) as session:
            counts.append(
                (
                    len(list(session.scalars(select(Message.id)))),
                    len(list(session.scalars(select(Notice.id)))),
                )
            )
    assert counts[0] == counts[1] and counts[0][0] > 0 and counts[0][1] > 0
