"""Statements run on the drivers themselves: sqlite3 and asyncpg, without SQLAlchemy in between.

The hot paths (look-ups, issue, activation, certificate use, events, authentication) cost little
more than their database work only if nothing sits between them and the driver: a SQLAlchemy
``Session`` spends more Python per statement than SQLite needs to run it. Repositories write such
statements as ``Statement`` objects, SQL text with ``:name`` placeholders compiled once per
dialect, and run them on a ``Conn``:

- ``SqliteConn``: a ``sqlite3`` connection used on the event loop itself. Short indexed
  statements finish in microseconds, far less than a hand-off to a thread would cost.
- ``AsyncpgConn``: an asyncpg connection, whose per-connection cache prepares each statement once.
- ``AiosqliteConn``: the connection of an SQLAlchemy session on SQLite (``on_session``), so that
  cold paths, which hold a session, run the same repository functions in their transaction.

Rows come back as tuples (asyncpg ``Record``s index the same way). Values that SQLite stores as
text are converted by the readers below (``as_datetime``, ``as_json``...), the same on both
databases. Services never see any of this: they pass the ``Conn`` through to repositories.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

Row = Sequence[Any]

_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Statement:
    """SQL with ``:name`` placeholders, compiled once per dialect to the driver's numbered form.

    ``postgresql`` replaces the text on PostgreSQL where the two dialects differ (``FOR UPDATE
    SKIP LOCKED``, which SQLite does not have and does not need: its writers take turns).
    """

    __slots__ = ("_compiled", "_texts")

    def __init__(self, sql: str, *, postgresql: str | None = None) -> None:
        self._texts = {"sqlite": sql, "postgresql": postgresql if postgresql is not None else sql}
        self._compiled: dict[str, tuple[str, tuple[str, ...]]] = {}

    def compiled(self, dialect: str) -> tuple[str, tuple[str, ...]]:
        found = self._compiled.get(dialect)
        if found is None:
            names: list[str] = []
            mark = "$" if dialect == "postgresql" else "?"

            def number(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in names:
                    names.append(name)
                return f"{mark}{names.index(name) + 1}"

            found = (_PLACEHOLDER.sub(number, self._texts[dialect]), tuple(names))
            self._compiled[dialect] = found
        return found

    def explained(self) -> Statement:
        """The query plan of this statement (``EXPLAIN``; SQLite: ``EXPLAIN QUERY PLAN``)."""
        return Statement(
            "EXPLAIN QUERY PLAN " + self._texts["sqlite"], postgresql="EXPLAIN " + self._texts["postgresql"]
        )

    def __repr__(self) -> str:
        return f"Statement({self._texts['sqlite']!r})"


class Conn:
    """One connection, inside a unit of work or in autocommit; see the module docstring.

    ``known`` is the process's memo of facts that never stop being true once committed (a tag's
    id: tags are never deleted), shared by the units of work of one ``Database``. A unit of work
    adds to it with ``remember``, which takes effect only when the unit commits, so the memo never
    holds a row that a rollback took back. Connections lent by a session (``on_session``) have a
    memo of their own that is dropped with them.
    """

    dialect: str

    def __init__(self, connection: Any, known: dict[Any, Any] | None = None) -> None:
        self._connection = connection
        self.known: dict[Any, Any] = known if known is not None else {}
        self._remembered: dict[Any, Any] = {}

    def remember(self, key: Any, value: Any) -> None:
        self._remembered[key] = value

    def committed(self) -> None:
        """Called by the unit of work after its COMMIT."""
        if len(self.known) > 100_000:
            self.known.clear()
        self.known.update(self._remembered)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def fetchall(self, statement: Statement, /, **params: Any) -> Sequence[Row]:
        raise NotImplementedError

    async def fetchone(self, statement: Statement, /, **params: Any) -> Row | None:
        rows = await self.fetchall(statement, **params)
        return rows[0] if rows else None

    async def fetchval(self, statement: Statement, /, **params: Any) -> Any:
        row = await self.fetchone(statement, **params)
        return row[0] if row is not None else None

    async def execute(self, statement: Statement, /, **params: Any) -> int:
        """Runs a statement that returns no rows; answers how many rows it changed."""
        raise NotImplementedError

    async def executemany(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """Writes that must commit together. Inside a unit of work they already do; a connection
        in autocommit (``Database.write_one``) opens a transaction for the block."""
        yield

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested unit of work: an error inside undoes only what the block did."""
        await self.execute(_SAVEPOINT)
        try:
            yield
        except BaseException:
            await self.execute(_ROLLBACK_TO_SAVEPOINT)
            await self.execute(_RELEASE_SAVEPOINT)
            raise
        await self.execute(_RELEASE_SAVEPOINT)


_SAVEPOINT = Statement("SAVEPOINT tessera_nested")
_ROLLBACK_TO_SAVEPOINT = Statement("ROLLBACK TO SAVEPOINT tessera_nested")
_RELEASE_SAVEPOINT = Statement("RELEASE SAVEPOINT tessera_nested")


def is_unique_violation(error: BaseException) -> bool:
    """A unique key refused the row: sqlite3's or asyncpg's error, or SQLAlchemy's wrapping either."""
    cause = getattr(error, "orig", None) or error
    if isinstance(cause, sqlite3.IntegrityError):
        return "UNIQUE" in str(cause)
    # asyncpg's own error, or SQLAlchemy's adapter of it, which keeps its SQLSTATE.
    return type(cause).__name__ == "UniqueViolationError" or getattr(cause, "sqlstate", None) == "23505"


def sqlite_value(value: Any) -> Any:
    """A parameter as SQLAlchemy stores it on SQLite, so both write and compare the same text."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return _json_text(value)


def _json_text(value: Any) -> Any:
    if not isinstance(value, dict | list):
        return value
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits, which the json module writes
        return json.dumps(value, ensure_ascii=False)


def _sqlite(statement: Statement, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    text, names = statement.compiled("sqlite")
    return text, tuple(sqlite_value(params[name]) for name in names)


class SqliteConn(Conn):
    """A sqlite3 connection on the event loop: each call runs to completion without yielding."""

    dialect = "sqlite"
    _connection: sqlite3.Connection

    async def fetchall(self, statement: Statement, /, **params: Any) -> Sequence[Row]:
        # fetchall, never a half-read cursor: an unfinished statement would block the COMMIT.
        return self._connection.execute(*_sqlite(statement, params)).fetchall()

    async def execute(self, statement: Statement, /, **params: Any) -> int:
        return self._connection.execute(*_sqlite(statement, params)).rowcount

    async def executemany(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        text = statement.compiled("sqlite")[0]
        self._connection.executemany(text, [_sqlite(statement, row)[1] for row in rows])


class AiosqliteConn(Conn):
    """The aiosqlite connection under an SQLAlchemy session (cold paths): each call is a thread hop."""

    dialect = "sqlite"

    async def fetchall(self, statement: Statement, /, **params: Any) -> Sequence[Row]:
        cursor = await self._connection.execute(*_sqlite(statement, params))
        try:
            rows: Sequence[Row] = await cursor.fetchall()
        finally:
            await cursor.close()
        return rows

    async def execute(self, statement: Statement, /, **params: Any) -> int:
        cursor = await self._connection.execute(*_sqlite(statement, params))
        count = int(cursor.rowcount)
        await cursor.close()
        return count

    async def executemany(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        text = statement.compiled("sqlite")[0]
        cursor = await self._connection.executemany(text, [_sqlite(statement, row)[1] for row in rows])
        await cursor.close()


class AsyncpgConn(Conn):
    """An asyncpg connection. JSON goes in and comes out as text, as on SQLAlchemy's asyncpg
    connections (``on_session``), so a repository function runs the same on either."""

    dialect = "postgresql"

    @staticmethod
    def _args(statement: Statement, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        sql, names = statement.compiled("postgresql")
        return sql, [_json_text(params[name]) for name in names]

    async def fetchall(self, statement: Statement, /, **params: Any) -> Sequence[Row]:
        sql, args = self._args(statement, params)
        rows: Sequence[Row] = await self._connection.fetch(sql, *args)
        return rows

    async def fetchone(self, statement: Statement, /, **params: Any) -> Row | None:
        sql, args = self._args(statement, params)
        row: Row | None = await self._connection.fetchrow(sql, *args)
        return row

    async def execute(self, statement: Statement, /, **params: Any) -> int:
        sql, args = self._args(statement, params)
        status: str = await self._connection.execute(sql, *args)
        # "UPDATE 3", "INSERT 0 1", "DELETE 0": the last word is the row count.
        last = status.rpartition(" ")[2]
        return int(last) if last.isdigit() else 0

    async def executemany(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        sql, names = statement.compiled("postgresql")
        await self._connection.executemany(sql, [[_json_text(row[name]) for name in names] for row in rows])

    @contextlib.asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        if self._connection.is_in_transaction():
            yield
            return
        async with self._connection.transaction():
            yield


async def on_session(session: AsyncSession) -> Conn:
    """The connection an SQLAlchemy session's transaction runs on, as a ``Conn``.

    For the cold paths that hold a session and call a repository function written as
    ``Statement``s: both run in the one transaction.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if connection.dialect.name == "sqlite":
        return AiosqliteConn(adapted.driver_connection)
    # SQLAlchemy's asyncpg adapter opens its transaction lazily, with the first statement it
    # runs itself; open it now, or our statements would run outside it, in autocommit.
    if getattr(adapted, "_transaction", True) is None and not getattr(adapted, "autocommit", False):
        await adapted._start_transaction()
    return AsyncpgConn(adapted.driver_connection)


# -- Readers for values SQLite keeps as text ----------------------------------------------------


def as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def as_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def as_json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value
