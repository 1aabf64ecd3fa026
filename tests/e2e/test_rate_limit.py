"""Over the per-partner rate limit the loyalty face answers HTTP 429 with its error body (SPEC §3);
so does a client that fails too many code and certificate look-ups (enumeration)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import func, select

from conftest import LoyaltyClient, login
from tessera.app import create_app
from tessera.config import Settings
from tessera.db import Database
from tessera.tenancy import service as tenancy
from tessera.tenancy.models import LookupMisses


async def test_requests_over_the_limit_get_429_and_another_partner_is_not_affected(
    settings: Settings, database: Database
) -> None:
    async with database.transaction() as session:
        busy = await tenancy.create_department(session, "Busy shop")
        calm = await tenancy.create_department(session, "Calm shop")
    app = create_app(settings.model_copy(update={"rate_limit_per_second": 5}), database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tessera.test"
    ) as http:
        busy_token, calm_token = await login(http, busy), await login(http, calm)

        async def groups(department: tenancy.NewDepartment, token: str) -> httpx.Response:
            params = {"token": token, "store_department_id": department.store_department_id}
            return await http.get("/api/v2/promocodes/groups/list/", params=params)

        answers = [await groups(busy, busy_token) for _ in range(12)]
        calm_answer = await groups(calm, calm_token)

    # Twelve quick calls span at most two one-second windows of five each, so at least two are
    # refused. Login is not counted (it carries no token yet).
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) <= 10
    assert 429 in statuses
    limited = answers[statuses.index(429)]
    assert limited.json() == {"status": "error", "status_code": -429, "message": "Too many requests"}
    assert (calm_answer.status_code, calm_answer.json()["status"]) == (200, "ok")


async def test_without_a_limit_nothing_is_refused(loyalty: LoyaltyClient) -> None:
    for _ in range(30):
        body = await loyalty.call("promocodes/groups/list")
        assert body["status"] == "ok"


# --- failed look-ups --------------------------------------------------------------------------------

LOOKUPS_LIMITED = {
    "status": "error",
    "status_code": -429,
    "message": "Too many failed look-ups: try again in a minute",
}
NOT_FOUND = -4100


@asynccontextmanager
async def process(
    settings: Settings, database: Database, limit: int, address: str = "203.0.113.7"
) -> AsyncIterator[httpx.AsyncClient]:
    """One server process (its own app, so its own memory) seen from one client address."""
    app = create_app(settings.model_copy(update={"lookup_misses_per_minute": limit}), database)
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http:
        yield http


class Caller:
    def __init__(self, http: httpx.AsyncClient, department: tenancy.NewDepartment, token: str) -> None:
        self.http, self.department, self.token = http, department, token

    async def call(self, path: str, **params: str) -> httpx.Response:
        auth = {"token": self.token, "store_department_id": str(self.department.store_department_id)}
        return await self.http.post(f"/api/v2/{path}/", data={**auth, **params})

    async def info(self, number: str) -> httpx.Response:
        return await self.call("promocodes/info", number=number)


async def caller(http: httpx.AsyncClient, department: tenancy.NewDepartment) -> Caller:
    return Caller(http, department, await login(http, department))


async def with_codes(found: Caller, *numbers: str) -> None:
    content = "".join(f"{n}\n" for n in numbers).encode()
    response = await found.http.post(
        "/api/v2/promocodes/numbers/add/",
        data={
            "token": found.token,
            "store_department_id": str(found.department.store_department_id),
            "name": "G",
        },
        files={"file": ("codes.txt", content, "text/plain")},
    )
    assert response.json()["status"] == "ok", response.text


def status_code(response: httpx.Response) -> int:
    code: int = response.json()["status_code"]
    return code


async def test_misses_past_the_limit_refuse_every_lookup_of_that_client(
    settings: Settings, database: Database, department: tenancy.NewDepartment
) -> None:
    async with process(settings, database, limit=5) as http:
        shop = await caller(http, department)
        await with_codes(shop, "REAL-1")
        assert (await shop.info("REAL-1")).json()["status"] == "ok"
        # Misses over every look-up endpoint count together.
        misses = [
            await shop.info("GUESS-1"),
            await shop.call("promocodes/search", number="GUESS-2"),
            await shop.call("promocodes/activate", number="GUESS-3", group_name="G", email="a@example.com"),
            await shop.call("coupons/numbers/status", number="GUESS-4"),
            await shop.call("coupons/numbers/use", number="GUESS-5", target_dep_id="1"),
        ]
        assert [(r.status_code, r.json()["status_code"]) for r in misses] == [
            (200, NOT_FOUND),
            (200, NOT_FOUND),
            (200, NOT_FOUND),
            (200, -4200),
            (200, -4200),
        ]
        over = await shop.call("coupons/numbers/activate", number="GUESS-6", target_dep_id="1")
        assert (over.status_code, over.json()) == (429, LOOKUPS_LIMITED)
        # Now even a code that exists is refused: a guess that hits must not tell.
        hit = await shop.info("REAL-1")
        assert (hit.status_code, hit.json()) == (429, LOOKUPS_LIMITED)
        # What is not a look-up by number goes on.
        assert (await shop.call("promocodes/groups/list")).json()["status"] == "ok"

    async with process(settings, database, limit=5, address="198.51.100.9") as other_address:
        elsewhere = await caller(other_address, department)
        assert (await elsewhere.info("REAL-1")).json()["status"] == "ok"
        assert status_code(await elsewhere.info("GUESS-1")) == NOT_FOUND


async def test_another_partner_from_the_same_address_is_not_affected(
    settings: Settings, database: Database, department: tenancy.NewDepartment
) -> None:
    async with database.transaction() as session:
        neighbour = await tenancy.create_department(session, "Neighbour")
    async with process(settings, database, limit=2) as http:
        shop, other = await caller(http, department), await caller(http, neighbour)
        assert [status_code(await shop.info(f"G-{n}")) for n in range(3)] == [NOT_FOUND, NOT_FOUND, -429]
        assert status_code(await other.info("G-1")) == NOT_FOUND


async def test_the_count_is_shared_by_every_process(
    settings: Settings, database: Database, department: tenancy.NewDepartment
) -> None:
    async with process(settings, database, limit=5) as first, process(settings, database, limit=5) as second:
        a, b = await caller(first, department), await caller(second, department)
        assert [status_code(await a.info(f"A-{n}")) for n in range(3)] == [NOT_FOUND] * 3
        assert [status_code(await b.info(f"B-{n}")) for n in range(2)] == [NOT_FOUND] * 2
        # The sixth miss of this client, in the second process, is one too many.
        assert status_code(await b.info("B-3")) == -429
        # The first process learns it from its own next miss, and refuses from then on.
        assert status_code(await a.info("A-4")) == -429
        assert status_code(await a.info("A-5")) == -429


async def test_with_no_limit_misses_are_not_counted(
    settings: Settings, database: Database, department: tenancy.NewDepartment
) -> None:
    assert Settings().lookup_misses_per_minute == 100
    async with process(settings, database, limit=0) as http:
        shop = await caller(http, department)
        assert {status_code(await shop.info(f"G-{n}")) for n in range(30)} == {NOT_FOUND}
    async with database.reading() as session:
        assert await session.scalar(select(func.count()).select_from(LookupMisses)) == 0


async def test_past_minutes_are_forgotten(
    settings: Settings, database: Database, department: tenancy.NewDepartment
) -> None:
    async with database.transaction() as session:
        session.add(LookupMisses(partner_id=department.partner_id, client="192.0.2.1", minute=1, misses=99))
    async with process(settings, database, limit=5) as http:
        shop = await caller(http, department)
        assert status_code(await shop.info("G-1")) == NOT_FOUND
    async with database.reading() as session:
        rows = (await session.scalars(select(LookupMisses))).all()
    assert [(row.client, row.misses) for row in rows] == [("203.0.113.7", 1)]
