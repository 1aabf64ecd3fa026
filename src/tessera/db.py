"""Engines, sessions and the unit of work, for SQLite (embedded default) and PostgreSQL.

SQLite allows one writer at a time. Write transactions start with ``BEGIN IMMEDIATE`` so two
writers queue on the database lock instead of deadlocking after both read, and they share one
pooled connection per process so writers in one process wait in the pool rather than spinning in
SQLite's busy handler. Reads use a separate pool with deferred transactions (WAL lets them run
beside the writer). On PostgreSQL both go through the same asyncpg pool.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import BigInteger, Integer, MetaData, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def async_url(url: str) -> str:
    """``sqlite:///x.db`` / ``postgresql://...`` -> the async driver's URL."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+aiosqlite"):
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if parsed.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///... or postgresql://...")


def _sqlite_engine(url: str, *, writer: bool) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=1 if writer else 8,
        max_overflow=0,
        pool_timeout=120,
        # Readers never open a transaction (below), so there is nothing to roll back on check-in;
        # skipping it saves a round trip through aiosqlite's thread per request.
        pool_reset_on_return="rollback" if writer else None,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start (pysqlite would BEGIN itself).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    if writer:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    # A reader sends no BEGIN: each SELECT is atomic by itself, and with the driver's own
    # transaction handling off (isolation_level None) it runs in autocommit.
    return engine


class Database:
    """The process's connection pools and its unit of work."""

    def __init__(self, url: str, *, pool_size: int = 20, max_overflow: int = 10) -> None:
        """``pool_size`` and ``max_overflow`` size the PostgreSQL pool of this process (SQLite's
        pools are fixed: one writer, a few readers)."""
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(self.url, writer=True)
            self.read_engine = _sqlite_engine(self.url, writer=False)
        else:
            self.write_engine = create_async_engine(self.url, pool_size=pool_size, max_overflow=max_overflow)
            # Same pool; reads run in autocommit, saving the BEGIN and ROLLBACK round trips.
            self.read_engine = self.write_engine.execution_options(isolation_level="AUTOCOMMIT")
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write unit of work: commits when the block ends normally, rolls back on any error.

        Routers return only after this block, so the commit happens before the response is sent.
        """
        async with self._write_sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """For reads: each statement sees the latest committed data (autocommit, no transaction).

        Anything that must see one consistent snapshot, or that writes, uses ``transaction``.
        """
        async with self._read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.is_sqlite:
            await self.read_engine.dispose()


def insert_or_ignore(session: AsyncSession, model: Any, returning: Any = None) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING [RETURNING returning]`` in the session's dialect
    (PostgreSQL and SQLite); a row that conflicts returns nothing.

    Built once per dialect, table and returned column; pass the row values when executing it.
    """
    return _insert_or_ignore(session.get_bind().dialect.name, model, returning)


@functools.cache
def _insert_or_ignore(dialect: str, model: Any, returning: Any) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    statement = (postgresql if dialect == "postgresql" else sqlite).insert(model).on_conflict_do_nothing()
    return statement.returning(returning) if returning is not None else statement


def contains_nul(value: Any) -> bool:
    """True when a string anywhere in this JSON value holds U+0000, which PostgreSQL cannot store."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
