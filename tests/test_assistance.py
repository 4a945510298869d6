"""Assistance requests: stored with an urgent office notice, open until acknowledged once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Message
from schoolcomms.settings import Settings
from senders.assistance import (
    AssistanceProblem,
    acknowledge,
    open_requests,
    request_assistance,
    requests_by,
)
from senders.notices import notices_for

AT = dt.datetime(2026, 11, 20, 10, 32, tzinfo=dt.UTC)
# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store


def test_a_request_raises_an_urgent_office_notice_and_no_email(settings: Settings) -> None:
    engine = open_ops(settings)
    assert settings["alert_emails"]  # e-mail is on, yet the office audience has no addresses
    request_id = request_assistance(
        engine,
        settings,
        location="  Room   M1 ",
        message="Pupil unwell, needs first aid",
        actor="t.teach@school.org",
        staff_id="T1",
        requester_name="Ms Tara Teach",
        now=AT,
    )
    (notice,) = notices_for(engine, audiences=["office"])
    assert notice["urgent"] and notice["source"] == "assistance"
    assert notice["title"] == "Assistance needed: Room M1"
    assert "Ms Tara Teach asked for help at Room M1 at 10:32." in notice["body"]
    assert "Pupil unwell, needs first aid" in notice["body"]
    assert notices_for(engine, staff_id="T1", audiences=["teacher"]) == []
    (row,) = open_requests(engine)
    assert (row["id"], row["location"], row["requested_by"], row["staff_id"]) == (
        request_id,
        "Room M1",
        "t.teach@school.org",
        "T1",
    )
    with session_scope(engine, immediate=False) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    audit = recent_audit(engine)
    assert audit["action"].tolist() == ["assistance.request"]
    assert audit["actor"].iloc[0] == "t.teach@school.org"


@pytest.mark.parametrize(
    ("location", "message", "words"),
    [("  ", "", "Say where"), ("x" * 300, "", "too long"), ("Hall", "y" * 2000, "too long")],
)
def test_a_request_needs_a_place_and_a_short_message(
    settings: Settings, location: str, message: str, words: str
) -> None:
    engine = open_ops(settings)
    with pytest.raises(AssistanceProblem, match=words):
        request_assistance(engine, settings, location=location, message=message, actor="t@s.org")
    assert open_requests(engine) == []
    assert notices_for(engine, everyone=True) == []


def test_acknowledging_closes_the_request_and_its_notice_once(settings: Settings) -> None:
    engine = open_ops(settings)
    first = request_assistance(engine, settings, location="M1", actor="a@s.org", now=AT)
    later = AT + dt.timedelta(minutes=1)
    second = request_assistance(engine, settings, location="Hall", actor="b@s.org", now=later)
    assert [r["id"] for r in open_requests(engine)] == [first, second]  # longest wait first
    assert acknowledge(engine, first, "office@s.org", now=AT + dt.timedelta(minutes=2))
    assert not acknowledge(engine, first, "head@s.org")  # someone already did
    assert [r["id"] for r in open_requests(engine)] == [second]
    notices = {n["title"]: n for n in notices_for(engine, audiences=["office"])}
    assert notices["Assistance needed: M1"]["read_at"] is not None
    assert notices["Assistance needed: Hall"]["read_at"] is None
    (mine,) = requests_by(engine, "a@s.org", since=AT - dt.timedelta(hours=1))
    assert mine["acknowledged_by"] == "office@s.org"
    assert requests_by(engine, "a@s.org", since=AT + dt.timedelta(hours=1)) == []
    assert [r["id"] for r in requests_by(engine, "b@s.org", since=later + dt.timedelta(1))] == [
        second  # still open: shown however old
    ]
    audit = recent_audit(engine)
    acks = audit[audit["action"] == "assistance.acknowledge"]
    assert acks["actor"].tolist() == ["office@s.org"]
    with pytest.raises(LookupError):
        acknowledge(engine, 999, "office@s.org")


def test_two_people_acknowledging_at_once_make_one_acknowledgement(settings: Settings) -> None:
    engine = open_ops(settings)
    request_id = request_assistance(engine, settings, location="M1", actor="a@s.org")
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def ack(who: str) -> None:
        barrier.wait()
        results.append(acknowledge(engine, request_id, who))

    threads = [threading.Thread(target=ack, args=(f"office{n}@s.org",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    audit = recent_audit(engine)
    assert (audit["action"] == "assistance.acknowledge").sum() == 1
