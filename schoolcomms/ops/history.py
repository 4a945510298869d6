"""Load history and the audit log: what the loader records and the dashboard shows.

Every function takes an engine from :func:`schoolcomms.ops.db.open_ops`. Writers run in
one transaction each (load run, its files and its audit row together, or nothing).
Times are timezone-aware UTC.

Problem dicts are ``pipelines.problems.Problem.as_dict()``: ``severity`` ("error" or
"warning"), ``problem``, ``fix``, ``file``, ``extract``, ``line``, ``column``,
``value``, ``count``, ``lines``. ``error_count``/``warning_count`` count problem
entries (one entry may stand for many rows, see its ``count``) and are always
complete; the stored report keeps at most :data:`MAX_REPORT_PROBLEMS` entries, errors
first, with a final note saying how many were left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import (
    FILE_FORMATS,
    LOAD_ORIGINS,
    AuditEntry,
    LoadFile,
    LoadRun,
    utcnow,
)
from schoolcomms.settings import MASK, REGISTRY, mask_url_password

MAX_REPORT_PROBLEMS = 1000
MAX_LIST_ITEMS = 100
MAX_TEXT_CHARS = 2000

LOAD_AUDIT_ACTIONS: dict[str, str] = {
    "loaded": "load",
    "refused": "load.refused",
    "dry_run": "load.dry_run",
    "failed": "load.failed",
}
FILE_KEYS = ("file_name", "extract", "format", "sha256", "size_bytes", "rows", "archived_path")
PROBLEM_COLUMNS = (
    "severity",
    "problem",
    "fix",
    "file",
    "extract",
    "line",
    "column",
    "value",
    "count",
    "lines",
)
RECENT_LOAD_COLUMNS = (
    "id",
    "started_at",
    "actor",
    "origin",
    "status",
    "generation_before",
    "generation_after",
    "error_count",
    "warning_count",
    "files",
    "summary",
)
AUDIT_COLUMNS = ("id", "at", "actor", "action", "target", "details")

_SECRET_WORDS = ("password", "secret", "api_key", "apikey", "token", "credential")
_SECRET_SETTINGS = frozenset(name for name, s in REGISTRY.items() if s.secret)


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check_actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise ValueError('actor must name who acted (a user, "cli" or "scheduler")')
    return actor


def _check_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(
            f"Naive datetime {name}={value.isoformat()}: pass a timezone-aware time, "
            "e.g. datetime.now(UTC)."
        )


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (datetimes, paths, numpy numbers become strings)."""
    return json.loads(json.dumps(value, default=str))


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SECRET_SETTINGS or any(word in lowered for word in _SECRET_WORDS)


def _mask_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        masked: dict[str, Any] = {}
        for key, item in value.items():
            secret = _is_secret_key(str(key)) or (
                # settings.change details: {"name": "smtp_password", "old": …, "new": …}
                key in {"old", "new", "value"} and _is_secret_key(str(value.get("name", "")))
            )
            masked[str(key)] = MASK if secret and item not in (None, "") else _mask_secrets(item)
        return masked
    if isinstance(value, list):
        return [_mask_secrets(item) for item in value]
    return mask_url_password(value) if isinstance(value, str) else value


def _trim_problem(problem: Mapping[str, Any]) -> dict[str, Any]:
    trimmed: dict[str, Any] = {}
    for key, value in problem.items():
        if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
            value = value[:MAX_LIST_ITEMS]
        elif isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
            value = value[:MAX_TEXT_CHARS] + "…"
        trimmed[str(key)] = value
    return trimmed


def _report(problems: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The problems to store: at most MAX_REPORT_PROBLEMS, errors first, then a note."""
    if len(problems) <= MAX_REPORT_PROBLEMS:
        kept = list(problems)
    else:
        errors = [p for p in problems if p.get("severity") == "error"]
        others = [p for p in problems if p.get("severity") != "error"]
        kept = (errors + others)[:MAX_REPORT_PROBLEMS]
    report = [_trim_problem(p) for p in kept]
    left_out = len(problems) - len(kept)
    if left_out:
        report.append(
            {
                "severity": "note",
                "problem": f"{left_out:,} more problems were found but not stored "
                f"(the report keeps {MAX_REPORT_PROBLEMS:,})",
                "fix": "The error and warning counts are complete; fix the problems "
                "listed and load again to see the rest.",
            }
        )
    return _jsonable(report)


def _file_row(entry: Mapping[str, Any]) -> LoadFile:
    unknown = sorted(set(entry) - set(FILE_KEYS))
    if unknown:
        raise ValueError(f"Unknown load file keys {unknown}; expected some of {list(FILE_KEYS)}")
    if not entry.get("file_name"):
        raise ValueError(f"Each load file needs a file_name: {dict(entry)!r}")
    file_format = str(entry.get("format", "")).lower()
    _check_choice("format", file_format, FILE_FORMATS)
    return LoadFile(
        file_name=str(entry["file_name"]),
        extract=str(entry.get("extract") or ""),
        format=file_format,
        sha256=entry.get("sha256"),
        size_bytes=entry.get("size_bytes"),
        rows=entry.get("rows"),
        archived_path=None if entry.get("archived_path") is None else str(entry["archived_path"]),
    )


def record_load(
    engine: Engine,
    *,
    actor: str,
    origin: str,
    status: str,
    generation_before: int | None,
    generation_after: int | None,
    problems: list[dict[str, Any]],
    files: list[dict[str, Any]],
    summary: str,
    started_at: datetime,
    finished_at: datetime,
) -> int:
    """Record one load attempt, its files and an audit row; return the load run's id.

    ``status`` is "loaded", "refused", "dry_run" or "failed" (rollbacks go through
    :func:`record_rollback`); the audit action is "load", "load.refused",
    "load.dry_run" or "load.failed". ``files`` entries take the keys ``file_name``
    and ``format`` (csv, xlsx, ctf, sql), and optionally ``extract``, ``sha256``,
    ``size_bytes``, ``rows`` and ``archived_path``. Times must be timezone-aware.
    """
    actor = _check_actor(actor)
    _check_choice("origin", origin, LOAD_ORIGINS)
    _check_choice("status", status, tuple(LOAD_AUDIT_ACTIONS))
    _check_aware("started_at", started_at)
    _check_aware("finished_at", finished_at)
    file_rows = [_file_row(entry) for entry in files]
    errors = sum(1 for p in problems if p.get("severity") == "error")
    warnings = sum(1 for p in problems if p.get("severity") == "warning")
    with session_scope(engine) as session:
        run = LoadRun(
            started_at=started_at,
            finished_at=finished_at,
            actor=actor,
            origin=origin,
            status=status,
            generation_before=generation_before,
            generation_after=generation_after,
            error_count=errors,
            warning_count=warnings,
            summary=summary or "",
            report=_report(problems),
            files=file_rows,
        )
        session.add(run)
        session.flush()
        session.add(
            AuditEntry(
                at=finished_at,
                actor=actor,
                action=LOAD_AUDIT_ACTIONS[status],
                target=f"load_run:{run.id}",
                details={
                    "load_run_id": run.id,
                    "origin": origin,
                    "status": status,
                    "generation_before": generation_before,
                    "generation_after": generation_after,
                    "error_count": errors,
                    "warning_count": warnings,
                    "files": [f.file_name for f in file_rows],
                },
            )
        )
        return run.id


def record_rollback(
    engine: Engine,
    *,
    actor: str,
    generation_before: int | None,
    generation_after: int | None,
    origin: str = "cli",
    summary: str | None = None,
) -> int:
    """Record a rollback (a "rolled_back" load run and a "rollback" audit row); return its id.

    ``generation_before`` is the generation that was current, ``generation_after`` the
    one made current by the rollback.
    """
    actor = _check_actor(actor)
    _check_choice("origin", origin, LOAD_ORIGINS)
    now = utcnow()
    if summary is None:
        summary = f"Rolled back from generation {generation_before} to {generation_after}."
    with session_scope(engine) as session:
        run = LoadRun(
            started_at=now,
            finished_at=now,
            actor=actor,
            origin=origin,
            status="rolled_back",
            generation_before=generation_before,
            generation_after=generation_after,
            error_count=0,
            warning_count=0,
            summary=summary,
            report=[],
        )
        session.add(run)
        session.flush()
        session.add(
            AuditEntry(
                at=now,
                actor=actor,
                action="rollback",
                target=f"load_run:{run.id}",
                details={
                    "load_run_id": run.id,
                    "origin": origin,
                    "generation_before": generation_before,
                    "generation_after": generation_after,
                },
            )
        )
        return run.id


def recent_loads(engine: Engine, limit: int = 50) -> pd.DataFrame:
    """The latest load runs (rollbacks included), newest first, one row each.

    Columns: id, started_at (UTC), actor, origin, status, generation_before,
    generation_after, error_count, warning_count, files (file names, comma-joined in
    the order given), summary.
    """
    with session_scope(engine, immediate=False) as session:
        runs = (
            session.execute(
                select(LoadRun).order_by(LoadRun.started_at.desc(), LoadRun.id.desc()).limit(limit)
            )
            .scalars()
            .all()
        )
        names: dict[int, list[str]] = {run.id: [] for run in runs}
        if names:
            for run_id, file_name in session.execute(
                select(LoadFile.load_run_id, LoadFile.file_name)
                .where(LoadFile.load_run_id.in_(names))
                .order_by(LoadFile.id)
            ):
                names[run_id].append(file_name)
        rows = [
            {
                "id": run.id,
                "started_at": run.started_at,
                "actor": run.actor,
                "origin": run.origin,
                "status": run.status,
                "generation_before": run.generation_before,
                "generation_after": run.generation_after,
                "error_count": run.error_count,
                "warning_count": run.warning_count,
                "files": ", ".join(names[run.id]),
                "summary": run.summary,
            }
            for run in runs
        ]
    frame = pd.DataFrame(rows, columns=list(RECENT_LOAD_COLUMNS))
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    for column in ("generation_before", "generation_after"):
        frame[column] = frame[column].astype("Int64")
    for column in ("id", "error_count", "warning_count"):
        frame[column] = frame[column].astype("int64")
    return frame


def load_problems(engine: Engine, load_run_id: int) -> pd.DataFrame:
    """The stored problems of one load run, one row each, errors first as stored.

    Columns: severity, problem, fix, file, extract, line, column, value, count,
    lines, then any other keys the problems carried. Raises ``LookupError`` if there
    is no such load run.
    """
    with session_scope(engine, immediate=False) as session:
        report = session.execute(
            select(LoadRun.report).where(LoadRun.id == load_run_id)
        ).scalar_one_or_none()
        if report is None:
            raise LookupError(f"There is no load run {load_run_id} in the load history.")
    extra = sorted({key for problem in report for key in problem} - set(PROBLEM_COLUMNS))
    return pd.DataFrame(report, columns=[*PROBLEM_COLUMNS, *extra])


def audit(
    engine: Engine,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Write one audit log row, stamped now (UTC).

    Values under secret-looking keys in ``details`` (passwords, API keys, tokens,
    secret settings) and the passwords of URLs in any value are masked before they are
    stored.
    """
    actor = _check_actor(actor)
    if not action:
        raise ValueError("action must say what was done, e.g. 'settings.change'")
    stored = None if details is None else _mask_secrets(_jsonable(dict(details)))
    with session_scope(engine) as session:
        session.add(
            AuditEntry(at=utcnow(), actor=actor, action=action, target=target or "", details=stored)
        )


def recent_audit(engine: Engine, limit: int = 100, action: str | None = None) -> pd.DataFrame:
    """The latest audit log rows, newest first (optionally one action only).

    Columns: id, at (UTC), actor, action, target, details (a dict or None).
    """
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    with session_scope(engine, immediate=False) as session:
        rows = [
            {
                "id": entry.id,
                "at": entry.at,
                "actor": entry.actor,
                "action": entry.action,
                "target": entry.target,
                "details": entry.details,
            }
            for entry in session.execute(query).scalars()
        ]
    frame = pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["id"] = frame["id"].astype("int64")
    return frame
