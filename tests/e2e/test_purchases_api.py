"""Purchases and promo actions over HTTP (SPEC §5–§7), on every configured database.

Promo actions set with ``promocodes/groups/edit``; ``marketing-actions/calc`` prices a cart and
changes nothing; ``purchases/new`` applies codes and certificates once per ``order_num``;
``purchases/get`` and ``purchases/delete``.

Deleting a purchase (Tessera's decision): each promo code applied to it gets that use back
(``applied_times`` - 1; a code left with no uses returns to state 2 "issued", never to 1), and its
certificates stay used, since certificates only move forward (a refund is a new certificate). A
second delete changes nothing, and the ``order_num`` stays taken: repeating ``purchases/new``
with it answers with the deleted purchase.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from conftest import LoyaltyClient, login
from tessera.db import Database
from tessera.tenancy import service as tenancy

PHONE = "79001234567"


# --- helpers ---------------------------------------------------------------------------------------


def cart(*lines: dict[str, Any]) -> str:
    """The cart as SailPlay sends it: a JSON string keyed by 1-based position."""
    return json.dumps({str(index): item for index, item in enumerate(lines, start=1)})


def item(sku: str, price: float | int | str, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "price": price, **extra}


def numbers(*values: str) -> str:
    return json.dumps(list(values))


def error(body: dict[str, Any]) -> tuple[Any, Any]:
    return body["status"], body.get("status_code")


async def upload_codes(
    loyalty: LoyaltyClient, group: str, *codes: str, single_use: bool = True, group_type: str = "1"
) -> dict[str, Any]:
    body = await loyalty.call(
        "promocodes/numbers/add",
        files={"file": ("codes.txt", "".join(f"{c}\n" for c in codes).encode())},
        name=group,
        type=group_type,
        apply_items_once="1" if single_use else "0",
    )
    assert body["status"] == "ok", body
    group_object: dict[str, Any] = body["group"]
    return group_object


async def edit(loyalty: LoyaltyClient, group_id: int, **params: Any) -> dict[str, Any]:
    return await loyalty.call("promocodes/groups/edit", group_id=group_id, **params)


async def promo_group(
    loyalty: LoyaltyClient,
    group: str,
    *codes: str,
    single_use: bool = True,
    discount_type: str = "percent",
    discount_value: str = "10",
    skus: list[str] | None = None,
    min_cart_total: str | None = None,
) -> int:
    """A group of codes with a promo action; returns the group id."""
    group_id: int = (await upload_codes(loyalty, group, *codes, single_use=single_use))["id"]
    body = await edit(
        loyalty,
        group_id,
        discount_type=discount_type,
        discount_value=discount_value,
        skus=json.dumps(skus) if skus is not None else None,
        min_cart_total=min_cart_total,
    )
    assert body["status"] == "ok", body
    return group_id


async def groups_by_name(loyalty: LoyaltyClient) -> dict[str, dict[str, Any]]:
    body = await loyalty.call("promocodes/groups/list")
    assert body["status"] == "ok", body
    return {g["name"]: g for g in [*body["groups"]["enabled"], *body["groups"]["disabled"]]}


async def code(loyalty: LoyaltyClient, number: str) -> dict[str, Any]:
    body = await loyalty.call("promocodes/info", number=number)
    assert body["status"] == "ok", body
    (found,) = body["numbers"]
    result: dict[str, Any] = found
    return result


def usage(found: dict[str, Any]) -> tuple[int, int, bool]:
    """A promocode's (state, applied_times, can_be_applied)."""
    return found["promocode_status"], found["applied_times"], found["can_be_applied"]


async def add_certificate(
    loyalty: LoyaltyClient,
    number: str,
    *,
    value: str = "500",
    department: int | None = None,
    activate: bool = True,
) -> None:
    department = department or loyalty.department.store_department_id
    body = await loyalty.call(
        "coupons/numbers/add",
        files={"file": ("gifts.txt", f"{number}\n".encode())},
        type="2",
        value=value,
        name=f"Gift {number}",
        target_dep_id=department,
        pin_code=loyalty.department.pin_code,
    )
    assert body["status"] == "ok", body
    if activate:
        body = await loyalty.call("coupons/numbers/activate", number=number, target_dep_id=department)
        assert body["status"] == "ok", body


async def certificate(loyalty: LoyaltyClient, number: str) -> tuple[bool, bool, bool]:
    """A certificate's (activated, used, deleted)."""
    body = await loyalty.call("coupons/numbers/status", number=number)
    assert body["status"] == "ok", body
    return body["activated"], body["used"], body["deleted"]


async def buy(loyalty: LoyaltyClient, order_num: str | None, basket: str, **params: Any) -> dict[str, Any]:
    params.setdefault("promocodes_info", 1)
    return await loyalty.call("purchases/new", order_num=order_num, cart=basket, **params)


async def calc(loyalty: LoyaltyClient, basket: str, **params: Any) -> dict[str, Any]:
    params.setdefault("promocodes_info", 1)
    return await loyalty.call("marketing-actions/calc", cart=basket, **params)


def total(body: dict[str, Any]) -> Any:
    assert body["status"] == "ok", body
    return body["cart"]["cart"]["total_price"]


def new_prices(body: dict[str, Any]) -> list[Any]:
    return [p["new_price"] for p in body["cart"]["cart"]["positions"]]


def statuses(body: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(c["number"], c["status"], c["status_description"]) for c in body["promocodes"]]


async def second_department(database: Database, partner_id: int) -> tenancy.NewDepartment:
    async with database.transaction() as session:
        return await tenancy.create_department(session, "Second shop", partner_id=partner_id)


# --- promo actions on groups ---------------------------------------------------------------------------


class TestPromoActions:
    async def test_groups_edit_sets_a_percent_action_shown_in_groups_list(
        self, loyalty: LoyaltyClient
    ) -> None:
        group_id = (await upload_codes(loyalty, "Spring", "S-1"))["id"]

        body = await edit(
            loyalty,
            group_id,
            discount_type="percent",
            discount_value="12.5",
            skus='["A1", "B2"]',
            min_cart_total="1000",
        )

        assert body["status"] == "ok", body
        expected = [
            {
                "id": group_id,
                "alias": f"promocode-group-{group_id}",
                "name": "Spring: 12.5% off on A1, B2",
                "status": "active",
                "discount_type": "percent",
                "discount_value": 12.5,
                "skus": ["A1", "B2"],
                "min_cart_total": 1000.0,
                "client_msg": "12.5% off on A1, B2",
                "service_msg": "promo code group Spring",
            }
        ]
        assert body["group"]["marketing_actions"] == expected
        assert (await groups_by_name(loyalty))["Spring"]["marketing_actions"] == expected

    async def test_a_fixed_action_on_the_whole_cart(self, loyalty: LoyaltyClient) -> None:
        group_id = (await upload_codes(loyalty, "Fixed", "F-1"))["id"]

        await edit(loyalty, group_id, discount_type="fixed", discount_value="300")

        (action,) = (await groups_by_name(loyalty))["Fixed"]["marketing_actions"]
        assert (action["name"], action["discount_type"], action["discount_value"]) == (
            "Fixed: 300 off",
            "fixed",
            300.0,
        )
        assert (action["skus"], action["min_cart_total"]) == (None, None)

    async def test_a_group_without_an_action_lists_none(self, loyalty: LoyaltyClient) -> None:
        await upload_codes(loyalty, "Plain", "P-1")

        assert (await groups_by_name(loyalty))["Plain"]["marketing_actions"] == []

    async def test_discount_type_none_removes_the_action(self, loyalty: LoyaltyClient) -> None:
        group_id = await promo_group(loyalty, "Spring", "S-1", skus=["A1"], min_cart_total="10")

        body = await edit(loyalty, group_id, discount_type="none")

        assert body["status"] == "ok", body
        assert body["group"]["marketing_actions"] == []
        assert (await groups_by_name(loyalty))["Spring"]["marketing_actions"] == []
        priced = await calc(loyalty, cart(item("A1", 100)), promocodes=numbers("S-1"))
        assert total(priced) == 100
        assert statuses(priced) == [("S-1", 2, "No promo action uses this promocode group")]

    async def test_editing_the_name_or_enabled_keeps_the_action(self, loyalty: LoyaltyClient) -> None:
        group_id = await promo_group(loyalty, "Spring", "S-1", discount_value="20")

        await edit(loyalty, group_id, name="Summer")
        await edit(loyalty, group_id, enabled="0")

        summer = (await groups_by_name(loyalty))["Summer"]
        assert summer["enabled"] is False
        (action,) = summer["marketing_actions"]
        assert (action["name"], action["status"], action["discount_value"]) == (
            "Summer: 20% off",
            "inactive",
            20.0,
        )

    async def test_a_new_action_replaces_the_old_one(self, loyalty: LoyaltyClient) -> None:
        group_id = await promo_group(loyalty, "Spring", "S-1", skus=["A1"], min_cart_total="500")

        await edit(loyalty, group_id, discount_type="fixed", discount_value="5")

        (action,) = (await groups_by_name(loyalty))["Spring"]["marketing_actions"]
        assert (
            action["discount_type"],
            action["discount_value"],
            action["skus"],
            action["min_cart_total"],
        ) == (
            "fixed",
            5.0,
            None,
            None,
        )

    @pytest.mark.parametrize(
        "params",
        [
            {"discount_type": "bogus", "discount_value": "10"},
            {"discount_type": "percent"},
            {"discount_type": "fixed"},
            {"discount_type": "percent", "discount_value": "0"},
            {"discount_type": "percent", "discount_value": "100.01"},
            {"discount_type": "percent", "discount_value": "-5"},
            {"discount_type": "fixed", "discount_value": "0"},
            {"discount_type": "fixed", "discount_value": "ten"},
            {"discount_type": "fixed", "discount_value": "1.234"},
            {"discount_type": "fixed", "discount_value": "Infinity"},
            {"discount_type": "percent", "discount_value": "10", "skus": "not json"},
            {"discount_type": "percent", "discount_value": "10", "skus": '{"sku": "A1"}'},
            {"discount_type": "percent", "discount_value": "10", "skus": "[]"},
            {"discount_type": "percent", "discount_value": "10", "skus": "[[1]]"},
            {"discount_type": "percent", "discount_value": "10", "min_cart_total": "-1"},
            {"discount_type": "percent", "discount_value": "10", "min_cart_total": "lots"},
        ],
    )
    async def test_an_invalid_action_is_refused_and_changes_nothing(
        self, loyalty: LoyaltyClient, params: dict[str, str]
    ) -> None:
        group_id = await promo_group(loyalty, "Spring", "S-1", discount_value="20")
        before = (await groups_by_name(loyalty))["Spring"]["marketing_actions"]

        body = await edit(loyalty, group_id, name="Renamed", **params)

        assert error(body) == ("error", -1000), body
        groups = await groups_by_name(loyalty)
        assert "Renamed" not in groups
        assert groups["Spring"]["marketing_actions"] == before

    async def test_an_unknown_group_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await edit(loyalty, 987654, discount_type="percent", discount_value="10")

        assert error(body) == ("error", -4101)

    async def test_a_group_of_another_partner_cannot_be_edited(
        self, loyalty: LoyaltyClient, client: httpx.AsyncClient, database: Database
    ) -> None:
        async with database.transaction() as session:
            stranger_department = await tenancy.create_department(session, "Another retailer")
        stranger = LoyaltyClient(client, stranger_department, await login(client, stranger_department))
        group_id = (await upload_codes(stranger, "Theirs", "T-1"))["id"]

        body = await edit(loyalty, group_id, discount_type="percent", discount_value="90")

        assert error(body) == ("error", -4101)
        assert (await groups_by_name(stranger))["Theirs"]["marketing_actions"] == []


# --- carts -------------------------------------------------------------------------------------------


class TestCart:
    async def test_calc_answers_as_sailplay_does(self, loyalty: LoyaltyClient) -> None:
        group_id = await promo_group(loyalty, "Ten", "TEN", discount_value="10")

        body = await calc(
            loyalty,
            cart(item("A1", 1000, quantity=2, min_price=800), item("B2", "250.50")),
            promocodes=numbers("TEN"),
        )

        assert body["status"] == "ok", body
        assert "purchase" not in body
        positions = body["cart"]["cart"]["positions"]
        assert [(p["num"], p["sku"], p["price"], p["new_price"], p["quantity"]) for p in positions] == [
            (1, "A1", 1000, 900, 2),
            (2, "B2", 250.5, 225.45, 1),
        ]
        assert positions[0]["min_price"] == 800
        assert positions[0]["product"] == {"sku": "A1", "id": None}, "calc creates no product"
        assert [a["id"] for a in positions[0]["marketing_actions"]] == [group_id]
        assert body["cart"]["cart"]["total_price"] == 1125.45
        (applied,) = body["cart"]["marketing_actions_applied"]
        assert (applied["alias"], applied["name"]) == (f"promocode-group-{group_id}", "Ten: 10% off")
        assert set(applied) >= {"alias", "name", "client_msg", "service_msg"}
        (info,) = body["promocodes"]
        assert (info["number"], info["status"]) == ("TEN", 4)
        assert info["marketing_actions"] == [
            {"marketing_action_id": group_id, "marketing_action_name": "Ten: 10% off"}
        ]

    async def test_repeated_skus_are_summed_and_quantity_defaults_to_one(
        self, loyalty: LoyaltyClient
    ) -> None:
        body = await calc(
            loyalty,
            cart(item("A1", 100), item("B2", 40, quantity=3), item("A1", 250, quantity=2)),
        )

        positions = body["cart"]["cart"]["positions"]
        assert [(p["num"], p["sku"], p["price"], p["quantity"]) for p in positions] == [
            (1, "A1", 350, 3),
            (2, "B2", 40, 3),
        ]
        assert total(body) == 390
        assert body["promocodes"] == [], "no codes were given"

    async def test_min_price_floors_and_a_fixed_amount_spread_to_the_cent(
        self, loyalty: LoyaltyClient
    ) -> None:
        await promo_group(loyalty, "Hundred", "H", discount_type="fixed", discount_value="100")

        floored = await calc(
            loyalty,
            cart(item("A1", 100, min_price=95), item("B2", 100, min_price=90)),
            promocodes=numbers("H"),
        )
        spread = await calc(
            loyalty, cart(item("A1", 100), item("B2", 100), item("C3", 100)), promocodes=numbers("H")
        )

        assert new_prices(floored) == [95, 90]
        assert total(floored) == 185
        assert sorted(new_prices(spread)) == [66.66, 66.67, 66.67]
        assert total(spread) == 200

    async def test_a_discount_never_makes_the_total_negative(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Huge", "HUGE", discount_type="fixed", discount_value="100000")

        body = await calc(loyalty, cart(item("A1", 10), item("B2", "0.99")), promocodes=numbers("HUGE"))

        assert new_prices(body) == [0, 0]
        assert total(body) == 0

    async def test_a_sku_limited_action_leaves_other_positions_alone(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Shoes", "SHOES", discount_value="50", skus=["B2"])

        body = await calc(loyalty, cart(item("A1", 100), item("B2", 100)), promocodes=numbers("SHOES"))

        assert new_prices(body) == [100, 50]

    async def test_one_code_per_group_in_a_cart(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Ten", "T-1", "T-2", discount_value="10")

        body = await calc(loyalty, cart(item("A1", 1000)), promocodes=numbers("T-1", "T-2"))

        assert total(body) == 900
        assert statuses(body) == [
            ("T-1", 4, "Promo action matched"),
            ("T-2", 3, "Another code of this group is already applied"),
        ]

    async def test_codes_of_two_groups_both_apply(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Ten", "TEN", discount_value="10")
        await promo_group(loyalty, "Fifty off", "FIFTY", discount_type="fixed", discount_value="50")

        forward = await calc(loyalty, cart(item("A1", 1000)), promocodes=numbers("TEN", "FIFTY"))
        backward = await calc(loyalty, cart(item("A1", 1000)), promocodes=numbers("FIFTY", "TEN"))

        assert total(forward) == total(backward) == 850
        assert len(forward["cart"]["marketing_actions_applied"]) == 2

    @pytest.mark.parametrize(
        "basket",
        [
            "{not json",
            "[]",
            "{}",
            '{"1": {"price": 10}}',
            '{"1": {"sku": "A1"}}',
            '{"1": {"sku": "A1", "price": -1}}',
            '{"1": {"sku": "A1", "price": 1, "quantity": "two"}}',
            '{"x": {"sku": "A1", "price": 1}}',
        ],
    )
    @pytest.mark.parametrize("path", ["marketing-actions/calc", "purchases/new"])
    async def test_a_malformed_cart_is_refused(self, loyalty: LoyaltyClient, path: str, basket: str) -> None:
        body = await loyalty.call(path, cart=basket, order_num="BAD-1")

        assert error(body) == ("error", -1000), body
        assert (await loyalty.call("purchases/get", order_num="BAD-1"))["status_code"] == -4300

    @pytest.mark.parametrize("path", ["marketing-actions/calc", "purchases/new"])
    async def test_a_cart_is_required(self, loyalty: LoyaltyClient, path: str) -> None:
        body = await loyalty.call(path, order_num="NO-CART")

        assert error(body) == ("error", -1000)

    @pytest.mark.parametrize("promocodes", ['{"A": 1}', "[[1]]"])
    async def test_malformed_promocodes_are_refused(self, loyalty: LoyaltyClient, promocodes: str) -> None:
        body = await calc(loyalty, cart(item("A1", 1)), promocodes=promocodes)

        assert error(body) == ("error", -1000)


# --- calc has no side effects ------------------------------------------------------------------------------


class TestCalc:
    async def test_changes_no_code_and_no_certificate(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Ten", "TEN", discount_value="10")
        await add_certificate(loyalty, "GIFT-1", value="300")
        before = await code(loyalty, "TEN")

        first = await calc(
            loyalty, cart(item("A1", 1000)), promocodes=numbers("TEN"), certificates=numbers("GIFT-1")
        )
        second = await calc(
            loyalty, cart(item("A1", 1000)), promocodes=numbers("TEN"), certificates=numbers("GIFT-1")
        )

        assert first == second
        assert total(first) == 900
        assert statuses(first) == [("TEN", 4, "Promo action matched")]
        assert first["certificates"] == [{"number": "GIFT-1", "amount": 300, "used": False}]
        after = await code(loyalty, "TEN")
        assert after == before
        assert usage(after) == (1, 0, True)
        assert await certificate(loyalty, "GIFT-1") == (True, False, False)
        counts = (await groups_by_name(loyalty))["Ten"]
        assert (counts["applied_count"], counts["unused_count"]) == (0, 1)

    async def test_a_bad_certificate_fails_calc_too(self, loyalty: LoyaltyClient) -> None:
        body = await calc(loyalty, cart(item("A1", 1000)), certificates=numbers("NOPE"))

        assert error(body) == ("error", -4200)


# --- purchases/new -----------------------------------------------------------------------------------


class TestPurchaseNew:
    async def test_applies_a_single_use_code_once(self, loyalty: LoyaltyClient) -> None:
        group_id = await promo_group(loyalty, "Ten", "TEN", discount_value="10")

        body = await buy(loyalty, "ORDER-1", cart(item("A1", 1000)), promocodes=numbers("TEN"))

        assert total(body) == 900
        assert statuses(body) == [("TEN", 5, "Applied")]
        purchase = body["purchase"]
        assert purchase["order_num"] == "ORDER-1"
        assert purchase["store_department_id"] == loyalty.department.store_department_id
        assert (purchase["original_price"], purchase["price"], purchase["to_pay"]) == (1000, 900, 900)
        assert isinstance(purchase["id"], int)
        assert purchase["purchase_date"]
        assert [a["id"] for a in body["cart"]["marketing_actions_applied"]] == [group_id]
        found = await code(loyalty, "TEN")
        assert usage(found) == (3, 1, False)
        assert found["date_of_use"] is not None
        counts = (await groups_by_name(loyalty))["Ten"]
        assert (counts["applied_count"], counts["receipted_count"], counts["unused_count"]) == (1, 1, 0)

        again = await buy(loyalty, "ORDER-2", cart(item("A1", 1000)), promocodes=numbers("TEN"))

        assert total(again) == 1000
        assert statuses(again) == [("TEN", 2, "Promocode already used")]
        assert again["cart"]["marketing_actions_applied"] == []
        assert usage(await code(loyalty, "TEN")) == (3, 1, False)

    async def test_a_multi_use_code_applies_again_and_counts(self, loyalty: LoyaltyClient) -> None:
        await promo_group(
            loyalty, "Everyone", "ALL", single_use=False, discount_type="fixed", discount_value="5"
        )

        for index in range(3):
            body = await buy(loyalty, f"ORDER-{index}", cart(item("A1", 50)), promocodes=numbers("ALL"))
            assert total(body) == 45
            assert statuses(body) == [("ALL", 5, "Applied")]

        found = await code(loyalty, "ALL")
        assert usage(found) == (3, 3, True)
        assert found["group"]["apply_items_once"] is False

    async def test_every_promocode_status(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Ten", "TEN", "TEN-2", discount_value="10")
        await promo_group(loyalty, "Big carts", "BIG", discount_value="10", min_cart_total="5000")
        await promo_group(loyalty, "Shoes", "SHOE", discount_value="10", skus=["SHOE-1"])
        await upload_codes(loyalty, "No action", "PLAIN")
        off_id = await promo_group(loyalty, "Off", "OFF")
        await edit(loyalty, off_id, enabled="0")
        await promo_group(loyalty, "Used", "USED")
        await buy(loyalty, "EARLIER", cart(item("A1", 10)), promocodes=numbers("USED"))
        codes = numbers("NOPE", "PLAIN", "OFF", "USED", "BIG", "SHOE", "TEN", "TEN-2")
        expected = [
            ("NOPE", 1, "Promocode not found"),
            ("PLAIN", 2, "No promo action uses this promocode group"),
            ("OFF", 2, "Promocode group is disabled"),
            ("USED", 2, "Promocode already used"),
            ("BIG", 3, "The cart does not meet the promo action's conditions"),
            ("SHOE", 3, "The cart does not meet the promo action's conditions"),
        ]

        priced = await calc(loyalty, cart(item("A1", 1000)), promocodes=codes)
        bought = await buy(loyalty, "NOW", cart(item("A1", 1000)), promocodes=codes)

        assert statuses(priced) == [
            *expected,
            ("TEN", 4, "Promo action matched"),
            ("TEN-2", 3, "Another code of this group is already applied"),
        ]
        assert statuses(bought) == [
            *expected,
            ("TEN", 5, "Applied"),
            ("TEN-2", 3, "Another code of this group is already applied"),
        ]
        assert total(priced) == total(bought) == 900
        for number in ("PLAIN", "OFF", "BIG", "SHOE", "TEN-2"):
            assert usage(await code(loyalty, number))[:2] == (1, 0), number

    async def test_without_promocodes_info_the_statuses_are_left_out(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Ten", "TEN")

        body = await buy(
            loyalty, "ORDER-1", cart(item("A1", 100)), promocodes=numbers("TEN"), promocodes_info=0
        )

        assert total(body) == 90
        assert "promocodes" not in body
        assert usage(await code(loyalty, "TEN"))[:2] == (3, 1)

    async def test_an_issued_code_stays_bound_and_becomes_applied(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Ten", "TEN")
        await loyalty.call("users/add", user_phone=PHONE)
        issued = await loyalty.call("promocodes/issue", user_phone=PHONE, group_name="Ten")
        assert issued["promocode"]["promocode_status"] == 2

        await buy(loyalty, "ORDER-1", cart(item("A1", 100)), promocodes=numbers("TEN"), user_phone=PHONE)

        found = await code(loyalty, "TEN")
        assert usage(found) == (3, 1, False)
        assert found["issued_to"] == issued["promocode"]["issued_to"]

    async def test_a_code_of_another_partner_is_not_found(
        self, loyalty: LoyaltyClient, client: httpx.AsyncClient, database: Database
    ) -> None:
        async with database.transaction() as session:
            stranger_department = await tenancy.create_department(session, "Another retailer")
        stranger = LoyaltyClient(client, stranger_department, await login(client, stranger_department))
        await promo_group(stranger, "Theirs", "THEIRS")

        body = await buy(loyalty, "ORDER-1", cart(item("A1", 100)), promocodes=numbers("THEIRS"))

        assert statuses(body) == [("THEIRS", 1, "Promocode not found")]
        assert usage(await code(stranger, "THEIRS"))[:2] == (1, 0)

    async def test_unknown_customer_and_skus_are_created(self, loyalty: LoyaltyClient) -> None:
        assert error(await loyalty.call("users/info", user_phone=PHONE)) == ("error", -4000)

        body = await buy(loyalty, "ORDER-1", cart(item("NEW-SKU", 100)), user_phone=PHONE)

        customer = await loyalty.call("users/info", user_phone=PHONE)
        assert customer["status"] == "ok", customer
        assert body["purchase"]["user_id"] == customer["id"]
        (position,) = body["cart"]["cart"]["positions"]
        assert isinstance(position["product"]["id"], int)
        priced = await calc(loyalty, cart(item("NEW-SKU", 5)))
        assert priced["cart"]["cart"]["positions"][0]["product"] == position["product"]

    async def test_a_known_customer_is_reused(self, loyalty: LoyaltyClient) -> None:
        added = await loyalty.call("users/add", user_phone=PHONE)

        body = await buy(loyalty, "ORDER-1", cart(item("A1", 100)), phone=PHONE)

        assert body["purchase"]["user_id"] == added["id"]

    async def test_an_anonymous_purchase_is_allowed(self, loyalty: LoyaltyClient) -> None:
        body = await buy(loyalty, "ORDER-1", cart(item("A1", 100)))

        assert body["status"] == "ok", body
        assert body["purchase"]["user_id"] is None

    async def test_a_purchase_without_order_num(self, loyalty: LoyaltyClient) -> None:
        first = await buy(loyalty, None, cart(item("A1", 100)))
        second = await buy(loyalty, None, cart(item("A1", 100)))

        assert first["purchase"]["order_num"] is None
        assert first["purchase"]["id"] != second["purchase"]["id"]

    async def test_v1_aliases(self, loyalty: LoyaltyClient, client: httpx.AsyncClient) -> None:
        await promo_group(loyalty, "Ten", "TEN")
        data = {
            **loyalty.auth(),
            "order_num": "V1",
            "cart": cart(item("A1", 100)),
            "promocodes": numbers("TEN"),
        }

        priced = (await client.post("/api/v1/marketing-actions/calc/", data=data)).json()
        bought = (await client.post("/api/v1/purchases/new/", data=data)).json()
        no_slash = (await client.post("/api/v1/purchases/new", data=data)).json()

        assert total(priced) == total(bought) == 90
        assert bought["purchase"]["order_num"] == "V1"
        assert no_slash == bought
        assert usage(await code(loyalty, "TEN"))[:2] == (3, 1)

    async def test_a_json_body_works_too(self, loyalty: LoyaltyClient, client: httpx.AsyncClient) -> None:
        await promo_group(loyalty, "Ten", "TEN")
        payload = {
            **loyalty.auth(),
            "order_num": "JSON-1",
            "cart": {"1": {"sku": "A1", "price": 100}},
            "promocodes": ["TEN"],
            "promocodes_info": 1,
        }

        body = (await client.post("/api/v2/purchases/new/", json=payload)).json()

        assert total(body) == 90
        assert statuses(body) == [("TEN", 5, "Applied")]


# --- certificates as payment --------------------------------------------------------------------------


class TestCertificates:
    async def test_a_certificate_pays_up_to_its_value(self, loyalty: LoyaltyClient) -> None:
        await add_certificate(loyalty, "GIFT-1", value="500")

        body = await buy(loyalty, "ORDER-1", cart(item("A1", 1000)), certificates=numbers("GIFT-1"))

        assert body["certificates"] == [{"number": "GIFT-1", "amount": 500, "used": True}]
        purchase = body["purchase"]
        assert (purchase["price"], purchase["paid_by_certificates"], purchase["to_pay"]) == (1000, 500, 500)
        assert total(body) == 1000, "a certificate pays; it is not a discount"
        assert await certificate(loyalty, "GIFT-1") == (True, True, False)

    async def test_a_certificate_worth_more_than_the_cart_covers_the_cart(
        self, loyalty: LoyaltyClient
    ) -> None:
        await add_certificate(loyalty, "GIFT-1", value="500")

        body = await buy(loyalty, "ORDER-1", cart(item("A1", "123.45")), certificates=numbers("GIFT-1"))

        assert body["certificates"] == [{"number": "GIFT-1", "amount": 123.45, "used": True}]
        assert body["purchase"]["to_pay"] == 0
        assert await certificate(loyalty, "GIFT-1") == (True, True, False)

    async def test_two_certificates_covering_a_smaller_total(self, loyalty: LoyaltyClient) -> None:
        await add_certificate(loyalty, "GIFT-500", value="500")
        await add_certificate(loyalty, "GIFT-300", value="300")

        body = await buy(
            loyalty, "ORDER-1", cart(item("A1", 600)), certificates=numbers("GIFT-500", "GIFT-300")
        )

        assert body["certificates"] == [
            {"number": "GIFT-500", "amount": 500, "used": True},
            {"number": "GIFT-300", "amount": 100, "used": True},
        ]
        assert (body["purchase"]["paid_by_certificates"], body["purchase"]["to_pay"]) == (600, 0)
        assert await certificate(loyalty, "GIFT-500") == (True, True, False)
        assert await certificate(loyalty, "GIFT-300") == (True, True, False)

    async def test_a_certificate_with_nothing_left_to_pay_is_not_used(self, loyalty: LoyaltyClient) -> None:
        await add_certificate(loyalty, "GIFT-500", value="500")
        await add_certificate(loyalty, "GIFT-300", value="300")

        body = await buy(
            loyalty, "ORDER-1", cart(item("A1", 400)), certificates=numbers("GIFT-500", "GIFT-300")
        )

        assert body["certificates"] == [
            {"number": "GIFT-500", "amount": 400, "used": True},
            {"number": "GIFT-300", "amount": 0, "used": False},
        ]
        assert await certificate(loyalty, "GIFT-300") == (True, False, False)
        later = await buy(loyalty, "ORDER-2", cart(item("A1", 100)), certificates=numbers("GIFT-300"))
        assert later["certificates"] == [{"number": "GIFT-300", "amount": 100, "used": True}]

    async def test_a_discount_comes_first_then_the_certificate_pays(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Half", "HALF", discount_value="50")
        await add_certificate(loyalty, "GIFT-1", value="500")

        body = await buy(
            loyalty,
            "ORDER-1",
            cart(item("A1", 600)),
            promocodes=numbers("HALF"),
            certificates=numbers("GIFT-1"),
        )

        assert total(body) == 300
        assert body["certificates"] == [{"number": "GIFT-1", "amount": 300, "used": True}]
        assert (body["purchase"]["price"], body["purchase"]["to_pay"]) == (300, 0)

    @pytest.mark.parametrize(
        ("trouble", "status_code"),
        [
            ("missing", -4200),
            ("other department", -4204),
            ("not activated", -4205),
            ("used", -4207),
            ("deleted", -4208),
        ],
    )
    async def test_an_unusable_certificate_fails_the_whole_purchase(
        self, loyalty: LoyaltyClient, database: Database, trouble: str, status_code: int
    ) -> None:
        await promo_group(loyalty, "Ten", "TEN")
        await add_certificate(loyalty, "GOOD", value="100")
        if trouble == "other department":
            other = await second_department(database, loyalty.department.partner_id)
            await add_certificate(loyalty, "BAD", department=other.store_department_id)
        elif trouble == "not activated":
            await add_certificate(loyalty, "BAD", activate=False)
        elif trouble == "used":
            await add_certificate(loyalty, "BAD")
            await loyalty.call(
                "coupons/numbers/use", number="BAD", target_dep_id=loyalty.department.store_department_id
            )
        elif trouble == "deleted":
            await add_certificate(loyalty, "BAD")
            await loyalty.call("coupons/numbers/delete", number="BAD")
        bad_before = None if trouble == "missing" else await certificate(loyalty, "BAD")

        body = await buy(
            loyalty,
            "ORDER-1",
            cart(item("A1", 1000)),
            promocodes=numbers("TEN"),
            certificates=numbers("GOOD", "BAD"),
            user_phone=PHONE,
        )

        assert error(body) == ("error", status_code), body
        assert usage(await code(loyalty, "TEN")) == (1, 0, True)
        assert await certificate(loyalty, "GOOD") == (True, False, False)
        if bad_before is not None:
            assert await certificate(loyalty, "BAD") == bad_before
        assert error(await loyalty.call("purchases/get", order_num="ORDER-1")) == ("error", -4300)
        # The order_num is still free: a good purchase goes through afterwards.
        retry = await buy(
            loyalty,
            "ORDER-1",
            cart(item("A1", 1000)),
            promocodes=numbers("TEN"),
            certificates=numbers("GOOD"),
        )
        assert retry["certificates"] == [{"number": "GOOD", "amount": 100, "used": True}]
        assert statuses(retry) == [("TEN", 5, "Applied")]

    async def test_a_certificate_booked_to_its_department_with_target_dep_id(
        self, loyalty: LoyaltyClient, database: Database
    ) -> None:
        other = await second_department(database, loyalty.department.partner_id)
        await add_certificate(loyalty, "THERE", department=other.store_department_id)

        body = await buy(
            loyalty,
            "ORDER-1",
            cart(item("A1", 100)),
            certificates=numbers("THERE"),
            target_dep_id=other.store_department_id,
        )

        assert body["purchase"]["store_department_id"] == other.store_department_id
        assert body["certificates"] == [{"number": "THERE", "amount": 100, "used": True}]


# --- idempotency ----------------------------------------------------------------------------------------


class TestOrderNum:
    async def test_a_repeated_order_num_returns_the_first_result_and_applies_nothing_twice(
        self, loyalty: LoyaltyClient
    ) -> None:
        await promo_group(loyalty, "Everyone", "ALL", single_use=False, discount_value="10")
        await add_certificate(loyalty, "GIFT-1", value="50")
        basket = cart(item("A1", 100))

        first = await buy(
            loyalty,
            "ORDER-1",
            basket,
            promocodes=numbers("ALL"),
            certificates=numbers("GIFT-1"),
            user_phone=PHONE,
        )
        again = await buy(
            loyalty,
            "ORDER-1",
            basket,
            promocodes=numbers("ALL"),
            certificates=numbers("GIFT-1"),
            user_phone=PHONE,
        )
        different = await buy(loyalty, "ORDER-1", cart(item("Z9", 5)), promocodes=numbers("ALL"))

        assert first["status"] == "ok", first
        assert again == first
        assert different == first
        assert usage(await code(loyalty, "ALL"))[:2] == (3, 1)
        assert await certificate(loyalty, "GIFT-1") == (True, True, False)

    async def test_the_same_order_num_in_another_department_is_another_purchase(
        self, loyalty: LoyaltyClient, client: httpx.AsyncClient, database: Database
    ) -> None:
        await promo_group(loyalty, "Everyone", "ALL", single_use=False, discount_value="10")
        other = await second_department(database, loyalty.department.partner_id)
        there = LoyaltyClient(client, other, await login(client, other))

        here_body = await buy(loyalty, "ORDER-1", cart(item("A1", 100)), promocodes=numbers("ALL"))
        there_body = await buy(there, "ORDER-1", cart(item("A1", 200)), promocodes=numbers("ALL"))
        booked = await buy(
            loyalty,
            "ORDER-1",
            cart(item("A1", 300)),
            promocodes=numbers("ALL"),
            target_dep_id=other.store_department_id,
        )

        assert here_body["purchase"]["id"] != there_body["purchase"]["id"]
        assert there_body["purchase"]["store_department_id"] == other.store_department_id
        assert (here_body["purchase"]["price"], there_body["purchase"]["price"]) == (90, 180)
        assert booked == there_body, "target_dep_id books into the other department's order_nums"
        assert usage(await code(loyalty, "ALL"))[:2] == (3, 2)
        mine = await loyalty.call("purchases/get", order_num="ORDER-1")
        theirs = await there.call("purchases/get", order_num="ORDER-1")
        assert (mine["purchase"]["id"], theirs["purchase"]["id"]) == (
            here_body["purchase"]["id"],
            there_body["purchase"]["id"],
        )

    async def test_an_unknown_target_department_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await buy(loyalty, "ORDER-1", cart(item("A1", 100)), target_dep_id=987654321)

        assert error(body) == ("error", -4209)


# --- purchases/get and purchases/delete -------------------------------------------------------------------


class TestGetAndDelete:
    async def test_get_by_purchase_id_and_by_order_num(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Ten", "TEN")
        bought = await buy(loyalty, "ORDER-1", cart(item("A1", 100)), promocodes=numbers("TEN"))
        other = await buy(loyalty, "ORDER-2", cart(item("A1", 5)))

        by_id = await loyalty.call("purchases/get", purchase_id=bought["purchase"]["id"])
        by_order_num = await loyalty.call("purchases/get", order_num="ORDER-1")
        both = await loyalty.call("purchases/get", purchase_id=bought["purchase"]["id"], order_num="ORDER-2")

        assert by_id == by_order_num == both == bought
        assert other["purchase"]["id"] != bought["purchase"]["id"]
        assert by_id["purchase"]["is_deleted"] is False

    @pytest.mark.parametrize("params", [{"purchase_id": "987654"}, {"order_num": "NOPE"}])
    async def test_an_unknown_purchase_is_not_found(
        self, loyalty: LoyaltyClient, params: dict[str, str]
    ) -> None:
        assert error(await loyalty.call("purchases/get", **params)) == ("error", -4300)
        assert error(await loyalty.call("purchases/delete", **params)) == ("error", -4300)

    async def test_get_needs_an_id_or_an_order_num(self, loyalty: LoyaltyClient) -> None:
        assert error(await loyalty.call("purchases/get")) == ("error", -1000)
        assert error(await loyalty.call("purchases/get", purchase_id="x")) == ("error", -1000)

    async def test_a_purchase_of_another_partner_is_not_found(
        self, loyalty: LoyaltyClient, client: httpx.AsyncClient, database: Database
    ) -> None:
        async with database.transaction() as session:
            stranger_department = await tenancy.create_department(session, "Another retailer")
        stranger = LoyaltyClient(client, stranger_department, await login(client, stranger_department))
        theirs = await buy(stranger, "ORDER-1", cart(item("A1", 100)))

        assert error(await loyalty.call("purchases/get", purchase_id=theirs["purchase"]["id"])) == (
            "error",
            -4300,
        )
        assert error(await loyalty.call("purchases/get", order_num="ORDER-1")) == ("error", -4300)
        assert error(await loyalty.call("purchases/delete", purchase_id=theirs["purchase"]["id"])) == (
            "error",
            -4300,
        )
        assert (await stranger.call("purchases/get", order_num="ORDER-1"))["purchase"]["is_deleted"] is False

    async def test_delete_gives_codes_their_use_back_and_leaves_certificates_used(
        self, loyalty: LoyaltyClient
    ) -> None:
        await promo_group(loyalty, "Ten", "TEN")
        await add_certificate(loyalty, "GIFT-1", value="50")
        bought = await buy(
            loyalty,
            "ORDER-1",
            cart(item("A1", 100)),
            promocodes=numbers("TEN"),
            certificates=numbers("GIFT-1"),
        )
        assert usage(await code(loyalty, "TEN")) == (3, 1, False)

        deleted = await loyalty.call("purchases/delete", order_num="ORDER-1")

        assert deleted["status"] == "ok", deleted
        assert deleted["purchase"]["id"] == bought["purchase"]["id"]
        assert deleted["purchase"]["is_deleted"] is True
        assert deleted["purchase"]["deleted_date"] is not None
        assert usage(await code(loyalty, "TEN")) == (2, 0, True), "back to issued, never to available"
        assert await certificate(loyalty, "GIFT-1") == (True, True, False)
        counts = (await groups_by_name(loyalty))["Ten"]
        assert (counts["applied_count"], counts["receipted_count"], counts["unused_count"]) == (0, 1, 0)
        fetched = await loyalty.call("purchases/get", purchase_id=bought["purchase"]["id"])
        assert fetched["purchase"]["is_deleted"] is True
        assert fetched["cart"] == bought["cart"]

        # The code is usable again; the certificate is not.
        again = await buy(loyalty, "ORDER-2", cart(item("A1", 100)), promocodes=numbers("TEN"))
        assert statuses(again) == [("TEN", 5, "Applied")]
        assert usage(await code(loyalty, "TEN")) == (3, 1, False)
        refused = await buy(loyalty, "ORDER-3", cart(item("A1", 100)), certificates=numbers("GIFT-1"))
        assert error(refused) == ("error", -4207)

    async def test_a_second_delete_changes_nothing(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Everyone", "ALL", single_use=False)
        first = await buy(loyalty, "ORDER-1", cart(item("A1", 100)), promocodes=numbers("ALL"))
        await buy(loyalty, "ORDER-2", cart(item("A1", 100)), promocodes=numbers("ALL"))
        assert usage(await code(loyalty, "ALL")) == (3, 2, True)

        once = await loyalty.call("purchases/delete", purchase_id=first["purchase"]["id"])
        assert usage(await code(loyalty, "ALL")) == (3, 1, True), "still used by ORDER-2"
        twice = await loyalty.call("purchases/delete", purchase_id=first["purchase"]["id"])

        assert twice == once
        assert usage(await code(loyalty, "ALL")) == (3, 1, True)
        await loyalty.call("purchases/delete", order_num="ORDER-2")
        assert usage(await code(loyalty, "ALL")) == (2, 0, True)

    async def test_a_deleted_order_num_stays_taken(self, loyalty: LoyaltyClient) -> None:
        await promo_group(loyalty, "Ten", "TEN")
        bought = await buy(loyalty, "ORDER-1", cart(item("A1", 100)), promocodes=numbers("TEN"))
        await loyalty.call("purchases/delete", order_num="ORDER-1")

        again = await buy(loyalty, "ORDER-1", cart(item("A1", 100)), promocodes=numbers("TEN"))

        assert again["purchase"]["id"] == bought["purchase"]["id"]
        assert again["purchase"]["is_deleted"] is True
        assert usage(await code(loyalty, "TEN")) == (2, 0, True), "the replay applied nothing"

    async def test_deleting_a_purchase_without_codes_or_certificates(self, loyalty: LoyaltyClient) -> None:
        bought = await buy(loyalty, None, cart(item("A1", 100)))

        deleted = await loyalty.call("purchases/delete", purchase_id=bought["purchase"]["id"])

        assert deleted["purchase"]["is_deleted"] is True
