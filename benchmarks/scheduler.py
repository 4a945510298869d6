"""Scheduler benchmarks (issue 4). Each scenario runs in a fresh process, prints one JSON line.

``python -m benchmarks.scheduler NAME ARGS…`` (:func:`bench` calls it):

``build DATA_DIR STUDENTS [ORDER]``
    Build (once) the absence-text warehouse of :func:`absence_warehouse` and keep it;
    ORDER (``lesson`` or ``student``) is the order of rows in the marks extract.
``plan DATA_DIR REPEATS``
    :func:`senders.absence.plan_at` at :data:`AT`: the first call in this new process
    (imports, first queries, opening the snapshot), ``REPEATS`` more on the warm
    connection (as the scheduler process runs it every two minutes), ``REPEATS`` each on
    a newly opened connection (as after a load), and its steps timed one by one.
``plan_naive DATA_DIR``
    The baseline: a straightforward per-student implementation of the same rule (every
    mark, lesson, student and portal link pulled out of DuckDB into pandas, then a loop
    over each student's marks in Python). Its texts are compared with ``plan_at``'s.
``idle_tick DATA_DIR ITERATIONS`` / ``idle_schedule JOBS ITERATIONS``
    One iteration of :meth:`scheduler.loop.SchedulerLoop.run_forever` with nothing due
    (tick, prune, idle_seconds; the sleep left out), against a real SQLite ops store,
    with the real job table; and the baseline: one plain ``schedule.Scheduler``
    ``run_pending()`` (and ``idle_seconds``) with as many plain jobs.

The warehouse: ``STUDENTS`` students (cohort ``16-19`` but 4% ``adult``; 2.5% left,
status ``L01``), one school day (:data:`DAY`) of five one-hour lessons of 20 students
each plus three weeks of earlier school days (16 days, 80 marks a student), about 0.9%
of marks ``O`` (about 4.4% of students with an ``O`` today), 5% of marks recorded after
the lesson ended and 1% with no ``recorded_at``; portal links for 80% of students (a
second account for a quarter of those; some suspended, unregistered or without a
mobile). All loaded through :func:`pipelines.load.load_paths`, so the schema is the real
one. :func:`bench` (the ``scheduler`` group of ``python -m benchmarks``) runs them all.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.messaging import peak_mb

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.date(2026, 11, 20)  # a Friday
AT = dt.datetime(2026, 11, 20, 16, 0)  # every lesson of the day is over and due
HISTORY_DAYS = 15  # three weeks of earlier school days
PERIODS = (
    ("09:00", "10:00"),
    ("10:00", "11:00"),
    ("11:20", "12:20"),
    ("13:10", "14:10"),
    ("14:10", "15:10"),
)
GROUP = 20  # students a lesson
SIZES = (1_000, 10_000, 50_000, 100_000)
TARGETS = {10_000: 0.2, 50_000: 1.0}  # seconds (issue 4)
TICK_ITERATIONS = 2_000
TICK_TARGET = 0.05


def school_days(day: dt.date, before: int) -> list[dt.date]:
    """``day`` and the ``before`` weekdays preceding it, oldest first."""
    days, current = [day], day
    while len(days) <= before:
        current -= dt.timedelta(days=1)
        if current.weekday() < 5:
            days.append(current)
    return sorted(days)


def write_extracts(folder: Path, students: int, order: str = "lesson") -> list[Path]:
    """Write students, staff, lessons, marks and portal_links CSVs for ``students``.

    ``order`` is the order of marks.csv: by ``lesson`` (day, period, lesson) or by
    ``student`` (then day and period), as some MIS exports list them.
    """
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    groups = -(-students // GROUP)
    days = ", ".join(
        f"({n}, DATE '{d.isoformat()}')" for n, d in enumerate(school_days(DAY, HISTORY_DAYS))
    )
    periods = ", ".join(f"({p}, '{s}', '{e}')" for p, (s, e) in enumerate(PERIODS, 1))
    by = {"lesson": "d, p, lesson_id", "student": "student_id, d, p"}[order]
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE days(d INTEGER, day DATE); INSERT INTO days VALUES {days}")
    con.execute("CREATE TEMP TABLE periods(p INTEGER, s VARCHAR, e VARCHAR)")
    con.execute(f"INSERT INTO periods VALUES {periods}")
    con.execute(f"""COPY (SELECT 'STU' || lpad(i::VARCHAR, 7, '0') AS student_id,
        'Forename' || i AS forename, 'Surname' || (i % 977) AS surname,
        CASE WHEN i % 40 = 7 THEN 'L01' ELSE 'C01' END AS status,
        CASE WHEN i % 25 = 3 THEN 'adult' ELSE '16-19' END AS cohort,
        CASE WHEN i % 2 = 0 THEN '12' ELSE '13' END AS year_group
        FROM range({students}) t(i)) TO '{folder / "students.csv"}' (HEADER)""")
    con.execute(f"""COPY (SELECT 'T' || i AS staff_id, 'Staff' || i AS surname
        FROM range(300) t(i)) TO '{folder / "staff.csv"}' (HEADER)""")
    con.execute(f"""COPY (SELECT 'L' || d || '-' || p || '-' || g AS lesson_id,
        strftime(day, '%Y-%m-%d') AS date, s AS start_time, e AS end_time,
        'lesson' AS kind, p::VARCHAR AS period, 'T' || (g % 300) AS staff_id
        FROM days, periods, range({groups}) t(g)) TO '{folder / "lessons.csv"}' (HEADER)""")
    # Student i is in group (i // 20 + 7p) mod groups in period p; marks from a hash.
    con.execute(f"""COPY (
        WITH m AS (
            SELECT d, day, p, s, e, i, hash(d, p, i) % 1000 AS h, hash(i, d, p, 'r') % 100 AS r
            FROM days, periods, range({students}) t(i))
        SELECT 'L' || d || '-' || p || '-' || ((i // {GROUP} + 7 * p) % {groups}) AS lesson_id,
            'STU' || lpad(i::VARCHAR, 7, '0') AS student_id,
            CASE WHEN h < 9 THEN 'O' WHEN h < 30 THEN 'L' WHEN h < 40 THEN 'N'
                 WHEN h < 45 THEN 'I' ELSE '/' END AS mark,
            CASE WHEN h BETWEEN 9 AND 29 THEN '7' END AS minutes_late,
            CASE WHEN r = 99 THEN NULL
                 WHEN r < 5 THEN strftime(day + e::TIME + INTERVAL 90 MINUTE,
                                                '%Y-%m-%d %H:%M')
                 ELSE strftime(day + s::TIME + to_minutes((5 + i % 10)::BIGINT),
                               '%Y-%m-%d %H:%M') END AS recorded_at,
            'T' || (i % 300) AS recorded_by
        FROM m ORDER BY {by}) TO '{folder / "marks.csv"}' (HEADER)""")
    con.execute(f"""COPY (
        SELECT 'ACC' || lpad(i::VARCHAR, 7, '0') AS account_id,
            'STU' || lpad(i::VARCHAR, 7, '0') AS student_id, 'Parent ' || i AS name,
            CASE WHEN i % 61 = 5 THEN NULL ELSE '07400 ' || (100000 + i)::VARCHAR END AS mobile,
            CASE WHEN i % 53 = 4 THEN 'N' ELSE 'Y' END AS registered,
            CASE WHEN i % 37 = 6 THEN 'suspended' ELSE 'active' END AS link_status
        FROM range({students}) t(i) WHERE i % 10 < 8
        UNION ALL
        SELECT 'ACB' || lpad(i::VARCHAR, 7, '0'), 'STU' || lpad(i::VARCHAR, 7, '0'),
            'Carer ' || i, '07401 ' || (100000 + i)::VARCHAR, 'Y', 'active'
        FROM range({students}) t(i) WHERE i % 10 < 8 AND i % 4 = 0
        ) TO '{folder / "portal_links.csv"}' (HEADER)""")
    con.close()
    return [folder / f"{n}.csv" for n in ("staff", "students", "portal_links", "lessons", "marks")]


def absence_warehouse(data_dir: Path, students: int, order: str = "lesson") -> Path:
    """The absence-text warehouse of ``students`` students, built once and kept.

    ``order``: the order of the marks extract (see :func:`write_extracts`).
    """
    from pipelines.load import load_paths
    from schoolcomms.settings import Settings

    stamp = data_dir / f"STUDENTS-{students}-{order}"
    if stamp.exists() and (data_dir / "warehouse" / "CURRENT").exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    files = write_extracts(data_dir / "extracts", students, order)
    report = load_paths(files, Settings(data_dir, env={}), actor="bench")
    if not report.ok:
        raise SystemExit("could not load the absence-text warehouse: " + report.summary())
    shutil.rmtree(data_dir / "extracts")  # the archive keeps a copy
    stamp.write_text("ok")
    return data_dir


# ---- absence-text planning: ours and the baseline ---------------------------------------


def _open(data_dir: str) -> tuple[Any, Any, Any]:
    from schoolcomms.ops.db import open_ops
    from schoolcomms.settings import Settings
    from schoolcomms.warehouse import Warehouse

    settings = Settings(data_dir, env={})
    return settings, Warehouse.from_settings(settings), open_ops(settings)


def _summary(texts: list[Any]) -> dict[str, Any]:
    return {
        "texts": len(texts),
        "students_texted": len({t.student_id for t in texts}),
        "digest": hash_texts(texts),
    }


def hash_texts(texts: list[Any]) -> str:
    """A digest of the texts in order, to show two planners agree."""
    import hashlib

    return hashlib.sha256(
        json.dumps([t.as_json() for t in texts], sort_keys=True).encode()
    ).hexdigest()[:16]


def day_figures(warehouse: Any) -> dict[str, int]:
    """Students, marks (all and today's) and O marks today in the warehouse."""
    _, rows = warehouse.rows(
        "SELECT (SELECT count(*) FROM students), (SELECT count(*) FROM marks), "
        "count(*), count(*) FILTER (WHERE m.mark = 'O') "
        "FROM marks m JOIN lessons l USING (lesson_id) WHERE l.date = $day",
        {"day": DAY},
    )
    return dict(zip(("students", "marks", "marks_today", "o_today"), rows[0], strict=True))


def _step(steps: dict[str, list[float]], name: str, since: float) -> float:
    now = time.perf_counter()
    steps.setdefault(name, []).append(now - since)
    return now


def plan(data_dir: str, repeats: str) -> dict[str, Any]:
    """plan_at in a new process: the first (cold) call, then ``repeats`` warm ones."""
    from reports.absence import first_absences, portal_accounts
    from senders import absence

    settings, warehouse, engine = _open(data_dir)
    start = time.perf_counter()
    texts = absence.plan_at(settings, warehouse, engine, AT)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(int(repeats)):
        start = time.perf_counter()
        again = absence.plan_at(settings, warehouse, engine, AT)
        warm.append(time.perf_counter() - start)
        assert again == texts
    # After a load the scheduler opens the new snapshot: the first call on a new connection.
    reopened = []
    for _ in range(int(repeats)):
        warehouse._forget_reader(warehouse.path_for(warehouse.generation()))
        start = time.perf_counter()
        absence.plan_at(settings, warehouse, engine, AT)
        reopened.append(time.perf_counter() - start)
    # Where a warm call goes: the same steps as plan_at, timed one by one (medians).
    rule = absence.Rule.from_settings(settings)
    steps: dict[str, list[float]] = {}
    for _ in range(max(1, int(repeats))):
        clock = time.perf_counter()
        candidates = first_absences(
            warehouse, day=AT.date(), at=AT, status_pattern=rule.status_pattern, cohort=rule.cohort
        )
        clock = _step(steps, "first_absences", clock)
        accounts = portal_accounts(warehouse, candidates["student_id"].tolist())
        clock = _step(steps, "portal_accounts", clock)
        notified = absence.notified_today(engine, AT.date())
        clock = _step(steps, "notified_today", clock)
        absence.plan(candidates, accounts, at=AT, rule=rule, already_notified=notified)
        _step(steps, "plan", clock)
    parts = {name: statistics.median(times) for name, times in steps.items()}
    return {
        **_summary(texts),
        **day_figures(warehouse),
        "cold_seconds": cold,
        "warm_seconds": warm,
        "seconds": statistics.median(warm) if warm else cold,
        "reopen_seconds": statistics.median(reopened) if reopened else cold,
        "parts": parts,
        "candidates": len(candidates),
        "peak_mb": peak_mb(),
    }


def _like(pattern: str) -> re.Pattern[str]:
    """SQL LIKE (``_`` one character, ``%`` any run) as a regular expression."""
    parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def naive_plan(settings: Any, warehouse: Any, engine: Any, at: dt.datetime) -> list[Any]:
    """The baseline: the rule written per student in Python over whole tables in pandas.

    Every mark, lesson, student and portal link comes out of DuckDB; each student's marks
    are gathered, today's known ``O`` lesson marks kept, the first one checked. The same
    texts as :func:`senders.absence.plan_at`, in the same order.
    """
    import pandas as pd

    from senders.absence import AbsenceText, Rule, notified_today

    rule = Rule.from_settings(settings)
    if at.time() > rule.latest:
        return []
    status = _like(rule.status_pattern)
    day = at.date()
    lessons = {
        row.lesson_id: row
        for row in warehouse.query(
            "SELECT lesson_id, date, start_time, end_time, kind FROM lessons"
        ).itertuples(index=False)
    }
    marks: dict[str, list[Any]] = {}
    for row in warehouse.query(
        "SELECT lesson_id, student_id, mark, recorded_at FROM marks"
    ).itertuples(index=False):
        marks.setdefault(row.student_id, []).append(row)
    links: dict[str, list[Any]] = {}
    for row in warehouse.query(
        "SELECT account_id, student_id, mobile_e164, link_status, registered FROM portal_links"
    ).itertuples(index=False):
        links.setdefault(row.student_id, []).append(row)
    notified = notified_today(engine, day)
    students = warehouse.query(
        "SELECT student_id, forename, surname, status, cohort FROM students"
    ).itertuples(index=False)
    texts = []
    for student in sorted(students, key=lambda s: s.student_id):
        if not status.fullmatch(str(student.status)) or student.cohort != rule.cohort:
            continue
        absences = []
        for mark in marks.get(student.student_id, []):
            lesson = lessons[mark.lesson_id]
            kind = lesson.kind if isinstance(lesson.kind, str) else "lesson"
            if lesson.date.date() != day or kind != "lesson" or str(mark.mark).upper() != "O":
                continue
            recorded = None if mark.recorded_at is pd.NaT else mark.recorded_at
            if recorded is not None and recorded.to_pydatetime() > at:
                continue
            absences.append((lesson.start_time, lesson.lesson_id, lesson, recorded))
        if not absences or student.student_id in notified:
            continue
        start, lesson_id, lesson, recorded = min(absences, key=lambda a: (a[0], a[1]))
        end = dt.datetime.combine(day, lesson.end_time)
        if recorded is None or recorded.to_pydatetime() > end or at < end + rule.delay:
            continue
        words = rule.template.format(
            student_id=student.student_id,
            lesson_start=start.strftime("%H:%M"),
            link=rule.link,
            forename=student.forename or "",
            surname=student.surname or "",
        )
        for link in sorted(links.get(student.student_id, []), key=lambda k: k.account_id):
            if link.link_status != "active" or link.registered is False:
                continue
            if not isinstance(link.mobile_e164, str):
                continue
            texts.append(
                AbsenceText(
                    student.student_id,
                    lesson_id,
                    start.strftime("%H:%M"),
                    link.account_id,
                    link.mobile_e164,
                    words,
                )
            )
    return texts


def plan_naive(data_dir: str) -> dict[str, Any]:
    """The baseline planner in a new process, once."""
    settings, warehouse, engine = _open(data_dir)
    start = time.perf_counter()
    texts = naive_plan(settings, warehouse, engine, AT)
    return {**_summary(texts), "seconds": time.perf_counter() - start, "peak_mb": peak_mb()}


def build(data_dir: str, students: str, order: str = "lesson") -> dict[str, Any]:
    """:func:`absence_warehouse` in its own process (built once, then reused)."""
    start = time.perf_counter()
    absence_warehouse(Path(data_dir), int(students), order)
    return {"data_dir": data_dir, "seconds": time.perf_counter() - start}


# ---- the idle tick: ours and the baseline -----------------------------------------------


def _anchored_clock(every: dt.timedelta) -> Callable[[], dt.datetime]:
    """A real-time clock started one second after a slot of ``every`` (aware UTC)."""
    from scheduler.slots import floor_slot

    anchor = floor_slot(dt.datetime.now(dt.UTC), every) + dt.timedelta(seconds=1)
    origin = time.perf_counter()
    return lambda: anchor + dt.timedelta(seconds=time.perf_counter() - origin)


def _iterations(
    stop: Callable[[], None], iterations: int
) -> tuple[Callable[[float], None], list[float]]:
    """A sleep that records when each loop iteration ends and stops after ``iterations``."""
    marks: list[float] = []

    def sleep(_seconds: float) -> None:
        marks.append(time.perf_counter())
        if len(marks) > iterations:
            stop()

    return sleep, marks


def _figures(marks: list[float]) -> dict[str, Any]:
    took = sorted(b - a for a, b in zip(marks, marks[1:], strict=False))
    return {
        "iterations": len(took),
        "seconds": statistics.median(took),
        "p99_seconds": took[int(len(took) * 0.99) - 1] if len(took) >= 100 else took[-1],
        "max_seconds": took[-1],
    }


def idle_tick(data_dir: str, iterations: str) -> dict[str, Any]:
    """:meth:`SchedulerLoop.run_forever` with nothing due, one iteration at a time.

    A fresh SQLite ops store whose ``job_runs`` say every job has run for its newest
    slot; the clock starts one second after a slot of the shortest interval, so nothing
    falls due while we measure. The sleep is replaced by a marker (and not timed).
    """
    from scheduler import runs
    from scheduler.jobs import build_jobs
    from scheduler.loop import SchedulerLoop
    from scheduler.slots import latest_slot
    from schoolcomms.ops.db import open_ops
    from schoolcomms.settings import Settings

    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(data_dir, env={})
    engine = open_ops(settings)
    jobs = build_jobs(settings)
    now = _anchored_clock(min(spec.every for spec in jobs))
    for spec in jobs:  # every job ran for its newest slot: nothing to catch up
        slot = latest_slot(spec.every, spec.window, now())
        if slot is not None:
            run_id = runs.start_run(engine, spec.name, slot, slot, "bench")
            assert run_id is not None
            runs.finish_run(engine, run_id, "ok", slot)
    loop = SchedulerLoop(settings, jobs, engine=engine, now=now)
    sleep, marks = _iterations(loop.request_stop, int(iterations))
    loop.sleep = sleep
    start = time.perf_counter()
    loop.run_forever()
    prepared = marks[0] - start  # prepare(): interrupted runs, prune, catch-up
    started = sum(1 for _ in loop.threads) + sum(loop.passed_over.values())
    return {**_figures(marks), "jobs": len(jobs), "started": started, "prepare_seconds": prepared}


def idle_schedule(jobs: str, iterations: str) -> dict[str, Any]:
    """The baseline: a plain ``schedule.Scheduler`` with ``jobs`` jobs, nothing due."""
    import schedule

    scheduler = schedule.Scheduler()
    ran: list[int] = []
    for n in range(int(jobs)):
        scheduler.every(15 + 60 * n).seconds.do(ran.append, n)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True

    sleep, marks = _iterations(stop, int(iterations))
    while not stopped:  # the shape of SchedulerLoop.run_forever
        scheduler.run_pending()
        idle = scheduler.idle_seconds
        sleep(1.0 if idle is None else min(max(idle, 0.0), 1.0))
    return {**_figures(marks), "jobs": int(jobs), "started": len(ran)}


# ---- the group: fresh processes, medians, ratios -----------------------------------------


def scenario(*args: str) -> dict[str, Any]:
    """Run one scenario of this module in a new process; its JSON result."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scheduler", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"benchmark {args[0]} failed (exit status {result.returncode}):\n"
            f"{result.stderr[-3000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def planning_rows(
    cache: Path, runs: int, sizes: tuple[int, ...], repeats: int = 5
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """plan_at vs the baseline for each size: table rows and the curve's points.

    Each size is measured on two warehouses that differ only in the order of the marks
    extract they were loaded from: by lesson (today's marks together, so DuckDB skips
    row groups of other days) and by student (today's marks spread over the table).
    """
    rows, curve = [], []
    for size in sizes:
        by_lesson = scenario("build", str(cache / f"absence-{size}"), str(size))["data_dir"]
        by_student = scenario(
            "build", str(cache / f"absence-{size}-by-student"), str(size), "student"
        )["data_dir"]
        ours = [scenario("plan", by_lesson, str(repeats)) for _ in range(runs)]
        spread = [scenario("plan", by_student, str(repeats)) for _ in range(runs)]
        # The baseline takes minutes at 100,000 students: one run above 10,000.
        naive = [scenario("plan_naive", by_lesson) for _ in range(runs if size <= 10_000 else 1)]
        warm = statistics.median(r["seconds"] for r in ours)
        cold = statistics.median(r["cold_seconds"] for r in ours)
        reopen = statistics.median(r["reopen_seconds"] for r in ours)
        warm_spread = statistics.median(r["seconds"] for r in spread)
        reopen_spread = statistics.median(r["reopen_seconds"] for r in spread)
        slow = statistics.median(r["seconds"] for r in naive)
        same = all(r["digest"] == ours[0]["digest"] for r in ours + spread + naive)
        first = ours[0]
        parts = {k: statistics.median(r["parts"][k] for r in ours) for k in first["parts"]}
        target = TARGETS.get(size)
        point = {
            "students": size,
            "marks": first["marks"],
            "marks_today": first["marks_today"],
            "texts": first["texts"],
            "students_texted": first["students_texted"],
            "warm_seconds": warm,
            "reopen_seconds": reopen,
            "cold_seconds": cold,
            "by_student_warm_seconds": warm_spread,
            "by_student_reopen_seconds": reopen_spread,
            "naive_seconds": slow,
            "naive_runs": len(naive),
            "ratio": slow / warm,
            "same_texts": same,
            "parts": parts,
            "peak_mb": max(r["peak_mb"] for r in ours + spread),
            "naive_peak_mb": max(r["peak_mb"] for r in naive),
        }
        curve.append(point)
        worst = max(warm, reopen, warm_spread, reopen_spread)
        rows.append(
            {
                "benchmark": f"absence texts: plan_at, {size:,} students "
                f"({first['marks_today']:,} lesson marks today of {first['marks']:,}; "
                f"{first['texts']:,} texts)",
                "median": f"{_ms(warm)} warm",
                "target": f"< {_ms(target)}" if target else "(for information)",
                "baseline": f"naive per-student Python over whole tables: {slow:,.2f} s "
                f"({len(naive)} run(s)); same texts: {'yes' if same else 'NO'}; on a newly "
                f"opened snapshot {_ms(reopen)}; first call in a new process {_ms(cold)}; "
                f"marks loaded by student: {_ms(warm_spread)} warm, {_ms(reopen_spread)} "
                "newly opened",
                "ratio": f"{slow / warm:,.0f}x",
                "pass": (worst < target and same) if target else same,
                "detail": {"point": point, "ours": ours, "by_student": spread, "naive": naive},
            }
        )
    return rows, curve


def print_curve(curve: list[dict[str, Any]]) -> None:
    """The scaling curve as a table on stdout."""
    print(
        f"{'students':>9} {'marks':>10} {'today':>8} {'texts':>6} {'warm':>9} {'reopen':>9} "
        f"{'query':>8} {'links':>8} {'plan()':>8} {'by stu.':>9} {'naive':>9} {'ratio':>6}"
    )
    for p in curve:
        parts = p["parts"]
        print(
            f"{p['students']:>9,} {p['marks']:>10,} {p['marks_today']:>8,} {p['texts']:>6,} "
            f"{_ms(p['warm_seconds']):>9} {_ms(p['reopen_seconds']):>9} "
            f"{_ms(parts['first_absences']):>8} {_ms(parts['portal_accounts']):>8} "
            f"{_ms(parts['plan']):>8} {_ms(p['by_student_warm_seconds']):>9} "
            f"{p['naive_seconds']:>8.2f}s {p['ratio']:>5,.0f}x",
            flush=True,
        )


def tick_rows(cache: Path, runs: int, iterations: int) -> list[dict[str, Any]]:
    """One idle SchedulerLoop iteration vs a plain ``schedule`` run_pending()."""
    ours = [scenario("idle_tick", str(cache / f"tick-{i}"), str(iterations)) for i in range(runs)]
    jobs = ours[0]["jobs"]
    plain = [scenario("idle_schedule", str(jobs), str(iterations)) for _ in range(runs)]
    ours_s = statistics.median(r["seconds"] for r in ours)
    plain_s = statistics.median(r["seconds"] for r in plain)
    p99 = statistics.median(r["p99_seconds"] for r in ours)
    started = sum(r["started"] for r in ours + plain)
    return [
        {
            "benchmark": f"scheduler tick with nothing due: one SchedulerLoop.run_forever "
            f"iteration ({jobs} jobs, SQLite ops store; median of {iterations:,} a run)",
            "median": _us(ours_s),
            "target": f"< {_ms(TICK_TARGET)}",
            "baseline": f"schedule run_pending() + idle_seconds, {jobs} plain jobs: "
            f"{_us(plain_s)}; ours p99 {_us(p99)}, max "
            f"{_us(max(r['max_seconds'] for r in ours))}; jobs started: {started}",
            "ratio": f"{plain_s / ours_s:.2f}x",
            # The max is typically one iteration the OS put off (two shared cores): not judged.
            "pass": ours_s < TICK_TARGET and p99 < TICK_TARGET and started == 0,
            "detail": {"ours": ours, "schedule": plain},
        },
        {
            "benchmark": "scheduler start-up with nothing to catch up (prepare: interrupted "
            "runs, prune, last slots)",
            "median": _ms(statistics.median(r["prepare_seconds"] for r in ours)),
            "target": "(for information)",
            "baseline": "",
            "ratio": "",
            "pass": None,
        },
    ]


def alerts_sample(cache: Path, size: str = "college") -> Path:
    """A data dir with ``schoolcomms sample --size SIZE --date DAY --load``, kept."""
    data_dir = cache / f"alerts-{size}"
    stamp = data_dir / f"SAMPLE-{size}-{DAY.isoformat()}"
    if stamp.exists() and (data_dir / "warehouse" / "CURRENT").exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    command = [sys.executable, "-m", "schoolcomms", "--data-dir", str(data_dir), "sample"]
    command += ["--size", size, "--date", DAY.isoformat(), "--load"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"could not load the sample {size}:\n{done.stderr[-3000:]}")
    stamp.write_text("ok")
    return data_dir


def alerts_rows(cache: Path, runs: int, size: str = "college") -> list[dict[str, Any]]:
    """:func:`benchmarks.alerts.bench_alerts` on a sample (college), each run a new process."""
    data_dir = alerts_sample(cache, size)
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.alerts", str(data_dir)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"benchmarks.alerts failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = statistics.median(r["median_seconds"] for r in results)
    cold = statistics.median(r["cold_seconds"] for r in results)
    first = results[0]
    return [
        {
            "benchmark": f"{first['benchmark']} (sample {size}, {first['marks']:,} marks, "
            f"{first['incidents']:,} incidents; at {first['at']})",
            "median": f"{median:.3f} s warm",
            "target": first["target"],
            "baseline": f"no baseline (benchmarks/alerts.py has none); first call in a new "
            f"process {cold:.3f} s; {first['alerts']:,} alert(s); {runs} process(es)",
            "ratio": "",
            "pass": median < 2.0 and all(r["pass"] for r in results),
            "detail": results,
        }
    ]


def bench(
    cache: Path,
    runs: int,
    sizes: tuple[int, ...] = SIZES,
    iterations: int = TICK_ITERATIONS,
    alerts: bool = True,
) -> list[dict[str, Any]]:
    """The scheduler group: the planning curve (printed), the idle tick and (with
    ``alerts``) alert evaluation over the sample college, as table rows."""
    rows, curve = planning_rows(cache, runs, sizes)
    print_curve(curve)
    rows += tick_rows(cache, runs, iterations)
    return rows + (alerts_rows(cache, runs) if alerts else [])


def sizes_from_env() -> tuple[int, ...]:
    """``BENCH_SCHEDULER_SIZES`` (e.g. ``1000,10000``), else :data:`SIZES`."""
    raw = os.environ.get("BENCH_SCHEDULER_SIZES", "")
    return tuple(int(n) for n in raw.split(",") if n.strip()) or SIZES


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "build": build,
    "plan": plan,
    "plan_naive": plan_naive,
    "idle_tick": idle_tick,
    "idle_schedule": idle_schedule,
}

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    print(json.dumps(SCENARIOS[name](*args), default=str))
