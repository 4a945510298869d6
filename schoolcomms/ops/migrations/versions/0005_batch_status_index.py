"""An index on messages (batch_id, status): finishing a batch stays cheap as it grows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

Hand-written.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ix_messages_batch_id_status."""
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_batch_id_status", ["batch_id", "status"], unique=False)


def downgrade() -> None:
    """Drop ix_messages_batch_id_status."""
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_batch_id_status")
