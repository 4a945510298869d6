"""The ops store foundation: engine set-up, migrations, load history and the audit log.

Every test uses a fresh SQLite file under ``tmp_path`` (never ./data) and settings
built with ``env={}``, so a developer's environment cannot leak in; and again on a fresh
PostgreSQL database of its own (tests/postgres.py). Schemas and rows are checked with a
plain ``sqlite3`` or ``psycopg`` connection, independent of the code under test.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import traceback
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from postgres import Databases, DataDirs
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from schoolcomms.ops import db
from schoolcomms.ops.db import (
    current_revision,
    head_revision,
    make_engine,
    open_ops,
    session_scope,
    upgrade,
)
from schoolcomms.ops.history import (
    MAX_REPORT_PROBLEMS,
    audit,
    load_problems,
    recent_audit,
    recent_loads,
    record_load,
    record_rollback,
)
from schoolcomms.ops.models import AuditEntry, Base, LoadFile, LoadRun
from schoolcomms.settings import MASK, Settings

T0 = datetime(2025, 11, 3, 7, 30, 0, tzinfo=UTC)

HEAD = "0008"
MESSAGING_TABLES = {
    "batches",
    "messages",
    "templates",
    "pastoral_log",
    "contact_log",
    "opt_outs",
    "absence_notices",
}
SCHEDULER_TABLES = {"job_runs"}
ALERT_TABLES = {"notices", "alert_rules", "alert_firings", "staff_groups", "report_schedules"}
USER_TABLES = {
    "users",
    "referral_options",
    "referrals",
    "assistance_requests",
    "staff_queries",
    "calendar_sources",
}
INDEXES = {
    "ix_load_runs_started_at",
    "ix_load_files_load_run_id",
    "ix_audit_log_at",
    "ix_batches_created_at",
    "ix_contact_log_happened_at",
    "ix_contact_log_student_id",
    "ix_messages_batch_id",
    "ix_messages_batch_id_status",
    "ix_messages_created_at",
    "ix_messages_provider_ref",
    "ix_messages_status_next_attempt_at",
    "ix_messages_student_id",
    "ix_pastoral_log_at",
    "ix_pastoral_log_student_id",
    "ix_job_runs_started_at",
    "ix_notices_staff_id",
    "ix_notices_audience",
    "ix_notices_created_at",
    "ix_alert_firings_rule_id",
    "ix_referrals_student_id",
    "ix_referrals_to_staff_id",
    "ix_assistance_requests_created_at",
    "ix_staff_queries_student_id",
    "ix_staff_queries_to_staff_id",
    "ix_calendar_sources_user_email",
}
# Every test that uses the ops store runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store


@pytest.fixture(autouse=True)
def _fresh_engine_cache() -> Any:
    db.close_all()
    yield
    db.close_all()


@pytest.fixture
def settings(tmp_path: Path, ops_url: str | None) -> Settings:
    """A data dir whose ops store is SQLite, or this test's PostgreSQL database (at head)."""
    return Settings(tmp_path / "data", env={})


@pytest.fixture
def empty(tmp_path: Path, ops_data_dir: DataDirs) -> Settings:
    """A data dir whose ops store was never opened: no SQLite file, or an empty database."""
    return Settings(ops_data_dir(tmp_path / "data", template="template0"), env={})


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return open_ops(settings)


def _raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, independent of the code under test."""
    return sqlite3.connect(path)


def _raw_pg(url: str) -> psycopg.Connection[Any]:
    """A plain psycopg connection, independent of the code under test."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(plain, autocommit=True)


def _rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` run on the ops store of ``settings`` over a plain connection."""
    url = settings.resolved_ops_url
    if url.startswith("sqlite"):
        with _raw(Path(str(make_url(url).database))) as conn:
            return conn.execute(sql).fetchall()
    with _raw_pg(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def _schema(settings: Settings) -> list[tuple[str, str, str | None]]:
    """Every table, index and constraint with its definition, as the database tells it."""
    if settings.resolved_ops_url.startswith("sqlite"):
        return _rows(settings, "SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
    return _rows(
        settings,
        """
        SELECT 'column', table_name || '.' || column_name,
               data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
        FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL
        SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
        UNION ALL
        SELECT 'constraint', conname, conrelid::regclass::text || ' ' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2
        """,
    )


def _problem(severity: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "severity": severity,
        "problem": f"problem {n}",
        "fix": f"fix {n}",
        "file": "students.csv",
        "extract": "students",
        "line": n + 1,
        "column": "upn",
        "value": f"X{n}",
        "count": 1,
        "lines": [n + 1],
        **extra,
    }


def _load(engine: Engine, **overrides: Any) -> int:
    values: dict[str, Any] = {
        "actor": "dm@school.example",
        "origin": "dashboard",
        "status": "loaded",
        "generation_before": 3,
        "generation_after": 4,
        "problems": [_problem("warning", 1)],
        "files": [
            {
                "file_name": "students.csv",
                "extract": "students",
                "format": "csv",
                "sha256": "a" * 64,
                "size_bytes": 5 * 1024**3,  # bigger than a 32-bit integer
                "rows": 1234,
                "archived_path": "archive/2025-11-03/students.csv",
            },
            {"file_name": "lessons.xlsx", "extract": "lessons", "format": "xlsx", "rows": 50},
        ],
        "summary": "Loaded 2 files; 1 warning.",
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=42),
    }
    values.update(overrides)
    return record_load(engine, **values)


# --- engine and migrations -------------------------------------------------------------


@pytest.mark.ops_store("sqlite")
def test_fresh_sqlite_file_is_upgraded_to_head_in_wal_mode(empty: Settings) -> None:
    settings = empty
    path = settings.data_dir / "ops.sqlite"
    assert not path.exists()
    engine = open_ops(settings)
    assert path.is_file(), "the data dir and the database file are created"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    # Seen from outside: WAL is a property of the file, and the tables are there.
    with _raw(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
    assert tables == {
        "alembic_version",
        "load_runs",
        "load_files",
        "audit_log",
        *MESSAGING_TABLES,
        *SCHEDULER_TABLES,
        *ALERT_TABLES,
        *USER_TABLES,
    }
    assert head_revision() == HEAD
    assert current_revision(engine) == HEAD


@pytest.mark.ops_store("postgresql")
def test_fresh_postgresql_database_is_upgraded_to_head(empty: Settings) -> None:
    assert _rows(empty, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
    engine = open_ops(empty)
    assert engine.dialect.name == "postgresql"
    tables = {
        r[0] for r in _rows(empty, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    }
    assert tables == {
        "alembic_version",
        "load_runs",
        "load_files",
        "audit_log",
        *MESSAGING_TABLES,
        *SCHEDULER_TABLES,
        *ALERT_TABLES,
        *USER_TABLES,
    }
    assert _rows(empty, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert current_revision(engine) == HEAD
    assert not (empty.data_dir / "ops.sqlite").exists()


def test_indexes_and_constraint_names_follow_the_convention(
    engine: Engine, settings: Settings
) -> None:
    schema = _schema(settings)
    if engine.dialect.name == "sqlite":
        indexes = {
            name for kind, name, _ in schema if kind == "index" and not name.startswith("sqlite_")
        }
        sql = {name: text for _, name, text in schema}
        assert "CONSTRAINT pk_load_runs PRIMARY KEY" in sql["load_runs"]
        assert "CONSTRAINT fk_load_files_load_run_id_load_runs FOREIGN KEY" in sql["load_files"]
        assert "ON DELETE CASCADE" in sql["load_files"]
    else:
        constraints = {name: str(text) for kind, name, text in schema if kind == "constraint"}
        # PostgreSQL backs each primary key and unique constraint with an index of its name.
        indexes = {name for kind, name, _ in schema if kind == "index"} - set(constraints)
        assert constraints["pk_load_runs"] == "load_runs PRIMARY KEY (id)"
        fk = constraints["fk_load_files_load_run_id_load_runs"]
        assert fk.startswith("load_files FOREIGN KEY (load_run_id) REFERENCES load_runs(id)")
        assert "ON DELETE CASCADE" in fk
        assert constraints["uq_absence_notices_day_student_id"].endswith("UNIQUE (day, student_id)")
    assert indexes == INDEXES


def test_upgrade_twice_is_a_no_op(engine: Engine, settings: Settings) -> None:
    run_id = _load(engine)
    before = _schema(settings)
    upgrade(engine)
    other = make_engine(settings.resolved_ops_url)
    upgrade(other)
    other.dispose()
    assert _schema(settings) == before
    assert _rows(settings, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert _rows(settings, "SELECT id FROM load_runs") == [(run_id,)]


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_open_ops_caches_one_engine_per_url(settings: Settings, tmp_path: Path) -> None:
    first = open_ops(settings)
    assert open_ops(Settings(settings.data_dir, env={})) is first
    other = open_ops(Settings(tmp_path / "other", env={}))
    assert other is not first
    assert (tmp_path / "other" / "ops.sqlite").is_file()


def test_ops_url_setting_is_honoured(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "deep" / "store.db"
    settings = Settings(tmp_path / "data", env={"SCHOOLCOMMS_OPS_URL": f"sqlite:///{target}"})
    engine = open_ops(settings)
    assert target.is_file()
    assert current_revision(engine) == HEAD
    assert not (tmp_path / "data" / "ops.sqlite").exists()


def test_ops_url_variable_reaches_postgresql(tmp_path: Path, postgres: Databases) -> None:
    url = postgres.create(template="template0")
    try:
        settings = Settings(tmp_path / "data", env={"SCHOOLCOMMS_OPS_URL": url})
        engine = open_ops(settings)
        assert engine.dialect.name == "postgresql" and engine.driver == "psycopg"
        assert current_revision(engine) == HEAD
        assert not (tmp_path / "data" / "ops.sqlite").exists()
    finally:
        db.close_all()
        postgres.drop(url)


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(LoadFile(load_run_id=999, file_name="x.csv", extract="", format="csv"))


def test_session_scope_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(AuditEntry(actor="cli", action="test", target=""))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(engine, immediate=False) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_ddl_is_transactional(engine: Engine, settings: Settings) -> None:
    """SQLAlchemy emits BEGIN (on SQLite too), so a failed migration leaves nothing half done."""
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (id INTEGER)")
        raise RuntimeError("boom")
    assert not inspect(engine).has_table("scratch")
    assert not any(name == "scratch" for _, name, _ in _schema(settings))


# --- load history --------------------------------------------------------------------


def test_record_load_and_recent_loads_round_trip(engine: Engine) -> None:
    run_id = _load(engine)
    frame = recent_loads(engine)
    assert list(frame.columns) == [
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
    ]
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["id"] == run_id
    assert row["started_at"] == pd.Timestamp(T0)
    assert str(frame["started_at"].dt.tz) == "UTC"
    assert row["actor"] == "dm@school.example"
    assert row["origin"] == "dashboard"
    assert row["status"] == "loaded"
    assert (row["generation_before"], row["generation_after"]) == (3, 4)
    assert (row["error_count"], row["warning_count"]) == (0, 1)
    assert row["files"] == "students.csv, lessons.xlsx"
    assert row["summary"] == "Loaded 2 files; 1 warning."

    with session_scope(engine, immediate=False) as session:
        run = session.get(LoadRun, run_id)
        assert run is not None
        assert run.finished_at == T0 + timedelta(seconds=42)
        assert run.finished_at.tzinfo is not None
        files = [(f.file_name, f.format, f.size_bytes, f.rows, f.archived_path) for f in run.files]
    assert files == [
        ("students.csv", "csv", 5 * 1024**3, 1234, "archive/2025-11-03/students.csv"),
        ("lessons.xlsx", "xlsx", None, 50, None),
    ]


def test_recent_loads_newest_first_with_limit(engine: Engine) -> None:
    ids = [
        _load(
            engine,
            started_at=T0 + timedelta(hours=h),
            finished_at=T0 + timedelta(hours=h, minutes=1),
        )
        for h in (0, 2, 1)
    ]
    frame = recent_loads(engine, limit=2)
    assert list(frame["id"]) == [ids[1], ids[2]]
    assert recent_loads(engine, limit=50)["id"].tolist() == [ids[1], ids[2], ids[0]]


def test_recent_loads_on_an_empty_store_has_the_columns(engine: Engine) -> None:
    frame = recent_loads(engine)
    assert frame.empty
    assert "files" in frame.columns and "started_at" in frame.columns


def test_times_are_stored_as_utc(engine: Engine) -> None:
    bst = timezone(timedelta(hours=1))
    local = datetime(2025, 6, 2, 9, 15, tzinfo=bst)
    run_id = _load(engine, started_at=local, finished_at=local + timedelta(minutes=1))
    row = recent_loads(engine).set_index("id").loc[run_id]
    assert row["started_at"] == pd.Timestamp("2025-06-02 08:15", tz="UTC")
    with pytest.raises(ValueError, match="Naive datetime"):
        _load(engine, started_at=datetime(2025, 6, 2, 9, 15))


def test_refused_load_counts_and_problems(engine: Engine) -> None:
    problems = [_problem("error", 1), _problem("warning", 2), _problem("error", 3, sheet="S1")]
    run_id = _load(
        engine,
        status="refused",
        origin="cli",
        actor="cli",
        generation_after=None,
        problems=problems,
    )
    row = recent_loads(engine).iloc[0]
    assert row["status"] == "refused"
    assert (row["error_count"], row["warning_count"]) == (2, 1)
    assert pd.isna(row["generation_after"])
    frame = load_problems(engine, run_id)
    assert list(frame.columns)[:10] == [
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
    ]
    assert "sheet" in frame.columns
    assert frame["severity"].tolist() == ["error", "warning", "error"]
    assert frame["line"].tolist() == [2, 3, 4]
    assert frame.loc[0, "lines"] == [2]
    assert recent_audit(engine, action="load.refused")["target"].tolist() == [f"load_run:{run_id}"]


def test_report_is_truncated_with_complete_counts(engine: Engine) -> None:
    problems = [_problem("warning", n) for n in range(MAX_REPORT_PROBLEMS + 10)]
    problems.append(_problem("error", 99_999, lines=list(range(5000))))
    run_id = _load(engine, status="refused", problems=problems)
    row = recent_loads(engine).iloc[0]
    assert (row["error_count"], row["warning_count"]) == (1, MAX_REPORT_PROBLEMS + 10)
    frame = load_problems(engine, run_id)
    assert len(frame) == MAX_REPORT_PROBLEMS + 1  # the kept problems and one note
    assert frame.iloc[0]["severity"] == "error", "errors are kept first"
    assert len(frame.iloc[0]["lines"]) < 5000
    assert frame.iloc[-1]["severity"] == "note"
    assert "11 more problems" in frame.iloc[-1]["problem"]


def test_load_problems_of_a_missing_run(engine: Engine) -> None:
    with pytest.raises(LookupError):
        load_problems(engine, 12345)


def test_record_load_validates_its_arguments(engine: Engine) -> None:
    with pytest.raises(ValueError, match="status"):
        _load(engine, status="rolled_back")
    with pytest.raises(ValueError, match="origin"):
        _load(engine, origin="email")
    with pytest.raises(ValueError, match="format"):
        _load(engine, files=[{"file_name": "a.txt", "format": "txt"}])
    with pytest.raises(ValueError, match="Unknown load file keys"):
        _load(engine, files=[{"file_name": "a.csv", "format": "csv", "name": "a"}])
    assert recent_loads(engine).empty, "nothing is written when arguments are wrong"


def test_record_load_writes_its_audit_row(engine: Engine) -> None:
    run_id = _load(engine, status="dry_run", generation_after=None)
    entries = recent_audit(engine)
    assert len(entries) == 1
    entry = entries.iloc[0]
    assert entry["action"] == "load.dry_run"
    assert entry["actor"] == "dm@school.example"
    assert entry["target"] == f"load_run:{run_id}"
    assert entry["details"]["files"] == ["students.csv", "lessons.xlsx"]
    assert entry["at"] == pd.Timestamp(T0 + timedelta(seconds=42))


def test_record_rollback_writes_both_rows(engine: Engine) -> None:
    _load(engine)
    before = datetime.now(UTC)
    run_id = record_rollback(
        engine, actor="head@school.example", generation_before=4, generation_after=3
    )
    after = datetime.now(UTC)
    loads = recent_loads(engine)
    assert loads.iloc[0]["id"] == run_id
    row = loads.iloc[0]
    assert row["status"] == "rolled_back"
    assert row["actor"] == "head@school.example"
    assert (row["generation_before"], row["generation_after"]) == (4, 3)
    assert row["files"] == ""
    assert before <= row["started_at"].to_pydatetime() <= after
    rollbacks = recent_audit(engine, action="rollback")
    assert len(rollbacks) == 1
    entry = rollbacks.iloc[0]
    assert entry["actor"] == "head@school.example"
    assert entry["target"] == f"load_run:{run_id}"
    assert entry["details"]["generation_before"] == 4
    assert entry["details"]["generation_after"] == 3
    assert load_problems(engine, run_id).empty


def test_audit_rows_carry_actor_and_time(engine: Engine) -> None:
    before = datetime.now(UTC)
    audit(
        engine, "dm@school.example", "settings.change", "max_extract_mb", {"old": 4096, "new": 8192}
    )
    audit(engine, "scheduler", "send", "outbox:7")
    after = datetime.now(UTC)
    entries = recent_audit(engine)
    assert entries["actor"].tolist() == ["scheduler", "dm@school.example"]
    assert entries["action"].tolist() == ["send", "settings.change"]
    assert entries.iloc[1]["details"] == {"old": 4096, "new": 8192}
    assert entries.iloc[0]["details"] is None
    for at in entries["at"]:
        assert before <= at.to_pydatetime() <= after
    with pytest.raises(ValueError, match="actor"):
        audit(engine, "  ", "send", "x")


def test_audit_masks_secrets(engine: Engine) -> None:
    audit(
        engine,
        "admin",
        "settings.change",
        "mis_database_url",
        {
            "name": "mis_database_url",
            "old": "",
            "new": "postgresql://u:pw@h/db",
            "smtp_password": "x",
        },
    )
    details = recent_audit(engine).iloc[0]["details"]
    assert details == {"name": "mis_database_url", "old": "", "new": MASK, "smtp_password": MASK}


def test_the_loaded_fixture_brings_its_load_history(loaded: Settings) -> None:
    """conftest's ``loaded`` copies a data dir; on PostgreSQL its rows are copied too."""
    engine = open_ops(loaded)
    [first] = recent_loads(engine).to_dict("records")
    assert (first["status"], first["generation_after"]) == ("loaded", 1)
    assert len(load_problems(engine, first["id"])) == 0
    later = _load(engine)  # the ids go on after the copied ones
    assert later > first["id"] and len(recent_loads(engine)) == 2


# --- concurrency ---------------------------------------------------------------------


def test_threads_writing_at_once_do_not_lock(engine: Engine) -> None:
    """Read-then-write units of work from many threads: none may fail with "locked"."""
    threads_n, per_thread = 8, 15
    barrier = threading.Barrier(threads_n)
    failures: list[str] = []

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with session_scope(engine) as session:
                    # Read first, then write: the pattern that fails with a deferred BEGIN.
                    seen = session.scalar(
                        select(func.count())
                        .select_from(AuditEntry)
                        .where(AuditEntry.action == "test")
                    )
                    session.add(AuditEntry(actor=f"t{n}", action="test", target=str(seen)))
                if i % 5 == 0:
                    _load(engine, actor=f"t{n}")
                    recent_loads(engine, limit=5)
        except Exception:
            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures[0]
    assert len(recent_loads(engine, limit=1000)) == threads_n * 3
    with session_scope(engine, immediate=False) as session:
        tests = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "test")
        )
        targets = session.scalars(select(AuditEntry.target).where(AuditEntry.action == "test"))
        seen = sorted(int(t) for t in targets)
    if engine.dialect.name == "sqlite":
        # BEGIN IMMEDIATE: a read-then-write unit of work holds the lock from its start.
        assert seen == list(range(threads_n * per_thread)), (
            "each unit of work saw all earlier ones (serialised, not interleaved)"
        )
    else:
        # PostgreSQL runs them side by side (READ COMMITTED): no unit waits for another,
        # so two may count the same rows; what must hold is that none failed or was lost.
        assert len(seen) == threads_n * per_thread and max(seen) < threads_n * per_thread
    assert tests == threads_n * per_thread


def _open_in_child(data_dir: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=60)
        engine = open_ops(Settings(data_dir, env={}))
        run_id = record_rollback(engine, actor="child", generation_before=2, generation_after=1)
        results.put(("ok", current_revision(engine), run_id))
    except BaseException:
        results.put(("error", traceback.format_exc(), None))
        raise


def test_two_processes_open_a_fresh_store_at_once(empty: Settings) -> None:
    data_dir = empty.data_dir
    context = multiprocessing.get_context("spawn")
    processes_n = 4
    barrier = context.Barrier(processes_n)
    results = context.Queue()
    processes = [
        context.Process(target=_open_in_child, args=(str(data_dir), barrier, results))
        for _ in range(processes_n)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    errors = [detail for status, detail, _ in outcomes if status != "ok"]
    assert not errors, errors[0]
    assert [process.exitcode for process in processes] == [0] * processes_n
    assert {revision for _, revision, _ in outcomes} == {HEAD}
    assert len({run_id for _, _, run_id in outcomes}) == processes_n
    assert _rows(empty, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert _rows(empty, "SELECT count(*) FROM load_runs") == [(processes_n,)]
    assert _rows(empty, "SELECT count(*) FROM audit_log") == [(processes_n,)]


def test_upgrade_from_the_previous_revision_keeps_the_load_history(empty: Settings) -> None:
    from alembic import command

    from schoolcomms.ops.db import alembic_config

    engine = make_engine(empty.resolved_ops_url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    assert current_revision(engine) == "0001"
    run_id = _load(engine)
    upgrade(engine)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id FROM load_runs").fetchall() == [(run_id,)]
        assert conn.exec_driver_sql("SELECT count(*) FROM messages").scalar() == 0
