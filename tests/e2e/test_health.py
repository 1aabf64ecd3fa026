"""SPEC §9: /healthz while the process runs; /readyz only with the database up and its schema at
the latest migration."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from tessera import migrate
from tessera.db import Database


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_answers_ok_with_the_schema_at_the_latest_migration(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "schema": await migrate.head_revision()}


async def test_readyz_answers_503_while_the_schema_is_behind(
    client: httpx.AsyncClient, database: Database
) -> None:
    head = await migrate.head_revision()
    async with database.transaction() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        response = await client.get("/readyz")
    finally:
        async with database.transaction() as session:
            await session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and "tessera migrate" in body["reason"], body


async def test_readyz_answers_503_when_the_database_has_no_schema(tmp_path: object) -> None:
    from pathlib import Path

    from tessera.app import create_app
    from tessera.config import Settings

    url = f"sqlite:///{Path(str(tmp_path)) / 'empty.db'}"
    empty = Database(url)
    app = create_app(Settings(database_url=url), empty)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        response = await http.get("/readyz")
    await empty.dispose()
    assert response.status_code == 503
    assert "tessera migrate" in response.json()["reason"]
