"""The load step: read → stage → validate → build a new warehouse generation.

A load is all-or-nothing. Any error and nothing changes: the new generation file is
never published. ``dry_run`` runs every check and builds nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines import apply
from pipelines.extract import read_sources
from pipelines.mapping import Profile, load_profile
from pipelines.problems import ExtractError, Problem, error
from pipelines.readers import Source
from pipelines.readers.sql_reader import read_sql_sources
from pipelines.readers.textfile import FileScan
from pipelines.staging import FileRecord, Staged, stage_sources
from pipelines.validate import Context, validate
from schoolcomms.codes import CodeConfigError, parse_extra_codes
from schoolcomms.settings import Settings
from schoolcomms.warehouse import (
    FULL_DISK,
    Busy,
    SnapshotFailed,
    Warehouse,
    WarehouseError,
    storage_trouble,
)

_ARCHIVE_SEQUENCE = itertools.count(1)


@dataclass
class LoadReport:
    """What a load did, or why it refused."""

    dry_run: bool
    problems: list[Problem] = field(default_factory=list)
    files: list[FileRecord] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    generation_before: int | None = None
    generation_after: int | None = None
    seconds: float = 0.0
    load_run_id: int | None = None
    # Seconds per phase (stage, validate, apply, publish), for benchmarks and logs.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def status(self) -> str:
        if self.errors:
            return "refused"
        return "dry_run" if self.dry_run else "loaded"

    def summary(self) -> str:
        counts = ", ".join(f"{name} {n:,}" for name, n in self.rows.items()) or "no rows"
        if self.errors:
            return (
                f"Refused: {len(self.errors)} error(s), {len(self.warnings)} warning(s). "
                f"Nothing was loaded; the warehouse is unchanged "
                f"(generation {self.generation_before})."
            )
        if self.dry_run:
            return (
                f"Dry run: the load would succeed ({counts}) with "
                f"{len(self.warnings)} warning(s). Nothing was changed."
            )
        return (
            f"Loaded {counts} in {self.seconds:.1f} s with {len(self.warnings)} "
            f"warning(s): generation {self.generation_after} is now current "
            f"(was {self.generation_before})."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "summary": self.summary(),
            "generation_before": self.generation_before,
            "generation_after": self.generation_after,
            "rows": self.rows,
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
            "files": [
                {
                    "file": f.label,
                    "extract": f.extract,
                    "format": f.format,
                    "rows": f.rows,
                    "sha256": f.sha256,
                }
                for f in self.files
            ],
        }


def _profile(settings: Settings, name: str | None) -> Profile | None:
    chosen = name if name is not None else settings["mapping_profile"]
    return load_profile(chosen) if chosen else None


def load_paths(
    paths: list[Path] | list[str],
    settings: Settings,
    *,
    dry_run: bool = False,
    profile: str | None = None,
    actor: str = "cli",
    origin: str = "cli",
) -> LoadReport:
    """Load extract files and folders into a new generation (or check them, dry run)."""
    started = time.monotonic()
    report = LoadReport(dry_run=dry_run)
    archive = None if dry_run else _archive_folder(settings)
    try:
        chosen = _profile(settings, profile)
        sources, problems = read_sources(
            [Path(p) for p in paths], chosen, settings.tmp_dir, settings["max_extract_mb"], archive
        )
    except ExtractError as exc:
        report.problems = exc.problems
        return _finish(report, settings, actor, origin, started)
    report.problems.extend(problems)
    return run_load(sources, settings, report, chosen, actor, origin, started)


def load_from_sql(
    settings: Settings,
    extracts: list[str] | None = None,
    *,
    dry_run: bool = False,
    actor: str = "cli",
    origin: str = "sql",
) -> LoadReport:
    """Load extracts read by the configured SQL queries from the MIS database."""
    started = time.monotonic()
    report = LoadReport(dry_run=dry_run)
    try:
        sources = read_sql_sources(settings["mis_database_url"], settings["sql_sources"], extracts)
    except ExtractError as exc:
        report.problems = exc.problems
        return _finish(report, settings, actor, origin, started)
    return run_load(sources, settings, report, None, actor, origin, started)


def run_load(
    sources: list[Source],
    settings: Settings,
    report: LoadReport,
    profile: Profile | None,
    actor: str,
    origin: str,
    started: float,
) -> LoadReport:
    """Stage, validate and (unless refused or dry run) publish a new generation.

    Files that could not be read are already in ``report.problems``; the others are
    still staged and validated, so one run reports every problem, but nothing is
    applied while there is any error.
    """
    warehouse = Warehouse.from_settings(settings)
    try:
        report.generation_before = warehouse.generation()
    except WarehouseError as exc:  # CURRENT is damaged: say so, and how to repair it
        report.problems.append(
            error(str(exc).rstrip("."), "repair it as that says, then load again")
        )
        return _finish(report, settings, actor, origin, started)
    extra_codes = settings["extra_attendance_codes"]
    try:
        parse_extra_codes(extra_codes)
    except CodeConfigError as exc:
        report.problems.append(
            error(
                str(exc),
                "correct the setting in settings.toml or the environment",
                column="extra_attendance_codes",
            )
        )
    if not sources and not report.problems:
        report.problems.append(error("there was nothing to load", "name extract files or a folder"))
    try:
        if sources and not any(p.column == "extra_attendance_codes" for p in report.errors):
            lock = warehouse.write_lock(timeout=0) if not report.dry_run else _no_lock()
            with lock:
                report.generation_before = warehouse.generation()
                con = warehouse.staging_connection()
                try:
                    _stage_validate_apply(
                        con, warehouse, sources, report, profile, settings, extra_codes
                    )
                finally:
                    con.close()
    except Busy:
        report.problems.append(
            error(
                "another load is running (the warehouse lock is held)",
                "wait for it to finish, then load again",
            )
        )
    except SnapshotFailed as exc:  # the disk is full, say: nothing was published
        report.generation_after = None
        report.problems.append(error(exc.problem, exc.fix))
    except OSError as exc:  # e.g. the archive copy of an extract filled the disk
        if exc.errno not in FULL_DISK:
            raise
        report.generation_after = None
        report.problems.append(
            error(
                f"could not write under {settings.data_dir} while reading and archiving the "
                f"extracts: {storage_trouble(exc)}; nothing was changed",
                "free space on that disk, then load again",
            )
        )
    finally:
        scans = {id(s.scan): s.scan for s in sources if s.scan is not None}
        for scan in scans.values():
            with contextlib.suppress(OSError):
                scan.wait()
        _remove_working_copies(sources)
    if not report.ok:
        _discard_archive(report, list(scans.values()))
    return _finish(report, settings, actor, origin, started)


def _remove_working_copies(sources: list[Source]) -> None:
    """Delete the UTF-8 copies made of Windows-1252 files in the tmp folder."""
    for source in sources:
        info = source.text
        if info is not None and info.original is not None and info.path != info.original:
            info.path.unlink(missing_ok=True)


class _no_lock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _stage_validate_apply(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    sources: list[Source],
    report: LoadReport,
    profile: Profile | None,
    settings: Settings,
    extra_codes: str,
) -> None:
    has_current = report.generation_before is not None
    max_examples = settings["max_examples_per_problem"]
    clock = time.monotonic()
    staged = stage_sources(con, sources, profile, report.problems, max_examples)
    report.timings["stage"] = time.monotonic() - clock
    for entry in staged.values():
        report.files.extend(entry.files)
    if report.errors:
        return
    apply.prepare_merges(con, staged, has_current)
    ctx = Context(con, staged, has_current, max_examples, extra_codes)
    clock = time.monotonic()
    report.problems.extend(validate(ctx))
    report.problems.extend(apply.match_email_updates(ctx))
    report.timings["validate"] = time.monotonic() - clock
    report.rows = {name: entry.rows for name, entry in staged.items()}
    if report.errors or report.dry_run:
        return
    clock = time.monotonic()
    # Row order in warehouse tables carries no meaning; dropping it lets DuckDB write
    # row groups in parallel and skip a costly re-write at checkpoint.
    con.execute("SET preserve_insertion_order = false")
    with warehouse.next_generation(con) as generation:
        apply.ensure_schema(con, "new")
        report.problems.extend(apply.apply_all(con, staged, has_current))
        apply.record_generation(con, generation, staged)
        report.generation_after = generation
        report.timings["apply"] = time.monotonic() - clock
        clock = time.monotonic()
    report.timings["publish"] = time.monotonic() - clock


def _archive_folder(settings: Settings) -> Path:
    """Where this load's files are archived: <data dir>/archive/<date>/<time>-<pid>/."""
    now = dt.datetime.now()
    return (
        settings.archive_dir
        / now.date().isoformat()
        / f"{now:%H%M%S}-{os.getpid()}-{next(_ARCHIVE_SEQUENCE)}"
    )


def _discard_archive(report: LoadReport, scans: list[FileScan]) -> None:
    """A refused load keeps no archive copies (they are not the data in the warehouse)."""
    folders = set()
    for scan in scans:
        if scan.archive_to is not None:
            scan.archive_to.unlink(missing_ok=True)
            folders.add(scan.archive_to.parent)
    for record in report.files:
        record.archived = None
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _finish(
    report: LoadReport, settings: Settings, actor: str, origin: str, started: float
) -> LoadReport:
    report.seconds = time.monotonic() - started
    if report.generation_before is None and report.generation_after is None:
        # Refused before run_load looked (a bad profile, a failing SQL query): the
        # report still says which generation stays current.
        with contextlib.suppress(WarehouseError):
            report.generation_before = Warehouse.from_settings(settings).generation()
    for problem in report.problems:
        if problem.file.startswith(str(settings.tmp_dir)):
            problem.file = Path(problem.file).name
    _record_history(report, settings, actor, origin)
    return report


def _record_history(report: LoadReport, settings: Settings, actor: str, origin: str) -> None:
    from schoolcomms.ops.db import open_ops
    from schoolcomms.ops.history import record_load

    now = dt.datetime.now(dt.UTC)
    engine = open_ops(settings)
    report.load_run_id = record_load(
        engine,
        actor=actor,
        origin=origin,
        status=report.status,
        generation_before=report.generation_before,
        generation_after=report.generation_after,
        problems=[p.as_dict() for p in report.problems],
        files=[
            {
                "file_name": f.label,
                "extract": f.extract,
                "format": f.format,
                "sha256": f.sha256,
                "size_bytes": f.size_bytes,
                "rows": f.rows,
                "archived_path": f.archived,
            }
            for f in report.files
        ],
        summary=report.summary(),
        started_at=now - dt.timedelta(seconds=report.seconds),
        finished_at=now,
    )


__all__ = ["LoadReport", "Staged", "load_from_sql", "load_paths", "run_load"]
