"""Customers and tags over the loyalty face (SPEC §3, §4)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import LoyaltyClient

PHONE = "79001234567"
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}")
USER_NOT_FOUND = {"status": "error", "status_code": -4000, "message": "User not found"}
NO_IDENTIFIER = {
    "status": "error",
    "status_code": -1000,
    "message": "Provide user_phone or email or origin_user_id",
}
INVALID_PHONE = {"status": "error", "status_code": -1001, "message": "Phone is not valid"}
INVALID_EMAIL = {"status": "error", "status_code": -1002, "message": "Invalid value of email"}
PHONE_TAKEN = {"status": "error", "status_code": -200007, "message": "Phone is already used by another user"}
EMAIL_TAKEN = {"status": "error", "status_code": -200010, "message": "Email is already used by another user"}


def user(**fields: Any) -> dict[str, Any]:
    """A users/add or users/info body: every field present, absent ones null."""
    empty = dict.fromkeys(
        (
            "phone",
            "email",
            "origin_user_id",
            "first_name",
            "last_name",
            "middle_name",
            "birth_date",
            "sex",
        )
    )
    return {"status": "ok", **empty, **fields}


class TestUsersAdd:
    async def test_phone_is_normalised_and_absent_fields_are_null(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("users/add", user_phone="+7 (900) 123-45-67")

        assert body == user(id=body["id"], phone=PHONE)
        assert isinstance(body["id"], int)

    async def test_seed_phone_parameter_is_accepted(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("users/add", phone="+7 900 123 45 67")

        assert body == user(id=body["id"], phone=PHONE)

    async def test_email_is_lower_cased(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("users/add", email="  Anna.Petrova@Example.COM ")

        assert body == user(id=body["id"], email="anna.petrova@example.com")

    async def test_origin_user_id_alone_identifies_a_customer(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("users/add", origin_user_id="crm-42")

        assert body == user(id=body["id"], origin_user_id="crm-42")

    async def test_all_fields_are_stored_and_returned(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call(
            "users/add",
            user_phone=PHONE,
            email="anna@example.com",
            origin_user_id="crm-42",
            first_name="Anna",
            last_name="Petrova",
            middle_name="Ivanovna",
            birth_date="1990-05-17",
            sex="2",
        )
        info = await loyalty.call("users/info", origin_user_id="crm-42")

        expected = user(
            id=body["id"],
            phone=PHONE,
            email="anna@example.com",
            origin_user_id="crm-42",
            first_name="Anna",
            last_name="Petrova",
            middle_name="Ivanovna",
            birth_date="1990-05-17",
            sex=2,
        )
        assert body == expected
        assert info == expected

    async def test_birth_year_before_1900_is_clamped_to_1900(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("users/add", user_phone=PHONE, birth_date="1885-03-01")

        assert body["birth_date"] == "1900-03-01"

    async def test_same_phone_again_completes_the_same_customer(self, loyalty: LoyaltyClient) -> None:
        first = await loyalty.call("users/add", user_phone=PHONE, first_name="Anna")

        second = await loyalty.call("users/add", user_phone="+7 900 123-45-67", email="Anna@Example.com")
        third = await loyalty.call("users/add", user_phone=PHONE, last_name="Petrova")

        assert second == user(id=first["id"], phone=PHONE, email="anna@example.com", first_name="Anna")
        assert third == user(
            id=first["id"], phone=PHONE, email="anna@example.com", first_name="Anna", last_name="Petrova"
        )

    async def test_known_email_with_a_new_phone_completes_that_customer(self, loyalty: LoyaltyClient) -> None:
        first = await loyalty.call("users/add", email="anna@example.com")

        second = await loyalty.call("users/add", email="ANNA@example.com", user_phone=PHONE)
        by_phone = await loyalty.call("users/info", user_phone=PHONE)

        assert second == user(id=first["id"], phone=PHONE, email="anna@example.com")
        assert by_phone == second

    async def test_phone_of_another_customer_is_refused(self, loyalty: LoyaltyClient) -> None:
        await loyalty.call("users/add", user_phone=PHONE)
        other = await loyalty.call("users/add", origin_user_id="crm-2", email="boris@example.com")

        body = await loyalty.call("users/add", origin_user_id="crm-2", user_phone=PHONE)
        unchanged = await loyalty.call("users/info", origin_user_id="crm-2")

        assert body == PHONE_TAKEN
        assert unchanged == user(id=other["id"], email="boris@example.com", origin_user_id="crm-2")

    async def test_email_of_another_customer_is_refused(self, loyalty: LoyaltyClient) -> None:
        await loyalty.call("users/add", email="anna@example.com")
        other = await loyalty.call("users/add", user_phone=PHONE, first_name="Boris")

        body = await loyalty.call("users/add", user_phone=PHONE, email="ANNA@example.com", last_name="X")
        unchanged = await loyalty.call("users/info", user_phone=PHONE)

        assert body == EMAIL_TAKEN
        assert unchanged == user(id=other["id"], phone=PHONE, first_name="Boris")

    @pytest.mark.parametrize(
        "phone", ["12345", "7900abc4567", "+7 900 123 45 67 89 01 23", "７９００１２３４５６７"]
    )
    async def test_malformed_phone_is_refused(self, loyalty: LoyaltyClient, phone: str) -> None:
        body = await loyalty.call("users/add", user_phone=phone, email="anna@example.com")

        assert body == INVALID_PHONE

    @pytest.mark.parametrize("email", ["anna", "anna@", "anna@example", "an na@example.com", "@example.com"])
    async def test_malformed_email_is_refused(self, loyalty: LoyaltyClient, email: str) -> None:
        body = await loyalty.call("users/add", email=email)

        assert body == INVALID_EMAIL

    async def test_refused_customer_is_not_created(self, loyalty: LoyaltyClient) -> None:
        refused = await loyalty.call("users/add", user_phone=PHONE, email="not-an-email")
        info = await loyalty.call("users/info", user_phone=PHONE)

        assert refused == INVALID_EMAIL
        assert info == USER_NOT_FOUND

    async def test_no_identifier_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("users/add", first_name="Anna")

        assert body == NO_IDENTIFIER


class TestUsersInfo:
    @pytest.fixture
    async def anna(self, loyalty: LoyaltyClient) -> dict[str, Any]:
        return await loyalty.call(
            "users/add",
            user_phone=PHONE,
            email="anna@example.com",
            origin_user_id="crm-42",
            first_name="Anna",
        )

    @pytest.mark.parametrize("phone", [PHONE, "+7 (900) 123-45-67"])
    async def test_finds_customer_by_phone_in_any_notation(
        self, loyalty: LoyaltyClient, anna: dict[str, Any], phone: str
    ) -> None:
        body = await loyalty.call("users/info", user_phone=phone)

        assert body == anna

    @pytest.mark.parametrize("email", ["anna@example.com", "ANNA@Example.Com"])
    async def test_finds_customer_by_email_case_insensitively(
        self, loyalty: LoyaltyClient, anna: dict[str, Any], email: str
    ) -> None:
        body = await loyalty.call("users/info", email=email)

        assert body == anna

    async def test_finds_customer_by_origin_user_id(
        self, loyalty: LoyaltyClient, anna: dict[str, Any]
    ) -> None:
        body = await loyalty.call("users/info", origin_user_id="crm-42")

        assert body == anna

    @pytest.mark.parametrize(
        "identifier",
        [{"user_phone": "79990000000"}, {"email": "nobody@example.com"}, {"origin_user_id": "crm-43"}],
    )
    async def test_unknown_customer_is_not_found(
        self, loyalty: LoyaltyClient, anna: dict[str, Any], identifier: dict[str, str]
    ) -> None:
        body = await loyalty.call("users/info", **identifier)

        assert body == USER_NOT_FOUND

    async def test_no_identifier_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("users/info")

        assert body == NO_IDENTIFIER

    async def test_malformed_phone_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("users/info", user_phone="12-34")

        assert body == INVALID_PHONE

    async def test_malformed_email_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("users/info", email="anna(at)example.com")

        assert body == INVALID_EMAIL


async def tags_of(loyalty: LoyaltyClient, **identifier: str) -> list[dict[str, Any]]:
    body = await loyalty.call("users/tags/list", **identifier)
    assert body["status"] == "ok", body
    tags: list[dict[str, Any]] = body["tags"]
    return tags


class TestTags:
    @pytest.fixture
    async def anna(self, loyalty: LoyaltyClient) -> dict[str, Any]:
        return await loyalty.call("users/add", user_phone=PHONE, email="anna@example.com")

    async def test_new_customer_has_no_tags(self, loyalty: LoyaltyClient, anna: dict[str, Any]) -> None:
        body = await loyalty.call("users/tags/list", user_phone=PHONE)

        assert body == {"status": "ok", "tags": []}

    async def test_added_tags_are_listed_in_order_with_iso_dates(
        self, loyalty: LoyaltyClient, anna: dict[str, Any]
    ) -> None:
        added = await loyalty.call("users/tags/add", user_phone=PHONE, tags="VIP,Newsletter")
        body = await loyalty.call("users/tags/list", user_phone=PHONE)

        assert added == {"status": "ok"}
        assert body == {
            "status": "ok",
            "tags": [
                {"name": "VIP", "added_date": body["tags"][0]["added_date"]},
                {"name": "Newsletter", "added_date": body["tags"][1]["added_date"]},
            ],
        }
        for tag in body["tags"]:
            assert ISO_DATE.fullmatch(tag["added_date"]), tag
            moment = datetime.fromisoformat(tag["added_date"])
            assert moment.tzinfo is None
            assert abs((datetime.now(UTC).replace(tzinfo=None) - moment).total_seconds()) < 60

    async def test_tag_names_are_trimmed_and_deduplicated(
        self, loyalty: LoyaltyClient, anna: dict[str, Any]
    ) -> None:
        await loyalty.call("users/tags/add", email="anna@example.com", tags=" VIP , Gold,VIP,, ")

        assert [t["name"] for t in await tags_of(loyalty, email="anna@example.com")] == ["VIP", "Gold"]

    async def test_adding_a_tag_the_customer_has_changes_nothing(
        self, loyalty: LoyaltyClient, anna: dict[str, Any]
    ) -> None:
        await loyalty.call("users/tags/add", user_phone=PHONE, tags="VIP")
        before = await tags_of(loyalty, user_phone=PHONE)

        again = await loyalty.call("users/tags/add", user_phone=PHONE, tags="VIP")
        after = await tags_of(loyalty, user_phone=PHONE)

        assert again == {"status": "ok"}
        assert after == before
        assert [t["name"] for t in after] == ["VIP"]

    async def test_adding_known_and_new_tags_keeps_the_known_date(
        self, loyalty: LoyaltyClient, anna: dict[str, Any]
    ) -> None:
        await loyalty.call("users/tags/add", user_phone=PHONE, tags="VIP")
        [vip] = await tags_of(loyalty, user_phone=PHONE)

        await loyalty.call("users/tags/add", user_phone=PHONE, tags="Gold,VIP")
        after = await tags_of(loyalty, user_phone=PHONE)

        assert [t["name"] for t in after] == ["VIP", "Gold"]
        assert after[0] == vip

    async def test_tags_are_per_customer(self, loyalty: LoyaltyClient, anna: dict[str, Any]) -> None:
        await loyalty.call("users/add", origin_user_id="crm-2")

        await loyalty.call("users/tags/add", user_phone=PHONE, tags="VIP")

        assert await tags_of(loyalty, origin_user_id="crm-2") == []

    async def test_delete_removes_only_the_named_tags(
        self, loyalty: LoyaltyClient, anna: dict[str, Any]
    ) -> None:
        await loyalty.call("users/tags/add", user_phone=PHONE, tags="VIP,Gold,Newsletter")

        body = await loyalty.call("users/tags/delete", user_phone=PHONE, tags="Gold,Newsletter")

        assert body == {"status": "ok", "deleted_count": 2}
        assert [t["name"] for t in await tags_of(loyalty, user_phone=PHONE)] == ["VIP"]

    async def test_deleting_a_tag_the_customer_lacks_deletes_nothing(
        self, loyalty: LoyaltyClient, anna: dict[str, Any]
    ) -> None:
        await loyalty.call("users/add", origin_user_id="crm-2")
        await loyalty.call("users/tags/add", origin_user_id="crm-2", tags="Gold")
        await loyalty.call("users/tags/add", user_phone=PHONE, tags="VIP")

        body = await loyalty.call("users/tags/delete", user_phone=PHONE, tags="Gold,Unknown")

        assert body == {"status": "ok", "deleted_count": 0}
        assert [t["name"] for t in await tags_of(loyalty, user_phone=PHONE)] == ["VIP"]
        assert [t["name"] for t in await tags_of(loyalty, origin_user_id="crm-2")] == ["Gold"]

    async def test_a_deleted_tag_can_be_added_again(
        self, loyalty: LoyaltyClient, anna: dict[str, Any]
    ) -> None:
        await loyalty.call("users/tags/add", user_phone=PHONE, tags="VIP")
        await loyalty.call("users/tags/delete", user_phone=PHONE, tags="VIP")

        await loyalty.call("users/tags/add", user_phone=PHONE, tags="VIP")

        assert [t["name"] for t in await tags_of(loyalty, user_phone=PHONE)] == ["VIP"]

    @pytest.mark.parametrize("path", ["users/tags/add", "users/tags/list", "users/tags/delete"])
    async def test_unknown_customer_is_not_found(
        self, loyalty: LoyaltyClient, anna: dict[str, Any], path: str
    ) -> None:
        body = await loyalty.call(path, user_phone="79990000000", tags="VIP")

        assert body == USER_NOT_FOUND

    @pytest.mark.parametrize("path", ["users/tags/add", "users/tags/list", "users/tags/delete"])
    async def test_no_identifier_is_refused(
        self, loyalty: LoyaltyClient, anna: dict[str, Any], path: str
    ) -> None:
        body = await loyalty.call(path, tags="VIP")

        assert body == NO_IDENTIFIER

    @pytest.mark.parametrize("path", ["users/tags/add", "users/tags/delete"])
    @pytest.mark.parametrize("tags", [None, " , ,"])
    async def test_missing_tags_are_refused(
        self, loyalty: LoyaltyClient, anna: dict[str, Any], path: str, tags: str | None
    ) -> None:
        body = await loyalty.call(path, user_phone=PHONE, tags=tags)

        assert body == {
            "status": "error",
            "status_code": -1000,
            "message": "Provide required {'field': 'tags'}",
        }
