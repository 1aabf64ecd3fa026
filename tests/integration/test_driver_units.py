"""The driver's units of work (db.read / db.write, tessera.sql) on both databases."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from tessera.clock import utcnow
from tessera.customers import repository as customers
from tessera.db import Database
from tessera.tenancy import service as tenancy


class Boom(Exception):
    pass


async def test_a_tag_id_is_remembered_only_once_its_unit_of_work_commits(
    database: Database, department: tenancy.NewDepartment
) -> None:
    partner_id = department.partner_id
    with pytest.raises(Boom):
        async with database.write() as conn:
            await customers.ensure_tags(conn, partner_id, ["VIP"], utcnow())
            assert conn.known.get(("tag", partner_id, "VIP")) is None  # not before the commit
            raise Boom()
    async with database.write() as conn:
        assert ("tag", partner_id, "VIP") not in conn.known
        again = await customers.ensure_tags(conn, partner_id, ["VIP"], utcnow())
    # The rolled-back tag is gone: the id handed out now is a new row's, and it is remembered.
    async with database.read() as conn:
        assert conn.known[("tag", partner_id, "VIP")] == again["VIP"]
        rows = await conn.fetchall(customers._TAG_ID, partner_id=partner_id, name="VIP")
    assert [int(row[0]) for row in rows] == [again["VIP"]]


async def test_a_failed_unit_of_work_writes_nothing(
    database: Database, department: tenancy.NewDepartment
) -> None:
    with pytest.raises(Boom):
        async with database.write() as conn:
            await customers.ensure_tags(conn, department.partner_id, ["Gone"], utcnow())
            raise Boom()
    async with database.read() as conn:
        assert await conn.fetchval(customers._TAG_ID, partner_id=department.partner_id, name="Gone") is None


async def test_write_one_commits_each_statement_on_postgresql_and_the_block_on_sqlite(
    database: Database, department: tenancy.NewDepartment
) -> None:
    """``write_one`` saves PostgreSQL the BEGIN and COMMIT round trips: its statement commits on
    its own, so a failure after it keeps it. On SQLite it is one unit of work, as ``write``."""
    with pytest.raises(Boom):
        async with database.write_one() as conn:
            await customers.ensure_tags(conn, department.partner_id, ["Kept"], utcnow())
            raise Boom()
    async with database.read() as conn:
        kept = await conn.fetchval(customers._TAG_ID, partner_id=department.partner_id, name="Kept")
    assert (kept is None) == database.is_sqlite


async def test_atomic_commits_its_writes_together_in_write_one(
    database: Database, department: tenancy.NewDepartment
) -> None:
    with pytest.raises(Boom):
        async with database.write_one() as conn, conn.atomic():
            await customers.ensure_tags(conn, department.partner_id, ["First", "Second"], utcnow())
            raise Boom()
    async with database.read() as conn:
        for name in ("First", "Second"):
            assert await conn.fetchval(customers._TAG_ID, partner_id=department.partner_id, name=name) is None
    # Inside a unit of work, atomic adds nothing: the unit's own rollback undoes the block.
    with pytest.raises(Boom):
        async with database.write() as conn:
            async with conn.atomic():
                await customers.ensure_tags(conn, department.partner_id, ["Third"], utcnow())
            raise Boom()
    async with database.read() as conn:
        assert await conn.fetchval(customers._TAG_ID, partner_id=department.partner_id, name="Third") is None


async def test_a_writer_waits_for_another_process_writer_on_the_loop(
    database: Database, department: tenancy.NewDepartment
) -> None:
    """Another process's write transaction (here another connection to the file) holds the lock:
    the writer waits with the loop free, and writes once the lock is let go."""
    if not database.is_sqlite:
        pytest.skip("PostgreSQL writers wait on row locks, not on a database lock")
    other = sqlite3.connect(database.url.removeprefix("sqlite+aiosqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def tag() -> None:
        async with database.write() as conn:
            await customers.ensure_tags(conn, department.partner_id, ["Waited"], utcnow())

    writing = asyncio.create_task(tag())
    for _ in range(50):
        await asyncio.sleep(0.001)
    assert not writing.done()  # still waiting for the lock, while the loop went round 50 times
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writing, 5)

    async with database.read() as conn:
        written = await conn.fetchval(customers._TAG_ID, partner_id=department.partner_id, name="Waited")
    assert written is not None
