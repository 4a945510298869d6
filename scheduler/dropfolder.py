"""The drop folder: extract files put there are loaded by the scheduler.

Every settled file at the top of the folder (not hidden, not a partial download, not
changed for :data:`SETTLE_SECONDS`) is loaded together in one load, as
``schoolcomms load`` would: all or nothing. Then the files move out of the way:

- loaded: to ``<drop>/done/<time>/``;
- refused: to ``<drop>/refused/<time>/`` with ``load-report.txt``, what is wrong and how
  to fix it (the same report is in the load history on the Data loads page).

A load refused only because another load held the warehouse lock leaves the files where
they are for the next run. Sub-folders (``done``, ``refused`` and any other) are ignored.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.load import LoadReport, load_paths
from schoolcomms.settings import Settings

# A file must have been left alone this long before it is taken (it may still be copying).
SETTLE_SECONDS = 30
# Names of files still being written by a copy or a download.
PARTIAL_SUFFIXES = frozenset({".part", ".partial", ".tmp", ".crdownload", ".download"})
# pipelines.load's problem text when another load holds the warehouse lock.
BUSY_PROBLEM = "another load is running"
ACTOR = "scheduler"
REPORT_NAME = "load-report.txt"


@dataclass
class DropResult:
    """What one look at the drop folder did."""

    files: list[str] = field(default_factory=list)
    status: str = "empty"  # empty, loaded, refused, busy
    moved_to: Path | None = None
    report: LoadReport | None = None

    def counts(self) -> dict[str, Any]:
        """Counts for the job run."""
        counts: dict[str, Any] = {"files": len(self.files), "status": self.status}
        if self.report is not None:
            counts.update(
                rows=sum(self.report.rows.values()),
                errors=len(self.report.errors),
                warnings=len(self.report.warnings),
                generation=self.report.generation_after,
                load_run_id=self.report.load_run_id,
            )
        return counts


def drop_folder(settings: Settings) -> Path:
    """The folder the scheduler watches: the setting drop_folder, or ``<data dir>/drop``."""
    configured = str(settings["drop_folder"]).strip()
    return Path(configured).expanduser() if configured else settings.data_dir / "drop"


def waiting_files(
    folder: Path, wall_time: float | None = None, settle_seconds: float = SETTLE_SECONDS
) -> list[Path]:
    """Files at the top of ``folder`` ready to load: settled, not hidden, not partial.

    Settled means not modified for ``settle_seconds`` by ``wall_time`` (default: the
    real time now, the clock file modification times are on).
    """
    if not folder.is_dir():
        return []
    ready = []
    cutoff = (time.time() if wall_time is None else wall_time) - settle_seconds
    for path in sorted(folder.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith((".", "~$")):
            continue
        if path.suffix.lower() in PARTIAL_SUFFIXES:
            continue
        if path.stat().st_mtime > cutoff:
            continue
        ready.append(path)
    return ready


def _destination(parent: Path, local: dt.datetime) -> Path:
    base = parent / local.strftime("%Y-%m-%d_%H%M%S")
    target, n = base, 1
    while target.exists():
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    target.mkdir(parents=True)
    return target


def _move(files: list[Path], target: Path) -> None:
    for path in files:
        shutil.move(str(path), str(target / path.name))


def report_text(report: LoadReport, files: list[Path]) -> str:
    """The refusal report written beside refused files."""
    lines = [
        report.summary(),
        "",
        "Files: " + ", ".join(p.name for p in files),
        "",
        "Errors (each must be fixed before the files can load):",
        *(f"  {p.as_text()}" for p in report.errors),
    ]
    if report.warnings:
        lines += ["", "Warnings:", *(f"  {p.as_text()}" for p in report.warnings)]
    lines += [
        "",
        "Fix the files and put them in the drop folder again. The format of each extract is "
        "in docs/extracts.md.",
    ]
    return "\n".join(lines) + "\n"


def load_dropped(settings: Settings, local: dt.datetime) -> DropResult:
    """Load the files waiting in the drop folder and move them to done/ or refused/.

    ``local`` (naive UK time) names the done/ or refused/ sub-folder.
    """
    folder = drop_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    files = waiting_files(folder)
    result = DropResult(files=[p.name for p in files])
    if not files:
        return result
    report = load_paths(files, settings, actor=ACTOR, origin="scheduler")
    result.report = report
    if report.ok:
        result.status = "loaded"
        result.moved_to = _destination(folder / "done", local)
        _move(files, result.moved_to)
        return result
    if any(p.problem.startswith(BUSY_PROBLEM) for p in report.errors):
        result.status = "busy"
        return result
    result.status = "refused"
    result.moved_to = _destination(folder / "refused", local)
    _move(files, result.moved_to)
    report_path, n = result.moved_to / REPORT_NAME, 1
    while report_path.exists():  # a dropped file of that name keeps its name
        n += 1
        report_path = result.moved_to / f"load-report-{n}.txt"
    report_path.write_text(report_text(report, files), encoding="utf-8")
    return result
