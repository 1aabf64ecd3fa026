"""delivery codes go back to the pool a while after their delivery fails, not at once

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 01:40:00.000000

``delivery_codes.return_at``: when a code of a delivery that failed for good goes back to its
pool (the lease plus the send timeout after the failure), so that a worker whose lease lapsed
mid-send, and which may still deliver the message, can record its success first and keep the
code with its recipient. Set only while the return waits; the partial index is what the
worker's sweep reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("return_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("delivery_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("return_at", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_delivery_codes_return_at",
        "delivery_codes",
        ["return_at"],
        unique=False,
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_delivery_codes_return_at",
        table_name="delivery_codes",
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )
    with op.batch_alter_table("delivery_codes", schema=None) as batch_op:
        batch_op.drop_column("return_at")
