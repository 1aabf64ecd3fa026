"""SPEC §2: secrets are stored only as hashes. Read back from the database after each is made:
department keys, login tokens, API keys and admin passwords never appear in any column of any table.
(PINs are not secrets of this kind: SailPlay's login answers them in clear.)"""

from __future__ import annotations

import httpx
from sqlalchemy import select

from conftest import login
from tessera.admin import service as admin_service
from tessera.db import Database
from tessera.models import Base
from tessera.tenancy import service as tenancy


async def every_stored_value(database: Database) -> str:
    """Every column of every row of every table, as text."""
    async with database.reading() as session:
        rows = [
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in (await session.execute(select(table))).all()
        ]
    return "\n".join(rows)


async def test_keys_tokens_api_keys_and_passwords_are_stored_only_as_hashes(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        department = await tenancy.create_department(session, "Hashed shop")
        api_key = await tenancy.create_api_key(session, department.partner_id)
        await admin_service.create_admin(
            session, department.partner_id, "anna@shop.example", "Sesame-Open-42"
        )
    token = await login(client, department)

    stored = await every_stored_value(database)
    assert "Hashed shop" in stored  # the dump does see what is stored in clear
    for secret in (department.store_department_key, token, api_key, "Sesame-Open-42"):
        assert secret not in stored, f"{secret[:6]}… is stored in clear"
    # The key's readable prefix is stored to tell keys apart, never the rest.
    assert api_key[: len(f"tsk_{department.partner_id}_") + 4] in stored
    assert api_key.split("_")[-1] not in stored
