"""Opening the ops store: engines, migrations and sessions.

SQLite (the embedded default) is set up for several processes and threads at once:

- every connection runs ``PRAGMA busy_timeout=10000``, ``journal_mode=WAL`` and
  ``foreign_keys=ON``;
- SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN``, so every statement (DDL
  and SELECT included) is inside a real transaction. Plain connections begin
  ``DEFERRED`` (readers never block and are never blocked, thanks to WAL); sessions
  from :func:`session_scope` begin ``IMMEDIATE`` so that a read-then-write unit of
  work waits for the write lock (up to the busy timeout) instead of failing at once
  with "database is locked".

To write with Core instead of a session, use ``write_engine(engine).begin()``.

PostgreSQL (``postgresql+psycopg://…``) needs none of this; migrations there are
serialised with an advisory lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from schoolcomms.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Execution option read by the SQLite "begin" hook: "DEFERRED" (default) or "IMMEDIATE".
SQLITE_BEGIN_OPTION = "schoolcomms_sqlite_begin"
# Arbitrary constant key for pg_advisory_xact_lock around migrations.
PG_MIGRATION_LOCK_KEY = 0x5C400001
UPGRADE_ATTEMPTS = 3

_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()


def _is_memory_sqlite(database: str | None) -> bool:
    return not database or database == ":memory:" or database.startswith("file:")


def make_engine(url: str) -> Engine:
    """An engine for the ops store at ``url``, set up for concurrent use.

    For SQLite the parent directory of the database file is created, each new
    connection gets ``busy_timeout``, WAL journal mode and foreign keys, and the
    connection pool may be shared between threads (Streamlit runs each session in
    its own thread). Any other URL gets ``create_engine(url, pool_pre_ping=True)``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    database = parsed.database
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if not _is_memory_sqlite(database):
        assert database is not None
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # One connection per busy thread; WAL lets readers run alongside the writer.
        kwargs.update(pool_size=5, max_overflow=15, pool_timeout=30)
    engine = create_engine(parsed, **kwargs)
    _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN (see the "begin" hook), so that DDL and SELECTs are
        # transactional too. PRAGMAs here run outside any transaction, as they must.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so that switching to WAL waits for other processes.
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        mode = str(options.get(SQLITE_BEGIN_OPTION, "DEFERRED")).upper()
        if mode not in {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}:
            raise ValueError(f"{SQLITE_BEGIN_OPTION} must be DEFERRED or IMMEDIATE, not {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")


def write_engine(engine: Engine) -> Engine:
    """``engine`` set so that each transaction takes the write lock at BEGIN on SQLite.

    Use it for any unit of work that reads and then writes. On other databases it
    returns ``engine`` unchanged.
    """
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})


def alembic_config() -> Config:
    """An Alembic configuration for the ops store migrations, built in code (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The revision id the ops store is at once :func:`upgrade` has run."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"The ops store migrations have {len(heads)} heads: {heads}")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    """The revision the database at ``engine`` is at, or None if it was never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _transient(exc: DBAPIError) -> bool:
    message = str(exc.orig or exc).lower()
    return any(
        phrase in message
        for phrase in ("already exists", "database is locked", "database table is locked", "busy")
    )


def upgrade(engine: Engine) -> None:
    """Migrate the ops store at ``engine`` to the newest revision (idempotent).

    Safe to call at every start-up and from several processes at once: when the
    store is already at head it only reads; otherwise the migration runs in one
    transaction holding the write lock (``BEGIN IMMEDIATE`` on SQLite, an advisory
    lock on PostgreSQL), so a second process waits and then finds nothing to do. A
    lock timeout or an "already exists" race is retried. On SQLite, foreign keys are
    switched off while migrating (batch migrations rebuild tables, and dropping a
    referenced table with foreign keys on would cascade) and checked before commit.
    """
    config = alembic_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    for attempt in range(1, UPGRADE_ATTEMPTS + 1):
        try:
            _upgrade_once(engine, config, heads)
            return
        except DBAPIError as exc:
            if attempt == UPGRADE_ATTEMPTS or not _transient(exc):
                raise
            log.warning("Ops store migration attempt %d failed (%s); retrying", attempt, exc)
            time.sleep(0.5 * attempt)


def _upgrade_once(engine: Engine, config: Config, heads: set[str]) -> None:
    with engine.connect() as conn:
        with conn.begin():
            if set(MigrationContext.configure(conn).get_current_heads()) == heads:
                return
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn = conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            set_sqlite_foreign_keys(conn, False)
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
                    )
                config.attributes["connection"] = conn
                try:
                    command.upgrade(config, "head")
                finally:
                    config.attributes.pop("connection", None)
                if sqlite:
                    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if bad:
                        raise RuntimeError(
                            f"Ops store migration left rows breaking foreign keys: {bad[:10]}"
                        )
        finally:
            if sqlite:
                try:
                    set_sqlite_foreign_keys(conn, True)
                except Exception:
                    # Never hand a connection without foreign keys back to the pool.
                    conn.invalidate()
                    raise


def set_sqlite_foreign_keys(conn: Connection, enabled: bool) -> None:
    """Switch SQLite foreign key enforcement on ``conn``; call it outside a transaction.

    The PRAGMA goes to the raw connection, because inside a transaction (which any
    statement through ``conn`` would begin) SQLite silently ignores it.
    """
    if conn.in_transaction():
        raise RuntimeError("PRAGMA foreign_keys has no effect inside a transaction")
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
    finally:
        cursor.close()


def open_ops(settings: Settings) -> Engine:
    """The ops store engine for ``settings``, migrated to head; one engine per URL per process."""
    url = settings.resolved_ops_url
    key = (os.getpid(), url)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = make_engine(url)
            try:
                upgrade(engine)
            except BaseException:
                engine.dispose()
                raise
            _engines[key] = engine
        return engine


def close_all() -> None:
    """Dispose of every engine :func:`open_ops` cached in this process (tests, shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(engine: Engine, *, immediate: bool = True) -> Iterator[Session]:
    """A session that commits when the block ends, or rolls back if it raises.

    With ``immediate`` (the default) the SQLite transaction takes the write lock at
    its start, so read-then-write work waits its turn rather than failing with
    "database is locked"; pass ``immediate=False`` for read-only work. Objects stay
    usable after the commit (``expire_on_commit=False``).
    """
    bind = write_engine(engine) if immediate else engine
    session = Session(bind=bind, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
