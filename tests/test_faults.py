"""Fault injection on the sending side: every fault real, nothing mocked.

- A ``schoolcomms dispatch --loop`` process SIGKILLed mid-batch (once while the gateway
  holds a request of ours, once at a random moment) and restarted: every message is
  accepted exactly once at the Text Anywhere stand-in.
- The SMTP server (aiosmtpd) stopped for a while and started again on the same port
  while a dispatcher process keeps trying: everything arrives, once.
- The gateway answering 429 with ``Retry-After`` (seconds, or an HTTP date): the next
  request arrives no earlier than it said, measured at the stand-in.
- SQLite busy: another connection holds the write lock while the dispatcher records
  its outcomes, shorter than the busy timeout, longer (retried), and longer than every
  retry (the run fails, the loop goes on, the message is reconciled, not sent again).

The warehouse's faults (disk full, a kill at every step of publishing) are in
``tests/test_publish_faults.py``.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import logging
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select
from standins import Recorded, Reply
from test_workers import (
    CountingStandin,
    all_sent,
    assert_each_sent_once,
    figure,
    kill,
    message_ids,
    number,
    queue_sms,
    settings_for,
    shared_store,
    sms_settings,
    start_dispatcher,
    status_counts,
    stop,
    wait_for,
)

from schoolcomms.ops import db
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import Message
from senders.batches import batch_progress, resume_batch
from senders.channels.smtp import MESSAGE_HEADER
from senders.channels.textanywhere import TextAnywhereSms
from senders.dispatcher import Dispatcher
from senders.outbox import NewMessage, create_batch, enqueue


@pytest.fixture
def standin() -> Iterator[CountingStandin]:
    with CountingStandin() as server:
        yield server


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    yield
    db.close_all()


@pytest.fixture
def shared_ops_url(
    ops_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """The ops store of a test whose processes have data directories of their own."""
    yield from shared_store(ops_backend, request, tmp_path)


def message_id_for(engine: Engine, to: str) -> int:
    with session_scope(engine, immediate=False) as s:
        return int(s.scalars(select(Message.id).where(Message.to_address == to)).one())


def attempts(engine: Engine) -> dict[int, int]:
    with session_scope(engine, immediate=False) as s:
        return {i: n for i, n in s.execute(select(Message.id, Message.attempts))}


# ---- SIGKILL mid-batch ----------------------------------------------------------------------


@pytest.mark.ops_store
def test_a_dispatcher_killed_mid_batch_and_restarted_sends_each_message_once(
    tmp_path: Path, standin: CountingStandin, shared_ops_url: str
) -> None:
    count = 300
    data_dir = tmp_path / "data"
    values = sms_settings(
        standin,
        ops_url=shared_ops_url,
        sms_rate_per_second=60,
        dispatch_batch_size=20,
        dispatch_lease_seconds=3,
    )
    engine = open_ops(settings_for(data_dir, values))
    queue_sms(engine, count)
    # The gateway holds message 120's request: the SMS is accepted, but its answer never
    # reaches the dispatcher before the kill.
    slow = message_id_for(engine, number(120))
    standin.hold[str(slow)] = 60
    log = tmp_path / "dispatch.log"

    first = start_dispatcher(data_dir, values, log)
    try:
        wait_for(lambda: standin.accepted_count[str(slow)], what="the slow message to arrive")
        time.sleep(0.2)  # well inside the request: the gateway is still holding it
    finally:
        kill(first)
    assert status_counts(engine).get("sending", 0) >= 1
    accepted_then = sum(standin.accepted_count.values())

    second = start_dispatcher(data_dir, values, log)  # and killed at a random moment
    try:
        wait_for(lambda: sum(standin.accepted_count.values()) >= accepted_then + 60)
    finally:
        kill(second)

    third = start_dispatcher(data_dir, values, log)
    restarted = time.monotonic()
    try:
        wait_for(lambda: all_sent(engine, count), what="every message sent")
    finally:
        assert stop(third) == 0, log.read_text()[-3000:]
    assert_each_sent_once(engine, standin, count)
    # The held message was found at the gateway (SMSStatusEx), not sent again.
    assert attempts(engine)[slow] >= 2
    status_asked = [r.form["Client_Ref"] for r in standin.polls()]
    assert str(slow) in found_before_asking(standin)
    figure(
        "kill mid-batch",
        backend=shared_ops_url.split(":")[0],
        lease_seconds=3,
        last_restart_to_all_sent=round(time.monotonic() - restarted, 1),
        asked_the_gateway_first=len(status_asked),
        found_there_not_resent=len(found_before_asking(standin)),
        retried=sum(1 for n in attempts(engine).values() if n >= 2),
    )


def found_before_asking(standin: CountingStandin) -> set[str]:
    """Client_Refs whose SMS had arrived before the dispatcher asked SMSStatusEx about them."""
    sent: set[str] = set()
    found: set[str] = set()
    for rec in list(standin.requests):
        ref = rec.form.get("Client_Ref", "")
        if rec.path.endswith("SendSMSEx.aspx"):
            sent.add(ref)
        elif ref in sent:
            found.add(ref)
    return found


# ---- the SMTP server down for a while -----------------------------------------------------


class Inbox:
    """An aiosmtpd handler keeping every message that arrived."""

    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.received.append(message)
        return "250 OK"

    def ids(self) -> Counter[int]:
        with self.lock:
            return Counter(int(m[MESSAGE_HEADER].split(";")[0]) for m in self.received)


class SmtpServer:
    """An aiosmtpd server on a fixed port that can be stopped and started again."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def refuses(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) != 0


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def emails(count: int, key: str) -> list[NewMessage]:
    return [
        NewMessage(
            "email",
            f"parent{n}@home.example.com",
            f"Dear parent, message {n}.",
            subject="News",
            idempotency_key=f"{key}{n}",
        )
        for n in range(count)
    ]


def smtp_values(smtp: SmtpServer) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_security": "none",
        "email_rate_per_second": 10,
        "dispatch_retry_base_seconds": 0.5,
        "dispatch_max_attempts": 40,
    }


def outage(
    smtp: SmtpServer, engine: Engine, ids: list[int], down_seconds: float
) -> dict[str, float]:
    """Stop the server once a third of ``ids`` arrived; start it after ``down_seconds``."""
    wait_for(lambda: len(smtp.inbox.ids()) >= len(ids) // 3, what="the first e-mails")
    smtp.stop()
    assert smtp.refuses()
    went_down, arrived_before = time.monotonic(), len(smtp.inbox.ids())
    wait_for(
        lambda: any(
            "Could not connect to the SMTP server" in (m.error or "") for m in rows(engine)
        ),
        what="a failed attempt while the server is down",
    )
    time.sleep(max(0.0, down_seconds - (time.monotonic() - went_down)))
    assert len(smtp.inbox.ids()) == arrived_before, "nothing arrives while it is down"
    smtp.start()
    return {"down_seconds": time.monotonic() - went_down, "back_at": time.monotonic()}


def rows(engine: Engine) -> list[Message]:
    with session_scope(engine, immediate=False) as s:
        return list(s.scalars(select(Message)))


def test_smtp_down_for_a_while_then_everything_is_delivered_once(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    # The scheduler's own e-mails (alerts, weekly reports, notices) are queued one by one.
    data_dir = tmp_path / "data"
    values = smtp_values(smtp)
    engine = open_ops(settings_for(data_dir, values))
    ids = enqueue(engine, emails(40, "alert-"), "scheduler")
    log = tmp_path / "dispatch.log"
    dispatcher = start_dispatcher(data_dir, values, log)
    try:
        timing = outage(smtp, engine, ids, down_seconds=5)
        wait_for(lambda: status_counts(engine) == {"sent": 40}, what="everything delivered")
        took = time.monotonic() - timing["back_at"]
    finally:
        assert stop(dispatcher) == 0, log.read_text()[-3000:]
    assert smtp.inbox.ids() == Counter({i: 1 for i in ids}), "each e-mail once"
    retried = [m for m in rows(engine) if m.attempts > 1]
    assert retried, "some e-mails were tried while the server was down"
    figure(
        "smtp down",
        down_seconds=round(timing["down_seconds"], 1),
        back_to_all_delivered=round(took, 1),
        retried=len(retried),
        most_attempts=max(m.attempts for m in retried),
    )


def test_smtp_down_pauses_a_batch_which_resumes_and_delivers_once(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    # A batch pauses after dispatch_pause_after_errors failures in a row (policy in
    # senders/outbox.py): it waits for a person, who resumes it once the server is back.
    data_dir = tmp_path / "data"
    values = smtp_values(smtp)
    engine = open_ops(settings_for(data_dir, values))
    batch = create_batch(
        engine,
        created_by="alice",
        channel="email",
        template_name=None,
        subject="News",
        body_template="Dear parent",
        filter={},
        messages=emails(40, "batch-"),
        excluded=0,
        estimated_cost_pence=0.0,
    )
    ids = message_ids(engine)
    log = tmp_path / "dispatch.log"
    dispatcher = start_dispatcher(data_dir, values, log)
    try:
        outage(smtp, engine, ids, down_seconds=3)
        progress = wait_for(
            lambda: (p := batch_progress(engine, batch))["state"] == "paused" and p,
            what="the batch to pause",
        )
        assert "Could not connect to the SMTP server" in progress["state_reason"]
        arrived = len(smtp.inbox.ids())
        time.sleep(6)  # the server is back, but a paused batch waits for a person
        assert len(smtp.inbox.ids()) == arrived
        resume_batch(engine, batch, "alice")
        wait_for(lambda: status_counts(engine) == {"sent": 40}, what="everything delivered")
    finally:
        assert stop(dispatcher) == 0, log.read_text()[-3000:]
    assert smtp.inbox.ids() == Counter({i: 1 for i in ids}), "each e-mail once"
    assert batch_progress(engine, batch)["state"] == "done"


# ---- 429 with Retry-After ------------------------------------------------------------------


def run_dispatcher(
    engine: Engine, settings: Any, messenger: Any, until: Any, idle: float = 0.1
) -> None:
    """``Dispatcher.run_forever`` in a thread until ``until()``; re-raise what it raised."""
    stop_event = threading.Event()
    dispatcher = Dispatcher(engine, {"sms": messenger}, settings)
    failed: list[BaseException] = []

    def work() -> None:
        try:
            dispatcher.run_forever(stop_event, idle_seconds=idle)
        except BaseException as exc:  # reported below
            failed.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    try:
        wait_for(lambda: until() or failed, what="the dispatcher")
    finally:
        stop_event.set()
        thread.join(timeout=60)
    assert not failed, failed


def test_429_retry_after_is_honoured_in_seconds_and_as_an_http_date(
    tmp_path: Path, standin: CountingStandin
) -> None:
    count = 40
    values = sms_settings(standin, sms_rate_per_second=0, dispatch_retry_base_seconds=0.2)
    settings = settings_for(tmp_path / "data", values)
    engine = open_ops(settings)
    queue_sms(engine, count)
    limited: list[tuple[float, float]] = []  # (when answered, earliest allowed after)

    def throttle(rec: Recorded) -> Reply | None:
        done = sum(standin.accepted_count.values())
        if (done == 10 and len(limited) == 0) or (done == 25 and len(limited) == 1):
            now = time.time()
            if not limited:
                wait, header = 2.0, "2"
            else:  # an HTTP date, whole seconds, 3 to 4 s ahead
                until = int(now) + 4
                wait, header = until - now, email.utils.formatdate(until, usegmt=True)
            limited.append((now, now + wait))
            return Reply.text("Too many requests", 429, **{"Retry-After": header})
        return None

    standin.throttle = throttle
    run_dispatcher(
        engine,
        settings,
        TextAnywhereSms(settings),
        until=lambda: all_sent(engine, count),
    )
    assert_each_sent_once(engine, standin, count)
    assert len(limited) == 2
    waits = []
    for answered, allowed in limited:
        after = [t for _, t, _ in standin.arrivals if t > answered]
        assert after, "sending went on"
        assert after[0] >= allowed, f"{allowed - after[0]:.2f} s too early"
        assert after[0] < allowed + 5, "and not much later"
        waits.append((round(allowed - answered, 2), round(after[0] - answered, 2)))
    figure("429 Retry-After", asked_and_waited_seconds=waits)
    # Being paced is not a failed attempt.
    assert set(attempts(engine).values()) == {1}


# ---- SQLite busy ---------------------------------------------------------------------------


class LockHolder:
    """Takes the ops store's write lock (BEGIN IMMEDIATE) on its own connection, as another
    process would, and lets it go after ``seconds``."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.path, self.seconds = path, seconds
        self.taken = threading.Event()
        self.released = threading.Event()

    def take(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        self.taken.set()

        def release() -> None:
            time.sleep(self.seconds)
            conn.execute("COMMIT")
            conn.close()
            self.released.set()

        threading.Thread(target=release, daemon=True).start()


@pytest.mark.parametrize(
    ("busy_ms", "hold", "expect"),
    [
        (10_000, 1.5, "waited"),  # within the busy timeout: SQLite waits
        (300, 1.2, "retried"),  # past it: the dispatcher's store retries succeed
        (300, 4.0, "reconciled"),  # past every retry: the run fails, the loop goes on
    ],
)
def test_sqlite_busy_while_the_dispatcher_records_is_survived(
    tmp_path: Path,
    standin: CountingStandin,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    busy_ms: int,
    hold: float,
    expect: str,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", busy_ms)
    count = 30
    values = sms_settings(standin, sms_rate_per_second=0, dispatch_lease_seconds=2)
    settings = settings_for(tmp_path / "data", values)
    engine = open_ops(settings)
    queue_sms(engine, count)
    holder = LockHolder(tmp_path / "data" / "ops.sqlite", hold)

    def throttle(rec: Recorded) -> Reply | None:
        # Answer the 10th SMS only once the store is locked: its outcome meets the lock.
        if sum(standin.accepted_count.values()) == 9 and not holder.taken.is_set():
            holder.take()
        return None

    standin.throttle = throttle
    started = time.monotonic()
    run_dispatcher(
        engine,
        settings,
        TextAnywhereSms(settings),
        until=lambda: all_sent(engine, count),
    )
    assert holder.released.is_set() and time.monotonic() - started >= hold
    figure(
        "sqlite busy",
        case=expect,
        busy_timeout_ms=busy_ms,
        lock_held_seconds=hold,
        run_seconds=round(time.monotonic() - started, 1),
    )
    assert_each_sent_once(engine, standin, count)
    retried = "ops store busy in record_sent; retrying" in caplog.text
    failed_run = "dispatch run failed" in caplog.text
    assert (retried, failed_run) == {
        "waited": (False, False),
        "retried": (True, False),
        "reconciled": (True, True),
    }[expect], caplog.text[-2000:]
    if expect == "reconciled":  # the 10th was sent, not recorded, then found at the gateway
        tenth = sorted(message_ids(engine))[9]
        assert attempts(engine)[tenth] == 2
        assert str(tenth) in found_before_asking(standin)
