"""Over the per-partner rate limit the loyalty face answers HTTP 429 with its error body (SPEC §3)."""

from __future__ import annotations

import httpx

from conftest import LoyaltyClient, login
from tessera.app import create_app
from tessera.config import Settings
from tessera.db import Database
from tessera.tenancy import service as tenancy


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
    assert calm_answer.status_code == 200


async def test_without_a_limit_nothing_is_refused(loyalty: LoyaltyClient) -> None:
    for _ in range(30):
        body = await loyalty.call("promocodes/groups/list")
        assert body["status"] == "ok"
