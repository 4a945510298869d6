"""The outbox store: idempotent queueing, opt-outs, leases, the retry policy, batch control.

Real ops stores (SQLite under ``tmp_path``, and a PostgreSQL database of the test's own);
times are injected (``now=``) so that leases and back-off can be checked exactly. Sending is not involved (see test_dispatcher.py).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import Batch, Message
from schoolcomms.settings import Settings
from senders.base import AccountProblem, RateLimited, Rejected, SendResult, StatusUpdate, Transient
from senders.outbox import (
    MESSAGE_LOG_COLUMNS,
    NewMessage,
    add_opt_out,
    apply_status_updates,
    backoff_seconds,
    batch_progress,
    cancel_batch,
    claim,
    create_batch,
    enqueue,
    is_opted_out,
    message_log,
    pause_batch,
    record_failure,
    record_sent,
    release,
    resume_batch,
    retry_failed,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LEASE = 60
SENT = SendResult(provider="test", provider_ref="ref-1", provider_status="accepted")
# Every test runs on SQLite and on the session's own PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store


@pytest.fixture
def engine(settings: Settings) -> Engine:
    """The ops store of ``settings``: SQLite, or this test's PostgreSQL database."""
    return open_ops(settings)


def sms(n: int, *, key: str | None = None, to: str | None = None, **extra: Any) -> NewMessage:
    return NewMessage(
        "sms",
        to or f"+4474000{n:05d}",
        f"Body {n}",
        student_id=f"S{n}",
        contact_id=f"C{n}",
        segments=1,
        encoding="gsm7",
        cost_pence=3.0,
        idempotency_key=key or f"key-{n}",
        **extra,
    )


def batch_of(engine: Engine, messages: list[NewMessage], by: str = "alice", **kw: Any) -> int:
    return create_batch(
        engine,
        created_by=by,
        channel=messages[0].channel if messages else "sms",
        template_name=None,
        subject=None,
        body_template="Body {{ n }}",
        filter={"students": "test"},
        messages=messages,
        excluded=kw.pop("excluded", 0),
        estimated_cost_pence=3.0 * len(messages),
        now=kw.pop("now", T0),
    )


def row(engine: Engine, message_id: int) -> Message:
    with session_scope(engine, immediate=False) as s:
        message = s.get(Message, message_id)
        assert message is not None
        return message


def batch_row(engine: Engine, batch_id: int) -> Batch:
    with session_scope(engine, immediate=False) as s:
        batch = s.get(Batch, batch_id)
        assert batch is not None
        return batch


def take(engine: Engine, worker: str = "w1", at: datetime = T0, limit: int = 100) -> list[int]:
    return [
        m.id
        for m in claim(
            engine, channel="sms", worker=worker, limit=limit, lease_seconds=LEASE, now=at
        )
    ]


# ---- queueing -------------------------------------------------------------------------


def test_same_keys_twice_store_one_row_each(engine: Engine) -> None:
    first = batch_of(engine, [sms(1), sms(2), sms(3)])
    again = batch_of(engine, [sms(1), sms(2), sms(3), sms(4)])
    with session_scope(engine, immediate=False) as s:
        keys = s.execute(
            select(Message.idempotency_key, func.count()).group_by(Message.idempotency_key)
        )
        assert dict(keys.all()) == {f"key-{n}": 1 for n in (1, 2, 3, 4)}
    assert batch_row(engine, first).total == 3
    assert batch_row(engine, again).total == 1
    audit = recent_audit(engine, action="send.queue")
    assert sorted(d["new"] for d in audit["details"]) == [1, 3]
    assert sorted(d["duplicates"] for d in audit["details"]) == [0, 3]
    # Re-running the same send queues nothing new; that batch is done at once.
    rerun = batch_of(engine, [sms(1), sms(2)])
    assert batch_row(engine, rerun).state == "done" and batch_row(engine, rerun).total == 0


def test_enqueue_returns_new_ids_only_and_dedupes_within_a_call(engine: Engine) -> None:
    ids = enqueue(engine, [sms(1), sms(1, to="+447400099999"), sms(2)], "scheduler", now=T0)
    assert len(ids) == 2
    assert enqueue(engine, [sms(1), sms(2)], "scheduler") == []
    assert row(engine, ids[0]).to_address == "+447400000001"  # the first of a key wins
    assert row(engine, ids[0]).status == "queued" and row(engine, ids[0]).created_by == "scheduler"


def test_a_message_needs_a_key_and_a_known_channel(engine: Engine) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        enqueue(engine, [sms(1, key=" ")], "scheduler")
    with pytest.raises(ValueError, match="channel"):
        enqueue(engine, [NewMessage("fax", "123", "x", idempotency_key="f")], "scheduler")
    with pytest.raises(ValueError, match="sms channel"):
        batch_of(engine, [sms(1), NewMessage("email", "a@b.c", "x", idempotency_key="e")])
    with pytest.raises(ValueError, match="Naive"):
        take(engine, at=datetime(2026, 1, 5, 9, 0))


def test_opted_out_addresses_are_never_queued(engine: Engine) -> None:
    assert add_opt_out(engine, "sms", "+44 7400 000002", "parent asked", "parent", "office")
    assert not add_opt_out(engine, "sms", "+447400000002", "again", "parent", "office")
    assert add_opt_out(engine, "email", "Parent@Example.COM", "bounced", "provider", "office")
    assert is_opted_out(engine, "sms", "+447400000002")
    assert is_opted_out(engine, "email", "parent@example.com")
    assert not is_opted_out(engine, "email", "+447400000002")
    batch = batch_of(engine, [sms(1), sms(2), sms(3)], excluded=2)
    assert batch_row(engine, batch).total == 2 and batch_row(engine, batch).excluded == 3
    email = NewMessage("email", "PARENT@example.com", "x", idempotency_key="e1")
    assert enqueue(engine, [email], "scheduler") == []
    log = message_log(engine)
    assert "+447400000002" not in set(log["to_address"]) and len(log) == 2
    audit = recent_audit(engine, action="send.queue")
    assert audit["details"][0]["opted_out"] == 1


def test_opting_out_cancels_what_is_queued_for_the_address(engine: Engine) -> None:
    batch = batch_of(engine, [sms(1, to="+44 7400 000001"), sms(2)])
    [email] = enqueue(
        engine, [NewMessage("email", "Ann@Example.com", "x", idempotency_key="e")], "s"
    )
    add_opt_out(engine, "sms", "+447400000001", "STOP reply", "provider", "provider")
    add_opt_out(engine, "email", "ann@example.com", "asked", "parent", "office")
    log = message_log(engine).set_index("id")
    assert log.loc[1, "status"] == "cancelled" and "Opted out" in log.loc[1, "error"]
    assert log.loc[2, "status"] == "queued"
    assert log.loc[email, "status"] == "cancelled"
    assert batch_progress(engine, batch)["counts"]["cancelled"] == 1
    assert list(recent_audit(engine, action="optout.add")["actor"]) == ["office", "provider"]


# ---- claiming -------------------------------------------------------------------------


def test_claim_leases_messages_and_a_second_worker_gets_nothing_while_leased(
    engine: Engine,
) -> None:
    batch_of(engine, [sms(n) for n in range(1, 6)])
    first = take(engine, "w1", limit=3)
    assert len(first) == 3
    m = row(engine, first[0])
    assert (m.status, m.lease_owner, m.attempts) == ("sending", "w1", 1)
    assert m.lease_until == T0 + timedelta(seconds=LEASE)
    second = take(engine, "w2", at=T0 + timedelta(seconds=LEASE - 1))
    assert len(second) == 2 and not set(first) & set(second)
    assert take(engine, "w3", at=T0 + timedelta(seconds=LEASE - 1)) == []


def test_claim_returns_outgoing_messages_in_due_order(engine: Engine) -> None:
    late = enqueue(engine, [sms(1)], "scheduler", now=T0 + timedelta(seconds=5))
    early = enqueue(engine, [sms(2)], "scheduler", now=T0)
    assert take(engine, at=T0) == early  # the later one is not due yet
    got = claim(
        engine,
        channel="sms",
        worker="w",
        limit=5,
        lease_seconds=LEASE,
        now=T0 + timedelta(seconds=5),
    )
    assert [m.id for m in got] == late
    assert (got[0].to, got[0].body, got[0].idempotency_key) == ("+447400000001", "Body 1", "key-1")
    assert got[0].student_id == "S1" and got[0].channel == "sms"
    assert claim(engine, channel="email", worker="w", limit=5, lease_seconds=LEASE, now=T0) == []


def test_an_expired_lease_is_claimed_again_and_the_late_record_is_ignored(engine: Engine) -> None:
    [mid] = enqueue(engine, [sms(1)], "scheduler", now=T0)
    assert take(engine, "crashed") == [mid]
    assert take(engine, "w2", at=T0 + timedelta(seconds=LEASE)) == []  # not yet expired
    assert take(engine, "w2", at=T0 + timedelta(seconds=LEASE + 1)) == [mid]
    assert row(engine, mid).attempts == 2 and row(engine, mid).lease_owner == "w2"
    assert record_sent(engine, mid, SENT, "crashed") is False
    assert record_failure(engine, mid, Rejected("late"), "crashed") is None
    assert (row(engine, mid).status, row(engine, mid).lease_owner) == ("sending", "w2")
    assert record_sent(engine, mid, SENT, "w2", now=T0 + timedelta(seconds=70)) is True
    m = row(engine, mid)
    assert (m.status, m.provider_ref, m.lease_owner, m.sent_at) == (
        "sent",
        "ref-1",
        None,
        T0 + timedelta(seconds=70),
    )
    assert record_sent(engine, mid, SENT, "w2") is False  # recorded once only


def test_paused_and_cancelled_batches_are_not_claimed(engine: Engine) -> None:
    paused = batch_of(engine, [sms(1)])
    cancelled = batch_of(engine, [sms(2)])
    running = batch_of(engine, [sms(3)])
    assert pause_batch(engine, paused, "alice", "checking the wording")
    cancel_batch(engine, cancelled, "alice")
    [only] = take(engine)
    assert row(engine, only).batch_id == running
    assert resume_batch(engine, paused, "alice")
    assert [row(engine, i).batch_id for i in take(engine)] == [paused]


def test_release_gives_back_untried_messages(engine: Engine) -> None:
    ids = enqueue(engine, [sms(1), sms(2)], "scheduler", now=T0)
    take(engine, "w1")
    assert release(engine, ids, "other", now=T0) == 0
    later = T0 + timedelta(seconds=30)
    assert release(engine, ids, "w1", not_before=later, now=T0) == 2
    m = row(engine, ids[0])
    assert (m.status, m.attempts, m.lease_owner, m.next_attempt_at) == ("queued", 0, None, later)


# ---- the retry policy -----------------------------------------------------------------


def test_rejected_fails_at_once_with_the_reason(engine: Engine) -> None:
    batch = batch_of(engine, [sms(1)])
    [mid] = take(engine)
    error = Rejected("Invalid number", provider_status="21211")
    assert record_failure(engine, mid, error, "w1") == "failed"
    m = row(engine, mid)
    assert m.status == "failed" and "Invalid number" in (m.error or "")
    assert m.provider_status == "21211"
    assert batch_row(engine, batch).state == "done"


def test_transient_backs_off_exponentially_then_fails_after_max_attempts(engine: Engine) -> None:
    [mid] = enqueue(engine, [sms(1)], "scheduler", now=T0)
    now = T0
    for attempt in (1, 2, 3):
        assert take(engine, at=now) == [mid]
        status = record_failure(
            engine, mid, Transient("timeout"), "w1", now=now, max_attempts=4, retry_base_seconds=30
        )
        assert status == "queued"
        m = row(engine, mid)
        delay = (m.next_attempt_at - now).total_seconds()
        nominal = 30 * 2 ** (attempt - 1)
        assert 0.5 * nominal <= delay <= 1.5 * nominal, (attempt, delay)
        assert take(engine, at=m.next_attempt_at - timedelta(seconds=1)) == []
        now = m.next_attempt_at
    assert take(engine, at=now) == [mid]
    assert record_failure(engine, mid, Transient("timeout"), "w1", max_attempts=4) == "failed"
    m = row(engine, mid)
    assert (
        m.attempts == 4 and m.error is not None and m.error.startswith("Gave up after 4 attempts")
    )


def test_backoff_is_capped_at_an_hour_before_jitter() -> None:
    rng = random.Random(7)
    delays = [backoff_seconds(30, 30.0, rng) for _ in range(200)]
    assert min(delays) >= 1800 and max(delays) <= 5400
    assert backoff_seconds(1, 30.0, random.Random(1)) != backoff_seconds(1, 30.0, random.Random(2))


def test_rate_limited_retries_exactly_after_retry_after(engine: Engine) -> None:
    [mid] = enqueue(engine, [sms(1)], "scheduler", now=T0)
    take(engine)
    assert record_failure(engine, mid, RateLimited("429", retry_after=42), "w1", now=T0) == "queued"
    m = row(engine, mid)
    assert m.next_attempt_at == T0 + timedelta(seconds=42)
    assert m.attempts == 0  # the provider pacing us is not a failed attempt
    take(engine, at=m.next_attempt_at)
    record_failure(engine, mid, RateLimited("429"), "w1", now=T0, retry_base_seconds=10)
    m = row(engine, mid)
    assert m.attempts == 1 and 5 <= (m.next_attempt_at - T0).total_seconds() <= 15


def test_account_problem_pauses_the_batch_and_keeps_messages_queued(engine: Engine) -> None:
    batch = batch_of(engine, [sms(1), sms(2)])
    first, second = take(engine)
    error = AccountProblem("Authentication failed", provider_status="401")
    assert record_failure(engine, first, error, "w1", now=T0, retry_base_seconds=30) == "queued"
    assert release(engine, [second], "w1", now=T0) == 1
    m = row(engine, first)
    assert (m.status, m.attempts) == ("queued", 0)
    b = batch_row(engine, batch)
    assert b.state == "paused" and "Authentication failed" in b.state_reason
    assert take(engine, at=T0 + timedelta(hours=1)) == []
    assert list(recent_audit(engine, action="batch.pause")["target"]) == [f"batch:{batch}"]
    assert resume_batch(engine, batch, "alice")
    assert len(take(engine, at=datetime.now(UTC))) == 2  # due at once after a resume


def test_a_batch_pauses_after_too_many_errors_in_a_row(engine: Engine) -> None:
    batch = batch_of(engine, [sms(n) for n in range(1, 8)])
    ids = take(engine)

    def fail(mid: int) -> None:
        record_failure(engine, mid, Rejected("no"), "w1", pause_after=3)

    fail(ids[0])
    fail(ids[1])
    record_sent(engine, ids[2], SENT, "w1")  # a success resets the run
    fail(ids[3])
    fail(ids[4])
    assert batch_row(engine, batch).state == "running"
    assert batch_row(engine, batch).consecutive_errors == 2
    fail(ids[5])
    b = batch_row(engine, batch)
    assert b.state == "paused" and "3 failures in a row" in b.state_reason
    assert resume_batch(engine, batch, "alice")
    assert batch_row(engine, batch).consecutive_errors == 0


# ---- batch control --------------------------------------------------------------------


def test_cancel_batch_cancels_queued_messages_with_an_audit_row(engine: Engine) -> None:
    batch = batch_of(engine, [sms(n) for n in range(1, 5)])
    in_flight = take(engine, at=datetime.now(UTC), limit=1)[0]  # its lease runs on
    assert cancel_batch(engine, batch, "alice") == 3
    assert batch_progress(engine, batch)["counts"] == {
        "queued": 0,
        "sending": 1,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "cancelled": 3,
    }
    assert batch_row(engine, batch).state == "cancelled"
    # The message in flight: a retryable failure does not bring it back.
    assert record_failure(engine, in_flight, Transient("x"), "w1") == "cancelled"
    audit = recent_audit(engine, action="batch.cancel")
    assert audit.loc[0, "actor"] == "alice" and audit.loc[0, "details"] == {"cancelled": 3}
    with pytest.raises(LookupError):
        cancel_batch(engine, 999, "alice")


def test_retry_failed_requeues_with_attempts_reset_and_an_audit_row(engine: Engine) -> None:
    batch = batch_of(engine, [sms(1), sms(2)])
    for mid in take(engine):
        record_failure(engine, mid, Rejected("bad"), "w1")
    assert batch_row(engine, batch).state == "done"
    with pytest.raises(ValueError):
        retry_failed(engine, actor="alice")
    assert retry_failed(engine, batch_id=batch, actor="alice") == 2
    log = message_log(engine, batch_id=batch)
    assert set(log["status"]) == {"queued"} and set(log["attempts"]) == {0}
    assert log["error"].isna().all()
    assert batch_row(engine, batch).state == "running"
    audit = recent_audit(engine, action="send.retry")
    assert audit.loc[0, "details"]["count"] == 2 and audit.loc[0, "actor"] == "alice"
    ids = take(engine, at=datetime.now(UTC))
    record_failure(engine, ids[0], Rejected("bad"), "w1")
    assert retry_failed(engine, message_ids=[ids[0], ids[1]], actor="bob") == 1


def test_a_batch_is_done_when_nothing_is_left_to_send(engine: Engine) -> None:
    batch = batch_of(engine, [sms(1), sms(2)])
    a, b = take(engine)
    record_sent(engine, a, SENT, "w1", now=T0)
    assert batch_row(engine, batch).state == "running"
    record_sent(engine, b, SendResult("test", "ref-2", status="delivered"), "w1", now=T0)
    done = batch_row(engine, batch)
    assert done.state == "done" and done.finished_at == T0
    progress = batch_progress(engine, batch)
    assert progress["counts"]["sent"] == 1 and progress["counts"]["delivered"] == 1
    assert progress["fraction"] == 1.0 and progress["cost_pence"] == 6.0
    assert progress["total"] == 2 and progress["state"] == "done"


def test_status_updates_by_provider_ref(engine: Engine) -> None:
    ids = enqueue(engine, [sms(1), sms(2), sms(3)], "scheduler", now=T0)
    take(engine)
    for n, mid in enumerate(ids, start=1):
        record_sent(engine, mid, SendResult("test", f"ref-{n}"), "w1")
    changed = apply_status_updates(
        engine,
        [
            StatusUpdate("ref-1", "delivered", "DELIVRD"),
            StatusUpdate("ref-2", "failed", "UNDELIV", error="Handset unreachable"),
            StatusUpdate("ref-3", "sent", "ENROUTE"),
            StatusUpdate("unknown", "delivered", "DELIVRD"),
        ],
    )
    assert changed == 2
    one, two, three = (row(engine, i) for i in ids)
    assert (one.status, one.provider_status) == ("delivered", "DELIVRD") and one.delivered_at
    assert (two.status, two.error) == ("failed", "Handset unreachable")
    assert (three.status, three.provider_status) == ("sent", "ENROUTE")
    # A late "sent" never takes a delivered message back.
    assert apply_status_updates(engine, [StatusUpdate("ref-1", "sent", "ENROUTE")]) == 0
    assert apply_status_updates(engine, [StatusUpdate("ref-1", "delivered", "DELIVRD")]) == 0
    assert apply_status_updates(engine, [StatusUpdate("ref-1", "failed", "EXPIRED")]) == 0
    assert row(engine, ids[0]).status == "delivered"


def test_message_log_filters(engine: Engine) -> None:
    batch = batch_of(engine, [sms(1), sms(2)], by="alice", now=T0)
    enqueue(engine, [sms(3)], "scheduler", now=T0 + timedelta(hours=1))
    enqueue(
        engine,
        [
            NewMessage(
                "email", "a@example.com", "x", subject="Hi", idempotency_key="e", student_id="S1"
            )
        ],
        "bob",
        now=T0 + timedelta(hours=2),
    )
    log = message_log(engine)
    assert tuple(log.columns) == MESSAGE_LOG_COLUMNS
    assert list(log["id"]) == [4, 3, 2, 1]
    assert list(message_log(engine, channel="email")["id"]) == [4]
    assert list(message_log(engine, created_by="alice")["id"]) == [2, 1]
    assert list(message_log(engine, student_id="S1")["id"]) == [4, 1]
    assert list(message_log(engine, batch_id=batch)["id"]) == [2, 1]
    assert list(message_log(engine, since=T0 + timedelta(hours=1))["id"]) == [4, 3]
    assert list(message_log(engine, until=T0 + timedelta(hours=1))["id"]) == [2, 1]
    assert list(message_log(engine, limit=1)["id"]) == [4]
    take(engine, at=T0 + timedelta(hours=3), limit=1)
    assert list(message_log(engine, status="sending")["id"]) == [1]
    assert list(message_log(engine, status=["sending", "queued"], channel="sms")["id"]) == [3, 2, 1]
    assert message_log(engine, status="failed").empty
