"""SPEC §9: Prometheus metrics, a log line per request with a request id, and no secret in any line."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
from sqlalchemy import update

from conftest import LoyaltyClient, login
from tessera import logs
from tessera.admin import service as admin_service
from tessera.app import create_app
from tessera.clock import utcnow
from tessera.config import Settings
from tessera.db import Database
from tessera.messaging.models import WorkflowRun
from tessera.tenancy import service as tenancy


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value in Prometheus text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = (
        re.compile(rf"^{re.escape(name)}(?:\{{{re.escape(wanted)}\}})? (\S+)$", re.M) if wanted else None
    )
    found = (pattern or re.compile(rf"^{re.escape(name)} (\S+)$", re.M)).search(text)
    return float(found.group(1)) if found else 0.0


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


class TestMetrics:
    async def test_requests_are_counted_by_route_template_and_status(
        self, client: httpx.AsyncClient, loyalty: LoyaltyClient
    ) -> None:
        labels = {"route": "/api/v2/promocodes/info", "method": "POST", "status": "200"}
        before = sample(await scrape(client), "tessera_requests_total", **labels)
        for number in ("GUESS-1", "GUESS-2", "GUESS-3"):
            await loyalty.call("promocodes/info", number=number)
        text = await scrape(client)
        assert sample(text, "tessera_requests_total", **labels) == before + 3
        assert sample(text, "tessera_request_duration_seconds_count", route="/api/v2/promocodes/info") >= 3
        # A code never becomes a label: the template does.
        assert "GUESS-1" not in text

    async def test_an_unknown_path_is_one_label_whatever_the_path(self, client: httpx.AsyncClient) -> None:
        labels = {"route": "(unknown)", "method": "GET", "status": "404"}
        before = sample(await scrape(client), "tessera_requests_total", **labels)
        await client.get("/api/v2/no/such/path/secret-looking-123")
        text = await scrape(client)
        assert sample(text, "tessera_requests_total", **labels) == before + 1
        assert "secret-looking-123" not in text

    async def test_the_outbox_and_waiting_runs_are_read_from_the_database(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            key = await tenancy.create_api_key(session, department.partner_id)
        headers = {"Authorization": f"Bearer {key}"}
        message = await client.post(
            "/api/v1/messages/email",
            json={"name": "M", "from": "shop@example.com", "subject": "S", "htmlText": "x"},
            headers=headers,
        )
        workflow = {"name": "W", "trigger": {"event": "e"}, "steps": [{"type": "wait", "seconds": 60}]}
        assert (await client.post("/api/v1/workflows", json=workflow, headers=headers)).status_code == 200
        send = {"recipients": [{"locator": f"r{n}@example.com"} for n in range(3)]}
        assert (
            await client.post(f"/api/v1/message/{message.json()['id']}/smartsend", json=send, headers=headers)
        ).status_code == 200
        for _ in range(2):
            event = {"eventTypeKey": "e", "keyValue": "k", "params": []}
            assert (await client.post("/api/v1/event", json=event, headers=headers)).status_code == 200
        async with database.transaction() as session:
            await session.execute(update(WorkflowRun).values(available_at=utcnow()))

        text = await scrape(client)
        assert sample(text, "tessera_outbox_due") == 3
        assert sample(text, "tessera_outbox_oldest_due_seconds") >= 0
        assert sample(text, "tessera_workflow_runs_waiting") == 2
        assert "r0@example.com" not in text


class TestRequestLog:
    async def test_one_line_per_request_with_its_route_status_partner_and_request_id(
        self, client: httpx.AsyncClient, loyalty: LoyaltyClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="tessera")
        response = await client.post(
            "/api/v2/promocodes/info/",
            data={**loyalty.auth(), "number": "S-1"},
            headers={"X-Request-Id": "req-42"},
        )
        assert response.headers["X-Request-Id"] == "req-42"
        [line] = [r for r in caplog.records if r.name == "tessera.requests"]
        assert (line.method, line.route, line.status, line.request_id) == (  # type: ignore[attr-defined]
            "POST",
            "/api/v2/promocodes/info",
            200,
            "req-42",
        )
        assert line.partner == loyalty.department.partner_id  # type: ignore[attr-defined]
        assert line.duration_ms >= 0  # type: ignore[attr-defined]

    async def test_every_answer_carries_a_request_id(self, client: httpx.AsyncClient) -> None:
        first = await client.get("/api/v2/promocodes/groups/list/")
        second = await client.get("/api/v1/messages")
        ids = {first.headers["X-Request-Id"], second.headers["X-Request-Id"]}
        assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)

    async def test_without_request_lines_requests_are_still_counted(
        self, settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="tessera")
        app = create_app(settings.model_copy(update={"log_requests": False}), database)
        labels = {"route": "/healthz", "method": "GET", "status": "200"}
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                before = sample(await scrape(http), "tessera_requests_total", **labels)
                await http.get("/healthz")
                after = sample(await scrape(http), "tessera_requests_total", **labels)
        finally:
            logs.configure(requests=True)
        assert after == before + 1
        assert [r for r in caplog.records if r.name == "tessera.requests"] == []

    def test_json_lines_carry_the_fields(self) -> None:
        record = logging.LogRecord("tessera.requests", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
        record.route, record.status, record.request_id = "/x", 200, "abc"
        line = json.loads(logs.JsonFormatter().format(record))
        assert {k: line[k] for k in ("level", "logger", "message", "route", "status", "request_id")} == {
            "level": "info",
            "logger": "tessera.requests",
            "message": "GET /x",
            "route": "/x",
            "status": 200,
            "request_id": "abc",
        }


async def test_no_secret_reaches_a_log_line(
    client: httpx.AsyncClient,
    database: Database,
    department: tenancy.NewDepartment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Tokens, department keys, PINs, API keys, passwords and codes, wherever a request carries them.

    Every logger at INFO, the level the service logs at (aiosqlite's DEBUG lines echo statements'
    parameters; nothing here turns them on)."""
    caplog.set_level(logging.INFO)
    token = await login(client, department)
    async with database.transaction() as session:
        api_key = await tenancy.create_api_key(session, department.partner_id)
        await admin_service.create_admin(
            session, department.partner_id, "anna@shop.example", "Sesame-Open-42"
        )
    auth = {"token": token, "store_department_id": str(department.store_department_id)}
    codes = b"SECRETCODE-1\nSECRETCODE-2\n"
    await client.post(
        "/api/v2/promocodes/numbers/add/", data={**auth, "name": "G"}, files={"file": ("c.txt", codes)}
    )
    await client.get("/api/v2/promocodes/info/", params={**auth, "number": "SECRETCODE-1"})
    await client.post("/api/v2/users/add/", data={**auth, "email": "anna@example.com"})
    await client.post(
        "/api/v2/promocodes/activate/",
        data={**auth, "number": "SECRETCODE-2", "group_name": "G", "email": "x@y.z"},
    )
    await client.get("/api/v1/messages", headers={"Authorization": f"Bearer {api_key}"})
    await client.get("/api/v1/messages", auth=("tessera", api_key))
    await client.post("/admin/login", data={"email": "anna@shop.example", "password": "Sesame-Open-42"})
    await client.get("/api/v2/promocodes/info/", params={"token": token + "x", "store_department_id": "1"})

    # Everything the service's process logged, at every level; the test's own HTTP client aside.
    service_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    standard = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
    logged = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {[v for k, v in vars(r).items() if k not in standard]}"
        for r in service_records
    )
    assert any(r.name == "tessera.requests" for r in caplog.records)
    for secret in (
        token,
        department.store_department_key,
        department.pin_code,
        api_key,
        "Sesame-Open-42",
        "SECRETCODE-1",
        "SECRETCODE-2",
    ):
        where = logged.find(secret)
        assert where < 0, f"{secret!r} was logged: ...{logged[max(0, where - 200) : where + 50]}"
