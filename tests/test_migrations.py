"""Alembic migrations of the ops store, on SQLite and on PostgreSQL.

From an empty database to head the schema must match the models. For each revision,
a database at the revision before it gets a representative row in every table (every
column filled, foreign keys pointing at real rows); upgrading to the revision and then
on to head must keep every row as it was, leave a schema that matches the models, and
leave the tables writable (on PostgreSQL: the id sequences still ahead of the rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from postgres import DataDirs
from sqlalchemy import Column, Engine, MetaData, inspect, select

from schoolcomms.ops.db import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    set_sqlite_foreign_keys,
    upgrade,
)
from schoolcomms.ops.models import Base
from schoolcomms.settings import Settings

# Oldest first: 0001, 0002, …, head.
REVISIONS = [
    script.revision
    for script in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
]
WHEN = dt.datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=dt.UTC)
# Every test runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store

Rows = dict[str, list[dict[str, Any]]]


@pytest.fixture
def engine(tmp_path: Path, ops_data_dir: DataDirs) -> Iterator[Engine]:
    """An ops store that was never opened: no SQLite file yet, or an empty database."""
    folder = ops_data_dir(tmp_path / "data", template="template0")
    engine = make_engine(Settings(folder, env={}).resolved_ops_url)
    yield engine
    engine.dispose()


def upgrade_to(engine: Engine, revision: str) -> None:
    """Migrate to ``revision`` in one transaction, as :func:`db.upgrade` does for head."""
    config = alembic_config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            set_sqlite_foreign_keys(conn, False)  # batch migrations rebuild tables
        try:
            with conn.begin():
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                if sqlite:
                    assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        finally:
            config.attributes.pop("connection", None)
            if sqlite:
                set_sqlite_foreign_keys(conn, True)
    assert current_revision(engine) == revision


def reflect(engine: Engine) -> MetaData:
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.remove(metadata.tables["alembic_version"])
    return metadata


def value(column: Column[Any], tag: str, parents: dict[str, int]) -> Any:
    """A value for ``column`` of its own type, distinct for each ``tag``."""
    for fk in column.foreign_keys:
        return parents[fk.column.table.name]
    try:
        kind = column.type.python_type
    except NotImplementedError:  # pragma: no cover - every ops type has one today
        kind = str
    if kind is bool:
        return True
    if kind is int:
        return 7
    if kind is float:
        return 1.25
    if kind is Decimal:
        return Decimal("1.25")
    if kind is dt.datetime:
        return WHEN
    if kind is dt.date:
        return WHEN.date()
    if kind is dict:
        return {"tag": tag, "list": [1, "two", None], "nested": {"ok": True}}
    if kind is list:
        return [tag, 2]
    if kind is bytes:
        return tag.encode()
    text = f"{tag}.{column.table.name}.{column.name}"
    length = getattr(column.type, "length", None)
    return text[:length] if length else text


def put_rows(engine: Engine, tag: str) -> None:
    """One row in every table (ids left to the database), parents before children."""
    metadata = reflect(engine)
    parents: dict[str, int] = {}
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            row = {
                c.name: value(c, tag, parents)
                for c in table.columns
                if c is not table.autoincrement_column
            }
            key = conn.execute(table.insert().values(row)).inserted_primary_key
            parents[table.name] = key[0]


def read_rows(engine: Engine) -> Rows:
    metadata = reflect(engine)
    with engine.connect() as conn:
        return {
            table.name: [
                dict(r) for r in conn.execute(select(table).order_by(*table.primary_key)).mappings()
            ]
            for table in metadata.sorted_tables
        }


def assert_kept(before: Rows, after: Rows, step: str) -> None:
    """Every row of ``before`` is in ``after`` unchanged (new columns may be added)."""
    for table, rows in before.items():
        assert table in after, f"{step}: table {table} is gone"
        kept = [{k: row[k] for k in rows[0]} for row in after[table]] if rows else []
        assert kept[: len(rows)] == rows, f"{step}: the rows of {table} changed"


def assert_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert set(inspect(engine).get_table_names()) == {*Base.metadata.tables, "alembic_version"}


def test_there_is_one_line_of_revisions() -> None:
    assert REVISIONS[-1] == head_revision() and len(set(REVISIONS)) == len(REVISIONS)


def test_empty_to_head_matches_the_models(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert_matches_the_models(engine)
    put_rows(engine, "head")  # every table takes a row
    upgrade(engine)  # a second start-up changes nothing
    assert current_revision(engine) == head_revision()


@pytest.mark.parametrize("revision", REVISIONS[1:])
def test_upgrading_keeps_the_rows_of_the_revision_before(engine: Engine, revision: str) -> None:
    previous = REVISIONS[REVISIONS.index(revision) - 1]
    upgrade_to(engine, previous)
    put_rows(engine, previous)
    before = read_rows(engine)
    assert all(len(rows) == 1 for rows in before.values())
    upgrade_to(engine, revision)
    assert_kept(before, read_rows(engine), f"{previous} → {revision}")
    upgrade(engine)  # on to head, as at start-up
    assert_kept(before, read_rows(engine), f"{previous} → head")
    assert_matches_the_models(engine)
    put_rows(engine, "head")  # still writable: ids do not collide with the kept rows
    after = read_rows(engine)
    assert all(len(rows) >= 2 for name, rows in after.items() if name in before)
