"""Messaging benchmarks (issue 3). Each scenario runs in a fresh process, prints one JSON line.

``python -m benchmarks.messaging NAME ARGS…`` (``benchmarks/__main__.py`` calls it):

``email N ROUNDS``
    :func:`benchmarks.email.run`: N e-mails to a local aiosmtpd sink, SmtpEmail over one
    connection vs yagmail's ``send()`` per message (plain, and STARTTLS + AUTH). That is
    the messenger alone: no outbox, no dispatcher.
``email_dispatch DATA_DIR N``
    The same N e-mails queued as one batch and sent by :class:`Dispatcher` through
    SmtpEmail (``email_rate_per_second=0``): claim, send, ``record_sent`` per message.
``sms DATA_DIR N RATE``
    N SMS queued as one batch and sent by one dispatcher through the Text Anywhere
    stand-in (``tests/standins/textanywhere.py``) at ``sms_rate_per_second=RATE``. The
    stand-in runs in its own process (so it does not share our GIL) and reports every
    ``Client_Ref`` it accepted and when; we count duplicates and missing ones.
``plan_warehouse DATA_DIR`` / ``plan DATA_DIR`` / ``plan_naive DATA_DIR PUPILS``
    Build (once) the 50,000-pupil warehouse of :func:`plan_warehouse`;
    :func:`senders.compose.plan_send` for every pupil in it; and the naive baseline:
    one warehouse query per pupil for its contacts, then the same rendering and
    segment counting, for the first ``PUPILS`` pupils.
``memory DATA_DIR N BUDGET_SECONDS SAMPLE_EVERY``
    ``create_batch`` of N SMS, then one dispatcher sends them all through the file
    gateway (``sms_rate_per_second=0``), sampling resident memory every SAMPLE_EVERY
    messages (and every 15 s). If BUDGET_SECONDS (> 0) pass first, the dispatcher is
    stopped and the result says how far it got.

Peak memory is the process's own high-water mark (``VmHWM``; see :func:`peak_mb` for why
not ``ru_maxrss``, which is reported too).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PUPILS = 50_000
SMS_TEMPLATE = (
    "Dear {{ contact.name }}, {{ student.preferred_forename }}’s end-of-term report from "
    "{{ school.name }} is ready on the parent portal."
)
SCHOOL = "St Mary’s Academy Trust"


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_mb() -> float:
    """This process's peak resident memory, in MiB: ``VmHWM``, else ``ru_maxrss``.

    On Linux, ``ru_maxrss`` of a process started with (v)fork + exec starts from the
    parent's peak (the kernel carries the old memory map's high-water mark over exec),
    so a child of a big parent reports the parent's peak; ``VmHWM`` is this process
    image's own. ``ru_maxrss_mb`` is reported next to it.
    """
    own = _status_mb("VmHWM")
    return own if own is not None else ru_maxrss_mb()


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory now (``/proc/self/statm``), in MiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _ops(data_dir: str, **overrides: Any) -> tuple[Any, Any]:
    from schoolcomms.ops.db import open_ops
    from schoolcomms.settings import Settings

    settings = Settings(data_dir, env={}, overrides=overrides)
    return settings, open_ops(settings)


def _queue(engine: Any, channel: str, messages: list[Any]) -> int:
    from senders.outbox import create_batch

    return create_batch(
        engine,
        created_by="bench",
        channel=channel,
        template_name=None,
        subject=None,
        body_template="(benchmark)",
        filter={},
        messages=messages,
        excluded=0,
        estimated_cost_pence=0.0,
    )


def _sms(n: int) -> list[Any]:
    from senders.outbox import NewMessage

    return [
        NewMessage(
            "sms",
            f"+447400{100000 + i:06d}",
            f"Dear parent, this is message {i} from St Mary's. Reply STOP to opt out.",
            idempotency_key=f"bench-sms:{i}",
        )
        for i in range(n)
    ]


# ---- e-mail ------------------------------------------------------------------------------


def email(n: str, rounds: str) -> dict[str, Any]:
    """:func:`benchmarks.email.run` in this (fresh) process."""
    from benchmarks.email import run

    start = time.perf_counter()
    result = run(int(n), int(rounds))
    result["seconds"] = time.perf_counter() - start
    result["peak_mb"] = peak_mb()
    return result


def email_dispatch(data_dir: str, n: str) -> dict[str, Any]:
    """N e-mails through the outbox and the dispatcher to the plain (no TLS) sink."""
    from benchmarks.email import BODY, FROM, HTML, SUBJECT, _free_port, _sink
    from senders.batches import batch_progress
    from senders.channels.smtp import SmtpEmail
    from senders.dispatcher import Dispatcher
    from senders.outbox import NewMessage

    count = int(n)
    context = mp.get_context("spawn")
    messages, connections = context.Value("i", 0), context.Value("i", 0)
    ready, port = context.Event(), _free_port()
    sink = context.Process(
        target=_sink, args=(port, None, (messages, connections), ready), daemon=True
    )
    sink.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")
        settings, engine = _ops(
            data_dir,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            email_from=FROM,
            email_rate_per_second=0,
        )
        batch = _queue(
            engine,
            "email",
            [
                NewMessage(
                    "email",
                    f"parent{i}@home.example.com",
                    BODY,
                    subject=SUBJECT,
                    html=HTML,
                    idempotency_key=f"bench-email:{i}",
                )
                for i in range(count)
            ],
        )
        dispatcher = Dispatcher(engine, {"email": SmtpEmail(settings)}, settings)
        start = time.perf_counter()
        stats = dispatcher.run_once("email")
        seconds = time.perf_counter() - start
        deadline = time.monotonic() + 10
        while messages.value < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return {
            "messages": count,
            "seconds": seconds,
            "per_second": count / seconds,
            "sent": stats.sent,
            "received": messages.value,
            "connections": connections.value,
            "counts": batch_progress(engine, batch)["counts"],
            "peak_mb": peak_mb(),
        }
    finally:
        sink.kill()
        sink.join()


# ---- SMS through the Text Anywhere stand-in -------------------------------------------


def _standin(conn: Any) -> None:
    """The Text Anywhere stand-in, in a child process: send its URL, then on request the
    ``(Client_Ref, arrival time)`` of every SendSMSEx it accepted, and every request's."""
    sys.path.insert(0, str(ROOT / "tests"))
    import standins
    from standins.textanywhere import SEND_PAGE, TextAnywhereStandin

    # The stand-in writes the status line + headers and the body in two small writes;
    # with Nagle on, the body waits for the client's delayed ACK (~40 ms a request on
    # Linux), which would cap us near 20 requests a second. A real gateway does not.
    standins._Handler.disable_nagle_algorithm = True

    class Timed(TextAnywhereStandin):
        def __init__(self) -> None:
            super().__init__()
            self.arrivals: list[tuple[str, float]] = []

        def record(self, rec: Any) -> None:
            super().record(rec)
            if rec.path == SEND_PAGE:
                self.arrivals.append((rec.form.get("Client_Ref", ""), time.monotonic()))

    with Timed() as server:
        conn.send(server.base_url)
        conn.recv()  # "report"
        conn.send(
            {
                "requests": len(server.sends()),
                "arrivals": server.arrivals,
                "accepted": sorted(server.accepted),
            }
        )


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most arrivals in any ``window`` seconds."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def sms(data_dir: str, n: str, rate: str) -> dict[str, Any]:
    """N SMS at RATE a second through one dispatcher and the Text Anywhere stand-in."""
    from senders.batches import batch_progress
    from senders.dispatcher import Dispatcher
    from senders.messengers import sms_messenger

    sys.path.insert(0, str(ROOT / "tests"))
    from standins.textanywhere import CLIENT_ID, CLIENT_PASS

    count, limit = int(n), float(rate)
    context = mp.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_standin, args=(theirs,), daemon=True)
    server.start()
    try:
        if not ours.poll(30):
            raise RuntimeError("the Text Anywhere stand-in did not start")
        settings, engine = _ops(
            data_dir,
            sms_provider="textanywhere",
            textanywhere_url=ours.recv(),
            textanywhere_client_id=CLIENT_ID,
            textanywhere_client_pass=CLIENT_PASS,
            sms_sender_id="StMarys",
            sms_timeout_seconds=10,
            sms_rate_per_second=limit,
        )
        batch = _queue(engine, "sms", _sms(count))
        dispatcher = Dispatcher(engine, {"sms": sms_messenger(settings)}, settings)
        start = time.perf_counter()
        stats = dispatcher.run_once("sms")
        seconds = time.perf_counter() - start
        ours.send("report")
        seen = ours.recv()
    finally:
        server.kill()
        server.join()
    progress = batch_progress(engine, batch)
    with engine.connect() as conn:
        from sqlalchemy import select

        from schoolcomms.ops.models import Message

        ids = {str(i) for i in conn.scalars(select(Message.id).where(Message.batch_id == batch))}
    refs = Counter(ref for ref, _ in seen["arrivals"])
    times = sorted(t for _, t in seen["arrivals"])
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    interval = 1 / limit if limit > 0 else 0.0
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return {
        "messages": count,
        "limit": limit,
        "seconds": seconds,
        "per_second": stats.sent / seconds,
        # Arrivals at the stand-in: (n - 1) intervals between the first and the last.
        "standin_per_second": (len(times) - 1) / span if span else 0.0,
        "max_in_any_second": _max_in_window(times),
        # Time lost to sends that came later than 1/RATE after the previous one (the
        # pacer never catches up, so this is what keeps the rate below the limit).
        "late_sends": sum(g > 1.5 * interval for g in gaps),
        "lost_seconds": sum(g - interval for g in gaps if g > interval),
        "longest_gap_ms": max(gaps, default=0.0) * 1000,
        "sent": stats.sent,
        "stats": str(stats),
        "requests": seen["requests"],
        "accepted": len(seen["accepted"]),  # answered code 1 (sent)
        "distinct_refs": len(refs),
        "duplicates": sum(c - 1 for c in refs.values() if c > 1),
        "missing": len(ids - set(refs)),
        "unexpected": len(set(refs) - ids),
        "counts": progress["counts"],
        "peak_mb": peak_mb(),
    }


# ---- planning ---------------------------------------------------------------------------


def plan_warehouse(data_dir: Path, pupils: int = PUPILS) -> Path:
    """A warehouse of ``pupils`` pupils (one priority-1 contact each, a priority-2 one for
    every fourth), loaded through the real loader once and kept; returns the data dir."""
    import shutil

    import duckdb

    from pipelines.load import load_paths
    from schoolcomms.settings import Settings

    stamp = data_dir / f"PUPILS-{pupils}"
    if stamp.exists() and (data_dir / "warehouse" / "CURRENT").exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    extracts = data_dir / "extracts"
    extracts.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT 'STU' || lpad(i::VARCHAR, 6, '0') AS student_id,
        'Forename' || i AS forename, 'Surname' || (i % 977) AS surname,
        CASE WHEN i % 3 = 0 THEN 'Pref' || i END AS preferred_forename,
        ((i % 5) + 7)::VARCHAR AS year_group,
        ((i % 5) + 7)::VARCHAR || chr((65 + i % 8)::INTEGER) AS form,
        'C01' AS status, 'school' AS cohort
        FROM range({pupils}) t(i)) TO '{extracts / "students.csv"}' (HEADER)""")
    con.execute(f"""COPY (
        SELECT 'STU' || lpad(i::VARCHAR, 6, '0') AS student_id,
            'CON' || lpad(i::VARCHAR, 6, '0') AS contact_id,
            CASE WHEN i % 2 = 0 THEN 'Mrs' END AS title, 'Parent' || i AS forename,
            'Surname' || (i % 977) AS surname, 'Mother' AS relationship, 1 AS priority,
            'Y' AS parental_responsibility, '07400 ' || (100000 + i)::VARCHAR AS mobile,
            'parent' || i || '@example.com' AS email, i || ' High Street' AS address_line1,
            'Anytown' AS town, 'AB1 2CD' AS postcode
        FROM range({pupils}) t(i)
        UNION ALL
        SELECT 'STU' || lpad(i::VARCHAR, 6, '0'), 'CON2' || lpad(i::VARCHAR, 6, '0'), 'Mr',
            'Carer' || i, 'Other' || (i % 311), 'Father', 2, 'Y',
            '07400 ' || (200000 + i)::VARCHAR, NULL, NULL, NULL, NULL
        FROM range(0, {pupils}, 4) t(i)) TO '{extracts / "contacts.csv"}' (HEADER)""")
    con.close()
    files = [extracts / "students.csv", extracts / "contacts.csv"]
    report = load_paths(files, Settings(data_dir, env={}), actor="bench")
    if not report.ok:
        raise SystemExit("could not load the planning warehouse: " + report.summary())
    stamp.write_text("ok")
    return data_dir


def build_plan_warehouse(data_dir: str) -> dict[str, Any]:
    """:func:`plan_warehouse` in its own process (it is built once, then reused)."""
    start = time.perf_counter()
    path = plan_warehouse(Path(data_dir))
    return {"data_dir": str(path), "seconds": time.perf_counter() - start}


def _planning(data_dir: str) -> tuple[Any, Any, Any, list[str]]:
    from schoolcomms.ops.db import open_ops
    from schoolcomms.settings import Settings
    from schoolcomms.warehouse import Warehouse

    settings = Settings(data_dir, env={}, overrides={"school_name": SCHOOL})
    warehouse = Warehouse.from_settings(settings)
    ids = warehouse.query("SELECT student_id FROM students ORDER BY student_id")["student_id"]
    return settings, warehouse, open_ops(settings), list(ids)


def plan(data_dir: str) -> dict[str, Any]:
    """plan_send for every pupil: recipients, rendering, plain punctuation, segments, cost."""
    from senders.compose import Composition, plan_send

    start = time.perf_counter()
    settings, warehouse, engine, ids = _planning(data_dir)
    setup = time.perf_counter() - start
    composition = Composition(channel="sms", student_ids=ids, created_by="bench", body=SMS_TEMPLATE)
    start = time.perf_counter()
    planned = plan_send(settings, warehouse, engine, composition)
    seconds = time.perf_counter() - start
    first = planned.messages[0]
    return {
        "pupils": len(ids),
        "recipients": len(planned.messages),
        "excluded": len(planned.excluded),
        "seconds": seconds,
        "setup_seconds": setup,
        "example": first.body,
        "encoding": sorted({m.encoding for m in planned.messages}),
        "notes": planned.notes,
        "cost_pence": planned.total_cost_pence,
        "peak_mb": peak_mb(),
    }


def plan_naive(data_dir: str, pupils: str) -> dict[str, Any]:
    """The naive loop: one warehouse query per pupil for its contacts (and its own row),
    then the same rendering, plain punctuation and segment counting, one by one."""
    from senders import segments
    from senders.recipients import Recipient
    from senders.templates import TemplateText, build_context, render_message

    settings, warehouse, _, ids = _planning(data_dir)
    sample = ids[: int(pupils)]
    template = TemplateText("sms", None, SMS_TEMPLATE)
    price = float(settings["sms_pence_per_segment"])
    sql = (
        "SELECT s.forename AS pupil_forename, s.preferred_forename, s.surname AS pupil_surname, "
        "s.form, s.year_group, c.* FROM contacts c JOIN students s USING (student_id) "
        "WHERE c.student_id = ? ORDER BY c.priority, c.contact_id"
    )
    start = time.perf_counter()
    planned = []
    for student_id in sample:
        for row in warehouse.query(sql, [student_id]).to_dict("records"):
            if row["priority"] != 1 or not row["mobile_e164"]:
                continue
            pupil = {
                "student_id": student_id,
                "forename": row["pupil_forename"],
                "preferred_forename": row["preferred_forename"],
                "surname": row["pupil_surname"],
                "form": row["form"],
                "year_group": row["year_group"],
            }
            recipient = Recipient(row["contact_id"], row["mobile_e164"], row, [pupil])
            context = build_context(settings, contact=row, students=recipient.students)
            body, _ = segments.normalise(render_message(template, context).text)
            counted = segments.count(body)
            planned.append((recipient.to, body, segments.cost_pence(counted.segments, price)))
    seconds = time.perf_counter() - start
    return {
        "pupils": len(sample),
        "recipients": len(planned),
        "seconds": seconds,
        "per_pupil_ms": seconds / len(sample) * 1000,
        "example": planned[0][1],
        "peak_mb": peak_mb(),
    }


# ---- memory -----------------------------------------------------------------------------


class _Sampling:
    """Wraps a messenger: counts sends and samples resident memory every ``every`` sends."""

    def __init__(self, inner: Any, every: int, started: float) -> None:
        self.inner, self.every, self.started = inner, every, started
        self.channel, self.name = inner.channel, inner.name
        self.sent = 0
        self.samples: list[dict[str, float]] = []

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def send(self, message: Any) -> Any:
        result = self.inner.send(message)
        self.sent += 1
        if self.sent % self.every == 0:
            sample = {
                "sent": self.sent,
                "seconds": round(time.perf_counter() - self.started, 1),
                "rss_mb": round(rss_mb(), 1),
            }
            self.samples.append(sample)
            print(f"memory sample {sample}", file=sys.stderr, flush=True)  # if we are killed
        return result


def memory(data_dir: str, n: str, budget: str, every: str) -> dict[str, Any]:
    """create_batch of N SMS, then dispatch them through the file gateway at full speed."""
    import gc

    from senders.batches import batch_progress
    from senders.dispatcher import Dispatcher
    from senders.messengers import sms_messenger

    count, limit, step = int(n), float(budget), int(every)
    settings, engine = _ops(data_dir, sms_provider="file", sms_rate_per_second=0)
    rss_start = rss_mb()
    start = time.perf_counter()
    messages = _sms(count)
    batch = _queue(engine, "sms", messages)
    create_seconds = time.perf_counter() - start
    rss_queued = rss_mb()
    del messages
    gc.collect()
    stop = threading.Event()
    started = time.perf_counter()
    messenger = _Sampling(sms_messenger(settings), step, started)
    timed: list[dict[str, float]] = []

    done = threading.Event()

    def watch() -> None:  # a sample every 15 s
        while not done.wait(15):
            elapsed = time.perf_counter() - started
            timed.append(
                {"sent": messenger.sent, "seconds": round(elapsed, 1), "rss_mb": round(rss_mb(), 1)}
            )

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    budget_timer = threading.Timer(limit, stop.set) if limit > 0 else None
    if budget_timer:
        budget_timer.start()
    rss_before = rss_mb()
    stats = Dispatcher(engine, {"sms": messenger}, settings).run_once("sms", stop_event=stop)
    seconds = time.perf_counter() - started
    if budget_timer:
        budget_timer.cancel()
    done.set()
    watcher.join()
    counts = batch_progress(engine, batch)["counts"]
    samples = messenger.samples
    windows = []  # messages a second in each SAMPLE_EVERY-message stretch
    previous = {"sent": 0, "seconds": 0.0}
    for sample in samples:
        span = sample["seconds"] - previous["seconds"]
        windows.append(round((sample["sent"] - previous["sent"]) / span, 1) if span else None)
        previous = sample
    return {
        "messages": count,
        "sent": stats.sent,
        "finished": counts["queued"] == counts["sending"] == 0,
        "budget_seconds": limit,
        "create_seconds": create_seconds,
        "dispatch_seconds": seconds,
        "per_second": stats.sent / seconds if seconds else 0.0,
        "rss_start_mb": round(rss_start, 1),
        "rss_after_create_batch_mb": round(rss_queued, 1),
        "rss_before_dispatch_mb": round(rss_before, 1),
        "rss_end_mb": round(rss_mb(), 1),
        "samples": samples,
        "timed_samples": timed,
        "per_second_by_stretch": windows,
        "counts": counts,
        "peak_mb": peak_mb(),
    }


SCENARIOS = {
    "email": email,
    "email_dispatch": email_dispatch,
    "sms": sms,
    "plan_warehouse": build_plan_warehouse,
    "plan": plan,
    "plan_naive": plan_naive,
    "memory": memory,
}

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    result = SCENARIOS[name](*args)
    result["ru_maxrss_mb"] = ru_maxrss_mb()
    print(json.dumps(result, default=str))
