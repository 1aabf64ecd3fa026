"""`tessera serve` as a real process (SPEC §1): on an empty SQLite file it migrates by itself,
creates a demo partner and prints its credentials once; they work over real HTTP; a second start
on the same file creates nothing and prints no credentials."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

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


@contextmanager
def serving(database_url: str, workdir: Path, log: Path) -> Iterator[str]:
    """Runs `tessera serve` until the block ends; yields its base URL once it listens."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    # Rich writes to stderr: no colours, no wrapping, nothing held in a buffer.
    env.update(TESSERA_DATABASE_URL=database_url, COLUMNS="250", TERM="dumb", PYTHONUNBUFFERED="1")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(TESSERA), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
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
