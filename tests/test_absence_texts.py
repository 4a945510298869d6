"""Automatic absence texts: every criterion of the rule and its negation, through the CLI.

Each test loads a small college day (real CSVs → real warehouse) and asks
`schoolcomms absence-texts --at … --dry-run --json` (or a real run) what is due.
"""

from __future__ import annotations

import json
import threading

import pytest
from conftest import write_extracts

DAY, YESTERDAY = "2026-11-20", "2026-11-19"
LINK = "https://www.example.org/report-absence"
# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store


def text(student: str, start: str) -> str:
    return (
        f"Student {student} did not attend their lesson today at {start}. If this is a "
        f"genuine absence, please notify us here: {LINK}"
    )


def student(sid: str, status: str = "C01", cohort: str = "16-19") -> dict:
    return {
        "student_id": sid,
        "forename": "Sam",
        "surname": sid,
        "status": status,
        "cohort": cohort,
    }


def lesson(lid: str, start: str, end: str, day: str = DAY, kind: str = "lesson") -> dict:
    return {"lesson_id": lid, "date": day, "start_time": start, "end_time": end, "kind": kind}


def mark(lid: str, sid: str, code: str, recorded: str | None) -> dict:
    return {
        "lesson_id": lid,
        "student_id": sid,
        "mark": code,
        "recorded_at": f"{DAY} {recorded}" if recorded and len(recorded) == 5 else recorded,
    }


def link(
    account: str,
    sid: str,
    mobile: str | None = "07400 100001",
    status: str = "active",
    registered: str = "Y",
) -> dict:
    return {
        "account_id": account,
        "student_id": sid,
        "mobile": mobile or "",
        "link_status": status,
        "registered": registered,
    }


LESSONS = [
    lesson("L1", "09:00", "10:00"),
    lesson("L2", "10:00", "11:00"),
    lesson("L3", "11:00", "12:00"),
    lesson("AM", "08:45", "09:00", kind="session"),
    lesson("Y1", "09:00", "10:00", day=YESTERDAY),
]


@pytest.fixture
def college(cli, tmp_path):
    """Load a day: ``college(students=…, marks=…, links=…)`` → the CLI, ready to ask."""

    def load(students, marks, links, lessons=LESSONS):
        folder = tmp_path / f"day{len(list(tmp_path.iterdir()))}"
        write_extracts(
            folder,
            {"students": students, "lessons": lessons, "marks": marks, "portal_links": links},
        )
        result = cli("load", folder)
        assert result.exit_code == 0, result.output
        return cli

    return load


def due(cli, at: str) -> list[dict]:
    result = cli("absence-texts", "--at", at, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run(cli, at: str) -> list[dict]:
    result = cli("absence-texts", "--at", at, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_first_absence_is_texted_twenty_minutes_after_the_lesson(college):
    cli = college([student("S1")], [mark("L1", "S1", "O", "09:10")], [link("A1", "S1")])
    assert due(cli, f"{DAY} 10:19") == []  # one minute early
    assert due(cli, f"{DAY} 10:20") == [
        {  # end + 20 minutes exactly
            "student_id": "S1",
            "lesson_id": "L1",
            "lesson_start": "09:00",
            "account_id": "A1",
            "mobile": "+447400100001",
            "text": text("S1", "09:00"),
        }
    ]


def test_only_the_first_o_lesson_and_only_if_its_register_was_in_time(college):
    cli = college(
        [student("S1"), student("S2"), student("S3")],
        [
            mark("L1", "S1", "O", "10:00"),
            mark("L2", "S1", "O", "10:05"),  # at the end: in time
            mark("L1", "S2", "O", "10:01"),
            mark("L2", "S2", "O", "10:05"),  # late: nothing today
            mark("L1", "S3", "/", "09:05"),
            mark("L2", "S3", "O", "10:30"),
        ],  # first O is L2
        [link("A1", "S1"), link("A2", "S2", "07400 100002"), link("A3", "S3", "07400 100003")],
    )
    plan = due(cli, f"{DAY} 11:20")
    assert [(t["student_id"], t["lesson_id"]) for t in plan] == [("S1", "L1"), ("S3", "L2")]


def test_a_mark_with_no_recorded_at_never_triggers(college):
    cli = college(
        [student("S1")],
        [mark("L1", "S1", "O", None), mark("L2", "S1", "O", "10:05")],
        [link("A1", "S1")],
    )
    assert due(cli, f"{DAY} 12:00") == []


def test_marks_not_yet_known_and_a_corrected_mark(college):
    # L1 was corrected to present at 09:40; L2's O is recorded at 10:50 (in time).
    cli = college(
        [student("S1")],
        [mark("L1", "S1", "/", "09:40"), mark("L2", "S1", "O", "10:50")],
        [link("A1", "S1")],
    )
    assert due(cli, f"{DAY} 10:45") == []  # L2's mark is not known yet (and not due)
    assert [t["lesson_id"] for t in due(cli, f"{DAY} 11:20")] == ["L2"]


@pytest.mark.parametrize(
    ("status", "cohort"), [("L01", "16-19"), ("C1", "16-19"), ("C011", "16-19"), ("C01", "adult")]
)
def test_only_active_16_19_students(college, status, cohort):
    cli = college(
        [student("S1", status, cohort)], [mark("L1", "S1", "O", "09:10")], [link("A1", "S1")]
    )
    assert due(cli, f"{DAY} 10:20") == []


def test_registration_sessions_and_yesterday_do_not_count(college):
    cli = college(
        [student("S1")],
        [
            mark("AM", "S1", "O", "08:50"),
            {
                "lesson_id": "Y1",
                "student_id": "S1",
                "mark": "O",
                "recorded_at": f"{YESTERDAY} 09:10",
            },
        ],
        [link("A1", "S1")],
    )
    assert due(cli, f"{DAY} 10:20") == []
    # Run as of yesterday, the same mark is "today" and due.
    assert [t["lesson_id"] for t in due(cli, f"{YESTERDAY} 10:20")] == ["Y1"]


def test_every_eligible_account_and_none_other(college):
    cli = college(
        [student("S1")],
        [mark("L1", "S1", "O", "09:10")],
        [
            link("A1", "S1", "07400 100001"),
            link("A2", "S1", "07400 100002"),
            link("A3", "S1", "07400 100003", status="suspended"),
            link("A4", "S1", "07400 100004", registered="N"),
            link("A5", "S1", mobile=None),
        ],
    )
    assert [t["account_id"] for t in due(cli, f"{DAY} 10:20")] == ["A1", "A2"]


def test_siblings_on_one_account_each_get_their_own_text(college):
    cli = college(
        [student("S1"), student("S2")],
        [mark("L1", "S1", "O", "09:10"), mark("L2", "S2", "O", "10:10")],
        [link("A1", "S1"), link("A1", "S2")],
    )
    plan = due(cli, f"{DAY} 11:20")
    assert [(t["student_id"], t["account_id"], t["lesson_start"]) for t in plan] == [
        ("S1", "A1", "09:00"),
        ("S2", "A1", "10:00"),
    ]


def test_latest_send_time(college):
    cli = college([student("S1")], [mark("L1", "S1", "O", "09:10")], [link("A1", "S1")])
    assert len(due(cli, f"{DAY} 18:00")) == 1  # exactly the latest time may still send
    assert due(cli, f"{DAY} 18:01") == []


def test_once_per_student_per_day_across_reruns_restarts_and_later_links(
    college, tmp_path, settings
):
    cli = college(
        [student("S1")],
        [mark("L1", "S1", "O", "09:10"), mark("L2", "S1", "O", "10:10")],
        [link("A1", "S1"), link("A2", "S1", "07400 100002")],
    )
    assert len(run(cli, f"{DAY} 10:20")) == 2
    assert due(cli, f"{DAY} 10:21") == []  # a dry run right after prints []
    assert run(cli, f"{DAY} 11:30") == []  # a later O lesson: nothing more today
    # A parent linked later the same day is not texted either.
    write_extracts(
        tmp_path / "links",
        {
            "portal_links": [
                link("A1", "S1"),
                link("A2", "S1", "07400 100002"),
                link("A9", "S1", "07400 100009"),
            ]
        },
    )
    assert cli("load", tmp_path / "links").exit_code == 0
    assert run(cli, f"{DAY} 12:00") == []
    messages = json.loads(cli("messages", "--json").stdout)
    assert sorted(m["to_address"] for m in messages) == ["+447400100001", "+447400100002"]
    # The pastoral log: one entry per text.
    from schoolcomms.ops.db import open_ops
    from senders.logbook import pastoral_history

    log = pastoral_history(open_ops(settings), "S1")
    assert len(log) == 2 and set(log["kind"]) == {"absence_text"}


def test_two_concurrent_runs_text_each_parent_once(college, settings):
    from schoolcomms.ops.db import open_ops
    from schoolcomms.warehouse import Warehouse
    from senders.absence import plan_at, send

    cli = college(
        [student(f"S{i}") for i in range(20)],
        [mark("L1", f"S{i}", "O", "09:10") for i in range(20)],
        [link(f"A{i}", f"S{i}", f"07400 1000{i:02d}") for i in range(20)],
    )
    import datetime as dt

    at = dt.datetime(2026, 11, 20, 10, 20)
    engine = open_ops(settings)
    plans = [plan_at(settings, Warehouse.from_settings(settings), engine, at) for _ in range(2)]
    queued: list[list] = [[], []]

    def worker(i: int) -> None:
        queued[i] = send(engine, settings, plans[i], at.date())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(queued[0]) + len(queued[1]) == 20
    messages = json.loads(cli("messages", "--json", "--limit", "100").stdout)
    assert len(messages) == 20 and len({m["to_address"] for m in messages}) == 20
