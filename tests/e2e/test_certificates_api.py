"""Gift certificates over the loyalty face (SPEC §6): upload, status, lifecycle, departments, tenants."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from conftest import LoyaltyClient, login
from tessera.db import Database
from tessera.tenancy import service as tenancy

#: SPEC names the calls `coupons/...`; the seed's own pages put them under `promocodes/coupons/...`.
PREFIXES = ["coupons", "promocodes/coupons"]
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$")


def text_file(*numbers: str) -> dict[str, Any]:
    return {"file": ("certificates.txt", "".join(f"{n}\n" for n in numbers).encode())}


def error(body: dict[str, Any]) -> tuple[Any, Any, Any]:
    return body["status"], body["status_code"], body["message"]


async def add_certificates(
    loyalty: LoyaltyClient,
    *numbers: str,
    name: str = "Gift 50",
    value: str = "50",
    target_dep_id: int | None = None,
    prefix: str = "coupons",
) -> dict[str, Any]:
    return await loyalty.call(
        f"{prefix}/numbers/add",
        files=text_file(*numbers),
        type="2",
        value=value,
        name=name,
        target_dep_id=target_dep_id or loyalty.department.store_department_id,
        pin_code=loyalty.department.pin_code,
    )


async def status(loyalty: LoyaltyClient, number: str, prefix: str = "coupons") -> dict[str, Any]:
    return await loyalty.call(f"{prefix}/numbers/status", number=number)


async def move(
    loyalty: LoyaltyClient,
    action: str,
    number: str,
    target_dep_id: int | None = None,
    prefix: str = "coupons",
) -> dict[str, Any]:
    return await loyalty.call(
        f"{prefix}/numbers/{action}",
        number=number,
        target_dep_id=target_dep_id or loyalty.department.store_department_id,
    )


async def groups(loyalty: LoyaltyClient, prefix: str = "coupons", **params: Any) -> list[dict[str, Any]]:
    body = await loyalty.call(f"{prefix}/groups/list", **params)
    assert body["status"] == "ok", body
    found: list[dict[str, Any]] = body["groups"]
    return found


def counts(group: dict[str, Any]) -> tuple[int, int, int]:
    return group["total_count"], group["activated_count"], group["used_count"]


async def second_department(database: Database, partner_id: int) -> tenancy.NewDepartment:
    async with database.transaction() as session:
        return await tenancy.create_department(session, "B", partner_id=partner_id)


async def other_partner(client: httpx.AsyncClient, database: Database) -> LoyaltyClient:
    async with database.transaction() as session:
        department = await tenancy.create_department(session, "Another retailer")
    return LoyaltyClient(client, department, await login(client, department))


def wrong_pin(*pins: str) -> str:
    return next(p for p in ("0000", "1111", "2222") if p not in pins)


class TestNumbersAdd:
    @pytest.mark.parametrize("prefix", PREFIXES)
    async def test_creates_a_group_holding_every_number(self, loyalty: LoyaltyClient, prefix: str) -> None:
        body = await add_certificates(loyalty, "CERT-1", "CERT-2", "CERT-3", prefix=prefix)

        dep_id = loyalty.department.store_department_id
        group_id = body["group"]["id"]
        assert body == {
            "status": "ok",
            "group": {"id": group_id, "name": "Gift 50", "dep_id": dep_id},
            "imported_count": 3,
        }
        [group] = await groups(loyalty)
        assert ISO_DATE.match(group["create_date"])
        assert group == {
            "id": group_id,
            "name": "Gift 50",
            "create_date": group["create_date"],
            "dep_id": dep_id,
            "value": "50",
            "total_count": 3,
            "activated_count": 0,
            "used_count": 0,
        }

    async def test_each_upload_is_a_new_group(self, loyalty: LoyaltyClient) -> None:
        first = await add_certificates(loyalty, "CERT-1", name="Gift 50")
        second = await add_certificates(loyalty, "CERT-2", name="Gift 50")

        assert first["group"]["id"] != second["group"]["id"]
        assert [(g["id"], g["total_count"]) for g in await groups(loyalty)] == [
            (first["group"]["id"], 1),
            (second["group"]["id"], 1),
        ]

    async def test_type_may_be_left_out(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call(
            "coupons/numbers/add",
            files=text_file("CERT-1"),
            value="50",
            name="Gift 50",
            target_dep_id=loyalty.department.store_department_id,
            pin_code=loyalty.department.pin_code,
        )

        assert (body["status"], body["imported_count"]) == ("ok", 1)

    async def test_a_type_other_than_2_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call(
            "coupons/numbers/add",
            files=text_file("CERT-1"),
            type="1",
            value="50",
            name="Gift 50",
            target_dep_id=loyalty.department.store_department_id,
            pin_code=loyalty.department.pin_code,
        )

        assert error(body) == ("error", -1000, "Invalid value of type: certificates are type 2")
        assert await groups(loyalty) == []

    @pytest.mark.parametrize("field", ["value", "name", "target_dep_id", "pin_code"])
    async def test_a_missing_required_field_is_named(self, loyalty: LoyaltyClient, field: str) -> None:
        params: dict[str, Any] = {
            "type": "2",
            "value": "50",
            "name": "Gift 50",
            "target_dep_id": loyalty.department.store_department_id,
            "pin_code": loyalty.department.pin_code,
        }
        del params[field]

        body = await loyalty.call("coupons/numbers/add", files=text_file("CERT-1"), **params)

        assert error(body) == ("error", -1000, f"Provide required {{'field': '{field}'}}")
        assert await groups(loyalty) == []

    async def test_a_value_that_is_not_a_number_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await add_certificates(loyalty, "CERT-1", value="fifty")

        assert error(body) == ("error", -1000, "Invalid value of value: not a number")
        assert await groups(loyalty) == []

    async def test_a_fractional_value_is_answered_without_a_needless_zero(
        self, loyalty: LoyaltyClient
    ) -> None:
        await add_certificates(loyalty, "CERT-1", value="50.50")

        assert (await status(loyalty, "CERT-1"))["value"] == "50.5"
        assert [g["value"] for g in await groups(loyalty)] == ["50.5"]

    async def test_a_pin_code_that_is_no_employee_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call(
            "coupons/numbers/add",
            files=text_file("CERT-1"),
            type="2",
            value="50",
            name="Gift 50",
            target_dep_id=loyalty.department.store_department_id,
            pin_code=wrong_pin(loyalty.department.pin_code),
        )

        assert error(body) == ("error", -4210, "Invalid pin_code")
        assert await groups(loyalty) == []
        assert error(await status(loyalty, "CERT-1"))[1] == -4200

    async def test_a_pin_code_of_another_department_is_refused(
        self, loyalty: LoyaltyClient, database: Database
    ) -> None:
        other = await second_department(database, loyalty.department.partner_id)
        while other.pin_code == loyalty.department.pin_code:  # four random digits may collide
            other = await second_department(database, loyalty.department.partner_id)

        body = await loyalty.call(
            "coupons/numbers/add",
            files=text_file("CERT-1"),
            type="2",
            value="50",
            name="Gift 50",
            target_dep_id=loyalty.department.store_department_id,
            pin_code=other.pin_code,
        )

        assert error(body) == ("error", -4210, "Invalid pin_code")
        assert await groups(loyalty) == []

    async def test_target_dep_id_may_name_another_department_of_the_partner(
        self, loyalty: LoyaltyClient, database: Database
    ) -> None:
        other = await second_department(database, loyalty.department.partner_id)

        body = await add_certificates(loyalty, "CERT-1", target_dep_id=other.store_department_id)

        assert body["group"]["dep_id"] == other.store_department_id
        assert (await status(loyalty, "CERT-1"))["dep_id"] == other.store_department_id

    async def test_an_unknown_target_department_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await add_certificates(loyalty, "CERT-1", target_dep_id=987654321)

        assert error(body) == ("error", -4209, "Department not found")
        assert await groups(loyalty) == []

    async def test_a_target_department_of_another_partner_is_refused(
        self, loyalty: LoyaltyClient, client: httpx.AsyncClient, database: Database
    ) -> None:
        stranger = await other_partner(client, database)

        body = await add_certificates(
            loyalty, "CERT-1", target_dep_id=stranger.department.store_department_id
        )

        assert error(body) == ("error", -4209, "Department not found")
        assert await groups(loyalty) == []
        assert await groups(stranger) == []

    async def test_without_a_file_is_an_invalid_file(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call(
            "coupons/numbers/add",
            type="2",
            value="50",
            name="Gift 50",
            target_dep_id=loyalty.department.store_department_id,
            pin_code=loyalty.department.pin_code,
        )

        assert error(body) == ("error", -4201, "Invalid file")
        assert await groups(loyalty) == []

    async def test_a_number_existing_in_another_group_refuses_the_whole_upload(
        self, loyalty: LoyaltyClient
    ) -> None:
        await add_certificates(loyalty, "CERT-1", "CERT-2", name="First")

        body = await add_certificates(loyalty, "NEW-1", "CERT-2", "NEW-2", name="Second")

        assert error(body) == ("error", -4202, "Duplicate numbers in file")
        assert body["duplicates"] == ["CERT-2"]
        assert [(g["name"], g["total_count"]) for g in await groups(loyalty)] == [("First", 2)]
        assert error(await status(loyalty, "NEW-1"))[1] == -4200
        assert error(await status(loyalty, "NEW-2"))[1] == -4200
        assert (await status(loyalty, "CERT-2"))["group"]["name"] == "First"

    async def test_a_deleted_number_still_blocks_a_new_upload_of_it(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1", name="First")
        await move(loyalty, "delete", "CERT-1")

        body = await add_certificates(loyalty, "CERT-1", name="Second")

        assert (error(body), body["duplicates"]) == (
            ("error", -4202, "Duplicate numbers in file"),
            ["CERT-1"],
        )
        assert [g["name"] for g in await groups(loyalty)] == ["First"]

    async def test_another_partner_may_use_the_same_numbers(
        self, loyalty: LoyaltyClient, client: httpx.AsyncClient, database: Database
    ) -> None:
        stranger = await other_partner(client, database)
        await add_certificates(loyalty, "CERT-1", value="50")

        body = await add_certificates(stranger, "CERT-1", value="70")

        assert (body["status"], body["imported_count"]) == ("ok", 1)
        assert (await status(loyalty, "CERT-1"))["value"] == "50"
        assert (await status(stranger, "CERT-1"))["value"] == "70"

    async def test_needs_a_token(self, loyalty: LoyaltyClient) -> None:
        response = await loyalty.http.post(
            "/api/v2/coupons/numbers/add/",
            data={
                "store_department_id": loyalty.department.store_department_id,
                "type": "2",
                "value": "50",
                "name": "Gift 50",
                "target_dep_id": loyalty.department.store_department_id,
                "pin_code": loyalty.department.pin_code,
            },
            files=text_file("CERT-1"),
        )

        assert response.json() == {
            "status": "error",
            "status_code": -7,
            "message": "Permission denied. Provide auth token and store_department_id",
        }
        assert await groups(loyalty) == []


class TestGroupsList:
    @pytest.mark.parametrize("prefix", PREFIXES)
    async def test_counts_follow_the_certificates(self, loyalty: LoyaltyClient, prefix: str) -> None:
        await add_certificates(loyalty, "C-1", "C-2", "C-3", "C-4")
        assert [counts(g) for g in await groups(loyalty, prefix)] == [(4, 0, 0)]

        await move(loyalty, "activate", "C-1")
        await move(loyalty, "activate", "C-2")
        assert [counts(g) for g in await groups(loyalty, prefix)] == [(4, 2, 0)]

        await move(loyalty, "use", "C-1")
        assert [counts(g) for g in await groups(loyalty, prefix)] == [(4, 2, 1)]

    async def test_deleted_certificates_leave_the_counts(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "C-1", "C-2", "C-3")
        await move(loyalty, "activate", "C-1")
        await move(loyalty, "use", "C-1")
        await move(loyalty, "activate", "C-2")

        await move(loyalty, "delete", "C-1")
        await move(loyalty, "delete", "C-3")

        assert [counts(g) for g in await groups(loyalty)] == [(1, 1, 0)]

    async def test_each_group_counts_only_its_own_certificates(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "A-1", "A-2", name="A")
        await add_certificates(loyalty, "B-1", "B-2", "B-3", name="B")
        await move(loyalty, "activate", "B-3")

        assert [(g["name"], *counts(g)) for g in await groups(loyalty)] == [("A", 2, 0, 0), ("B", 3, 1, 0)]

    async def test_target_dep_id_filters_by_department(
        self, loyalty: LoyaltyClient, database: Database
    ) -> None:
        other = await second_department(database, loyalty.department.partner_id)
        await add_certificates(loyalty, "A-1", name="Here")
        await add_certificates(loyalty, "B-1", name="There", target_dep_id=other.store_department_id)

        assert [g["name"] for g in await groups(loyalty)] == ["Here", "There"]
        assert [g["name"] for g in await groups(loyalty, target_dep_id=other.store_department_id)] == [
            "There"
        ]

    async def test_is_empty_for_a_partner_without_certificates(self, loyalty: LoyaltyClient) -> None:
        assert await groups(loyalty) == []


class TestStatus:
    @pytest.mark.parametrize("prefix", PREFIXES)
    async def test_answers_the_seeds_shape(self, loyalty: LoyaltyClient, prefix: str) -> None:
        added = await add_certificates(loyalty, "8m8iv", name="Test Certificate 2", value="50")

        body = await status(loyalty, "8m8iv", prefix)

        assert body == {
            "status": "ok",
            "used": False,
            "value_type": 2,
            "deleted": False,
            "group": {"id": added["group"]["id"], "name": "Test Certificate 2"},
            "dep_id": loyalty.department.store_department_id,
            "activated": False,
            "number": "8m8iv",
            "value": "50",
            "activated_date": None,
            "used_date": None,
            "deleted_date": None,
        }

    async def test_an_unknown_number_is_not_found(self, loyalty: LoyaltyClient) -> None:
        assert error(await status(loyalty, "NOPE")) == ("error", -4200, "Certificate not found")

    async def test_without_a_number_names_the_field(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("coupons/numbers/status")

        assert error(body) == ("error", -1000, "Provide required {'field': 'number'}")

    async def test_a_deleted_certificate_is_still_found(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")
        deleted = await move(loyalty, "delete", "CERT-1")

        body = await status(loyalty, "CERT-1")

        assert (body["status"], body["deleted"], body["activated"], body["used"]) == (
            "ok",
            True,
            False,
            False,
        )
        assert ISO_DATE.match(body["deleted_date"])
        assert body["deleted_date"] == deleted["deleted_date"]

    async def test_answers_with_a_get_and_the_query_string(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")

        response = await loyalty.http.get(
            "/api/v2/promocodes/coupons/numbers/status", params={**loyalty.auth(), "number": "CERT-1"}
        )

        assert response.status_code == 200
        assert (response.json()["status"], response.json()["number"]) == ("ok", "CERT-1")


class TestActivate:
    @pytest.mark.parametrize("prefix", PREFIXES)
    async def test_activates_a_created_certificate(self, loyalty: LoyaltyClient, prefix: str) -> None:
        await add_certificates(loyalty, "CERT-1")

        body = await move(loyalty, "activate", "CERT-1", prefix=prefix)

        assert body == {"status": "ok", "activated": True}
        after = await status(loyalty, "CERT-1")
        assert (after["activated"], after["used"], after["deleted"]) == (True, False, False)
        assert ISO_DATE.match(after["activated_date"])

    async def test_activating_twice_is_refused(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")
        await move(loyalty, "activate", "CERT-1")

        body = await move(loyalty, "activate", "CERT-1")

        assert error(body) == ("error", -4206, "Certificate already activated")

    async def test_activating_a_used_certificate_is_refused(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")
        await move(loyalty, "activate", "CERT-1")
        await move(loyalty, "use", "CERT-1")

        body = await move(loyalty, "activate", "CERT-1")

        assert error(body) == ("error", -4207, "Certificate already used")

    async def test_an_unknown_number_is_not_found(self, loyalty: LoyaltyClient) -> None:
        assert error(await move(loyalty, "activate", "NOPE")) == ("error", -4200, "Certificate not found")

    async def test_without_target_dep_id_names_the_field(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")

        body = await loyalty.call("coupons/numbers/activate", number="CERT-1")

        assert error(body) == ("error", -1000, "Provide required {'field': 'target_dep_id'}")
        assert (await status(loyalty, "CERT-1"))["activated"] is False

    async def test_without_number_names_the_field(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call(
            "coupons/numbers/activate", target_dep_id=loyalty.department.store_department_id
        )

        assert error(body) == ("error", -1000, "Provide required {'field': 'number'}")

    async def test_an_unknown_target_department_is_refused(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")

        body = await move(loyalty, "activate", "CERT-1", target_dep_id=987654321)

        assert error(body) == ("error", -4209, "Department not found")
        assert (await status(loyalty, "CERT-1"))["activated"] is False


class TestUse:
    @pytest.mark.parametrize("prefix", PREFIXES)
    async def test_uses_an_activated_certificate(self, loyalty: LoyaltyClient, prefix: str) -> None:
        await add_certificates(loyalty, "CERT-1")
        await move(loyalty, "activate", "CERT-1")

        body = await move(loyalty, "use", "CERT-1", prefix=prefix)

        assert body == {"status": "ok", "used": True}
        after = await status(loyalty, "CERT-1")
        assert (after["activated"], after["used"], after["deleted"]) == (True, True, False)
        assert ISO_DATE.match(after["used_date"])

    async def test_using_before_activation_is_refused(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")

        body = await move(loyalty, "use", "CERT-1")

        assert error(body) == ("error", -4205, "Certificate is not activated")
        assert (await status(loyalty, "CERT-1"))["used"] is False

    async def test_using_twice_is_refused(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")
        await move(loyalty, "activate", "CERT-1")
        await move(loyalty, "use", "CERT-1")

        body = await move(loyalty, "use", "CERT-1")

        assert error(body) == ("error", -4207, "Certificate already used")

    async def test_an_unknown_number_is_not_found(self, loyalty: LoyaltyClient) -> None:
        assert error(await move(loyalty, "use", "NOPE")) == ("error", -4200, "Certificate not found")

    async def test_without_target_dep_id_names_the_field(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")
        await move(loyalty, "activate", "CERT-1")

        body = await loyalty.call("coupons/numbers/use", number="CERT-1")

        assert error(body) == ("error", -1000, "Provide required {'field': 'target_dep_id'}")
        assert (await status(loyalty, "CERT-1"))["used"] is False

    async def test_concurrent_uses_let_exactly_one_through(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")
        await move(loyalty, "activate", "CERT-1")

        answers = await asyncio.gather(*(move(loyalty, "use", "CERT-1") for _ in range(12)))

        outcomes = sorted((a["status"], a.get("status_code")) for a in answers)
        assert outcomes == [("error", -4207)] * 11 + [("ok", None)]
        [group] = await groups(loyalty)
        assert counts(group) == (1, 1, 1)


class TestDelete:
    @pytest.mark.parametrize("state", ["created", "activated", "used"])
    async def test_deletes_in_any_state(self, loyalty: LoyaltyClient, state: str) -> None:
        await add_certificates(loyalty, "CERT-1")
        if state in ("activated", "used"):
            await move(loyalty, "activate", "CERT-1")
        if state == "used":
            await move(loyalty, "use", "CERT-1")

        body = await loyalty.call("coupons/numbers/delete", number="CERT-1")

        assert body == {
            "status": "ok",
            "deleted": True,
            "deleted_date": body["deleted_date"],
            "number": "CERT-1",
        }
        assert ISO_DATE.match(body["deleted_date"])
        after = await status(loyalty, "CERT-1")
        assert (after["deleted"], after["activated"], after["used"]) == (
            True,
            state != "created",
            state == "used",
        )

    @pytest.mark.parametrize("state", ["created", "activated", "used"])
    @pytest.mark.parametrize("action", ["activate", "use"])
    async def test_a_deleted_certificate_cannot_move(
        self, loyalty: LoyaltyClient, state: str, action: str
    ) -> None:
        await add_certificates(loyalty, "CERT-1")
        if state in ("activated", "used"):
            await move(loyalty, "activate", "CERT-1")
        if state == "used":
            await move(loyalty, "use", "CERT-1")
        await move(loyalty, "delete", "CERT-1")
        before = await status(loyalty, "CERT-1")

        body = await move(loyalty, action, "CERT-1")

        assert error(body) == ("error", -4208, "Certificate is deleted")
        assert await status(loyalty, "CERT-1") == before

    async def test_deleting_twice_answers_the_first_deletion(self, loyalty: LoyaltyClient) -> None:
        await add_certificates(loyalty, "CERT-1")
        first = await move(loyalty, "delete", "CERT-1", prefix="promocodes/coupons")

        second = await move(loyalty, "delete", "CERT-1")

        assert second == first

    async def test_an_unknown_number_is_not_found(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("coupons/numbers/delete", number="NOPE")

        assert error(body) == ("error", -4200, "Certificate not found")

    async def test_without_number_names_the_field(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("coupons/numbers/delete")

        assert error(body) == ("error", -1000, "Provide required {'field': 'number'}")


class TestDepartmentRule:
    @pytest.mark.parametrize("action", ["activate", "use"])
    async def test_another_department_of_the_partner_is_refused(
        self, loyalty: LoyaltyClient, database: Database, action: str
    ) -> None:
        other = await second_department(database, loyalty.department.partner_id)
        await add_certificates(loyalty, "CERT-1")
        if action == "use":
            await move(loyalty, "activate", "CERT-1")
        before = await status(loyalty, "CERT-1")

        body = await move(loyalty, action, "CERT-1", target_dep_id=other.store_department_id)

        assert error(body) == ("error", -4204, "Certificate belongs to another department")
        assert await status(loyalty, "CERT-1") == before

    async def test_the_department_is_checked_before_the_state(
        self, loyalty: LoyaltyClient, database: Database
    ) -> None:
        other = await second_department(database, loyalty.department.partner_id)
        await add_certificates(loyalty, "CERT-1")
        await move(loyalty, "delete", "CERT-1")

        body = await move(loyalty, "use", "CERT-1", target_dep_id=other.store_department_id)

        assert error(body) == ("error", -4204, "Certificate belongs to another department")

    async def test_the_other_department_moves_its_own_certificates(
        self, loyalty: LoyaltyClient, client: httpx.AsyncClient, database: Database
    ) -> None:
        other = await second_department(database, loyalty.department.partner_id)
        there = LoyaltyClient(client, other, await login(client, other))
        await add_certificates(loyalty, "CERT-1", target_dep_id=other.store_department_id)

        assert await move(there, "activate", "CERT-1") == {"status": "ok", "activated": True}
        assert await move(there, "use", "CERT-1") == {"status": "ok", "used": True}
        assert error(await move(loyalty, "use", "CERT-1"))[1] == -4204


class TestPartnerIsolation:
    @pytest.fixture
    async def stranger(self, client: httpx.AsyncClient, database: Database) -> LoyaltyClient:
        return await other_partner(client, database)

    @pytest.fixture
    async def certificate(self, loyalty: LoyaltyClient) -> dict[str, Any]:
        await add_certificates(loyalty, "CERT-1", "CERT-2")
        await move(loyalty, "activate", "CERT-2")
        return await status(loyalty, "CERT-1")

    async def test_another_partner_sees_no_groups(
        self, certificate: dict[str, Any], stranger: LoyaltyClient
    ) -> None:
        assert await groups(stranger) == []

    async def test_another_partner_cannot_read_the_status(
        self, certificate: dict[str, Any], stranger: LoyaltyClient
    ) -> None:
        assert error(await status(stranger, "CERT-1")) == ("error", -4200, "Certificate not found")

    @pytest.mark.parametrize("action", ["activate", "use", "delete"])
    @pytest.mark.parametrize("number", ["CERT-1", "CERT-2"])
    async def test_another_partner_cannot_move_them_through_its_own_department(
        self,
        loyalty: LoyaltyClient,
        certificate: dict[str, Any],
        stranger: LoyaltyClient,
        action: str,
        number: str,
    ) -> None:
        before = await status(loyalty, number)

        body = await move(stranger, action, number)

        assert error(body) == ("error", -4200, "Certificate not found")
        assert await status(loyalty, number) == before

    @pytest.mark.parametrize("action", ["activate", "use"])
    async def test_another_partner_cannot_name_the_owners_department(
        self,
        loyalty: LoyaltyClient,
        certificate: dict[str, Any],
        stranger: LoyaltyClient,
        action: str,
    ) -> None:
        body = await move(stranger, action, "CERT-2", target_dep_id=loyalty.department.store_department_id)

        assert error(body) == ("error", -4209, "Department not found")
        assert (await status(loyalty, "CERT-2"))["used"] is False

    async def test_a_token_of_one_department_does_not_open_another(
        self, loyalty: LoyaltyClient, certificate: dict[str, Any], stranger: LoyaltyClient
    ) -> None:
        response = await loyalty.http.post(
            "/api/v2/coupons/numbers/status/",
            data={
                "token": stranger.token,
                "store_department_id": loyalty.department.store_department_id,
                "number": "CERT-1",
            },
        )

        assert response.json()["status_code"] == -7
