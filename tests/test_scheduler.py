"""The scheduler process: runs recorded, errors survived, no overlap, one at a time, a
clean stop, catch-up after downtime, the drop folder, the freshness guard and dispatch.

Everything runs against a real SQLite ops store and a real warehouse under
``tmp_path``, on an injected clock (:class:`FakeClock`), never by sleeping; the signal
and lock tests run the real ``schoolcomms scheduler`` in a subprocess.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import MINIMAL_SCHOOL, write_csv, write_extracts
from sqlalchemy import Engine, select

from pipelines.load import load_paths
from scheduler import runs
from scheduler.jobs import JobContext, JobResult, JobSpec, build_jobs
from scheduler.loop import AlreadyRunning, SchedulerLoop, scheduler_lock
from scheduler.slots import Window, latest_slot, next_slot
from scheduler.status import STATUS_COLUMNS, job_status
from schoolcomms.ops import db
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import JobRun
from schoolcomms.settings import ENV_PREFIX, Settings
from schoolcomms.warehouse import Warehouse
from senders.channels.files import read_sms_outbox
from senders.notices import notices_for
from senders.outbox import NewMessage, enqueue, message_log

UTC = dt.UTC
DAY = "2026-11-20"  # a Friday in GMT: UK local time is UTC
T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    """Aware UTC time that moves only when told."""

    def __init__(self, start: dt.datetime) -> None:
        self.t = start

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, **delta: float) -> None:
        self.t += dt.timedelta(**delta)


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    yield
    db.close_all()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(tmp_path / "data", env={}, overrides=overrides)


def make_loop(settings: Settings, *specs: JobSpec, clock: FakeClock, threaded: bool = False):
    return SchedulerLoop(settings, list(specs), now=clock, threaded=threaded, worker="test:1")


def job_runs(engine: Engine, job: str | None = None) -> list[JobRun]:
    query = select(JobRun).order_by(JobRun.slot, JobRun.id)
    if job is not None:
        query = query.where(JobRun.job == job)
    with session_scope(engine, immediate=False) as session:
        return list(session.scalars(query))


def returning(
    result: JobResult, calls: list[Any] | None = None
) -> Callable[[JobContext], JobResult]:
    def run(ctx: JobContext) -> JobResult:
        if calls is not None:
            calls.append(ctx.now())
        return dataclasses.replace(result, counts=dict(result.counts))

    return run


def real_job(settings: Settings, name: str, **changes: Any) -> JobSpec:
    spec = {s.name: s for s in build_jobs(settings)}[name]
    return dataclasses.replace(spec, **changes)


def seed_run(engine: Engine, job: str, slot: dt.datetime) -> None:
    run_id = runs.start_run(engine, job, slot, slot, "earlier:1")
    assert run_id is not None
    runs.finish_run(engine, run_id, "ok", slot + dt.timedelta(seconds=1))


# ---- recording, errors, overlap --------------------------------------------------------


def test_every_run_is_recorded_with_its_slot_outcome_and_counts(tmp_path):
    clock = FakeClock(T0 + dt.timedelta(seconds=3))
    ok_calls: list[dt.datetime] = []
    loop = make_loop(
        make_settings(tmp_path),
        JobSpec(
            "often",
            dt.timedelta(seconds=10),
            returning(JobResult("ok", {"sent": 2}, "two"), ok_calls),
        ),
        JobSpec(
            "hourly", dt.timedelta(hours=1), returning(JobResult("skipped", {}, "nothing to do"))
        ),
        clock=clock,
    )
    loop.prepare()
    loop.tick()  # first start: both run at once, for their newest slot
    clock.advance(seconds=10)
    loop.tick()  # only "often" has a new slot
    loop.tick()  # nothing new: a slot runs once
    rows = job_runs(loop.engine)
    assert [(r.job, r.slot, r.outcome) for r in rows] == [
        ("often", T0, "ok"),
        ("hourly", T0, "skipped"),
        ("often", T0 + dt.timedelta(seconds=10), "ok"),
    ]
    first = rows[0]
    assert first.started_at == T0 + dt.timedelta(seconds=3)
    assert first.finished_at == first.started_at
    assert (first.counts, first.detail, first.error, first.worker) == (
        {"sent": 2},
        "two",
        None,
        "test:1",
    )
    assert rows[1].detail == "nothing to do"
    assert ok_calls == [T0 + dt.timedelta(seconds=3), T0 + dt.timedelta(seconds=13)]


def test_an_exception_is_recorded_and_the_loop_goes_on(tmp_path, caplog):
    clock = FakeClock(T0)
    attempts: list[dt.datetime] = []

    def flaky(ctx: JobContext) -> JobResult:
        attempts.append(ctx.now())
        if len(attempts) % 2:
            raise RuntimeError("MIS share offline")
        return JobResult(counts={"files": 1})

    steady: list[dt.datetime] = []
    loop = make_loop(
        make_settings(tmp_path),
        JobSpec("flaky", dt.timedelta(minutes=1), flaky),
        JobSpec("steady", dt.timedelta(minutes=1), returning(JobResult(), steady)),
        clock=clock,
    )

    def sleep(seconds: float) -> None:  # the loop's sleep, on the fake clock
        clock.advance(seconds=max(seconds, 0.25))
        if clock() > T0 + dt.timedelta(minutes=3, seconds=30):
            loop.request_stop()

    loop.sleep = sleep
    loop.run_forever()
    flaky_runs = job_runs(loop.engine, "flaky")
    assert [r.outcome for r in flaky_runs] == ["error", "ok", "error", "ok"]
    assert [r.slot for r in flaky_runs] == [T0 + dt.timedelta(minutes=n) for n in range(4)]
    assert flaky_runs[0].detail == "RuntimeError: MIS share offline"
    assert "Traceback" in flaky_runs[0].error and "MIS share offline" in flaky_runs[0].error
    assert all(r.finished_at is not None for r in flaky_runs)
    assert len(steady) == 4, "the other job ran on time throughout"
    failures = [r for r in caplog.records if getattr(r, "event", "") == "job.failed"]
    assert len(failures) == 2 and failures[0].job == "flaky" and failures[0].exc_info


def test_a_slow_job_is_not_started_again_while_it_runs(tmp_path):
    clock = FakeClock(T0)
    started, release = threading.Event(), threading.Event()
    lock = threading.Lock()
    state = {"calls": 0, "running": 0, "most": 0}

    def slow(ctx: JobContext) -> JobResult:
        with lock:
            state["calls"] += 1
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        started.set()
        release.wait(20)
        with lock:
            state["running"] -= 1
        return JobResult(counts={"sent": 1})

    loop = make_loop(
        make_settings(tmp_path),
        JobSpec("slow", dt.timedelta(seconds=15), slow),
        clock=clock,
        threaded=True,
    )
    loop.prepare()
    loop.tick()
    assert started.wait(10)
    for _ in range(4):  # four more slots fall due while the first run goes on
        clock.advance(seconds=15)
        loop.tick()
    assert state["calls"] == 1 and loop.passed_over["slow"] == 4
    assert [r.outcome for r in job_runs(loop.engine)] == ["running"]
    release.set()
    assert loop.wait_for_jobs(10)
    assert [(r.slot, r.outcome) for r in job_runs(loop.engine)] == [(T0, "ok")]
    clock.advance(seconds=15)
    loop.tick()
    assert loop.wait_for_jobs(10)
    assert state["calls"] == 2 and state["most"] == 1
    assert [r.slot for r in job_runs(loop.engine)] == [T0, T0 + dt.timedelta(seconds=75)]


def test_one_scheduler_at_a_time(tmp_path):
    settings = make_settings(tmp_path)
    with (
        scheduler_lock(settings),
        pytest.raises(AlreadyRunning, match="Another scheduler is already running"),
        scheduler_lock(settings),
    ):
        pass
    with scheduler_lock(settings):  # free again once the first let go
        pass


# ---- the real process: signals and the lock --------------------------------------------


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return {**env, "PYTHONUNBUFFERED": "1"}


def _rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    path = data_dir / "ops.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=10) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:  # the tables are not there yet
            return []


def _wait_for(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_sigterm_stops_the_real_scheduler_cleanly_and_a_second_one_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.toml").write_text("schedule_dispatch_seconds = 1\n")
    argv = [sys.executable, "-m", "schoolcomms", "--data-dir", str(data), "scheduler"]
    process = subprocess.Popen(
        argv,
        env=_clean_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        done = "SELECT count(*) FROM job_runs WHERE job = 'dispatch' AND finished_at IS NOT NULL"
        _wait_for(lambda: (_rows(data, done) or [(0,)])[0][0] >= 2)
        second = subprocess.run(
            [*argv, "--once"],
            env=_clean_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stderr
        assert "Another scheduler is already running" in second.stderr
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "event=scheduler.stopped" in stderr
    rows = _rows(data, "SELECT job, outcome, finished_at FROM job_runs")
    assert {job for job, _, _ in rows} >= {"dispatch", "delivery", "load_drop_folder"}
    assert all(outcome in ("ok", "skipped") and finished for _, outcome, finished in rows), rows


HARNESS = """
import datetime as dt, sys, time
from pathlib import Path
from scheduler.jobs import JobResult, JobSpec
from scheduler.loop import SchedulerLoop, install_signal_handlers, scheduler_lock
from schoolcomms.settings import Settings

marker = Path(sys.argv[2])

def slow(ctx):
    marker.write_text("started")
    time.sleep(1.5)
    return JobResult(counts={"slept": 1.5})

settings = Settings(sys.argv[1], env={})
with scheduler_lock(settings):
    loop = SchedulerLoop(settings, [JobSpec("slow", dt.timedelta(hours=1), slow)])
    install_signal_handlers(loop)
    loop.run_forever()
print("stopped cleanly")
"""


def test_sigterm_during_a_job_lets_it_finish_then_exits_0(tmp_path):
    data, marker = tmp_path / "data", tmp_path / "started"
    process = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(data), str(marker)],
        env=_clean_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(marker.exists)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "stopped cleanly" in stdout
    [(outcome, counts, started, finished)] = _rows(
        data, "SELECT outcome, counts, started_at, finished_at FROM job_runs WHERE job = 'slow'"
    )
    assert (outcome, counts) == ("ok", '{"slept": 1.5}')
    took = dt.datetime.fromisoformat(finished) - dt.datetime.fromisoformat(started)
    assert took >= dt.timedelta(seconds=1.5), "the job ran to its end"


# ---- catch-up after downtime -----------------------------------------------------------


def test_catch_up_after_downtime_within_the_cut_off_and_not_beyond(tmp_path):
    settings = make_settings(tmp_path)
    calls: list[dt.datetime] = []
    hourly = JobSpec(
        "hourly",
        dt.timedelta(hours=1),
        returning(JobResult(), calls),
        catch_up=dt.timedelta(minutes=30),
    )
    engine = open_ops(settings)
    seed_run(engine, "hourly", T0 - dt.timedelta(hours=2))  # the last run was for 08:00

    # Back at 09:20: the 09:00 slot is 20 minutes late, within the cut-off: run it now.
    clock = FakeClock(T0 - dt.timedelta(minutes=40))
    loop = make_loop(settings, hourly, clock=clock)
    loop.prepare()
    loop.tick()
    clock.advance(minutes=1)
    loop.tick()  # once only
    assert calls == [T0 - dt.timedelta(minutes=40)]
    caught_up = job_runs(engine)[-1]
    assert (caught_up.slot, caught_up.outcome) == (T0 - dt.timedelta(hours=1), "ok")
    assert caught_up.detail.startswith("catch-up run, 20 min after its slot")

    # Down again until 10:45: the 10:00 slot is 45 minutes late, beyond it: skipped, recorded.
    clock = FakeClock(T0 + dt.timedelta(minutes=45))
    loop = make_loop(settings, hourly, clock=clock)
    loop.prepare()
    loop.tick()
    assert len(calls) == 1
    missed = job_runs(engine)[-1]
    assert (missed.slot, missed.outcome) == (T0, "skipped")
    assert "45 min late, beyond this job's cut-off of 30 min" in missed.detail
    clock.advance(minutes=15)  # 11:00, the next slot, runs as usual
    loop.tick()
    assert calls[-1] == T0 + dt.timedelta(hours=1)
    assert [r.outcome for r in job_runs(engine)] == ["ok", "ok", "skipped", "ok"]


def test_absence_texts_catch_up_only_within_the_school_day(tmp_path):
    settings = make_settings(tmp_path)
    calls: list[dt.datetime] = []
    absence = real_job(settings, "absence_texts", run=returning(JobResult(), calls))
    assert absence.window == Window(dt.time(8), dt.time(18))  # default end: absence_text_latest
    engine = open_ops(settings)
    seed_run(engine, "absence_texts", T0)

    clock = FakeClock(T0 + dt.timedelta(minutes=31))  # back at 10:31: run at once
    loop = make_loop(settings, absence, clock=clock)
    loop.prepare()
    loop.tick()
    assert calls == [T0 + dt.timedelta(minutes=31)]
    assert job_runs(engine)[-1].slot == T0 + dt.timedelta(minutes=30)

    clock = FakeClock(T0 + dt.timedelta(hours=9, minutes=5))  # back at 19:05: the day is over
    loop = make_loop(settings, absence, clock=clock)
    loop.prepare()
    loop.tick()
    assert len(calls) == 1, "no absence run after the school day"
    last = job_runs(engine)[-1]
    assert (last.slot, last.outcome) == (T0.replace(hour=18), "skipped")
    assert loop.scheduler.job("absence_texts").next_run == dt.datetime(2026, 11, 21, 8, tzinfo=UTC)


def test_slots_follow_the_school_day_in_uk_time_across_summer_time():
    window, every = Window(dt.time(8), dt.time(18)), dt.timedelta(minutes=2)
    june = dt.datetime(2026, 6, 15, tzinfo=UTC)  # BST: 08:00 local is 07:00 UTC
    assert next_slot(every, window, june.replace(hour=17)) == june.replace(day=16, hour=7)
    assert latest_slot(every, window, june.replace(hour=20)) == june.replace(hour=17)
    assert latest_slot(every, window, june.replace(hour=9, minute=5, second=9)) == june.replace(
        hour=9, minute=4
    )
    assert next_slot(every, None, june.replace(second=1)) == june.replace(minute=2)


def test_a_run_left_running_by_a_dead_scheduler_is_marked_and_status_shows_it(tmp_path):
    settings = make_settings(tmp_path)
    engine = open_ops(settings)
    assert runs.start_run(engine, "dispatch", T0, T0, "dead:9") is not None  # never finished
    clock = FakeClock(T0 + dt.timedelta(minutes=10))
    status = job_status(engine, settings, now=clock())
    assert list(status.columns) == STATUS_COLUMNS
    rows = status.set_index("job")
    assert rows.loc["dispatch", "last_outcome"] == "running"
    assert not rows.loc["dispatch", "overdue"], "a run under way for ten minutes is not overdue"
    assert rows.loc["dispatch", "schedule"] == "every 15 s"
    assert rows.loc["absence_texts", "schedule"] == "every 2 min, 08:00–18:00"

    loop = make_loop(
        settings, real_job(settings, "dispatch", run=returning(JobResult())), clock=clock
    )
    loop.prepare()
    [interrupted] = job_runs(engine)
    assert (interrupted.outcome, interrupted.error) == ("error", runs.INTERRUPTED)
    loop.tick()
    rows = job_status(engine, settings, now=clock()).set_index("job")
    assert rows.loc["dispatch", "last_outcome"] == "ok"
    assert rows.loc["dispatch", "next_due"] == T0 + dt.timedelta(minutes=10, seconds=15)
    assert not rows.loc["dispatch", "overdue"]
    assert pd.isna(rows.loc["absence_texts", "last_outcome"]), "never ran"
    later = job_status(engine, settings, now=clock() + dt.timedelta(minutes=5)).set_index("job")
    assert later.loc["dispatch", "overdue"], "five minutes without a run: no scheduler"


# ---- the jobs ----------------------------------------------------------------------------


def _settle(*paths: Path) -> None:
    old = time.time() - 120
    for path in paths:
        os.utime(path, (old, old))


def test_the_drop_folder_loads_good_files_and_refuses_bad_ones(tmp_path):
    settings = make_settings(tmp_path)
    drop = settings.data_dir / "drop"
    good = write_extracts(drop, MINIMAL_SCHOOL)
    partial = drop / "contacts.csv.part"
    partial.write_text("still copying")
    _settle(*good, partial)
    clock = FakeClock(T0)
    loop = make_loop(settings, real_job(settings, "load_drop_folder"), clock=clock)
    loop.prepare()
    loop.tick()
    run = job_runs(loop.engine)[-1]
    assert run.outcome == "ok", run.error
    assert run.counts["status"] == "loaded" and run.counts["files"] == len(good)
    assert run.counts["generation"] == 1
    assert Warehouse.from_settings(settings).generation() == 1
    done = drop / "done" / "2026-11-20_100000"
    assert sorted(p.name for p in done.iterdir()) == sorted(p.name for p in good)
    assert [p.name for p in drop.iterdir() if p.is_file()] == ["contacts.csv.part"]

    students = [dict(row) for row in MINIMAL_SCHOOL["students"]]
    students[0]["date_of_birth"] = "next tuesday"
    bad = write_csv(drop / "students.csv", students)
    _settle(bad)
    fresh = write_csv(drop / "staff.csv", MINIMAL_SCHOOL["staff"])  # still being written
    clock.advance(minutes=5)
    loop.tick()
    run = job_runs(loop.engine)[-1]
    assert run.outcome == "error" and run.counts["status"] == "refused"
    assert run.error.startswith("Refused: 1 error(s)")
    refused = drop / "refused" / "2026-11-20_100500"
    assert sorted(p.name for p in refused.iterdir()) == ["load-report.txt", "students.csv"]
    report = (refused / "load-report.txt").read_text()
    assert "date_of_birth" in report and "next tuesday" in report and "Fix:" in report
    assert Warehouse.from_settings(settings).generation() == 1, "a refused load changes nothing"
    assert fresh.exists(), "a file still being written is left alone"
    told = notices_for(loop.engine, audiences=["data_manager"])
    assert [n["source"] for n in told] == ["data"] and told[0]["urgent"]
    assert "refused" in told[0]["title"] and "date_of_birth" in told[0]["body"]
    assert str(refused) in told[0]["body"]


def _college_day(folder: Path, marks: list[dict[str, str]]) -> Path:
    write_extracts(
        folder,
        {
            "students": [
                {
                    "student_id": s,
                    "forename": "Sam",
                    "surname": s,
                    "status": "C01",
                    "cohort": "16-19",
                }
                for s in ("S1", "S2")
            ],
            "lessons": [
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
            ],
            "marks": marks,
            "portal_links": [
                {
                    "account_id": "A1",
                    "student_id": "S1",
                    "mobile": "07400 100001",
                    "link_status": "active",
                    "registered": "Y",
                }
            ],
        },
    )
    return folder


def _mark(lesson: str, student: str, code: str, at: str) -> dict[str, str]:
    return {"lesson_id": lesson, "student_id": student, "mark": code, "recorded_at": f"{DAY} {at}"}


def test_stale_registers_pause_absence_texts_until_newer_marks_arrive(tmp_path):
    settings = make_settings(tmp_path)
    marks = [_mark("L1", "S1", "O", "09:10"), _mark("L2", "S2", "/", "10:05")]
    assert load_paths([_college_day(tmp_path / "day", marks)], settings).ok
    clock = FakeClock(T0.replace(minute=40))  # S1's text is due (10:20); newest mark 10:05
    loop = make_loop(settings, real_job(settings, "absence_texts"), clock=clock)
    loop.prepare()
    loop.tick()
    run = job_runs(loop.engine)[-1]
    assert run.outcome == "skipped"
    assert "stale" in run.detail and "10:05" in run.detail and "freshness_minutes" in run.detail
    assert run.counts["age_minutes"] == 35 and run.counts["fresh"] is False
    assert message_log(loop.engine).empty, "no text from stale registers"
    told = notices_for(loop.engine, audiences=["data_manager"])
    assert len(told) == 1 and "stale" in told[0]["title"] and "10:05" in told[0]["body"]
    clock.advance(minutes=2)
    loop.tick()
    assert job_runs(loop.engine)[-1].outcome == "skipped"
    assert len(notices_for(loop.engine, audiences=["data_manager"])) == 1, "told once a spell"

    newer = [*marks, _mark("L2", "S1", "/", "10:39")]
    write_extracts(tmp_path / "newer", {"marks": newer})
    assert load_paths([tmp_path / "newer" / "marks.csv"], settings).ok
    clock.advance(minutes=2)
    loop.tick()
    run = job_runs(loop.engine)[-1]
    assert run.outcome == "ok", run.error
    assert (run.counts["queued"], run.counts["students"], run.counts["fresh"]) == (1, 1, True)
    sms = message_log(loop.engine)
    assert sms["to_address"].tolist() == ["+447400100001"]
    assert "did not attend their lesson today at 09:00" in sms["body"].iloc[0]


def test_fresh_registers_let_absence_texts_run(tmp_path):
    settings = make_settings(tmp_path, freshness_minutes=60)
    marks = [_mark("L1", "S1", "O", "09:10"), _mark("L2", "S2", "/", "10:05")]
    assert load_paths([_college_day(tmp_path / "day", marks)], settings).ok
    loop = make_loop(
        settings, real_job(settings, "absence_texts"), clock=FakeClock(T0.replace(minute=40))
    )
    loop.prepare()
    loop.tick()
    run = job_runs(loop.engine)[-1]
    assert (run.outcome, run.counts["queued"], run.counts["age_minutes"]) == ("ok", 1, 35)


def test_the_dispatch_job_sends_queued_messages_through_the_file_gateway(tmp_path):
    settings = make_settings(tmp_path)
    engine = open_ops(settings)
    enqueue(
        engine,
        [
            NewMessage("sms", "+447400100001", "Trip letter home today", idempotency_key="t-sms"),
            NewMessage(
                "email",
                "parent@home.example.com",
                "Hello",
                subject="Trip",
                idempotency_key="t-mail",
            ),
        ],
        "test",
    )
    loop = make_loop(settings, real_job(settings, "dispatch"), clock=FakeClock(T0))
    loop.prepare()
    loop.tick()
    run = job_runs(engine)[-1]
    assert run.outcome == "ok", run.error
    assert (run.counts["claimed"], run.counts["sent"]) == (2, 2)
    assert [(m["to"], m["body"]) for m in read_sms_outbox(settings.data_dir)] == [
        ("+447400100001", "Trip letter home today")
    ]
    assert len(list((settings.data_dir / "outbox" / "email").glob("*.eml"))) == 1
    assert set(message_log(engine)["status"]) == {"sent"}
