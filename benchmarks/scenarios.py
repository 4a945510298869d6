"""Benchmark scenarios. Each runs in a fresh process and prints one JSON object.

``python -m benchmarks.scenarios NAME ARGS…``; the peak resident memory reported is
the process's own (``ru_maxrss``), so each scenario is measured alone.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_marks(folder: str, data_dir: str) -> dict[str, object]:
    """Our loader: read + validate + build + publish the college year."""
    from pipelines.load import load_paths
    from schoolcomms.settings import Settings

    settings = Settings(data_dir, env={})
    files = [Path(folder) / f"{n}.csv" for n in ("staff", "students", "lessons", "marks")]
    start = time.perf_counter()
    report = load_paths(files, settings, actor="bench")
    seconds = time.perf_counter() - start
    if not report.ok:
        raise SystemExit("benchmark load refused: " + "; ".join(p.as_text() for p in report.errors))
    return {
        "seconds": seconds,
        "marks": report.rows["marks"],
        "timings": report.timings,
        "peak_mb": peak_mb(),
        "generation": report.generation_after,
    }


def naive(marks_csv: str, rows: str, db_path: str) -> dict[str, object]:
    """The naive baseline: pandas.read_csv + DataFrame.to_sql through SQLAlchemy into DuckDB."""
    import pandas as pd
    import sqlalchemy as sa

    n = int(rows)
    start = time.perf_counter()
    frame = pd.read_csv(marks_csv, nrows=n, dtype=str)
    engine = sa.create_engine(f"duckdb:///{db_path}")
    frame.to_sql("marks", engine, if_exists="replace", index=False, chunksize=10_000)
    engine.dispose()
    return {"seconds": time.perf_counter() - start, "marks": n, "peak_mb": peak_mb()}


def contact_report(data_dir: str) -> dict[str, object]:
    """Open the current snapshot read-only (new process) and run the contact-details report."""
    from reports.contacts import contact_details
    from schoolcomms.settings import Settings
    from schoolcomms.warehouse import Warehouse

    warehouse = Warehouse.from_settings(Settings(data_dir, env={}))
    start = time.perf_counter()
    frame = contact_details(warehouse)
    return {"seconds": time.perf_counter() - start, "rows": len(frame), "peak_mb": peak_mb()}


SCENARIOS = {"load_marks": load_marks, "naive": naive, "contact_report": contact_report}

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    print(json.dumps(SCENARIOS[name](*args)))
