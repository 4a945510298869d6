"""Several dispatchers (issue 6): throughput by worker count, exactly-once at the gateway.

``python -m benchmarks.workers run WORK_DIR N WORKERS RATE [BACKEND]`` (``benchmarks/
__main__.py`` calls it, group ``workers``) prints one JSON line:

- N SMS are queued as one batch in a fresh ops store: a PostgreSQL database on a
  throw-away server started here (``tests/postgres.py``'s :class:`LocalServer`, with
  PostgreSQL's durable defaults: ``fsync``, ``synchronous_commit`` and
  ``full_page_writes`` on), or with BACKEND ``sqlite`` a SQLite file;
- WORKERS real ``schoolcomms dispatch --loop`` processes, each with
  ``sms_rate_per_second=RATE`` (0: no limit), send them through the Text Anywhere
  stand-in (``tests/standins/textanywhere.py``), which runs in its own process and
  reports every ``Client_Ref`` it accepted, when, and over which connection;
- throughput is counted at the stand-in: ``steady_per_second`` while every worker was
  sending (from the last worker's first SMS to the first worker's last), and
  ``per_second`` from the first SMS to the last (start-up is left out of both;
  ``wall_seconds`` has it); duplicates, missing and unexpected ``Client_Ref`` values are
  counted there, and the outbox's statuses in the store.

The server is started once per process and stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Small claims keep the end of a run even: no worker is left with a long claim alone.
BATCH_SIZE = 25
# PostgreSQL as it would run at a school: durable commits (the test fixture turns them off).
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def _standin(conn: Any) -> None:
    """The Text Anywhere stand-in in a child process: sends its URL, then on request
    ``{"accepted": {ref: count}, "arrivals": [(ref, time, connection)], "requests": n}``."""
    sys.path.insert(0, str(ROOT / "tests"))
    from standins.textanywhere import SEND_PAGE, TextAnywhereStandin

    class Counting(TextAnywhereStandin):
        def __init__(self) -> None:
            super().__init__()
            self.arrivals: list[tuple[str, float, str]] = []
            self.counts: Counter[str] = Counter()

        def handle(self, rec: Any) -> Any:
            with self._lock:
                reply = super().handle(rec)
                if rec.path == SEND_PAGE:
                    ref = rec.form.get("Client_Ref", "")
                    self.arrivals.append(
                        (
                            ref,
                            time.monotonic(),
                            rec.form.get("Originator", ""),  # each worker has its own
                            threading.current_thread().name,  # one per HTTP connection
                        )
                    )
                    if reply.status == 200 and str(reply.body).endswith(":1"):
                        self.counts[ref] += 1
            return reply

    with Counting() as server:
        conn.send(server.base_url)
        conn.recv()  # "report"
        with server._lock:
            conn.send(
                {
                    "accepted": dict(server.counts),
                    "arrivals": list(server.arrivals),
                    "requests": len(server.sends()),
                }
            )


def _postgres() -> Any:
    """A started PostgreSQL server of our own (durable settings) and its Databases."""
    sys.path.insert(0, str(ROOT / "tests"))
    import postgres

    postgres._SERVER_SETTINGS.update(DURABLE)
    server = postgres.LocalServer(postgres.find_bindir())
    server.start()
    return server, postgres.Databases(server.admin_url(), "bench")


def _env(values: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLCOMMS_")}
    env.update({f"SCHOOLCOMMS_{k.upper()}": str(v) for k, v in values.items()})
    return {**env, "PYTHONUNBUFFERED": "1"}


def _queue(engine: Any, count: int) -> int:
    from senders.outbox import NewMessage, create_batch

    return create_batch(
        engine,
        created_by="bench",
        channel="sms",
        template_name=None,
        subject=None,
        body_template="(benchmark)",
        filter={},
        messages=[
            NewMessage(
                "sms",
                f"+447400{100000 + i:06d}",
                f"Dear parent, this is message {i} from St Mary's. Reply STOP to opt out.",
                idempotency_key=f"bench-workers:{i}",
            )
            for i in range(count)
        ],
        excluded=0,
        estimated_cost_pence=0.0,
    )


def _counts(engine: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from schoolcomms.ops.models import Message

    with engine.connect() as conn:
        rows = conn.execute(select(Message.status, func.count()).group_by(Message.status))
        return {status: int(n) for status, n in rows}


def run(work_dir: str, n: str, workers: str, rate: str, backend: str = "postgresql") -> dict:
    """N SMS drained by WORKERS dispatcher processes at RATE each (see the module doc)."""
    import multiprocessing as mp

    from sqlalchemy import select

    from schoolcomms.ops.db import open_ops
    from schoolcomms.ops.models import Message
    from schoolcomms.settings import Settings

    sys.path.insert(0, str(ROOT / "tests"))
    from standins.textanywhere import CLIENT_ID, CLIENT_PASS

    count, procs, limit = int(n), int(workers), float(rate)
    base = Path(work_dir)
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    server = databases = None
    if backend == "postgresql":
        server, databases = _postgres()
        url = databases.create()
    else:
        url = f"sqlite:///{base / 'ops.sqlite'}"
    context = mp.get_context("spawn")
    ours, theirs = context.Pipe()
    standin = context.Process(target=_standin, args=(theirs,), daemon=True)
    standin.start()
    processes: list[subprocess.Popen[str]] = []
    try:
        if not ours.poll(30):
            raise RuntimeError("the Text Anywhere stand-in did not start")
        values = {
            "ops_url": url,
            "sms_provider": "textanywhere",
            "textanywhere_url": ours.recv(),
            "textanywhere_client_id": CLIENT_ID,
            "textanywhere_client_pass": CLIENT_PASS,
            "sms_sender_id": "StMarys",
            "sms_timeout_seconds": 10,
            "sms_rate_per_second": limit,
            "dispatch_batch_size": BATCH_SIZE,
        }
        engine = open_ops(Settings(base / "queue", env={}, overrides={"ops_url": url}))
        queued = time.perf_counter()
        _queue(engine, count)
        queue_seconds = time.perf_counter() - queued
        start = time.perf_counter()
        for i in range(procs):
            data_dir = base / f"worker{i}"
            data_dir.mkdir()
            with (base / f"worker{i}.log").open("w") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "schoolcomms", "--data-dir", str(data_dir)]
                        + ["dispatch", "--loop"],
                        # The sender id tells the stand-in which worker sent each SMS.
                        env=_env({**values, "sms_sender_id": f"Worker{i + 1}"}),
                        cwd=base,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        while True:
            counts = _counts(engine)
            if counts.get("sent", 0) + counts.get("delivered", 0) >= count:
                break
            if any(p.poll() is not None for p in processes):
                logs = [(base / f"worker{i}.log").read_text()[-2000:] for i in range(procs)]
                raise RuntimeError("a dispatcher died:\n" + "\n".join(logs))
            time.sleep(0.2)
        wall = time.perf_counter() - start
        for p in processes:
            p.send_signal(signal.SIGTERM)
        for p in processes:
            p.wait(timeout=60)
        ours.send("report")
        seen = ours.recv()
        with engine.connect() as conn:
            ids = {str(i) for i in conn.scalars(select(Message.id))}
        engine.dispose()
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
        standin.kill()
        standin.join()
        if databases is not None:
            databases.close()
        if server is not None:
            server.stop()
    accepted: dict[str, int] = seen["accepted"]
    times = sorted(t for _, t, _, _ in seen["arrivals"])
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    connections = Counter(c for _, _, _, c in seen["arrivals"])
    # Steady state: while every worker was sending (the workers start one after the
    # other, and one may finish its last claim alone).
    by_worker: dict[str, list[float]] = {}
    for _, t, w, _ in seen["arrivals"]:
        by_worker.setdefault(w, []).append(t)
    start = max(min(ts) for ts in by_worker.values())
    end = min(max(ts) for ts in by_worker.values())
    inside = sum(start <= t <= end for t in times)
    steady = (inside - 1) / (end - start) if end > start and inside > 1 else 0.0
    # Each worker's gaps between its own sends: a send later than its slot is time lost
    # for good (the pacer starts a new schedule rather than catch up).
    interval = 1 / limit if limit > 0 else 0.0
    gaps = sorted(b - a for ts in by_worker.values() for a, b in zip(ts, ts[1:], strict=False))
    return {
        "backend": backend,
        "messages": count,
        "workers": procs,
        "rate_per_worker": limit,
        "limit": limit * procs,
        "per_second": (len(times) - 1) / span if span else 0.0,
        "steady_per_second": steady,
        "steady_seconds": end - start,
        "median_gap_ms": gaps[len(gaps) // 2] * 1000 if gaps else 0.0,
        "p99_gap_ms": gaps[int(len(gaps) * 0.99)] * 1000 if gaps else 0.0,
        "late_sends": sum(g > 1.5 * interval for g in gaps) if interval else 0,
        "lost_seconds_per_worker": sum(g - interval for g in gaps if g > interval) / procs
        if interval
        else 0.0,
        "standin_seconds": span,
        "wall_seconds": wall,
        "queue_seconds": queue_seconds,
        "requests": seen["requests"],
        "distinct_refs": len(accepted),
        "duplicates": sum(c - 1 for c in accepted.values() if c > 1),
        "missing": len(ids - set(accepted)),
        "unexpected": len(set(accepted) - ids),
        "counts": counts,
        "connections": len(connections),
        "busiest_connection_share": max(connections.values()) / len(times) if times else 0.0,
        "senders_seen": len(by_worker),
        "by_worker": {w: len(ts) for w, ts in sorted(by_worker.items())},
        "load_average": os.getloadavg(),
    }


def bench(
    scenario: Callable[..., dict], cache: Path, count: int, rate: float, unlimited: bool
) -> list[dict]:
    """The ``workers`` group of ``make bench``: 1, 2, 3 dispatchers at ``rate`` each (and,
    with ``unlimited``, at no limit: where the machine caps them), on PostgreSQL.
    ``scenario`` runs one measurement in a fresh process (``benchmarks.__main__``)."""

    def once(workers: int, per_worker: float) -> dict:
        return scenario(
            "run",
            str(cache / f"workers-{workers}-{per_worker:g}"),
            str(count),
            str(workers),
            str(per_worker),
            module="benchmarks.workers",
        )

    limited = {w: once(w, rate) for w in (1, 2, 3)}
    free = {w: once(w, 0) for w in (1, 2, 3)} if unlimited else {}
    rows = []
    one = limited[1]["steady_per_second"] or float("nan")
    for w, r in limited.items():
        low, high = 0.95 * w * rate, 1.05 * w * rate
        rows.append(
            {
                "benchmark": f"workers: {count:,} SMS, {w} `dispatch --loop` process(es), "
                f"sms_rate_per_second={rate:g} each, PostgreSQL (durable), Text Anywhere "
                f"stand-in ({r['standin_seconds']:.0f} s, 1 run)",
                "median": f"{r['steady_per_second']:.1f} msg/s",
                "target": f"{low:g}-{high:g} msg/s (workers x rate)",
                "baseline": f"1 worker: {one:.1f} msg/s; first to last SMS "
                f"{r['per_second']:.1f} msg/s; {r['connections']} connection(s), busiest "
                f"{r['busiest_connection_share']:.0%}",
                "ratio": f"{r['steady_per_second'] / one:.2f}x",
                "pass": low <= r["steady_per_second"] <= high,
                "detail": r,
            }
        )
    for w, r in free.items():
        rows.append(
            {
                "benchmark": f"workers: the same, {w} process(es), no rate limit "
                f"(sms_rate_per_second=0): what this machine caps it at",
                "median": f"{r['steady_per_second']:.1f} msg/s",
                "target": "(for information)",
                "baseline": f"1 worker: {free[1]['steady_per_second']:.1f} msg/s",
                "ratio": f"{r['steady_per_second'] / free[1]['steady_per_second']:.2f}x",
                "pass": None,
                "detail": r,
            }
        )
    runs = [*limited.values(), *free.values()]
    bad = {k: sum(r[k] for r in runs) for k in ("duplicates", "missing", "unexpected")}
    rows.append(
        {
            "benchmark": f"workers: Client_Refs counted at the stand-in over all {len(runs)} runs "
            "(each message exactly once)",
            "median": f"{bad['duplicates']} dup, {bad['missing']} missing",
            "target": "0 duplicates, 0 missing",
            "baseline": f"{sum(r['requests'] for r in runs):,} SendSMSEx requests for "
            f"{sum(r['messages'] for r in runs):,} messages; outbox all sent: "
            f"{all(set(r['counts']) <= {'sent', 'delivered'} for r in runs)}",
            "ratio": "",
            "pass": not any(bad.values())
            and all(r["distinct_refs"] == r["messages"] == r["requests"] for r in runs),
        }
    )
    return rows


if __name__ == "__main__":
    name, *arguments = sys.argv[1:]
    print(json.dumps({"run": run}[name](*arguments), default=str))
