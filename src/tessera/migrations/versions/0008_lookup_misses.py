"""lookup misses

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 16:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lookup_misses",
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_lookup_misses_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("partner_id", "client", "minute", name=op.f("pk_lookup_misses")),
    )


def downgrade() -> None:
    op.drop_table("lookup_misses")
