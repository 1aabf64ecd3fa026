"""All-or-nothing bulk import of code numbers, at close to the database's own bulk-insert speed.

The file is parsed in a worker thread, chunk by chunk, and each chunk goes to the database the
fastest way it takes rows: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite. Nothing checks
for duplicates on the way: the table's unique key does that for free. Only when it fires is the
file read again to find the offending numbers for the error message. The insert runs inside a
savepoint of the caller's transaction, so a failure leaves nothing behind and the caller's
transaction stays usable for the report.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, BinaryIO

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tessera import errors, metrics
from tessera.imports.isolated import iter_sheet_chunks
from tessera.imports.parsers import FileFormat, iter_number_chunks
from tessera.sql import is_unique_violation, sqlite_value

CHUNK_SIZE = 50_000

ExistingNumbers = Callable[[AsyncSession, Sequence[str]], Awaitable[Sequence[str]]]
Progress = Callable[[int, int], None]


def _chunks(
    stream: BinaryIO,
    fmt: FileFormat,
    min_length: int,
    max_length: int,
    on_progress: Progress | None = None,
) -> Iterator[list[str]]:
    """Text is parsed here; spreadsheets in a child process (their reader can crash a process)."""
    parse = iter_number_chunks if fmt in (FileFormat.TEXT, FileFormat.CSV) else iter_sheet_chunks
    return parse(
        stream,
        fmt,
        min_length=min_length,
        max_length=max_length,
        chunk_size=CHUNK_SIZE,
        on_progress=on_progress,
    )


async def _next_chunk(chunks: Iterator[list[str]]) -> list[str] | None:
    return await asyncio.to_thread(next, chunks, None)


async def import_numbers(
    session: AsyncSession,
    stream: BinaryIO,
    fmt: FileFormat,
    *,
    table: str,
    fixed: dict[str, Any],
    min_length: int,
    max_length: int,
    existing_numbers: ExistingNumbers,
    on_progress: Progress | None = None,
) -> int:
    """Inserts one row per number into ``table``, each with the ``fixed`` column values.

    Raises ``InvalidFile`` / ``InvalidNumber`` from the parser, or ``DuplicateNumbers`` listing
    numbers that repeat in the file or already exist (``existing_numbers`` finds the latter).
    Returns how many rows were inserted.
    """
    with metrics.IMPORTS_RUNNING.track_inprogress():
        return await _import_numbers(
            session, stream, fmt, table, fixed, min_length, max_length, existing_numbers, on_progress
        )


async def _import_numbers(
    session: AsyncSession,
    stream: BinaryIO,
    fmt: FileFormat,
    table: str,
    fixed: dict[str, Any],
    min_length: int,
    max_length: int,
    existing_numbers: ExistingNumbers,
    on_progress: Progress | None,
) -> int:
    start = stream.tell()
    chunks = _chunks(stream, fmt, min_length, max_length, on_progress)
    columns = [*fixed, "number"]
    values = tuple(fixed.values())
    inserted = 0
    try:
        async with session.begin_nested():
            # Asking for the connection is what makes the session emit its SAVEPOINT now,
            # before the rows go around SQLAlchemy through the driver's own connection.
            connection = await session.connection()
            raw: Any = (await connection.get_raw_connection()).driver_connection
            if connection.dialect.name == "postgresql":
                while (chunk := await _next_chunk(chunks)) is not None:
                    await raw.copy_records_to_table(
                        table, records=[(*values, n) for n in chunk], columns=columns
                    )
                    inserted += len(chunk)
            else:
                values = tuple(sqlite_value(v) for v in values)
                placeholders = ", ".join("?" for _ in columns)
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
                while (chunk := await _next_chunk(chunks)) is not None:
                    await raw.executemany(sql, [(*values, n) for n in chunk])
                    inserted += len(chunk)
    except Exception as exc:
        if not is_unique_violation(exc):
            raise
        stream.seek(start)
        raise errors.DuplicateNumbers(
            await _duplicates(session, stream, fmt, min_length, max_length, existing_numbers)
        ) from None
    await _refresh_statistics(session, table)
    return inserted


async def _refresh_statistics(session: AsyncSession, table: str) -> None:
    """The planner's statistics cover the new rows before the import answers.

    Without them PostgreSQL plans the issue claim for the table as it was before the import (an
    empty group) until autovacuum catches up, and sorts every free code of the group on each
    issue: a campaign launched right after its upload meets exactly that. ANALYZE runs in the
    import's own transaction, which it sees, so the statistics commit with the rows. SQLite
    samples (``analysis_limit``) instead of reading every index entry.
    """
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        await session.execute(text("PRAGMA analysis_limit=1000"))
    await session.execute(text(f"ANALYZE {table}"))


async def _duplicates(
    session: AsyncSession,
    stream: BinaryIO,
    fmt: FileFormat,
    min_length: int,
    max_length: int,
    existing_numbers: ExistingNumbers,
) -> list[str]:
    """Numbers that repeat within the file, then numbers that already exist: at most 100 in all."""
    counts: collections.Counter[str] = collections.Counter()
    ordered: list[str] = []
    chunks = _chunks(stream, fmt, min_length, max_length)
    while (chunk := await _next_chunk(chunks)) is not None:
        counts.update(chunk)
        ordered.extend(chunk)
    found = [number for number, count in counts.items() if count > 1][: errors.DuplicateNumbers.REPORTED]
    step = 10_000  # bound parameters per look-up: well within both databases' limits
    for offset in range(0, len(ordered), step):
        if len(found) >= errors.DuplicateNumbers.REPORTED:
            break
        existing = await existing_numbers(session, ordered[offset : offset + step])
        found.extend(n for n in existing if n not in found)
    return found[: errors.DuplicateNumbers.REPORTED]
