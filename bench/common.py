"""Shared by the benchmarks: paths, databases, the real CLI as a subprocess, data files, results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

#: The one PostgreSQL database the benchmarks may use: its ``public`` schema is dropped and rebuilt.
#: Not the tests' database, so a benchmark never wipes a test run's data (it is created if missing).
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/tessera_bench"
POSTGRES_URL_ENV = "TESSERA_BENCH_POSTGRES_URL"

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"  # git-ignored: generated inputs and the SQLite files
RESULTS_DIR = BENCH_DIR / "results"  # git-ignored: one JSON file per run
WRK_DIR = BENCH_DIR / "wrk"
BIN = Path(sys.executable).parent
TESSERA = BIN / "tessera"

DATABASES = ("sqlite", "postgresql")

#: Code alphabet: unambiguous upper-case letters and digits, as real promo codes use.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, "").strip() or DEFAULT_POSTGRES_URL


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# databases


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


async def _pg_execute(url: str, *statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def pg_execute(*statements: str, url: str | None = None) -> None:
    """Runs statements one by one, each in autocommit (so VACUUM works too)."""
    asyncio.run(_pg_execute(url or postgres_url(), *statements))


async def _ensure_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1].split("?")[0]
    try:
        connection = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
    else:
        await connection.close()


def reset_postgres() -> None:
    """Empties the bench database: ``DROP SCHEMA public CASCADE; CREATE SCHEMA public``."""
    asyncio.run(_ensure_database(postgres_url()))
    pg_execute("DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")


def fresh_database(db: str, name: str) -> str:
    """An empty database (no schema): a new SQLite file under bench/data/, or the reset PG schema."""
    if db == "sqlite":
        path = DATA_DIR / f"{name}.db"
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        remove_sqlite(path)
        return sqlite_url(path)
    reset_postgres()
    return postgres_url()


# --------------------------------------------------------------------------------------------------
# the real CLI


@dataclass
class CliResult:
    seconds: float
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout.strip().splitlines()[-1])


def tessera(*args: str, database_url: str, check: bool = True) -> CliResult:
    """Runs ``tessera ARGS`` as a user would, timed end to end (interpreter start-up included)."""
    env = {**os.environ, "TESSERA_DATABASE_URL": database_url, "COLUMNS": "120"}
    started = time.perf_counter()
    completed = subprocess.run(
        [str(TESSERA), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if check and completed.returncode != 0:
        raise RuntimeError(
            f"tessera {' '.join(args)} failed ({completed.returncode}):\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}"
        )
    return CliResult(seconds, completed.stdout, completed.stderr)


def create_department(database_url: str, name: str = "Bench shop") -> dict[str, Any]:
    created: dict[str, Any] = tessera(
        "departments", "create", "--name", name, "--json", database_url=database_url
    ).json()
    return created


# --------------------------------------------------------------------------------------------------
# generated inputs (cached under bench/data/)


def codes_file(count: int, *, seed: int = 1, length: int = 12, tag: str = "codes") -> Path:
    """``count`` unique random ``length``-character codes, one per line (a one-column .csv)."""
    path = DATA_DIR / f"{tag}_{count}_{seed}.csv"
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    log(f"generating {path.name}")
    rng = random.Random(seed)
    seen: set[str] = set()
    codes: list[str] = []
    while len(codes) < count:
        code = "".join(rng.choices(ALPHABET, k=length))
        if code not in seen:
            seen.add(code)
            codes.append(code)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(codes) + "\n", encoding="ascii")
    tmp.rename(path)
    return path


def read_codes(path: Path) -> list[str]:
    return path.read_text(encoding="ascii").split()


def xlsx_file(count: int) -> Path:
    """The first ``count`` codes of the 1,000,000-code file as a one-column .xlsx (openpyxl)."""
    path = DATA_DIR / f"codes_{count}.xlsx"
    if path.exists():
        return path
    from openpyxl import Workbook

    log(f"writing {path.name} with openpyxl (once)")
    codes = read_codes(codes_file(1_000_000))[:count]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("codes")
    for code in codes:
        sheet.append([code])
    tmp = path.with_suffix(".tmp.xlsx")
    workbook.save(tmp)
    tmp.rename(path)
    return path


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# processes and ports


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    elapsed = [0.0]
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - started


# --------------------------------------------------------------------------------------------------
# results


def machine_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    def version(package: str) -> str | None:
        from importlib import metadata

        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty_files": len(git("status", "--porcelain", "--", "src").splitlines()),
        "src_state": src_state(),
        "postgres_url": postgres_url(),
        "packages": {
            name: version(name)
            for name in ("fastapi", "starlette", "uvicorn", "sqlalchemy", "asyncpg", "aiosqlite")
        },
    }


def src_state() -> str:
    """A digest of the code under src/ as it is now (HEAD, uncommitted changes and new files), so a
    run can tell whether src/ changed while it ran (servers started later would run other code)."""
    import hashlib

    digest = hashlib.sha256()
    for args in (
        ("rev-parse", "HEAD"),
        ("diff", "HEAD", "--", "src"),
        ("ls-files", "--others", "--exclude-standard", "--", "src"),
    ):
        digest.update(subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=False).stdout)
    for name in sorted(
        subprocess.run(
            ["git", "ls-files", "--others", "--exclude-standard", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
    ):
        with contextlib.suppress(OSError):
            digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:12]


def save_results(kind: str, results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{stamp}-{kind}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text + "\n", encoding="utf-8")
    (RESULTS_DIR / f"latest-{kind}.json").write_text(text + "\n", encoding="utf-8")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (pastes into the README as it is)."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max(len(h), *(len(row[i]) for row in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
            )
            + " |"
        )

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), separator, *(line(row) for row in cells)])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and all its live descendants (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def postgres_cpu_seconds() -> float:
    """User + system CPU seconds used so far by every PostgreSQL server process on this machine:
    the database's own share of a run, reported beside the service's (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def login(client: httpx.Client, department_id: int, department_key: str, pin_code: str) -> str:
    """A loyalty token for the seeded department, over HTTP."""
    answer = client.post(
        "/api/v2/login/",
        data={
            "store_department_id": department_id,
            "store_department_key": department_key,
            "pin_code": pin_code,
        },
    ).json()
    if answer.get("status") != "ok":
        raise RuntimeError(f"login failed: {answer}")
    return str(answer["token"])
