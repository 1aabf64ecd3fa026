"""Plans that statistics lagging a bulk write cannot turn.

Each statement here once ran orders of magnitude slower on PostgreSQL when its table had been
analyzed before a bulk write (this machine runs without autovacuum, and a production database
meets the same between a campaign's upload and autovacuum's next pass). Each test analyzes the
table while it is empty, writes in bulk, and reads the plan: the statement must reach its rows
through the key it is written for, whatever the statistics say.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from conftest import outside_a_transaction
from delivery_kit import Api
from tessera.clock import utcnow
from tessera.customers import repository as customer_repository
from tessera.customers.identifiers import IdentifierKind
from tessera.db import Database
from tessera.messaging import repository as messaging_repository
from tessera.tenancy import service as tenancy


async def analyze_while_empty(database: Database, table: str) -> None:
    """What the statistics look like when a table was analyzed (or vacuumed) before a bulk write."""
    if database.is_sqlite:
        async with database.transaction() as session:
            await session.execute(text(f"ANALYZE {table}"))
        return
    await outside_a_transaction(database, f"VACUUM ANALYZE {table}")


async def test_a_batch_of_contacts_is_looked_up_on_the_email_key(
    database: Database, department: tenancy.NewDepartment
) -> None:
    """On statistics from an empty ``customers``, PostgreSQL ran the batch look-up by email on the
    phone or origin-user-id key with ``partner_id`` as its only condition, reading every customer of the
    partner: 39 ms a batch of 200 in the smartsend-with-codes benchmark."""
    await analyze_while_empty(database, "customers")
    emails = [f"buyer{n:05d}@example.com" for n in range(3_000)]
    async with database.write() as conn:
        await customer_repository.add_by(conn, department.partner_id, IdentifierKind.EMAIL, emails, utcnow())

    async with database.read() as conn:
        found = await customer_repository.ids_by(
            conn, department.partner_id, IdentifierKind.EMAIL, [emails[7], "nobody@example.com"]
        )
        rows = await conn.fetchall(
            customer_repository.IDS_BY[IdentifierKind.EMAIL].explained(),
            partner_id=department.partner_id,
            values=[emails[7]],
        )
    plan = "\n".join(str(row[-1]) for row in rows)

    assert list(found) == [emails[7]]
    if database.is_sqlite:
        assert "(email=? AND partner_id=?)" in plan, plan
    else:
        assert "Index Cond: (((email)::text = given.value) AND (partner_id =" in plan, plan
        assert "phone" not in plan and "origin_user_id" not in plan, plan


async def test_a_delivery_claim_reads_one_batch_in_order_and_leases_it_by_key(
    api: Api, database: Database
) -> None:
    """The claim sorted every due delivery when its index held ``available_at`` alone, and, with a
    status condition on the UPDATE that the partial due index implied, PostgreSQL joined every
    due row against the batch (a nested loop: 0.7 s a claim with 10,000 due)."""
    await analyze_while_empty(database, "deliveries")
    message_id = await api.email_message("<p>Hello</p>")
    await api.smartsend(message_id, [(f"buyer{n}@example.com", {}) for n in range(1_000)])

    statement = messaging_repository.claim_deliveries_statement(
        ["email"], utcnow() + timedelta(seconds=1), timedelta(minutes=1), 100
    )
    async with database.transaction() as session:
        dialect = session.get_bind().dialect
        sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        explain = "EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN "
        plan = "\n".join(str(row[-1]) for row in await session.execute(text(explain + sql)))

    if database.is_sqlite:
        assert "TEMP B-TREE" not in plan, plan
        assert "ix_deliveries_due" in plan and "INTEGER PRIMARY KEY" in plan, plan
    else:
        picks, update = plan.split("CTE Scan on due")[0], plan.split("CTE Scan on due")[-1]
        assert "ix_deliveries_due" in picks and "Sort" not in picks, plan
        assert "pk_deliveries" in update and "ix_deliveries_due" not in update, plan
