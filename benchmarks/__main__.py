"""``make bench``: run every benchmark against its baseline and print a table.

Each measurement runs in a fresh process; we report the median of several runs and
the ratio to the named baseline measured in the same run. Results also go to
``benchmarks/results/latest.json``. Set ``BENCH_RUNS`` (default 3) and
``BENCH_MARKS`` (default 5,000,000) to change the size.

The messaging benchmarks (:mod:`benchmarks.messaging`, issue 3) have their own knobs:
``BENCH_EMAIL_ROUNDS`` (default 1: one interleaved round of 2,000 e-mails each way,
about 40 s), ``BENCH_SMS`` (default 10,000 SMS at 50 a second: about 200 s, one run),
``BENCH_MEMORY_MESSAGES`` (default 100,000) and ``BENCH_MEMORY_SECONDS`` (default 180:
the dispatch of that batch is stopped after this long, and the memory row says "part"
and how far it got; 0 waits for the end, about 8 minutes for 100,000 on 2 cores). ``BENCH_ONLY`` (e.g. ``sms,planning``) runs only some of the
groups load, email, sms, planning, memory, scheduler, pages, loadtest and workers, and writes its results to the cache folder
(``BENCH_CACHE``) instead of ``latest.json``.

The scheduler benchmarks (:mod:`benchmarks.scheduler`, issue 4): absence-text planning
for ``BENCH_SCHEDULER_SIZES`` students (default 1,000, 10,000, 50,000, 100,000; the
warehouses are built once into the cache folder, about a minute) against a naive
per-student planner, printed as a curve; the idle scheduler tick against a plain
``schedule`` scheduler; and alert evaluation (:mod:`benchmarks.alerts`) over the sample
college (``schoolcomms sample --size college --load``, built once into the cache folder).

The dashboard benchmarks (:mod:`benchmarks.pages`, issue 5): every page of the navigation
on the sample college, signed in as an administrator, through ``AppTest`` (each page in
fresh processes: the first render, then ``BENCH_PAGE_RERUNS`` reruns, default 5) against
a trivial page through the same harness; pages that miss a target are profiled; and a
check that a second load shows in the same session without a restart.

The load test (:mod:`benchmarks.load_test`, issue 6): ``BENCH_LOADTEST_SESSIONS``
(default 50) dashboard sessions on today's sample college for ``BENCH_LOADTEST_SECONDS``
(default 180) while a load of its marks and a dispatch of ``BENCH_LOADTEST_SMS`` (default
3,000) SMS run, against one session alone and the load and the dispatch alone (about 9
minutes; the college is built once a day into the cache folder, a few minutes more).

The workers benchmark (:mod:`benchmarks.workers`, issue 6): ``BENCH_WORKERS_MESSAGES``
(default 20,000) SMS drained by 1, 2 and 3 ``schoolcomms dispatch --loop`` processes at
``BENCH_WORKERS_RATE`` (default 15) a second each, on a PostgreSQL server started for the
run, counted at the Text Anywhere stand-in (about 45 minutes); ``BENCH_WORKERS_UNLIMITED=1``
adds the same three runs with no rate limit (where the machine caps them).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.data import college_year

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("BENCH_CACHE", Path(tempfile.gettempdir()) / "schoolcomms-bench"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MARKS = int(os.environ.get("BENCH_MARKS", "5000000"))
NAIVE_ROWS = 100_000
EMAIL_MESSAGES = 2000
EMAIL_ROUNDS = int(os.environ.get("BENCH_EMAIL_ROUNDS", "1"))
SMS = int(os.environ.get("BENCH_SMS", "10000"))
SMS_RATE = 50.0
NAIVE_PUPILS = 1000
MEMORY_MESSAGES = int(os.environ.get("BENCH_MEMORY_MESSAGES", "100000"))
MEMORY_SECONDS = float(os.environ.get("BENCH_MEMORY_SECONDS", "180"))
MEMORY_SAMPLE_EVERY = 10_000
LOADTEST_SESSIONS = int(os.environ.get("BENCH_LOADTEST_SESSIONS", "50"))
LOADTEST_SECONDS = float(os.environ.get("BENCH_LOADTEST_SECONDS", "180"))
LOADTEST_SMS = int(os.environ.get("BENCH_LOADTEST_SMS", "3000"))
WORKERS_MESSAGES = int(os.environ.get("BENCH_WORKERS_MESSAGES", "20000"))
WORKERS_RATE = float(os.environ.get("BENCH_WORKERS_RATE", "15"))
WORKERS_UNLIMITED = os.environ.get("BENCH_WORKERS_UNLIMITED", "") not in ("", "0")
ONLY = {g.strip() for g in os.environ.get("BENCH_ONLY", "").split(",") if g.strip()}


def scenario(*args: str, module: str = "benchmarks.scenarios") -> dict:
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"benchmark {args[0]} failed (exit status {result.returncode}):\n"
            f"{result.stderr[-3000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def fresh_dir(name: str) -> Path:
    path = CACHE / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def naive_run(folder: Path, index: int) -> dict:
    target = fresh_dir(f"naive-{index}")
    target.mkdir(parents=True)
    return scenario(
        "naive", str(folder / "marks.csv"), str(NAIVE_ROWS), str(target / "naive.duckdb")
    )


def sample_college() -> Path:
    """The sample college (10,000 students and their contacts), loaded once and kept."""
    import datetime as dt

    from pipelines.load import load_paths
    from pipelines.sample import generate_sample
    from schoolcomms.settings import Settings

    data_dir = CACHE / "college-sample"
    if not (data_dir / "warehouse" / "CURRENT").exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        files = generate_sample("college", dt.date(2026, 11, 20), data_dir / "extracts")
        report = load_paths(list(files.values()), Settings(data_dir, env={}), actor="bench")
        if not report.ok:
            raise SystemExit("could not load the sample college: " + report.summary())
    return data_dir


def bench_load() -> list[dict]:
    folder = college_year(CACHE / "college-year", MARKS)
    ours = [scenario("load_marks", str(folder), str(fresh_dir(f"load-{i}"))) for i in range(RUNS)]
    naive = [naive_run(folder, i) for i in range(RUNS)]
    our_rate = statistics.median(r["marks"] / r["seconds"] for r in ours)
    naive_rate = statistics.median(r["marks"] / r["seconds"] for r in naive)
    publish = statistics.median(r["timings"]["publish"] for r in ours)
    peak = max(r["peak_mb"] for r in ours)
    college = sample_college()
    report = [scenario("contact_report", str(college)) for _ in range(RUNS)]
    return [
        {
            "benchmark": f"load {MARKS:,} marks from CSV (validation included)",
            "median": f"{our_rate:,.0f} marks/s",
            "target": ">= 1,500,000 marks/s",
            "baseline": f"naive read_csv+to_sql: {naive_rate:,.0f} marks/s "
            f"({NAIVE_ROWS:,}-row subset, extrapolated)",
            "ratio": f"{our_rate / naive_rate:,.0f}x",
            "pass": our_rate >= 1_500_000,
            "detail": {
                "runs_seconds": [r["seconds"] for r in ours],
                "timings": [r["timings"] for r in ours],
            },
        },
        {
            "benchmark": "peak memory of that load",
            "median": f"{peak:,.0f} MB (max of runs)",
            "target": "< 1,500 MB",
            "baseline": f"naive: {max(r['peak_mb'] for r in naive):,.0f} MB "
            f"for {NAIVE_ROWS:,} rows",
            "ratio": "",
            "pass": peak < 1500,
        },
        {
            "benchmark": "publish the new snapshot (checkpoint, fsync, rename, CURRENT)",
            "median": f"{publish:.2f} s",
            "target": "< 3 s",
            "baseline": "",
            "ratio": "",
            "pass": publish < 3,
        },
        {
            "benchmark": "open current snapshot read-only + contact-details report "
            "(sample college: 10,000 students, 18,177 contacts; fresh process)",
            "median": f"{statistics.median(r['seconds'] for r in report) * 1000:.0f} ms",
            "target": "< 200 ms",
            "baseline": "",
            "ratio": "",
            "pass": statistics.median(r["seconds"] for r in report) < 0.2,
        },
    ]


def messaging(*args: str) -> dict:
    return scenario(*args, module="benchmarks.messaging")


def bench_email() -> list[dict]:
    """2,000 e-mails: SmtpEmail over one connection vs yagmail's send() per message, and
    the same e-mails through the outbox and the dispatcher."""
    result = messaging("email", str(EMAIL_MESSAGES), str(EMAIL_ROUNDS))
    through = messaging("email_dispatch", str(fresh_dir("email-dispatch")), str(EMAIL_MESSAGES))
    rows = []
    for label, block in (("plain", result), ("STARTTLS + AUTH", result["starttls_auth"])):
        ours, naive = block["smtp_email"], block["naive_yagmail"]
        rows.append(
            {
                "benchmark": f"e-mail: {EMAIL_MESSAGES:,} to a local SMTP sink ({label}), "
                "SmtpEmail messenger over one connection (no outbox)",
                "median": f"{ours['per_second']:,.0f} msg/s",
                "target": ">= 300 msg/s, >= 1.5x" if label == "plain" else "(for information)",
                "baseline": f"yagmail send() per message: {naive['per_second']:,.0f} msg/s "
                f"({naive['connections']:,} connections; {EMAIL_ROUNDS} round(s))",
                "ratio": f"{block['ratio']:.2f}x",
                "pass": (ours["per_second"] >= 300 and block["ratio"] >= 1.5)
                if label == "plain"
                else None,
                "detail": block if label != "plain" else {**result, "starttls_auth": None},
            }
        )
    naive_rate = result["naive_yagmail"]["per_second"]
    rows.append(
        {
            "benchmark": f"e-mail: the same {EMAIL_MESSAGES:,} through the outbox and Dispatcher "
            "(claim, SmtpEmail, record_sent each; email_rate_per_second=0)",
            "median": f"{through['per_second']:,.0f} msg/s",
            "target": ">= 300 msg/s, >= 1.5x",
            "baseline": f"yagmail send() per message (row above): {naive_rate:,.0f} msg/s; "
            f"{through['received']:,} received over {through['connections']} connection(s); 1 run",
            "ratio": f"{through['per_second'] / naive_rate:.2f}x",
            "pass": through["per_second"] >= 300 and through["per_second"] / naive_rate >= 1.5,
            "detail": through,
        }
    )
    return rows


def bench_sms() -> list[dict]:
    """BENCH_SMS SMS through the Text Anywhere stand-in at 50 a second: rate and duplicates."""
    r = messaging("sms", str(fresh_dir("sms")), str(SMS), str(SMS_RATE))
    low, high = SMS_RATE * 0.95, SMS_RATE * 1.05
    clean = r["duplicates"] == 0 and r["missing"] == 0 and r["unexpected"] == 0
    return [
        {
            "benchmark": f"SMS: {SMS:,} via the Text Anywhere stand-in, one dispatcher, "
            f"sms_rate_per_second={SMS_RATE:g} ({r['seconds']:.0f} s, 1 run)",
            "median": f"{r['per_second']:.2f} msg/s",
            "target": f"{low:g}-{high:g} msg/s",
            "baseline": f"the configured limit: {SMS_RATE:g} msg/s (at the stand-in "
            f"{r['standin_per_second']:.2f} msg/s, at most {r['max_in_any_second']} in any "
            f"second, {r['lost_seconds']:.1f} s lost to {r['late_sends']} late sends)",
            "ratio": f"{r['per_second'] / SMS_RATE:.3f}x",
            "pass": low <= r["per_second"] <= high,
            "detail": r,
        },
        {
            "benchmark": "SMS: Client_Refs counted at the stand-in (each exactly once, all present)",
            "median": f"{r['duplicates']} dup, {r['missing']} missing",
            "target": "0 duplicates, 0 missing",
            "baseline": f"{r['requests']:,} SendSMSEx requests, {r['distinct_refs']:,} distinct "
            f"refs for {SMS:,} messages; outbox: {r['counts']['sent']:,} sent",
            "ratio": "",
            "pass": clean and r["distinct_refs"] == SMS == r["requests"],
        },
    ]


def bench_planning() -> list[dict]:
    """plan_send over 50,000 pupils vs a per-pupil query loop (1,000 pupils, extrapolated)."""
    from benchmarks.messaging import PUPILS

    data_dir = Path(messaging("plan_warehouse", str(CACHE / f"plan-{PUPILS}"))["data_dir"])
    ours = [messaging("plan", str(data_dir)) for _ in range(RUNS)]
    naive = [messaging("plan_naive", str(data_dir), str(NAIVE_PUPILS)) for _ in range(RUNS)]
    seconds = statistics.median(r["seconds"] for r in ours)
    naive_seconds = statistics.median(r["seconds"] / r["pupils"] for r in naive) * PUPILS
    return [
        {
            "benchmark": f"plan + render an SMS to {ours[0]['recipients']:,} recipients "
            f"(plan_send, {PUPILS:,} pupils, 3 merge fields, smart apostrophe)",
            "median": f"{seconds:.2f} s",
            "target": "< 5 s",
            "baseline": f"naive query per pupil: {naive_seconds:,.0f} s "
            f"({NAIVE_PUPILS:,} pupils, extrapolated)",
            "ratio": f"{naive_seconds / seconds:,.0f}x",
            "pass": seconds < 5,
            "detail": {"ours": ours, "naive": naive},
        },
        {
            "benchmark": "peak memory of that plan",
            "median": f"{max(r['peak_mb'] for r in ours):,.0f} MB (max of runs)",
            "target": "(for information)",
            "baseline": f"naive: {max(r['peak_mb'] for r in naive):,.0f} MB "
            f"for {NAIVE_PUPILS:,} pupils",
            "ratio": "",
            "pass": None,
        },
    ]


def bench_memory() -> list[dict]:
    """A BENCH_MEMORY_MESSAGES batch dispatched through the file gateway at full speed."""
    r = messaging(
        "memory",
        str(fresh_dir("memory")),
        str(MEMORY_MESSAGES),
        str(MEMORY_SECONDS),
        str(MEMORY_SAMPLE_EVERY),
    )
    samples = sorted(r["samples"] + r["timed_samples"], key=lambda s: s["seconds"])
    end = {"sent": r["sent"], "seconds": r["dispatch_seconds"], "rss_mb": r["rss_end_mb"]}
    if not samples or samples[-1]["sent"] < end["sent"]:
        samples.append(end)  # when the dispatch ended (or was stopped)
    if len(samples) == 1:  # a small batch sent before the first sample: before and after
        samples.insert(0, {"sent": 0, "seconds": 0.0, "rss_mb": r["rss_before_dispatch_mb"]})
    first, last = samples[0], samples[-1]
    growth = last["rss_mb"] - first["rss_mb"]
    flat = growth < 50
    done = f"all {r['sent']:,}" if r["finished"] else f"STOPPED at {r['sent']:,}"
    # Messages a second between successive samples (from the start of the dispatch).
    points = [{"sent": 0, "seconds": 0.0}] + [s for s in samples if "seconds" in s]
    rates = [
        (b["sent"] - a["sent"]) / (b["seconds"] - a["seconds"])
        for a, b in zip(points, points[1:], strict=False)
        if b["seconds"] > a["seconds"]
    ]
    speed = (
        f"{rates[0]:,.0f} msg/s at the start, {rates[-1]:,.0f} at the end"
        if len(rates) > 1
        else f"{r['per_second']:,.0f} msg/s"
    )
    return [
        {
            "benchmark": f"memory: create_batch of {MEMORY_MESSAGES:,} SMS, dispatch through the "
            "file gateway (sms_rate_per_second=0; fresh process, 1 run)",
            "median": f"{r['peak_mb']:,.0f} MB peak",
            "target": "< 500 MB, flat",
            "baseline": f"RSS {first['rss_mb']:,.0f} MB at {first['sent']:,} sent -> "
            f"{last['rss_mb']:,.0f} MB at {last['sent']:,} ({growth:+.0f} MB, "
            f"{len(samples)} samples; flat: < +50 MB); {done} sent",
            "ratio": "",
            # "part": memory within target, but the budget stopped the dispatch early.
            "pass": (r["peak_mb"] < 500 and flat) and (r["finished"] or "part"),
            "detail": r,
        },
        {
            "benchmark": "dispatch throughput of that batch (file gateway, rate 0)",
            "median": f"{r['per_second']:,.0f} msg/s",
            "target": "(for information)",
            "baseline": f"{done} of {r['messages']:,} in {r['dispatch_seconds']:.0f} s; "
            f"{speed}; create_batch {r['create_seconds']:.1f} s",
            "ratio": "",
            "pass": None,
        },
    ]


def bench_scheduler() -> list[dict]:
    """Absence-text planning from 1,000 to 100,000 students, idle tick, alert evaluation."""
    from benchmarks.scheduler import bench, sizes_from_env

    return bench(CACHE, RUNS, sizes_from_env())


def bench_pages() -> list[dict]:
    """Every dashboard page's first render and rerun on the sample college (issue 5)."""
    from benchmarks.pages import bench

    return bench(CACHE, RUNS)


def bench_loadtest() -> list[dict]:
    """Dashboard sessions on the sample college during a load and a dispatch (issue 6)."""
    from benchmarks.load_test import rows

    result = scenario(
        "--sessions",
        str(LOADTEST_SESSIONS),
        "--seconds",
        str(LOADTEST_SECONDS),
        "--sms",
        str(LOADTEST_SMS),
        "--cache",
        str(CACHE),
        module="benchmarks.load_test",
    )
    return rows(result)


def bench_workers() -> list[dict]:
    """1, 2 and 3 dispatcher processes on PostgreSQL: throughput and exactly-once (issue 6)."""
    from benchmarks.workers import bench

    return bench(scenario, CACHE, WORKERS_MESSAGES, WORKERS_RATE, WORKERS_UNLIMITED)


GROUPS: dict[str, Callable[[], list[dict]]] = {
    "load": bench_load,
    "email": bench_email,
    "sms": bench_sms,
    "planning": bench_planning,
    "memory": bench_memory,
    "scheduler": bench_scheduler,
    "pages": bench_pages,
    "loadtest": bench_loadtest,
    "workers": bench_workers,
}


def main() -> None:
    rows, took = [], {}
    for name, bench in GROUPS.items():
        if ONLY and name not in ONLY:
            continue
        start = time.perf_counter()
        group = bench()
        took[name] = time.perf_counter() - start
        rows.extend({**r, "group": name, "group_seconds": round(took[name], 1)} for r in group)
        print(f"{name}: {took[name]:.0f} s", flush=True)
    load = os.getloadavg()
    print(
        f"total {sum(took.values()):.0f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    width = max(len(r["benchmark"]) for r in rows)
    print(f"{'benchmark':<{width}}  {'median':>22}  {'target':>22}  ratio  ok   baseline")
    for r in rows:
        ok = {None: "-", True: "yes", False: "NO"}.get(r["pass"], str(r["pass"]))
        print(
            f"{r['benchmark']:<{width}}  {r['median']:>22}  {r['target']:>22}  "
            f"{r['ratio']:>5}  {ok:<3}  {r['baseline']}"
        )
    # A partial run (BENCH_ONLY) leaves the full results alone: it writes to the cache.
    out = CACHE / f"results-{'-'.join(sorted(ONLY))}.json" if ONLY else HERE / "results/latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2, default=str))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
