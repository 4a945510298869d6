"""The dispatcher with the real store and the real file messengers.

Policy tests use :class:`Scripted`, an in-test messenger that raises chosen provider
errors (it stands at the messenger boundary; the outbox and the dispatcher are real).
Pacing runs on a fake clock. The crash tests SIGKILL a dispatcher in another process.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from schoolcomms.ops import db
from schoolcomms.ops.db import open_ops
from schoolcomms.settings import Settings
from senders.base import (
    AccountProblem,
    Messenger,
    OutgoingMessage,
    ProviderError,
    RateLimited,
    Rejected,
    SendResult,
    Transient,
)
from senders.channels.files import FileEmail, FileSms, email_file_name, read_sms_outbox
from senders.dispatcher import Dispatcher, DispatchStats, mask_address
from senders.outbox import (
    NewMessage,
    batch_progress,
    claim,
    create_batch,
    enqueue,
    message_log,
    resume_batch,
)
from senders.ratelimit import Pacer

Make = Callable[..., Settings]
# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store


class FakeClock:
    """Simulated monotonic time: sleeping advances it."""

    def __init__(self) -> None:
        self.t = 0.0

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class Scripted:
    """A messenger that fails as told: ``script[n]`` is raised on the n-th send (0-based)."""

    channel = "sms"
    name = "scripted"

    def __init__(self, script: dict[int, Exception] | None = None, always: Exception | None = None):
        self.script = script or {}
        self.always = always
        self.sent: list[OutgoingMessage] = []
        self.calls = 0
        self.opened = self.closed = 0

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def send(self, message: OutgoingMessage) -> SendResult:
        n, self.calls = self.calls, self.calls + 1
        if n in self.script:
            raise self.script[n]
        if self.always is not None:
            raise self.always
        self.sent.append(message)
        return SendResult("scripted", f"ref-{message.id}")


@pytest.fixture
def make(tmp_path: Path, ops_url: str | None) -> Iterator[Make]:
    """Settings on ``tmp_path / "data"`` (its ops store: SQLite, or ``ops_url``)."""

    def build(**overrides: Any) -> Settings:
        base = {"sms_rate_per_second": 0, "email_rate_per_second": 0}
        return Settings(tmp_path / "data", env={}, overrides={**base, **overrides})

    yield build
    db.close_all()


@pytest.fixture
def engine(make: Make) -> Engine:
    return open_ops(make())


def queue_sms(engine: Engine, count: int, *, body: str = "Hello") -> int:
    return create_batch(
        engine,
        created_by="alice",
        channel="sms",
        template_name=None,
        subject=None,
        body_template=body,
        filter={},
        messages=[
            NewMessage("sms", f"+4474{n:08d}", f"{body} {n}", idempotency_key=f"k{n}", cost_pence=3)
            for n in range(count)
        ],
        excluded=0,
        estimated_cost_pence=3 * count,
    )


def statuses(engine: Engine) -> Counter[str]:
    return Counter(message_log(engine)["status"])


def sms_dir(settings: Settings) -> Path:
    return settings.data_dir / "outbox" / "sms"


# ---- the happy path -------------------------------------------------------------------


def test_run_once_sends_everything_due_through_the_file_gateway(make: Make, engine: Engine) -> None:
    settings = make(dispatch_batch_size=3)
    batch = queue_sms(engine, 7)
    stats = Dispatcher(engine, {"sms": FileSms(sms_dir(settings))}, settings).run_once()
    assert (stats.claimed, stats.sent, stats.failed) == (7, 7, 0)
    lines = read_sms_outbox(settings.data_dir)
    assert sorted(line["to"] for line in lines) == [f"+4474{n:08d}" for n in range(7)]
    assert {"id", "idempotency_key", "to", "body", "at"} <= set(lines[0])
    log = message_log(engine)
    assert set(log["status"]) == {"sent"} and set(log["provider"]) == {"file"}
    assert set(log["provider_ref"]) == {f"file-{i}" for i in log["id"]}
    assert batch_progress(engine, batch)["state"] == "done"
    assert Dispatcher(engine, {"sms": FileSms(sms_dir(settings))}, settings).run_once().claimed == 0


def test_the_messenger_is_opened_once_per_run_and_closed(make: Make, engine: Engine) -> None:
    settings = make(dispatch_batch_size=2)
    queue_sms(engine, 5)
    scripted = Scripted()
    stats = Dispatcher(engine, {"sms": scripted}, settings).run_once()
    assert stats.sent == 5 and (scripted.opened, scripted.closed) == (1, 1)
    idle = Scripted()
    Dispatcher(engine, {"sms": idle}, settings).run_once()
    assert (idle.opened, idle.closed) == (0, 0)  # nothing due: no connection


def race(engine: Engine, settings: Settings, workers: int, count: int = 500) -> list[DispatchStats]:
    """``workers`` dispatchers in threads, each with its own FileSms, over ``count`` SMS."""
    batch = queue_sms(engine, count)
    start = threading.Barrier(workers)
    results: list[Any] = []

    def work(name: str) -> None:
        try:
            dispatcher = Dispatcher(engine, {"sms": FileSms(sms_dir(settings))}, settings, name)
            start.wait(timeout=30)
            results.append(dispatcher.run_once())
        except BaseException as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert all(not isinstance(r, BaseException) for r in results), results
    per_id = Counter(line["id"] for line in read_sms_outbox(settings.data_dir))
    assert len(per_id) == count and set(per_id.values()) == {1}
    assert sum(r.sent for r in results) == count
    assert statuses(engine) == {"sent": count}
    assert batch_progress(engine, batch)["state"] == "done"
    return results


def test_two_dispatchers_in_threads_never_send_a_message_twice(make: Make, engine: Engine) -> None:
    race(engine, make(dispatch_batch_size=20), workers=2)


@pytest.mark.ops_store("postgresql")
def test_postgres_skip_locked_dispatchers_never_send_twice(make: Make, engine: Engine) -> None:
    results = race(engine, make(dispatch_batch_size=10), workers=4)
    assert sum(1 for r in results if r.sent) >= 2, "SKIP LOCKED let workers share the load"
    batch = queue_sms(engine, 500)  # the same keys again: nothing new
    assert batch_progress(engine, batch)["total"] == 0


# ---- failures at the messenger boundary -----------------------------------------------


def test_rejected_is_failed_with_the_reason(make: Make, engine: Engine) -> None:
    queue_sms(engine, 3)
    scripted = Scripted({1: Rejected("Invalid number", provider_status="21211")})
    stats = Dispatcher(engine, {"sms": scripted}, make()).run_once()
    assert (stats.sent, stats.failed) == (2, 1)
    failed = message_log(engine, status="failed").iloc[0]
    assert "Invalid number" in failed["error"] and failed["provider_status"] == "21211"


def test_an_unexpected_exception_is_transient_and_the_loop_goes_on(
    make: Make, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    queue_sms(engine, 3)
    scripted = Scripted({0: RuntimeError("socket closed")})
    stats = Dispatcher(engine, {"sms": scripted}, make()).run_once()
    assert (stats.sent, stats.retried) == (2, 1)
    retried = message_log(engine, status="queued").iloc[0]
    assert retried["error"] == "Transient: RuntimeError: socket closed"
    assert retried["attempts"] == 1 and retried["next_attempt_at"] > datetime.now(UTC)
    assert "RuntimeError" in caplog.text


def test_transient_retries_then_fails_after_max_attempts(make: Make, engine: Engine) -> None:
    settings = make(dispatch_max_attempts=3, dispatch_retry_base_seconds=30)
    queue_sms(engine, 1)
    clock = {"now": datetime.now(UTC)}
    scripted = Scripted(always=Transient("503"))
    dispatcher = Dispatcher(engine, {"sms": scripted}, settings, now=lambda: clock["now"])
    for attempt in (1, 2):
        before = clock["now"]
        assert dispatcher.run_once().retried == 1
        due = message_log(engine).iloc[0]["next_attempt_at"].to_pydatetime()
        assert 15 * 2 ** (attempt - 1) <= (due - before).total_seconds() <= 45 * 2 ** (attempt - 1)
        assert dispatcher.run_once().claimed == 0  # not due yet
        clock["now"] = due
    assert dispatcher.run_once().failed == 1
    assert message_log(engine).iloc[0]["error"].startswith("Gave up after 3 attempts")


def test_rate_limited_stops_the_channel_and_honours_retry_after(make: Make, engine: Engine) -> None:
    queue_sms(engine, 4)
    now = datetime.now(UTC)
    scripted = Scripted({1: RateLimited("429", retry_after=60)})
    stats = Dispatcher(engine, {"sms": scripted}, make(), now=lambda: now).run_once()
    assert (stats.sent, stats.retried, stats.released) == (1, 1, 2)
    waiting = message_log(engine, status="queued")
    assert set(waiting["next_attempt_at"]) == {now + timedelta(seconds=60)}
    assert set(waiting["attempts"]) == {0}


def test_account_problem_pauses_the_batch_and_keeps_messages_queued(
    make: Make, engine: Engine
) -> None:
    batch = queue_sms(engine, 4)
    scripted = Scripted({0: AccountProblem("No credit left")})
    stats = Dispatcher(engine, {"sms": scripted}, make()).run_once()
    assert stats.sent == 0 and statuses(engine) == {"queued": 4}
    progress = batch_progress(engine, batch)
    assert progress["state"] == "paused" and "No credit left" in progress["state_reason"]
    assert Dispatcher(engine, {"sms": Scripted()}, make()).run_once().claimed == 0
    resume_batch(engine, batch, "alice")
    assert Dispatcher(engine, {"sms": Scripted()}, make()).run_once().sent == 4


def test_a_batch_pauses_after_consecutive_errors_and_the_rest_is_held(
    make: Make, engine: Engine
) -> None:
    batch = queue_sms(engine, 10)
    scripted = Scripted(always=Rejected("no"))
    stats = Dispatcher(engine, {"sms": scripted}, make(dispatch_pause_after_errors=3)).run_once()
    assert (stats.failed, stats.released, scripted.calls) == (3, 7, 3)
    assert batch_progress(engine, batch)["state"] == "paused"
    assert statuses(engine) == {"failed": 3, "queued": 7}


def test_a_messenger_that_cannot_open_fails_the_claim_softly(make: Make, engine: Engine) -> None:
    queue_sms(engine, 3)

    class Unreachable(Scripted):
        def open(self) -> None:
            raise ConnectionRefusedError("smtp down")

    messenger = Unreachable()
    stats = Dispatcher(engine, {"sms": messenger}, make()).run_once()
    assert (stats.retried, stats.sent, messenger.calls, messenger.closed) == (3, 0, 0, 0)
    assert set(message_log(engine)["error"]) == {"Transient: ConnectionRefusedError: smtp down"}


def test_nothing_is_sent_once_the_lease_is_nearly_over(make: Make, engine: Engine) -> None:
    queue_sms(engine, 5)
    fake = FakeClock()

    class Slow(Scripted):
        def send(self, message: OutgoingMessage) -> SendResult:
            fake.sleep(5)
            return super().send(message)

    slow = Slow()
    settings = make(dispatch_lease_seconds=10)
    stats = Dispatcher(
        engine, {"sms": slow}, settings, clock=fake.clock, sleep=fake.sleep
    ).run_once()
    assert (stats.sent, stats.released) == (2, 3)
    assert statuses(engine) == {"sent": 2, "queued": 3}


def test_a_cancelled_batch_stops_within_a_run(make: Make, engine: Engine) -> None:
    batch = queue_sms(engine, 5)
    fake = FakeClock()

    class CancelsAfterOne(Scripted):
        def send(self, message: OutgoingMessage) -> SendResult:
            from senders.outbox import cancel_batch

            if not self.sent:
                cancel_batch(engine, batch, "alice")
            fake.sleep(2)  # past the halt check interval
            return super().send(message)

    messenger = CancelsAfterOne()
    Dispatcher(engine, {"sms": messenger}, make(), clock=fake.clock, sleep=fake.sleep).run_once()
    assert len(messenger.sent) == 1
    assert statuses(engine) == {"sent": 1, "cancelled": 4}


# ---- pacing ---------------------------------------------------------------------------


def test_pacing_50_messages_at_10_a_second_takes_4_9_seconds(make: Make, engine: Engine) -> None:
    queue_sms(engine, 50)
    fake = FakeClock()
    settings = make(sms_rate_per_second=10)
    dispatcher = Dispatcher(
        engine, {"sms": FileSms(sms_dir(settings))}, settings, clock=fake.clock, sleep=fake.sleep
    )
    assert dispatcher.run_once().sent == 50
    assert 4.9 <= fake.t < 5.0


def test_pacer_limits_and_restarts_after_idle() -> None:
    fake = FakeClock()
    pacer = Pacer(4, clock=fake.clock, sleep=fake.sleep)
    waits = [pacer.wait() for _ in range(3)]
    assert waits == [0.0, 0.25, 0.25]
    fake.t += 10  # idle: no burst is saved up, the next goes at once and then paced
    assert [pacer.wait(), pacer.wait()] == [0.0, 0.25]
    unlimited = Pacer(0, clock=fake.clock, sleep=fake.sleep)
    assert {unlimited.wait() for _ in range(5)} == {0.0}


# ---- logging --------------------------------------------------------------------------


def test_logs_mask_numbers_and_never_hold_bodies(
    make: Make, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    queue_sms(engine, 2, body="Private note about Ann")
    scripted = Scripted({0: Transient("gateway refused +447400000000")})
    Dispatcher(engine, {"sms": scripted}, make()).run_once()
    assert "sent sms message" in caplog.text
    assert "+447400000000" not in caplog.text and "+447400000001" not in caplog.text
    assert "*********000" in caplog.text and "*********001" in caplog.text
    assert "Private note" not in caplog.text


def test_mask_address() -> None:
    assert mask_address("+447400123456") == "*********456"
    assert mask_address("alice@home.example.com") == "a***@home.example.com"
    assert mask_address("Mrs A Able\n1 High Street\nTown AB1 2CD") == "***"


# ---- run_forever ----------------------------------------------------------------------


def test_run_forever_survives_a_failing_run_and_stops_on_request(
    make: Make, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from senders import outbox

    queue_sms(engine, 3)
    real_claim, calls = outbox.claim, {"n": 0}
    stop = threading.Event()

    def flaky_claim(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("store unreachable")
        got = real_claim(*args, **kwargs)
        if not got:
            stop.set()
        return got

    monkeypatch.setattr(outbox, "claim", flaky_claim)
    dispatcher = Dispatcher(engine, {"sms": Scripted()}, make())
    runner = threading.Thread(target=dispatcher.run_forever, args=(stop, 0.01))
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive()
    assert statuses(engine) == {"sent": 3}


# ---- the file messengers ---------------------------------------------------------------


def outgoing(n: int, **extra: Any) -> OutgoingMessage:
    fields = {"to": "+447400000001", "body": "Hi"} | extra
    return OutgoingMessage(id=n, idempotency_key=f"key-{n}", channel="sms", **fields)


def test_file_sms_recognises_a_resend_and_survives_a_torn_line(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "outbox" / "sms"
    sms = FileSms(folder, now=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    sms.open()
    assert sms.send(outgoing(1)).provider_status == "written"
    # Another process's messenger, after a crash that cut a line short:
    with (folder / "2026-01-05.jsonl").open("a") as handle:
        handle.write('{"id": 9, "idempot')
    other = FileSms(folder, now=lambda: datetime(2026, 1, 5, 9, 1, tzinfo=UTC))
    again = other.send(outgoing(1))
    assert (again.provider_status, again.provider_ref) == ("already in outbox", "file-1")
    assert other.send(outgoing(2)).provider_status == "written"
    assert sms.send(outgoing(2)).provider_status == "already in outbox"
    # Same id, another key (a recreated ops store): a different message, written.
    fresh = OutgoingMessage(id=1, idempotency_key="other", channel="sms", to="+44", body="x")
    assert sms.send(fresh).provider_status == "written"
    assert [r["id"] for r in read_sms_outbox(tmp_path / "data")] == [1, 2, 1]
    assert isinstance(sms, Messenger)


def test_file_email_writes_one_eml_with_alternative_and_attachment(tmp_path: Path) -> None:
    attachment = tmp_path / "report.pdf"
    attachment.write_bytes(b"%PDF-1.4 test")
    folder = tmp_path / "data" / "outbox" / "email"
    messenger = FileEmail(folder, sender="office@school.example.org", sender_name="Sample School")
    message = OutgoingMessage(
        id=7,
        idempotency_key="email-7",
        channel="email",
        to="parent@example.com",
        body="Plain text",
        subject="Report",
        html="<p>HTML text</p>",
        attachments=(attachment,),
    )
    messenger.open()
    assert messenger.send(message).provider_status == "written"
    assert messenger.send(message).provider_status == "already in outbox"
    [path] = [p for p in folder.iterdir() if not p.name.startswith(".")]
    assert path.name == email_file_name(message) and path.name.startswith("7-")
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "parent@example.com" and parsed["Subject"] == "Report"
    assert "Sample School" in parsed["From"]
    assert parsed.get_body(("plain",)).get_content().strip() == "Plain text"
    assert "HTML text" in parsed.get_body(("html",)).get_content()
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "report.pdf" and part.get_content() == b"%PDF-1.4 test"
    missing = OutgoingMessage(
        id=8,
        idempotency_key="e8",
        channel="email",
        to="a@b.c",
        body="x",
        attachments=(tmp_path / "no.pdf",),
    )
    with pytest.raises(Rejected, match="missing"):
        messenger.send(missing)
    bad = OutgoingMessage(
        id=9, idempotency_key="e9", channel="email", to="a@b.c", body="x", subject="a\nBcc: x"
    )
    with pytest.raises(Rejected):
        messenger.send(bad)


# ---- crashes ----------------------------------------------------------------------------


class _StallAfterWrite(FileSms):
    """Writes the message to the outbox, then hangs (to be killed) before it is recorded."""

    def __init__(self, folder: Path, written: Any) -> None:
        super().__init__(folder)
        self.written = written

    def send(self, message: OutgoingMessage) -> SendResult:
        result = super().send(message)
        self.written.set()
        time.sleep(600)
        return result


def _doomed_dispatcher(data_dir: str, when: str, ready: Any) -> None:
    settings = Settings(data_dir, env={}, overrides={"sms_rate_per_second": 0})
    engine = open_ops(settings)
    if when == "after claim":
        claimed = claim(engine, channel="sms", worker="doomed", limit=10, lease_seconds=300)
        assert len(claimed) == 1
        ready.set()
        time.sleep(600)
    folder = Path(data_dir) / "outbox" / "sms"
    Dispatcher(engine, {"sms": _StallAfterWrite(folder, ready)}, settings, "doomed").run_once()


@pytest.mark.parametrize("when", ["after claim", "after write"])
def test_a_dispatcher_killed_mid_send_is_taken_over_and_sent_once(make: Make, when: str) -> None:
    settings = make()
    engine = open_ops(settings)
    [mid] = enqueue(engine, [NewMessage("sms", "+447400000001", "Hi", idempotency_key="k")], "s")
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(target=_doomed_dispatcher, args=(str(settings.data_dir), when, ready))
    child.start()
    try:
        assert ready.wait(timeout=120), "the child never got that far"
    finally:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    log = message_log(engine).iloc[0]
    assert (log["status"], log["attempts"]) == ("sending", 1)
    folder = sms_dir(settings)
    written = 1 if when == "after write" else 0
    assert len(read_sms_outbox(settings.data_dir)) == written
    # While the lease runs, nobody else may take the message.
    assert Dispatcher(engine, {"sms": FileSms(folder)}, settings).run_once().claimed == 0
    later = datetime.now(UTC) + timedelta(seconds=301)
    stats = Dispatcher(engine, {"sms": FileSms(folder)}, settings, now=lambda: later).run_once()
    assert stats.sent == 1
    assert [line["id"] for line in read_sms_outbox(settings.data_dir)] == [mid]
    log = message_log(engine).iloc[0]
    assert (log["status"], log["attempts"]) == ("sent", 2)
    expected = "already in outbox" if written else "written"
    assert log["provider_status"] == expected
    assert json.dumps(read_sms_outbox(settings.data_dir)[0])  # a whole, parseable line


def test_provider_error_base_class_is_treated_as_transient(make: Make, engine: Engine) -> None:
    queue_sms(engine, 1)
    stats = Dispatcher(engine, {"sms": Scripted({0: ProviderError("odd")})}, make()).run_once()
    assert stats.retried == 1 and statuses(engine) == {"queued": 1}
