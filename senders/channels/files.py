"""The embedded-default messengers: they write files and send nothing.

- :class:`FileSms` appends one JSON line per message (``id``, ``idempotency_key``,
  ``to``, ``body``, ``at``) to ``<data dir>/outbox/sms/YYYY-MM-DD.jsonl`` (UTC date).
- :class:`FileEmail` writes one ``.eml`` file per message (plain text, an HTML
  alternative, attachments) to ``<data dir>/outbox/email/<id>-<key hash>.eml``.

**Crash-resend.** The outbox records a send only after the messenger returns. A
dispatcher killed between writing the file and recording the result leaves the message
``sending``; once its lease expires another dispatcher claims it and calls ``send``
again. Both messengers therefore look in their own outbox first: a message already
written (same id *and* idempotency key, so a recreated ops store whose ids start again
cannot collide) is not written again, and ``send`` returns the same result with
``provider_status`` "already in outbox". FileSms checks under a file lock, reading only
the bytes appended since its last look, so dispatchers in several processes share one
outbox safely; FileEmail creates each file atomically (hard link of a finished temporary
file), so a half-written ``.eml`` is never mistaken for a sent one.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from filelock import FileLock

from senders.base import OutgoingMessage, Rejected, SendResult

ALREADY = "already in outbox"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FileSms:
    """SMS written as JSON lines to ``outbox_dir`` (normally ``<data dir>/outbox/sms``)."""

    channel = "sms"
    name = "file"

    def __init__(
        self, outbox_dir: str | os.PathLike[str], *, now: Callable[[], datetime] = _utcnow
    ):
        self.outbox_dir = Path(outbox_dir)
        self._now = now
        self._lock = threading.Lock()
        self._seen: set[tuple[int, str]] = set()
        self._offsets: dict[str, int] = {}

    def open(self) -> None:
        """Create the folder and read what is already in it."""
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        with self._lock, self._file_lock():
            self._refresh()

    def close(self) -> None:
        """Nothing to close: every line is flushed and synced when written."""

    def _file_lock(self) -> FileLock:
        return FileLock(self.outbox_dir / ".outbox.lock", timeout=60)

    def _refresh(self) -> None:
        """Read the complete lines appended to any outbox file since the last look."""
        for path in sorted(self.outbox_dir.glob("*.jsonl")):
            done = self._offsets.get(path.name, 0)
            if path.stat().st_size <= done:
                continue
            with path.open("rb") as handle:
                handle.seek(done)
                chunk = handle.read()
            end = chunk.rfind(b"\n") + 1  # a partial last line is read next time
            for line in chunk[:end].splitlines():
                try:
                    record = json.loads(line)
                    self._seen.add((int(record["id"]), str(record["idempotency_key"])))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash
            self._offsets[path.name] = done + end

    def send(self, message: OutgoingMessage) -> SendResult:
        """Append the message unless this outbox already holds it."""
        result = SendResult(provider="file", provider_ref=f"file-{message.id}", status="sent")
        key = (message.id, message.idempotency_key)
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        with self._lock, self._file_lock():
            self._refresh()
            if key in self._seen:
                return SendResult(result.provider, result.provider_ref, ALREADY, "sent")
            now = self._now()
            record = {
                "id": message.id,
                "idempotency_key": message.idempotency_key,
                "to": message.to,
                "body": message.body,
                "at": now.astimezone(UTC).isoformat(),
            }
            path = self.outbox_dir / f"{now.astimezone(UTC):%Y-%m-%d}.jsonl"
            data = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
            with path.open("a+b") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size:
                    handle.seek(size - 1)
                    if handle.read(1) != b"\n":
                        data = b"\n" + data  # end a line cut short by a crash first
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self._seen.add(key)
        return SendResult(result.provider, result.provider_ref, "written", "sent")


def read_sms_outbox(data_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every SMS in ``<data_dir>/outbox/sms``, oldest file first, in the order written."""
    records: list[dict[str, Any]] = []
    for path in sorted((Path(data_dir) / "outbox" / "sms").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def email_file_name(message: OutgoingMessage) -> str:
    """``<id>-<first 12 hex digits of sha256(idempotency key)>.eml``."""
    digest = hashlib.sha256(message.idempotency_key.encode("utf-8")).hexdigest()[:12]
    return f"{message.id}-{digest}.eml"


def build_email(
    message: OutgoingMessage, *, sender: str, sender_name: str = "", reply_to: str = ""
) -> EmailMessage:
    """The message as an :class:`EmailMessage`: text, an HTML alternative, attachments.

    Raises :class:`Rejected` if a header would be invalid or an attachment is missing.
    """
    email = EmailMessage()
    try:
        email["From"] = formataddr((sender_name, sender)) if sender_name else sender
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        if reply_to:
            email["Reply-To"] = reply_to
        email["Date"] = format_datetime(_utcnow())
        email["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        email["X-Schoolcomms-Message-Id"] = str(message.id)
        email["X-Schoolcomms-Idempotency-Key"] = message.idempotency_key
    except (ValueError, TypeError) as exc:
        raise Rejected(f"Cannot build the e-mail: {exc}") from exc
    email.set_content(message.body or "")
    if message.html:
        email.add_alternative(message.html, subtype="html")
    for path in message.attachments:
        path = Path(path)
        if not path.is_file():
            raise Rejected(f"The attachment {path.name} is missing; it cannot be sent.")
        kind, _ = mimetypes.guess_type(path.name)
        maintype, subtype = (kind or "application/octet-stream").split("/", 1)
        email.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
        )
    return email


class FileEmail:
    """E-mails written as ``.eml`` files to ``outbox_dir`` (normally ``<data dir>/outbox/email``)."""

    channel = "email"
    name = "file"

    def __init__(
        self,
        outbox_dir: str | os.PathLike[str],
        *,
        sender: str = "office@school.example.org",
        sender_name: str = "",
        reply_to: str = "",
    ) -> None:
        self.outbox_dir = Path(outbox_dir)
        self.sender, self.sender_name, self.reply_to = sender, sender_name, reply_to

    def open(self) -> None:
        """Create the folder."""
        self.outbox_dir.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Nothing to close."""

    def send(self, message: OutgoingMessage) -> SendResult:
        """Write ``<id>-<hash>.eml`` unless it exists already (a resend after a crash)."""
        ref = f"file-{message.id}"
        target = self.outbox_dir / email_file_name(message)
        if target.exists():
            return SendResult("file", ref, ALREADY, "sent")
        email = build_email(
            message, sender=self.sender, sender_name=self.sender_name, reply_to=self.reply_to
        )
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.outbox_dir / f".{target.name}.{uuid.uuid4().hex}.tmp"
        try:
            with temporary.open("wb") as handle:
                handle.write(email.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, target)  # fails if another writer got there first
        except FileExistsError:
            return SendResult("file", ref, ALREADY, "sent")
        finally:
            temporary.unlink(missing_ok=True)
        return SendResult("file", ref, "written", "sent")
