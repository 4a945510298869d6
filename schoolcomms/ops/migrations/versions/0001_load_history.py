"""Load history and audit log: load_runs, load_files, audit_log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Hand-written. Constraint and index names follow the naming convention in
schoolcomms.ops.models (pk_<table>, fk_<table>_<column>_<referred table>,
ix_<table>_<column>), spelled out here so they never depend on the database.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the load history and audit log tables."""
    op.create_table(
        "load_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("generation_before", sa.Integer(), nullable=True),
        sa.Column("generation_after", sa.Integer(), nullable=True),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("warning_count", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_load_runs"),
    )
    op.create_index("ix_load_runs_started_at", "load_runs", ["started_at"])

    op.create_table(
        "load_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("load_run_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=512), nullable=False),
        sa.Column("extract", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("archived_path", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(
            ["load_run_id"],
            ["load_runs.id"],
            name="fk_load_files_load_run_id_load_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_load_files"),
    )
    op.create_index("ix_load_files_load_run_id", "load_files", ["load_run_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    """Drop the tables (their history is lost)."""
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_load_files_load_run_id", table_name="load_files")
    op.drop_table("load_files")
    op.drop_index("ix_load_runs_started_at", table_name="load_runs")
    op.drop_table("load_runs")
