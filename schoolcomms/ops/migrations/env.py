"""Alembic environment for the ops store (online mode only).

:func:`schoolcomms.ops.db.upgrade` passes an open connection, already inside a
transaction, as ``config.attributes["connection"]``. Run from the ``alembic`` command
line instead (``alembic -c schoolcomms/ops/alembic.ini revision --autogenerate -m …``),
the URL comes from ``-x url=…``, else ``sqlalchemy.url`` in the ini file, else the
settings (``SCHOOLCOMMS_OPS_URL`` / ``SCHOOLCOMMS_DATA_DIR``).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from schoolcomms.ops.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our column types as plain SQLAlchemy types in generated migrations."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_with(connection: Connection) -> None:
    """Configure the migration context on ``connection`` and run the migrations."""
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        # schoolcomms.ops.db makes SQLite DDL transactional (SQLAlchemy emits BEGIN).
        transactional_ddl=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the connection given by the caller, or open one from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return

    from schoolcomms.ops.db import make_engine, set_sqlite_foreign_keys
    from schoolcomms.settings import load_settings

    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = make_engine(url or load_settings().resolved_ops_url)
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # Batch migrations rebuild tables; cascades must not fire meanwhile.
                set_sqlite_foreign_keys(conn, False)
            try:
                run_with(conn)
                conn.commit()
            finally:
                if sqlite:
                    set_sqlite_foreign_keys(conn, True)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("The ops store migrations run online only; drop --sql.")
run_migrations_online()
