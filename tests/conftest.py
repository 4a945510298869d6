"""Shared test helpers: canonical CSV writing, a minimal valid school, clean settings.

Every helper works under ``tmp_path`` and builds settings with ``env={}`` (or runs the
CLI with ``--data-dir`` and a clean environment), so a developer's own settings,
environment or ``.streamlit/secrets.toml`` never leak into a test.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from schoolcomms.settings import ENV_PREFIX, Settings

# Stand-in SMS provider servers (tests/standins) as fixtures for every test; a real
# PostgreSQL server for the ops-store tests (tests/postgres.py).
pytest_plugins = ["standins", "postgres"]

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"

Rows = Sequence[Mapping[str, Any]]

# A small, valid school: every reference resolves, UPNs have right check letters,
# phones and e-mails are valid, so loading it gives no warnings at all.
MINIMAL_SCHOOL: dict[str, list[dict[str, Any]]] = {
    "staff": [
        {
            "staff_id": "T1",
            "title": "Ms",
            "forename": "Tara",
            "surname": "Teach",
            "email": "t.teach@school.example.com",
            "mobile": "07400 100001",
        },
        {
            "staff_id": "T2",
            "title": "Mr",
            "forename": "Tom",
            "surname": "Tutor",
            "email": "t.tutor@school.example.com",
            "mobile": "",
        },
    ],
    "students": [
        {
            "student_id": "S1",
            "upn": "Q933207636540",
            "adno": "1001",
            "forename": "Ann",
            "surname": "Able",
            "date_of_birth": "2010-03-04",
            "year_group": "10",
            "form": "10A",
            "status": "C01",
            "cohort": "school",
            "email": "ann@pupils.example.com",
            "mobile": "07400 123456",
        },
        {
            "student_id": "S2",
            "upn": "D933207636550",
            "adno": "1002",
            "forename": "Ben",
            "surname": "Baker",
            "date_of_birth": "2010-05-06",
            "year_group": "10",
            "form": "10A",
            "status": "C01",
            "cohort": "school",
            "email": "",
            "mobile": "",
        },
        {
            "student_id": "S3",
            "upn": "R933207636560",
            "adno": "1003",
            "forename": "Cat",
            "surname": "Baker",
            "date_of_birth": "2012-07-08",
            "year_group": "8",
            "form": "8B",
            "status": "C01",
            "cohort": "school",
            "email": "",
            "mobile": "",
        },
    ],
    "contacts": [
        {
            "student_id": "S1",
            "contact_id": "C1",
            "title": "Mrs",
            "forename": "Alice",
            "surname": "Able",
            "relationship": "Mother",
            "priority": "1",
            "parental_responsibility": "Y",
            "mobile": "07400 200001",
            "email": "alice@home.example.com",
            "sms_consent": "Y",
            "email_consent": "Y",
        },
        {
            "student_id": "S2",
            "contact_id": "C2",
            "title": "Mr",
            "forename": "Bill",
            "surname": "Baker",
            "relationship": "Father",
            "priority": "1",
            "parental_responsibility": "Y",
            "mobile": "07400 200002",
            "email": "bill@home.example.com",
            "sms_consent": "Y",
            "email_consent": "N",
        },
        {
            "student_id": "S3",
            "contact_id": "C2",
            "title": "Mr",
            "forename": "Bill",
            "surname": "Baker",
            "relationship": "Father",
            "priority": "1",
            "parental_responsibility": "Y",
            "mobile": "07400 200002",
            "email": "bill@home.example.com",
            "sms_consent": "Y",
            "email_consent": "N",
        },
    ],
    "classes": [
        {"class_id": "10A/Ma", "subject": "Maths", "year_group": "10", "staff_id": "T1"},
        {"class_id": "8B/En", "subject": "English", "year_group": "8", "staff_id": "T2"},
    ],
    "class_members": [
        {"class_id": "10A/Ma", "student_id": "S1"},
        {"class_id": "10A/Ma", "student_id": "S2"},
        {"class_id": "8B/En", "student_id": "S3"},
    ],
    "lessons": [
        {
            "lesson_id": "L1",
            "date": "2026-09-03",
            "start_time": "09:00",
            "end_time": "10:00",
            "kind": "lesson",
            "period": "1",
            "class_id": "10A/Ma",
            "subject": "Maths",
            "staff_id": "T1",
            "room": "M1",
            "register_taken_at": "2026-09-03 09:05",
        },
        {
            "lesson_id": "L2",
            "date": "2026-09-03",
            "start_time": "10:00",
            "end_time": "11:00",
            "kind": "lesson",
            "period": "2",
            "class_id": "8B/En",
            "subject": "English",
            "staff_id": "T2",
            "room": "E1",
            "register_taken_at": "",
        },
        {
            "lesson_id": "L3",
            "date": "2026-09-04",
            "start_time": "09:00",
            "end_time": "10:00",
            "kind": "lesson",
            "period": "1",
            "class_id": "10A/Ma",
            "subject": "Maths",
            "staff_id": "T1",
            "room": "M1",
            "register_taken_at": "2026-09-04 09:02",
        },
    ],
    "marks": [
        {
            "lesson_id": "L1",
            "student_id": "S1",
            "mark": "/",
            "minutes_late": "",
            "comment": "",
            "recorded_at": "2026-09-03 09:05",
            "recorded_by": "T1",
        },
        {
            "lesson_id": "L1",
            "student_id": "S2",
            "mark": "O",
            "minutes_late": "",
            "comment": "",
            "recorded_at": "2026-09-03 09:05",
            "recorded_by": "T1",
        },
        {
            "lesson_id": "L2",
            "student_id": "S3",
            "mark": "L",
            "minutes_late": "7",
            "comment": "bus",
            "recorded_at": "2026-09-03 10:09",
            "recorded_by": "T2",
        },
        {
            "lesson_id": "L3",
            "student_id": "S1",
            "mark": "/",
            "minutes_late": "",
            "comment": "",
            "recorded_at": "2026-09-04 09:02",
            "recorded_by": "T1",
        },
        {
            "lesson_id": "L3",
            "student_id": "S2",
            "mark": "I",
            "minutes_late": "",
            "comment": "",
            "recorded_at": "2026-09-04 09:02",
            "recorded_by": "T1",
        },
    ],
}


def minimal_school() -> dict[str, list[dict[str, Any]]]:
    """A fresh (deep) copy of :data:`MINIMAL_SCHOOL`, safe to change in a test."""
    return copy.deepcopy(MINIMAL_SCHOOL)


def write_csv(
    path: Path,
    rows: Rows,
    columns: Sequence[str] | None = None,
    *,
    encoding: str = "utf-8",
    newline: str = "\n",
) -> Path:
    """Write ``rows`` (dicts) as a CSV with a header row; columns default to the keys seen."""
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator=newline)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return path


def write_extracts(folder: Path, tables: Mapping[str, Rows]) -> list[Path]:
    """Write each ``{extract name: rows}`` as ``<folder>/<name>.csv``; return the paths."""
    return [write_csv(folder / f"{name}.csv", rows) for name, rows in tables.items()]


@pytest.fixture
def settings(tmp_path: Path, ops_url: str | None) -> Iterator[Settings]:
    """Settings for a fresh data directory under ``tmp_path``, with no environment.

    The ops store is SQLite in that folder; in a module marked ``ops_store`` the
    ``[postgresql]`` run of each test has its own PostgreSQL database instead
    (``ops_url``, written to the folder's settings.toml: see tests/postgres.py).
    """
    yield Settings(tmp_path / "data", env={})
    from schoolcomms.ops import db

    db.close_all()


@pytest.fixture
def school_dir(tmp_path: Path) -> Path:
    """A folder holding the minimal school as canonical CSV extracts."""
    folder = tmp_path / "school"
    write_extracts(folder, MINIMAL_SCHOOL)
    return folder


@pytest.fixture(scope="session")
def _loaded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the minimal school loaded, built once per test process."""
    from pipelines.load import load_paths
    from schoolcomms.ops import db

    root = tmp_path_factory.mktemp("school_template")
    write_extracts(root / "school", MINIMAL_SCHOOL)
    report = load_paths([root / "school"], Settings(root / "data", env={}))
    assert report.ok, [p.as_text() for p in report.problems]
    assert report.generation_after == 1
    db.close_all()  # checkpoint the SQLite ops store before it is copied
    return root / "data"


@pytest.fixture
def loaded(settings: Settings, _loaded_template: Path, ops_url: str | None) -> Settings:
    """Settings whose warehouse has the minimal school loaded (generation 1).

    A copy of a data directory loaded once per process: the same as loading the
    school here (``tests/test_load_semantics.py`` checks a real first load), only faster.
    On PostgreSQL the load history is copied into the test's database too.
    """
    shutil.copytree(_loaded_template, settings.data_dir, dirs_exist_ok=True)
    if ops_url:
        from postgres import copy_rows

        from schoolcomms.ops.db import make_engine, open_ops

        template = make_engine(f"sqlite:///{_loaded_template / 'ops.sqlite'}")
        try:
            copy_rows(template, open_ops(settings))
        finally:
            template.dispose()
    return settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SCHOOLCOMMS_* variables and a working directory without .streamlit/secrets."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)


class Cli:
    """Run ``schoolcomms --data-dir <dir> …`` in-process with click's CliRunner."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.runner = CliRunner()

    def __call__(self, *args: str | Path, env: Mapping[str, str] | None = None) -> Result:
        from schoolcomms.cli import main

        argv = ["--data-dir", str(self.data_dir), *(str(a) for a in args)]
        return self.runner.invoke(main, argv, env=dict(env or {}), catch_exceptions=True)

    def query(self, sql: str) -> list[dict[str, Any]]:
        """``schoolcomms query SQL --json``, parsed; the command must succeed."""
        result = self("query", sql, "--json")
        assert result.exit_code == 0, result.output + result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def cli(clean_env: None, settings: Settings) -> Cli:
    """The CLI on the same data directory as the ``settings`` fixture, clean environment."""
    return Cli(settings.data_dir)


_REAL_MAIN = sys.modules["__main__"]


@pytest.fixture(autouse=True)
def _real_main_module() -> Iterator[None]:
    """Put the real ``__main__`` back after each test.

    Streamlit's script runner (every AppTest) installs the page it ran as
    ``sys.modules["__main__"]`` and leaves it there. A later test that starts a process
    with multiprocessing's "spawn" then re-runs that page in the child (spawn re-imports
    the parent's main script), and the child dies before doing its work.
    """
    sys.modules["__main__"] = _REAL_MAIN
    yield
    sys.modules["__main__"] = _REAL_MAIN


@pytest.fixture(autouse=True, scope="session")
def _isolated_from_the_developer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test may read a developer's settings, secrets or ./data, or write there.

    Every ``SCHOOLCOMMS_*`` variable is removed for the session, the default data
    directory points into a temporary folder, and the secrets file into nowhere.
    """
    import schoolcomms.settings as settings_module

    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    for name in saved:
        del os.environ[name]
    os.environ["SCHOOLCOMMS_DATA_DIR"] = str(tmp_path_factory.mktemp("default-data-dir"))
    secrets = settings_module.SECRETS_FILE
    settings_module.SECRETS_FILE = tmp_path_factory.mktemp("no-secrets") / "secrets.toml"
    yield
    settings_module.SECRETS_FILE = secrets
    os.environ.pop("SCHOOLCOMMS_DATA_DIR", None)
    os.environ.update(saved)


def sign_in(at: Any, *roles: str, email: str | None = None, staff_id: str | None = None) -> Any:
    """Sign an AppTest session in as an account holding ``roles`` (default: admin).

    The account is created (once per address) in the ops store of the data directory the
    app uses (``SCHOOLCOMMS_DATA_DIR``), and the session is started as the sign-in form
    does; every page then checks it on the server like any other. Returns ``at``.
    """
    import datetime as dt

    from sqlalchemy import select

    from dashboard.auth_ui import SESSION
    from schoolcomms import auth
    from schoolcomms.ops.db import open_ops, session_scope
    from schoolcomms.ops.models import User
    from schoolcomms.settings import load_settings

    roles = roles or ("admin",)
    address = email or f"{'-'.join(roles)}@school.example.org"
    engine = open_ops(load_settings())
    with session_scope(engine, immediate=False) as session:
        user_id = session.scalar(select(User.id).where(User.email == address))
    if user_id is None:
        user_id = auth.create_user(
            engine, email=address, roles=list(roles), actor="test", staff_id=staff_id
        )
    now = dt.datetime.now(dt.UTC).isoformat()
    at.session_state[SESSION] = {"user_id": user_id, "signed_in_at": now, "last_seen": now}
    return at
