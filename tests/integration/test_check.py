"""The reconciler (issue 10, item 5): ``find_problems`` and ``tessera check``.

A partner's data is made through the service itself (the loyalty face, the messaging face and
the worker): codes issued, activated and applied, a purchase deleted, a certificate spent, a
workflow run to its end with its delivery sent, a smartsend. The reconciler finds nothing wrong
with it. Then each test breaks the data with one direct SQL statement, the way a bug or a hand
edit would, and the reconciler names exactly that invariant, so every check is shown able to fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update

from conftest import LoyaltyClient
from tessera.config import Settings
from tessera.db import Database
from tessera.messaging.channels import MaySend, OnResult, Outgoing
from tessera.messaging.models import Workflow, WorkflowRun
from tessera.messaging.worker import Worker
from tessera.reconcile import Problem, find_problems
from tessera.tenancy import service as tenancy

TESSERA = Path(sys.executable).parent / "tessera"
ANNA, BORIS = "anna@example.com", "boris@example.com"


class Accepting:
    """An email channel that accepts every message, so the worker marks its deliveries sent."""

    async def send(self, batch: Sequence[Outgoing], on_result: OnResult, may_send: MaySend) -> None:
        for item in batch:
            if await may_send(item.delivery_id):
                await on_result(item.delivery_id, None)


@dataclass(frozen=True)
class World:
    partner_id: int
    #: A second partner, for the rows that can only break an invariant across partners.
    other_partner_id: int


async def ok(loyalty: LoyaltyClient, path: str, **params: Any) -> dict[str, Any]:
    body = await loyalty.call(path, **params)
    assert body["status"] == "ok", body
    return body


async def upload(loyalty: LoyaltyClient, name: str, numbers: Sequence[str], **options: str) -> int:
    content = "".join(f"{n}\n" for n in numbers).encode()
    body = await ok(
        loyalty, "promocodes/numbers/add", files={"file": ("codes.txt", content)}, name=name, **options
    )
    group_id: int = body["group"]["id"]
    return group_id


async def messaging(http: httpx.AsyncClient, key: str, path: str, body: Any) -> Any:
    response = await http.post(path, json=body, auth=("tessera", key))
    assert response.status_code == 200, response.text
    return response.json() if response.content else None


@pytest.fixture
async def world(
    loyalty: LoyaltyClient, client: httpx.AsyncClient, database: Database, settings: Settings
) -> World:
    """One partner's data, each row written by the code that normally writes it."""
    shop = loyalty.department
    async with database.transaction() as session:
        key = await tenancy.create_api_key(session, shop.partner_id)
        other = await tenancy.create_department(session, "Another chain")
    await ok(loyalty, "users/add", user_phone="79001111111", email=ANNA)
    await ok(loyalty, "users/add", user_phone="79002222222", email=BORIS)

    # Summer: simple and single-use, with a promo action so that purchases apply its codes.
    summer = await upload(loyalty, "Summer", ["S-1", "S-2", "S-3", "S-4"], type="1")
    await ok(loyalty, "promocodes/groups/edit", group_id=summer, discount_type="percent", discount_value="10")
    await ok(loyalty, "promocodes/issue", email=ANNA, group_name="Summer")  # S-1
    await upload(loyalty, "Club", ["C-1", "C-2"], type="2", apply_items_once="1")
    await ok(loyalty, "promocodes/activate", email=ANNA, group_name="Club", number="C-1")
    await upload(loyalty, "Multi", ["M-1"], type="2", apply_items_once="0")
    for email in (ANNA, BORIS):
        await ok(loyalty, "promocodes/activate", email=email, group_name="Multi", number="M-1")

    gift = {"target_dep_id": shop.store_department_id}
    await ok(
        loyalty,
        "coupons/numbers/add",
        files={"file": ("gifts.txt", b"GIFT-1\n")},
        type="2",
        value="50",
        name="Gift 50",
        pin_code=shop.pin_code,
        **gift,
    )
    await ok(loyalty, "coupons/numbers/activate", number="GIFT-1", **gift)
    basket = json.dumps({"1": {"sku": "A1", "price": 100}})
    await ok(
        loyalty,
        "purchases/new",
        order_num="ORDER-1",
        cart=basket,
        promocodes='["S-2"]',
        certificates='["GIFT-1"]',
    )
    # A purchase deleted gives its code's use back: S-1 is issued again, with no use counted.
    deleted = await ok(loyalty, "purchases/new", order_num="ORDER-2", cart=basket, promocodes='["S-1"]')
    await ok(loyalty, "purchases/delete", purchase_id=deleted["purchase"]["id"])

    message = await messaging(
        client,
        key,
        "/api/v1/messages/email",
        {"name": "Hi", "from": "shop@example.com", "subject": "Hi", "htmlText": "$!data.get('code')"},
    )
    steps = [
        {"type": "issue_promocode", "group": "Summer"},  # S-3
        {"type": "send", "message_id": message["id"]},
        {"type": "add_tag", "tag": "Welcomed"},
    ]
    workflow = {"name": "Welcome", "trigger": {"event": "welcome"}, "steps": steps}
    await messaging(client, key, "/api/v1/workflows", workflow)
    event = {"eventTypeKey": "welcome", "keyValue": ANNA, "params": [{"name": "EmailAddress", "value": ANNA}]}
    await messaging(client, key, "/api/v1/event", event)
    smartsend = {"recipients": [{"locator": BORIS}], "email": True}
    await messaging(client, key, f"/api/v1/message/{message['id']}/smartsend", smartsend)
    worker = Worker(database, settings, channels={"email": Accepting()})
    for _ in range(10):
        if not await worker.run_once():
            break

    # The world is as described: the run ended, both deliveries were sent.
    assert await rows(database, "SELECT status, step_index FROM workflow_runs") == [("done", 3)]
    assert await rows(database, "SELECT status FROM deliveries") == [("sent",), ("sent",)]
    codes = "SELECT number, state, applied_times FROM promocodes WHERE number LIKE 'S-%' ORDER BY number"
    assert await rows(database, codes) == [("S-1", 2, 0), ("S-2", 3, 1), ("S-3", 2, 0), ("S-4", 1, 0)]
    return World(shop.partner_id, other.partner_id)


async def rows(database: Database, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with database.reading() as session:
        return [tuple(row) for row in await session.execute(text(sql), params)]


async def run_sql(database: Database, *statements: str, **params: Any) -> None:
    async with database.transaction() as session:
        for statement in statements:
            await session.execute(text(statement), params)


async def only(database: Database, invariant: str) -> Problem:
    """The one problem the reconciler finds, which must be of ``invariant``."""
    problems = await find_problems(database)
    assert [problem.invariant for problem in problems] == [invariant], problems
    return problems[0]


ANNA_ID = "(SELECT id FROM customers WHERE email = 'anna@example.com')"
BORIS_ID = "(SELECT id FROM customers WHERE email = 'boris@example.com')"
FORGE_PURCHASE = (
    "INSERT INTO purchases (partner_id, department_id, order_num, original_price, price,"
    " paid_by_certificates, purchase_date, response)"
    " SELECT partner_id, department_id, 'FORGED', original_price, price, paid_by_certificates,"
    " purchase_date, response FROM purchases WHERE order_num = 'ORDER-1'"
)
FORGED_ID = "(SELECT id FROM purchases WHERE order_num = 'FORGED')"


async def test_an_empty_database_has_no_problems(database: Database) -> None:
    assert await find_problems(database) == []


async def test_data_made_by_the_service_has_no_problems(database: Database, world: World) -> None:
    assert await find_problems(database) == []


class TestPromocodes:
    async def test_a_code_in_an_unknown_state_is_left_out_of_its_groups_counts(
        self, database: Database, world: World
    ) -> None:
        await run_sql(database, "UPDATE promocodes SET state = 7 WHERE number = 'S-4'")

        problem = await only(database, "group_counts")

        assert problem.partner_id == world.partner_id
        assert "'Summer'" in problem.detail
        assert "holds 4 codes but its counts total 3" in problem.detail

    async def test_a_code_of_a_missing_group(self, database: Database, world: World) -> None:
        await run_sql(database, "UPDATE promocodes SET group_id = 999999 WHERE number = 'S-4'")

        problem = await only(database, "code_group")

        assert "'S-4'" in problem.detail
        assert "group 999999, which does not exist" in problem.detail

    async def test_a_number_twice_in_one_group(self, database: Database, world: World) -> None:
        # The unique key includes partner_id: only a code of another partner can repeat a number.
        await run_sql(
            database,
            "INSERT INTO promocodes (partner_id, group_id, number, state, applied_times)"
            " SELECT :other, group_id, number, 1, 0 FROM promocodes WHERE number = 'S-4'",
            other=world.other_partner_id,
        )

        problems = await find_problems(database)

        assert sorted(p.invariant for p in problems) == ["code_group", "code_number_twice"], problems
        (twice,) = [p for p in problems if p.invariant == "code_number_twice"]
        assert "number 'S-4' is in promo-code group" in twice.detail
        assert "2 times" in twice.detail

    async def test_a_free_code_with_a_customer(self, database: Database, world: World) -> None:
        await run_sql(database, f"UPDATE promocodes SET customer_id = {ANNA_ID} WHERE number = 'S-4'")

        problem = await only(database, "code_state")

        assert problem.detail.endswith("('S-4') in state 1 has a customer")

    async def test_an_applied_code_that_counts_no_use(self, database: Database, world: World) -> None:
        await run_sql(database, "UPDATE promocodes SET state = 3 WHERE number = 'S-1'")

        problem = await only(database, "code_state")

        # Its counter and its purchases still agree (none live): only its state is wrong.
        assert problem.detail.endswith("('S-1') in state 3 counts no use")

    async def test_uses_counted_that_no_purchase_made(self, database: Database, world: World) -> None:
        await run_sql(database, "UPDATE promocodes SET applied_times = 2 WHERE number = 'S-2'")

        problem = await only(database, "code_uses")

        assert "('S-2') counts 2 use(s) but 1 live purchase(s) applied it" in problem.detail

    async def test_a_single_use_code_applied_by_two_purchases(self, database: Database, world: World) -> None:
        await run_sql(
            database,
            FORGE_PURCHASE,
            "INSERT INTO purchase_promocodes (partner_id, purchase_id, promocode_id)"
            f" SELECT partner_id, {FORGED_ID}, id FROM promocodes WHERE number = 'S-2'",
            "UPDATE promocodes SET applied_times = 2 WHERE number = 'S-2'",
        )
        (first,) = await rows(database, "SELECT id FROM purchases WHERE order_num = 'ORDER-1'")
        (forged,) = await rows(database, "SELECT id FROM purchases WHERE order_num = 'FORGED'")

        problem = await only(database, "code_used_twice")

        assert f"('S-2') is applied by 2 live purchases ({first[0]}, {forged[0]})" in problem.detail

    async def test_a_single_use_code_activated_by_a_second_customer(
        self, database: Database, world: World
    ) -> None:
        await run_sql(
            database,
            "INSERT INTO promocode_activations (partner_id, promocode_id, customer_id, department_id,"
            f" activated_at) SELECT a.partner_id, a.promocode_id, {BORIS_ID}, a.department_id, a.activated_at"
            " FROM promocode_activations a JOIN promocodes p ON p.id = a.promocode_id WHERE p.number = 'C-1'",
        )
        ((anna,), (boris,)) = await rows(database, "SELECT id FROM customers ORDER BY id")

        problem = await only(database, "code_owned_twice")

        assert (
            f"('C-1') is held by customer {anna} but activated by customer(s) {anna}, {boris}"
            in problem.detail
        )

    async def test_a_single_use_activation_without_its_activation_time(
        self, database: Database, world: World
    ) -> None:
        await run_sql(database, "UPDATE promocodes SET activated_at = NULL WHERE number = 'C-1'")

        problem = await only(database, "code_activation")

        assert "('C-1'): the single-use code has no activation time" in problem.detail


class TestCertificates:
    async def test_a_certificate_of_another_department_than_its_group(
        self, database: Database, world: World
    ) -> None:
        await run_sql(database, "UPDATE certificates SET department_id = department_id + 1000")

        problem = await only(database, "certificate_group")

        assert "('GIFT-1')" in problem.detail
        assert "while the certificate is department" in problem.detail

    async def test_a_used_certificate_never_activated(self, database: Database, world: World) -> None:
        await run_sql(database, "UPDATE certificates SET activated_at = NULL")

        problem = await only(database, "certificate_state")

        assert problem.detail.endswith("('GIFT-1') is used but was never activated")

    async def test_a_certificate_that_paid_for_two_purchases(self, database: Database, world: World) -> None:
        await run_sql(
            database,
            FORGE_PURCHASE,
            "INSERT INTO purchase_certificates (partner_id, purchase_id, certificate_id, amount)"
            f" SELECT partner_id, {FORGED_ID}, certificate_id, amount FROM purchase_certificates",
        )

        problem = await only(database, "certificate_used_twice")

        assert "('GIFT-1') paid for 2 purchases" in problem.detail
        assert problem.partner_id == world.partner_id


class TestMessaging:
    async def test_a_workflow_delivery_that_names_no_step(self, database: Database, world: World) -> None:
        await run_sql(database, "UPDATE deliveries SET step_index = NULL WHERE workflow_run_id IS NOT NULL")

        problem = await only(database, "delivery_cause")

        assert "but no step (a workflow's delivery names both, smartsend's neither)" in problem.detail

    async def test_a_delivery_whose_run_never_passed_its_step(self, database: Database, world: World) -> None:
        await run_sql(
            database,
            "UPDATE deliveries SET step_index = 2 WHERE workflow_run_id IS NOT NULL",
            "UPDATE workflow_runs SET status = 'active', step_index = 2",
        )

        problem = await only(database, "delivery_cause")

        assert "is at step 2, not past step 2 that sent it" in problem.detail

    async def test_a_sent_delivery_without_a_sent_time(self, database: Database, world: World) -> None:
        await run_sql(database, "UPDATE deliveries SET sent_at = NULL WHERE workflow_run_id IS NULL")

        problem = await only(database, "delivery_status")

        assert problem.detail.endswith("is sent but has no sent time")

    async def test_one_step_of_a_run_delivered_twice(self, database: Database, world: World) -> None:
        # The unique key includes partner_id: only a delivery of another partner can repeat a step.
        await run_sql(
            database,
            "INSERT INTO deliveries (partner_id, request_id, message_id, channel, recipient, data,"
            " workflow_run_id, step_index, status, attempts, available_at, created_at)"
            " SELECT :other, 'forged', message_id, channel, recipient, data, workflow_run_id, step_index,"
            " 'queued', 0, available_at, created_at FROM deliveries WHERE workflow_run_id IS NOT NULL",
            other=world.other_partner_id,
        )

        problems = await find_problems(database)

        assert sorted(p.invariant for p in problems) == ["delivery_cause", "delivery_twice"], problems
        (twice,) = [p for p in problems if p.invariant == "delivery_twice"]
        assert "has 2 deliveries for step 1" in twice.detail
        assert twice.partner_id == world.partner_id

    async def test_a_run_of_another_partners_workflow(self, database: Database, world: World) -> None:
        await run_sql(database, "UPDATE workflows SET partner_id = :other", other=world.other_partner_id)

        problem = await only(database, "run_workflow")

        assert f"which is partner {world.other_partner_id}'s" in problem.detail

    @pytest.mark.parametrize(
        ("status", "step_index", "why"),
        [
            ("active", 4, "is active at step 4, past the last of its 3 steps"),
            ("done", 2, "is done at step 2 of 3, with steps left to run"),
            ("waiting", 3, "has the unknown status 'waiting'"),
        ],
    )
    async def test_a_run_past_its_last_step_or_done_too_soon(
        self, database: Database, world: World, status: str, step_index: int, why: str
    ) -> None:
        await run_sql(
            database,
            "UPDATE workflow_runs SET status = :status, step_index = :step",
            status=status,
            step=step_index,
        )

        problem = await only(database, "run_steps")

        assert problem.detail.endswith(why)

    async def test_a_run_short_of_a_workflow_edited_since_is_not_a_problem(
        self, database: Database, world: World
    ) -> None:
        # Steps added after the run ended: the run took all the steps there were.
        async with database.transaction() as session:
            await session.execute(update(WorkflowRun).values(created_at=datetime(2020, 1, 1)))
            await session.execute(update(Workflow).values(updated_at=datetime(2021, 1, 1)))
        await run_sql(database, "UPDATE workflow_runs SET step_index = 2")

        assert await find_problems(database) == []


class TestDeliveryCodes:
    """A smartsend whose message takes a code (``$!promocodes.issue('Summer')``): S-4 to Boris."""

    @pytest.fixture
    async def carried(
        self, world: World, client: httpx.AsyncClient, database: Database, settings: Settings
    ) -> str:
        async with database.transaction() as session:
            key = await tenancy.create_api_key(session, world.partner_id)
        message = await messaging(
            client,
            key,
            "/api/v1/messages/email",
            {
                "name": "Code",
                "from": "shop@example.com",
                "subject": "Yours",
                "htmlText": "$!promocodes.issue('Summer')",
            },
        )
        smartsend = {"recipients": [{"locator": BORIS}], "email": True}
        answer = await messaging(client, key, f"/api/v1/message/{message['id']}/smartsend", smartsend)
        await Worker(database, settings, channels={"email": Accepting()}).run_once()
        carried = (
            "SELECT d.status, p.number FROM delivery_codes c"
            " JOIN deliveries d ON d.id = c.delivery_id JOIN promocodes p ON p.id = c.promocode_id"
        )
        assert await rows(database, carried) == [("sent", "S-4")]
        assert await find_problems(database) == []
        request_id: str = answer["results"][0]["requestId"]
        return request_id

    async def test_a_carried_code_back_in_the_free_pool(self, database: Database, carried: str) -> None:
        await run_sql(
            database,
            "UPDATE promocodes SET state = 1, customer_id = NULL, receipt_date = NULL WHERE number = 'S-4'",
        )

        problem = await only(database, "delivery_code")

        assert "carries code" in problem.detail and "('S-4'), which is free again" in problem.detail

    async def test_a_code_given_back_by_a_delivery_that_was_sent(
        self, database: Database, carried: str
    ) -> None:
        await run_sql(
            database,
            "UPDATE delivery_codes SET returned_at = (SELECT created_at FROM deliveries"
            " WHERE deliveries.id = delivery_codes.delivery_id)",
        )

        problem = await only(database, "delivery_code")

        assert "was given back though the delivery is sent" in problem.detail

    async def test_a_code_two_deliveries_carry(self, database: Database, carried: str) -> None:
        await run_sql(
            database,
            "INSERT INTO delivery_codes (delivery_id, group_name, promocode_id, claimed_at)"
            " SELECT (SELECT min(id) FROM deliveries), 'Summer again', promocode_id, claimed_at"
            " FROM delivery_codes",
        )

        problems = await find_problems(database)

        assert [p.invariant for p in problems] == ["delivery_code", "delivery_code"]
        assert all("is carried by 2 deliveries" in p.detail for p in problems)


class TestCommand:
    async def test_exits_0_on_a_sound_database_and_1_naming_each_problem(
        self, database_url: str, database: Database, world: World, tmp_path: Path
    ) -> None:
        sound = await tessera_check(database_url, tmp_path)
        assert (sound.returncode, sound.stdout) == (0, ""), sound.stderr
        assert "OK: no problems found" in sound.stderr

        await run_sql(database, "UPDATE certificates SET activated_at = NULL")
        await run_sql(database, "UPDATE promocodes SET customer_id = NULL WHERE number = 'C-1'")
        broken = await tessera_check(database_url, tmp_path)

        assert broken.returncode == 1, broken.stderr
        lines = broken.stdout.splitlines()
        assert len(lines) == 3, lines
        assert lines[0].startswith(f"code_state (partner {world.partner_id}): code ")
        assert lines[1].startswith(f"code_owned_twice (partner {world.partner_id}): single-use code ")
        assert lines[2].startswith(f"certificate_state (partner {world.partner_id}): certificate ")
        assert "3 problems found" in broken.stderr

    async def test_json_lists_the_problems(
        self, database_url: str, database: Database, world: World, tmp_path: Path
    ) -> None:
        await run_sql(database, "UPDATE certificates SET activated_at = NULL")

        broken = await tessera_check(database_url, tmp_path, "--json")

        assert broken.returncode == 1, broken.stderr
        (problem,) = json.loads(broken.stdout)
        assert problem["invariant"] == "certificate_state"
        assert problem["partner_id"] == world.partner_id
        assert problem["detail"].endswith("is used but was never activated")


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


async def tessera_check(database_url: str, cwd: Path, *args: str) -> Run:
    """`tessera check` as a real process against the test database (as tests/e2e/test_cli.py runs it)."""
    env = {**os.environ, "TESSERA_DATABASE_URL": database_url, "COLUMNS": "250"}
    process = await asyncio.create_subprocess_exec(
        str(TESSERA),
        "check",
        *args,
        cwd=cwd,  # away from any .env file of the checkout
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())
