"""Login, tokens and tenancy over the loyalty face (SPEC §2, §3)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from conftest import LoyaltyClient, login
from tessera.app import create_app
from tessera.clock import utcnow
from tessera.config import Settings
from tessera.db import Database
from tessera.tenancy import service as tenancy
from tessera.tenancy.models import AuthToken

TOKEN = re.compile(r"[0-9a-f]{40}")
LOGIN_FAILED = {
    "status": "error",
    "status_code": -2,
    "message": "Data not found with provided store_department_key, store_department_id and pin_code",
}
DENIED = {
    "status": "error",
    "status_code": -7,
    "message": "Permission denied. Provide auth token and store_department_id",
}
LOGIN_PATHS = ["/api/v2/login/", "/api/v2/login", "/api/v1/login/", "/api/v1/login"]
PHONE = "79001234567"


def credentials(department: tenancy.NewDepartment) -> dict[str, Any]:
    return {
        "store_department_id": department.store_department_id,
        "store_department_key": department.store_department_key,
        "pin_code": department.pin_code,
    }


def codes_file(*numbers: str) -> dict[str, Any]:
    return {"file": ("codes.txt", "".join(f"{n}\n" for n in numbers).encode(), "text/plain")}


async def new_department(
    database: Database, name: str, partner_id: int | None = None
) -> tenancy.NewDepartment:
    async with database.transaction() as session:
        return await tenancy.create_department(session, name, partner_id)


@pytest.fixture
async def other_partner(
    client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
) -> LoyaltyClient:
    """A second retailer: a new partner with its own department."""
    other = await new_department(database, "Other")
    assert other.partner_id != department.partner_id
    return LoyaltyClient(client, other, await login(client, other))


@pytest.fixture
async def sibling(
    client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
) -> LoyaltyClient:
    """Another department of the same partner as ``department``."""
    other = await new_department(database, "Second shop", department.partner_id)
    return LoyaltyClient(client, other, await login(client, other))


class TestLogin:
    @pytest.mark.parametrize("path", LOGIN_PATHS)
    async def test_get_with_query_parameters_returns_token_and_pin_codes(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment, path: str
    ) -> None:
        response = await client.get(path, params=credentials(department))

        assert response.status_code == 200
        body = response.json()
        assert body == {"status": "ok", "token": body["token"], "pin_codes": [department.pin_code]}
        assert TOKEN.fullmatch(body["token"])

    @pytest.mark.parametrize("path", LOGIN_PATHS)
    async def test_post_with_form_returns_token_and_pin_codes(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment, path: str
    ) -> None:
        response = await client.post(path, data=credentials(department))

        assert response.status_code == 200
        body = response.json()
        assert body == {"status": "ok", "token": body["token"], "pin_codes": [department.pin_code]}
        assert TOKEN.fullmatch(body["token"])

    async def test_post_with_json_body_logs_in(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        response = await client.post("/api/v2/login/", json=credentials(department))

        body = response.json()
        assert body == {"status": "ok", "token": body["token"], "pin_codes": [department.pin_code]}

    async def test_token_opens_the_authed_calls_of_its_department(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        token = (await client.get("/api/v1/login/", params=credentials(department))).json()["token"]

        response = await client.post(
            "/api/v2/promocodes/groups/list/",
            data={"token": token, "store_department_id": department.store_department_id},
        )

        assert response.json() == {"status": "ok", "groups": {"enabled": [], "disabled": []}}

    async def test_every_login_issues_a_new_token_and_old_ones_keep_working(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        first = await login(client, department)
        second = await login(client, department)

        assert first != second
        for token in (first, second):
            response = await client.post(
                "/api/v2/promocodes/groups/list/",
                data={"token": token, "store_department_id": department.store_department_id},
            )
            assert response.json()["status"] == "ok"

    async def test_pin_codes_lists_every_employee_of_the_department(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            second_pin = await tenancy.add_employee(
                session, department.partner_id, department.store_department_id
            )

        response = await client.post(
            "/api/v2/login/", data={**credentials(department), "pin_code": second_pin}
        )

        body = response.json()
        assert body == {
            "status": "ok",
            "token": body["token"],
            "pin_codes": [department.pin_code, second_pin],
        }

    async def test_wrong_key_is_refused(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        wrong = str(int(department.store_department_key) + 1)

        response = await client.post(
            "/api/v2/login/", data={**credentials(department), "store_department_key": wrong}
        )

        assert response.status_code == 200
        assert response.json() == LOGIN_FAILED

    async def test_wrong_pin_is_refused(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        wrong = "0" if department.pin_code != "0" else "1"

        response = await client.post("/api/v2/login/", data={**credentials(department), "pin_code": wrong})

        assert response.status_code == 200
        assert response.json() == LOGIN_FAILED

    async def test_unknown_department_is_refused(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        response = await client.post(
            "/api/v2/login/",
            data={**credentials(department), "store_department_id": department.store_department_id + 1000},
        )

        assert response.status_code == 200
        assert response.json() == LOGIN_FAILED

    async def test_pin_of_another_department_is_refused(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        sibling = await new_department(database, "Second shop", department.partner_id)

        response = await client.post(
            "/api/v2/login/", data={**credentials(department), "pin_code": sibling.pin_code}
        )

        assert response.json() == LOGIN_FAILED

    async def test_key_of_another_department_is_refused(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        sibling = await new_department(database, "Second shop", department.partner_id)

        response = await client.post(
            "/api/v2/login/",
            data={**credentials(department), "store_department_key": sibling.store_department_key},
        )

        assert response.json() == LOGIN_FAILED

    @pytest.mark.parametrize("field", ["store_department_id", "store_department_key", "pin_code"])
    async def test_missing_field_is_named(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment, field: str
    ) -> None:
        data = credentials(department)
        del data[field]

        response = await client.post("/api/v2/login/", data=data)

        assert response.status_code == 200
        assert response.json() == {
            "status": "error",
            "status_code": -1000,
            "message": f"Provide required {{'field': '{field}'}}",
        }

    async def test_blank_pin_code_counts_as_missing(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        response = await client.get("/api/v2/login/", params={**credentials(department), "pin_code": " "})

        assert response.json() == {
            "status": "error",
            "status_code": -1000,
            "message": "Provide required {'field': 'pin_code'}",
        }


# Every authed call, with parameters that succeed with a valid token (the control test checks it).
AUTHED_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("users/add", {"user_phone": "79007654321"}),
    ("users/info", {"user_phone": PHONE}),
    ("users/tags/add", {"user_phone": PHONE, "tags": "VIP"}),
    ("users/tags/list", {"user_phone": PHONE}),
    ("users/tags/delete", {"user_phone": PHONE, "tags": "VIP"}),
    ("promocodes/groups/list", {}),
    ("promocodes/groups/edit", {"group_id": "{group_id}", "enabled": "1"}),
    ("promocodes/info", {"number": "CODE-1"}),
    ("promocodes/search", {"number": "CODE-1"}),
    ("promocodes/activate", {"user_phone": PHONE, "group_name": "Spring", "number": "CODE-1"}),
    ("promocodes/issue", {"user_phone": PHONE, "group_name": "Spring"}),
    ("promocodes/list-for-user", {"user_phone": PHONE}),
    ("promocodes/numbers/add", {"name": "Autumn"}),
    ("coupons/groups/list", {}),
    ("coupons/numbers/status", {"number": "GIFT-1"}),
]


@pytest.fixture
async def world(loyalty: LoyaltyClient) -> dict[str, Any]:
    """Data that makes every call of AUTHED_CALLS succeed for ``loyalty``'s department."""
    assert (await loyalty.call("users/add", user_phone=PHONE))["status"] == "ok"
    uploaded = await loyalty.call(
        "promocodes/numbers/add", files=codes_file("CODE-1", "CODE-2"), name="Spring", type="2"
    )
    assert uploaded["status"] == "ok"
    certificates = await loyalty.call(
        "coupons/numbers/add",
        files=codes_file("GIFT-1"),
        type="2",
        value="50",
        name="Gift",
        target_dep_id=loyalty.department.store_department_id,
        pin_code=loyalty.department.pin_code,
    )
    assert certificates["status"] == "ok", certificates
    return {"group_id": uploaded["group"]["id"]}


async def answers(http: httpx.AsyncClient, world: dict[str, Any], **auth: Any) -> dict[str, Any]:
    """Every call of AUTHED_CALLS made with ``auth``: each path's JSON body (HTTP 200 asserted)."""
    bodies: dict[str, Any] = {}
    for path, params in AUTHED_CALLS:
        data = {k: (v.format(**world) if isinstance(v, str) else v) for k, v in params.items()}
        data.update({k: v for k, v in auth.items() if v is not None})
        files = codes_file("NEW-1") if path.endswith("numbers/add") else None
        response = await http.post(f"/api/v2/{path}/", data=data, files=files)
        assert response.status_code == 200, (path, response.text)
        bodies[path] = response.json()
    return bodies


ALL_DENIED = {path: DENIED for path, _ in AUTHED_CALLS}


class TestAuthentication:
    async def test_every_call_succeeds_with_a_valid_token(
        self, loyalty: LoyaltyClient, world: dict[str, Any]
    ) -> None:
        """The control: with a good token every call answers ok, so each -7 below is the token's doing."""
        bodies = await answers(loyalty.http, world, **loyalty.auth())

        assert {path: body["status"] for path, body in bodies.items()} == dict.fromkeys(bodies, "ok"), bodies

    async def test_missing_token_is_denied_everywhere(
        self, loyalty: LoyaltyClient, world: dict[str, Any]
    ) -> None:
        bodies = await answers(
            loyalty.http, world, store_department_id=loyalty.department.store_department_id
        )

        assert bodies == ALL_DENIED

    async def test_missing_department_is_denied_everywhere(
        self, loyalty: LoyaltyClient, world: dict[str, Any]
    ) -> None:
        bodies = await answers(loyalty.http, world, token=loyalty.token)

        assert bodies == ALL_DENIED

    async def test_wrong_token_is_denied_everywhere(
        self, loyalty: LoyaltyClient, world: dict[str, Any]
    ) -> None:
        wrong = "0" * 40 if loyalty.token != "0" * 40 else "1" * 40

        bodies = await answers(
            loyalty.http, world, token=wrong, store_department_id=loyalty.department.store_department_id
        )

        assert bodies == ALL_DENIED

    async def test_token_of_another_department_of_the_partner_is_denied_everywhere(
        self, loyalty: LoyaltyClient, sibling: LoyaltyClient, world: dict[str, Any]
    ) -> None:
        bodies = await answers(
            loyalty.http,
            world,
            token=sibling.token,
            store_department_id=loyalty.department.store_department_id,
        )

        assert bodies == ALL_DENIED

    async def test_token_of_another_partner_is_denied_everywhere(
        self, loyalty: LoyaltyClient, other_partner: LoyaltyClient, world: dict[str, Any]
    ) -> None:
        bodies = await answers(
            loyalty.http,
            world,
            token=other_partner.token,
            store_department_id=loyalty.department.store_department_id,
        )

        assert bodies == ALL_DENIED

    async def test_expired_token_is_denied_everywhere(
        self, loyalty: LoyaltyClient, database: Database, world: dict[str, Any]
    ) -> None:
        async with database.transaction() as session:
            await session.execute(update(AuthToken).values(expires_at=utcnow() - timedelta(seconds=1)))

        bodies = await answers(loyalty.http, world, **loyalty.auth())

        assert bodies == ALL_DENIED

    async def test_own_token_with_another_partners_department_is_denied(
        self, loyalty: LoyaltyClient, other_partner: LoyaltyClient
    ) -> None:
        response = await loyalty.http.post(
            "/api/v2/promocodes/groups/list/",
            data={
                "token": loyalty.token,
                "store_department_id": other_partner.department.store_department_id,
            },
        )

        assert response.json() == DENIED

    async def test_non_numeric_department_is_denied(self, loyalty: LoyaltyClient) -> None:
        response = await loyalty.http.post(
            "/api/v2/promocodes/groups/list/", data={"token": loyalty.token, "store_department_id": "main"}
        )

        assert response.json() == DENIED

    async def test_department_key_does_not_replace_the_token(self, loyalty: LoyaltyClient) -> None:
        response = await loyalty.http.post(
            "/api/v2/promocodes/groups/list/",
            data={
                "store_department_id": loyalty.department.store_department_id,
                "store_department_key": loyalty.department.store_department_key,
                "pin_code": loyalty.department.pin_code,
            },
        )

        assert response.json() == DENIED


@pytest.fixture
def make_client(database: Database, database_url: str) -> Any:
    """An HTTP client over an app with its own token lifetime and token cache."""

    def make(ttl_seconds: int, cache_seconds: float) -> httpx.AsyncClient:
        settings = Settings(
            database_url=database_url, token_ttl_seconds=ttl_seconds, token_cache_seconds=cache_seconds
        )
        transport = httpx.ASGITransport(app=create_app(settings, database))
        return httpx.AsyncClient(transport=transport, base_url="http://tessera.test")

    return make


class TestTokenLifetime:
    @pytest.fixture
    async def short_lived(self, make_client: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with make_client(1, 0) as http:
            yield http

    @pytest.fixture
    async def short_lived_cached(self, make_client: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with make_client(1, 30) as http:
            yield http

    async def test_token_works_until_it_expires(
        self, short_lived: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        token = await login(short_lived, department)
        auth = {"token": token, "store_department_id": department.store_department_id}

        before = await short_lived.post("/api/v2/promocodes/groups/list/", data=auth)
        await asyncio.sleep(1.1)
        after = await short_lived.post("/api/v2/promocodes/groups/list/", data=auth)

        assert before.json()["status"] == "ok"
        assert after.json() == DENIED

    async def test_a_cached_token_still_expires_on_time(
        self, short_lived_cached: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        token = await login(short_lived_cached, department)
        auth = {"token": token, "store_department_id": department.store_department_id}

        before = await short_lived_cached.post("/api/v2/promocodes/groups/list/", data=auth)
        await asyncio.sleep(1.1)
        after = await short_lived_cached.post("/api/v2/promocodes/groups/list/", data=auth)

        assert before.json()["status"] == "ok"
        assert after.json() == DENIED

    async def test_zero_ttl_token_never_expires(
        self, make_client: Any, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with make_client(0, 0) as http:
            token = await login(http, department)
            auth = {"token": token, "store_department_id": department.store_department_id}
            right_away = await http.post("/api/v2/promocodes/groups/list/", data=auth)
            # Past what a one-second lifetime allows (test_token_works_until_it_expires).
            await asyncio.sleep(1.1)
            later = await http.post("/api/v2/promocodes/groups/list/", data=auth)

        assert (right_away.json()["status"], later.json()["status"]) == ("ok", "ok")
        async with database.reading() as session:
            stored = (await session.scalars(select(AuthToken.expires_at))).all()
        assert stored == [None]


class TestTokenCache:
    """Production remembers a validated token for 30 s: what it remembers is the token *for its
    department*, never the token alone."""

    async def test_a_cached_token_is_refused_for_another_department_and_another_partner(
        self, make_client: Any, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            sibling = await tenancy.create_department(session, "Sibling", partner_id=department.partner_id)
            stranger = await tenancy.create_department(session, "Stranger")
        async with make_client(3600, 30) as http:
            token = await login(http, department)

            async def groups(department_id: int) -> Any:
                response = await http.post(
                    "/api/v2/promocodes/groups/list/",
                    data={"token": token, "store_department_id": department_id},
                )
                return response.json()

            assert (await groups(department.store_department_id))["status"] == "ok"  # now cached
            assert await groups(sibling.store_department_id) == DENIED
            assert await groups(stranger.store_department_id) == DENIED
            assert (await groups(department.store_department_id))["status"] == "ok"


class TestPartnerIsolation:
    """Partner A (``loyalty``) never reads or changes partner B's (``other_partner``) data."""

    @pytest.fixture
    async def b_data(self, other_partner: LoyaltyClient) -> dict[str, Any]:
        customer = await other_partner.call("users/add", user_phone=PHONE, email="b@example.com")
        assert customer["status"] == "ok"
        uploaded = await other_partner.call(
            "promocodes/numbers/add", files=codes_file("B-1", "B-2", "SHARED"), name="B codes", type="2"
        )
        assert uploaded["status"] == "ok"
        issued = await other_partner.call("promocodes/issue", user_phone=PHONE, group_name="B codes")
        assert issued["promocode"]["number"] == "B-1"
        return {"group_id": uploaded["group"]["id"], "customer_id": customer["id"]}

    async def test_groups_list_does_not_show_other_partners_groups(
        self, loyalty: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        body = await loyalty.call("promocodes/groups/list")

        assert body == {"status": "ok", "groups": {"enabled": [], "disabled": []}}

    async def test_info_does_not_find_other_partners_codes(
        self, loyalty: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        body = await loyalty.call("promocodes/info", number="B-2")

        assert body == {"status": "error", "status_code": -4100, "message": "Number not found"}

    async def test_info_of_a_number_both_partners_hold_shows_only_own_code(
        self, loyalty: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        uploaded = await loyalty.call("promocodes/numbers/add", files=codes_file("SHARED"), name="A codes")

        body = await loyalty.call("promocodes/search", number="SHARED")

        assert [(n["number"], n["group"]["id"], n["group"]["name"]) for n in body["numbers"]] == [
            ("SHARED", uploaded["group"]["id"], "A codes")
        ]

    async def test_activate_cannot_reach_other_partners_group(
        self, loyalty: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        await loyalty.call("users/add", user_phone=PHONE)

        body = await loyalty.call("promocodes/activate", user_phone=PHONE, group_name="B codes", number="B-2")

        assert body == {"status": "error", "status_code": -4101, "message": "Promocode group not found"}

    async def test_activate_in_own_group_of_same_name_leaves_other_partners_code_alone(
        self, loyalty: LoyaltyClient, other_partner: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        await loyalty.call("users/add", user_phone=PHONE)
        await loyalty.call("promocodes/numbers/add", files=codes_file("B-2"), name="B codes", type="2")

        activated = await loyalty.call(
            "promocodes/activate", user_phone=PHONE, group_name="B codes", number="B-2"
        )
        theirs = await other_partner.call("promocodes/info", number="B-2")

        assert activated == {"status": "ok", "promocode_status": 2}
        assert [(n["promocode_status"], n["issued_to"], n["activated"]) for n in theirs["numbers"]] == [
            (1, None, False)
        ]

    async def test_issue_cannot_take_from_other_partners_group(
        self, loyalty: LoyaltyClient, other_partner: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        await loyalty.call("users/add", user_phone=PHONE)

        body = await loyalty.call("promocodes/issue", user_phone=PHONE, group_name="B codes")
        theirs = await other_partner.call("promocodes/groups/list")

        assert body == {"status": "error", "status_code": -4101, "message": "Promocode group not found"}
        assert theirs["groups"]["enabled"][0]["unused_count"] == 2

    async def test_groups_edit_cannot_change_other_partners_group(
        self, loyalty: LoyaltyClient, other_partner: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        body = await loyalty.call(
            "promocodes/groups/edit", group_id=b_data["group_id"], enabled="0", name="Mine"
        )
        theirs = await other_partner.call("promocodes/groups/list")

        assert body == {"status": "error", "status_code": -4101, "message": "Promocode group not found"}
        assert [(g["id"], g["name"]) for g in theirs["groups"]["enabled"]] == [
            (b_data["group_id"], "B codes")
        ]
        assert theirs["groups"]["disabled"] == []

    async def test_numbers_add_with_other_partners_group_name_creates_own_group(
        self, loyalty: LoyaltyClient, other_partner: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        mine = await loyalty.call("promocodes/numbers/add", files=codes_file("B-1"), name="B codes", type="2")
        theirs = await other_partner.call("promocodes/groups/list")

        assert mine["status"] == "ok"
        assert mine["group"]["id"] != b_data["group_id"]
        assert mine["group"]["total_count"] == 1
        assert theirs["groups"]["enabled"][0]["total_count"] == 3

    async def test_users_info_does_not_find_other_partners_customer(
        self, loyalty: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        body = await loyalty.call("users/info", email="b@example.com")

        assert body == {"status": "error", "status_code": -4000, "message": "User not found"}

    async def test_users_add_with_other_partners_phone_creates_a_separate_customer(
        self, loyalty: LoyaltyClient, other_partner: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        mine = await loyalty.call("users/add", user_phone=PHONE, first_name="Anna")
        theirs = await other_partner.call("users/info", user_phone=PHONE)

        assert mine["status"] == "ok"
        assert mine["id"] != b_data["customer_id"]
        assert mine["email"] is None
        assert theirs["id"] == b_data["customer_id"]
        assert theirs["first_name"] is None

    async def test_tags_cannot_reach_other_partners_customer(
        self, loyalty: LoyaltyClient, other_partner: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        added = await loyalty.call("users/tags/add", email="b@example.com", tags="Hijacked")
        listed = await loyalty.call("users/tags/list", email="b@example.com")
        theirs = await other_partner.call("users/tags/list", email="b@example.com")

        assert added == {"status": "error", "status_code": -4000, "message": "User not found"}
        assert listed == {"status": "error", "status_code": -4000, "message": "User not found"}
        assert theirs == {"status": "ok", "tags": []}

    async def test_list_for_user_does_not_show_other_partners_codes(
        self, loyalty: LoyaltyClient, b_data: dict[str, Any]
    ) -> None:
        unknown = await loyalty.call("promocodes/list-for-user", user_phone=PHONE)
        await loyalty.call("users/add", user_phone=PHONE)
        empty = await loyalty.call("promocodes/list-for-user", user_phone=PHONE)

        assert unknown == {"status": "error", "status_code": -4000, "message": "User not found"}
        assert empty == {"status": "ok", "promocodes": []}


class TestDepartmentsOfOnePartner:
    async def test_departments_of_one_partner_share_groups_and_customers(
        self, loyalty: LoyaltyClient, sibling: LoyaltyClient
    ) -> None:
        await loyalty.call("users/add", user_phone=PHONE)
        await loyalty.call("promocodes/numbers/add", files=codes_file("S-1"), name="Shared", type="2")

        activated = await sibling.call(
            "promocodes/activate", user_phone=PHONE, group_name="Shared", number="S-1"
        )
        groups = await sibling.call("promocodes/groups/list")

        assert activated == {"status": "ok", "promocode_status": 2}
        assert [(g["name"], g["receipted_count"]) for g in groups["groups"]["enabled"]] == [("Shared", 1)]
