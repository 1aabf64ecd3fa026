"""Promo-code groups, uploads, look-ups, activation and issue over the loyalty face (SPEC §5)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import LoyaltyClient

PAST = "2020-01-01T00:00:00"
FUTURE = "2099-12-31T23:59:59"
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}")
ANNA = "79001111111"
BORIS = "79002222222"


def err(status_code: int, message: str) -> dict[str, Any]:
    return {"status": "error", "status_code": status_code, "message": message}


NUMBER_NOT_FOUND = err(-4100, "Number not found")
GROUP_NOT_FOUND = err(-4101, "Promocode group not found")
NOT_ACTIVATION = err(-4102, "Promocode group is not an activation group")
GROUP_DISABLED = err(-4103, "Promocode group is disabled")
ALREADY_ACTIVATED = err(-4104, "Promocode already activated")
NO_FREE = err(-4105, "No free promocodes in group")
EXPIRED = err(-4106, "Promocode expired")
USER_NOT_FOUND = err(-4000, "User not found")
ACTIVATED = {"status": "ok", "promocode_status": 2}


def missing(field: str) -> dict[str, Any]:
    return err(-1000, f"Provide required {{'field': '{field}'}}")


async def upload(
    loyalty: LoyaltyClient,
    name: str,
    *numbers: str,
    type: str | None = None,
    apply_items_once: str | None = None,
    expires_at: str | None = None,
    filename: str = "codes.txt",
) -> dict[str, Any]:
    content = "".join(f"{n}\n" for n in numbers).encode()
    return await loyalty.call(
        "promocodes/numbers/add",
        files={"file": (filename, content, "text/plain")},
        name=name,
        type=type,
        apply_items_once=apply_items_once,
        expires_at=expires_at,
    )


async def uploaded(loyalty: LoyaltyClient, name: str, *numbers: str, **options: str) -> dict[str, Any]:
    body = await upload(loyalty, name, *numbers, **options)
    assert body["status"] == "ok", body
    group: dict[str, Any] = body["group"]
    return group


async def customer(loyalty: LoyaltyClient, phone: str) -> int:
    body = await loyalty.call("users/add", user_phone=phone)
    assert body["status"] == "ok", body
    customer_id: int = body["id"]
    return customer_id


async def all_groups(loyalty: LoyaltyClient) -> dict[str, list[dict[str, Any]]]:
    body = await loyalty.call("promocodes/groups/list")
    assert body["status"] == "ok", body
    groups: dict[str, list[dict[str, Any]]] = body["groups"]
    return groups


async def group_row_named(loyalty: LoyaltyClient, name: str) -> dict[str, Any]:
    groups = await all_groups(loyalty)
    [found] = [g for g in groups["enabled"] + groups["disabled"] if g["name"] == name]
    return found


def counts(group: dict[str, Any]) -> dict[str, int]:
    keys = ("total_count", "unused_count", "reserved_count", "receipted_count", "applied_count")
    return {key: group[key] for key in keys}


def expected_counts(*, unused: int, receipted: int) -> dict[str, int]:
    """SPEC §5 before any purchase: total = unused + receipted, reserved = unused, applied = 0."""
    return {
        "total_count": unused + receipted,
        "unused_count": unused,
        "reserved_count": unused,
        "receipted_count": receipted,
        "applied_count": 0,
    }


async def activate(loyalty: LoyaltyClient, phone: str, group: str, number: str) -> dict[str, Any]:
    return await loyalty.call("promocodes/activate", user_phone=phone, group_name=group, number=number)


async def issue(loyalty: LoyaltyClient, phone: str, group: str) -> dict[str, Any]:
    return await loyalty.call("promocodes/issue", user_phone=phone, group_name=group)


async def tag_names(loyalty: LoyaltyClient, phone: str) -> list[str]:
    body = await loyalty.call("users/tags/list", user_phone=phone)
    assert body["status"] == "ok", body
    return [tag["name"] for tag in body["tags"]]


async def info(loyalty: LoyaltyClient, number: str) -> list[dict[str, Any]]:
    body = await loyalty.call("promocodes/info", number=number)
    assert body["status"] == "ok", body
    numbers: list[dict[str, Any]] = body["numbers"]
    return numbers


def code_object(
    number: str,
    group: dict[str, Any],
    *,
    status: int = 1,
    issued_to: int | None = None,
    receipt_date: str | None = None,
    activated: bool = False,
    expiration_date: str | None = None,
    can_be_applied: bool = True,
) -> dict[str, Any]:
    return {
        "number": number,
        "group": {
            "id": group["id"],
            "name": group["name"],
            "type": group["group_type"],
            "apply_items_once": group["apply_items_once"],
            "enabled": group["enabled"],
        },
        "promocode_status": status,
        "is_published": status >= 2,
        "issued_to": {"id": issued_to} if issued_to is not None else None,
        "receipt_date": receipt_date,
        "activated": activated,
        "applied_times": 0,
        "date_of_use": None,
        "expiration_date": expiration_date,
        "can_be_applied": can_be_applied,
    }


class TestNumbersAdd:
    async def test_txt_upload_creates_a_simple_single_use_group(self, loyalty: LoyaltyClient) -> None:
        body = await upload(loyalty, "Summer", "S-1", "S-2", "S-3")

        group = body["group"]
        assert body == {
            "status": "ok",
            "imported_count": 3,
            "group": {
                "id": group["id"],
                "name": "Summer",
                "group_type": 1,
                "apply_items_once": True,
                "enabled": True,
                "create_date": group["create_date"],
                "update_date": group["update_date"],
                **expected_counts(unused=3, receipted=0),
                "marketing_actions": [],
                "low_stock_warning": None,
                "low_stock_alarm": None,
            },
        }
        assert isinstance(group["id"], int)
        assert ISO_DATE.fullmatch(group["create_date"])
        assert ISO_DATE.fullmatch(group["update_date"])

    async def test_second_upload_appends_to_the_group(self, loyalty: LoyaltyClient) -> None:
        first = await uploaded(loyalty, "Summer", "S-1", "S-2")

        body = await upload(loyalty, "Summer", "S-3", "S-4", "S-5")

        assert body["imported_count"] == 3
        assert body["group"]["id"] == first["id"]
        assert counts(body["group"]) == expected_counts(unused=5, receipted=0)
        assert [g["name"] for g in (await all_groups(loyalty))["enabled"]] == ["Summer"]

    @pytest.mark.parametrize(
        ("raw_type", "group_type"), [("1", 1), ("2", 2), ("simple", 1), ("activation", 2)]
    )
    async def test_type_sets_the_group_type(
        self, loyalty: LoyaltyClient, raw_type: str, group_type: int
    ) -> None:
        group = await uploaded(loyalty, "Typed", "T-1", type=raw_type)

        assert group["group_type"] == group_type

    @pytest.mark.parametrize(("raw", "value"), [("0", False), ("false", False), ("1", True), ("true", True)])
    async def test_apply_items_once_is_stored(self, loyalty: LoyaltyClient, raw: str, value: bool) -> None:
        group = await uploaded(loyalty, "Multi", "M-1", type="2", apply_items_once=raw)

        assert group["apply_items_once"] is value
        assert (await group_row_named(loyalty, "Multi"))["apply_items_once"] is value

    async def test_csv_upload_takes_the_first_column(self, loyalty: LoyaltyClient) -> None:
        body = await upload(loyalty, "Csv", "C-1,ignored", "C-2,ignored", filename="codes.csv")

        assert body["imported_count"] == 2
        assert [n["number"] for n in await info(loyalty, "C-2")] == ["C-2"]

    async def test_duplicate_inside_the_file_imports_nothing(self, loyalty: LoyaltyClient) -> None:
        body = await upload(loyalty, "Summer", "S-1", "S-2", "S-1", "S-3")

        assert body == {**err(-4202, "Duplicate numbers in file"), "duplicates": ["S-1"]}
        assert await all_groups(loyalty) == {"enabled": [], "disabled": []}

    async def test_number_already_in_the_group_imports_nothing(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Summer", "S-1", "S-2")
        before = await group_row_named(loyalty, "Summer")

        body = await upload(loyalty, "Summer", "S-3", "S-2", "S-4")

        assert body == {**err(-4202, "Duplicate numbers in file"), "duplicates": ["S-2"]}
        assert counts(await group_row_named(loyalty, "Summer")) == counts(before)
        assert await loyalty.call("promocodes/info", number="S-3") == NUMBER_NOT_FOUND

    async def test_duplicates_inside_and_outside_the_file_are_all_listed(
        self, loyalty: LoyaltyClient
    ) -> None:
        await uploaded(loyalty, "Summer", "S-1", "S-2")

        body = await upload(loyalty, "Summer", "S-9", "S-9", "S-1", "S-5")

        assert body["status_code"] == -4202
        assert sorted(body["duplicates"]) == ["S-1", "S-9"]
        assert counts(await group_row_named(loyalty, "Summer")) == expected_counts(unused=2, receipted=0)

    async def test_same_number_may_exist_in_another_group(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Summer", "SAME")

        body = await upload(loyalty, "Winter", "SAME")

        assert body["status"] == "ok"
        assert body["imported_count"] == 1

    async def test_missing_file_is_an_invalid_file(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("promocodes/numbers/add", name="Summer")

        assert (body["status"], body["status_code"], body["message"]) == ("error", -4201, "Invalid file")
        assert await all_groups(loyalty) == {"enabled": [], "disabled": []}

    async def test_unsupported_file_type_is_an_invalid_file(self, loyalty: LoyaltyClient) -> None:
        body = await upload(loyalty, "Summer", "S-1", filename="codes.pdf")

        assert (body["status"], body["status_code"], body["message"]) == ("error", -4201, "Invalid file")

    async def test_missing_name_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call(
            "promocodes/numbers/add", files={"file": ("codes.txt", b"S-1\n", "text/plain")}
        )

        assert body == missing("name")

    async def test_appending_with_another_type_is_refused_and_imports_nothing(
        self, loyalty: LoyaltyClient
    ) -> None:
        await uploaded(loyalty, "Summer", "S-1", type="1")

        body = await upload(loyalty, "Summer", "S-2", type="2")

        assert (body["status"], body["status_code"]) == ("error", -1000)
        assert counts(await group_row_named(loyalty, "Summer")) == expected_counts(unused=1, receipted=0)


class TestGroupsList:
    async def test_no_groups(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("promocodes/groups/list")

        assert body == {"status": "ok", "groups": {"enabled": [], "disabled": []}}

    async def test_lists_each_group_with_its_counts(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1", "S-2", "S-3")
        winter = await uploaded(loyalty, "Winter", "W-1", type="2", apply_items_once="0")

        body = await loyalty.call("promocodes/groups/list")

        assert body == {"status": "ok", "groups": {"enabled": [summer, winter], "disabled": []}}

    async def test_disabled_groups_are_listed_apart(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1")
        winter = await uploaded(loyalty, "Winter", "W-1")

        await loyalty.call("promocodes/groups/edit", group_id=summer["id"], enabled="0")
        groups = await all_groups(loyalty)

        assert [g["name"] for g in groups["enabled"]] == ["Winter"]
        assert [(g["id"], g["name"], g["enabled"]) for g in groups["disabled"]] == [
            (summer["id"], "Summer", False)
        ]
        assert groups["enabled"][0]["id"] == winter["id"]

    async def test_issue_moves_a_code_from_unused_to_receipted(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Summer", "S-1", "S-2", "S-3", "S-4")
        await customer(loyalty, ANNA)

        await issue(loyalty, ANNA, "Summer")

        assert counts(await group_row_named(loyalty, "Summer")) == expected_counts(unused=3, receipted=1)

    async def test_activation_moves_a_code_from_unused_to_receipted(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Spring", "P-1", "P-2", "P-3", "P-4", type="2")
        await customer(loyalty, ANNA)
        await customer(loyalty, BORIS)

        await issue(loyalty, ANNA, "Spring")
        after_issue = counts(await group_row_named(loyalty, "Spring"))
        await activate(loyalty, BORIS, "Spring", "P-3")
        after_activation = counts(await group_row_named(loyalty, "Spring"))
        await activate(loyalty, ANNA, "Spring", "P-1")
        after_activating_the_issued_code = counts(await group_row_named(loyalty, "Spring"))

        assert after_issue == expected_counts(unused=3, receipted=1)
        assert after_activation == expected_counts(unused=2, receipted=2)
        assert after_activating_the_issued_code == expected_counts(unused=2, receipted=2)

    async def test_multi_use_code_counts_once_however_many_activate_it(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Club", "CLUB", "SPARE", type="2", apply_items_once="0")
        await customer(loyalty, ANNA)
        await customer(loyalty, BORIS)

        await activate(loyalty, ANNA, "Club", "CLUB")
        await activate(loyalty, BORIS, "Club", "CLUB")

        assert counts(await group_row_named(loyalty, "Club")) == expected_counts(unused=1, receipted=1)

    async def test_failed_activation_moves_no_count(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Spring", "P-1", "P-2", type="2")
        await customer(loyalty, ANNA)
        await customer(loyalty, BORIS)
        await activate(loyalty, ANNA, "Spring", "P-1")

        refused = await activate(loyalty, BORIS, "Spring", "P-1")

        assert refused == ALREADY_ACTIVATED
        assert counts(await group_row_named(loyalty, "Spring")) == expected_counts(unused=1, receipted=1)


class TestGroupsEdit:
    async def test_rename(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1")

        body = await loyalty.call("promocodes/groups/edit", group_id=summer["id"], name="Summer 2026")

        assert body["status"] == "ok"
        assert (body["group"]["id"], body["group"]["name"]) == (summer["id"], "Summer 2026")
        assert [n["group"]["name"] for n in await info(loyalty, "S-1")] == ["Summer 2026"]

    async def test_old_name_no_longer_finds_the_renamed_group(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1")
        await customer(loyalty, ANNA)
        await loyalty.call("promocodes/groups/edit", group_id=summer["id"], name="Summer 2026")

        old = await issue(loyalty, ANNA, "Summer")
        new = await issue(loyalty, ANNA, "Summer 2026")

        assert old == GROUP_NOT_FOUND
        assert new["promocode"]["number"] == "S-1"

    async def test_rename_to_a_name_in_use_is_refused(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1")
        await uploaded(loyalty, "Winter", "W-1")

        body = await loyalty.call("promocodes/groups/edit", group_id=summer["id"], name="Winter")

        assert body == err(-4107, "Promocode group name is already used")
        assert [g["name"] for g in (await all_groups(loyalty))["enabled"]] == ["Summer", "Winter"]

    async def test_rename_to_its_own_name_is_allowed(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1")

        body = await loyalty.call("promocodes/groups/edit", group_id=summer["id"], name="Summer")

        assert body["status"] == "ok"
        assert body["group"]["name"] == "Summer"

    async def test_disable_and_enable_again(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1")

        disabled = await loyalty.call("promocodes/groups/edit", group_id=summer["id"], enabled="0")
        enabled = await loyalty.call("promocodes/groups/edit", group_id=summer["id"], enabled="1")

        assert disabled["group"]["enabled"] is False
        assert enabled["group"]["enabled"] is True
        assert [g["name"] for g in (await all_groups(loyalty))["enabled"]] == ["Summer"]

    async def test_edit_answers_the_group_with_its_counts(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1", "S-2")
        await customer(loyalty, ANNA)
        await issue(loyalty, ANNA, "Summer")

        body = await loyalty.call("promocodes/groups/edit", group_id=summer["id"], enabled="0")

        assert body == {"status": "ok", "group": {**await group_row_named(loyalty, "Summer")}}
        assert counts(body["group"]) == expected_counts(unused=1, receipted=1)

    async def test_unknown_group_is_not_found(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1")

        body = await loyalty.call("promocodes/groups/edit", group_id=summer["id"] + 1000, enabled="0")

        assert body == GROUP_NOT_FOUND

    async def test_missing_group_id_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("promocodes/groups/edit", enabled="0")

        assert body == missing("group_id")


class TestInfo:
    async def test_fresh_code(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1", "S-2")

        body = await loyalty.call("promocodes/info", number="S-2")

        code = code_object("S-2", summer)
        assert body == {"status": "ok", "numbers": [code], "promocodes": [code]}

    async def test_search_is_an_alias_of_info(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Summer", "S-1")

        searched = await loyalty.call("promocodes/search", number="S-1")
        looked_up = await loyalty.call("promocodes/info", number="S-1")

        assert searched == looked_up

    async def test_number_in_two_groups_answers_both(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "SAME", "S-1")
        spring = await uploaded(loyalty, "Spring", "P-1", "SAME", type="2", apply_items_once="0")

        body = await loyalty.call("promocodes/search", number="SAME")

        codes = [code_object("SAME", summer), code_object("SAME", spring)]
        assert body == {"status": "ok", "numbers": codes, "promocodes": codes}

    async def test_unknown_number_is_not_found(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Summer", "S-1")

        body = await loyalty.call("promocodes/info", number="S-2")

        assert body == NUMBER_NOT_FOUND

    async def test_numbers_are_case_sensitive(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Summer", "Abc-1")

        body = await loyalty.call("promocodes/info", number="ABC-1")

        assert body == NUMBER_NOT_FOUND

    async def test_missing_number_is_refused(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("promocodes/info")

        assert body == missing("number")

    async def test_issued_code_is_published_to_its_customer(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1")
        anna = await customer(loyalty, ANNA)
        issued = await issue(loyalty, ANNA, "Summer")

        [code] = await info(loyalty, "S-1")

        receipt_date = issued["promocode"]["receipt_date"]
        assert ISO_DATE.fullmatch(receipt_date)
        assert code == code_object("S-1", summer, status=2, issued_to=anna, receipt_date=receipt_date)

    async def test_activated_code_shows_its_customer(self, loyalty: LoyaltyClient) -> None:
        spring = await uploaded(loyalty, "Spring", "P-1", type="2")
        anna = await customer(loyalty, ANNA)
        await activate(loyalty, ANNA, "Spring", "P-1")

        [code] = await info(loyalty, "P-1")

        assert ISO_DATE.fullmatch(code["receipt_date"])
        assert code == code_object(
            "P-1", spring, status=2, issued_to=anna, receipt_date=code["receipt_date"], activated=True
        )

    async def test_code_of_a_disabled_group_cannot_be_applied(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1")
        await loyalty.call("promocodes/groups/edit", group_id=summer["id"], enabled="0")

        [code] = await info(loyalty, "S-1")

        assert code == code_object("S-1", {**summer, "enabled": False}, can_be_applied=False)

    async def test_expired_code_cannot_be_applied(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1", expires_at=PAST)

        [code] = await info(loyalty, "S-1")

        assert code == code_object(
            "S-1", summer, expiration_date="2020-01-01T00:00:00.000", can_be_applied=False
        )

    async def test_code_expiring_later_can_be_applied(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1", expires_at=FUTURE)

        [code] = await info(loyalty, "S-1")

        assert code == code_object("S-1", summer, expiration_date="2099-12-31T23:59:59.000")


class TestActivate:
    @pytest.fixture
    async def spring(self, loyalty: LoyaltyClient) -> dict[str, Any]:
        """A single-use activation group, and two customers."""
        group = await uploaded(loyalty, "Spring", "P-1", "P-2", "P-3", type="2")
        await customer(loyalty, ANNA)
        await customer(loyalty, BORIS)
        return group

    @pytest.fixture
    async def club(self, loyalty: LoyaltyClient, spring: dict[str, Any]) -> dict[str, Any]:
        """A multi-use activation group (apply_items_once=false)."""
        return await uploaded(loyalty, "Club", "CLUB", type="2", apply_items_once="false")

    async def test_activation_binds_the_code_and_tags_the_customer(
        self, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        body = await activate(loyalty, ANNA, "Spring", "P-2")

        assert body == ACTIVATED
        assert await tag_names(loyalty, ANNA) == ["Applied promo code Spring"]
        assert await tag_names(loyalty, BORIS) == []

    async def test_single_use_code_activates_once_ever(
        self, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        first = await activate(loyalty, ANNA, "Spring", "P-1")

        same_customer = await activate(loyalty, ANNA, "Spring", "P-1")
        other_customer = await activate(loyalty, BORIS, "Spring", "P-1")

        assert first == ACTIVATED
        assert same_customer == ALREADY_ACTIVATED
        assert other_customer == ALREADY_ACTIVATED
        assert await tag_names(loyalty, BORIS) == []

    async def test_single_use_code_stays_with_its_first_customer(
        self, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        await activate(loyalty, ANNA, "Spring", "P-1")
        anna_id = (await loyalty.call("users/info", user_phone=ANNA))["id"]

        await activate(loyalty, BORIS, "Spring", "P-1")

        assert [n["issued_to"] for n in await info(loyalty, "P-1")] == [{"id": anna_id}]

    async def test_multi_use_code_activates_once_per_customer(
        self, loyalty: LoyaltyClient, club: dict[str, Any]
    ) -> None:
        anna_first = await activate(loyalty, ANNA, "Club", "CLUB")
        boris_first = await activate(loyalty, BORIS, "Club", "CLUB")
        anna_again = await activate(loyalty, ANNA, "Club", "CLUB")

        assert anna_first == ACTIVATED
        assert boris_first == ACTIVATED
        assert anna_again == ALREADY_ACTIVATED
        assert await tag_names(loyalty, ANNA) == ["Applied promo code Club"]
        assert await tag_names(loyalty, BORIS) == ["Applied promo code Club"]

    async def test_simple_group_cannot_be_activated(
        self, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        await uploaded(loyalty, "Summer", "S-1")

        body = await activate(loyalty, ANNA, "Summer", "S-1")

        assert body == NOT_ACTIVATION
        assert await tag_names(loyalty, ANNA) == []

    async def test_disabled_group_cannot_be_activated(
        self, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        await loyalty.call("promocodes/groups/edit", group_id=spring["id"], enabled="0")

        body = await activate(loyalty, ANNA, "Spring", "P-1")

        assert body == GROUP_DISABLED
        assert [n["promocode_status"] for n in await info(loyalty, "P-1")] == [1]

    async def test_unknown_group_is_not_found(self, loyalty: LoyaltyClient, spring: dict[str, Any]) -> None:
        body = await activate(loyalty, ANNA, "Autumn", "P-1")

        assert body == GROUP_NOT_FOUND

    async def test_unknown_number_is_not_found(self, loyalty: LoyaltyClient, spring: dict[str, Any]) -> None:
        body = await activate(loyalty, ANNA, "Spring", "P-9")

        assert body == NUMBER_NOT_FOUND

    async def test_number_of_another_group_is_not_found(
        self, loyalty: LoyaltyClient, club: dict[str, Any]
    ) -> None:
        body = await activate(loyalty, ANNA, "Spring", "CLUB")

        assert body == NUMBER_NOT_FOUND

    async def test_unknown_customer_is_not_found(
        self, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        body = await activate(loyalty, "79003333333", "Spring", "P-1")

        assert body == USER_NOT_FOUND
        assert [n["promocode_status"] for n in await info(loyalty, "P-1")] == [1]

    async def test_expired_code_cannot_be_activated(
        self, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        await uploaded(loyalty, "Spring", "OLD-1", expires_at=PAST)

        body = await activate(loyalty, ANNA, "Spring", "OLD-1")

        assert body == EXPIRED
        assert await tag_names(loyalty, ANNA) == []

    async def test_code_issued_to_one_customer_cannot_be_activated_by_another(
        self, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        issued = await issue(loyalty, ANNA, "Spring")
        number = issued["promocode"]["number"]

        by_boris = await activate(loyalty, BORIS, "Spring", number)
        by_anna = await activate(loyalty, ANNA, "Spring", number)

        assert by_boris == ALREADY_ACTIVATED
        assert by_anna == ACTIVATED
        assert await tag_names(loyalty, BORIS) == []

    async def test_customer_may_be_named_by_email(
        self, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        await loyalty.call("users/add", email="carol@example.com")

        body = await loyalty.call(
            "promocodes/activate", email="Carol@Example.com", group_name="Spring", number="P-1"
        )

        assert body == ACTIVATED

    @pytest.mark.parametrize("field", ["group_name", "number"])
    async def test_missing_field_is_refused(
        self, loyalty: LoyaltyClient, spring: dict[str, Any], field: str
    ) -> None:
        params = {"user_phone": ANNA, "group_name": "Spring", "number": "P-1"}
        del params[field]

        body = await loyalty.call("promocodes/activate", **params)

        assert body == missing(field)

    async def test_missing_customer_is_refused(self, loyalty: LoyaltyClient, spring: dict[str, Any]) -> None:
        body = await loyalty.call("promocodes/activate", group_name="Spring", number="P-1")

        assert body == err(-1000, "Provide user_phone or email or origin_user_id")


class TestIssue:
    @pytest.fixture
    async def summer(self, loyalty: LoyaltyClient) -> dict[str, Any]:
        group = await uploaded(loyalty, "Summer", "S-1", "S-2", "S-3")
        await customer(loyalty, ANNA)
        await customer(loyalty, BORIS)
        return group

    async def test_hands_the_first_code_of_the_upload(
        self, loyalty: LoyaltyClient, summer: dict[str, Any]
    ) -> None:
        anna = (await loyalty.call("users/info", user_phone=ANNA))["id"]

        body = await issue(loyalty, ANNA, "Summer")

        receipt_date = body["promocode"]["receipt_date"]
        assert ISO_DATE.fullmatch(receipt_date)
        assert body == {
            "status": "ok",
            "promocode": code_object("S-1", summer, status=2, issued_to=anna, receipt_date=receipt_date),
        }

    async def test_hands_distinct_codes_in_upload_order_until_exhausted(
        self, loyalty: LoyaltyClient, summer: dict[str, Any]
    ) -> None:
        numbers = [
            (await issue(loyalty, phone, "Summer"))["promocode"]["number"] for phone in (ANNA, BORIS, ANNA)
        ]
        exhausted = await issue(loyalty, BORIS, "Summer")

        assert numbers == ["S-1", "S-2", "S-3"]
        assert exhausted == NO_FREE

    async def test_later_uploads_are_issued_after_earlier_ones(
        self, loyalty: LoyaltyClient, summer: dict[str, Any]
    ) -> None:
        await uploaded(loyalty, "Summer", "A-0", "A-1")

        numbers = [(await issue(loyalty, ANNA, "Summer"))["promocode"]["number"] for _ in range(5)]

        assert numbers == ["S-1", "S-2", "S-3", "A-0", "A-1"]

    async def test_activated_codes_are_not_issued(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Spring", "P-1", "P-2", type="2")
        await customer(loyalty, ANNA)
        await customer(loyalty, BORIS)
        await activate(loyalty, ANNA, "Spring", "P-1")

        body = await issue(loyalty, BORIS, "Spring")
        exhausted = await issue(loyalty, BORIS, "Spring")

        assert body["promocode"]["number"] == "P-2"
        assert exhausted == NO_FREE

    async def test_expired_codes_are_skipped(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Mixed", "OLD-1", "OLD-2", expires_at=PAST)
        await uploaded(loyalty, "Mixed", "NEW-1", expires_at=FUTURE)
        await customer(loyalty, ANNA)

        body = await issue(loyalty, ANNA, "Mixed")
        exhausted = await issue(loyalty, ANNA, "Mixed")

        assert body["promocode"]["number"] == "NEW-1"
        assert body["promocode"]["expiration_date"] == "2099-12-31T23:59:59.000"
        assert exhausted == NO_FREE

    async def test_disabled_group_issues_nothing(
        self, loyalty: LoyaltyClient, summer: dict[str, Any]
    ) -> None:
        await loyalty.call("promocodes/groups/edit", group_id=summer["id"], enabled="0")

        body = await issue(loyalty, ANNA, "Summer")

        assert body == GROUP_DISABLED
        assert counts(await group_row_named(loyalty, "Summer")) == expected_counts(unused=3, receipted=0)

    async def test_unknown_customer_gets_nothing(
        self, loyalty: LoyaltyClient, summer: dict[str, Any]
    ) -> None:
        body = await issue(loyalty, "79003333333", "Summer")

        assert body == USER_NOT_FOUND
        assert counts(await group_row_named(loyalty, "Summer")) == expected_counts(unused=3, receipted=0)

    async def test_unknown_group_is_not_found(self, loyalty: LoyaltyClient, summer: dict[str, Any]) -> None:
        body = await issue(loyalty, ANNA, "Winter")

        assert body == GROUP_NOT_FOUND

    async def test_missing_group_name_is_refused(
        self, loyalty: LoyaltyClient, summer: dict[str, Any]
    ) -> None:
        body = await loyalty.call("promocodes/issue", user_phone=ANNA)

        assert body == missing("group_name")


class TestListForUser:
    async def test_customer_without_codes(self, loyalty: LoyaltyClient) -> None:
        await customer(loyalty, ANNA)

        body = await loyalty.call("promocodes/list-for-user", user_phone=ANNA)

        assert body == {"status": "ok", "promocodes": []}

    async def test_lists_issued_and_activated_codes(self, loyalty: LoyaltyClient) -> None:
        summer = await uploaded(loyalty, "Summer", "S-1", "S-2")
        spring = await uploaded(loyalty, "Spring", "P-1", "P-2", type="2")
        anna = await customer(loyalty, ANNA)
        await customer(loyalty, BORIS)
        issued = (await issue(loyalty, ANNA, "Summer"))["promocode"]
        await issue(loyalty, BORIS, "Summer")
        await activate(loyalty, ANNA, "Spring", "P-2")
        [activated] = await info(loyalty, "P-2")

        body = await loyalty.call("promocodes/list-for-user", user_phone=ANNA)

        assert body == {
            "status": "ok",
            "promocodes": [
                code_object("S-1", summer, status=2, issued_to=anna, receipt_date=issued["receipt_date"]),
                code_object(
                    "P-2",
                    spring,
                    status=2,
                    issued_to=anna,
                    receipt_date=activated["receipt_date"],
                    activated=True,
                ),
            ],
        }

    async def test_multi_use_code_is_listed_for_each_customer_who_activated_it(
        self, loyalty: LoyaltyClient
    ) -> None:
        await uploaded(loyalty, "Club", "CLUB", type="2", apply_items_once="0")
        anna = await customer(loyalty, ANNA)
        boris = await customer(loyalty, BORIS)
        await activate(loyalty, ANNA, "Club", "CLUB")
        await activate(loyalty, BORIS, "Club", "CLUB")

        annas = await loyalty.call("promocodes/list-for-user", user_phone=ANNA)
        boriss = await loyalty.call("promocodes/list-for-user", user_phone=BORIS)

        assert [(c["number"], c["issued_to"]) for c in annas["promocodes"]] == [("CLUB", {"id": anna})]
        assert [(c["number"], c["issued_to"]) for c in boriss["promocodes"]] == [("CLUB", {"id": boris})]

    async def test_refused_activation_is_not_listed(self, loyalty: LoyaltyClient) -> None:
        await uploaded(loyalty, "Spring", "P-1", type="2")
        await customer(loyalty, ANNA)
        await customer(loyalty, BORIS)
        await activate(loyalty, ANNA, "Spring", "P-1")
        await activate(loyalty, BORIS, "Spring", "P-1")

        body = await loyalty.call("promocodes/list-for-user", user_phone=BORIS)

        assert body == {"status": "ok", "promocodes": []}

    async def test_unknown_customer_is_not_found(self, loyalty: LoyaltyClient) -> None:
        body = await loyalty.call("promocodes/list-for-user", user_phone=ANNA)

        assert body == USER_NOT_FOUND
