"""TESSERA_DATABASE_POOL_SIZE / _OVERFLOW size each process's PostgreSQL pool, so that many API
processes and workers fit under the server's max_connections."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from conftest import POSTGRES_URL
from tessera.config import Settings


async def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_POOL_SIZE", "4")
    monkeypatch.setenv("TESSERA_DATABASE_POOL_OVERFLOW", "0")
    settings = Settings()
    assert (settings.database_pool_size, settings.database_pool_overflow) == (4, 0)


@pytest.mark.skipif(not POSTGRES_URL, reason="needs TESSERA_TEST_DATABASE_URL (SQLite's pools are fixed)")
async def test_a_pool_never_opens_more_than_size_plus_overflow() -> None:
    database = Settings(database_url=POSTGRES_URL, database_pool_size=2, database_pool_overflow=1).database()
    database.write_engine.pool._timeout = 0.5  # type: ignore[attr-defined]
    held = [await database.write_engine.connect() for _ in range(3)]
    try:
        for connection in held:
            await connection.execute(text("SELECT 1"))
        with pytest.raises(PoolTimeout):
            await asyncio.wait_for(database.write_engine.connect(), timeout=10)
    finally:
        for connection in held:
            await connection.close()
        await database.dispose()
