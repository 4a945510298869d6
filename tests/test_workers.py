"""Several workers on one ops store: dispatchers and schedulers as real processes.

- Three ``schoolcomms dispatch --loop`` processes drain one batch through the Text
  Anywhere stand-in: every message is sent exactly once, counted at the stand-in (one
  accepted ``SendSMSEx`` per ``Client_Ref``), and the work is shared between them.
- Two ``schoolcomms scheduler`` processes share one ops store (two "machines": their own
  data directories and scheduler locks, the same ops store URL and the same warehouse
  files), with clocks two minutes apart so that their absence-text runs overlap: each
  student's parents still get one text that day, counted at the stand-in.

The helpers here (the counting stand-in, the process launchers) are shared with
``tests/test_faults.py``. The 20,000-message run is ``benchmarks/workers.py``.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import MINIMAL_SCHOOL, write_extracts
from sqlalchemy import Engine, func, select
from standins import Recorded, Reply
from standins.textanywhere import CLIENT_ID, CLIENT_PASS, SEND_PAGE, TextAnywhereStandin

from pipelines.load import load_paths
from schoolcomms.ops import db
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import AbsenceNotice, JobRun, Message, PastoralEntry
from schoolcomms.settings import ENV_PREFIX, Settings
from senders.outbox import NewMessage, create_batch

# Each test runs on SQLite and on PostgreSQL (tests/postgres.py starts the server).
pytestmark = pytest.mark.ops_store


# ---- the stand-in, counting ----------------------------------------------------------


class CountingStandin(TextAnywhereStandin):
    """The Text Anywhere stand-in, also keeping when each ``SendSMSEx`` arrived and on
    which connection (one handler thread per kept-alive connection), and how often each
    ``Client_Ref`` was accepted (answered code 1).

    ``throttle`` may answer a ``SendSMSEx`` instead of the protocol (e.g. a 429);
    ``hold[ref]`` seconds pass before the answer to that ``Client_Ref``'s next request
    goes back (once): the SMS is accepted, but the sender does not hear so for a while.
    """

    def __init__(self) -> None:
        super().__init__()
        # (Client_Ref, wall-clock time, handler thread) of each SendSMSEx as it arrived.
        self.arrivals: list[tuple[str, float, str]] = []
        self.accepted_count: Counter[str] = Counter()
        self.throttle: Callable[[Recorded], Reply | None] | None = None
        self.hold: dict[str, float] = {}

    def record(self, rec: Recorded) -> None:
        super().record(rec)
        if rec.path == SEND_PAGE:
            with self._lock:
                self.arrivals.append(
                    (
                        rec.form.get("Client_Ref", ""),
                        time.time(),
                        threading.current_thread().name,
                    )
                )

    def handle(self, rec: Recorded) -> Reply:
        reply = self.throttle(rec) if self.throttle and rec.path == SEND_PAGE else None
        if reply is None:
            with self._lock:  # the base class's dicts are not thread-safe
                reply = super().handle(rec)
        if rec.path == SEND_PAGE:
            ref = rec.form.get("Client_Ref", "")
            body = reply.body if isinstance(reply.body, str) else reply.body.decode()
            with self._lock:
                if reply.status == 200 and body.endswith(":1"):
                    self.accepted_count[ref] += 1
                reply.delay = max(reply.delay, self.hold.pop(ref, 0.0))
        return reply

    def duplicates(self) -> dict[str, int]:
        """Client_Refs accepted more than once, with their counts."""
        return {ref: n for ref, n in self.accepted_count.items() if n > 1}

    def connections(self) -> Counter[str]:
        """SendSMSEx requests per connection (handler thread)."""
        return Counter(thread for _, _, thread in self.arrivals)


@pytest.fixture
def standin() -> Iterator[CountingStandin]:
    with CountingStandin() as server:
        yield server


# ---- settings, processes, waiting -------------------------------------------------------


def clean_env() -> dict[str, str]:
    """This process's environment without any SCHOOLCOMMS_ variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return {**env, "PYTHONUNBUFFERED": "1"}


def sms_settings(standin: TextAnywhereStandin, **values: Any) -> dict[str, Any]:
    """Settings that send SMS through ``standin``, plus ``values``."""
    return {
        "sms_provider": "textanywhere",
        "textanywhere_url": standin.base_url,
        "textanywhere_client_id": CLIENT_ID,
        "textanywhere_client_pass": CLIENT_PASS,
        **values,
    }


def env_for(values: dict[str, Any]) -> dict[str, str]:
    """A clean environment carrying ``values`` as SCHOOLCOMMS_<NAME> variables."""
    return {**clean_env(), **{f"{ENV_PREFIX}{k.upper()}": str(v) for k, v in values.items()}}


def settings_for(data_dir: Path, values: dict[str, Any]) -> Settings:
    """The same settings in this process (no environment read)."""
    return Settings(data_dir, env={}, overrides=values)


def start_dispatcher(data_dir: Path, values: dict[str, Any], log: Path) -> subprocess.Popen[str]:
    """``schoolcomms --data-dir DATA dispatch --loop`` as a real process; output to ``log``."""
    handle = log.open("a")
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "schoolcomms",
                "--data-dir",
                str(data_dir),
                "dispatch",
                "--loop",
            ],
            env=env_for(values),
            cwd=data_dir.parent,  # no developer's .streamlit/secrets.toml
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        handle.close()


def stop(process: subprocess.Popen[str], timeout: float = 60) -> int:
    """SIGTERM, and wait for a clean exit; SIGKILL if it does not come."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL: no clean-up at all."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def wait_for(check: Callable[[], Any], seconds: float = 120, what: str = "it") -> Any:
    """Poll ``check`` until it returns something true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def figure(name: str, **values: Any) -> None:
    """Print a measured figure (``pytest -s`` shows them; docs/performance.md quotes them)."""
    print(f"FIGURE {name}: {json.dumps(values, default=str)}")


def number(n: int) -> str:
    return f"+4474{n:08d}"


def queue_sms(engine: Engine, count: int, key: str = "w") -> int:
    """One batch of ``count`` SMS to distinct numbers; the batch id."""
    return create_batch(
        engine,
        created_by="alice",
        channel="sms",
        template_name=None,
        subject=None,
        body_template="Reminder",
        filter={},
        messages=[
            NewMessage("sms", number(n), f"Reminder {n}", idempotency_key=f"{key}{n}")
            for n in range(count)
        ],
        excluded=0,
        estimated_cost_pence=0.0,
    )


def status_counts(engine: Engine) -> dict[str, int]:
    with session_scope(engine, immediate=False) as s:
        rows = s.execute(select(Message.status, func.count()).group_by(Message.status))
        return {status: int(n) for status, n in rows}


def all_sent(engine: Engine, count: int) -> bool:
    """Whether all ``count`` messages went (sent, or already known to be delivered)."""
    counts = status_counts(engine)
    return set(counts) <= {"sent", "delivered"} and sum(counts.values()) == count


def message_ids(engine: Engine) -> list[int]:
    with session_scope(engine, immediate=False) as s:
        return list(s.scalars(select(Message.id).order_by(Message.id)))


def assert_each_sent_once(engine: Engine, standin: CountingStandin, count: int) -> None:
    """Every message is ``sent`` in the store and was accepted exactly once at the stand-in."""
    assert all_sent(engine, count), status_counts(engine)
    ids = {str(i) for i in message_ids(engine)}
    assert standin.duplicates() == {}, "sent twice"
    assert set(standin.accepted_count) == ids, "every message, and nothing else, arrived"


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    yield
    db.close_all()


@pytest.fixture
def shared_ops_url(
    ops_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """One ops store for every process of a test (see :func:`shared_store`)."""
    yield from shared_store(ops_backend, request, tmp_path)


def shared_store(ops_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file outside every data directory, or a PostgreSQL database of the test's
    own (dropped afterwards): its URL."""
    if ops_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared' / 'ops.sqlite'}"
        return
    databases = request.getfixturevalue("postgres")
    url = databases.create()
    try:
        yield url
    finally:
        db.close_all()
        databases.drop(url)


# ---- several dispatchers ------------------------------------------------------------------


def drain_with_dispatchers(
    tmp_path: Path,
    standin: CountingStandin,
    values: dict[str, Any],
    workers: int,
    count: int,
) -> tuple[Engine, list[subprocess.Popen[str]], list[Path]]:
    """Queue ``count`` SMS, start ``workers`` dispatcher processes (each with its own data
    directory, all on the ops store of ``values``) and wait until all are sent."""
    first = tmp_path / "worker0" / "data"
    engine = open_ops(settings_for(first, values))
    queue_sms(engine, count)
    processes, logs = [], []
    try:
        for n in range(workers):
            data_dir = tmp_path / f"worker{n}" / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            logs.append(tmp_path / f"worker{n}.log")
            processes.append(start_dispatcher(data_dir, values, logs[-1]))
        wait_for(
            lambda: all_sent(engine, count) or any(p.poll() is not None for p in processes),
            seconds=300,
            what="the batch to drain",
        )
    finally:
        codes = [stop(p) for p in processes]
    output = "\n".join(log.read_text() for log in logs)
    assert codes == [0] * workers, output[-3000:]
    return engine, processes, logs


def test_three_dispatcher_processes_send_each_message_exactly_once(
    tmp_path: Path, standin: CountingStandin, shared_ops_url: str
) -> None:
    count = 1500
    values = sms_settings(
        standin,
        ops_url=shared_ops_url,
        sms_rate_per_second=100,
        dispatch_batch_size=25,
    )
    started = time.monotonic()
    engine, _, _ = drain_with_dispatchers(tmp_path, standin, values, workers=3, count=count)
    assert_each_sent_once(engine, standin, count)
    times = sorted(t for _, t, _ in standin.arrivals)
    figure(
        "three dispatchers",
        backend=shared_ops_url.split(":")[0],
        messages=count,
        seconds=round(time.monotonic() - started, 1),
        per_second=round((len(times) - 1) / (times[-1] - times[0]), 1),
        per_connection=sorted(standin.connections().values()),
    )
    # The work was shared: three connections (one per process and run) carried it.
    per_connection = standin.connections()
    assert len(per_connection) >= 3, per_connection
    assert max(per_connection.values()) < count * 0.8, per_connection


# ---- two schedulers on one ops store ------------------------------------------------------

DAY = "2026-11-20"  # a Friday
STUDENTS = 120

# A wrapper around the real `schoolcomms scheduler` command: the clock starts at argv[1]
# (UK local time) and ticks; nothing starts before the file argv[2] exists, so two
# processes begin together. It writes its real start time and the clock's into argv[3].
SCHEDULER = """
import datetime as dt, json, os, sys, time
from pathlib import Path
from zoneinfo import ZoneInfo
import time_machine

start = dt.datetime.fromisoformat(sys.argv[1]).replace(tzinfo=ZoneInfo("Europe/London"))
go, out = Path(sys.argv[2]), Path(sys.argv[3])
from schoolcomms.cli import main  # imports done before the race starts
import schoolcomms.cli_scheduler, scheduler.loop, scheduler.jobs, senders.absence  # noqa
import senders.dispatcher, senders.messengers, senders.channels.textanywhere  # noqa
import scheduler.loop as loop

# A barrier after start-up: each scheduler decides which slot is due before either runs
# a job, so both plan at once. (Without it the slower starter sees the other's newer slot
# already in job_runs and rightly runs nothing: no race would be tested.)
prepare = loop.SchedulerLoop.prepare


def prepare_then_wait(self):
    prepare(self)
    (go.parent / f"prepared-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(go.parent.glob("prepared-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)


loop.SchedulerLoop.prepare = prepare_then_wait
while not go.exists():
    time.sleep(0.005)
out.write_text(json.dumps({"real": time.time(), "clock": start.timestamp(), "pid": os.getpid()}))
with time_machine.travel(start, tick=True):
    main(sys.argv[4:], prog_name="schoolcomms")
"""


def college(students: int) -> dict[str, list[dict[str, Any]]]:
    """``students`` 16–19 students, each marked O in the 09:00 lesson (in time), most with
    one portal account and some with two."""
    tables = copy.deepcopy(MINIMAL_SCHOOL)
    tables["students"] = [
        {
            "student_id": f"S{n:04d}",
            "forename": "Sam",
            "surname": f"Student{n}",
            "status": "C01",
            "cohort": "16-19",
        }
        for n in range(students)
    ]
    tables["lessons"] = [
        {
            "lesson_id": "L1",
            "date": DAY,
            "start_time": "09:00",
            "end_time": "10:00",
            "kind": "lesson",
        },
        {
            "lesson_id": "L2",
            "date": DAY,
            "start_time": "10:00",
            "end_time": "11:00",
            "kind": "lesson",
        },
    ]
    marks = []
    for n in range(students):
        marks.append(
            {
                "lesson_id": "L1",
                "student_id": f"S{n:04d}",
                "mark": "O",
                "recorded_at": f"{DAY} 09:10",
            }
        )
        marks.append(
            {
                "lesson_id": "L2",
                "student_id": f"S{n:04d}",
                "mark": "O",
                "recorded_at": f"{DAY} 10:30",
            }
        )
    tables["marks"] = marks
    links = []
    for n in range(students):
        links.append(
            {
                "account_id": f"A{n:04d}",
                "student_id": f"S{n:04d}",
                "mobile": f"07400 {n:06d}",
                "link_status": "active",
                "registered": "Y",
            }
        )
        if n % 4 == 0:  # a second parent's account
            links.append(
                {
                    "account_id": f"B{n:04d}",
                    "student_id": f"S{n:04d}",
                    "mobile": f"07401 {n:06d}",
                    "link_status": "active",
                    "registered": "Y",
                }
            )
    tables["portal_links"] = links
    for key in ("classes", "class_members", "contacts"):
        tables.pop(key, None)
    return tables


def two_machines(tmp_path: Path, ops_url: str) -> tuple[Path, Path]:
    """Two data directories ("machines") sharing one warehouse and one ops store."""
    a, b = tmp_path / "a" / "data", tmp_path / "b" / "data"
    tables = college(STUDENTS)
    write_extracts(tmp_path / "extracts", tables)
    report = load_paths([tmp_path / "extracts"], settings_for(a, {"ops_url": ops_url}))
    assert report.ok, report.summary()
    b.mkdir(parents=True)
    (b / "warehouse").symlink_to(a / "warehouse", target_is_directory=True)
    return a, b


def run_two_schedulers(
    tmp_path: Path, values: dict[str, Any], clocks: tuple[str, str], done: Callable[[], bool]
) -> tuple[list[dict[str, float]], list[str]]:
    """Run ``schoolcomms scheduler`` on both machines at once until ``done()``."""
    go = tmp_path / "go"
    processes, outs, logs = [], [], []
    for name, clock in zip("ab", clocks, strict=True):
        data_dir = tmp_path / name / "data"
        outs.append(tmp_path / f"{name}.start.json")
        logs.append(tmp_path / f"scheduler-{name}.log")
        with logs[-1].open("w") as handle:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        SCHEDULER,
                        clock,
                        str(go),
                        str(outs[-1]),
                        "--data-dir",
                        str(data_dir),
                        "scheduler",
                        "--log-format",
                        "json",
                    ],
                    env=env_for(values),
                    cwd=data_dir.parent,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
    try:
        # Both past their imports (the wrappers write nothing before): start the race.
        time.sleep(3)
        go.touch()
        wait_for(lambda: all(o.exists() for o in outs), 60, "both schedulers to start")
        wait_for(
            lambda: done() or any(p.poll() is not None for p in processes),
            300,
            "the schedulers to finish their work",
        )
    finally:
        codes = [stop(p) for p in processes]
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], "\n".join(t[-3000:] for t in texts)
    return [json.loads(o.read_text()) for o in outs], texts


def job_runs(engine: Engine, job: str) -> list[JobRun]:
    with session_scope(engine, immediate=False) as s:
        return list(s.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id)))


def real_times(runs: list[JobRun], starts: list[dict[str, float]]) -> list[tuple[float, float]]:
    """Each run's start and end on the real clock (each was recorded on its own clock)."""
    by_pid = {int(start["pid"]): start for start in starts}
    real = []
    for run in runs:
        start = by_pid[int(run.worker.rsplit(":", 1)[1])]
        shift = start["real"] - start["clock"]
        assert run.finished_at is not None
        real.append((run.started_at.timestamp() + shift, run.finished_at.timestamp() + shift))
    return real


def test_two_schedulers_on_one_ops_store_text_each_student_once(
    tmp_path: Path, standin: CountingStandin, shared_ops_url: str
) -> None:
    ops_url = shared_ops_url
    a, _ = two_machines(tmp_path, ops_url)
    values = sms_settings(
        standin,
        ops_url=ops_url,
        freshness_minutes=600,
        schedule_dispatch_seconds=1,
        sms_rate_per_second=0,
    )
    # Machine b's clock is two minutes ahead: at the start each runs its own latest slot
    # (10:40 and 10:42), both planning every student at the same moment.
    engine = open_ops(settings_for(a, values))
    accounts = STUDENTS + (STUDENTS + 3) // 4

    def done() -> bool:
        finished = [r for r in job_runs(engine, "absence_texts") if r.finished_at is not None]
        return len(finished) >= 2 and all_sent(engine, accounts)

    starts, logs = run_two_schedulers(
        tmp_path, values, (f"{DAY}T10:40:00", f"{DAY}T10:42:00"), done
    )
    runs = [r for r in job_runs(engine, "absence_texts") if r.outcome == "ok"]
    assert len(runs) == 2, [(r.slot, r.outcome, r.detail, r.error) for r in runs]
    every_run = [
        (r.slot, r.worker, r.outcome, r.detail, r.error) for r in job_runs(engine, "absence_texts")
    ]
    assert len({r.worker for r in runs}) == 2, (
        f"one run on each machine: {every_run}\n" + "\n".join(t[-4000:] for t in logs)
    )
    (a0, a1), (b0, b1) = real_times(runs, starts)
    assert a0 < b1 and b0 < a1, "the two runs did not overlap: no race was tested"
    figure(
        "two schedulers",
        backend=ops_url.split(":")[0],
        run_seconds=[round(a1 - a0, 2), round(b1 - b0, 2)],
        overlap_seconds=round(min(a1, b1) - max(a0, b0), 2),
        queued_by_each_run=[r.counts["queued"] for r in runs],
        students_by_each_run=[r.counts["students"] for r in runs],
    )
    assert sum(r.counts["queued"] for r in runs) == accounts, [r.counts for r in runs]
    assert sum(r.counts["students"] for r in runs) == STUDENTS
    with session_scope(engine, immediate=False) as s:
        notices = s.scalars(select(AbsenceNotice.student_id)).all()
        logged = s.execute(
            select(PastoralEntry.student_id, PastoralEntry.message_id).where(
                PastoralEntry.kind == "absence_text"
            )
        ).all()
    assert sorted(notices) == [f"S{n:04d}" for n in range(STUDENTS)]
    # One pastoral log entry per text, each naming its message.
    assert len(logged) == accounts and all(message for _, message in logged)
    assert len({message for _, message in logged}) == accounts
    # Counted at the stand-in: one text to each account, about its student's 09:00 lesson.
    assert all_sent(engine, accounts)
    assert standin.duplicates() == {}
    texts = [r for r in standin.sends()]
    assert len(texts) == accounts
    per_student = Counter(r.form["Body"].split()[1] for r in texts)
    assert set(per_student) == {f"S{n:04d}" for n in range(STUDENTS)}
    assert all("at 09:00" in r.form["Body"] for r in texts)
    marked = [line for text in logs for line in text.splitlines() if "runs.interrupted" in line]
    assert not marked, f"a live run was marked interrupted: {marked}"
