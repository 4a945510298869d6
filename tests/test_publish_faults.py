"""Fault injection on the warehouse: a full disk while a snapshot is built, and a loader
SIGKILLed at every step of publishing.

- **Disk full.** The warehouse folder (or the whole data directory) is a small tmpfs of
  its own (``mount -t tmpfs -o size=…``: the real ENOSPC from the kernel), filled up to a
  chosen number of free bytes. Where mounting is not permitted (not root) the load runs
  with ``RLIMIT_FSIZE`` set to that number instead, so the kernel refuses the write with
  EFBIG: a real failing write either way, no code hook. The load (``schoolcomms load``,
  a real process) is refused in words, the previous generation stays current and
  readable, nothing is left behind, and once there is space the same load succeeds.
- **A kill at every step.** A loader process traces the publishing code
  (``Warehouse.next_generation``, ``_publish``, ``_prune`` and the load's
  ``_stage_validate_apply``) and SIGKILLs itself at each line it runs, one process per
  line; at the slow lines (copy, attach, checkpoint, detach, fsync, rename) it is also
  killed a moment *into* the call. After every kill ``CURRENT`` names a complete
  generation that opens and holds either the old data or the new, and the next load
  succeeds and leaves no litter.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import datetime as dt
import linecache
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import MINIMAL_SCHOOL, write_extracts
from test_workers import figure

from pipelines import load as load_module
from pipelines.load import load_paths
from pipelines.sample import generate_sample
from schoolcomms.ops import db
from schoolcomms.settings import ENV_PREFIX, Settings
from schoolcomms.warehouse import CURRENT_FILE, Warehouse

MB = 2**20


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    yield
    db.close_all()


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return {**env, "PYTHONUNBUFFERED": "1"}


# ---- a small disk ----------------------------------------------------------------------------


class SmallDisk:
    """``path`` as a tmpfs of ``mb`` MB, or (mounting not permitted) a file-size limit.

    :meth:`leave_free` fills the tmpfs until ``nbytes`` are free (or, as the fallback,
    makes ``nbytes`` the largest file a loader process may write); :meth:`clear` undoes it.
    """

    def __init__(self, path: Path, mb: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        self.real = mounted.returncode == 0
        self.limit: int | None = None
        self.filler = path / "filler.bin"

    def free(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def leave_free(self, nbytes: int) -> None:
        if not self.real:
            self.limit = nbytes
            return
        self.clear()
        with self.filler.open("wb") as handle:
            handle.write(b"\0" * max(0, self.free() - nbytes))
        assert abs(self.free() - nbytes) < MB

    def clear(self) -> None:
        self.filler.unlink(missing_ok=True)
        self.limit = None

    def preexec(self) -> None:
        """Runs in the loader process before it starts (the fallback's limit)."""
        if self.limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.limit))

    def close(self) -> None:
        if self.real:
            subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)


def forget_readers() -> None:
    """Close this process's cached read-only connections to generation files."""
    for path in list(Warehouse._readers):
        Warehouse(path.parent)._forget_reader(path)


@contextlib.contextmanager
def small_disk(path: Path, mb: int) -> Iterator[SmallDisk]:
    disk = SmallDisk(path, mb)
    try:
        yield disk
    finally:
        db.close_all()
        forget_readers()  # our read-only handles on files about to vanish
        disk.close()


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample school's extracts, two weeks of marks (a 3–4 MB generation)."""
    folder = tmp_path_factory.mktemp("school")
    generate_sample("school", dt.date(2026, 11, 20), folder, weeks=2)
    return folder


def with_new_student(school: Path, folder: Path) -> Path:
    """The school's students.csv plus one new student: a load that adds a row."""
    folder.mkdir(parents=True, exist_ok=True)
    with (school / "students.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    extra = copy.deepcopy(MINIMAL_SCHOOL["students"][0])
    rows.append({k: extra.get(k, "") for k in rows[0]} | {"student_id": "NEW1", "adno": "99001"})
    write_extracts(folder, {"students": rows})
    return folder / "students.csv"


def cli_load(
    data_dir: Path, paths: list[Path], disk: SmallDisk
) -> subprocess.CompletedProcess[str]:
    """``schoolcomms --data-dir DATA load PATHS`` in a process of its own."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schoolcomms",
            "--data-dir",
            str(data_dir),
            "load",
            *map(str, paths),
        ],
        env=clean_env(),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=disk.preexec,
        check=False,
    )


def students(warehouse: Warehouse) -> int:
    return int(warehouse.query("SELECT count(*) AS n FROM students")["n"].iloc[0])


def assert_refused_in_words(done: subprocess.CompletedProcess[str], disk: SmallDisk) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout
    words = "the disk is full" if disk.real else "a file grew past the largest size allowed"
    assert words in done.stderr, done.stderr
    assert "nothing was changed" in done.stderr and "Fix: free space" in done.stderr
    assert "Nothing was loaded; the warehouse is unchanged (generation 1)" in done.stdout


def litter(root: Path) -> list[str]:
    """Files a load should not leave behind in the warehouse folder."""
    return sorted(p.name for p in root.iterdir() if p.name.endswith((".building", ".wal", ".tmp")))


@pytest.mark.parametrize(
    ("where", "extract", "free"),
    [
        # Less room than the copy of the current generation: the copy fails.
        ("copy", "students", "half the generation"),
        # Room for the copy, not for the new marks written into it: DuckDB's write fails.
        ("write", "marks", "the generation and 1 MB"),
    ],
)
def test_disk_full_while_a_snapshot_is_built_keeps_the_previous_generation(
    tmp_path: Path, school: Path, where: str, extract: str, free: str
) -> None:
    data_dir = tmp_path / "data"
    with small_disk(data_dir / "warehouse", mb=24) as disk:
        settings = Settings(data_dir, env={})
        assert load_paths(sorted(school.glob("*.csv")), settings).ok
        warehouse = Warehouse.from_settings(settings)
        size = warehouse.path_for(1).stat().st_size
        before = students(warehouse)
        disk.leave_free(size // 2 if where == "copy" else size + MB)
        free_before = disk.free()
        paths = (
            [with_new_student(school, tmp_path / "new")]
            if extract == "students"
            else [school / "marks.csv"]
        )

        done = cli_load(data_dir, paths, disk)
        assert_refused_in_words(done, disk)
        figure(
            "disk full",
            where=where,
            tmpfs=disk.real,
            generation_mb=round(size / MB, 1),
            free_mb=round(free_before / MB, 1),
            error=done.stderr.splitlines()[0][:300],
        )
        assert warehouse.generation() == 1 and students(warehouse) == before
        assert warehouse.generations() == [1]
        assert litter(warehouse.root) == []
        if disk.real:
            assert disk.free() >= free_before - MB, "the half-built copy is gone"

        disk.clear()
        again = cli_load(data_dir, paths, disk)
        assert again.returncode == 0, again.stderr[-3000:]
        assert warehouse.generation() == 2
        assert students(warehouse) == before + (extract == "students")


def test_disk_full_while_the_extracts_are_archived_changes_nothing(
    tmp_path: Path, school: Path
) -> None:
    # The whole data directory on one small disk: here the archive copy of the 5 MB
    # marks extract is what no longer fits.
    data_dir = tmp_path / "data"
    with small_disk(data_dir, mb=40) as disk:
        settings = Settings(data_dir, env={})
        assert load_paths(sorted(school.glob("*.csv")), settings).ok
        warehouse = Warehouse.from_settings(settings)
        marks = (school / "marks.csv").stat().st_size
        disk.leave_free(marks // 2)
        free_before = disk.free()

        done = cli_load(data_dir, [school / "marks.csv"], disk)
        assert done.returncode == 2, done.stderr[-3000:]
        assert "Traceback" not in done.stderr + done.stdout
        assert "while reading and archiving the extracts" in done.stderr
        assert "nothing was changed" in done.stderr
        assert warehouse.generation() == 1 and warehouse.generations() == [1]
        assert litter(warehouse.root) == []
        if disk.real:
            assert disk.free() >= free_before - MB, "the partial archive copy is gone"
        disk.clear()
        assert cli_load(data_dir, [school / "marks.csv"], disk).returncode == 0
        assert warehouse.generation() == 2


# ---- a kill at every step of publishing --------------------------------------------------

WATCHED = {
    "next_generation": Warehouse.next_generation.__wrapped__.__code__,  # type: ignore[attr-defined]
    "_publish": Warehouse._publish.__code__,
    "_prune": Warehouse._prune.__code__,
    "_stage_validate_apply": load_module._stage_validate_apply.__code__,
}
# Lines that change something on disk (or in the new generation): a kill just before
# the line after each of them sees every state publishing can be left in. A kill before
# any other line leaves the same state as the kill before it, so those are not repeated.
CHANGES = (
    "unlink",
    "copyfile",
    "execute",
    "ensure_schema",
    "apply_all",
    "record_generation",
    "replace",
    "write_text",
    "fsync",
    "_publish",
    "_prune",
)
# Lines spending their time in one long call: also killed a moment into the call.
SLOW = ("copyfile", "CHECKPOINT", "apply_all")
Step = tuple[str, int]


def _traced_load(data_dir: str, paths: list[str], target: Step | None, delay: float) -> list[Step]:
    """Load ``paths``; SIGKILL this process at ``target`` (``delay`` s into that line).

    With no target, return every watched (function, line) in the order first run.
    """
    names = {code: name for name, code in WATCHED.items()}
    seen: dict[Step, None] = {}

    def die() -> None:
        if delay:
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
        else:
            os.kill(os.getpid(), signal.SIGKILL)

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            step = (names[frame.f_code], frame.f_lineno)
            if target is None:
                seen.setdefault(step)
            elif step == target:
                die()
        return local

    def calls(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code in names else None

    sys.settrace(calls)
    try:
        report = load_paths([Path(p) for p in paths], Settings(data_dir, env={}))
    finally:
        sys.settrace(None)
    assert report.ok, report.summary()
    if target is not None and delay:
        time.sleep(30)  # the timer fires during the line, or here: killed either way
    return list(seen)


def _child(data_dir: str, paths: list[str], target: Step | None, delay: float, out: Any) -> None:
    out.send(_traced_load(data_dir, paths, target, delay))


def run_child(context: Any, data_dir: Path, paths: list[Path], target: Step | None, delay: float):
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(str(data_dir), [str(p) for p in paths], target, delay, send)
    )
    process.start()
    send.close()
    process.join(timeout=120)
    if process.is_alive():
        process.kill()
        raise AssertionError(f"the loader hung at {target}")
    steps = receive.recv() if target is None else None
    return process.exitcode, steps


def source(step: Step) -> str:
    code = WATCHED[step[0]]
    return linecache.getline(code.co_filename, step[1]).strip()


def check_after_kill(data_dir: Path, old: int, new: int, where: str) -> int:
    """CURRENT names a complete generation holding the old or the new data; returns it."""
    warehouse = Warehouse(data_dir / "warehouse")
    current = warehouse.generation()  # raises if CURRENT names a missing file
    assert current in (1, 2), where
    count = students(warehouse)  # opens the generation read-only: a complete file
    assert count == (old if current == 1 else new), where
    named = (warehouse.root / CURRENT_FILE).read_text()
    assert named == f"{current}\n", f"{where}: CURRENT is {named!r}"
    return current


def test_a_loader_killed_at_every_step_of_publishing_leaves_a_complete_generation(
    tmp_path: Path,
) -> None:
    base = tmp_path / "base"
    tables = copy.deepcopy(MINIMAL_SCHOOL)
    write_extracts(tmp_path / "school", tables)
    assert load_paths([tmp_path / "school"], Settings(base, env={})).ok
    db.close_all()
    extra = copy.deepcopy(tables["students"][0]) | {"student_id": "S9", "adno": "1009"}
    write_extracts(tmp_path / "more", {"students": [*tables["students"], extra]})
    paths = [tmp_path / "more" / "students.csv"]
    old, new = len(tables["students"]), len(tables["students"]) + 1

    context = multiprocessing.get_context("forkserver")
    # Each loader forks from a server that has the heavy imports done already.
    context.set_forkserver_preload(["pandas", "duckdb", "pipelines.load", "schoolcomms.ops.db"])
    rehearsal = tmp_path / "rehearsal"
    _copy_tree(base, rehearsal)
    code, steps = run_child(context, rehearsal, paths, None, 0.0)
    assert code == 0 and steps
    assert {name for name, _ in steps} == set(WATCHED), "every watched function ran"
    publishing = [s for s in steps if s[0] != "_stage_validate_apply" or _in_publish(s)]
    after = [b for a, b in zip(publishing, publishing[1:], strict=False) if _changes(a)]
    plans = [(s, 0.0) for s in dict.fromkeys([publishing[0], *after, publishing[-1]])]
    plans += [(s, 2e-3) for s in publishing if any(w in source(s) for w in SLOW)]
    assert len(plans) >= 15, plans

    outcomes: dict[int, int] = {1: 0, 2: 0}
    for n, (step, delay) in enumerate(plans):
        data_dir = tmp_path / f"kill{n}"
        _copy_tree(base, data_dir)
        where = f"killed {delay * 1000:g} ms into {step[0]} line {step[1]}: {source(step)}"
        code, _ = run_child(context, data_dir, paths, step, delay)
        assert code == -signal.SIGKILL, f"{where}: exit {code}"
        outcomes[check_after_kill(data_dir, old, new, where)] += 1
        # The next load succeeds, and leaves neither half-built files nor a stale
        # pointer file behind.
        assert load_paths(paths, Settings(data_dir, env={})).ok, where
        warehouse = Warehouse(data_dir / "warehouse")
        assert students(warehouse) == new, where
        assert litter(warehouse.root) == [], where
        forget_readers()
    # Early kills keep the old generation, late ones the new: both outcomes were seen.
    assert outcomes[1] and outcomes[2], outcomes
    figure(
        "kill while publishing",
        kills=len(plans),
        into_a_call=sum(1 for _, d in plans if d),
        old_generation_current=outcomes[1],
        new_generation_current=outcomes[2],
        lines_traced=len(steps),
    )


def _changes(step: Step) -> bool:
    return any(word in source(step) for word in CHANGES)


def _in_publish(step: Step) -> bool:
    """Lines of ``_stage_validate_apply`` from the new generation's ``with`` onwards."""
    code = WATCHED["_stage_validate_apply"]
    lines = linecache.getlines(code.co_filename)
    start = next(
        n for n in range(code.co_firstlineno, len(lines) + 1) if "next_generation" in lines[n - 1]
    )
    return step[1] >= start


def _copy_tree(source_dir: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source_dir, target)
