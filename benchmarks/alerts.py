"""Alert evaluation benchmark: :func:`senders.alerts.evaluate.plan_alerts` over a college.

``python -m benchmarks.alerts DATA_DIR`` (or :func:`bench_alerts`) takes a data
directory with the sample college loaded (``schoolcomms sample --size college --date D
--load``: 10,000 students, about twelve weeks of marks and behaviour), adds the starter
alert rules if they are missing (:func:`senders.alerts.rules.seed_default_rules`) and
times ``plan_alerts`` for every enabled rule at :data:`BUSY_TIME` on the last day with
lessons, when most of the day's registers are in. The first call (the snapshot opened
in this process) is reported apart; the figure is the median of :data:`RUNS` warm calls,
as the scheduler runs them every few minutes. Nothing is fired.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

BUSY_TIME = dt.time(14, 0)
RUNS = 5
TARGET_SECONDS = 2.0


def bench_alerts(data_dir: Path) -> dict[str, Any]:
    """Seed the starter rules and time ``plan_alerts`` at a busy moment of the last day.

    Returns the benchmark row (``benchmark, median, target, ratio, pass, baseline``, as
    ``benchmarks.__main__`` prints them) with the raw figures: ``seconds`` (the warm
    runs), ``median_seconds``, ``cold_seconds``, ``at``, ``rules``, ``alerts`` and
    ``by_rule`` (alerts per rule), and the size of the data (``students``,
    ``incidents``, ``marks``).
    """
    from schoolcomms.ops.db import open_ops
    from schoolcomms.settings import Settings
    from schoolcomms.warehouse import Warehouse
    from senders.alerts.evaluate import plan_alerts
    from senders.alerts.rules import list_rules, seed_default_rules

    settings = Settings(Path(data_dir), env={})
    warehouse = Warehouse.from_settings(settings)
    engine = open_ops(settings)
    seeded = seed_default_rules(engine, actor="bench")
    rules = list_rules(engine, enabled_only=True)
    size = warehouse.query(
        """
        SELECT (SELECT count(*) FROM students) AS students,
               (SELECT count(*) FROM behaviour) AS incidents,
               (SELECT count(*) FROM marks) AS marks,
               (SELECT max(date) FROM lessons) AS last_day
        """
    ).iloc[0]
    at = dt.datetime.combine(size["last_day"], BUSY_TIME)
    start = time.perf_counter()
    planned = plan_alerts(settings, warehouse, engine, at)
    cold = time.perf_counter() - start
    seconds = []
    for _ in range(RUNS):
        start = time.perf_counter()
        planned = plan_alerts(settings, warehouse, engine, at)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    by_rule = Counter(a.rule_name for a in planned)
    return {
        "benchmark": f"alerts: plan_alerts, {len(rules)} rules, {int(size['students']):,} students",
        "median": f"{median:.3f} s",
        "target": f"< {TARGET_SECONDS:.0f} s",
        "ratio": round(median / TARGET_SECONDS, 2),
        "pass": median < TARGET_SECONDS,
        "baseline": f"first call {cold:.3f} s; {len(planned)} alert(s) at {at:%Y-%m-%d %H:%M}",
        "seconds": [round(s, 4) for s in seconds],
        "median_seconds": round(median, 4),
        "cold_seconds": round(cold, 4),
        "at": at.isoformat(sep=" ", timespec="minutes"),
        "rules": len(rules),
        "seeded": seeded,
        "alerts": len(planned),
        "by_rule": dict(sorted(by_rule.items())),
        "students": int(size["students"]),
        "incidents": int(size["incidents"]),
        "marks": int(size["marks"]),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m benchmarks.alerts DATA_DIR")
    print(json.dumps(bench_alerts(Path(sys.argv[1]))))
