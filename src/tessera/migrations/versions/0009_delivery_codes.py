"""delivery codes: promo codes claimed for deliveries

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 19:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "delivery_codes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("delivery_id", BIG_ID, nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("promocode_id", BIG_ID, nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("returned_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_delivery_codes_delivery_id_deliveries")
        ),
        sa.ForeignKeyConstraint(
            ["promocode_id"], ["promocodes.id"], name=op.f("fk_delivery_codes_promocode_id_promocodes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_codes")),
        sa.UniqueConstraint(
            "delivery_id", "group_name", name=op.f("uq_delivery_codes_delivery_id_group_name")
        ),
    )
    op.create_index("ix_delivery_codes_promocode_id", "delivery_codes", ["promocode_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_codes_promocode_id", table_name="delivery_codes")
    op.drop_table("delivery_codes")
