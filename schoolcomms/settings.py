"""The settings registry: every setting has one name, type, default and help text.

Lookup order for an ordinary setting (first found wins):

1. the environment variable ``SCHOOLCOMMS_<NAME>`` (upper case),
2. ``<data dir>/settings.toml``,
3. the default below.

Secrets (passwords, API keys, URLs that may hold a password) are read only from the
environment or from ``.streamlit/secrets.toml``; they are never read from
``settings.toml``, never stored in the ops store and always masked when printed.

The data directory itself comes from ``--data-dir``, then ``SCHOOLCOMMS_DATA_DIR``,
then ``./data``.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "SCHOOLCOMMS_"
DATA_DIR_ENV = "SCHOOLCOMMS_DATA_DIR"
DEFAULT_DATA_DIR = "data"
MASK = "********"
# Where secrets are read from besides the environment (relative to the working directory,
# as Streamlit does). Tests point this at an empty file.
SECRETS_FILE = Path(".streamlit/secrets.toml")


# "scheme://user:password@host": the password part of a URL (a database or proxy URL).
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]+(?=@)")


def mask_url_password(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL masked.

    Settings that are not secrets may still hold one (``ops_url`` for PostgreSQL,
    ``http_proxy``): it is masked wherever a value is shown or recorded.
    """
    return _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message says which and how to fix it."""


@dataclass(frozen=True)
class Setting:
    """One entry of the registry."""

    name: str
    type: str  # "str", "int", "float", "bool", "table"
    default: Any
    help: str
    secret: bool = False
    section: str = "general"

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


REGISTRY: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting(
            "school_name",
            "str",
            "Sample School",
            "The school's or college's name, shown in the dashboard and on letters.",
        ),
        Setting(
            "ops_url",
            "str",
            "",
            "SQLAlchemy URL of the ops store (outbox, logs, load history). Blank means "
            "SQLite in WAL mode at <data dir>/ops.sqlite; use postgresql+psycopg://… to "
            "scale out.",
            section="storage",
        ),
        Setting(
            "generations_kept",
            "int",
            5,
            "How many warehouse generations (snapshots) to keep on disk; older ones are "
            "deleted after each load. Rollback can go back this many steps.",
            section="storage",
        ),
        Setting(
            "load_memory_limit",
            "str",
            "1GB",
            "Memory DuckDB may use while validating and building a snapshot; past it, "
            "work spills to <data dir>/tmp. DuckDB size syntax, e.g. 1GB or 512MB.",
            section="loading",
        ),
        Setting(
            "max_extract_mb",
            "int",
            4096,
            "Largest extract file, in MiB, that a load accepts. Bigger files are refused "
            "before reading, with advice to split them.",
            section="loading",
        ),
        Setting(
            "max_examples_per_problem",
            "int",
            20,
            "How many example rows a load report lists for each kind of problem in each "
            "column; the total count is always given.",
            section="loading",
        ),
        Setting(
            "extra_attendance_codes",
            "str",
            "",
            "The school's own attendance codes as CODE:category pairs, comma-separated, "
            "e.g. 'EX:authorised, 9:present'. Categories: present, approved_activity, "
            "authorised, unauthorised, not_possible.",
            section="loading",
        ),
        Setting(
            "mapping_profile",
            "str",
            "",
            "Column-name profile for extracts from another MIS (sims, arbor, bromcom, or "
            "the path of a TOML profile). Blank: canonical names, or the one profile "
            "that fits the headers.",
            section="loading",
        ),
        Setting(
            "mis_database_url",
            "str",
            "",
            "SQLAlchemy URL of a MIS reporting database to read extracts from with "
            "`schoolcomms load --from-sql`. May hold a password, so it is a secret.",
            secret=True,
            section="loading",
        ),
        Setting(
            "sql_sources",
            "table",
            {},
            "Per-extract SQL queries for `load --from-sql`, as a TOML table in "
            'settings.toml ([sql_sources] students = "SELECT …") or JSON in the '
            "environment. Each query must return the extract's canonical column names.",
            section="loading",
        ),
        Setting(
            "sms_pence_per_segment",
            "float",
            3.0,
            "What one SMS segment costs, in pence; used for every cost estimate and report.",
            section="messaging",
        ),
        Setting(
            "sms_batch_budget_pence",
            "float",
            5000.0,
            "Largest estimated cost of one SMS batch, in pence, that may be sent without a "
            "senior leader or admin confirming it (the default is £50).",
            section="messaging",
        ),
        Setting(
            "message_body_retention_days",
            "int",
            365,
            "Days after a message finished (sent, delivered, failed or cancelled) before its "
            "text, subject and attachments are deleted by the daily retention job; the log "
            "row (who, to whom, when, status, cost) is kept. 0 keeps bodies for ever.",
            section="messaging",
        ),
        Setting(
            "sms_provider",
            "str",
            "file",
            "Where SMS go: file (JSON lines under <data dir>/outbox/sms, sends nothing), "
            "textanywhere or twilio.",
            section="messaging",
        ),
        Setting(
            "sms_sender_id",
            "str",
            "School",
            "The sender name parents see: up to 11 letters and digits, or a phone number.",
            section="messaging",
        ),
        Setting(
            "sms_rate_per_second",
            "float",
            10.0,
            "Most SMS each dispatcher sends per second; the total is workers × this rate.",
            section="messaging",
        ),
        Setting(
            "email_rate_per_second",
            "float",
            20.0,
            "Most e-mails each dispatcher sends per second.",
            section="messaging",
        ),
        Setting(
            "http_proxy",
            "str",
            "",
            "HTTP(S) proxy for SMS gateway requests, e.g. http://proxy.school.internal:3128. "
            "Blank: connect directly.",
            section="messaging",
        ),
        Setting(
            "sms_timeout_seconds",
            "float",
            20.0,
            "How long to wait for an SMS gateway to answer before the attempt counts as a "
            "timeout and is retried.",
            section="messaging",
        ),
        Setting(
            "textanywhere_url",
            "str",
            "https://ws.textanywhere.net/HTTPRX/",
            "Base URL of Text Anywhere's HTTP service (SendSMSEx.aspx and SMSStatusEx.aspx "
            "are appended).",
            section="messaging",
        ),
        Setting(
            "textanywhere_client_id",
            "str",
            "",
            "Text Anywhere account name, sent as Client_ID with every request.",
            section="messaging",
        ),
        Setting(
            "textanywhere_client_pass",
            "str",
            "",
            "Text Anywhere account password, sent as Client_Pass; never stored or logged.",
            secret=True,
            section="messaging",
        ),
        Setting(
            "textanywhere_connection",
            "int",
            2,
            "Text Anywhere Connection parameter: 2 sends normally, 1 is their test mode.",
            section="messaging",
        ),
        Setting(
            "twilio_url",
            "str",
            "https://api.twilio.com",
            "Base URL of Twilio's REST API (tests point it at a local stand-in).",
            section="messaging",
        ),
        Setting(
            "twilio_account_sid",
            "str",
            "",
            "Twilio Account SID (AC…), used in the URL and as the Basic-auth user.",
            section="messaging",
        ),
        Setting(
            "twilio_auth_token",
            "str",
            "",
            "Twilio auth token (or API key secret), the Basic-auth password for every request.",
            secret=True,
            section="messaging",
        ),
        Setting(
            "twilio_from",
            "str",
            "",
            "Twilio From: a number or alphanumeric sender ID; blank if a Messaging Service "
            "is used instead.",
            section="messaging",
        ),
        Setting(
            "twilio_messaging_service_sid",
            "str",
            "",
            "Twilio Messaging Service SID (MG…), used instead of twilio_from when set.",
            section="messaging",
        ),
        Setting(
            "receipts_token",
            "str",
            "",
            "Shared token that delivery-receipt callbacks must carry (?token=…); blank "
            "turns the receipts endpoint off and status is polled instead.",
            secret=True,
            section="messaging",
        ),
        Setting(
            "smtp_host",
            "str",
            "",
            "SMTP server for e-mail. Blank: e-mails are written as .eml files under "
            "<data dir>/outbox/email and nothing is sent.",
            section="email",
        ),
        Setting(
            "smtp_port",
            "int",
            587,
            "SMTP server port (587 STARTTLS, 465 SSL, 25 plain).",
            section="email",
        ),
        Setting(
            "smtp_security",
            "str",
            "starttls",
            "How to secure the SMTP connection: starttls, ssl or none.",
            section="email",
        ),
        Setting(
            "smtp_user", "str", "", "SMTP user name; blank for no authentication.", section="email"
        ),
        Setting(
            "smtp_password",
            "str",
            "",
            "Password for smtp_user on the SMTP server; read only from the environment or secrets.",
            secret=True,
            section="email",
        ),
        Setting(
            "email_from",
            "str",
            "office@school.example.org",
            "The address parents see e-mails come from (the From header).",
            section="email",
        ),
        Setting(
            "email_from_name",
            "str",
            "",
            "The name e-mails come from; blank uses school_name.",
            section="email",
        ),
        Setting(
            "email_reply_to",
            "str",
            "",
            "Where replies go, if not to email_from.",
            section="email",
        ),
        Setting(
            "dispatch_batch_size",
            "int",
            100,
            "How many due messages a dispatcher claims at a time.",
            section="dispatch",
        ),
        Setting(
            "dispatch_lease_seconds",
            "int",
            300,
            "How long a claimed message belongs to one dispatcher; if it crashes, another "
            "takes the message again after this.",
            section="dispatch",
        ),
        Setting(
            "dispatch_max_attempts",
            "int",
            8,
            "Attempts before a message that keeps failing temporarily is marked failed.",
            section="dispatch",
        ),
        Setting(
            "dispatch_retry_base_seconds",
            "float",
            30.0,
            "First retry delay; each later retry doubles it (with jitter), up to an hour.",
            section="dispatch",
        ),
        Setting(
            "dispatch_pause_after_errors",
            "int",
            10,
            "A batch pauses after this many failures in a row, until someone resumes it.",
            section="dispatch",
        ),
        Setting(
            "absence_text_delay_minutes",
            "int",
            20,
            "Minutes after the end of a lesson before parents are texted about an absence "
            "from it (end + this exactly is due).",
            section="absence texts",
        ),
        Setting(
            "absence_text_latest",
            "str",
            "18:00",
            "Latest local time (HH:MM) at which absence texts are sent; a run at exactly "
            "this time may still send.",
            section="absence texts",
        ),
        Setting(
            "absence_text_status_pattern",
            "str",
            "C__",
            "Enrolment status a student must have for absence texts, as SQL LIKE "
            "(default C and two more characters: current students).",
            section="absence texts",
        ),
        Setting(
            "absence_text_cohort",
            "str",
            "16-19",
            "Cohort a student must be in for absence texts (the students.cohort value).",
            section="absence texts",
        ),
        Setting(
            "absence_text_template",
            "str",
            "Student {student_id} did not attend their lesson today at {lesson_start}. "
            "If this is a genuine absence, please notify us here: {link}",
            "The absence text. Fields: {student_id}, {lesson_start} (HH:MM), {link} (the "
            "setting absence_text_link), {forename}, {surname}.",
            section="absence texts",
        ),
        Setting(
            "absence_text_link",
            "str",
            "https://www.example.org/report-absence",
            "The web address in the absence text where parents report a genuine absence.",
            section="absence texts",
        ),
        Setting(
            "schedule_dispatch_seconds",
            "int",
            15,
            "How often, in seconds, the scheduler sends what is due in the outbox (the "
            "dispatch job).",
            section="scheduler",
        ),
        Setting(
            "schedule_delivery_minutes",
            "int",
            5,
            "How often, in minutes, the scheduler asks the SMS provider what became of sent "
            "messages (the delivery job).",
            section="scheduler",
        ),
        Setting(
            "schedule_absence_texts_minutes",
            "int",
            2,
            "How often, in minutes, the scheduler plans and queues absence texts during the "
            "school day (the absence_texts job).",
            section="scheduler",
        ),
        Setting(
            "schedule_drop_folder_minutes",
            "int",
            5,
            "How often, in minutes, the scheduler loads extract files dropped into the drop "
            "folder (the load_drop_folder job).",
            section="scheduler",
        ),
        Setting(
            "school_day_start",
            "str",
            "08:00",
            "Local time (HH:MM) the school day starts: the absence_texts job runs from then "
            "until school_day_end.",
            section="scheduler",
        ),
        Setting(
            "school_day_end",
            "str",
            "",
            "Local time (HH:MM) the school day ends for the scheduler's absence_texts job. "
            "Blank: the same as absence_text_latest.",
            section="scheduler",
        ),
        Setting(
            "drop_folder",
            "str",
            "",
            "Folder the scheduler watches for extract files (.csv, .xlsx, CTF .xml). Blank: "
            "<data dir>/drop. Loaded files move to done/<time>/, refused ones to "
            "refused/<time>/ with load-report.txt. Write files under a .part name and "
            "rename them when complete.",
            section="scheduler",
        ),
        Setting(
            "freshness_minutes",
            "int",
            30,
            "Absence texts pause while the newest mark recorded today is older than this many "
            "minutes during the school day: parents are never texted from stale registers.",
            section="scheduler",
        ),
        Setting(
            "job_runs_keep_days",
            "int",
            30,
            "Days of scheduler job history (job_runs) to keep; the scheduler deletes older "
            "runs when it starts and every day after.",
            section="scheduler",
        ),
        Setting(
            "schedule_alerts_minutes",
            "int",
            5,
            "How often, in minutes, the scheduler evaluates the staff alert rules (the alerts "
            "job); each rule fires once per crossing whatever the interval.",
            section="scheduler",
        ),
        Setting(
            "schedule_reminders_minutes",
            "int",
            5,
            "How often, in minutes, the scheduler looks for missing registers during the "
            "school day (the register_reminders job).",
            section="scheduler",
        ),
        Setting(
            "schedule_reports_minutes",
            "int",
            5,
            "How often, in minutes, the scheduler checks whether a weekly report is due (the "
            "weekly_reports job); each report's day and time are set in the dashboard.",
            section="scheduler",
        ),
        Setting(
            "register_reminder_minutes",
            "int",
            10,
            "A lesson that started at least this many minutes ago with no register taken gets "
            "a reminder (notice and e-mail) to its teacher, once.",
            section="alerts",
        ),
        Setting(
            "register_escalate_minutes",
            "int",
            30,
            "A register still missing this many minutes after the lesson started is escalated "
            "to the head of department for the lesson's subject, once.",
            section="alerts",
        ),
        Setting(
            "alert_emails",
            "bool",
            True,
            "Whether staff alerts and register reminders are also e-mailed to the staff "
            "member's address from the staff extract (the notice is always shown).",
            section="alerts",
        ),
        Setting(
            "data_manager_emails",
            "str",
            "",
            "E-mail addresses (comma-separated) of the data managers, who are told about "
            "refused drop-folder loads and stale registers as well as seeing the notice.",
            section="alerts",
        ),
        Setting(
            "weekly_report_default_time",
            "str",
            "Monday 07:00",
            "When a new weekly report is sent unless chosen otherwise in the dashboard: a "
            "weekday and a local time, e.g. 'Monday 07:00'.",
            section="alerts",
        ),
        Setting(
            "persistent_absence_percent",
            "float",
            90.0,
            "Attendance below this percentage marks a pupil as a persistent absentee in the "
            "attendance report (the DfE threshold is 90%).",
            section="alerts",
        ),
        Setting(
            "login_max_failures",
            "int",
            5,
            "Wrong passwords in a row before a dashboard account is locked for "
            "login_lockout_minutes (each failure and lockout is in the audit log).",
            section="sign-in",
        ),
        Setting(
            "login_lockout_minutes",
            "int",
            15,
            "How long, in minutes, an account stays locked after login_max_failures wrong "
            "passwords; an administrator can unlock it sooner with `schoolcomms users reset`.",
            section="sign-in",
        ),
        Setting(
            "session_idle_minutes",
            "int",
            30,
            "A dashboard session with no activity for this many minutes is signed out.",
            section="sign-in",
        ),
        Setting(
            "session_max_hours",
            "int",
            10,
            "A dashboard session ends this many hours after sign-in, however active.",
            section="sign-in",
        ),
        Setting(
            "calendar_allow_private_hosts",
            "bool",
            False,
            "Whether homepage calendar feeds may be read from private, loopback or "
            "link-local addresses (inside the school's network). Off: only public addresses, "
            "so nobody can make the server fetch internal pages.",
            section="sign-in",
        ),
        Setting(
            "school_address",
            "str",
            "",
            "The school's postal address for letterheads, lines separated by commas.",
            section="letters",
        ),
        Setting(
            "letter_signatory",
            "str",
            "",
            "Name and role printed under letters, e.g. 'Mrs J Smith, Headteacher'.",
            section="letters",
        ),
    ]
}


def resolve_data_dir(
    cli_value: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The data directory: ``--data-dir``, then ``SCHOOLCOMMS_DATA_DIR``, then ``./data``."""
    env = os.environ if env is None else env
    raw = cli_value or env.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(raw).expanduser().resolve()


def coerce(setting: Setting, value: Any, origin: str) -> Any:
    """``value`` as ``setting``'s type, or :class:`SettingsError` naming where it came from."""
    try:
        if setting.type == "str":
            return str(value)
        if setting.type == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if setting.type == "float":
            return float(value)
        if setting.type == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "y", "on"}:
                return True
            if text in {"0", "false", "no", "n", "off", ""}:
                return False
            raise ValueError
        if setting.type == "table":
            if isinstance(value, dict):
                return value
            parsed = json.loads(value)
            if not isinstance(parsed, dict):
                raise ValueError
            return parsed
    except (TypeError, ValueError, json.JSONDecodeError):
        pass
    raise SettingsError(
        f"Setting {setting.name} from {origin} has the value {value!r}, which is not a "
        f"valid {setting.type}. Fix it there, or remove it to use the default "
        f"({setting.default!r}). See docs/settings.md."
    )


class Settings:
    """Resolved settings for one data directory.

    ``env`` defaults to ``os.environ``; tests pass their own mapping so that a
    developer's environment never leaks in. ``secrets_file`` defaults to
    ``.streamlit/secrets.toml`` in the current directory.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        secrets_file: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._env = dict(os.environ if env is None else env)
        self._overrides = dict(overrides or {})
        self.settings_file = self.data_dir / "settings.toml"
        self._file_values = self._read_toml(self.settings_file)
        secrets_path = Path(secrets_file) if secrets_file else SECRETS_FILE
        secrets = self._read_toml(secrets_path)
        # Secrets may sit at the top level or under [schoolcomms].
        self._secret_values = {**secrets, **secrets.get("schoolcomms", {})}
        self._secrets_path = secrets_path
        unknown = sorted(set(self._file_values) - set(REGISTRY))
        if unknown:
            raise SettingsError(
                f"{self.settings_file} names unknown settings: {', '.join(unknown)}. "
                "Check the spelling against `schoolcomms settings` or docs/settings.md."
            )
        for name in self._file_values:
            if REGISTRY[name].secret:
                raise SettingsError(
                    f"{self.settings_file} holds the secret {name}. Secrets are read only "
                    f"from the environment ({REGISTRY[name].env_var}) or "
                    ".streamlit/secrets.toml; remove it from settings.toml."
                )

    @staticmethod
    def _read_toml(path: Path) -> dict[str, Any]:
        if not path.is_file():
            return {}
        try:
            with path.open("rb") as handle:
                return tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(
                f"{path} is not valid TOML: {exc}. Fix the file or delete it to use defaults."
            ) from exc

    def source(self, name: str) -> str:
        """Where the value of ``name`` comes from: override, env, file, secrets or default."""
        setting = REGISTRY[name]
        if name in self._overrides:
            return "override"
        if setting.env_var in self._env:
            return "env"
        if setting.secret:
            return "secrets" if name in self._secret_values else "default"
        return "file" if name in self._file_values else "default"

    def __getitem__(self, name: str) -> Any:
        if name not in REGISTRY:
            raise KeyError(f"No setting called {name!r}; see `schoolcomms settings`.")
        setting = REGISTRY[name]
        origin = self.source(name)
        if origin == "override":
            return coerce(setting, self._overrides[name], "an override")
        if origin == "env":
            return coerce(setting, self._env[setting.env_var], setting.env_var)
        if origin == "secrets":
            return coerce(setting, self._secret_values[name], str(self._secrets_path))
        if origin == "file":
            return coerce(setting, self._file_values[name], str(self.settings_file))
        return setting.default

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in REGISTRY:
            raise AttributeError(name)
        return self[name]

    # Paths under the data directory, in one place.
    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def resolved_ops_url(self) -> str:
        """The ops store URL, with the embedded SQLite default filled in."""
        return self["ops_url"] or f"sqlite:///{self.data_dir / 'ops.sqlite'}"

    def rows(self, mask_secrets: bool = True) -> list[dict[str, Any]]:
        """Every setting with its value, origin and help; secrets and URL passwords masked."""
        out = []
        for name, setting in REGISTRY.items():
            value = self[name]
            if setting.secret and mask_secrets and value:
                value = MASK
            elif mask_secrets and isinstance(value, str):
                value = mask_url_password(value)
            out.append(
                {
                    "name": name,
                    "value": value,
                    "source": self.source(name),
                    "type": setting.type,
                    "default": setting.default,
                    "secret": setting.secret,
                    "env": setting.env_var,
                    "help": setting.help,
                }
            )
        return out


def load_settings(
    data_dir: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Settings for ``data_dir`` (resolved as documented) and the given environment."""
    env = os.environ if env is None else env
    return Settings(resolve_data_dir(data_dir, env), env=env)
