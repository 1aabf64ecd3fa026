"""Workflows end to end (SPEC §4, §5, §8): what starts them, what their steps do, low-stock events.

Workflows are created over the messaging face, started by events and by tags given over either
face, and walked by the worker, driven here one pass at a time with
``Worker(database, settings, channels={}).run_once()``: nothing is sent, deliveries stay queued.
Time passing is simulated by making waiting runs due (``available_at`` moved to the past).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from conftest import LoyaltyClient
from tessera.clock import utcnow
from tessera.config import Settings
from tessera.customers.models import Tag
from tessera.db import Database
from tessera.messaging import repository, templates
from tessera.messaging.leases import Claim
from tessera.messaging.models import Delivery, Event, WorkflowRun
from tessera.messaging.worker import Worker
from tessera.messaging.workflows import WorkflowEngine
from tessera.reconcile import find_problems
from tessera.tenancy import service as tenancy

ANNA = "anna@example.com"
BORIS = "boris@example.com"
ANNA_PHONE = "79001111111"
APPLIED_SUMMER = "Applied promo code Summer"
SUMMER_1 = "SUMMER-1"
NO_FREE = {"status": "error", "status_code": -4105, "message": "No free promocodes in group"}
ALREADY_ACTIVATED = {"status": "error", "status_code": -4104, "message": "Promocode already activated"}


@dataclass
class Api:
    """The partner's messaging-face client (HTTP Basic with its API key)."""

    http: httpx.AsyncClient
    partner_id: int
    key: str

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, path, json=body, auth=("tessera", self.key))
        assert response.status_code == 200, response.text
        return response.json() if response.content else None

    async def workflow(self, trigger: dict[str, str], *steps: dict[str, Any], enabled: bool = True) -> int:
        body = {"name": "W", "enabled": enabled, "trigger": trigger, "steps": list(steps)}
        workflow_id: int = (await self.ok("POST", "/api/v1/workflows", body))["id"]
        return workflow_id

    async def event(self, key: str, key_value: str = "k", version: int = 2, **params: Any) -> None:
        body = {
            "eventTypeKey": key,
            "keyValue": key_value,
            "params": [{"name": n, "value": v} for n, v in params.items()],
        }
        assert await self.ok("POST", f"/api/v{version}/event", body) is None

    async def message(self, channel: str = "email") -> int:
        body = (
            {
                "name": "Code",
                "from": "shop@example.com",
                "subject": "Code",
                "htmlText": "Code $!data.get('code')",
            }
            if channel == "email"
            else {"name": "Code", "from": "Shop", "text": "Code $!data.get('code')"}
        )
        message_id: int = (await self.ok("POST", f"/api/v1/messages/{channel}", body))["id"]
        return message_id


@pytest.fixture
async def api(client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment) -> Api:
    async with database.transaction() as session:
        key = await tenancy.create_api_key(session, department.partner_id)
    return Api(client, department.partner_id, key)


@pytest.fixture
def worker(database: Database, settings: Settings) -> Worker:
    return Worker(database, settings, channels={})


async def runs(database: Database, partner_id: int | None = None) -> list[WorkflowRun]:
    async with database.reading() as session:
        query = select(WorkflowRun).order_by(WorkflowRun.id)
        if partner_id is not None:
            query = query.where(WorkflowRun.partner_id == partner_id)
        return list(await session.scalars(query))


async def deliveries(database: Database) -> list[Delivery]:
    async with database.reading() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def events(database: Database, key: str) -> list[Event]:
    async with database.reading() as session:
        return list(
            await session.scalars(select(Event).where(Event.event_type_key == key).order_by(Event.id))
        )


async def make_due(database: Database) -> None:
    """Time passes: every waiting or backing-off run is due now."""
    async with database.transaction() as session:
        await session.execute(
            update(WorkflowRun)
            .where(WorkflowRun.status == "active")
            .values(available_at=utcnow() - timedelta(seconds=1))
        )


async def upload(loyalty: LoyaltyClient, name: str, *numbers: str, **options: str) -> dict[str, Any]:
    content = "".join(f"{n}\n" for n in numbers).encode()
    body = await loyalty.call(
        "promocodes/numbers/add", files={"file": ("codes.txt", content, "text/plain")}, name=name, **options
    )
    assert body["status"] == "ok", body
    group: dict[str, Any] = body["group"]
    return group


async def customer(loyalty: LoyaltyClient, **identifiers: str) -> int:
    body = await loyalty.call("users/add", **identifiers)
    assert body["status"] == "ok", body
    customer_id: int = body["id"]
    return customer_id


async def tag_rows(database: Database) -> list[str]:
    """Every tag the partners have, whoever carries it."""
    async with database.reading() as session:
        return list(await session.scalars(select(Tag.name).order_by(Tag.id)))


async def tag_names(loyalty: LoyaltyClient, **identifier: str) -> list[str]:
    body = await loyalty.call("users/tags/list", **identifier)
    assert body["status"] == "ok", body
    return sorted(t["name"] for t in body["tags"])


async def codes_of(loyalty: LoyaltyClient, **identifier: str) -> list[str]:
    body = await loyalty.call("promocodes/list-for-user", **identifier)
    assert body["status"] == "ok", body
    return [c["number"] for c in body["promocodes"]]


async def group_counts(loyalty: LoyaltyClient, name: str) -> tuple[int, int]:
    """(unused_count, receipted_count) of the group."""
    body = await loyalty.call("promocodes/groups/list")
    [group] = [g for g in body["groups"]["enabled"] + body["groups"]["disabled"] if g["name"] == name]
    return group["unused_count"], group["receipted_count"]


# ------------------------------------------------------------------------------------------------
# What starts a workflow


class TestEventTriggers:
    async def test_an_event_starts_each_enabled_workflow_with_its_key(
        self, api: Api, database: Database
    ) -> None:
        first = await api.workflow({"event": "promo_signup"}, {"type": "wait", "seconds": 1})
        second = await api.workflow({"event": "promo_signup"}, {"type": "add_tag", "tag": "x"})
        await api.workflow({"event": "promo_signup"}, {"type": "wait", "seconds": 1}, enabled=False)
        await api.workflow({"event": "other_event"}, {"type": "wait", "seconds": 1})
        await api.workflow({"tag": "promo_signup"}, {"type": "wait", "seconds": 1})

        await api.event("promo_signup", ANNA, EmailAddress=ANNA, code="ABC-123")

        [stored] = await events(database, "promo_signup")
        started = await runs(database)
        assert [
            (r.workflow_id, r.event_id, r.customer_id, r.data, r.status, r.step_index) for r in started
        ] == [
            (first, stored.id, None, {"EmailAddress": ANNA, "code": "ABC-123"}, "active", 0),
            (second, stored.id, None, {"EmailAddress": ANNA, "code": "ABC-123"}, "active", 0),
        ]

    @pytest.mark.parametrize("version", [1, 2])
    async def test_both_event_versions_start_workflows(
        self, api: Api, database: Database, version: int
    ) -> None:
        workflow_id = await api.workflow({"event": "promo_signup"}, {"type": "wait", "seconds": 1})

        await api.event("promo_signup", ANNA, version=version, EmailAddress=ANNA)

        assert [r.workflow_id for r in await runs(database)] == [workflow_id]

    async def test_each_event_starts_its_own_run(self, api: Api, database: Database) -> None:
        await api.workflow({"event": "promo_signup"}, {"type": "wait", "seconds": 1})

        await api.event("promo_signup", ANNA)
        await api.event("promo_signup", ANNA)

        assert len(await runs(database)) == 2

    async def test_a_deleted_workflow_no_longer_triggers(self, api: Api, database: Database) -> None:
        workflow_id = await api.workflow({"event": "promo_signup"}, {"type": "wait", "seconds": 1})
        await api.ok("DELETE", f"/api/v1/workflows/{workflow_id}")

        await api.event("promo_signup", ANNA)

        assert await runs(database) == []
        assert len(await events(database, "promo_signup")) == 1

    async def test_disabling_and_enabling_with_put(self, api: Api, database: Database) -> None:
        body = {"name": "W", "trigger": {"event": "promo_signup"}, "steps": [{"type": "wait", "seconds": 1}]}
        workflow_id = (await api.ok("POST", "/api/v1/workflows", body))["id"]

        await api.ok("PUT", f"/api/v1/workflows/{workflow_id}", {**body, "enabled": False})
        await api.event("promo_signup", ANNA)
        assert await runs(database) == []

        await api.ok("PUT", f"/api/v1/workflows/{workflow_id}", {**body, "enabled": True})
        await api.event("promo_signup", ANNA)
        assert [r.workflow_id for r in await runs(database)] == [workflow_id]

    async def test_a_workflow_moved_to_another_trigger_follows_it(self, api: Api, database: Database) -> None:
        body = {"name": "W", "trigger": {"event": "old_key"}, "steps": [{"type": "wait", "seconds": 1}]}
        workflow_id = (await api.ok("POST", "/api/v1/workflows", body))["id"]
        await api.ok("PUT", f"/api/v1/workflows/{workflow_id}", {**body, "trigger": {"event": "new_key"}})

        await api.event("old_key", ANNA)
        assert await runs(database) == []
        await api.event("new_key", ANNA)
        assert [r.workflow_id for r in await runs(database)] == [workflow_id]

    async def test_a_refused_event_starts_nothing(self, api: Api, database: Database) -> None:
        await api.workflow({"event": "promo_signup"}, {"type": "wait", "seconds": 1})

        response = await api.http.post(
            "/api/v2/event", json={"eventTypeKey": "promo_signup", "keyValue": "a,b"}, auth=("t", api.key)
        )

        assert response.status_code == 400
        assert await runs(database) == []

    async def test_another_partners_event_starts_nothing(
        self, api: Api, client: httpx.AsyncClient, database: Database
    ) -> None:
        await api.workflow({"event": "promo_signup"}, {"type": "wait", "seconds": 1})
        async with database.transaction() as session:
            other = await tenancy.create_department(session, "Another chain")
            other_key = await tenancy.create_api_key(session, other.partner_id)

        await Api(client, other.partner_id, other_key).event("promo_signup", ANNA)

        assert await runs(database) == []


class TestClaims:
    """A claim leases one batch of due rows, whatever plan PostgreSQL picks for it. Its planner
    once ran the claim's ``IN (SELECT ... LIMIT ... SKIP LOCKED)`` again for each row (a nested
    loop, chosen on stale statistics), and each row the claim had just leased failed the lock's
    re-check and pushed the LIMIT on: one pass took every due row. The test forces that plan."""

    async def claim(self, database: Database, claim: Any) -> int:
        async with database.transaction() as session:
            if not database.is_sqlite:
                await session.execute(text("SET LOCAL enable_hashjoin = off"))
                await session.execute(text("SET LOCAL enable_mergejoin = off"))
                await session.execute(text("SET LOCAL enable_material = off"))
            now = await repository.database_now(session)
            return len(await claim(session, now))

    async def test_of_workflow_runs(self, api: Api, database: Database) -> None:
        await api.workflow({"event": "promo_signup"}, {"type": "wait", "seconds": 60})
        for _ in range(300):
            await api.event("promo_signup", ANNA)

        claimed = await self.claim(
            database, lambda session, now: repository.claim_runs(session, now, timedelta(minutes=1), 100)
        )

        assert claimed == 100
        assert sum(run.attempts for run in await runs(database)) == 100

    async def test_of_deliveries(self, api: Api, database: Database) -> None:
        message_id = await api.message()
        body = {"recipients": [{"locator": f"buyer{n}@example.com"} for n in range(300)]}
        await api.ok("POST", f"/api/v1/message/{message_id}/smartsend", body)

        claimed = await self.claim(
            database,
            lambda session, now: repository.claim_deliveries(
                session, ["email"], now, timedelta(minutes=1), 100
            ),
        )

        assert claimed == 100
        assert sum(delivery.attempts for delivery in await deliveries(database)) == 100


class TestTagTriggers:
    async def test_activation_tag_starts_the_workflow_once_per_customer(
        self, api: Api, loyalty: LoyaltyClient, database: Database
    ) -> None:
        await upload(loyalty, "Summer", "SUMMER-1", "SUMMER-2", type="2")
        workflow_id = await api.workflow({"tag": APPLIED_SUMMER}, {"type": "wait", "seconds": 1})
        anna = await customer(loyalty, email=ANNA)

        first = await loyalty.call("promocodes/activate", email=ANNA, group_name="Summer", number="SUMMER-1")
        second = await loyalty.call("promocodes/activate", email=ANNA, group_name="Summer", number="SUMMER-2")

        assert (first["status"], second["status"]) == ("ok", "ok")
        assert [(r.workflow_id, r.customer_id, r.data) for r in await runs(database)] == [
            (workflow_id, anna, {"tag": APPLIED_SUMMER})
        ]
        assert await tag_names(loyalty, email=ANNA) == [APPLIED_SUMMER]

    async def test_a_multi_use_code_starts_it_for_each_new_customer_only(
        self, api: Api, loyalty: LoyaltyClient, database: Database
    ) -> None:
        await upload(loyalty, "Summer", "CLUB", "CLUB-2", type="2", apply_items_once="0")
        await api.workflow({"tag": APPLIED_SUMMER}, {"type": "wait", "seconds": 1})
        anna = await customer(loyalty, email=ANNA)
        boris = await customer(loyalty, email=BORIS)

        assert (await loyalty.call("promocodes/activate", email=ANNA, group_name="Summer", number="CLUB"))[
            "status"
        ] == "ok"
        again = await loyalty.call("promocodes/activate", email=ANNA, group_name="Summer", number="CLUB")
        other_code = await loyalty.call(
            "promocodes/activate", email=ANNA, group_name="Summer", number="CLUB-2"
        )
        by_boris = await loyalty.call("promocodes/activate", email=BORIS, group_name="Summer", number="CLUB")

        assert again == ALREADY_ACTIVATED
        assert (other_code["status"], by_boris["status"]) == ("ok", "ok")
        assert [r.customer_id for r in await runs(database)] == [anna, boris]

    async def test_activation_starts_every_enabled_workflow_of_its_tag_for_each_new_customer(
        self, api: Api, loyalty: LoyaltyClient, database: Database
    ) -> None:
        await upload(loyalty, "Summer", "SUMMER-1", "SUMMER-2", type="2")
        first = await api.workflow({"tag": APPLIED_SUMMER}, {"type": "wait", "seconds": 1})
        second = await api.workflow({"tag": APPLIED_SUMMER}, {"type": "wait", "seconds": 2})
        await api.workflow({"tag": APPLIED_SUMMER}, {"type": "wait", "seconds": 1}, enabled=False)
        await api.workflow({"tag": "Applied promo code Winter"}, {"type": "wait", "seconds": 1})
        anna = await customer(loyalty, email=ANNA)
        boris = await customer(loyalty, email=BORIS)

        # Anna's is the group's first activation (its tag is new); Boris's finds the tag known.
        for email, number in ((ANNA, "SUMMER-1"), (BORIS, "SUMMER-2")):
            body = await loyalty.call("promocodes/activate", email=email, group_name="Summer", number=number)
            assert body["status"] == "ok", body

        assert sorted((r.workflow_id, r.customer_id, r.data["tag"]) for r in await runs(database)) == sorted(
            (workflow, who, APPLIED_SUMMER) for workflow in (first, second) for who in (anna, boris)
        )

    async def test_a_refused_first_activation_leaves_no_tag_behind(
        self, api: Api, loyalty: LoyaltyClient, database: Database
    ) -> None:
        await upload(loyalty, "Summer", SUMMER_1, type="2")
        await api.workflow({"tag": APPLIED_SUMMER}, {"type": "wait", "seconds": 1})
        await customer(loyalty, email=ANNA)
        boris = await customer(loyalty, email=BORIS)
        issued = await loyalty.call("promocodes/issue", email=BORIS, group_name="Summer")
        assert issued["status"] == "ok", issued

        code = {"group_name": "Summer", "number": SUMMER_1}
        refused = await loyalty.call("promocodes/activate", email=ANNA, **code)
        tags_after_refusal = await tag_rows(database)
        accepted = await loyalty.call("promocodes/activate", email=BORIS, **code)

        assert refused == ALREADY_ACTIVATED
        assert tags_after_refusal == []
        assert accepted["status"] == "ok", accepted
        assert await tag_rows(database) == [APPLIED_SUMMER]
        assert [r.customer_id for r in await runs(database)] == [boris]

    async def test_activation_in_another_group_does_not_start_it(
        self, api: Api, loyalty: LoyaltyClient, database: Database
    ) -> None:
        await upload(loyalty, "Winter", "WINTER-1", type="2")
        await api.workflow({"tag": APPLIED_SUMMER}, {"type": "wait", "seconds": 1})
        await customer(loyalty, email=ANNA)

        await loyalty.call("promocodes/activate", email=ANNA, group_name="Winter", number="WINTER-1")

        assert await runs(database) == []

    async def test_users_tags_add_starts_it_when_the_tag_is_new(
        self, api: Api, loyalty: LoyaltyClient, database: Database
    ) -> None:
        vip = await api.workflow({"tag": "VIP"}, {"type": "wait", "seconds": 1})
        newsletter = await api.workflow({"tag": "Newsletter"}, {"type": "wait", "seconds": 1})
        await api.workflow({"tag": "Other"}, {"type": "wait", "seconds": 1})
        await api.workflow({"tag": "VIP"}, {"type": "wait", "seconds": 1}, enabled=False)
        anna = await customer(loyalty, email=ANNA)

        await loyalty.call("users/tags/add", email=ANNA, tags="VIP,Newsletter")
        await loyalty.call("users/tags/add", email=ANNA, tags="VIP")

        assert sorted((r.workflow_id, r.customer_id) for r in await runs(database)) == [
            (vip, anna),
            (newsletter, anna),
        ]

    async def test_a_tag_deleted_and_added_again_is_new_again(
        self, api: Api, loyalty: LoyaltyClient, database: Database
    ) -> None:
        await api.workflow({"tag": "VIP"}, {"type": "wait", "seconds": 1})
        await customer(loyalty, email=ANNA)

        await loyalty.call("users/tags/add", email=ANNA, tags="VIP")
        await loyalty.call("users/tags/delete", email=ANNA, tags="VIP")
        await loyalty.call("users/tags/add", email=ANNA, tags="VIP")

        assert len(await runs(database)) == 2

    async def test_an_add_tag_step_starts_that_tags_workflow(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await api.workflow({"event": "promo_signup"}, {"type": "add_tag", "tag": "VIP"})
        follow_up = await api.workflow({"tag": "VIP"}, {"type": "add_tag", "tag": "Welcomed"})
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        await worker.run_once()

        anna = (await loyalty.call("users/info", email=ANNA))["id"]
        [first, second] = await runs(database)
        assert (first.status, first.customer_id) == ("done", anna)
        assert (second.workflow_id, second.customer_id, second.status) == (follow_up, anna, "active")
        assert await tag_names(loyalty, email=ANNA) == ["VIP"]

        await worker.run_once()

        assert await tag_names(loyalty, email=ANNA) == ["VIP", "Welcomed"]
        assert [r.status for r in await runs(database)] == ["done", "done"]

    async def test_an_add_tag_step_for_a_tag_already_held_starts_nothing(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await customer(loyalty, email=ANNA)
        await loyalty.call("users/tags/add", email=ANNA, tags="VIP")
        await api.workflow({"event": "promo_signup"}, {"type": "add_tag", "tag": "VIP"})
        await api.workflow({"tag": "VIP"}, {"type": "add_tag", "tag": "Welcomed"})
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        await worker.run_once()

        assert [r.status for r in await runs(database)] == ["done"]


# ------------------------------------------------------------------------------------------------
# Steps


class TestIssuePromocodeStep:
    async def test_puts_the_code_in_data_under_as_and_binds_it_to_the_contact(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await upload(loyalty, "Summer", "S-1", "S-2", "S-3")
        await api.workflow(
            {"event": "promo_signup"}, {"type": "issue_promocode", "group": "Summer", "as": "promo"}
        )
        await api.event("promo_signup", "anna", EmailAddress="Anna@Example.com", name="Anna")

        assert await worker.run_once() == 1

        [run] = await runs(database)
        anna = await loyalty.call("users/info", email=ANNA)
        assert (run.status, run.step_index, run.customer_id, run.last_error) == ("done", 1, anna["id"], None)
        assert run.data == {"EmailAddress": "Anna@Example.com", "name": "Anna", "promo": run.data["promo"]}
        assert run.data["promo"] in {"S-1", "S-2", "S-3"}
        assert await codes_of(loyalty, email=ANNA) == [run.data["promo"]]
        assert await group_counts(loyalty, "Summer") == (2, 1)

    async def test_as_defaults_to_code(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await upload(loyalty, "Summer", "S-1")
        await api.workflow({"event": "promo_signup"}, {"type": "issue_promocode", "group": "Summer"})
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        await worker.run_once()

        assert (await runs(database))[0].data["code"] == "S-1"

    async def test_the_code_reaches_the_next_send_step(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await upload(loyalty, "Summer", "S-1")
        message_id = await api.message("email")
        await api.workflow(
            {"event": "promo_signup"},
            {"type": "issue_promocode", "group": "Summer", "as": "code"},
            {"type": "send", "message_id": message_id, "to_param": "EmailAddress"},
        )
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        await worker.run_once()

        [delivery] = await deliveries(database)
        assert (delivery.recipient, delivery.message_id, delivery.channel) == (ANNA, message_id, "email")
        assert delivery.data == {"EmailAddress": ANNA, "code": "S-1"}
        assert templates.render("Code $!data.get('code')", delivery.data) == "Code S-1"

    async def test_running_the_worker_again_never_takes_a_second_code(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await upload(loyalty, "Summer", "S-1", "S-2", "S-3")
        await api.workflow({"event": "promo_signup"}, {"type": "issue_promocode", "group": "Summer"})
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        await worker.run_once()
        await make_due(database)
        assert await worker.run_once() == 0

        assert await group_counts(loyalty, "Summer") == (2, 1)
        assert len(await codes_of(loyalty, email=ANNA)) == 1

    async def test_a_retry_of_a_later_failing_step_never_takes_a_second_code(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await upload(loyalty, "Summer", "S-1", "S-2", "S-3")
        message_id = await api.message("email")
        await api.workflow(
            {"event": "promo_signup"},
            {"type": "issue_promocode", "group": "Summer"},
            {"type": "send", "message_id": message_id, "to_param": "Missing"},
        )
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        await worker.run_once()
        [run] = await runs(database)
        code = run.data["code"]
        assert (run.status, run.step_index, run.last_error) == (
            "active",
            1,
            "the event has no 'Missing' param to send to",
        )
        for _ in range(3):
            await make_due(database)
            assert await worker.run_once() == 1

        [run] = await runs(database)
        assert (run.status, run.step_index, run.data["code"]) == ("active", 1, code)
        assert await codes_of(loyalty, email=ANNA) == [code]
        assert await group_counts(loyalty, "Summer") == (2, 1)
        assert await deliveries(database) == []

    async def test_each_run_takes_its_own_code(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await upload(loyalty, "Summer", "S-1", "S-2", "S-3")
        await api.workflow({"event": "promo_signup"}, {"type": "issue_promocode", "group": "Summer"})
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)
        await api.event("promo_signup", BORIS, EmailAddress=BORIS)

        await worker.run_once()

        codes = [r.data["code"] for r in await runs(database)]
        assert len(set(codes)) == 2
        assert await codes_of(loyalty, email=ANNA) == [codes[0]]
        assert await codes_of(loyalty, email=BORIS) == [codes[1]]

    async def test_a_tag_run_issues_to_the_tagged_customer(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await upload(loyalty, "Summer", "S-1")
        await api.workflow({"tag": "VIP"}, {"type": "issue_promocode", "group": "Summer"})
        await customer(loyalty, user_phone=ANNA_PHONE)
        await loyalty.call("users/tags/add", user_phone=ANNA_PHONE, tags="VIP")

        await worker.run_once()

        assert await codes_of(loyalty, user_phone=ANNA_PHONE) == ["S-1"]

    async def test_the_contact_is_found_by_phone_or_external_id_too(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await upload(loyalty, "Summer", "S-1", "S-2")
        existing = await customer(loyalty, user_phone=ANNA_PHONE)
        await api.workflow({"event": "promo_signup"}, {"type": "issue_promocode", "group": "Summer"})
        await api.event("promo_signup", "k1", Phone="+7 900 111-11-11")
        await api.event("promo_signup", "k2", externalCustomerId="crm-9")

        await worker.run_once()

        [by_phone, by_id] = await runs(database)
        assert by_phone.customer_id == existing
        assert await codes_of(loyalty, user_phone=ANNA_PHONE) == [by_phone.data["code"]]
        assert await codes_of(loyalty, origin_user_id="crm-9") == [by_id.data["code"]]

    async def test_an_exhausted_group_fails_the_step_and_it_is_retried_later(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await upload(loyalty, "Summer", "S-1")
        await customer(loyalty, email=BORIS)
        assert (await loyalty.call("promocodes/issue", email=BORIS, group_name="Summer"))["status"] == "ok"
        await api.workflow({"event": "promo_signup"}, {"type": "issue_promocode", "group": "Summer"})
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        before = utcnow()
        await worker.run_once()

        [run] = await runs(database)
        assert (run.status, run.step_index, run.attempts, run.last_error) == (
            "active",
            0,
            1,
            "No free promocodes in group",
        )
        assert run.available_at > before
        assert await worker.run_once() == 0

        await upload(loyalty, "Summer", "S-2")
        await make_due(database)
        assert await worker.run_once() == 1

        [run] = await runs(database)
        assert (run.status, run.last_error, run.data["code"]) == ("done", None, "S-2")
        assert await codes_of(loyalty, email=ANNA) == ["S-2"]

    async def test_a_step_that_keeps_failing_ends_failed(
        self, api: Api, loyalty: LoyaltyClient, database: Database, database_url: str
    ) -> None:
        worker = Worker(database, Settings(database_url=database_url, delivery_max_attempts=3), channels={})
        await api.workflow({"event": "promo_signup"}, {"type": "issue_promocode", "group": "Nonexistent"})
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        for _ in range(3):
            await make_due(database)
            assert await worker.run_once() == 1

        [run] = await runs(database)
        assert (run.status, run.attempts, run.last_error) == ("failed", 3, "Promocode group not found")
        await make_due(database)
        assert await worker.run_once() == 0

    async def test_a_disabled_group_fails_the_step(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        group = await upload(loyalty, "Summer", "S-1")
        await loyalty.call("promocodes/groups/edit", group_id=group["id"], enabled="0")
        await api.workflow({"event": "promo_signup"}, {"type": "issue_promocode", "group": "Summer"})
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        await worker.run_once()

        [run] = await runs(database)
        assert (run.status, run.last_error) == ("active", "Promocode group is disabled")
        assert await group_counts(loyalty, "Summer") == (1, 0)


class TestSendStep:
    async def test_to_param_names_the_recipient(
        self, api: Api, database: Database, worker: Worker, settings: Settings
    ) -> None:
        message_id = await api.message("email")
        await api.workflow(
            {"event": "order"}, {"type": "send", "message_id": message_id, "to_param": "notify"}
        )
        await api.event("order", ANNA, EmailAddress=ANNA, notify="Boris@Example.com", code="X")

        await worker.run_once()

        [delivery] = await deliveries(database)
        assert (delivery.recipient, delivery.channel, delivery.status, delivery.data) == (
            BORIS,
            "email",
            "queued",
            {"EmailAddress": ANNA, "notify": "Boris@Example.com", "code": "X"},
        )
        [run] = await runs(database)
        assert (run.status, run.customer_id) == ("done", None)

    async def test_without_to_param_an_event_run_sends_to_its_contacts_email(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        message_id = await api.message("email")
        await api.workflow({"event": "order"}, {"type": "send", "message_id": message_id})
        await api.event("order", "anna", EmailAddress="ANNA@example.com")

        await worker.run_once()

        [delivery] = await deliveries(database)
        assert delivery.recipient == ANNA
        [run] = await runs(database)
        assert run.customer_id == (await loyalty.call("users/info", email=ANNA))["id"]

    async def test_without_to_param_a_tag_run_sends_to_the_customers_own_email(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        message_id = await api.message("email")
        await api.workflow({"tag": "VIP"}, {"type": "send", "message_id": message_id})
        await customer(loyalty, email=ANNA, user_phone=ANNA_PHONE)
        await loyalty.call("users/tags/add", email=ANNA, tags="VIP")

        await worker.run_once()

        assert [(d.recipient, d.channel) for d in await deliveries(database)] == [(ANNA, "email")]

    async def test_without_to_param_an_sms_goes_to_the_customers_phone(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        message_id = await api.message("sms")
        await api.workflow({"tag": "VIP"}, {"type": "send", "message_id": message_id})
        await customer(loyalty, email=ANNA, user_phone=ANNA_PHONE)
        await loyalty.call("users/tags/add", email=ANNA, tags="VIP")

        await worker.run_once()

        assert [(d.recipient, d.channel) for d in await deliveries(database)] == [(ANNA_PHONE, "sms")]

    async def test_a_customer_without_that_channel_fails_the_step(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        message_id = await api.message("sms")
        await api.workflow({"tag": "VIP"}, {"type": "send", "message_id": message_id})
        await customer(loyalty, email=ANNA)
        await loyalty.call("users/tags/add", email=ANNA, tags="VIP")

        await worker.run_once()

        [run] = await runs(database)
        assert (run.status, run.step_index, run.last_error) == ("active", 0, "the contact has no phone")
        assert await deliveries(database) == []

    async def test_an_invalid_to_param_value_fails_the_step(
        self, api: Api, database: Database, worker: Worker
    ) -> None:
        message_id = await api.message("email")
        await api.workflow({"event": "order"}, {"type": "send", "message_id": message_id, "to_param": "to"})
        await api.event("order", ANNA, to="not-an-email")

        await worker.run_once()

        [run] = await runs(database)
        assert (run.status, run.last_error) == ("active", "'not-an-email' is not a valid email recipient")

    async def test_a_message_deleted_after_the_workflow_was_saved_fails_the_step(
        self, api: Api, database: Database, worker: Worker
    ) -> None:
        message_id = await api.message("email")
        await api.workflow({"event": "order"}, {"type": "send", "message_id": message_id, "to_param": "to"})
        await api.ok("DELETE", f"/api/v1/messages/{message_id}")
        await api.event("order", ANNA, to=ANNA)

        await worker.run_once()

        [run] = await runs(database)
        assert (run.status, run.last_error) == ("active", f"message {message_id} not found")
        assert await deliveries(database) == []

    async def test_a_retry_after_a_later_failure_sends_once(
        self, api: Api, database: Database, worker: Worker
    ) -> None:
        message_id = await api.message("email")
        await api.workflow(
            {"event": "order"},
            {"type": "send", "message_id": message_id, "to_param": "to"},
            {"type": "send", "message_id": message_id, "to_param": "Missing"},
        )
        await api.event("order", ANNA, to=ANNA)

        await worker.run_once()
        await make_due(database)
        await worker.run_once()

        assert [d.recipient for d in await deliveries(database)] == [ANNA]

    async def test_a_workflow_delivery_waits_for_its_channel(
        self, api: Api, database: Database, worker: Worker
    ) -> None:
        message_id = await api.message("email")
        await api.workflow({"event": "order"}, {"type": "send", "message_id": message_id, "to_param": "to"})
        await api.event("order", ANNA, to=ANNA)

        await worker.run_once()
        await worker.run_once()

        [delivery] = await deliveries(database)
        assert (delivery.status, delivery.status_reason, delivery.attempts) == (
            "queued",
            "channel not configured",
            0,
        )
        status = await api.ok("GET", f"/api/v1/message/status?ids={delivery.request_id}")
        assert status["results"][0]["statusDescription"] == "channel not configured"


class TestWaitStep:
    async def test_wait_delays_the_next_step(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        await api.workflow(
            {"event": "promo_signup"},
            {"type": "add_tag", "tag": "Started"},
            {"type": "wait", "seconds": 3600},
            {"type": "add_tag", "tag": "An hour later"},
        )
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        before = utcnow()
        assert await worker.run_once() == 1

        [run] = await runs(database)
        assert (run.status, run.step_index) == ("active", 2)
        assert before + timedelta(seconds=3590) < run.available_at < utcnow() + timedelta(seconds=3610)
        assert await tag_names(loyalty, email=ANNA) == ["Started"]

        assert await worker.run_once() == 0
        assert await tag_names(loyalty, email=ANNA) == ["Started"]

        await make_due(database)
        assert await worker.run_once() == 1

        assert await tag_names(loyalty, email=ANNA) == ["An hour later", "Started"]
        [run] = await runs(database)
        assert (run.status, run.step_index) == ("done", 3)

    async def test_a_run_ending_with_a_wait_is_done_after_it(
        self, api: Api, database: Database, worker: Worker
    ) -> None:
        await api.workflow({"event": "e"}, {"type": "wait", "seconds": 60})
        await api.event("e", ANNA)

        await worker.run_once()
        assert [(r.status, r.step_index) for r in await runs(database)] == [("active", 1)]

        await make_due(database)
        await worker.run_once()
        assert [r.status for r in await runs(database)] == ["done"]

    async def test_a_workflow_deleted_while_a_run_waits_ends_the_run(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        workflow_id = await api.workflow(
            {"event": "e"}, {"type": "wait", "seconds": 60}, {"type": "add_tag", "tag": "Later"}
        )
        await api.event("e", ANNA, EmailAddress=ANNA)
        await worker.run_once()

        await api.ok("DELETE", f"/api/v1/workflows/{workflow_id}")
        await make_due(database)
        await worker.run_once()

        assert [r.status for r in await runs(database)] == ["done"]
        assert (await loyalty.call("users/info", email=ANNA))["status"] == "error"


# ------------------------------------------------------------------------------------------------
# Leases: a worker's hold on the runs it claimed


class SlowEngine(WorkflowEngine):
    """Takes ``pause`` seconds before each run, and first waits for ``gate`` when it is given."""

    def __init__(self, worker: Worker, pause: float = 0.0, gate: asyncio.Event | None = None) -> None:
        super().__init__(worker.database, worker.settings.delivery_max_attempts, 1.0)
        self.pause = pause
        self.gate = gate
        self.started: list[int] = []
        self.working = asyncio.Event()
        self.stalled = asyncio.Event()

    async def execute(self, run_id: int, claim: Claim) -> None:
        self.started.append(run_id)
        self.working.set()
        if self.gate is not None and len(self.started) > 1:
            self.stalled.set()
            await self.gate.wait()
        await asyncio.sleep(self.pause)
        await super().execute(run_id, claim)


async def signups(api: Api, loyalty: LoyaltyClient, count: int, *then: dict[str, Any]) -> list[str]:
    """``count`` sign-up events, each starting a run that issues a code and sends it, then ``then``."""
    await upload(loyalty, "Summer", *[f"S-{index}" for index in range(count + 5)])
    message_id = await api.message("email")
    await api.workflow(
        {"event": "promo_signup"},
        {"type": "issue_promocode", "group": "Summer"},
        {"type": "send", "message_id": message_id, "to_param": "EmailAddress"},
        *then,
    )
    emails = [f"lease{index}@example.com" for index in range(count)]
    for email in emails:
        await api.event("promo_signup", email, EmailAddress=email)
    return emails


async def one_code_and_delivery_each(loyalty: LoyaltyClient, database: Database, emails: list[str]) -> None:
    sent = sorted((d.recipient, d.data["code"]) for d in await deliveries(database))
    assert [to for to, _ in sent] == sorted(emails)
    for to, code in sent:
        assert await codes_of(loyalty, email=to) == [code]
    assert len({code for _, code in sent}) == len(emails)


class TestLeases:
    async def test_a_batch_that_outlasts_its_lease_is_renewed_not_taken_over(
        self, api: Api, loyalty: LoyaltyClient, database: Database, settings: Settings
    ) -> None:
        emails = await signups(api, loyalty, 8)
        short = settings.model_copy(update={"delivery_lease_seconds": 1.0, "worker_batch_size": 50})
        first, second = Worker(database, short, channels={}), Worker(database, short, channels={})
        # 8 runs at 0.3 s each take more than twice the 1 s lease: without renewal, the second
        # worker would take the runs the first has not reached yet.
        first.engine = engine = SlowEngine(first, pause=0.3)
        working = asyncio.create_task(first.process_runs())
        await asyncio.wait_for(engine.working.wait(), 30)
        while not working.done():
            await second.process_runs()
            await asyncio.sleep(0.05)
        assert await working == 8

        assert [(r.status, r.claim_serial, r.last_error) for r in await runs(database)] == [
            ("done", 1, None)
        ] * 8
        await one_code_and_delivery_each(loyalty, database, emails)
        assert await find_problems(database) == []

    async def test_runs_taken_over_after_their_lease_lapsed_are_skipped_and_the_rest_is_worked(
        self, api: Api, loyalty: LoyaltyClient, database: Database, settings: Settings
    ) -> None:
        # Each run ends waiting an hour, so a run taken over is still active when the first
        # worker comes back to it: only the claim tells that it is no longer the first's.
        emails = await signups(api, loyalty, 4, {"type": "wait", "seconds": 3600})
        first, second = Worker(database, settings, channels={}), Worker(database, settings, channels={})
        gate = asyncio.Event()
        first.engine = engine = SlowEngine(first, gate=gate)
        working = asyncio.create_task(first.process_runs())
        await asyncio.wait_for(engine.stalled.wait(), 30)  # the first run is worked, then it stalls
        first_run, *taken, last_run = [r.id for r in await runs(database)]
        # The stalled worker's leases on two runs lapse, and the second worker claims and works them.
        async with database.transaction() as session:
            await session.execute(
                update(WorkflowRun)
                .where(WorkflowRun.id.in_(taken))
                .values(locked_until=utcnow() - timedelta(seconds=1))
            )
        assert await second.process_runs() == 2
        gate.set()
        assert await working == 4

        found = {r.id: r for r in await runs(database)}
        assert {run_id: found[run_id].claim_serial for run_id in found} == {
            first_run: 1,
            taken[0]: 2,
            taken[1]: 2,
            last_run: 1,
        }
        assert {(r.status, r.step_index, r.last_error) for r in found.values()} == {("active", 3, None)}
        await one_code_and_delivery_each(loyalty, database, emails)
        assert await find_problems(database) == []


class TestIssuingAlongsideTheApi:
    async def test_a_workflow_and_the_api_issuing_from_one_group_never_hand_out_a_code_twice(
        self, api: Api, loyalty: LoyaltyClient, database: Database, settings: Settings
    ) -> None:
        await upload(loyalty, "Shared", *[f"SH-{index:02d}" for index in range(12)])
        await api.workflow({"event": "signup"}, {"type": "issue_promocode", "group": "Shared"})
        by_workflow = [f"wf{index}@example.com" for index in range(10)]
        by_api = [f"api{index}@example.com" for index in range(10)]
        for email in by_workflow:
            await api.event("signup", email, EmailAddress=email)
        for email in by_api:
            await customer(loyalty, email=email)
        workers = [Worker(database, settings, channels={}) for _ in range(2)]

        answers, *_ = await asyncio.gather(
            asyncio.gather(*(loyalty.call("promocodes/issue", email=e, group_name="Shared") for e in by_api)),
            *(worker.process_runs() for worker in workers),
        )

        async def held_by(email: str) -> list[str]:
            # A run that found the group empty rolled back with its step: no contact yet.
            body = await loyalty.call("promocodes/list-for-user", email=email)
            return [c["number"] for c in body["promocodes"]] if body["status"] == "ok" else []

        held = {email: await held_by(email) for email in by_workflow + by_api}
        handed_out = [code for codes in held.values() for code in codes]
        assert sorted(handed_out) == [f"SH-{index:02d}" for index in range(12)], held
        assert all(len(codes) <= 1 for codes in held.values()), held
        api_won = [a for a in answers if a["status"] == "ok"]
        assert len(api_won) == sum(1 for email in by_api if held[email])
        assert {a["status_code"] for a in answers if a["status"] != "ok"} <= {-4105}
        # Runs that found the group empty wait to retry; none took a code it did not keep.
        unserved = [r for r in await runs(database) if r.status == "active"]
        assert len(unserved) == sum(1 for email in by_workflow if not held[email])
        assert all(r.last_error == "No free promocodes in group" for r in unserved)
        assert await find_problems(database) == []


# ------------------------------------------------------------------------------------------------
# Low stock


def low_stock(group: dict[str, Any], level: str, threshold: int, actual: int) -> dict[str, Any]:
    return {
        "group": group["name"],
        "groupId": group["id"],
        "level": level,
        "threshold": threshold,
        "actualCount": actual,
    }


async def fired(database: Database) -> list[dict[str, Any]]:
    return [e.params for e in await events(database, "promocodes_low_stock")]


class TestLowStock:
    async def set_thresholds(
        self, loyalty: LoyaltyClient, group: dict[str, Any], **thresholds: str
    ) -> dict[str, Any]:
        body = await loyalty.call("promocodes/groups/edit", group_id=group["id"], **thresholds)
        assert body["status"] == "ok", body
        edited: dict[str, Any] = body["group"]
        return edited

    async def issue(self, loyalty: LoyaltyClient, times: int = 1) -> None:
        for _ in range(times):
            body = await loyalty.call("promocodes/issue", email=ANNA, group_name="Summer")
            assert body["status"] == "ok", body

    async def test_thresholds_are_set_with_groups_edit(self, loyalty: LoyaltyClient) -> None:
        group = await upload(loyalty, "Summer", "S-1")

        edited = await self.set_thresholds(loyalty, group, low_stock_warning="500", low_stock_alarm="50")

        assert (edited["low_stock_warning"], edited["low_stock_alarm"]) == (500, 50)
        [listed] = (await loyalty.call("promocodes/groups/list"))["groups"]["enabled"]
        assert (listed["low_stock_warning"], listed["low_stock_alarm"]) == (500, 50)

    async def test_none_removes_a_threshold(self, loyalty: LoyaltyClient) -> None:
        group = await upload(loyalty, "Summer", "S-1")
        await self.set_thresholds(loyalty, group, low_stock_warning="5", low_stock_alarm="2")

        edited = await self.set_thresholds(loyalty, group, low_stock_warning="none")

        assert (edited["low_stock_warning"], edited["low_stock_alarm"]) == (None, 2)

    @pytest.mark.parametrize(
        ("value", "reason"), [("-1", "must not be negative"), ("many", "not an integer")]
    )
    async def test_a_bad_threshold_is_refused(self, loyalty: LoyaltyClient, value: str, reason: str) -> None:
        group = await upload(loyalty, "Summer", "S-1")

        body = await loyalty.call("promocodes/groups/edit", group_id=group["id"], low_stock_alarm=value)

        assert body == {
            "status": "error",
            "status_code": -1000,
            "message": f"Invalid value of low_stock_alarm: {reason}",
        }

    async def test_each_crossing_fires_once(self, loyalty: LoyaltyClient, database: Database) -> None:
        group = await upload(loyalty, "Summer", *(f"S-{i}" for i in range(6)))
        await self.set_thresholds(loyalty, group, low_stock_warning="3", low_stock_alarm="1")
        await customer(loyalty, email=ANNA)

        await self.issue(loyalty, 2)  # 6 -> 4 free
        assert await fired(database) == []

        await self.issue(loyalty)  # 3 free: warning
        assert await fired(database) == [low_stock(group, "WARNING", 3, 3)]

        await self.issue(loyalty)  # 2 free: still warning
        assert await fired(database) == [low_stock(group, "WARNING", 3, 3)]

        await self.issue(loyalty)  # 1 free: alarm
        await self.issue(loyalty)  # 0 free: still alarm
        assert await fired(database) == [low_stock(group, "WARNING", 3, 3), low_stock(group, "ALARM", 1, 1)]
        assert await loyalty.call("promocodes/issue", email=ANNA, group_name="Summer") == NO_FREE
        assert len(await fired(database)) == 2

        [warning, alarm] = await events(database, "promocodes_low_stock")
        assert warning.key_value == alarm.key_value == f"promocode-group-{group['id']}"

    async def test_a_new_upload_makes_the_next_crossing_fire_again(
        self, loyalty: LoyaltyClient, database: Database
    ) -> None:
        group = await upload(loyalty, "Summer", "S-1", "S-2", "S-3")
        await self.set_thresholds(loyalty, group, low_stock_warning="2", low_stock_alarm="0")
        await customer(loyalty, email=ANNA)
        await self.issue(loyalty, 3)
        assert [p["level"] for p in await fired(database)] == ["WARNING", "ALARM"]

        await upload(loyalty, "Summer", "S-4", "S-5", "S-6", "S-7")
        await self.issue(loyalty)  # 3 free: above the warning
        assert len(await fired(database)) == 2
        await self.issue(loyalty)  # 2 free: warning again

        assert await fired(database) == [
            low_stock(group, "WARNING", 2, 2),
            low_stock(group, "ALARM", 0, 0),
            low_stock(group, "WARNING", 2, 2),
        ]

    async def test_a_crossing_straight_to_the_alarm_fires_the_alarm(
        self, loyalty: LoyaltyClient, database: Database
    ) -> None:
        group = await upload(loyalty, "Summer", "S-1", "S-2", "S-3")
        await self.set_thresholds(loyalty, group, low_stock_warning="2", low_stock_alarm="2")
        await customer(loyalty, email=ANNA)

        await self.issue(loyalty, 3)

        assert await fired(database) == [low_stock(group, "ALARM", 2, 2)]

    async def test_without_thresholds_nothing_fires(self, loyalty: LoyaltyClient, database: Database) -> None:
        await upload(loyalty, "Summer", "S-1", "S-2")
        await customer(loyalty, email=ANNA)

        await self.issue(loyalty, 2)

        assert await fired(database) == []

    async def test_activation_counts_too(self, loyalty: LoyaltyClient, database: Database) -> None:
        group = await upload(loyalty, "Summer", "S-1", "S-2", type="2")
        await self.set_thresholds(loyalty, group, low_stock_warning="1")
        await customer(loyalty, email=ANNA)

        await loyalty.call("promocodes/activate", email=ANNA, group_name="Summer", number="S-1")

        assert await fired(database) == [low_stock(group, "WARNING", 1, 1)]

    async def test_a_workflows_issue_step_counts_too_and_the_event_starts_workflows(
        self, api: Api, loyalty: LoyaltyClient, database: Database, worker: Worker
    ) -> None:
        group = await upload(loyalty, "Summer", "S-1", "S-2")
        await self.set_thresholds(loyalty, group, low_stock_alarm="1")
        await api.workflow({"event": "promo_signup"}, {"type": "issue_promocode", "group": "Summer"})
        alert = await api.workflow({"event": "promocodes_low_stock"}, {"type": "wait", "seconds": 1})
        await api.event("promo_signup", ANNA, EmailAddress=ANNA)

        await worker.run_once()

        assert await fired(database) == [low_stock(group, "ALARM", 1, 1)]
        [_, alert_run] = await runs(database)
        assert (alert_run.workflow_id, alert_run.data) == (alert, low_stock(group, "ALARM", 1, 1))

    async def test_setting_thresholds_again_rearms_them(
        self, loyalty: LoyaltyClient, database: Database
    ) -> None:
        group = await upload(loyalty, "Summer", "S-1", "S-2", "S-3")
        await self.set_thresholds(loyalty, group, low_stock_warning="2")
        await customer(loyalty, email=ANNA)
        await self.issue(loyalty)

        await self.set_thresholds(loyalty, group, low_stock_warning="2")
        await self.issue(loyalty)

        assert await fired(database) == [low_stock(group, "WARNING", 2, 2), low_stock(group, "WARNING", 2, 1)]
