"""The warehouse: immutable DuckDB snapshots ("generations") and a CURRENT pointer.

This is the only module that opens DuckDB files. DuckDB allows one read-write process
*or* many read-only processes per file, and a process keeps seeing a file it already
opened; so a load never writes the file readers use. It copies the current generation
to a new file, applies the extracts there, checkpoints, and then atomically rewrites
``CURRENT``. Readers open whatever ``CURRENT`` names, read-only, and notice a new
generation on their next query. One loader at a time holds ``load.lock``; the last
``generations_kept`` files stay on disk so that ``rollback`` is one step.

Layout under ``<data dir>/warehouse/``::

    000001.duckdb  000002.duckdb  …  CURRENT  load.lock
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from filelock import FileLock, Timeout

CURRENT_FILE = "CURRENT"
LOCK_FILE = "load.lock"
# Each generation's load log (written by pipelines.apply): one row per load in its lineage.
LOG_TABLE = "_generations"
SUFFIX = ".duckdb"


class WarehouseError(RuntimeError):
    """Something about the warehouse files is wrong; the message says what to do."""


class NoWarehouse(WarehouseError):
    """Nothing has been loaded yet."""


class Busy(WarehouseError):
    """Another load holds the lock."""


class ReadOnlyQuery(WarehouseError):
    """A statement tried to change the warehouse through a read-only connection."""


class SnapshotFailed(WarehouseError):
    """The new generation could not be written (the disk is full, say); nothing changed.

    ``problem`` says what happened and ``fix`` what to do, for a load report.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} {fix[:1].upper()}{fix[1:]}.")
        self.problem, self.fix = problem, fix


# What a full disk (or a full quota, or a size limit) is called, by errno and in the
# words DuckDB passes on from the operating system.
FULL_DISK = {
    errno.ENOSPC: ("No space left on device", "the disk is full"),
    errno.EDQUOT: ("Disk quota exceeded", "the disk quota is used up"),
    errno.EFBIG: ("File too large", "a file grew past the largest size allowed"),
}


def storage_trouble(exc: BaseException) -> str | None:
    """What went wrong with the disk, in words; None if ``exc`` is not a storage failure
    (a bug, an interrupt), which must travel on unchanged."""
    if isinstance(exc, OSError):
        if exc.errno in FULL_DISK:
            words, meaning = FULL_DISK[exc.errno]
            return f"{meaning} ({words})"
        return exc.strerror or str(exc)
    if isinstance(exc, duckdb.Error):
        text = str(exc)
        for words, meaning in FULL_DISK.values():
            if words.lower() in text.lower():
                return f"{meaning} ({words})"
        if isinstance(exc, duckdb.IOException) or "Could not write file" in text:
            return text.splitlines()[0]
    return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


class Warehouse:
    """Snapshots of the MIS data under ``root``."""

    # Read-only connections shared by every Warehouse object in this process, per file.
    _readers: dict[Path, duckdb.DuckDBPyConnection] = {}
    _readers_lock = threading.Lock()

    def __init__(
        self,
        root: str | os.PathLike[str],
        keep: int = 5,
        memory_limit: str = "1GB",
        tmp_dir: str | os.PathLike[str] | None = None,
    ):
        self.root = Path(root)
        self.keep = max(1, int(keep))
        self.memory_limit = memory_limit
        self.tmp_dir = Path(tmp_dir) if tmp_dir else self.root.parent / "tmp"

    @classmethod
    def from_settings(cls, settings: Any) -> Warehouse:
        """The warehouse of a :class:`schoolcomms.settings.Settings`."""
        return cls(
            settings.warehouse_dir,
            keep=settings["generations_kept"],
            memory_limit=settings["load_memory_limit"],
            tmp_dir=settings.tmp_dir,
        )

    # ---- generations ------------------------------------------------------------------
    def path_for(self, generation: int) -> Path:
        return self.root / f"{generation:06d}{SUFFIX}"

    def generations(self) -> list[int]:
        """Every complete generation on disk, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.glob(f"*{SUFFIX}"):
            if path.stem.isdigit():
                found.append(int(path.stem))
        return sorted(found)

    def generation(self) -> int | None:
        """The current generation number (use it as a cache key), or None before any load."""
        pointer = self.root / CURRENT_FILE
        try:
            text = pointer.read_text().strip()
        except FileNotFoundError:
            return None
        if not text.isdigit() or not self.path_for(int(text)).is_file():
            raise WarehouseError(
                f"{pointer} names generation {text!r}, which is not on disk. Run "
                "`schoolcomms rollback` to point it at the newest complete generation."
            )
        return int(text)

    def _publish(self, generation: int) -> None:
        pointer = self.root / CURRENT_FILE
        tmp = self.root / f".{CURRENT_FILE}.{os.getpid()}.tmp"
        try:
            tmp.write_text(f"{generation}\n")
            _fsync_file(tmp)
            os.replace(tmp, pointer)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def _named(self) -> str:
        """What CURRENT says, as written (blank if there is no CURRENT)."""
        try:
            return (self.root / CURRENT_FILE).read_text().strip()
        except FileNotFoundError:
            return ""

    def _lineage(self, generation: int) -> set[int]:
        """The generation numbers in its load log (its own and its ancestors'), if any."""
        cur = self._reader(generation).cursor()
        try:
            rows = cur.execute(f"SELECT DISTINCT generation FROM {LOG_TABLE}").fetchall()
        except duckdb.Error:
            return set()
        finally:
            cur.close()
        return {int(g) for (g,) in rows if g is not None}

    def _ancestors(self, current: int) -> list[int]:
        """The generations on disk that ``current`` was built on, oldest first.

        Each load copies its parent's load log and adds its own number, so a generation
        that was rolled back and then built past is not an ancestor: rolling back again
        must not bring it back. Generations older than the log count as ancestors.
        """
        lineage = self._lineage(current)
        first = min(lineage, default=current)
        return [g for g in self.generations() if g < current and (g < first or g in lineage)]

    def _prune(self, current: int) -> None:
        kept = [*self._ancestors(current), current][-self.keep :]
        for generation in self.generations():
            if generation not in kept and generation < current:
                self.path_for(generation).unlink(missing_ok=True)
                self._forget_reader(self.path_for(generation))

    @contextlib.contextmanager
    def write_lock(self, timeout: float = 0) -> Iterator[None]:
        """Hold the one-loader-at-a-time lock; raise :class:`Busy` if another load has it."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / LOCK_FILE))
        try:
            lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise Busy(
                "Another load is running (the warehouse lock is held). Wait for it to "
                "finish and try again."
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def rollback(self) -> tuple[int | None, int]:
        """Make the previous generation current; returns (before, after).

        If CURRENT names a generation that is not on disk, point it at the newest
        complete one instead (what :meth:`generation`'s message tells the user to do).
        """
        with self.write_lock(timeout=30):
            try:
                current = self.generation()
            except WarehouseError:
                complete = self.generations()
                if not complete:
                    raise
                named = (self.root / CURRENT_FILE).read_text().strip()
                self._publish(complete[-1])
                return (int(named) if named.isdigit() else None), complete[-1]
            if current is None:
                raise NoWarehouse("There is nothing to roll back: no extract has been loaded.")
            older = self._ancestors(current)
            if not older:
                raise WarehouseError(
                    f"Generation {current} is the oldest one kept; there is nothing earlier "
                    "to roll back to."
                )
            self._publish(older[-1])
            return current, older[-1]

    # ---- writing ----------------------------------------------------------------------
    def staging_connection(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB for reading and validating extracts.

        The current generation, if any, is attached read-only as ``cur``. Work past
        the memory limit spills to the data directory's tmp folder.
        """
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(
            config={
                "memory_limit": self.memory_limit,
                "temp_directory": str(self.tmp_dir),
                "threads": os.cpu_count() or 2,
            }
        )
        con.execute("SET enable_progress_bar = false")
        current = self.generation()
        if current is not None:
            con.execute(f"ATTACH '{self.path_for(current)}' AS cur (READ_ONLY)")
        return con

    @contextlib.contextmanager
    def next_generation(self, con: duckdb.DuckDBPyConnection) -> Iterator[int]:
        """Attach a copy of the current generation to ``con`` as ``new`` and publish it.

        The caller must hold :meth:`write_lock`. If the body raises, or the copy cannot
        be written or published, the copy is deleted and CURRENT is untouched; a failing
        disk (full, say) raises :class:`SnapshotFailed`, which says so in words.
        """
        current = self.generation()
        number = max(self.generations(), default=0) + 1
        final = self.path_for(number)
        building = final.with_name(final.name + ".building")
        wal = Path(str(building) + ".wal")
        building.unlink(missing_ok=True)
        wal.unlink(missing_ok=True)
        for stale in self.root.glob(f".{CURRENT_FILE}.*.tmp"):  # a loader killed mid-publish
            stale.unlink(missing_ok=True)
        try:
            try:
                if current is not None:
                    shutil.copyfile(self.path_for(current), building)
                con.execute(f"ATTACH '{building}' AS new")
            except BaseException:
                building.unlink(missing_ok=True)  # a partial copy would keep the disk full
                raise
            try:
                yield number
                con.execute("CHECKPOINT new")
                con.execute("DETACH new")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("DETACH new")
                building.unlink(missing_ok=True)
                wal.unlink(missing_ok=True)
                raise
            try:
                _fsync_file(building)
                os.replace(building, final)
                _fsync_dir(self.root)
                self._publish(number)
            except BaseException:
                if self._named() != str(number):
                    building.unlink(missing_ok=True)
                    final.unlink(missing_ok=True)
                raise
        except (OSError, duckdb.Error) as exc:
            trouble = storage_trouble(exc)
            if trouble is None or self._named() == str(number):
                raise
            size = self.path_for(current).stat().st_size if current is not None else 0
            kept = f"generation {current} is still current" if current else "nothing is loaded"
            raise SnapshotFailed(
                f"could not write the new warehouse generation in {self.root}: {trouble}; "
                f"nothing was changed ({kept})",
                f"free space on the disk holding {self.root} (a load copies the current "
                f"generation, {size / 2**20:,.1f} MB, and adds the new data), then load again",
            ) from exc
        self._prune(number)

    # ---- reading ----------------------------------------------------------------------
    def _reader(self, generation: int) -> duckdb.DuckDBPyConnection:
        path = self.path_for(generation)
        with self._readers_lock:
            con = self._readers.get(path)
            if con is None:
                # No file system access from queries: `query` is exposed to operators.
                con = duckdb.connect(
                    str(path), read_only=True, config={"enable_external_access": False}
                )
                self._readers[path] = con
            return con

    def _forget_reader(self, path: Path) -> None:
        with self._readers_lock:
            con = self._readers.pop(path, None)
        if con is not None:
            con.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A read-only cursor on the current generation (one per thread or query)."""
        generation = self.generation()
        if generation is None:
            raise NoWarehouse(
                "No data has been loaded yet. Load extracts with `schoolcomms load PATH` "
                "or on the Data loads page."
            )
        return self._reader(generation).cursor()

    def rows(
        self, sql: str, params: list[Any] | dict[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run read-only SQL; return column names and rows of plain Python values."""
        cur = self.cursor()
        try:
            result = cur.execute(sql, params)
            columns = [d[0] for d in result.description or []]
            return columns, result.fetchall()
        except duckdb.InvalidInputException as exc:
            self._refuse_writes(exc)
            raise
        finally:
            cur.close()

    @staticmethod
    def _refuse_writes(exc: Exception) -> None:
        if "read-only" in str(exc):
            raise ReadOnlyQuery(
                "The warehouse is read-only to queries; change data by loading extracts."
            ) from exc

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run read-only SQL on the current generation and return a DataFrame."""
        cur = self.cursor()
        try:
            return cur.execute(sql, params).df()
        except duckdb.InvalidInputException as exc:
            self._refuse_writes(exc)
            raise
        finally:
            cur.close()
