"""What the Data loads page does, without Streamlit: save uploads, load, roll back.

Each action returns a plain dict (kept in ``st.session_state`` and shown by the page)
and never raises for a problem the user can fix: the message says what went wrong.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from pipelines.load import load_paths
from schoolcomms.ops.history import record_rollback
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse, WarehouseError

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".csv", ".xlsx", ".xml")
EMAIL_IMPORT_NAME = "student_emails.csv"


class UploadError(ValueError):
    """The uploaded files cannot be saved as they are; the message says why."""


def upload_folder(settings: Settings) -> Path:
    """A fresh, empty folder for one batch of uploads under ``<data dir>/tmp/uploads``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    folder = settings.tmp_dir / "uploads" / f"{stamp}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def safe_name(name: str) -> str:
    """The file name part of an uploaded name (no folders, no leading dots)."""
    base = Path(name.replace("\\", "/")).name.strip().lstrip(".")
    if not base:
        raise UploadError(
            f"The file name {name!r} cannot be used; rename the file and upload it again."
        )
    return base


def save_uploads(files: Sequence[tuple[str, bytes]], settings: Settings) -> list[Path]:
    """Save (name, content) pairs under their original names in a fresh upload folder."""
    if not files:
        raise UploadError("Choose one or more extract files first.")
    names = [safe_name(name) for name, _ in files]
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise UploadError(f"Two files are called {name}; upload only one of them.")
        seen.add(name.lower())
    folder = upload_folder(settings)
    paths = []
    for name, (_, content) in zip(names, files, strict=True):
        path = folder / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def run_load(
    paths: Iterable[Path], settings: Settings, *, dry_run: bool, actor: str
) -> dict[str, Any]:
    """Check (``dry_run``) or load saved extract files; the outcome as a plain dict.

    Keys: everything in :meth:`pipelines.load.LoadReport.as_dict` (``status``,
    ``summary``, ``errors``, ``warnings``, ``rows``, ``files``, generations) plus
    ``ok``, ``dry_run`` and ``load_run_id``. An unexpected failure gives status
    ``failed`` with the reason in ``summary``.
    """
    paths = list(paths)
    try:
        report = load_paths(paths, settings, dry_run=dry_run, actor=actor, origin="dashboard")
    except Exception as exc:
        log.exception("Dashboard load failed")
        return {
            "status": "failed",
            "ok": False,
            "dry_run": dry_run,
            "load_run_id": None,
            "summary": (
                f"The {'check' if dry_run else 'load'} stopped with an unexpected "
                f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ". Look at the warehouse status below to see what is current, and "
                "tell your administrator if it happens again."
            ),
            "errors": [],
            "warnings": [],
            "rows": {},
            "files": [],
            "generation_before": None,
            "generation_after": None,
        }
    outcome = report.as_dict()
    outcome.update(ok=report.ok, dry_run=dry_run, load_run_id=report.load_run_id)
    return outcome


def load_uploads(
    files: Sequence[tuple[str, bytes]], settings: Settings, *, dry_run: bool, actor: str
) -> dict[str, Any]:
    """Save uploaded files, check or load them, delete the copies; the outcome dict.

    Successful loads are archived by the loader; the upload folder is temporary.
    """
    try:
        paths = save_uploads(files, settings)
    except UploadError as exc:
        return {
            "status": "refused",
            "ok": False,
            "dry_run": dry_run,
            "summary": str(exc),
            "errors": [],
            "warnings": [],
            "rows": {},
            "files": [],
            "load_run_id": None,
            "generation_before": None,
            "generation_after": None,
        }
    try:
        return run_load(paths, settings, dry_run=dry_run, actor=actor)
    finally:
        shutil.rmtree(paths[0].parent, ignore_errors=True)


def email_import(
    content: bytes, settings: Settings, *, dry_run: bool, actor: str
) -> dict[str, Any]:
    """Check or import a bulk e-mail file: saved as ``student_emails.csv`` and loaded."""
    return load_uploads([(EMAIL_IMPORT_NAME, content)], settings, dry_run=dry_run, actor=actor)


def rollback(
    settings: Settings, engine: Engine, *, actor: str, expected_generation: int | None = None
) -> dict[str, Any]:
    """Make the previous generation current and record it in the load history.

    With ``expected_generation`` (what the user saw when asked to confirm), refuse if
    another load or rollback has changed the current generation since. Returns
    ``ok``, ``message``, ``generation_before``, ``generation_after`` and
    ``load_run_id``.
    """
    warehouse = Warehouse.from_settings(settings)
    result: dict[str, Any] = {
        "ok": False,
        "generation_before": None,
        "generation_after": None,
        "load_run_id": None,
    }
    try:
        current = warehouse.generation()
        if expected_generation is not None and current != expected_generation:
            result["message"] = (
                f"Nothing was rolled back: the current generation changed from "
                f"{expected_generation} to {current} since you asked. Check the warehouse "
                "status and try again if you still want to."
            )
            return result
        before, after = warehouse.rollback()
    except WarehouseError as exc:
        result["message"] = f"Nothing was rolled back: {exc}"
        return result
    result.update(ok=True, generation_before=before, generation_after=after)
    result["message"] = f"Rolled back: generation {after} is current again (was {before})."
    try:
        result["load_run_id"] = record_rollback(
            engine,
            actor=actor,
            generation_before=before,
            generation_after=after,
            origin="dashboard",
        )
    except Exception as exc:
        log.exception("Could not record the rollback")
        result["message"] += (
            f" It could not be written to the load history ({exc}); tell your administrator."
        )
    return result


__all__ = [
    "EMAIL_IMPORT_NAME",
    "UPLOAD_SUFFIXES",
    "UploadError",
    "email_import",
    "load_uploads",
    "rollback",
    "run_load",
    "save_uploads",
    "upload_folder",
]
