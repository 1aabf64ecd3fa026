"""Hot paths over HTTP: ``tessera serve`` against a bare Starlette app (bench/bare_app.py), with wrk.

Per database: a fresh database is seeded through the real CLI (migrate, a department, an
activation-type group of codes to issue, a single-use activation group of codes to activate, a
group of gift certificates, then one SQL UPDATE activating all the certificates). Then, for each
worker count, ``tessera serve --workers N`` is started, a token is obtained over HTTP
(``/api/v2/login``), customers are created over HTTP (``users/add``, first time only), and wrk runs
each endpoint for the given duration with 32 connections; then the bare app is started with the
same worker count and the same wrk scripts run against it. Every write request consumes a code or
certificate nobody else touched: activate and use runs each get their own slice of the seeded
numbers, and each wrk thread a disjoint part of that slice.

On PostgreSQL, ``VACUUM (ANALYZE)`` runs before every write endpoint so that each run starts from a
comparable table (the ``issue`` claim walks the free-code index from its start; dead entries left
by the previous run would otherwise slow the next one).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench import common
from bench.common import log

ENDPOINTS = ("info", "issue", "activate", "use")
WRITE_ENDPOINTS = ("issue", "activate", "use")
CONNECTIONS = 32
THREADS = 2
TARGET_RPS = 2000
TARGET_RATIO = 0.5
TARGETED = ("issue", "activate")
CUSTOMERS = 100
INFO_SAMPLE = 100_000
ISSUE_GROUP = "bench-issue"
ACTIVATE_GROUP = "bench-activate"
CERTIFICATE_GROUP = "bench-certificates"
RUN_DIR = common.DATA_DIR / "run"


@dataclass(frozen=True)
class Sizes:
    issue_codes: int
    activate_codes: int
    certificates: int


FULL = Sizes(issue_codes=1_000_000, activate_codes=1_000_000, certificates=600_000)
QUICK = Sizes(issue_codes=300_000, activate_codes=300_000, certificates=200_000)


@dataclass
class Seed:
    db: str
    url: str
    partner_id: int
    department_id: int
    department_key: str
    pin_code: str
    activate_numbers: list[str]
    certificate_numbers: list[str]
    info_numbers: Path
    phones: Path
    token: str | None = None
    customers_created: bool = False
    slices_taken: dict[str, int] = field(default_factory=dict)
    seed_seconds: dict[str, float] = field(default_factory=dict)

    def next_slice(self, endpoint: str, size: int) -> Path:
        """The next ``size`` never-used numbers for a write endpoint, as a file for wrk."""
        numbers = self.activate_numbers if endpoint == "activate" else self.certificate_numbers
        start = self.slices_taken.get(endpoint, 0)
        if start + size > len(numbers):
            raise RuntimeError(f"not enough seeded numbers left for {endpoint}")
        self.slices_taken[endpoint] = start + size
        return common.write_lines(
            RUN_DIR / f"{self.db}-{endpoint}-{start}.txt", numbers[start : start + size]
        )


# --------------------------------------------------------------------------------------------------
# seeding


def seed(db: str, sizes: Sizes) -> Seed:
    timings: dict[str, float] = {}
    url = common.fresh_database(db, "http")
    timings["migrate"] = common.tessera("migrate", database_url=url).seconds
    department = common.create_department(url)
    partner_id = int(department["partner_id"])
    department_id = int(department["store_department_id"])

    issue_file = common.codes_file(sizes.issue_codes, seed=11, tag="http_issue")
    activate_file = common.codes_file(sizes.activate_codes, seed=12, tag="http_activate")
    certificate_file = common.codes_file(sizes.certificates, seed=13, tag="http_certificates")
    for name, path in ((ISSUE_GROUP, issue_file), (ACTIVATE_GROUP, activate_file)):
        log(f"seeding {db}: importing {path.name} as {name}")
        timings[f"import {name}"] = common.tessera(
            "promocodes",
            "import",
            str(path),
            "--partner-id",
            str(partner_id),
            "--group",
            name,
            "--type",
            "activation",
            "--json",
            database_url=url,
        ).seconds
    log(f"seeding {db}: importing {certificate_file.name} as certificates, then activating them by SQL")
    timings["import certificates"] = common.tessera(
        "certificates",
        "import",
        str(certificate_file),
        "--department-id",
        str(department_id),
        "--group",
        CERTIFICATE_GROUP,
        "--value",
        "100",
        "--json",
        database_url=url,
    ).seconds
    with common.timer() as elapsed:
        _activate_certificates(db, url, partner_id)
    timings["activate certificates (SQL)"] = elapsed[0]

    issue_numbers = common.read_codes(issue_file)
    info_numbers = random.Random(5).sample(issue_numbers, min(INFO_SAMPLE, len(issue_numbers)))
    phones = [f"7900{i:07d}" for i in range(CUSTOMERS)]
    return Seed(
        db=db,
        url=url,
        partner_id=partner_id,
        department_id=department_id,
        department_key=str(department["store_department_key"]),
        pin_code=str(department["pin_code"]),
        activate_numbers=common.read_codes(activate_file),
        certificate_numbers=common.read_codes(certificate_file),
        info_numbers=common.write_lines(RUN_DIR / f"{db}-info.txt", info_numbers),
        phones=common.write_lines(RUN_DIR / f"{db}-phones.txt", phones),
        seed_seconds=timings,
    )


def _activate_certificates(db: str, url: str, partner_id: int) -> None:
    if db == "sqlite":
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "UPDATE certificates SET activated_at = ? WHERE partner_id = ?",
                (time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()), partner_id),
            )
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
    else:
        common.pg_execute(
            "UPDATE certificates SET activated_at = now() AT TIME ZONE 'utc' "
            f"WHERE partner_id = {partner_id}",
            "VACUUM (ANALYZE)",
            url=url,
        )


def _vacuum(seed: Seed) -> None:
    if seed.db == "postgresql":
        common.pg_execute("VACUUM (ANALYZE) promocodes", "VACUUM (ANALYZE) certificates", url=seed.url)
    else:
        with contextlib.closing(sqlite3.connect(seed.url.removeprefix("sqlite:///"))) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# --------------------------------------------------------------------------------------------------
# servers


class Target(Protocol):
    """What a server needs to know about a seeded database (``Seed`` and the other benchmarks' seeds)."""

    db: str
    url: str
    partner_id: int


@contextlib.contextmanager
def server(
    kind: str, seed: Target, workers: int, *, env: dict[str, str] | None = None, tag: str = "http"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``tessera serve`` (kind "ours") or the bare app (kind "bare"); yields its base URL and process.

    ``env`` is added to the server's environment; ``tag`` names its log file.
    """
    port = common.free_port()
    env = {**os.environ, **(env or {})}
    if kind == "ours":
        command = [str(common.TESSERA), "serve", "--port", str(port), "--workers", str(workers)]
        env["TESSERA_DATABASE_URL"] = seed.url
        # Outside a demo start (PostgreSQL), serve refuses the default secret key.
        env.setdefault("TESSERA_SECRET_KEY", "bench-" + "0" * 32)
    else:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:create_app",
            "--factory",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        env.update(BENCH_DATABASE_URL=seed.url, BENCH_PARTNER_ID=str(seed.partner_id))
    log_path = RUN_DIR / f"server-{tag}-{kind}-{seed.db}-w{workers}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=common.ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, process, log_path)
            yield base, process
        finally:
            stop(process)


def _wait_ready(base: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log_path}")
        try:
            httpx.get(base + "/", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout}s; see {log_path}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server we started (uvicorn stops its workers), SIGKILL to its group if stuck."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def prepare_client(base: str, seed: Seed) -> None:
    """A token over HTTP (once per database), and the customers (users/add, once per database)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        if seed.token is None:
            seed.token = common.login(client, seed.department_id, seed.department_key, seed.pin_code)
        if not seed.customers_created:
            for phone in common.read_codes(seed.phones):
                answer = client.post(
                    "/api/v2/users/add/",
                    data={
                        "token": seed.token,
                        "store_department_id": seed.department_id,
                        "user_phone": phone,
                    },
                ).json()
                if answer.get("status") != "ok":
                    raise RuntimeError(f"users/add failed: {answer}")
            seed.customers_created = True


# --------------------------------------------------------------------------------------------------
# wrk


def wrk(script: str, base: str, duration: float, env: dict[str, str]) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{duration:g}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(common.WRK_DIR / f"{script}.lua"),
        base,
    ]
    full_env = {**os.environ, "BENCH_WRK_DIR": str(common.WRK_DIR), "BENCH_THREADS": str(THREADS), **env}
    completed = subprocess.run(
        command, env=full_env, capture_output=True, text=True, timeout=duration + 120, check=False
    )
    line = next((x for x in completed.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    seconds = raw["duration_us"] / 1e6
    socket = raw["socket_errors"]
    latency = raw["latency_us"]
    errors = raw["errors"] + socket["connect"] + socket["read"] + socket["write"] + socket["timeout"]
    succeeded = max(raw["requests"] - raw["errors"] - raw.get("misses", 0), 0)
    return {
        "requests": raw["requests"],
        "seconds": seconds,
        # Throughput counts the answers that did what was asked; errors are reported beside it.
        "rps": succeeded / seconds if seconds else 0.0,
        "all_rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": latency["p50"] / 1000,
        "p90_ms": latency["p90"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000,
        "errors": errors,
        "error_responses": raw["errors"],
        "socket_errors": socket,
        "exhausted": raw["exhausted"],
        "misses": raw.get("misses", 0),
        "contended_lost": raw.get("contended_lost", 0),
        "first_error": raw["first_error"],
        "wrk_output": completed.stdout.replace(line, "").strip(),
    }


def run_endpoint(
    endpoint: str, base: str, seed: Seed, duration: float, slice_size: int, pid: int | None = None
) -> dict[str, Any]:
    """One wrk run; with the server's ``pid``, also the server's CPU time per request."""
    assert seed.token is not None
    env = {
        "BENCH_TOKEN": seed.token,
        "BENCH_DEPARTMENT_ID": str(seed.department_id),
        "BENCH_PHONES": str(seed.phones),
    }
    if endpoint == "info":
        env["BENCH_NUMBERS"] = str(seed.info_numbers)
    elif endpoint == "issue":
        env["BENCH_GROUP"] = ISSUE_GROUP
    elif endpoint == "activate":
        env.update(BENCH_GROUP=ACTIVATE_GROUP, BENCH_NUMBERS=str(seed.next_slice("activate", slice_size)))
    else:
        env["BENCH_NUMBERS"] = str(seed.next_slice("use", slice_size))
    if endpoint in WRITE_ENDPOINTS:
        _vacuum(seed)
    cpu_before = common.process_tree_cpu_seconds(pid) if pid else 0.0
    database_cpu_before = common.postgres_cpu_seconds() if seed.db == "postgresql" else 0.0
    result = wrk(endpoint, base, duration, env)
    if pid:
        cpu = common.process_tree_cpu_seconds(pid) - cpu_before
        result["server_cpu_seconds"] = cpu
        result["cpu_ms_per_request"] = 1000 * cpu / result["requests"] if result["requests"] else None
    if seed.db == "postgresql":
        database_cpu = common.postgres_cpu_seconds() - database_cpu_before
        result["database_cpu_ms_per_request"] = (
            1000 * database_cpu / result["requests"] if result["requests"] else None
        )
    return result


def run_server(
    kind: str, seed: Seed, workers: int, duration: float, slices: dict[str, int], endpoints: tuple[str, ...]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with server(kind, seed, workers) as (base, process):
        if kind == "ours":
            prepare_client(base, seed)
        # Warm up: pools filled, statements prepared/compiled, token cached in every worker.
        wrk("info", base, min(2.0, duration), info_env(seed))
        for endpoint in endpoints:
            log(f"http {seed.db} workers={workers} {kind:4s} {endpoint} for {duration:g}s")
            result = run_endpoint(endpoint, base, seed, duration, slices.get(endpoint, 0), process.pid)
            log(
                f"  {result['rps']:,.0f} req/s  p50 {result['p50_ms']:.1f} ms  "
                f"p99 {result['p99_ms']:.1f} ms  "
                f"CPU {result['cpu_ms_per_request'] or 0:.2f} ms/request  "
                + (
                    f"PostgreSQL CPU {result['database_cpu_ms_per_request'] or 0:.2f} ms/request  "
                    if "database_cpu_ms_per_request" in result
                    else ""
                )
                + f"all answers {result['all_rps']:,.0f}/s  "
                f"errors {result['errors']}"
                + (f"  e.g. {result['first_error'][:160]}" if result["errors"] else "")
            )
            results[endpoint] = result
    return results


def info_env(seed: Seed) -> dict[str, str]:
    assert seed.token is not None
    return {
        "BENCH_TOKEN": seed.token,
        "BENCH_DEPARTMENT_ID": str(seed.department_id),
        "BENCH_NUMBERS": str(seed.info_numbers),
    }


def run_http(
    dbs: list[str],
    *,
    quick: bool = False,
    workers: tuple[int, ...] = (1, 2),
    duration: float | None = None,
    endpoints: tuple[str, ...] = ENDPOINTS,
) -> dict[str, Any]:
    duration = duration or (3.0 if quick else 10.0)
    sizes = QUICK if quick else FULL
    runs = 2 * len(workers)  # ours and bare per worker count, each with fresh numbers
    slices = {"activate": sizes.activate_codes // runs, "use": sizes.certificates // runs}
    results: dict[str, Any] = {
        "duration_seconds": duration,
        "connections": CONNECTIONS,
        "wrk_threads": THREADS,
        "sizes": sizes.__dict__,
        "numbers_per_run": slices,
        "databases": {},
    }
    for db in dbs:
        log(f"http {db}: seeding")
        seeded = seed(db, sizes)
        entry: dict[str, Any] = {"seed_seconds": seeded.seed_seconds, "workers": {}}
        for count in workers:
            ours = run_server("ours", seeded, count, duration, slices, endpoints)
            bare = run_server("bare", seeded, count, duration, slices, endpoints)
            entry["workers"][str(count)] = {
                endpoint: _compare(endpoint, ours[endpoint], bare[endpoint]) for endpoint in endpoints
            }
        results["databases"][db] = entry
    return results


def _compare(endpoint: str, ours: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    ratio = ours["rps"] / bare["rps"] if bare["rps"] else None
    compared: dict[str, Any] = {"ours": ours, "bare": bare, "ratio": ratio}
    if endpoint in TARGETED:
        compared["meets_target"] = (
            ours["rps"] >= TARGET_RPS and ratio is not None and ratio >= TARGET_RATIO and not ours["errors"]
        )
    return compared


#: The columns of a bare baseline beside ours, in every table that compares the two.
BARE_HEADERS = ["bare req/s", "p50", "p99", "errors", "CPU ms/req", "ours/bare"]


def http_table(results: dict[str, Any]) -> str:
    rows = []
    for db, entry in results["databases"].items():
        for count, endpoints in entry["workers"].items():
            for endpoint, compared in endpoints.items():
                ours, bare = compared["ours"], compared["bare"]
                target = compared.get("meets_target")
                rows.append(
                    [
                        db,
                        count,
                        endpoint,
                        ours["rps"],
                        ours["p50_ms"],
                        ours["p99_ms"],
                        ours["errors"],
                        ours.get("cpu_ms_per_request"),
                        ours.get("database_cpu_ms_per_request"),
                        bare["rps"],
                        bare["p50_ms"],
                        bare["p99_ms"],
                        bare["errors"],
                        bare.get("cpu_ms_per_request"),
                        f"{compared['ratio']:.2f}" if compared["ratio"] is not None else None,
                        None if target is None else ("yes" if target else "NO"),
                    ]
                )
    title = (
        f"HTTP, wrk -t{results['wrk_threads']} -c{results['connections']} "
        f"-d{results['duration_seconds']:g}s: "
        f"successful answers/s, latency ms, CPU ms per request of the server processes and of PostgreSQL"
    )
    headers = [
        "database",
        "workers",
        "endpoint",
        "ours req/s",
        "p50",
        "p99",
        "errors",
        "CPU ms/req",
        "PG CPU ms/req",
        *BARE_HEADERS,
        f">={TARGET_RPS} & >={TARGET_RATIO:.0%}",
    ]
    return title + "\n" + common.table(headers, rows)
