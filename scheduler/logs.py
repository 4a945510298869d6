"""Structured logs for the scheduler process: one line per event on stderr.

Fields passed with ``extra=`` (``event``, ``job``, ``slot``, ``outcome``, ``seconds``,
``counts`` …) become fields of the line, after ``ts``, ``level``, ``logger`` and ``msg``:

- ``kv`` (default): ``ts=2026-11-20T10:20:00.123Z level=INFO logger=scheduler.loop
  msg="absence_texts ok: queued 2 text(s)…" event=job.finished job=absence_texts …``
- ``json``: the same fields as one JSON object per line (tracebacks included as ``exc``).

Logs carry no message bodies and no full phone numbers or addresses (the dispatcher
masks them).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

HANDLER_NAME = "schoolcomms-scheduler"
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's standard fields followed by its ``extra`` fields."""
    fields: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": record.levelname,
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    return fields


def _kv(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    """``key=value`` lines; a traceback follows on indented lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{k}={_kv(v)}" for k, v in record_fields(record).items())
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join(f"    {row}" for row in trace.splitlines())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json.dumps(fields, default=str)


def configure_logging(
    fmt: str = "kv", level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Send the process's logs to stderr (or ``stream``) as ``kv`` or ``json`` lines."""
    if fmt not in ("kv", "json"):
        raise ValueError(f"Log format is kv or json, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == HANDLER_NAME:  # configured before: replace only our own
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Migration chatter at every start-up is not news.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
