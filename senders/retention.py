"""Data retention: message bodies are deleted once they are old; the message log stays.

A message says things about a child ("Ann was absent from Maths at 09:00…"). Once it has
finished (sent, delivered, failed or cancelled) more than ``message_body_retention_days``
ago, :func:`purge_bodies` blanks what it said (``body``, ``html_body``, ``subject``,
``attachments``) and deletes the copies kept on disk under the data directory:

- the message's attachment files (weekly report CSVs and charts), once no message whose
  body is still kept points at the same file;
- a letter batch's merged PDF (``batches.document_path``) and the batch's template text
  and subject, once every message of the batch is purged;
- the embedded file outbox's copies: SMS JSON-lines files of UTC days before the cut-off
  and ``.eml`` files last written before it.

The row itself is kept (status, recipient, cost, times, who sent it, the pupil it was
about), so the message log and the cost reports still add up. A message's "finished"
time is ``updated_at``, the last time anything happened to it (a late delivery receipt
moves it on). Only files inside the data directory are ever deleted, whatever a row
says. On SQLite the freed space is zeroed (``secure_delete``) and the write-ahead log
emptied after a purge, so the text is not left in the database files either (on
PostgreSQL, autovacuum reclaims the old row versions). Each run that purges anything writes one ``retention.purge`` audit row with the
counts; a second run the same day finds nothing more to do. ``0`` days keeps everything.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AuditEntry, Batch, Message, utcnow
from schoolcomms.settings import Settings, SettingsError

log = logging.getLogger(__name__)

FINISHED_STATUSES: tuple[str, ...] = ("sent", "delivered", "failed", "cancelled")
SETTING = "message_body_retention_days"
ACTION = "retention.purge"
_CHUNK = 500


@dataclass
class PurgeResult:
    """What one purge did (all zero when retention is off or nothing was old enough)."""

    days: int
    cutoff: dt.datetime | None
    messages: int = 0
    attachment_files: int = 0
    letter_batches: int = 0
    outbox_files: int = 0
    message_ids: list[int] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        """Whether retention is on (``message_body_retention_days`` above 0)."""
        return self.days > 0

    def counts(self) -> dict[str, int]:
        """The counts as a plain dict (for the job record and the audit row)."""
        return {
            "messages": self.messages,
            "attachment_files": self.attachment_files,
            "letter_batches": self.letter_batches,
            "outbox_files": self.outbox_files,
        }


def retention_days(settings: Settings) -> int:
    """The setting ``message_body_retention_days``; a negative value is refused in words."""
    days = int(settings[SETTING])
    if days < 0:
        raise SettingsError(
            f"The setting {SETTING} is {days}; use a number of days (e.g. 365), or 0 to keep "
            "message bodies for ever."
        )
    return days


def _aware(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"Naive datetime {now.isoformat()}: pass an aware time (UTC).")
    return now.astimezone(dt.UTC)


def _inside(path: str | os.PathLike[str] | None, root: Path) -> Path | None:
    """``path`` resolved, if it is a file inside ``root``; None otherwise (never deleted)."""
    if not path:
        return None
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError):
        return None
    return resolved if resolved.is_relative_to(root) and resolved != root else None


def _delete(paths: Iterable[Path]) -> int:
    deleted = 0
    for path in paths:
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            continue
        except OSError as exc:  # kept for the next run; the row is already blank
            log.warning("retention: could not delete %s: %s", path.name, exc)
    return deleted


def _prune_empty_dirs(folders: Iterable[Path], root: Path) -> None:
    """Remove folders left empty (and their empty parents) up to, not including, ``root``."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        current = folder
        while current != root and current.is_relative_to(root):
            try:
                current.rmdir()
            except OSError:
                break
            current = current.parent


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _kept_attachment_paths(engine: Engine, root: Path) -> set[Path]:
    """Attachment files that a message whose body is still kept points at."""
    kept: set[Path] = set()
    query = select(Message.attachments).where(Message.body.is_not(None))
    with session_scope(engine, immediate=False) as session:
        for attachments in session.scalars(query):
            for item in attachments or ():
                path = _inside(item.get("path") if isinstance(item, dict) else None, root)
                if path is not None:
                    kept.add(path)
    return kept


def _purge_messages(
    engine: Engine, cutoff: dt.datetime, root: Path
) -> tuple[list[int], set[Path], set[int]]:
    """Blank the old finished messages: (their ids, their attachment files, their batches)."""
    old = and_(
        Message.status.in_(FINISHED_STATUSES),
        Message.updated_at < cutoff,
        or_(
            Message.body.is_not(None),
            Message.html_body.is_not(None),
            Message.subject.is_not(None),
        ),
    )
    with session_scope(engine) as session:
        rows = session.execute(
            select(Message.id, Message.batch_id, Message.attachments).where(old)
        ).all()
        ids = [row.id for row in rows]
        if ids and session.get_bind().dialect.name == "sqlite":
            # Overwrite freed space with zeros, so deleted text is not left in the file.
            session.connection().exec_driver_sql("PRAGMA secure_delete = ON")
        for chunk in _chunks(ids):
            session.execute(
                update(Message)
                .where(Message.id.in_(chunk))
                # updated_at is set to itself: the purge is not news about the message.
                .values(
                    body=None,
                    html_body=None,
                    subject=None,
                    attachments=[],
                    updated_at=Message.updated_at,
                )
            )
    files = {
        path
        for row in rows
        for item in row.attachments or ()
        if (path := _inside(item.get("path") if isinstance(item, dict) else None, root))
    }
    batches = {row.batch_id for row in rows if row.batch_id is not None}
    return ids, files, batches


def _purge_letter_batches(
    engine: Engine, batch_ids: set[int], cutoff: dt.datetime, root: Path
) -> tuple[int, set[Path]]:
    """Blank the template text of finished batches whose every message is purged."""
    if not batch_ids:
        return 0, set()
    blanked, files = 0, set()
    # NOT IN over a list holding NULL is never true: leave batch-less messages out.
    kept_body = select(Message.batch_id).where(
        Message.body.is_not(None), Message.batch_id.is_not(None)
    )
    with session_scope(engine) as session:
        for chunk in _chunks(sorted(batch_ids)):
            batches = session.scalars(
                select(Batch).where(
                    Batch.id.in_(chunk),
                    Batch.state.in_(("done", "cancelled")),
                    Batch.created_at < cutoff,
                    Batch.id.not_in(kept_body),
                )
            ).all()
            for batch in batches:
                path = _inside(batch.document_path, root)
                if path is not None:
                    files.add(path)
                if batch.body_template or batch.subject or batch.document_path:
                    blanked += 1
                batch.body_template, batch.subject, batch.document_path = "", None, None
    return blanked, files


def _checkpoint(engine: Engine) -> None:
    """On SQLite, fold the write-ahead log into the database and empty it: old page images
    there still hold the purged text. Best effort: a busy reader only delays it."""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except Exception as exc:  # the purge itself is committed; the next run tries again
        log.warning("retention: could not checkpoint the ops store: %s", exc)


def _old_outbox_files(root: Path, cutoff: dt.datetime) -> list[Path]:
    """The embedded file outbox's copies written before the cut-off."""
    old: list[Path] = []
    sms = root / "outbox" / "sms"
    for path in sorted(sms.glob("*.jsonl")) if sms.is_dir() else ():
        try:
            day = dt.date.fromisoformat(path.stem)
        except ValueError:
            continue
        if day < cutoff.date():  # a whole UTC day before the cut-off
            old.append(path)
    email = root / "outbox" / "email"
    for path in sorted(email.glob("*.eml")) if email.is_dir() else ():
        try:
            written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        except OSError:
            continue
        if written < cutoff:
            old.append(path)
    return old


def purge_bodies(
    engine: Engine,
    settings: Settings,
    now: dt.datetime | None = None,
    *,
    actor: str = "scheduler",
) -> PurgeResult:
    """Delete the bodies of messages finished more than the retention period ago.

    Returns what was done; writes one ``retention.purge`` audit row (``actor``, the cut-off
    and the counts) when anything was purged. With ``message_body_retention_days`` 0
    nothing is touched. ``now`` (aware; default the current time) sets the cut-off.
    """
    days = retention_days(settings)
    if days == 0:
        return PurgeResult(days=0, cutoff=None)
    if not (actor or "").strip():
        raise ValueError('actor must name who acted (a user, "cli" or "scheduler")')
    cutoff = _aware(now) - dt.timedelta(days=days)
    root = settings.data_dir.resolve()
    ids, files, batch_ids = _purge_messages(engine, cutoff, root)
    letter_batches, letter_files = _purge_letter_batches(engine, batch_ids, cutoff, root)
    if ids:
        _checkpoint(engine)
    # A report's files are shared by its recipients: keep those a newer message still needs.
    candidates = (files | letter_files) - _kept_attachment_paths(engine, root)
    attachment_files = _delete(sorted(candidates))
    outbox = _old_outbox_files(root, cutoff)
    outbox_files = _delete(outbox)
    _prune_empty_dirs((p.parent for p in candidates), root)
    result = PurgeResult(
        days=days,
        cutoff=cutoff,
        messages=len(ids),
        attachment_files=attachment_files,
        letter_batches=letter_batches,
        outbox_files=outbox_files,
        message_ids=ids,
    )
    if any(result.counts().values()):
        details: dict[str, Any] = {
            "days": days,
            "cutoff": cutoff.isoformat(),
            **result.counts(),
            "message_ids": ids[:100],
        }
        with session_scope(engine) as session:
            session.add(
                AuditEntry(
                    at=utcnow(),
                    actor=actor.strip(),
                    action=ACTION,
                    target="messages",
                    details=details,
                )
            )
        log.info(
            "retention purged %d message bod(ies)", len(ids), extra={"counts": result.counts()}
        )
    return result


__all__ = [
    "ACTION",
    "FINISHED_STATUSES",
    "PurgeResult",
    "purge_bodies",
    "retention_days",
]
