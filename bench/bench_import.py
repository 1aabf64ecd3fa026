"""Bulk import: ``tessera promocodes import`` (the real CLI, a subprocess) against a bare bulk insert.

For each database, one round runs, in this order and timed in the same process run:

* ``bare``: the same rows (partner_id, group_id, state, applied_times, number) read from the same
  file with the simplest possible code and inserted into a fresh table that has the same columns,
  primary key and ``UNIQUE (partner_id, number, group_id)``: sqlite3 ``executemany`` in one
  transaction (WAL, synchronous=NORMAL) / asyncpg ``copy_records_to_table`` (COPY). This is the
  baseline of the target ``ours / bare <= 1.5``.
* ``bare_app_schema`` (for information): the same bare insert, but into the real ``promocodes`` table
  of a freshly migrated database, i.e. with all its secondary indexes and foreign keys. The gap
  between ``bare`` and ``bare_app_schema`` is what the schema costs; the gap between
  ``bare_app_schema`` and ``ours`` is what our code costs.
* ``ours``: ``tessera promocodes import FILE --partner-id P --group G`` after a fresh
  ``tessera migrate`` and ``tessera departments create --json``, timed end to end as a subprocess
  (interpreter start-up, parsing, validation, inserts, commit).

Also timed: the parser alone (``iter_number_chunks`` over the file, in-process) and the CLI's
start-up (``tessera promocodes import --help``), so the end-to-end figure can be taken apart.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common
from bench.common import log

IMPORT_ROWS = 1_000_000
XLSX_ROWS = 100_000
PARTNER_ID = 1
TARGET_RATIO = 1.5
TARGET_SECONDS = 15.0

COLUMNS = ["partner_id", "group_id", "state", "applied_times", "number"]

SQLITE_BARE_TABLE = """
CREATE TABLE promocodes (
    id INTEGER PRIMARY KEY,
    partner_id INTEGER NOT NULL,
    group_id INTEGER NOT NULL,
    number VARCHAR(128) NOT NULL,
    state SMALLINT NOT NULL DEFAULT 1,
    applied_times INTEGER NOT NULL DEFAULT 0,
    UNIQUE (partner_id, number, group_id)
)
"""

PG_BARE_TABLE = """
CREATE TABLE bench_bare_promocodes (
    id BIGSERIAL PRIMARY KEY,
    partner_id BIGINT NOT NULL,
    group_id BIGINT NOT NULL,
    number VARCHAR(128) NOT NULL,
    state SMALLINT NOT NULL DEFAULT 1,
    applied_times INTEGER NOT NULL DEFAULT 0,
    UNIQUE (partner_id, number, group_id)
)
"""


# --------------------------------------------------------------------------------------------------
# the parser alone


def parse_seconds(path: Path, *, isolated: bool = False) -> dict[str, Any] | None:
    """Time the parser over the file as the import calls it (in-process, nothing inserted).

    ``isolated``: spreadsheets through ``tessera.imports.isolated.iter_sheet_chunks``, the child
    process the import reads them in; None when that module does not exist.
    """
    from tessera.imports import bulk
    from tessera.imports.parsers import detect_format, iter_number_chunks
    from tessera.promocodes import rules

    parse: Any = iter_number_chunks
    if isolated:
        try:
            from tessera.imports.isolated import iter_sheet_chunks
        except ImportError:
            return None
        parse = iter_sheet_chunks
    chunk_size = getattr(bulk, "CHUNK_SIZE", 50_000)
    count = 0
    with path.open("rb") as stream:
        started = time.perf_counter()
        for chunk in parse(
            stream,
            detect_format(path.name),
            min_length=rules.MIN_NUMBER_LENGTH,
            max_length=rules.MAX_NUMBER_LENGTH,
            chunk_size=chunk_size,
        ):
            count += len(chunk)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": count}


def cli_startup_seconds() -> float:
    """What every CLI call pays before doing anything: interpreter and imports."""
    runs = [
        common.tessera("promocodes", "import", "--help", database_url="sqlite://").seconds for _ in range(3)
    ]
    return min(runs)


# --------------------------------------------------------------------------------------------------
# bare inserts


def _read_rows(path: Path, partner_id: int, group_id: int) -> list[tuple[int, int, int, int, str]]:
    with path.open(encoding="utf-8") as stream:
        return [(partner_id, group_id, 1, 0, line.strip()) for line in stream]


def bare_sqlite(path: Path, *, app_schema: bool) -> dict[str, Any]:
    """sqlite3 ``executemany`` in one transaction, on a fresh file with the app's PRAGMAs."""
    if app_schema:
        url, partner_id, group_id = _app_schema_database("sqlite", "import_bare_app")
        db_file = Path(url.removeprefix("sqlite:///"))
        table = "promocodes"
    else:
        db_file = common.DATA_DIR / "import_bare.db"
        common.DATA_DIR.mkdir(parents=True, exist_ok=True)
        common.remove_sqlite(db_file)
        partner_id, group_id, table = PARTNER_ID, 1, "promocodes"
    connection = sqlite3.connect(db_file, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        if app_schema:
            connection.execute("PRAGMA foreign_keys=ON")  # as the app's connections do
        else:
            connection.execute(SQLITE_BARE_TABLE)
        started = time.perf_counter()
        rows = _read_rows(path, partner_id, group_id)
        read = time.perf_counter() - started
        connection.execute("BEGIN")
        connection.executemany(
            f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows
        )
        connection.execute("COMMIT")
    finally:
        connection.close()  # timed too: the CLI's run ends with it (SQLite checkpoints the WAL here)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "read_seconds": read, "insert_seconds": seconds - read, "rows": len(rows)}


def bare_postgres(path: Path, *, app_schema: bool) -> dict[str, Any]:
    """asyncpg ``copy_records_to_table`` (COPY, one transaction) into a fresh table."""
    if app_schema:
        url, partner_id, group_id = _app_schema_database("postgresql", "import_bare_app")
        table = "promocodes"
    else:
        common.reset_postgres()
        url, partner_id, group_id, table = common.postgres_url(), PARTNER_ID, 1, "bench_bare_promocodes"

    async def run() -> dict[str, Any]:
        import asyncpg

        connection = await asyncpg.connect(url)
        try:
            if not app_schema:
                await connection.execute(PG_BARE_TABLE)
            started = time.perf_counter()
            rows = _read_rows(path, partner_id, group_id)
            read = time.perf_counter() - started
            await connection.copy_records_to_table(table, records=rows, columns=COLUMNS)
        finally:
            await connection.close()
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "read_seconds": read, "insert_seconds": seconds - read, "rows": len(rows)}

    return asyncio.run(run())


def _app_schema_database(db: str, name: str) -> tuple[str, int, int]:
    """A freshly migrated database with a partner and an (almost empty) code group in it."""
    url = common.fresh_database(db, name)
    common.tessera("migrate", database_url=url)
    partner_id = int(common.create_department(url)["partner_id"])
    seed = common.write_lines(common.DATA_DIR / "one_code.csv", ["SEED-ONE-CODE"])
    created = common.tessera(
        "promocodes",
        "import",
        str(seed),
        "--partner-id",
        str(partner_id),
        "--group",
        "bare",
        "--json",
        database_url=url,
    ).json()
    return url, partner_id, int(created["group_id"])


# --------------------------------------------------------------------------------------------------
# ours: the real CLI


def ours(db: str, path: Path, *, name: str) -> dict[str, Any]:
    url = common.fresh_database(db, name)
    migrate = common.tessera("migrate", database_url=url)
    department = common.tessera("departments", "create", "--name", "Bench shop", "--json", database_url=url)
    partner_id = department.json()["partner_id"]
    result = common.tessera(
        "promocodes",
        "import",
        str(path),
        "--partner-id",
        str(partner_id),
        "--group",
        "bench",
        "--json",
        database_url=url,
    )
    imported = result.json()["imported_count"]
    return {
        "seconds": result.seconds,
        "rows": imported,
        "migrate_seconds": migrate.seconds,
        "department_seconds": department.seconds,
    }


# --------------------------------------------------------------------------------------------------
# the benchmarks


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run (least disturbed by the load), with every run's seconds kept for the record."""
    best = dict(min(runs, key=lambda run: run["seconds"]))
    best["all_seconds"] = [run["seconds"] for run in runs]
    if len(runs) > 1:
        best["median_seconds"] = statistics.median(best["all_seconds"])
    return best


def run_import(dbs: list[str], *, repeat: int = 1, rows: int = IMPORT_ROWS) -> dict[str, Any]:
    path = common.codes_file(rows)
    log(f"parser alone over {path.name}")
    results: dict[str, Any] = {
        "file": path.name,
        "rows": rows,
        "parser": parse_seconds(path),
        "cli_startup_seconds": cli_startup_seconds(),
        "databases": {},
    }
    bare: dict[str, Callable[..., dict[str, Any]]] = {"sqlite": bare_sqlite, "postgresql": bare_postgres}
    for db in dbs:
        runs: dict[str, list[dict[str, Any]]] = {"bare": [], "bare_app_schema": [], "ours": []}
        for attempt in range(repeat):
            log(f"import {db} round {attempt + 1}/{repeat}: bare")
            runs["bare"].append(bare[db](path, app_schema=False))
            log(f"import {db} round {attempt + 1}/{repeat}: bare into the app's schema")
            runs["bare_app_schema"].append(bare[db](path, app_schema=True))
            log(f"import {db} round {attempt + 1}/{repeat}: tessera promocodes import")
            runs["ours"].append(ours(db, path, name="import_ours"))
            log(
                f"  ours {runs['ours'][-1]['seconds']:.2f}s  bare {runs['bare'][-1]['seconds']:.2f}s  "
                f"bare(app schema) {runs['bare_app_schema'][-1]['seconds']:.2f}s"
            )
        entry = {kind: _best(kind_runs) for kind, kind_runs in runs.items()}
        entry["ratio"] = entry["ours"]["seconds"] / entry["bare"]["seconds"]
        entry["ratio_app_schema"] = entry["ours"]["seconds"] / entry["bare_app_schema"]["seconds"]
        entry["meets_target"] = entry["ratio"] <= TARGET_RATIO and entry["ours"]["seconds"] < TARGET_SECONDS
        results["databases"][db] = entry
    return results


def run_xlsx(dbs: list[str], *, repeat: int = 1, rows: int = XLSX_ROWS) -> dict[str, Any]:
    path = common.xlsx_file(rows)
    log(f"parser alone over {path.name}")
    results: dict[str, Any] = {
        "file": path.name,
        "rows": rows,
        "parser": parse_seconds(path),
        "parser_child_process": parse_seconds(path, isolated=True),
        "databases": {},
    }
    for db in dbs:
        runs = []
        for attempt in range(repeat):
            log(f"xlsx {db} round {attempt + 1}/{repeat}: tessera promocodes import")
            runs.append(ours(db, path, name="xlsx_ours"))
        entry = {"ours": _best(runs)}
        entry["parser_share"] = results["parser"]["seconds"] / entry["ours"]["seconds"]
        results["databases"][db] = entry
    return results


def import_table(results: dict[str, Any]) -> str:
    rows = []
    for db, entry in results["databases"].items():
        rows.append(
            [
                db,
                entry["ours"]["seconds"],
                entry["bare"]["seconds"],
                f"{entry['ratio']:.2f}",
                entry["bare_app_schema"]["seconds"],
                f"{entry['ratio_app_schema']:.2f}",
                "yes" if entry["meets_target"] else "NO",
            ]
        )
    title = (
        f"Import of {results['rows']:,} codes ({results['file']}): seconds; "
        f"parser alone {results['parser']['seconds']:.2f}s, "
        f"CLI start-up {results['cli_startup_seconds']:.2f}s"
    )
    headers = [
        "database",
        "ours (CLI)",
        "bare",
        "ours/bare",
        "bare, app schema",
        "ours/bare app",
        f"ratio<={TARGET_RATIO} & <{TARGET_SECONDS:.0f}s",
    ]
    return title + "\n" + common.table(headers, rows)


def xlsx_table(results: dict[str, Any]) -> str:
    child = results.get("parser_child_process")
    rows = [
        [
            db,
            entry["ours"]["seconds"],
            results["parser"]["seconds"],
            child["seconds"] if child else None,
            f"{entry['parser_share']:.0%}",
        ]
        for db, entry in results["databases"].items()
    ]
    title = f"Import of {results['rows']:,} codes from .xlsx ({results['file']}): seconds"
    headers = ["database", "ours (CLI)", "parser alone", "parser in child process", "parser share"]
    return title + "\n" + common.table(headers, rows)
