"""``make bench``: run every benchmark against its baseline and print a table.

Each measurement runs in a fresh process; we report the median of several runs and
the ratio to the named baseline measured in the same run. Results also go to
``benchmarks/results/latest.json``. Set ``BENCH_RUNS`` (default 3) and
``BENCH_MARKS`` (default 5,000,000) to change the size.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.data import college_year

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("BENCH_CACHE", Path(tempfile.gettempdir()) / "schoolcomms-bench"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MARKS = int(os.environ.get("BENCH_MARKS", "5000000"))
NAIVE_ROWS = 100_000


def scenario(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scenarios", *args],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmark {args[0]} failed:\n{result.stderr[-3000:]}")
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


def main() -> None:
    rows = bench_load()
    width = max(len(r["benchmark"]) for r in rows)
    print(f"{'benchmark':<{width}}  {'median':>22}  {'target':>22}  ratio  ok   baseline")
    for r in rows:
        print(
            f"{r['benchmark']:<{width}}  {r['median']:>22}  {r['target']:>22}  "
            f"{r['ratio']:>5}  {'yes' if r['pass'] else 'NO':<3}  {r['baseline']}"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
