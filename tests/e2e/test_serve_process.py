"""`tessera serve` and `tessera worker` as real processes (SPEC §1, §9 "First start"): on an
empty SQLite file serve migrates by itself, creates a demo partner and prints its credentials
once; they work over real HTTP; a second start on the same file creates nothing and prints no
credentials. Elsewhere the demo partner comes only with --demo, a schema that is missing or
behind stops serve and worker with one line saying to run `tessera migrate`, and the default
secret key is refused. `tessera migrate` says what it applied.

Databases whose schema a test changes are its own: a SQLite file, or a PostgreSQL database
created for the test on the server of TESSERA_TEST_DATABASE_URL and dropped after it."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from conftest import BACKENDS, POSTGRES_URL
from tessera import migrate

TESSERA = Path(sys.executable).with_name("tessera")
READY_TIMEOUT = 30.0  # seconds; a process boots in ~2 s, ~8 s on a loaded 2-CPU machine
CREDENTIALS = (
    "partner_id",
    "store_department_id",
    "store_department_key",
    "pin_code",
    "api_key",
    "admin_email",
    "admin_password",
)
CREDENTIAL_LINE = re.compile(rf"^({'|'.join(CREDENTIALS)}): (\S+)\s*$", re.MULTILINE)

#: Idle connections are given up long before uvicorn's 5 s keep-alive timeout closes them.
LIMITS = httpx.Limits(keepalive_expiry=1.0)

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tessera_env(database_url: str, **more: str) -> dict[str, str]:
    """The environment of a `tessera` process: only the TESSERA_ variables given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    # Rich writes to stderr: no colours, no wrapping, nothing held in a buffer.
    env.update(TESSERA_DATABASE_URL=database_url, COLUMNS="250", TERM="dumb", PYTHONUNBUFFERED="1")
    env.update(more)
    return env


@contextmanager
def serving(
    database_url: str, workdir: Path, log: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Runs `tessera serve [args]` until the block ends; yields its base URL once it listens."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(TESSERA), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=tessera_env(database_url, **(env or {})),
            cwd=workdir,  # no stray .env file of the checkout is read
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"tessera serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"tessera serve did not listen within {READY_TIMEOUT} s:\n{log.read_text()}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def printed_credentials(output: str) -> dict[str, str]:
    return dict(CREDENTIAL_LINE.findall(output))


def partners_in(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM partners").fetchone()
    connection.close()
    return int(count)


async def login(http: httpx.AsyncClient, credentials: dict[str, str]) -> str:
    response = await http.post(
        "/api/v2/login/",
        data={key: credentials[key] for key in ("store_department_id", "store_department_key", "pin_code")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok", body
    assert re.fullmatch(r"[0-9a-f]{40}", body["token"])
    assert credentials["pin_code"] in body["pin_codes"]
    token: str = body["token"]
    return token


async def test_first_start_migrates_and_prints_demo_credentials_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "fresh.db"
    path.parent.mkdir()
    assert not path.exists()
    url = f"sqlite:///{path}"

    first_log = tmp_path / "first.log"
    with serving(url, tmp_path, first_log) as base_url:
        output = first_log.read_text()
        credentials = printed_credentials(output)
        assert set(credentials) == set(CREDENTIALS), output
        assert "Created the demo partner" in output
        assert f"Tessera on {base_url} using sqlite" in output
        # The demo start runs with the default secret key, and says so.
        assert "warning: TESSERA_SECRET_KEY is unset or the default `change-me`" in output
        assert credentials["store_department_id"].isdigit()
        assert re.fullmatch(r"[1-9][0-9]{15}", credentials["store_department_key"])
        assert re.fullmatch(r"[1-9][0-9]{3}", credentials["pin_code"])
        assert re.fullmatch(rf"tsk_{credentials['partner_id']}_[0-9a-f]{{40}}", credentials["api_key"])

        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=LIMITS) as http:
            token = await login(http, credentials)
            auth = {"token": token, "store_department_id": credentials["store_department_id"]}
            uploaded = await http.post(
                "/api/v2/promocodes/numbers/add/",
                data={**auth, "name": "Welcome", "type": "1"},
                files={"file": ("codes.txt", b"WELCOME-1\nWELCOME-2\n", "text/plain")},
            )
            assert uploaded.json()["status"] == "ok", uploaded.text
            assert uploaded.json()["imported_count"] == 2
            added = (
                await http.post("/api/v2/users/add/", data={**auth, "user_phone": "+7 900 123-45-67"})
            ).json()
            assert added["status"] == "ok", added
            # GET with the query string works as well as POST: the trailing slash is optional.
            issued = (
                await http.get(
                    "/api/v2/promocodes/issue",
                    params={**auth, "user_phone": "79001234567", "group_name": "Welcome"},
                )
            ).json()
            assert issued["status"] == "ok", issued
            assert issued["promocode"]["number"] == "WELCOME-1"
            assert issued["promocode"]["issued_to"] == {"id": added["id"]}

            # The printed admin login opens the admin UI, which shows the group just uploaded.
            form = await http.get("/admin/login")
            login_token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert login_token is not None, form.text
            signed_in = await http.post(
                "/admin/login",
                data={
                    "csrf_token": login_token.group(1),
                    "email": credentials["admin_email"],
                    "password": credentials["admin_password"],
                    "next": "/admin/",
                },
            )
            assert signed_in.status_code == 303, signed_in.text
            dashboard = await http.get("/admin/")
            assert dashboard.status_code == 200
            assert 'data-group="Welcome"' in dashboard.text

    assert "Traceback" not in first_log.read_text()
    assert path.exists()
    assert partners_in(path) == 1

    second_log = tmp_path / "second.log"
    with serving(url, tmp_path, second_log) as base_url:
        output = second_log.read_text()
        assert printed_credentials(output) == {}, output
        assert "Created the demo partner" not in output
        assert f"Tessera on {base_url} using sqlite" in output
        # The first start's credentials and data are still there.
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=LIMITS) as http:
            token = await login(http, credentials)
            auth = {"token": token, "store_department_id": credentials["store_department_id"]}
            listed = (
                await http.post(
                    "/api/v2/promocodes/list-for-user/", data={**auth, "user_phone": "79001234567"}
                )
            ).json()
            assert [code["number"] for code in listed["promocodes"]] == ["WELCOME-1"]
    assert "Traceback" not in second_log.read_text()
    assert partners_in(path) == 1


# --- First start and migrations (SPEC §9) ------------------------------------------------------

REVISIONS = migrate.pending_revisions(None) or []
HEAD, BEHIND = REVISIONS[-1], REVISIONS[-2]
SECRET = {"TESSERA_SECRET_KEY": "a-real-secret-for-the-tests"}
MIGRATE_FIRST = "the database has no schema: run `tessera migrate` first"


async def _on_server(sql: str) -> None:
    """Runs one statement on the PostgreSQL server's maintenance database."""
    server = make_url(POSTGRES_URL).set(database="postgres")
    connection = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def scratch_database(backend: str, folder: Path) -> Iterator[str]:
    """A database of the test's own with nothing in it, not even a schema."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'scratch.db'}"
        return
    name = f"tessera_scratch_{secrets.token_hex(6)}"
    asyncio.run(_on_server(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def scratch_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_scratch_url(tmp_path: Path) -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL only: TESSERA_TEST_DATABASE_URL is not set")
    with scratch_database("postgresql", tmp_path) as url:
        yield url


def tessera(database_url: str, workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TESSERA), *args],
        env=tessera_env(database_url, **env),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """What a refused start or command printed: exit code 1, exactly one line on stderr after
    ``error: ``, nothing on stdout."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0].removeprefix("error: ")


def migrate_to(database_url: str, revision: str) -> None:
    command.upgrade(migrate.alembic_config(database_url), revision)


def revision_of(database_url: str) -> str | None:
    return asyncio.run(migrate.current_revision(database_url))


def execute(database_url: str, sql: str) -> None:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(make_url(database_url).database or "") as connection:
            connection.execute(sql)
        connection.close()
        return

    async def run() -> None:
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def partners(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        return partners_in(Path(make_url(database_url).database or ""))

    async def count() -> int:
        connection = await asyncpg.connect(database_url)
        try:
            return int(await connection.fetchval("SELECT count(*) FROM partners"))
        finally:
            await connection.close()

    return asyncio.run(count())


@pytest.mark.parametrize("key", [None, "change-me", "  "], ids=["unset", "default", "blank"])
def test_serve_refuses_the_default_secret_key_outside_the_demo(tmp_path: Path, key: str | None) -> None:
    # Refused before any connection: the server need not exist.
    url = "postgresql://tessera@127.0.0.1:9/nowhere"
    env = {} if key is None else {"TESSERA_SECRET_KEY": key}

    line = one_error_line(tessera(url, tmp_path, "serve", **env))

    assert line.startswith(
        "TESSERA_SECRET_KEY is unset or the default `change-me`, which only a demo may use"
    )
    assert "set TESSERA_SECRET_KEY to a long random secret" in line


def test_the_worker_refuses_a_database_without_schema(scratch_url: str, tmp_path: Path) -> None:
    assert one_error_line(tessera(scratch_url, tmp_path, "worker")) == MIGRATE_FIRST
    assert not (tmp_path / "scratch.db").exists()  # a SQLite file is not made to find out


def test_serve_on_postgresql_refuses_a_database_without_schema(
    postgres_scratch_url: str, tmp_path: Path
) -> None:
    assert one_error_line(tessera(postgres_scratch_url, tmp_path, "serve", **SECRET)) == MIGRATE_FIRST
    assert one_error_line(tessera(postgres_scratch_url, tmp_path, "serve", "--demo")) == MIGRATE_FIRST


def test_an_outdated_schema_is_refused_until_migrate_applies_the_rest(
    scratch_url: str, tmp_path: Path
) -> None:
    migrate_to(scratch_url, BEHIND)
    behind = f"the database schema is at {BEHIND}, this Tessera needs {HEAD}: run `tessera migrate` first"

    assert one_error_line(tessera(scratch_url, tmp_path, "worker")) == behind
    if not scratch_url.startswith("sqlite"):  # serve on SQLite migrates by itself
        assert one_error_line(tessera(scratch_url, tmp_path, "serve", **SECRET)) == behind

    applied = tessera(scratch_url, tmp_path, "migrate")
    assert applied.returncode == 0, applied.stderr
    assert applied.stderr.strip() == f"applied {HEAD}; schema at {HEAD}"
    again = tessera(scratch_url, tmp_path, "migrate")
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip() == f"schema already at {HEAD}"
    assert revision_of(scratch_url) == HEAD


def test_migrate_on_an_empty_database_applies_every_migration(scratch_url: str, tmp_path: Path) -> None:
    result = tessera(scratch_url, tmp_path, "migrate")

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"applied {', '.join(REVISIONS)}; schema at {HEAD}"
    assert revision_of(scratch_url) == HEAD


def test_a_schema_newer_than_this_code_is_refused(scratch_url: str, tmp_path: Path) -> None:
    migrate_to(scratch_url, HEAD)
    execute(scratch_url, "UPDATE alembic_version SET version_num = '9999'")

    assert one_error_line(tessera(scratch_url, tmp_path, "worker")) == (
        f"the database schema is at 9999, which this Tessera does not know (it needs {HEAD}):"
        " run the newer Tessera that migrated it"
    )
    refused = one_error_line(tessera(scratch_url, tmp_path, "migrate"))
    assert refused.startswith("the schema could not be migrated: ")
    assert "9999" in refused


@pytest.mark.parametrize(
    "args", [("departments", "list"), ("admins", "list"), ("check",)], ids=lambda args: " ".join(args)
)
def test_a_command_on_a_database_without_schema_says_to_migrate(
    scratch_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    assert one_error_line(tessera(scratch_url, tmp_path, *args)) == MIGRATE_FIRST


def test_the_worker_runs_on_a_current_schema_until_stopped(scratch_url: str, tmp_path: Path) -> None:
    migrate_to(scratch_url, HEAD)
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(TESSERA), "worker"],
            env=tessera_env(scratch_url),
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while "Tessera worker on" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert "error" not in log.read_text().lower()


def test_serve_migrates_an_outdated_sqlite_file_by_itself(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outdated.db'}"
    migrate_to(url, BEHIND)
    execute(url, "INSERT INTO partners (name, created_at) VALUES ('Corner shop', '2025-01-01 00:00:00')")
    log = tmp_path / "serve.log"

    with serving(url, tmp_path, log) as base_url:
        ready = httpx.get(f"{base_url}/readyz", timeout=30)

    output = log.read_text()
    assert ready.status_code == 200, ready.text
    assert revision_of(url) == HEAD
    # Not empty: no demo partner, no credentials.
    assert printed_credentials(output) == {}, output
    assert partners(url) == 1
    assert "Traceback" not in output


def test_serve_on_postgresql_creates_no_demo_partner(postgres_scratch_url: str, tmp_path: Path) -> None:
    migrate_to(postgres_scratch_url, HEAD)
    log = tmp_path / "serve.log"

    with serving(postgres_scratch_url, tmp_path, log, env=SECRET) as base_url:
        ready = httpx.get(f"{base_url}/readyz", timeout=30)

    output = log.read_text()
    assert ready.status_code == 200, ready.text
    assert f"Tessera on {base_url} using postgresql" in output
    assert printed_credentials(output) == {}, output
    assert "warning" not in output.lower()
    assert partners(postgres_scratch_url) == 0
    assert "Traceback" not in output


async def test_serve_demo_creates_the_demo_partner_on_any_database_once(
    scratch_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(migrate_to, scratch_url, HEAD)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    # --demo also lets the default secret key through, with a warning.
    with serving(scratch_url, tmp_path, first_log, "--demo") as base_url:
        output = first_log.read_text()
        credentials = printed_credentials(output)
        assert set(credentials) == set(CREDENTIALS), output
        assert credentials["admin_email"] == "admin@demo.tessera.local"
        assert "warning: TESSERA_SECRET_KEY is unset or the default" in output
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=LIMITS) as http:
            await login(http, credentials)

    with serving(scratch_url, tmp_path, second_log, "--demo"):
        output = second_log.read_text()
        assert printed_credentials(output) == {}, output  # the database has a partner now
    assert await asyncio.to_thread(partners, scratch_url) == 1


async def test_metrics_of_several_worker_processes_are_summed(tmp_path: Path) -> None:
    """SPEC §9: `serve --workers 2` answers /metrics with both processes' counts, whichever answers."""
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    requests = 40
    with serving(url, tmp_path, tmp_path / "serve.log", "--workers", "2") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            # A new connection for each request lets the kernel spread them over both workers.
            for _ in range(requests):
                async with httpx.AsyncClient(base_url=base, timeout=30) as one:
                    await one.get("/healthz")
            scrapes = [(await http.get("/metrics")).text for _ in range(6)]

    counted = {
        float(found.group(1))
        for text in scrapes
        if (
            found := re.search(
                r'^tessera_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$', text, re.M
            )
        )
    }
    # Without the sum, each process would answer its own share (say 25 and 15).
    assert counted == {float(requests)}, counted
