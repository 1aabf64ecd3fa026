"""The real `tessera` console script, run as a subprocess against the test database (SPEC §1)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from conftest import LoyaltyClient, login
from tessera import migrate
from tessera.app import create_app
from tessera.config import Settings
from tessera.db import Database
from tessera.tenancy import service as tenancy

TESSERA = Path(sys.executable).parent / "tessera"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)

    def error(self) -> str:
        """The error the CLI printed: one readable line on stderr after ``error: ``, exit code 1,
        nothing on stdout, never a traceback or a JSON body."""
        assert self.returncode == 1, (self.stdout, self.stderr)
        assert self.stdout == ""
        assert "Traceback" not in self.stderr
        assert "{" not in self.stderr, self.stderr
        # An import's progress bar may come first; the error is the one line that follows it.
        [printed] = [line for line in self.stderr.splitlines() if "error" in line]
        assert printed.startswith("error: "), self.stderr
        return printed.removeprefix("error: ")


class Tessera:
    """Runs `tessera ...` with TESSERA_DATABASE_URL pointing at one test database."""

    def __init__(self, database_url: str, cwd: Path) -> None:
        self.database_url = database_url
        self.cwd = cwd

    async def __call__(self, *args: str, stdin: str = "") -> Run:
        """``stdin``: what a person types when asked (a password); the input is closed after it."""
        env = {**os.environ, "TESSERA_DATABASE_URL": self.database_url}
        process = await asyncio.create_subprocess_exec(
            str(TESSERA),
            *args,
            cwd=self.cwd,  # away from any .env file of the checkout
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=120)
        assert process.returncode is not None
        return Run(process.returncode, stdout.decode(), stderr.decode())

    async def department(self, name: str = "Shop", *more: str) -> dict[str, Any]:
        created: dict[str, Any] = (
            await self("departments", "create", "--name", name, *more, "--json")
        ).json()
        return created


@pytest.fixture(scope="session")
def cli_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh SQLite file migrated by `tessera migrate` itself, copied for each test."""
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "template.db"
    env = {**os.environ, "TESSERA_DATABASE_URL": f"sqlite:///{path}"}
    run = subprocess.run(
        [TESSERA, "migrate"], cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    return path


@pytest.fixture
async def cli_database_url(
    database_url: str, database: Database, cli_sqlite_template: Path, tmp_path: Path
) -> str:
    """SQLite: a fresh file migrated by `tessera migrate`. PostgreSQL: the migrated, emptied test database."""
    if not database.is_sqlite:
        return database_url
    path = tmp_path / "cli.db"
    shutil.copy(cli_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def tessera(cli_database_url: str, tmp_path: Path) -> Tessera:
    return Tessera(cli_database_url, tmp_path)


@pytest.fixture
async def service(cli_database_url: str) -> AsyncIterator[FastAPI]:
    """The service over the database the CLI writes to."""
    app = create_app(Settings(database_url=cli_database_url, token_cache_seconds=0))
    yield app
    await app.state.database.dispose()


@pytest.fixture
async def http(service: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service)
    async with httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as client:
        yield client


async def logged_in(http: httpx.AsyncClient, created: dict[str, Any]) -> LoyaltyClient:
    department = tenancy.NewDepartment(
        created["partner_id"],
        created["store_department_id"],
        created["store_department_key"],
        created["pin_code"],
    )
    return LoyaltyClient(http, department, await login(http, department))


async def new_shop(service: FastAPI, http: httpx.AsyncClient) -> LoyaltyClient:
    """A department made in-process (cheaper than one more subprocess), logged in over HTTP."""
    database: Database = service.state.database
    async with database.transaction() as session:
        department = await tenancy.create_department(session, "Shop")
    return LoyaltyClient(http, department, await login(http, department))


def write(path: Path, *numbers: str) -> Path:
    path.write_text("".join(f"{n}\n" for n in numbers), encoding="utf-8")
    return path


COMMANDS = [
    ("serve",),
    ("worker",),
    ("migrate",),
    ("check",),
    ("departments", "create"),
    ("departments", "list"),
    ("departments", "rotate-key"),
    ("api-keys", "create"),
    ("api-keys", "list"),
    ("api-keys", "revoke"),
    ("admins", "create"),
    ("admins", "list"),
    ("admins", "reset-password"),
    ("promocodes", "import"),
    ("certificates", "import"),
]


def help_rows(output: str) -> dict[str, str]:
    """An option panel's rows by option name: ``--json`` -> the rest of its line."""
    rows = {}
    for line in output.splitlines():
        cells = line.strip("│ ").split(maxsplit=1)
        if cells and cells[0].startswith("--"):
            rows[cells[0]] = cells[1] if len(cells) > 1 else ""
        elif len(cells) == 2 and cells[1].startswith("--"):  # a required option: "* --email ..."
            name, _, rest = cells[1].partition(" ")
            rows[name] = f"{cells[0]} {rest}"
    return rows


class TestHelp:
    async def test_lists_every_command(self, tmp_path: Path) -> None:
        run = await Tessera("sqlite:///unused.db", tmp_path)("--help")

        assert run.returncode == 0, run.stderr
        listed = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("│ ")]
        assert {
            "serve",
            "worker",
            "migrate",
            "check",
            "departments",
            "api-keys",
            "admins",
            "promocodes",
            "certificates",
        } <= set(listed)

    @pytest.mark.parametrize(
        ("group", "command"), [command for command in COMMANDS if len(command) == 2], ids="-".join
    )
    async def test_each_group_offers_its_command(self, tmp_path: Path, group: str, command: str) -> None:
        run = await Tessera("sqlite:///unused.db", tmp_path)(group, "--help")

        assert run.returncode == 0, run.stderr
        assert f"│ {command} " in run.stdout

    @pytest.mark.parametrize("command", [(), ("departments",), *COMMANDS], ids=" ".join)
    async def test_flags_are_shown_as_flags(self, tmp_path: Path, command: tuple[str, ...]) -> None:
        run = await Tessera("sqlite:///unused.db", tmp_path)(*command, "--help")

        assert run.returncode == 0, run.stderr
        assert "<bool>" not in run.stdout
        rows = help_rows(run.stdout)
        assert rows["--help"] == "Show this message and exit."
        if "--json" in rows:
            assert rows["--json"] == "Print the result as JSON."

    @pytest.mark.parametrize("command", [("admins", "create"), ("admins", "reset-password")], ids=" ".join)
    async def test_a_password_that_is_asked_for_is_not_required(
        self, tmp_path: Path, command: tuple[str, ...]
    ) -> None:
        run = await Tessera("sqlite:///unused.db", tmp_path)(*command, "--help")

        rows = help_rows(run.stdout)
        assert rows["--password"].startswith("<str>"), rows
        assert "required" not in rows["--password"]
        assert "required" in rows["--email"]

    async def test_serve_offers_demo_as_a_flag(self, tmp_path: Path) -> None:
        run = await Tessera("sqlite:///unused.db", tmp_path)("serve", "--help")

        assert help_rows(run.stdout)["--demo"].startswith("Create the demo partner")


class TestMigrate:
    async def test_creates_the_schema_in_a_fresh_sqlite_file_and_says_what_it_applied(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "fresh.db"
        tessera = Tessera(f"sqlite:///{path}", tmp_path)
        revisions = migrate.pending_revisions(None)
        assert revisions is not None

        run = await tessera("migrate")

        assert run.returncode == 0, run.stderr
        assert run.stderr.strip() == f"applied {', '.join(revisions)}; schema at {revisions[-1]}"
        assert (await tessera.department())["store_department_id"] == 1

    async def test_running_it_again_keeps_the_data_and_says_so(self, tessera: Tessera) -> None:
        created = await tessera.department()
        head = await migrate.head_revision()

        run = await tessera("migrate")

        assert run.returncode == 0, run.stderr
        assert run.stderr.strip() == f"schema already at {head}"
        again = await tessera.department("Second", "--partner-id", str(created["partner_id"]))
        assert again["partner_id"] == created["partner_id"]


class TestDepartmentsCreate:
    async def test_prints_the_credentials_as_json(self, tessera: Tessera) -> None:
        run = await tessera("departments", "create", "--name", "Main street shop", "--json")

        created = run.json()
        assert sorted(created) == ["partner_id", "pin_code", "store_department_id", "store_department_key"]
        assert isinstance(created["partner_id"], int)
        assert isinstance(created["store_department_id"], int)
        assert created["store_department_key"].isdigit()
        assert created["pin_code"].isdigit()

    async def test_the_credentials_log_in_over_http(self, tessera: Tessera, http: httpx.AsyncClient) -> None:
        created = await tessera.department()

        response = await http.post(
            "/api/v2/login/",
            data={
                "store_department_id": created["store_department_id"],
                "store_department_key": created["store_department_key"],
                "pin_code": created["pin_code"],
            },
        )

        body = response.json()
        assert (body["status"], body["pin_codes"]) == ("ok", [created["pin_code"]])
        assert re.fullmatch("[0-9a-f]{40}", body["token"])

    async def test_a_wrong_key_does_not_log_in(self, tessera: Tessera, http: httpx.AsyncClient) -> None:
        created = await tessera.department()
        key = created["store_department_key"]
        wrong_key = str((int(key) + 1) % 10 ** len(key)).zfill(len(key))

        response = await http.post(
            "/api/v2/login/",
            data={
                "store_department_id": created["store_department_id"],
                "store_department_key": wrong_key,
                "pin_code": created["pin_code"],
            },
        )

        assert response.json()["status_code"] == -2

    async def test_each_department_without_partner_id_gets_a_new_partner(self, tessera: Tessera) -> None:
        first = await tessera.department("First")
        second = await tessera.department("Second")

        assert first["partner_id"] != second["partner_id"]
        assert first["store_department_id"] != second["store_department_id"]

    async def test_partner_id_adds_a_department_to_that_partner(
        self, tessera: Tessera, http: httpx.AsyncClient
    ) -> None:
        first = await tessera.department("First")

        second = await tessera.department("Second", "--partner-id", str(first["partner_id"]))

        assert second["partner_id"] == first["partner_id"]
        assert second["store_department_id"] != first["store_department_id"]
        # Same partner: what one department uploads, the other sees.
        here, there = await logged_in(http, first), await logged_in(http, second)
        added = await here.call(
            "promocodes/numbers/add", files={"file": ("c.txt", b"AA1\n")}, name="Shared", type="1"
        )
        assert added["status"] == "ok", added
        info = await there.call("promocodes/info", number="AA1")
        assert [n["group"]["name"] for n in info["numbers"]] == ["Shared"]
        assert (await here.call("promocodes/info", number="AA1"))["numbers"] == info["numbers"]

    async def test_an_unknown_partner_id_fails(self, tessera: Tessera) -> None:
        run = await tessera("departments", "create", "--name", "Lost", "--partner-id", "987654", "--json")

        assert run.error() == "Partner 987654 not found"

    @pytest.mark.parametrize("name", ["   ", "x" * 256])
    async def test_a_blank_or_too_long_name_fails_and_creates_nothing(
        self, tessera: Tessera, name: str
    ) -> None:
        run = await tessera("departments", "create", "--name", name, "--json")

        assert run.error() == "Invalid value of name: must be 1 to 255 characters"
        assert (await tessera.department())["partner_id"] == 1  # the first partner made

    async def test_without_json_prints_each_credential(self, tessera: Tessera) -> None:
        run = await tessera("departments", "create", "--name", "Shop")

        assert run.returncode == 0, run.stderr
        printed = run.stdout + run.stderr
        for key in ("partner_id", "store_department_id", "store_department_key", "pin_code"):
            assert f"{key}: " in printed


class TestApiKeysCreate:
    async def test_prints_a_key_of_the_partner(self, tessera: Tessera) -> None:
        created = await tessera.department()
        partner_id = created["partner_id"]

        printed = (await tessera("api-keys", "create", "--partner-id", str(partner_id), "--json")).json()

        assert list(printed) == ["api_key"]
        prefix = f"tsk_{partner_id}_"
        assert printed["api_key"].startswith(prefix)
        assert len(printed["api_key"]) == len(prefix) + 40

    async def test_the_key_opens_the_messaging_face_for_its_partner_only(
        self, tessera: Tessera, http: httpx.AsyncClient
    ) -> None:
        created = await tessera.department()
        shop = await logged_in(http, created)
        customer = await shop.call("users/add", email="anna@example.com")
        stranger = (await tessera.department("Stranger"))["partner_id"]
        key = (
            await tessera("api-keys", "create", "--partner-id", str(created["partner_id"]), "--json")
        ).json()
        other = (await tessera("api-keys", "create", "--partner-id", str(stranger), "--json")).json()

        def search(api_key: str) -> Any:
            headers = {"Authorization": f"Bearer {api_key}"}
            return http.get("/api/v1/contacts", params={"email": "anna@example.com"}, headers=headers)

        mine, theirs, wrong = await asyncio.gather(
            search(key["api_key"]), search(other["api_key"]), search(key["api_key"] + "0")
        )

        assert (mine.status_code, [c["id"] for c in mine.json()]) == (200, [customer["id"]])
        assert (theirs.status_code, theirs.json()) == (200, [])
        assert wrong.status_code == 401

    async def test_each_key_is_new(self, tessera: Tessera) -> None:
        partner_id = str((await tessera.department())["partner_id"])

        first = (await tessera("api-keys", "create", "--partner-id", partner_id, "--json")).json()
        second = (await tessera("api-keys", "create", "--partner-id", partner_id, "--json")).json()

        assert first["api_key"] != second["api_key"]

    async def test_an_unknown_partner_fails(self, tessera: Tessera) -> None:
        run = await tessera("api-keys", "create", "--partner-id", "987654", "--json")

        assert run.error() == "Partner 987654 not found"


async def login_status(http: httpx.AsyncClient, department_id: int, key: str, pin_code: str) -> Any:
    response = await http.post(
        "/api/v2/login/",
        data={"store_department_id": department_id, "store_department_key": key, "pin_code": pin_code},
    )
    return response.json()


class TestDepartmentsList:
    async def test_lists_every_department_with_its_partner(self, tessera: Tessera) -> None:
        first = await tessera.department("Main street")
        second = await tessera.department("Harbour", "--partner-id", str(first["partner_id"]))
        other = await tessera.department("Elsewhere")

        listed = (await tessera("departments", "list", "--json")).json()

        assert listed == [
            {
                "id": first["store_department_id"],
                "name": "Main street",
                "partner_id": 1,
                "partner": "Main street",
            },
            {
                "id": second["store_department_id"],
                "name": "Harbour",
                "partner_id": 1,
                "partner": "Main street",
            },
            {
                "id": other["store_department_id"],
                "name": "Elsewhere",
                "partner_id": 2,
                "partner": "Elsewhere",
            },
        ]

    async def test_partner_id_lists_that_partner_s_departments(self, tessera: Tessera) -> None:
        first = await tessera.department("Main street")
        await tessera.department("Elsewhere")

        listed = (
            await tessera("departments", "list", "--partner-id", str(first["partner_id"]), "--json")
        ).json()

        assert [d["name"] for d in listed] == ["Main street"]

    async def test_without_json_prints_a_table_on_stdout(self, tessera: Tessera) -> None:
        created = await tessera.department("Main street")

        run = await tessera("departments", "list")

        assert run.returncode == 0, run.stderr
        assert created["store_department_id"] == 1
        assert run.stdout.splitlines() == [
            "id  name         partner_id  partner",
            "1   Main street  1           Main street",
        ]

    async def test_an_empty_database_lists_nothing(self, tessera: Tessera) -> None:
        assert (await tessera("departments", "list", "--json")).json() == []

    async def test_an_unknown_partner_fails(self, tessera: Tessera) -> None:
        run = await tessera("departments", "list", "--partner-id", "987654")

        assert run.error() == "Partner 987654 not found"


class TestDepartmentsRotateKey:
    async def test_the_new_key_logs_in_and_the_old_one_no_longer_does(
        self, tessera: Tessera, http: httpx.AsyncClient
    ) -> None:
        created = await tessera.department()
        department_id, pin = created["store_department_id"], created["pin_code"]
        shop = await logged_in(http, created)

        run = await tessera("departments", "rotate-key", "--department-id", str(department_id), "--json")

        rotated = run.json()
        assert sorted(rotated) == ["store_department_id", "store_department_key"]
        assert rotated["store_department_id"] == department_id
        assert re.fullmatch(r"[1-9][0-9]{15}", rotated["store_department_key"])
        assert rotated["store_department_key"] != created["store_department_key"]
        old = await login_status(http, department_id, created["store_department_key"], pin)
        assert old["status_code"] == -2
        new = await login_status(http, department_id, rotated["store_department_key"], pin)
        assert (new["status"], new["pin_codes"]) == ("ok", [pin])
        # A token the old key logged in keeps working until it expires.
        assert (await shop.call("promocodes/groups/list"))["status"] == "ok"

    async def test_each_rotation_makes_a_new_key_and_leaves_other_departments_alone(
        self, tessera: Tessera, http: httpx.AsyncClient
    ) -> None:
        created = await tessera.department()
        neighbour = await tessera.department("Neighbour", "--partner-id", str(created["partner_id"]))
        department = str(created["store_department_id"])

        first = (await tessera("departments", "rotate-key", "--department-id", department, "--json")).json()
        second = (await tessera("departments", "rotate-key", "--department-id", department, "--json")).json()

        assert first["store_department_key"] != second["store_department_key"]
        stale = await login_status(
            http, created["store_department_id"], first["store_department_key"], created["pin_code"]
        )
        assert stale["status_code"] == -2
        untouched = await logged_in(http, neighbour)
        assert (await untouched.call("promocodes/groups/list"))["status"] == "ok"

    async def test_without_json_prints_the_key(self, tessera: Tessera) -> None:
        created = await tessera.department()

        run = await tessera(
            "departments", "rotate-key", "--department-id", str(created["store_department_id"])
        )

        assert run.returncode == 0, run.stderr
        assert re.search(r"^store_department_key: [0-9]{16}$", run.stdout + run.stderr, re.MULTILINE)

    async def test_an_unknown_department_fails(self, tessera: Tessera) -> None:
        run = await tessera("departments", "rotate-key", "--department-id", "987654")

        assert run.error() == "Department 987654 not found"


class TestApiKeysList:
    async def test_lists_a_partner_s_keys_by_prefix_never_the_key(self, tessera: Tessera) -> None:
        partner_id = str((await tessera.department())["partner_id"])
        other = str((await tessera.department("Other"))["partner_id"])
        first = (await tessera("api-keys", "create", "--partner-id", partner_id, "--json")).json()["api_key"]
        second = (await tessera("api-keys", "create", "--partner-id", partner_id, "--json")).json()["api_key"]
        await tessera("api-keys", "create", "--partner-id", other, "--json")

        listed = (await tessera("api-keys", "list", "--partner-id", partner_id, "--json")).json()

        assert [sorted(key) for key in listed] == [["created_at", "id", "prefix", "revoked_at"]] * 2
        assert [key["prefix"] for key in listed] == [first[: len("tsk_1_") + 4], second[: len("tsk_1_") + 4]]
        assert [key["revoked_at"] for key in listed] == [None, None]
        for key in listed:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", key["created_at"])
        assert listed[0]["id"] < listed[1]["id"]

    async def test_a_revoked_key_shows_when(self, tessera: Tessera) -> None:
        partner_id = str((await tessera.department())["partner_id"])
        await tessera("api-keys", "create", "--partner-id", partner_id)
        [key] = (await tessera("api-keys", "list", "--partner-id", partner_id, "--json")).json()
        await tessera("api-keys", "revoke", "--partner-id", partner_id, "--id", str(key["id"]))

        run = await tessera("api-keys", "list", "--partner-id", partner_id)

        assert run.returncode == 0, run.stderr
        header, row = (line.split() for line in run.stdout.splitlines())
        assert header == ["id", "prefix", "created", "revoked"]
        assert row[:2] == [str(key["id"]), key["prefix"]]
        assert row[2] == key["created_at"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row[3])

    async def test_a_partner_without_keys_lists_nothing(self, tessera: Tessera) -> None:
        partner_id = str((await tessera.department())["partner_id"])

        assert (await tessera("api-keys", "list", "--partner-id", partner_id, "--json")).json() == []

    async def test_an_unknown_partner_fails(self, tessera: Tessera) -> None:
        run = await tessera("api-keys", "list", "--partner-id", "987654")

        assert run.error() == "Partner 987654 not found"


class TestApiKeysRevoke:
    async def test_a_revoked_key_no_longer_opens_the_messaging_face(
        self, tessera: Tessera, http: httpx.AsyncClient
    ) -> None:
        partner_id = str((await tessera.department())["partner_id"])
        revoked = (await tessera("api-keys", "create", "--partner-id", partner_id, "--json")).json()[
            "api_key"
        ]
        kept = (await tessera("api-keys", "create", "--partner-id", partner_id, "--json")).json()["api_key"]
        [key, _] = (await tessera("api-keys", "list", "--partner-id", partner_id, "--json")).json()

        run = await tessera(
            "api-keys", "revoke", "--partner-id", partner_id, "--id", str(key["id"]), "--json"
        )

        assert run.json() == {"partner_id": int(partner_id), "id": key["id"], "revoked": True}

        def contacts(api_key: str) -> Any:
            headers = {"Authorization": f"Bearer {api_key}"}
            return http.get("/api/v1/contacts", params={"email": "anna@example.com"}, headers=headers)

        assert (await contacts(revoked)).status_code == 401
        assert (await contacts(kept)).status_code == 200

    async def test_a_key_is_revoked_once(self, tessera: Tessera) -> None:
        partner_id = str((await tessera.department())["partner_id"])
        await tessera("api-keys", "create", "--partner-id", partner_id)
        [key] = (await tessera("api-keys", "list", "--partner-id", partner_id, "--json")).json()
        first = await tessera("api-keys", "revoke", "--partner-id", partner_id, "--id", str(key["id"]))
        assert first.returncode == 0, first.stderr

        again = await tessera("api-keys", "revoke", "--partner-id", partner_id, "--id", str(key["id"]))

        assert (
            again.error()
            == f"Partner {partner_id} has no live API key {key['id']} (unknown or already revoked)"
        )

    async def test_another_partner_s_key_is_not_revoked(
        self, tessera: Tessera, http: httpx.AsyncClient
    ) -> None:
        owner = str((await tessera.department())["partner_id"])
        stranger = str((await tessera.department("Stranger"))["partner_id"])
        api_key = (await tessera("api-keys", "create", "--partner-id", owner, "--json")).json()["api_key"]
        [key] = (await tessera("api-keys", "list", "--partner-id", owner, "--json")).json()

        run = await tessera("api-keys", "revoke", "--partner-id", stranger, "--id", str(key["id"]))

        assert (
            run.error() == f"Partner {stranger} has no live API key {key['id']} (unknown or already revoked)"
        )
        headers = {"Authorization": f"Bearer {api_key}"}
        response = await http.get("/api/v1/contacts", params={"email": "anna@example.com"}, headers=headers)
        assert response.status_code == 200

    async def test_an_unknown_partner_fails(self, tessera: Tessera) -> None:
        run = await tessera("api-keys", "revoke", "--partner-id", "987654", "--id", "1")

        assert run.error() == "Partner 987654 not found"


PASSWORD = "correct horse"


class AdminBrowser:
    """A browser of its own (its own cookies) on the admin UI of the service the CLI writes to."""

    def __init__(self, service: FastAPI) -> None:
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service), base_url="http://tessera.test"
        )

    async def __aenter__(self) -> AdminBrowser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def sign_in(self, email: str, password: str) -> bool:
        form = await self.http.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None, form.text
        response = await self.http.post(
            "/admin/login",
            data={"csrf_token": token.group(1), "email": email, "password": password, "next": "/admin/"},
        )
        assert response.status_code in (303, 401), response.text
        return response.status_code == 303

    async def is_signed_in(self) -> bool:
        return (await self.http.get("/admin/")).status_code == 200


async def create_admin(
    tessera: Tessera, partner_id: int, email: str, password: str = PASSWORD
) -> dict[str, Any]:
    created: dict[str, Any] = (
        await tessera(
            "admins",
            "create",
            "--partner-id",
            str(partner_id),
            "--email",
            email,
            "--password",
            password,
            "--json",
        )
    ).json()
    return created


class TestAdminsCreate:
    async def test_creates_an_admin_who_signs_in(self, tessera: Tessera, service: FastAPI) -> None:
        partner_id = (await tessera.department())["partner_id"]

        created = await create_admin(tessera, partner_id, "Anna@Shop.example")

        assert created == {
            "admin_id": created["admin_id"],
            "partner_id": partner_id,
            "email": "anna@shop.example",
        }
        async with AdminBrowser(service) as browser:
            assert await browser.sign_in("anna@shop.example", PASSWORD)
            assert await browser.is_signed_in()

    async def test_asks_for_the_password_when_omitted(self, tessera: Tessera, service: FastAPI) -> None:
        partner_id = str((await tessera.department())["partner_id"])

        run = await tessera(
            "admins",
            "create",
            "--partner-id",
            partner_id,
            "--email",
            "anna@shop.example",
            "--json",
            stdin=f"{PASSWORD}\n{PASSWORD}\n",
        )

        # The questions go to stderr: stdout holds only the JSON.
        assert run.json()["email"] == "anna@shop.example"
        assert "Password:" in run.stderr
        assert PASSWORD not in run.stdout + run.stderr
        async with AdminBrowser(service) as browser:
            assert await browser.sign_in("anna@shop.example", PASSWORD)

    async def test_a_password_not_confirmed_creates_nobody(self, tessera: Tessera) -> None:
        partner_id = str((await tessera.department())["partner_id"])

        run = await tessera(
            "admins",
            "create",
            "--partner-id",
            partner_id,
            "--email",
            "anna@shop.example",
            stdin=f"{PASSWORD}\nsomething else\n",
        )

        assert run.returncode == 1
        assert "Traceback" not in run.stderr
        assert run.stderr.splitlines()[-1] == (
            "error: no password given: give --password or type it twice when asked"
        )
        assert (await tessera("admins", "list", "--json")).json() == []

    async def test_a_taken_email_fails(self, tessera: Tessera) -> None:
        partner_id = (await tessera.department())["partner_id"]
        await create_admin(tessera, partner_id, "anna@shop.example")

        run = await tessera(
            "admins",
            "create",
            "--partner-id",
            str(partner_id),
            "--email",
            "ANNA@shop.example",
            "--password",
            PASSWORD,
        )

        assert run.error() == "Invalid value of email: an admin with email anna@shop.example already exists"


class TestAdminsList:
    async def test_lists_every_admin_with_their_partner(self, tessera: Tessera) -> None:
        first = (await tessera.department("Main street"))["partner_id"]
        second = (await tessera.department("Elsewhere"))["partner_id"]
        anna = await create_admin(tessera, first, "anna@shop.example")
        boris = await create_admin(tessera, second, "boris@else.example")

        listed = (await tessera("admins", "list", "--json")).json()

        assert [sorted(admin) for admin in listed] == [
            ["created_at", "email", "id", "partner", "partner_id"]
        ] * 2
        assert [(a["id"], a["email"], a["partner_id"], a["partner"]) for a in listed] == [
            (anna["admin_id"], "anna@shop.example", first, "Main street"),
            (boris["admin_id"], "boris@else.example", second, "Elsewhere"),
        ]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", a["created_at"]) for a in listed)
        assert "password" not in json.dumps(listed)

    async def test_partner_id_lists_that_partner_s_admins(self, tessera: Tessera) -> None:
        first = (await tessera.department("Main street"))["partner_id"]
        second = (await tessera.department("Elsewhere"))["partner_id"]
        await create_admin(tessera, first, "anna@shop.example")
        await create_admin(tessera, second, "boris@else.example")

        run = await tessera("admins", "list", "--partner-id", str(second))

        assert run.returncode == 0, run.stderr
        header, row = (line.split() for line in run.stdout.splitlines())
        assert header == ["id", "email", "partner_id", "partner", "created"]
        assert row[1:4] == ["boris@else.example", str(second), "Elsewhere"]

    async def test_an_unknown_partner_fails(self, tessera: Tessera) -> None:
        run = await tessera("admins", "list", "--partner-id", "987654")

        assert run.error() == "Partner 987654 not found"


class TestAdminsResetPassword:
    NEW_PASSWORD = "battery staple"

    @pytest.fixture
    async def anna(self, tessera: Tessera) -> dict[str, Any]:
        partner_id = (await tessera.department())["partner_id"]
        return await create_admin(tessera, partner_id, "anna@shop.example")

    async def test_the_new_password_signs_in_and_the_old_one_no_longer_does(
        self, tessera: Tessera, service: FastAPI, anna: dict[str, Any]
    ) -> None:
        run = await tessera(
            "admins",
            "reset-password",
            "--email",
            "Anna@shop.example",
            "--password",
            self.NEW_PASSWORD,
            "--json",
        )

        assert run.json() == {
            "admin_id": anna["admin_id"],
            "partner_id": anna["partner_id"],
            "email": "anna@shop.example",
        }
        async with AdminBrowser(service) as browser:
            assert not await browser.sign_in("anna@shop.example", PASSWORD)
            assert await browser.sign_in("anna@shop.example", self.NEW_PASSWORD)

    async def test_open_sessions_are_signed_out(
        self, tessera: Tessera, service: FastAPI, anna: dict[str, Any]
    ) -> None:
        async with AdminBrowser(service) as browser:
            assert await browser.sign_in("anna@shop.example", PASSWORD)

            run = await tessera(
                "admins", "reset-password", "--email", "anna@shop.example", "--password", self.NEW_PASSWORD
            )

            assert run.returncode == 0, run.stderr
            assert not await browser.is_signed_in()

    async def test_asks_for_the_password_when_omitted(
        self, tessera: Tessera, service: FastAPI, anna: dict[str, Any]
    ) -> None:
        run = await tessera(
            "admins",
            "reset-password",
            "--email",
            "anna@shop.example",
            stdin=f"{self.NEW_PASSWORD}\n{self.NEW_PASSWORD}\n",
        )

        assert run.returncode == 0, run.stderr
        assert self.NEW_PASSWORD not in run.stdout + run.stderr
        async with AdminBrowser(service) as browser:
            assert await browser.sign_in("anna@shop.example", self.NEW_PASSWORD)

    async def test_a_short_password_fails_and_keeps_the_old_one(
        self, tessera: Tessera, service: FastAPI, anna: dict[str, Any]
    ) -> None:
        run = await tessera("admins", "reset-password", "--email", "anna@shop.example", "--password", "short")

        assert run.error() == "Invalid value of password: must be at least 8 characters"
        async with AdminBrowser(service) as browser:
            assert await browser.sign_in("anna@shop.example", PASSWORD)

    async def test_an_unknown_email_fails(self, tessera: Tessera, anna: dict[str, Any]) -> None:
        run = await tessera(
            "admins", "reset-password", "--email", "boris@shop.example", "--password", PASSWORD
        )

        assert run.error() == "No admin with email boris@shop.example"


async def promocode_groups(loyalty: LoyaltyClient) -> list[dict[str, Any]]:
    body = await loyalty.call("promocodes/groups/list")
    assert body["status"] == "ok", body
    return [*body["groups"]["enabled"], *body["groups"]["disabled"]]


async def certificate_groups(loyalty: LoyaltyClient) -> list[dict[str, Any]]:
    body = await loyalty.call("coupons/groups/list")
    assert body["status"] == "ok", body
    found: list[dict[str, Any]] = body["groups"]
    return found


class TestPromocodesImport:
    @pytest.fixture
    async def shop(self, service: FastAPI, http: httpx.AsyncClient) -> LoyaltyClient:
        return await new_shop(service, http)

    async def import_(self, tessera: Tessera, shop: LoyaltyClient, path: Path, *more: str) -> Run:
        partner = str(shop.department.partner_id)
        return await tessera("promocodes", "import", str(path), "--partner-id", partner, *more)

    async def test_imports_an_activation_group(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "codes.txt", "AA1", "AA2", "AA3")

        run = await self.import_(tessera, shop, path, "--group", "Summer", "--type", "activation", "--json")

        printed = run.json()
        [group] = await promocode_groups(shop)
        assert printed == {"group_id": group["id"], "group": "Summer", "imported_count": 3}
        assert (group["name"], group["group_type"], group["total_count"], group["unused_count"]) == (
            "Summer",
            2,
            3,
            3,
        )
        assert (await shop.call("promocodes/info", number="AA2"))["status"] == "ok"

    async def test_a_new_group_is_simple_by_default(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "codes.txt", "AA1", "AA2")

        run = await self.import_(tessera, shop, path, "--group", "Plain")

        assert run.returncode == 0, run.stderr
        assert [(g["name"], g["group_type"], g["total_count"]) for g in await promocode_groups(shop)] == [
            ("Plain", 1, 2)
        ]

    async def test_a_second_import_appends_to_the_group(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        await self.import_(tessera, shop, write(tmp_path / "a.txt", "AA1", "AA2"), "--group", "Summer")

        run = await self.import_(
            tessera, shop, write(tmp_path / "b.csv", "BB1", "BB2", "BB3"), "--group", "Summer"
        )

        assert run.returncode == 0, run.stderr
        assert [(g["name"], g["total_count"]) for g in await promocode_groups(shop)] == [("Summer", 5)]

    async def test_an_invalid_number_fails_and_imports_nothing(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "codes.txt", "AA1", "AA2", "X" * 129, "AA4")

        run = await self.import_(tessera, shop, path, "--group", "Summer")

        assert run.error() == "Invalid number (line: 3; reason: longer than 128 characters)"
        assert await promocode_groups(shop) == []

    async def test_a_duplicate_fails_and_imports_nothing(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "codes.txt", "AA1", "AA2", "AA1")

        run = await self.import_(tessera, shop, path, "--group", "Summer")

        assert run.error() == "Duplicate numbers in file (duplicates: AA1)"
        assert await promocode_groups(shop) == []

    async def test_an_unsupported_file_fails(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "codes.pdf", "AA1")

        run = await self.import_(tessera, shop, path, "--group", "Summer")

        assert run.error() == (
            "Invalid file (reason: unsupported file type '.pdf'; expected .txt, .csv, .xls or .xlsx)"
        )
        assert await promocode_groups(shop) == []

    async def test_an_unknown_type_fails(self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path) -> None:
        path = write(tmp_path / "codes.txt", "AA1")

        run = await self.import_(tessera, shop, path, "--group", "Summer", "--type", "bogus")

        assert run.error() == "Invalid value of type: use 1 (simple) or 2 (activation)"
        assert await promocode_groups(shop) == []

    async def test_an_error_listing_long_numbers_prints_as_one_line(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        numbers = [f"[bold]{i:03d}-{'x' * 100}:smile:" for i in range(5)]
        path = write(tmp_path / "codes.txt", *numbers, *numbers)

        run = await self.import_(tessera, shop, path, "--group", "Summer")

        # Printed as they are: never wrapped, never read as markup or emoji.
        error = run.error()
        assert error.startswith("Duplicate numbers in file (duplicates: ")
        listed = error.removeprefix("Duplicate numbers in file (duplicates: ").removesuffix(")")
        assert sorted(listed.split(", ")) == numbers

    async def test_a_missing_file_fails(self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path) -> None:
        run = await self.import_(tessera, shop, tmp_path / "nowhere.txt", "--group", "Summer")

        assert run.returncode == 2
        assert await promocode_groups(shop) == []


class TestCertificatesImport:
    @pytest.fixture
    async def shop(self, service: FastAPI, http: httpx.AsyncClient) -> LoyaltyClient:
        return await new_shop(service, http)

    async def import_(self, tessera: Tessera, shop: LoyaltyClient, path: Path, *more: str) -> Run:
        department = str(shop.department.store_department_id)
        return await tessera("certificates", "import", str(path), "--department-id", department, *more)

    async def test_imports_a_group_of_certificates(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "certificates.txt", "GIFT-1", "GIFT-2", "GIFT-3")

        run = await self.import_(tessera, shop, path, "--group", "Gift 500", "--value", "500", "--json")

        printed = run.json()
        [group] = await certificate_groups(shop)
        assert printed == {"group_id": group["id"], "group": "Gift 500", "imported_count": 3}
        assert (group["name"], group["dep_id"], group["value"]) == (
            "Gift 500",
            shop.department.store_department_id,
            "500",
        )
        assert (group["total_count"], group["activated_count"], group["used_count"]) == (3, 0, 0)
        status = await shop.call("coupons/numbers/status", number="GIFT-2")
        assert (status["value"], status["dep_id"], status["group"]) == (
            "500",
            shop.department.store_department_id,
            {"id": group["id"], "name": "Gift 500"},
        )

    async def test_the_imported_certificates_follow_their_lifecycle(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        await self.import_(
            tessera, shop, write(tmp_path / "c.csv", "GIFT-1"), "--group", "G", "--value", "500"
        )
        target = shop.department.store_department_id

        assert await shop.call("coupons/numbers/activate", number="GIFT-1", target_dep_id=target) == {
            "status": "ok",
            "activated": True,
        }
        assert await shop.call("coupons/numbers/use", number="GIFT-1", target_dep_id=target) == {
            "status": "ok",
            "used": True,
        }

    async def test_an_invalid_number_fails_and_imports_nothing(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "certificates.txt", "GIFT-1", "G", "GIFT-3")

        run = await self.import_(tessera, shop, path, "--group", "Gift 500", "--value", "500")

        assert run.error() == "Invalid number (line: 2; reason: shorter than 2 characters)"
        assert await certificate_groups(shop) == []

    async def test_a_number_that_already_exists_fails_and_imports_nothing(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        await self.import_(
            tessera, shop, write(tmp_path / "a.txt", "GIFT-1", "GIFT-2"), "--group", "First", "--value", "500"
        )
        path = write(tmp_path / "b.txt", "GIFT-3", "GIFT-2")

        run = await self.import_(tessera, shop, path, "--group", "Second", "--value", "500")

        assert run.error() == "Duplicate numbers in file (duplicates: GIFT-2)"
        assert [(g["name"], g["total_count"]) for g in await certificate_groups(shop)] == [("First", 2)]
        assert (await shop.call("coupons/numbers/status", number="GIFT-3"))["status_code"] == -4200

    async def test_a_value_that_is_not_a_number_fails(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "certificates.txt", "GIFT-1")

        run = await self.import_(tessera, shop, path, "--group", "G", "--value", "lots")

        assert run.error() == "Invalid value of value: not a number"
        assert await certificate_groups(shop) == []

    async def test_an_unknown_department_fails(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "certificates.txt", "GIFT-1")

        run = await tessera(
            "certificates", "import", str(path), "--department-id", "987654", "--group", "G", "--value", "500"
        )

        assert run.error() == "Department not found"
        assert await certificate_groups(shop) == []
