"""Shared fixtures: every database test runs on SQLite and, when TESSERA_TEST_DATABASE_URL points
at PostgreSQL, on PostgreSQL too. A set-but-unreachable PostgreSQL fails the run; it never skips."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from delivery_kit import TESSERA, Api, Mailbox, SmsGateway, SmtpServer, api_for, cli_env, free_port
from tessera import migrate
from tessera import secrets as tessera_secrets
from tessera.app import create_app
from tessera.config import Settings
from tessera.db import Database
from tessera.models import Base
from tessera.tenancy import service as tenancy

POSTGRES_URL = os.environ.get("TESSERA_TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


@pytest.fixture(scope="session", autouse=True)
def cheap_key_hashing() -> Iterator[None]:
    """Department keys (scrypt) and admin passwords (argon2) are hashed at a cost meant to be
    slow; the suite creates thousands of them, so it hashes cheaply (the cost is in each hash)."""
    production_cost, production_hasher = tessera_secrets.SCRYPT_COST, tessera_secrets.PASSWORD_HASHER
    tessera_secrets.SCRYPT_COST = 2**8
    tessera_secrets.PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    yield
    tessera_secrets.SCRYPT_COST = production_cost
    tessera_secrets.PASSWORD_HASHER = production_hasher


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (much faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    """Rebuilds the PostgreSQL test database's schema once per run, through the migrations."""
    assert POSTGRES_URL, "TESSERA_TEST_DATABASE_URL is not set"
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from tessera.db import async_url

    async def reset() -> None:
        engine = create_async_engine(async_url(POSTGRES_URL))
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())
    migrate.upgrade(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "tessera.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
    else:
        yield request.getfixturevalue("postgres_migrated")


#: Empties every table, children first, and restarts every id sequence, in one round trip.
_EMPTY_POSTGRES = (
    "DO $$ BEGIN "
    + " ".join(f"DELETE FROM {table.name};" for table in reversed(Base.metadata.sorted_tables))
    + " PERFORM setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false)"
    + " FROM pg_sequences WHERE schemaname = 'public';"
    + " END $$"
)
VACUUM_EVERY = 50
_postgres_resets = 0


async def outside_a_transaction(db: Database, statement: str) -> None:
    """Runs a statement PostgreSQL refuses inside a transaction block (VACUUM)."""
    async with db.write_engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text(statement))


async def _empty_postgres(db: Database) -> None:
    """The PostgreSQL test database as the migrations left it, before each test.

    DELETE, not TRUNCATE: a TRUNCATE of all the tables gives each table and index a new file and
    rewrites its catalog row, about a hundred per test. On a server without autovacuum (like the
    one this machine runs) that took 90 to 300 ms a test, more as the catalog bloated; the DELETE
    takes about a millisecond after most tests (longer after the few that leave thousands of
    rows). The dead rows it leaves go in a VACUUM every ``VACUUM_EVERY`` tests (a quarter of a
    second). Unlike TRUNCATE it does not wait for a transaction an earlier test left open; every
    fixture that starts a server or a worker stops it before the next test begins.
    """
    global _postgres_resets
    async with db.transaction() as session:
        await session.execute(text(_EMPTY_POSTGRES))
    _postgres_resets += 1
    if _postgres_resets % VACUUM_EVERY == 0:
        await outside_a_transaction(db, "VACUUM")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    if not db.is_sqlite:
        await _empty_postgres(db)
    yield db
    await db.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, token_cache_seconds=0)


@pytest.fixture
async def client(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http:
        yield http


@pytest.fixture
async def department(database: Database) -> tenancy.NewDepartment:
    async with database.transaction() as session:
        return await tenancy.create_department(session, "Main street shop")


class LoyaltyClient:
    """Calls the loyalty face as a logged-in department, the way SailPlay clients do."""

    def __init__(self, http: httpx.AsyncClient, department: tenancy.NewDepartment, token: str) -> None:
        self.http = http
        self.department = department
        self.token = token

    def auth(self) -> dict[str, Any]:
        return {"token": self.token, "store_department_id": self.department.store_department_id}

    async def call(self, path: str, files: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        data = {**self.auth(), **{k: v for k, v in params.items() if v is not None}}
        response = await self.http.post(f"/api/v2/{path.strip('/')}/", data=data, files=files)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def login(http: httpx.AsyncClient, department: tenancy.NewDepartment) -> str:
    response = await http.post(
        "/api/v2/login/",
        data={
            "store_department_id": department.store_department_id,
            "store_department_key": department.store_department_key,
            "pin_code": department.pin_code,
        },
    )
    body = response.json()
    assert body["status"] == "ok", body
    token: str = body["token"]
    return token


@pytest.fixture
async def loyalty(client: httpx.AsyncClient, department: tenancy.NewDepartment) -> LoyaltyClient:
    return LoyaltyClient(client, department, await login(client, department))


# --- the delivery tests' servers (delivery_kit) and the messaging API on them ------------------------


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp(mailbox: Mailbox) -> Iterator[SmtpServer]:
    server = SmtpServer(mailbox, free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def gateway() -> AsyncIterator[SmsGateway]:
    server = SmsGateway()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def delivering(settings: Settings, smtp: SmtpServer, gateway: SmsGateway) -> Settings:
    """Both channels configured, tiny backoff, five attempts, codes of failures back at once."""
    return settings.model_copy(
        update={
            "smtp_url": smtp.url,
            "sms_url": gateway.url,
            "delivery_backoff_cap_seconds": 0.05,
            "delivery_max_attempts": 5,
            # A failed delivery's codes go back in the pass that fails it (tests of the wait set it).
            "delivery_code_return_seconds": 0.0,
        }
    )


@pytest.fixture
async def api(client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment) -> Api:
    return await api_for(client, database, department.partner_id)


@pytest.fixture
async def worker_database(
    database_url: str, database: Database, tmp_path: Path
) -> AsyncIterator[tuple[str, Database]]:
    """SQLite: a fresh file migrated by ``tessera migrate``; PostgreSQL: the test database."""
    if not database.is_sqlite:
        yield database_url, database
        return
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    migrating = await asyncio.create_subprocess_exec(
        str(TESSERA),
        "migrate",
        env=cli_env(url),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await migrating.communicate()
    assert migrating.returncode == 0, output.decode()
    fresh = Database(url)
    yield url, fresh
    await fresh.dispose()
