"""Purchases under concurrency (SPEC §5–§7), on every configured database.

40 purchases arrive at once (``asyncio.gather`` over the ASGI app; on PostgreSQL the app's pool
runs them really in parallel, on SQLite the writers take turns):

- all carrying the same single-use promo code: one purchase applies it, the 39 others are priced
  without it and say why;
- all paying with the same certificate: one purchase uses it, the 39 others fail with -4207 and
  record nothing;
- all with the same ``order_num``: one purchase is made, and all 40 get its answer.

Each race ends with the reconciler (``tessera check``) finding nothing wrong.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from conftest import LoyaltyClient
from tessera.db import Database
from tessera.reconcile import find_problems

RACERS = 40
PHONE = "79005550101"


def cart(*lines: tuple[str, int]) -> str:
    return json.dumps({str(i): {"sku": sku, "price": price} for i, (sku, price) in enumerate(lines, start=1)})


async def promo_group(loyalty: LoyaltyClient, group: str, number: str, percent: str = "10") -> None:
    uploaded = await loyalty.call(
        "promocodes/numbers/add",
        files={"file": ("codes.txt", f"{number}\n".encode())},
        name=group,
        type="1",
        apply_items_once="1",
    )
    assert uploaded["status"] == "ok", uploaded
    edited = await loyalty.call(
        "promocodes/groups/edit",
        group_id=uploaded["group"]["id"],
        discount_type="percent",
        discount_value=percent,
    )
    assert edited["status"] == "ok", edited


async def activated_certificate(loyalty: LoyaltyClient, number: str, value: str) -> None:
    department = loyalty.department.store_department_id
    added = await loyalty.call(
        "coupons/numbers/add",
        files={"file": ("gifts.txt", f"{number}\n".encode())},
        type="2",
        value=value,
        name=f"Gift {number}",
        target_dep_id=department,
        pin_code=loyalty.department.pin_code,
    )
    assert added["status"] == "ok", added
    activated = await loyalty.call("coupons/numbers/activate", number=number, target_dep_id=department)
    assert activated["status"] == "ok", activated


async def code_usage(loyalty: LoyaltyClient, number: str) -> tuple[int, int, bool]:
    body = await loyalty.call("promocodes/info", number=number)
    (found,) = body["numbers"]
    return found["promocode_status"], found["applied_times"], found["can_be_applied"]


async def certificate_state(loyalty: LoyaltyClient, number: str) -> tuple[bool, bool, bool]:
    body = await loyalty.call("coupons/numbers/status", number=number)
    return body["activated"], body["used"], body["deleted"]


async def certificate_groups(loyalty: LoyaltyClient) -> dict[str, tuple[int, int, int]]:
    body = await loyalty.call("coupons/groups/list")
    return {g["name"]: (g["total_count"], g["activated_count"], g["used_count"]) for g in body["groups"]}


def outcomes(bodies: list[dict[str, Any]]) -> Counter[str | int]:
    return Counter("ok" if body["status"] == "ok" else body["status_code"] for body in bodies)


async def test_a_single_use_code_in_40_concurrent_purchases_is_applied_once(
    loyalty: LoyaltyClient, database: Database
) -> None:
    await promo_group(loyalty, "Race ten", "RACE-10")
    basket = cart(("A1", 700), ("B2", 300))

    bodies = await asyncio.gather(
        *(
            loyalty.call(
                "purchases/new",
                order_num=f"ORDER-{i:02d}",
                cart=basket,
                promocodes='["RACE-10"]',
                promocodes_info=1,
            )
            for i in range(RACERS)
        )
    )

    assert outcomes(bodies) == {"ok": RACERS}, outcomes(bodies)
    verdicts = Counter(
        (b["promocodes"][0]["status"], b["promocodes"][0]["status_description"]) for b in bodies
    )
    assert verdicts == {(5, "Applied"): 1, (2, "Promocode already used"): RACERS - 1}, verdicts
    (winner,) = [b for b in bodies if b["promocodes"][0]["status"] == 5]
    losers = [b for b in bodies if b["promocodes"][0]["status"] != 5]
    assert winner["cart"]["cart"]["total_price"] == 900
    assert len(winner["cart"]["marketing_actions_applied"]) == 1
    for loser in losers:
        assert loser["cart"]["cart"]["total_price"] == 1000
        assert [p["new_price"] for p in loser["cart"]["cart"]["positions"]] == [700, 300]
        assert loser["cart"]["marketing_actions_applied"] == []
        assert loser["purchase"]["price"] == 1000
    assert len({b["purchase"]["id"] for b in bodies}) == RACERS, "every purchase was recorded"
    assert await code_usage(loyalty, "RACE-10") == (3, 1, False)
    groups = await loyalty.call("promocodes/groups/list")
    (group,) = groups["groups"]["enabled"]
    assert (group["applied_count"], group["total_count"]) == (1, 1)

    # Deleting a loser's purchase gives nothing back: it never had the code.
    loser_id = losers[0]["purchase"]["id"]
    assert (await loyalty.call("purchases/delete", purchase_id=loser_id))["status"] == "ok"
    assert await code_usage(loyalty, "RACE-10") == (3, 1, False)
    assert await find_problems(database) == []


async def test_a_certificate_in_40_concurrent_purchases_is_used_once(
    loyalty: LoyaltyClient, database: Database
) -> None:
    await activated_certificate(loyalty, "GIFT-RACE", "500")

    bodies = await asyncio.gather(
        *(
            loyalty.call(
                "purchases/new",
                order_num=f"ORDER-{i:02d}",
                cart=cart(("A1", 800)),
                certificates='["GIFT-RACE"]',
            )
            for i in range(RACERS)
        )
    )

    assert outcomes(bodies) == {"ok": 1, -4207: RACERS - 1}, outcomes(bodies)
    (winner,) = [b for b in bodies if b["status"] == "ok"]
    assert winner["certificates"] == [{"number": "GIFT-RACE", "amount": 500, "used": True}]
    assert (winner["purchase"]["paid_by_certificates"], winner["purchase"]["to_pay"]) == (500, 300)
    assert {b["message"] for b in bodies if b["status"] != "ok"} == {"Certificate already used"}
    assert await certificate_state(loyalty, "GIFT-RACE") == (True, True, False)
    assert await certificate_groups(loyalty) == {"Gift GIFT-RACE": (1, 1, 1)}
    # The refused purchases recorded nothing.
    found = await asyncio.gather(
        *(loyalty.call("purchases/get", order_num=f"ORDER-{i:02d}") for i in range(RACERS))
    )
    assert outcomes(found) == {"ok": 1, -4300: RACERS - 1}
    (recorded,) = [f for f in found if f["status"] == "ok"]
    assert recorded["purchase"]["id"] == winner["purchase"]["id"]
    assert await find_problems(database) == []


async def test_40_concurrent_purchases_with_one_order_num_make_one_purchase(
    loyalty: LoyaltyClient, database: Database
) -> None:
    await promo_group(loyalty, "Race ten", "RACE-10")
    await activated_certificate(loyalty, "GIFT-RACE", "100")
    basket = cart(("A1", 700), ("B2", 300))

    bodies = await asyncio.gather(
        *(
            loyalty.call(
                "purchases/new",
                order_num="SAME-ORDER",
                cart=basket,
                promocodes='["RACE-10"]',
                certificates='["GIFT-RACE"]',
                promocodes_info=1,
                user_phone=PHONE,
            )
            for _ in range(RACERS)
        )
    )

    first = bodies[0]
    assert first["status"] == "ok", first
    assert all(body == first for body in bodies), Counter(json.dumps(b, sort_keys=True) for b in bodies)
    assert first["cart"]["cart"]["total_price"] == 900
    assert first["promocodes"][0]["status"] == 5
    assert first["certificates"] == [{"number": "GIFT-RACE", "amount": 100, "used": True}]
    assert first["purchase"]["to_pay"] == 800
    assert await code_usage(loyalty, "RACE-10") == (3, 1, False)
    assert await certificate_state(loyalty, "GIFT-RACE") == (True, True, False)
    assert await certificate_groups(loyalty) == {"Gift GIFT-RACE": (1, 1, 1)}
    customer = await loyalty.call("users/info", user_phone=PHONE)
    assert customer["status"] == "ok", customer
    assert first["purchase"]["user_id"] == customer["id"]
    assert await loyalty.call("purchases/get", order_num="SAME-ORDER") == first
    assert await find_problems(database) == []
