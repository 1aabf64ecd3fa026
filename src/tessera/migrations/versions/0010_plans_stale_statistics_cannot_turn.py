"""indexes that stale statistics cannot misuse: customers' unique keys led by the identifier,
the due indexes in the claims' order

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 21:55:00.000000

Both found by the smartsend-with-codes benchmark on PostgreSQL, where statistics lag bulk writes:
- ``(partner_id, phone|email|origin_user_id)`` all match ``partner_id = ?``; with statistics from
  when ``customers`` was empty, an email look-up ran on the phone (or origin-user-id) key and
  read every customer of the partner. Led by the identifier, each key serves only the look-up it is for.
- the due indexes held ``available_at`` alone, so a claim sorted every due row by
  ``(available_at, id)`` before taking its batch.

On PostgreSQL this holds an exclusive lock on ``customers`` while its three unique keys are
rebuilt, and blocks writes to ``deliveries`` and ``workflow_runs`` while their due indexes are:
on a large database, apply it when the service is quiet.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IDENTIFIERS = ("phone", "email", "origin_user_id")
DUE_INDEXES = (
    ("ix_deliveries_due", "deliveries", "queued"),
    ("ix_workflow_runs_due", "workflow_runs", "active"),
)


def _customer_keys(*, led_by_identifier: bool) -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for identifier in IDENTIFIERS:
            old = ["partner_id", identifier] if led_by_identifier else [identifier, "partner_id"]
            batch_op.drop_constraint(op.f(f"uq_customers_{'_'.join(old)}"), type_="unique")
            batch_op.create_unique_constraint(op.f(f"uq_customers_{'_'.join(old[::-1])}"), old[::-1])


def _due_indexes(columns: list[str]) -> None:
    for name, table, status in DUE_INDEXES:
        where = sa.text(f"status = '{status}'")
        op.drop_index(name, table_name=table, postgresql_where=where, sqlite_where=where)
        op.create_index(name, table, columns, unique=False, postgresql_where=where, sqlite_where=where)


def upgrade() -> None:
    _customer_keys(led_by_identifier=True)
    _due_indexes(["available_at", "id"])


def downgrade() -> None:
    _due_indexes(["available_at"])
    _customer_keys(led_by_identifier=False)
