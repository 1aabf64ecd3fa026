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

    def error(self) -> dict[str, Any]:
        """The service error the CLI printed: one line of JSON after ``error``."""
        assert self.returncode != 0, self.stdout
        [printed] = [line for line in self.stderr.splitlines() if line.startswith("error {")]
        body: dict[str, Any] = json.loads(printed.removeprefix("error "))
        return body


class Tessera:
    """Runs `tessera ...` with TESSERA_DATABASE_URL pointing at one test database."""

    def __init__(self, database_url: str, cwd: Path) -> None:
        self.database_url = database_url
        self.cwd = cwd

    async def __call__(self, *args: str) -> Run:
        env = {**os.environ, "TESSERA_DATABASE_URL": self.database_url}
        process = await asyncio.create_subprocess_exec(
            str(TESSERA),
            *args,
            cwd=self.cwd,  # away from any .env file of the checkout
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
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


class TestHelp:
    async def test_lists_every_command(self, tmp_path: Path) -> None:
        run = await Tessera("sqlite:///unused.db", tmp_path)("--help")

        assert run.returncode == 0, run.stderr
        listed = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("│ ")]
        assert {"serve", "migrate", "departments", "api-keys", "promocodes", "certificates"} <= set(listed)

    @pytest.mark.parametrize(
        ("group", "command"),
        [
            ("departments", "create"),
            ("api-keys", "create"),
            ("promocodes", "import"),
            ("certificates", "import"),
        ],
    )
    async def test_each_group_offers_its_command(self, tmp_path: Path, group: str, command: str) -> None:
        run = await Tessera("sqlite:///unused.db", tmp_path)(group, "--help")

        assert run.returncode == 0, run.stderr
        assert f"│ {command} " in run.stdout


class TestMigrate:
    async def test_creates_the_schema_in_a_fresh_sqlite_file(self, tmp_path: Path) -> None:
        path = tmp_path / "fresh.db"
        tessera = Tessera(f"sqlite:///{path}", tmp_path)

        run = await tessera("migrate")

        assert run.returncode == 0, run.stderr
        assert "schema is up to date" in run.stderr
        assert (await tessera.department())["store_department_id"] == 1

    async def test_running_it_again_keeps_the_data(self, tessera: Tessera) -> None:
        created = await tessera.department()

        run = await tessera("migrate")

        assert run.returncode == 0, run.stderr
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

        assert run.returncode == 1
        assert run.stdout == ""
        assert run.error()["status_code"] == -4211
        assert run.error()["message"] == "Partner 987654 not found"

    @pytest.mark.parametrize("name", ["   ", "x" * 256])
    async def test_a_blank_or_too_long_name_fails_and_creates_nothing(
        self, tessera: Tessera, name: str
    ) -> None:
        run = await tessera("departments", "create", "--name", name, "--json")

        assert run.returncode == 1
        assert run.error()["message"] == "Invalid value of name: must be 1 to 255 characters"
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

        assert run.returncode == 1
        assert run.stdout == ""
        assert run.error()["status_code"] == -4211
        assert run.error()["message"] == "Partner 987654 not found"


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

        error = run.error()
        assert (run.returncode, error["status_code"], error["message"], error["line"]) == (
            1,
            -4203,
            "Invalid number",
            3,
        )
        assert await promocode_groups(shop) == []

    async def test_a_duplicate_fails_and_imports_nothing(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "codes.txt", "AA1", "AA2", "AA1")

        run = await self.import_(tessera, shop, path, "--group", "Summer")

        error = run.error()
        assert (run.returncode, error["status_code"], error["message"], error["duplicates"]) == (
            1,
            -4202,
            "Duplicate numbers in file",
            ["AA1"],
        )
        assert await promocode_groups(shop) == []

    async def test_an_unsupported_file_fails(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "codes.pdf", "AA1")

        run = await self.import_(tessera, shop, path, "--group", "Summer")

        error = run.error()
        assert (run.returncode, error["status_code"], error["message"]) == (1, -4201, "Invalid file")
        assert "Traceback" not in run.stderr
        assert await promocode_groups(shop) == []

    async def test_an_unknown_type_fails(self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path) -> None:
        path = write(tmp_path / "codes.txt", "AA1")

        run = await self.import_(tessera, shop, path, "--group", "Summer", "--type", "bogus")

        error = run.error()
        assert (run.returncode, error["status_code"], error["message"]) == (
            1,
            -1000,
            "Invalid value of type: use 1 (simple) or 2 (activation)",
        )
        assert await promocode_groups(shop) == []

    async def test_an_error_listing_long_numbers_prints_as_one_line_of_json(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        numbers = [f"[bold]{i:03d}-{'x' * 100}" for i in range(5)]
        path = write(tmp_path / "codes.txt", *numbers, *numbers)

        run = await self.import_(tessera, shop, path, "--group", "Summer")

        error = run.error()
        assert (run.returncode, error["status_code"], sorted(error["duplicates"])) == (1, -4202, numbers)

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

        error = run.error()
        assert (run.returncode, error["status_code"], error["message"], error["line"]) == (
            1,
            -4203,
            "Invalid number",
            2,
        )
        assert await certificate_groups(shop) == []

    async def test_a_number_that_already_exists_fails_and_imports_nothing(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        await self.import_(
            tessera, shop, write(tmp_path / "a.txt", "GIFT-1", "GIFT-2"), "--group", "First", "--value", "500"
        )
        path = write(tmp_path / "b.txt", "GIFT-3", "GIFT-2")

        run = await self.import_(tessera, shop, path, "--group", "Second", "--value", "500")

        error = run.error()
        assert (run.returncode, error["status_code"], error["message"], error["duplicates"]) == (
            1,
            -4202,
            "Duplicate numbers in file",
            ["GIFT-2"],
        )
        assert [(g["name"], g["total_count"]) for g in await certificate_groups(shop)] == [("First", 2)]
        assert (await shop.call("coupons/numbers/status", number="GIFT-3"))["status_code"] == -4200

    async def test_a_value_that_is_not_a_number_fails(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "certificates.txt", "GIFT-1")

        run = await self.import_(tessera, shop, path, "--group", "G", "--value", "lots")

        error = run.error()
        assert (run.returncode, error["status_code"], error["message"]) == (
            1,
            -1000,
            "Invalid value of value: not a number",
        )
        assert "Traceback" not in run.stderr
        assert await certificate_groups(shop) == []

    async def test_an_unknown_department_fails(
        self, tessera: Tessera, shop: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = write(tmp_path / "certificates.txt", "GIFT-1")

        run = await tessera(
            "certificates", "import", str(path), "--department-id", "987654", "--group", "G", "--value", "500"
        )

        error = run.error()
        assert (run.returncode, error["status_code"], error["message"]) == (1, -4209, "Department not found")
        assert await certificate_groups(shop) == []
