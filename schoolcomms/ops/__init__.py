"""The ops store: what the system does, kept in SQLAlchemy (SQLite in WAL mode, or PostgreSQL).

- :mod:`schoolcomms.ops.db` opens the store (``open_ops``), runs the Alembic migrations in
  ``schoolcomms/ops/migrations`` to head and hands out transactional sessions.
- :mod:`schoolcomms.ops.models` holds the declarative models and the shared ``Base``.
- :mod:`schoolcomms.ops.history` records and reads load history and the audit log.

The warehouse (DuckDB snapshots) is a separate store and is never opened from here.
"""
