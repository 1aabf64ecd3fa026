"""Connections and units of work, for SQLite (embedded default) and PostgreSQL.

Two ways in, one database:

- ``read()`` and ``write()`` hand out a ``sql.Conn`` on the driver itself, for the hot paths
  (see ``tessera.sql``). On SQLite these are two ``sqlite3`` connections used on the event loop;
  on PostgreSQL, an asyncpg pool.
- ``reading()`` and ``transaction()`` hand out an SQLAlchemy ``AsyncSession``, for the cold paths
  (uploads, admin pages, the worker) and everything that needs the ORM.

SQLite allows one writer at a time. Write transactions start with ``BEGIN IMMEDIATE`` so two
writers queue on the database lock instead of deadlocking after both read. In one process every
writer, of either kind, first takes the process's write lock, so they wait for each other on the
event loop rather than in SQLite's busy handler; across processes ``BEGIN IMMEDIATE`` is retried
with short sleeps that yield the loop. A ``write()`` unit of work never awaits real I/O between
its ``BEGIN IMMEDIATE`` and its ``COMMIT``: it runs to completion in one step of the loop, which
is why it can run on the loop at all (docs/decisions.md, "SQLite on the event loop"). Reads use
separate connections in autocommit (WAL lets them run beside the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import BigInteger, Integer, MetaData, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from tessera import sql

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


def _sqlite_pragmas(busy_timeout_ms: int) -> tuple[str, ...]:
    """Every SQLite connection's settings, SQLAlchemy's and the driver's own alike."""
    return (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA busy_timeout={busy_timeout_ms}",
        "PRAGMA foreign_keys=ON",
        "PRAGMA synchronous=NORMAL",
    )


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
        for pragma in _sqlite_pragmas(busy_timeout_ms=30000):
            cursor.execute(pragma)
        cursor.close()

    if writer:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    # A reader sends no BEGIN: each SELECT is atomic by itself, and with the driver's own
    # transaction handling off (isolation_level None) it runs in autocommit.
    return engine


#: How long a writer waits for another process's write transaction before giving up.
SQLITE_BUSY_SECONDS = 30.0


def _open_sqlite(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=512)
    for pragma in _sqlite_pragmas(busy_timeout_ms):
        connection.execute(pragma)
    return connection


async def _reset_pooled(connection: Any) -> None:
    """Released to the pool: only an unfinished transaction needs undoing. Nothing here sets
    session state (LISTEN, advisory locks, SET), so asyncpg's full reset would be a wasted round
    trip on every request."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


class Database:
    """The process's connections and its units of work (see the module docstring)."""

    def __init__(self, url: str, *, pool_size: int = 20, max_overflow: int = 10) -> None:
        """``pool_size`` and ``max_overflow`` size the PostgreSQL pools of this process (SQLite's
        connections are fixed: one writer and a few readers per process)."""
        self.url = async_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self._pool_size = pool_size
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(self.url, writer=True)
            self.read_engine = _sqlite_engine(self.url, writer=False)
            self._sqlite_path = parsed.database or ":memory:"
        else:
            self.write_engine = create_async_engine(self.url, pool_size=pool_size, max_overflow=max_overflow)
            # Same pool; reads run in autocommit, saving the BEGIN and ROLLBACK round trips.
            self.read_engine = self.write_engine.execution_options(isolation_level="AUTOCOMMIT")
            self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()
        self._sqlite_reader: sqlite3.Connection | None = None
        self._sqlite_writer: sqlite3.Connection | None = None
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        #: See ``sql.Conn.known``.
        self._known: dict[Any, Any] = {}

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    # -- the hot paths: statements on the driver ------------------------------------------------

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[sql.Conn]:
        """Short indexed reads in autocommit: each statement sees the latest committed data."""
        if self.is_sqlite:
            if self._sqlite_reader is None:
                self._sqlite_reader = _open_sqlite(self._sqlite_path, busy_timeout_ms=1000)
            yield sql.SqliteConn(self._sqlite_reader, self._known)
            return
        pool = await self._asyncpg_pool()
        async with pool.acquire() as connection:
            yield sql.AsyncpgConn(connection, self._known)

    @contextlib.asynccontextmanager
    async def write_one(self) -> AsyncIterator[sql.Conn]:
        """A unit of work whose one write is a single guarded statement, after any reads (an
        issue: the look-up, then the claim). On PostgreSQL it runs in autocommit: the statement is
        atomic on its own, and the ``BEGIN`` and ``COMMIT`` round trips cost more server CPU than
        the claim itself. Writes that must commit together go in ``conn.atomic()``. On SQLite,
        where a round trip costs nothing, this is ``write``.
        """
        if self.is_sqlite:
            async with self.write() as conn:
                yield conn
            return
        pool = await self._asyncpg_pool()
        async with pool.acquire() as connection:
            conn = sql.AsyncpgConn(connection, self._known)
            yield conn
        conn.committed()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[sql.Conn]:
        """A write unit of work on the driver: commits when the block ends normally, rolls back on
        any error. On SQLite the block must not await real I/O (see the module docstring)."""
        if not self.is_sqlite:
            pool = await self._asyncpg_pool()
            async with pool.acquire() as connection:
                async with connection.transaction():
                    conn: sql.Conn = sql.AsyncpgConn(connection, self._known)
                    yield conn
                conn.committed()
            return
        async with self._write_lock:
            if self._sqlite_writer is None:
                # The wait for another process's writer happens in _begin_immediate, on the loop,
                # not inside SQLite with the loop blocked.
                self._sqlite_writer = _open_sqlite(self._sqlite_path, busy_timeout_ms=WRITER_BUSY_TIMEOUT_MS)
            writer = self._sqlite_writer
            await _begin_immediate(writer)
            conn = sql.SqliteConn(writer, self._known)
            try:
                yield conn
                writer.execute("COMMIT")
            except BaseException:
                # Also when the COMMIT itself fails (a full disk): never leave the writer inside
                # a transaction, or its next BEGIN IMMEDIATE would fail.
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
                raise
            conn.committed()

    async def _asyncpg_pool(self) -> Any:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=0,
                        max_size=self._pool_size,
                        reset=_reset_pooled,
                    )
        return self._pool

    # -- the cold paths: SQLAlchemy sessions ----------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write unit of work: commits when the block ends normally, rolls back on any error.

        Routers return only after this block, so the commit happens before the response is sent.
        """
        lock = self._write_lock if self.is_sqlite else contextlib.nullcontext()
        async with lock, self._write_sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """For reads: each statement sees the latest committed data (autocommit, no transaction).

        Anything that must see one consistent snapshot, or that writes, uses ``transaction``.
        """
        async with self._read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        for connection in (self._sqlite_reader, self._sqlite_writer):
            if connection is not None:
                connection.close()
        self._sqlite_reader = self._sqlite_writer = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        await self.write_engine.dispose()
        if self.is_sqlite:
            await self.read_engine.dispose()


#: SQLite's busy timeout on the loop's writer once inside its transaction, in ms: in WAL mode the
#: holder of the write lock waits for nothing but the rare recovery of the log by another process.
WRITER_BUSY_TIMEOUT_MS = 5


async def _begin_immediate(connection: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's writer by sleeping on the event loop.

    Asked with a busy timeout of 0: SQLite's own busy handler would wait inside the call, with
    the loop stopped, and sleep 1 ms at least however soon the other writer finishes (its
    transaction takes a fraction of that). So a busy database answers at once, and the wait is
    short sleeps on the loop (0.2 ms, doubling up to 10 ms) while the loop serves other requests.
    """
    delay, deadline = 0.0002, time.monotonic() + SQLITE_BUSY_SECONDS
    connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)
    finally:
        connection.execute(f"PRAGMA busy_timeout={WRITER_BUSY_TIMEOUT_MS}")


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
