"""Saving settings to ``<data dir>/settings.toml`` from the dashboard: checked, atomic, audited.

:func:`save` takes ``{name: value}`` changes (``None`` or :data:`RESET` takes a setting
out of the file, so its default applies again) and

1. checks every change before anything is written, and refuses with every problem named
   (:class:`SaveRefused`): unknown names; secrets, which belong in the environment or
   ``.streamlit/secrets.toml`` and never in a file the dashboard writes; settings set by
   the environment, whose file value would be ignored; values the registry's coercion
   or the extra checks below reject;
2. under a file lock (two admins saving at once lose nothing), reads the file afresh and
   rewrites it atomically (a temporary file renamed over it). Other keys and tables such
   as ``[sql_sources]`` are kept; a changed top-level key is edited in its line, so the
   file's comments and order survive, unless that cannot be done safely, when the whole
   file is written out again. Either way the new text is parsed back and must hold
   exactly the intended values before it replaces the old file;
3. writes one ``settings.change`` audit row per changed setting, with the old and new
   values (never a secret: secrets are refused in step 1). If the audit cannot be
   written, the old file is put back: no change without its audit row.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email
from filelock import FileLock, Timeout
from sqlalchemy import Engine

from schoolcomms.codes import CodeConfigError, parse_extra_codes
from schoolcomms.ops.db import session_scope
from schoolcomms.ops.models import AuditEntry, utcnow
from schoolcomms.settings import (
    REGISTRY,
    Setting,
    Settings,
    SettingsError,
    coerce,
    mask_url_password,
)

AUDIT_ACTION = "settings.change"
RESET = None  # a change to RESET takes the setting out of settings.toml
LOCK_TIMEOUT_SECONDS = 10.0

# Settings with a fixed set of values (the senders check the same lists when they run).
CHOICES: dict[str, tuple[str, ...]] = {
    "sms_provider": ("file", "textanywhere", "twilio"),
    "smtp_security": ("starttls", "ssl", "none"),
}
# Local times written HH:MM; those marked True may be blank.
TIMES: dict[str, bool] = {
    "absence_text_latest": False,
    "school_day_start": False,
    "school_day_end": True,
}
# Smallest sensible value of a number (every other number may not be negative).
MINIMUMS: dict[str, float] = {
    "generations_kept": 1,
    "max_extract_mb": 1,
    "smtp_port": 1,
    "dispatch_batch_size": 1,
    "dispatch_lease_seconds": 1,
    "dispatch_max_attempts": 1,
    "dispatch_pause_after_errors": 1,
    "schedule_dispatch_seconds": 1,
    "schedule_delivery_minutes": 1,
    "schedule_absence_texts_minutes": 1,
    "schedule_drop_folder_minutes": 1,
    "schedule_alerts_minutes": 1,
    "schedule_reminders_minutes": 1,
    "schedule_reports_minutes": 1,
    "sms_rate_per_second": 0.1,
    "email_rate_per_second": 0.1,
    "sms_timeout_seconds": 1,
    "login_max_failures": 1,
    "login_lockout_minutes": 1,
    "session_idle_minutes": 1,
    "session_max_hours": 1,
}
MAXIMUMS: dict[str, float] = {"smtp_port": 65535, "persistent_absence_percent": 100}
EMAIL_SETTINGS: tuple[str, ...] = ("email_from",)
EMAIL_LIST_SETTINGS: tuple[str, ...] = ("data_manager_emails",)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_SENDER_ID = re.compile(r"^([A-Za-z0-9 ]{1,11}|\+?\d{3,16})$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_TYPE_WORDS = {
    "int": "a whole number, e.g. 10",
    "float": "a number, e.g. 3.5",
    "bool": "true or false",
    "str": "text",
    "table": "a table of names and values (a JSON object in the dashboard)",
}


class SaveRefused(SettingsError):
    """Nothing was saved; ``problems`` says what is wrong with each change and how to fix it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


@dataclass(frozen=True)
class Change:
    """One setting changed by :func:`save`: its file-or-default value before and after."""

    name: str
    old: Any
    new: Any
    reset: bool = False  # taken out of settings.toml: the default applies

    def as_text(self) -> str:
        """``name: old → new`` in words, for the page."""
        after = f"{_shown(self.new)} (the default)" if self.reset else _shown(self.new)
        return f"{self.name}: {_shown(self.old)} → {after}"


def _masked(value: Any) -> Any:
    return mask_url_password(value) if isinstance(value, str) else value


def _jsonable(value: Any) -> Any:
    """Plain JSON types for the audit log (a TOML date becomes its ISO text)."""
    return json.loads(json.dumps(value, default=str))


def _shown(value: Any) -> str:
    return "(blank)" if value == "" else repr(value) if isinstance(value, str) else str(value)


# ---- checking ------------------------------------------------------------------------------


def _semantic_problem(setting: Setting, value: Any) -> str | None:
    """What is wrong with an already coerced ``value`` of ``setting``, if anything."""
    name = setting.name
    if setting.type in ("int", "float"):
        if not math.isfinite(value):
            return f"{name} must be an ordinary number, not {value!r}."
        low, high = MINIMUMS.get(name, 0), MAXIMUMS.get(name)
        if value < low or (high is not None and value > high):
            limit = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            return f"{name} must be {limit}; {value:g} is not."
    if name in CHOICES and value not in CHOICES[name]:
        return f"{name} must be one of {', '.join(CHOICES[name])}; {value!r} is not."
    if name in TIMES and not (TIMES[name] and value == "") and not _HHMM.match(value):
        blank = " or blank" if TIMES[name] else ""
        return f"{name} must be a time written HH:MM{blank}, e.g. 08:30; {value!r} is not."
    if name == "weekly_report_default_time":
        day, _, time_text = value.partition(" ")
        days = {d.lower() for d in (*calendar.day_name, *calendar.day_abbr)}
        if day.lower() not in days or not _HHMM.match(time_text.strip()):
            return f"{name} must be a weekday and a time, e.g. 'Monday 07:00'; {value!r} is not."
    if name == "extra_attendance_codes":
        try:
            parse_extra_codes(value)
        except CodeConfigError as exc:
            return str(exc)
    if name == "sms_sender_id" and not _SENDER_ID.match(value):
        return f"{name} must be up to 11 letters and digits, or a phone number; {value!r} is not."
    if name in EMAIL_SETTINGS or name in EMAIL_LIST_SETTINGS:
        addresses = (
            [a.strip() for a in value.split(",")] if name in EMAIL_LIST_SETTINGS else [value]
        )
        for address in filter(None, addresses):
            try:
                validate_email(address, check_deliverability=False)
            except EmailNotValidError as exc:
                return f"{name}: {address!r} is not an e-mail address ({exc})."
        if name in EMAIL_SETTINGS and not value:
            return f"{name} cannot be blank: e-mails need a From address."
    if setting.type == "table" and _holds_null(value):
        return f"{name} cannot hold empty (null) values: give each entry a value or leave it out."
    return None


def _holds_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Mapping):
        return any(_holds_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_null(v) for v in value)
    return False


def check_value(name: str, value: Any) -> Any:
    """``value`` as setting ``name`` stores it (coerced, text trimmed); SettingsError if not.

    Only the value is judged here; :func:`save` also refuses secrets and settings set by
    the environment.
    """
    if name not in REGISTRY:
        raise SettingsError(
            f"There is no setting called {name!r}; see `schoolcomms settings` for the names."
        )
    setting = REGISTRY[name]
    if isinstance(value, str) and setting.type != "table":
        value = value.strip()
    try:
        coerced = coerce(setting, value, "the dashboard")
    except SettingsError:
        raise SettingsError(
            f"{name} must be {_TYPE_WORDS[setting.type]}; {value!r} is not. Enter a "
            f"{setting.type} value, or reset it to the default ({setting.default!r})."
        ) from None
    problem = _semantic_problem(setting, coerced)
    if problem:
        raise SettingsError(problem)
    return coerced


def _problem_with(settings: Settings, name: str, value: Any) -> str | None:
    if name not in REGISTRY:
        return f"There is no setting called {name!r}; see `schoolcomms settings` for the names."
    setting = REGISTRY[name]
    if setting.secret:
        return (
            f"{name} is a secret and is never written to settings.toml: set "
            f"{setting.env_var} in the environment or {name} in .streamlit/secrets.toml."
        )
    source = settings.source(name)
    if source in ("env", "override"):
        where = f"the environment variable {setting.env_var}" if source == "env" else "an override"
        return (
            f"{name} is set by {where}, so a value in settings.toml would be ignored; change "
            f"or remove {setting.env_var} where the dashboard and scheduler are started instead."
        )
    if value is RESET:
        return None
    try:
        check_value(name, value)
    except SettingsError as exc:
        return str(exc)
    return None


# ---- the file ------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    escapes |= {"\b": "\\b", "\f": "\\f"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def toml_value(value: Any) -> str:
    """``value`` as a TOML value (tables inline); ValueError for what TOML cannot hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise ValueError(f"TOML cannot hold {value!r} ({type(value).__name__}).")


def dump_toml(data: Mapping[str, Any]) -> str:
    """The whole document: top-level values first, then one ``[table]`` per table."""
    lines = [
        f"{_toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)
    ]
    for key, table in data.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{_toml_key(key)}]"]
            lines += [f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _edit_lines(text: str, changes: Mapping[str, Any]) -> str | None:
    """``text`` with each top-level key's line replaced, added or removed (``RESET``).

    ``None`` when a change is a table (written out whole instead). The result is only
    used if it parses back to the intended values, so a value that spanned several lines
    or a key written unusually simply falls back to writing the whole file.
    """
    lines = text.splitlines(keepends=True)
    tables = [i for i, line in enumerate(lines) if line.lstrip().startswith("[")]
    end = tables[0] if tables else len(lines)
    for name, value in changes.items():
        if isinstance(value, Mapping):
            return None
        pattern = re.compile(rf"^\s*([\"']?){re.escape(name)}\1\s*=")
        found = next((i for i in range(end) if pattern.match(lines[i])), None)
        if value is RESET:
            if found is not None:
                del lines[found]
                end -= 1
            continue
        line = f"{name} = {toml_value(value)}\n"
        if found is not None:
            lines[found] = line
            continue
        at = end
        while at > 0 and not lines[at - 1].strip():
            at -= 1  # keep the blank line before the first table
        if at > 0 and not lines[at - 1].endswith("\n"):
            lines[at - 1] += "\n"
        lines.insert(at, line)
        end += 1
    return "".join(lines)


def _render(old_text: str, intended: dict[str, Any], changes: Mapping[str, Any]) -> str:
    """The new file text, edited in place if that is safe, else written out whole."""
    candidates = [_edit_lines(old_text, changes), dump_toml(intended)]
    for text in candidates:
        if text is None:
            continue
        try:
            if tomllib.loads(text) == intended:
                return text
        except tomllib.TOMLDecodeError:
            continue
    raise SettingsError(
        "The new settings could not be written as TOML that reads back the same; nothing "
        "was saved. Check the values for unusual characters."
    )


def _read_file(path: Path) -> tuple[str, dict[str, Any]]:
    if not path.is_file():
        return "", {}
    text = path.read_text(encoding="utf-8")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"{path} is not valid TOML ({exc}); fix or delete it before saving settings "
            "from the dashboard."
        ) from exc


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(prefix=".settings.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename still happened
        return
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _restore(path: Path, old_text: str, existed: bool) -> None:
    if existed:
        _write_atomically(path, old_text)
    else:
        path.unlink(missing_ok=True)


# ---- saving --------------------------------------------------------------------------------


def _as_settings(target: Settings | str | os.PathLike[str]) -> Settings:
    return target if isinstance(target, Settings) else Settings(target)


def save(
    target: Settings | str | os.PathLike[str],
    changes: Mapping[str, Any],
    actor: str,
    engine: Engine,
) -> list[Change]:
    """Write ``changes`` to ``<data dir>/settings.toml`` and audit them; return what changed.

    ``target`` is the data directory's :class:`Settings` (whose environment decides
    which settings the file may not set) or the data directory itself (the process
    environment then decides). A value of ``None`` (:data:`RESET`) takes the setting out
    of the file. A change to the value the file already holds changes nothing and is
    left out of the result. Raises :class:`SaveRefused` listing every problem (nothing
    is written), or :class:`SettingsError` if the file cannot be read or written.
    """
    actor = (actor or "").strip()
    if not actor:
        raise ValueError("actor must name who changed the settings (an e-mail address or 'cli')")
    settings = _as_settings(target)
    problems = [p for name, value in changes.items() if (p := _problem_with(settings, name, value))]
    if problems:
        raise SaveRefused(problems)
    wanted = {
        name: RESET if value is RESET else check_value(name, value)
        for name, value in changes.items()
    }
    path = settings.settings_file
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(path.parent / ".settings.toml.lock"), timeout=LOCK_TIMEOUT_SECONDS):
            return _save_locked(path, wanted, actor, engine)
    except Timeout:
        raise SettingsError(
            "Someone else is saving the settings right now; try again in a moment."
        ) from None


def _save_locked(path: Path, wanted: Mapping[str, Any], actor: str, engine: Engine) -> list[Change]:
    old_text, current = _read_file(path)
    existed = path.is_file()
    intended = dict(current)
    applied: dict[str, Any] = {}
    done: list[Change] = []
    for name, value in wanted.items():
        default = REGISTRY[name].default
        old = current.get(name, default)
        if value is RESET:
            if name not in current:
                continue
            del intended[name]
            done.append(Change(name, old, default, reset=True))
        else:
            if name in current and current[name] == value and type(current[name]) is type(value):
                continue
            intended[name] = value
            done.append(Change(name, old, value))
        applied[name] = value
    if not done:
        return []
    try:
        _write_atomically(path, _render(old_text, intended, applied))
    except OSError as exc:
        raise SettingsError(
            f"Could not write {path}: {exc.strerror or exc}. Check that the data folder is "
            "writable by the dashboard."
        ) from exc
    try:
        at = utcnow()
        with session_scope(engine) as session:
            for change in done:
                details = _jsonable(
                    {
                        "name": change.name,
                        # A proxy or database URL may hold a password: never in the log.
                        "old": _masked(change.old),
                        "new": _masked(change.new),
                        "reset": change.reset,
                        "file": str(path),
                    }
                )
                session.add(
                    AuditEntry(
                        at=at,
                        actor=actor,
                        action=AUDIT_ACTION,
                        target=f"setting:{change.name}",
                        details=details,
                    )
                )
    except Exception:
        _restore(path, old_text, existed)
        raise
    return done


__all__ = [
    "AUDIT_ACTION",
    "CHOICES",
    "RESET",
    "TIMES",
    "Change",
    "SaveRefused",
    "check_value",
    "dump_toml",
    "save",
    "toml_value",
]
