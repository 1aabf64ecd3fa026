"""The messaging face over HTTP (SPEC §2, §8): API keys, events, messages, smartsend, status, workflows.

Everything here goes through the ASGI app the way an eSputnik client calls it: JSON bodies, HTTP
Basic with the API key as password (or a Bearer token), real HTTP statuses, and a JSON error
``{"error", "status_code", "field"?}`` for anything refused.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from esputnik_client import EsputnikClient, events_of, new_key
from tessera.clock import utcnow
from tessera.config import Settings
from tessera.db import Database
from tessera.messaging.models import Delivery, Event, Message, Workflow
from tessera.messaging.worker import Worker
from tessera.tenancy import service as tenancy
from tessera.tenancy.models import ApiKey

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}")
UNAUTHORIZED = {
    "error": "Provide a valid API key: HTTP Basic with the key as password, or Authorization: Bearer <key>",
    "status_code": -401,
}
EMAIL = {
    "name": "Welcome code",
    "from": "shop@example.com",
    "subject": "Your code, $!data.get('name')",
    "htmlText": "<p>Your code: $!data.get('code')</p>",
    "plainText": "Your code: $!data.get('code')",
}
SMS = {"name": "Code by SMS", "from": "Shop", "text": "Code $!data.get('code')"}
FORBIDDEN_CHARACTERS = ["<", ";", "’", "\\", "/", "|", '"', "`", "'", "^", "?", "!", ",", ">"]
MAX_EVENT_BYTES = 20 * 1024


def bad_request(error: str, field: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "status_code": -400, "field": field, **extra}


def not_found(error: str) -> dict[str, Any]:
    return {"error": error, "status_code": -404}


class Api(EsputnikClient):
    async def message(self, channel: str = "email", **fields: Any) -> int:
        body = await self.ok(
            "POST", f"/api/v1/messages/{channel}", {**(EMAIL if channel == "email" else SMS), **fields}
        )
        message_id: int = body["id"]
        return message_id


@pytest.fixture
async def api(client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment) -> Api:
    return Api(client, department.partner_id, await new_key(database, department.partner_id))


@pytest.fixture
async def other_api(client: httpx.AsyncClient, database: Database) -> Api:
    """Another partner, with its own key."""
    async with database.transaction() as session:
        other = await tenancy.create_department(session, "Another chain")
    return Api(client, other.partner_id, await new_key(database, other.partner_id))


async def deliveries_of(database: Database, partner_id: int) -> list[Delivery]:
    async with database.reading() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.partner_id == partner_id).order_by(Delivery.id)
        )
        return list(rows)


def event(
    key: str = "promo_signup", key_value: str | None = "anna@example.com", **params: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventTypeKey": key,
        "params": [{"name": n, "value": v} for n, v in params.items()],
    }
    if key_value is not None:
        body["keyValue"] = key_value
    return body


def event_bytes(size: int) -> bytes:
    """A valid event body of exactly ``size`` bytes."""
    body = event("big_event", "k", pad="")
    padding = size - len(json.dumps(body).encode())
    body["params"][0]["value"] = "x" * padding
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# ------------------------------------------------------------------------------------------------
# API keys


class TestApiKeys:
    @pytest.mark.parametrize("user", ["tessera", "", "any user name"])
    async def test_basic_with_the_key_as_password_and_any_user_name(self, api: Api, user: str) -> None:
        response = await api.http.get("/api/v1/messages", headers=basic(user, api.key))

        assert response.status_code == 200
        assert response.json() == []

    @pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
    async def test_bearer_token(self, api: Api, scheme: str) -> None:
        response = await api.http.get("/api/v1/messages", headers={"Authorization": f"{scheme} {api.key}"})

        assert response.status_code == 200
        assert response.json() == []

    async def test_no_credentials_is_401_with_a_json_error(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/messages")

        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED
        assert response.headers["www-authenticate"] == 'Basic realm="tessera"'

    async def test_wrong_key_of_the_right_shape_is_401(self, api: Api) -> None:
        wrong = f"tsk_{api.partner_id}_{'0' * 40}"

        response = await api.http.get("/api/v1/messages", headers={"Authorization": f"Bearer {wrong}"})

        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED

    async def test_revoked_key_is_401(self, api: Api, database: Database) -> None:
        async with database.transaction() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.partner_id == api.partner_id).values(revoked_at=utcnow())
            )

        response = await api.get("/api/v1/messages")

        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED

    async def test_a_second_key_of_the_partner_works_beside_the_first(
        self, api: Api, database: Database
    ) -> None:
        second = await new_key(database, api.partner_id)

        first = await api.get("/api/v1/messages")
        other = await api.http.get("/api/v1/messages", headers={"Authorization": f"Bearer {second}"})

        assert (first.status_code, other.status_code) == (200, 200)
        assert second != api.key

    async def test_a_key_carrying_another_partners_id_is_401(self, api: Api, other_api: Api) -> None:
        secret = api.key.split("_", 2)[2]
        forged = f"tsk_{other_api.partner_id}_{secret}"

        response = await api.http.get("/api/v1/messages", headers={"Authorization": f"Bearer {forged}"})

        assert response.status_code == 401

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({"Authorization": "Bearer"}, id="bearer-without-key"),
            pytest.param(
                {"Authorization": "Bearer 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"}, id="loyalty-token"
            ),
            pytest.param({"Authorization": "Bearer tsk_abc_0123456789"}, id="partner-id-not-a-number"),
            pytest.param({"Authorization": "Bearer tsk_"}, id="prefix-only"),
            pytest.param({"Authorization": "Basic !!not-base64!!"}, id="basic-not-base64"),
            pytest.param({"Authorization": "Token tsk_1_abc"}, id="unknown-scheme"),
        ],
    )
    async def test_other_formats_are_401(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        response = await client.get("/api/v1/messages", headers=headers)

        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED

    async def test_the_key_as_basic_user_name_is_401(self, api: Api) -> None:
        response = await api.http.get("/api/v1/messages", headers=basic(api.key, ""))

        assert response.status_code == 401

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/api/v1/event"),
            ("POST", "/api/v2/event"),
            ("POST", "/api/v1/messages/email"),
            ("POST", "/api/v1/messages/sms"),
            ("GET", "/api/v1/messages/1"),
            ("PUT", "/api/v1/messages/1"),
            ("DELETE", "/api/v1/messages/1"),
            ("POST", "/api/v1/message/1/smartsend"),
            ("GET", "/api/v1/message/status?ids=x"),
            ("GET", "/api/v1/workflows"),
            ("POST", "/api/v1/workflows"),
            ("GET", "/api/v1/workflows/1"),
            ("PUT", "/api/v1/workflows/1"),
            ("DELETE", "/api/v1/workflows/1"),
            ("POST", "/api/v1/contact"),
            ("POST", "/api/v1/contacts"),
            ("GET", "/api/v1/contacts?email=a@example.com"),
            ("GET", "/api/v1/contact/1"),
            ("POST", "/api/v1/contact/subscribe"),
        ],
    )
    async def test_every_endpoint_needs_a_key(
        self, client: httpx.AsyncClient, method: str, path: str
    ) -> None:
        response = await client.request(method, path, json={})

        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED

    async def test_an_event_without_a_key_is_not_stored(
        self, client: httpx.AsyncClient, database: Database
    ) -> None:
        response = await client.post("/api/v1/event", json=event())

        assert response.status_code == 401
        async with database.reading() as session:
            assert list(await session.scalars(select(Event))) == []


# ------------------------------------------------------------------------------------------------
# Events


class TestEventV1:
    async def test_stored_then_200_with_an_empty_body(self, api: Api, database: Database) -> None:
        body = {
            "eventTypeKey": "password_recovery",
            "keyValue": "site@com.net",
            "params": [
                {"name": "EmailAddress", "value": "site@ukr.net"},
                {"name": "password", "value": "12345678"},
            ],
        }

        response = await api.post("/api/v1/event", body)

        assert response.status_code == 200
        assert response.content == b""
        assert response.headers["content-length"] == "0"
        assert await events_of(database, api.partner_id) == [
            ("password_recovery", "site@com.net", {"EmailAddress": "site@ukr.net", "password": "12345678"})
        ]

    async def test_trailing_slash(self, api: Api, database: Database) -> None:
        response = await api.post("/api/v1/event/", event("promo_signup", "anna@example.com", code="ABC-123"))

        assert (response.status_code, response.content) == (200, b"")
        assert await events_of(database, api.partner_id) == [
            ("promo_signup", "anna@example.com", {"code": "ABC-123"})
        ]

    async def test_nested_values_are_stored_as_a_json_string(self, api: Api, database: Database) -> None:
        cart = {"items": [{"sku": "A1", "qty": 2}], "total": 10.5, "note": "Привет"}

        response = await api.post(
            "/api/v1/event", event("cart", "anna@example.com", cart=cart, tags=["a", "b"])
        )

        assert response.status_code == 200
        [(_, _, params)] = await events_of(database, api.partner_id)
        assert isinstance(params["cart"], str)
        assert json.loads(params["cart"]) == cart
        assert "Привет" in params["cart"]
        assert isinstance(params["tags"], str)
        assert json.loads(params["tags"]) == ["a", "b"]

    async def test_scalar_values_keep_their_json_types(self, api: Api, database: Database) -> None:
        response = await api.post("/api/v1/event", event("e", "k", n=5, f=1.5, b=True, none=None, s="x"))

        assert response.status_code == 200
        [(_, _, params)] = await events_of(database, api.partner_id)
        assert params == {"n": 5, "f": 1.5, "b": True, "none": None, "s": "x"}

    async def test_params_may_be_left_out(self, api: Api, database: Database) -> None:
        response = await api.post("/api/v1/event", {"eventTypeKey": "ping", "keyValue": "k"})

        assert response.status_code == 200
        assert await events_of(database, api.partner_id) == [("ping", "k", {})]

    async def test_key_value_is_required(self, api: Api, database: Database) -> None:
        response = await api.post("/api/v1/event", event("promo_signup", None, email="anna@example.com"))

        assert response.status_code == 400
        assert response.json() == bad_request("keyValue is required", "keyValue")
        assert await events_of(database, api.partner_id) == []


class TestEventV2:
    async def test_stored_then_200_with_an_empty_body(self, api: Api, database: Database) -> None:
        response = await api.post("/api/v2/event", event("promo_signup", "anna@example.com", code="ABC-123"))

        assert response.status_code == 200
        assert response.content == b""
        assert await events_of(database, api.partner_id) == [
            ("promo_signup", "anna@example.com", {"code": "ABC-123"})
        ]

    async def test_trailing_slash(self, api: Api, database: Database) -> None:
        response = await api.post("/api/v2/event/", event("promo_signup", "k"))

        assert (response.status_code, response.content) == (200, b"")
        assert len(await events_of(database, api.partner_id)) == 1

    async def test_nested_values_are_kept_as_json(self, api: Api, database: Database) -> None:
        customer = {"firstName": "Anna", "address": {"city": "Kyiv"}, "orders": [1, 2]}

        response = await api.post(
            "/api/v2/event", event("order", "anna@example.com", customer=customer, ids=[3, 4])
        )

        assert response.status_code == 200
        assert await events_of(database, api.partner_id) == [
            ("order", "anna@example.com", {"customer": customer, "ids": [3, 4]})
        ]

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            pytest.param(
                {
                    "pushToken": "tok",
                    "phone": "79001234567",
                    "email": "a@example.com",
                    "externalCustomerId": "crm-1",
                    "contactId": "77",
                },
                "77",
                id="contactId-first",
            ),
            pytest.param(
                {
                    "pushToken": "tok",
                    "phone": "79001234567",
                    "email": "a@example.com",
                    "externalCustomerId": "crm-1",
                },
                "crm-1",
                id="then-externalCustomerId",
            ),
            pytest.param(
                {"pushToken": "tok", "phone": "79001234567", "email": "a@example.com"},
                "a@example.com",
                id="then-email",
            ),
            pytest.param({"pushToken": "tok", "phone": "79001234567"}, "79001234567", id="then-phone"),
            pytest.param({"pushToken": "tok"}, "tok", id="then-pushToken"),
            pytest.param({"contactId": 42}, "42", id="a-number"),
        ],
    )
    async def test_key_value_falls_back_to_params_in_priority_order(
        self, api: Api, database: Database, params: dict[str, Any], expected: str
    ) -> None:
        response = await api.post("/api/v2/event", event("promo_signup", None, **params))

        assert response.status_code == 200, response.text
        assert await events_of(database, api.partner_id) == [("promo_signup", expected, params)]

    @pytest.mark.parametrize("blank", ["", "   ", "null", "NULL", None])
    async def test_blank_external_customer_id_is_passed_over(
        self, api: Api, database: Database, blank: Any
    ) -> None:
        params = {"externalCustomerId": blank, "email": "a@example.com"}

        response = await api.post("/api/v2/event", event("promo_signup", None, **params))

        assert response.status_code == 200
        assert await events_of(database, api.partner_id) == [("promo_signup", "a@example.com", params)]

    async def test_a_given_key_value_wins_over_params(self, api: Api, database: Database) -> None:
        response = await api.post("/api/v2/event", event("promo_signup", "explicit", contactId="77"))

        assert response.status_code == 200
        assert (await events_of(database, api.partner_id))[0][1] == "explicit"

    async def test_the_seeds_email_address_param_is_the_last_fallback(
        self, api: Api, database: Database
    ) -> None:
        params = {"EmailAddress": "mail@example.com", "code": "ABC-123"}

        response = await api.post("/api/v2/event", event("promo_signup", None, **params))

        assert response.status_code == 200
        assert await events_of(database, api.partner_id) == [("promo_signup", "mail@example.com", params)]

    async def test_no_key_value_and_no_identifying_param_is_400(self, api: Api, database: Database) -> None:
        response = await api.post("/api/v2/event", event("promo_signup", None, code="ABC-123"))

        assert response.status_code == 400
        assert response.json() == bad_request(
            "keyValue is required (or a contactId, externalCustomerId, email, phone, pushToken,"
            " EmailAddress or Phone param)",
            "keyValue",
        )
        assert await events_of(database, api.partner_id) == []

    async def test_a_fallback_value_is_checked_like_a_key_value(self, api: Api, database: Database) -> None:
        response = await api.post("/api/v2/event", event("promo_signup", None, email="a,b@example.com"))

        assert response.status_code == 400
        assert response.json() == bad_request("keyValue contains forbidden characters: ,", "keyValue")
        assert await events_of(database, api.partner_id) == []


@pytest.mark.parametrize("path", ["/api/v1/event", "/api/v2/event"])
class TestEventValidation:
    async def test_event_type_key_of_100_characters_is_accepted(
        self, api: Api, database: Database, path: str
    ) -> None:
        response = await api.post(path, event("k" * 100, "v"))

        assert response.status_code == 200
        assert await events_of(database, api.partner_id) == [("k" * 100, "v", {})]

    async def test_event_type_key_of_101_characters_is_400(
        self, api: Api, database: Database, path: str
    ) -> None:
        response = await api.post(path, event("k" * 101, "v"))

        assert response.status_code == 400
        assert response.json() == bad_request("eventTypeKey is longer than 100 characters", "eventTypeKey")
        assert await events_of(database, api.partner_id) == []

    async def test_key_value_of_300_characters_is_accepted(
        self, api: Api, database: Database, path: str
    ) -> None:
        response = await api.post(path, event("e", "v" * 300))

        assert response.status_code == 200
        assert await events_of(database, api.partner_id) == [("e", "v" * 300, {})]

    async def test_key_value_of_301_characters_is_400(self, api: Api, database: Database, path: str) -> None:
        response = await api.post(path, event("e", "v" * 301))

        assert response.status_code == 400
        assert response.json() == bad_request("keyValue is longer than 300 characters", "keyValue")
        assert await events_of(database, api.partner_id) == []

    @pytest.mark.parametrize("character", FORBIDDEN_CHARACTERS)
    async def test_forbidden_character_in_event_type_key(
        self, api: Api, database: Database, path: str, character: str
    ) -> None:
        response = await api.post(path, event(f"promo{character}signup", "v"))

        assert response.status_code == 400
        assert response.json() == bad_request(
            f"eventTypeKey contains forbidden characters: {character}", "eventTypeKey"
        )
        assert await events_of(database, api.partner_id) == []

    @pytest.mark.parametrize("character", FORBIDDEN_CHARACTERS)
    async def test_forbidden_character_in_key_value(
        self, api: Api, database: Database, path: str, character: str
    ) -> None:
        response = await api.post(path, event("promo_signup", f"anna{character}x"))

        assert response.status_code == 400
        assert response.json() == bad_request(
            f"keyValue contains forbidden characters: {character}", "keyValue"
        )
        assert await events_of(database, api.partner_id) == []

    async def test_allowed_punctuation_passes(self, api: Api, database: Database, path: str) -> None:
        response = await api.post(path, event("promo.signup-2024_v1", "+7 (900) 123-45-67 anna@example.com"))

        assert response.status_code == 200
        assert await events_of(database, api.partner_id) == [
            ("promo.signup-2024_v1", "+7 (900) 123-45-67 anna@example.com", {})
        ]

    async def test_a_body_of_exactly_20_kb_is_accepted(self, api: Api, database: Database, path: str) -> None:
        response = await api.call(
            "POST", path, content=event_bytes(MAX_EVENT_BYTES), headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 200
        assert len(await events_of(database, api.partner_id)) == 1

    async def test_a_body_one_byte_over_20_kb_is_400(self, api: Api, database: Database, path: str) -> None:
        response = await api.call(
            "POST",
            path,
            content=event_bytes(MAX_EVENT_BYTES + 1),
            headers={"Content-Type": "application/json"},
        )

        assert response.status_code == 400
        assert response.json() == bad_request("the event is larger than 20 KB", "body")
        assert await events_of(database, api.partner_id) == []

    async def test_a_chunked_body_over_20_kb_is_400(self, api: Api, database: Database, path: str) -> None:
        raw = event_bytes(MAX_EVENT_BYTES + 1)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(raw), 4096):
                yield raw[start : start + 4096]

        response = await api.call(
            "POST", path, content=chunks(), headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 400
        assert (response.json()["field"], response.json()["status_code"]) == ("body", -400)
        assert await events_of(database, api.partner_id) == []

    @pytest.mark.parametrize("raw", [b"{not json", b'{"eventTypeKey": "a",}', b"\xff\xfe"])
    async def test_invalid_json_is_400_naming_the_body(
        self, api: Api, database: Database, path: str, raw: bytes
    ) -> None:
        response = await api.call("POST", path, content=raw, headers={"Content-Type": "application/json"})

        assert response.status_code == 400
        body = response.json()
        assert body["field"] == "body"
        assert body["status_code"] == -400
        assert body["error"].startswith("the body is not valid JSON: ")
        assert await events_of(database, api.partner_id) == []

    async def test_json_nested_too_deeply_is_400(self, api: Api, database: Database, path: str) -> None:
        depth = 5000
        raw = b'{"eventTypeKey": "e", "keyValue": "k", "x": ' + b"[" * depth + b"]" * depth + b"}"

        response = await api.call("POST", path, content=raw, headers={"Content-Type": "application/json"})

        assert response.status_code == 400
        assert (response.json()["field"], response.json()["status_code"]) == ("body", -400)
        assert await events_of(database, api.partner_id) == []

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(event("e", "k", code="AB\u0000C"), id="param-value"),
            pytest.param(event("e", "k", **{"co\u0000de": "x"}), id="param-name"),
            pytest.param(event("e", "k", cart={"items": ["\u0000"]}), id="nested-value"),
            pytest.param(event("e", "k\u0000"), id="key-value"),
            pytest.param(event("e\u0000", "k"), id="event-type-key"),
        ],
    )
    async def test_a_nul_character_is_400_on_every_database(
        self, api: Api, database: Database, path: str, body: dict[str, Any]
    ) -> None:
        response = await api.post(path, body)

        assert response.status_code == 400
        assert response.json() == bad_request("the body may not contain NUL characters (\\u0000)", "body")
        assert await events_of(database, api.partner_id) == []

    async def test_an_empty_body_is_400(self, api: Api, path: str) -> None:
        response = await api.call("POST", path, content=b"", headers={"Content-Type": "application/json"})

        assert response.status_code == 400
        assert response.json() == bad_request("the body must be JSON", "body")

    @pytest.mark.parametrize("body", [[], "event", 5])
    async def test_a_body_that_is_not_an_object_is_400(self, api: Api, path: str, body: Any) -> None:
        response = await api.post(path, body)

        assert response.status_code == 400
        assert response.json() == bad_request("the body must be a JSON object", "body")

    @pytest.mark.parametrize("key", [None, "", "   "])
    async def test_missing_event_type_key_is_400(
        self, api: Api, database: Database, path: str, key: Any
    ) -> None:
        body: dict[str, Any] = {"keyValue": "v", "params": []}
        if key is not None:
            body["eventTypeKey"] = key

        response = await api.post(path, body)

        assert response.status_code == 400
        assert response.json() == bad_request("eventTypeKey is required", "eventTypeKey")
        assert await events_of(database, api.partner_id) == []

    @pytest.mark.parametrize("key", [{"a": 1}, ["a"], True])
    async def test_event_type_key_that_is_not_a_string_is_400(self, api: Api, path: str, key: Any) -> None:
        response = await api.post(path, {"eventTypeKey": key, "keyValue": "v"})

        assert response.status_code == 400
        assert response.json() == bad_request("eventTypeKey must be a string", "eventTypeKey")

    async def test_params_that_are_not_a_list_is_400(self, api: Api, path: str) -> None:
        response = await api.post(path, {"eventTypeKey": "e", "keyValue": "v", "params": {"name": "a"}})

        assert response.status_code == 400
        assert response.json() == bad_request("params must be an array of {name, value}", "params")

    @pytest.mark.parametrize("item", [{"value": "x"}, {"name": "", "value": "x"}, {"name": 5}, "code"])
    async def test_a_param_without_a_name_is_400(self, api: Api, path: str, item: Any) -> None:
        body = {"eventTypeKey": "e", "keyValue": "v", "params": [{"name": "ok", "value": 1}, item]}

        response = await api.post(path, body)

        assert response.status_code == 400
        assert response.json() == bad_request("params[1] must be an object with a name", "params[1].name")

    async def test_events_are_kept_per_partner(
        self, api: Api, other_api: Api, database: Database, path: str
    ) -> None:
        await api.post(path, event("mine", "a"))
        await other_api.post(path, event("theirs", "b"))

        assert await events_of(database, api.partner_id) == [("mine", "a", {})]
        assert await events_of(database, other_api.partner_id) == [("theirs", "b", {})]


# ------------------------------------------------------------------------------------------------
# Messages


class TestEmailMessages:
    async def test_create_answers_the_id(self, api: Api) -> None:
        response = await api.post("/api/v1/messages/email", EMAIL)

        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["id"]
        assert isinstance(body["id"], int)

    async def test_get_answers_the_stored_message(self, api: Api) -> None:
        message_id = await api.message("email")

        response = await api.get(f"/api/v1/messages/{message_id}")

        assert response.status_code == 200
        assert response.json() == {"id": message_id, "type": "email", **EMAIL}

    async def test_plain_text_is_optional(self, api: Api) -> None:
        fields = {k: v for k, v in EMAIL.items() if k != "plainText"}
        message_id = (await api.ok("POST", "/api/v1/messages/email", fields))["id"]

        assert await api.ok("GET", f"/api/v1/messages/{message_id}") == {
            "id": message_id,
            "type": "email",
            **fields,
            "plainText": None,
        }

    async def test_list_answers_every_message_in_order(self, api: Api) -> None:
        email_id = await api.message("email")
        sms_id = await api.message("sms")

        assert await api.ok("GET", "/api/v1/messages") == [
            {"id": email_id, "type": "email", **EMAIL},
            {"id": sms_id, "type": "sms", **SMS},
        ]

    async def test_put_replaces_the_whole_message(self, api: Api) -> None:
        message_id = await api.message("email")
        replacement = {
            "name": "Renamed",
            "from": "news@example.com",
            "subject": "New",
            "htmlText": "<b>new</b>",
        }

        response = await api.put(f"/api/v1/messages/{message_id}", replacement)

        expected = {"id": message_id, "type": "email", **replacement, "plainText": None}
        assert response.status_code == 200
        assert response.json() == expected
        assert await api.ok("GET", f"/api/v1/messages/{message_id}") == expected

    async def test_put_checks_the_templates_again(self, api: Api) -> None:
        message_id = await api.message("email")

        response = await api.put(f"/api/v1/messages/{message_id}", {**EMAIL, "htmlText": "a\n#if($x)\nb"})

        assert response.status_code == 400
        body = response.json()
        assert (body["field"], body["line"], body["column"]) == ("htmlText", 3, 2)
        assert await api.ok("GET", f"/api/v1/messages/{message_id}") == {
            "id": message_id,
            "type": "email",
            **EMAIL,
        }

    async def test_put_with_the_other_channels_fields_is_400(self, api: Api) -> None:
        message_id = await api.message("email")

        response = await api.put(f"/api/v1/messages/{message_id}", SMS)

        assert response.status_code == 400
        assert response.json()["field"] == "subject"

    async def test_delete_then_get_is_404(self, api: Api) -> None:
        message_id = await api.message("email")

        deleted = await api.delete(f"/api/v1/messages/{message_id}")
        response = await api.get(f"/api/v1/messages/{message_id}")

        assert (deleted.status_code, deleted.content) == (200, b"")
        assert response.status_code == 404
        assert response.json() == not_found(f"message {message_id} not found")
        assert await api.ok("GET", "/api/v1/messages") == []

    async def test_deleted_message_cannot_be_replaced_or_deleted_again(self, api: Api) -> None:
        message_id = await api.message("email")
        await api.delete(f"/api/v1/messages/{message_id}")

        replaced = await api.put(f"/api/v1/messages/{message_id}", EMAIL)
        again = await api.delete(f"/api/v1/messages/{message_id}")

        assert (replaced.status_code, again.status_code) == (404, 404)

    async def test_unknown_id_is_404(self, api: Api) -> None:
        response = await api.get("/api/v1/messages/999999")

        assert response.status_code == 404
        assert response.json() == not_found("message 999999 not found")

    async def test_a_nul_character_is_400_on_every_database(self, api: Api) -> None:
        response = await api.post("/api/v1/messages/email", {**EMAIL, "name": "Wel\u0000come"})

        assert response.status_code == 400
        assert response.json() == bad_request("the body may not contain NUL characters (\\u0000)", "body")
        assert await api.ok("GET", "/api/v1/messages") == []

    @pytest.mark.parametrize("field", ["name", "from", "subject", "htmlText"])
    async def test_a_missing_required_field_is_400_naming_it(self, api: Api, field: str) -> None:
        body = {k: v for k, v in EMAIL.items() if k != field}

        response = await api.post("/api/v1/messages/email", body)

        assert response.status_code == 400
        assert response.json() == bad_request(f"{field}: Field required", field)

    async def test_trailing_slashes(self, api: Api) -> None:
        created = await api.post("/api/v1/messages/email/", EMAIL)
        message_id = created.json()["id"]

        got = await api.get(f"/api/v1/messages/{message_id}/")
        put = await api.put(f"/api/v1/messages/{message_id}/", {**EMAIL, "name": "Again"})
        listed = await api.get("/api/v1/messages/")
        deleted = await api.delete(f"/api/v1/messages/{message_id}/")

        assert [r.status_code for r in (created, got, put, listed, deleted)] == [200] * 5
        assert put.json()["name"] == "Again"


class TestSmsMessages:
    async def test_create_and_get(self, api: Api) -> None:
        response = await api.post("/api/v1/messages/sms", SMS)

        assert response.status_code == 200
        message_id = response.json()["id"]
        assert response.json() == {"id": message_id}
        assert await api.ok("GET", f"/api/v1/messages/{message_id}") == {
            "id": message_id,
            "type": "sms",
            **SMS,
        }

    async def test_put_replaces(self, api: Api) -> None:
        message_id = await api.message("sms")
        replacement = {"name": "New", "from": "Brand", "text": "Hi $!data.get('name')"}

        response = await api.put(f"/api/v1/messages/{message_id}", replacement)

        assert response.status_code == 200
        assert response.json() == {"id": message_id, "type": "sms", **replacement}

    async def test_put_checks_the_template_again(self, api: Api) -> None:
        message_id = await api.message("sms")

        response = await api.put(f"/api/v1/messages/{message_id}", {**SMS, "text": "$data.get('__class__')"})

        assert response.status_code == 400
        assert response.json() == bad_request("text: templates may not contain '__'", "text", line=1)

    async def test_delete_then_get_is_404(self, api: Api) -> None:
        message_id = await api.message("sms")

        assert (await api.delete(f"/api/v1/messages/{message_id}")).status_code == 200
        assert (await api.get(f"/api/v1/messages/{message_id}")).status_code == 404

    @pytest.mark.parametrize("field", ["name", "from", "text"])
    async def test_a_missing_required_field_is_400_naming_it(self, api: Api, field: str) -> None:
        body = {k: v for k, v in SMS.items() if k != field}

        response = await api.post("/api/v1/messages/sms", body)

        assert response.status_code == 400
        assert response.json() == bad_request(f"{field}: Field required", field)


class TestTemplateChecks:
    @pytest.mark.parametrize(
        ("source", "line", "column"),
        [
            pytest.param("<p>Hello</p>\n<p>line two $!data.get('a'\n</p>", 2, 27, id="unclosed-call"),
            pytest.param("one\ntwo\n   #end\nfour", 3, 4, id="stray-end"),
            pytest.param("x\n  #set($a = )\n", 2, 13, id="set-without-expression"),
            pytest.param("one\ntwo ${data.get('a')\nthree", 2, 20, id="unclosed-formal-reference"),
            pytest.param("#if($data.get('a'))\nyes\n#else\nno\n", 5, 1, id="if-without-end"),
        ],
    )
    async def test_syntax_error_is_refused_with_line_and_column(
        self, api: Api, source: str, line: int, column: int
    ) -> None:
        response = await api.post("/api/v1/messages/email", {**EMAIL, "htmlText": source})

        assert response.status_code == 400
        body = response.json()
        assert (body["field"], body["line"], body["column"], body["status_code"]) == (
            "htmlText",
            line,
            column,
            -400,
        )
        assert body["error"].startswith(f"htmlText: line {line}, column {column}: ")
        assert await api.ok("GET", "/api/v1/messages") == []

    @pytest.mark.parametrize("field", ["subject", "htmlText", "plainText"])
    async def test_each_email_text_is_checked(self, api: Api, field: str) -> None:
        response = await api.post("/api/v1/messages/email", {**EMAIL, field: "ok\n#foreach($x in)\n#end"})

        assert response.status_code == 400
        body = response.json()
        assert (body["field"], body["line"]) == (field, 2)

    async def test_sms_text_is_checked(self, api: Api) -> None:
        response = await api.post("/api/v1/messages/sms", {**SMS, "text": "Hi\n#if($a\n"})

        assert response.status_code == 400
        body = response.json()
        assert (body["field"], body["line"]) == ("text", 2)

    @pytest.mark.parametrize(
        ("source", "sequence", "line"),
        [
            ("$data.get('__class__')", "__", 1),
            ("<p>\n$data.get('a').get('x')__len__()</p>", "__", 2),
            ("<p>\n\n$data._values</p>", "._", 3),
            ("$data.get('a')._x", "._", 1),
        ],
    )
    async def test_double_underscore_and_dot_underscore_are_refused(
        self, api: Api, source: str, sequence: str, line: int
    ) -> None:
        response = await api.post("/api/v1/messages/email", {**EMAIL, "htmlText": source})

        assert response.status_code == 400
        assert response.json() == bad_request(
            f"htmlText: templates may not contain {sequence!r}", "htmlText", line=line
        )

    async def test_the_seeds_templates_are_accepted(self, api: Api) -> None:
        source = (
            "$!data.get('code') $data.get('a').get('b')\n"
            "#if($data.get('p') and $data.get('p') != '')p#elseif($data.get('q'))q#else-#end\n"
            "#foreach($item in $data.get('items'))$velocityCount: $item.get('name')#end\n"
            "#set($greeting = 'Hi')$greeting"
        )

        response = await api.post("/api/v1/messages/email", {**EMAIL, "htmlText": source})

        assert response.status_code == 200


# ------------------------------------------------------------------------------------------------
# smartsend and status


def recipient(locator: str, json_param: Any = None) -> dict[str, Any]:
    return {"locator": locator, "jsonParam": json_param}


def is_uuid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


class TestSmartsend:
    async def test_each_recipient_gets_ok_and_a_request_id(self, api: Api, database: Database) -> None:
        message_id = await api.message("email")
        body = {
            "recipients": [
                recipient("mail@example.com", json.dumps({"code": "ABC-123"})),
                recipient("New.Example@Mail.com", json.dumps({"code": "ABC-124", "nested": {"a": [1]}})),
            ],
            "email": True,
        }

        response = await api.post(f"/api/v1/message/{message_id}/smartsend", body)

        assert response.status_code == 200
        answer = response.json()
        ids = [r["requestId"] for r in answer["results"]]
        assert answer == {
            "id": 0,
            "results": [
                {"id": 0, "locator": "mail@example.com", "status": "OK", "requestId": ids[0]},
                {"id": 0, "locator": "New.Example@Mail.com", "status": "OK", "requestId": ids[1]},
            ],
        }
        assert all(is_uuid(r) for r in ids)
        assert ids[0] != ids[1]
        stored = await deliveries_of(database, api.partner_id)
        assert [(d.request_id, d.recipient, d.channel, d.message_id, d.data, d.status) for d in stored] == [
            (ids[0], "mail@example.com", "email", message_id, {"code": "ABC-123"}, "queued"),
            (
                ids[1],
                "new.example@mail.com",
                "email",
                message_id,
                {"code": "ABC-124", "nested": {"a": [1]}},
                "queued",
            ),
        ]

    async def test_a_single_recipient_is_still_an_array(self, api: Api) -> None:
        message_id = await api.message("email")

        answer = await api.ok(
            "POST",
            f"/api/v1/message/{message_id}/smartsend",
            {"recipients": [recipient("a@example.com")], "email": True},
        )

        assert isinstance(answer["results"], list)
        assert len(answer["results"]) == 1

    async def test_invalid_email_is_an_error_for_that_recipient_only(
        self, api: Api, database: Database
    ) -> None:
        message_id = await api.message("email")
        body = {"recipients": [recipient("not-an-email"), recipient("ok@example.com")], "email": True}

        answer = await api.ok("POST", f"/api/v1/message/{message_id}/smartsend", body)

        assert answer["results"][0] == {
            "id": 0,
            "locator": "not-an-email",
            "status": "ERROR",
            "message": "'not-an-email' is not valid email",
        }
        assert answer["results"][1]["status"] == "OK"
        assert [d.recipient for d in await deliveries_of(database, api.partner_id)] == ["ok@example.com"]

    async def test_sms_recipients_are_normalised_phones(self, api: Api, database: Database) -> None:
        message_id = await api.message("sms")
        body = {
            "recipients": [recipient("+7 (900) 123-45-67", '{"code":"X"}'), recipient("12")],
            "email": False,
        }

        answer = await api.ok("POST", f"/api/v1/message/{message_id}/smartsend", body)

        assert [r["status"] for r in answer["results"]] == ["OK", "ERROR"]
        assert answer["results"][1] == {
            "id": 0,
            "locator": "12",
            "status": "ERROR",
            "message": "'12' is not valid phone number",
        }
        stored = await deliveries_of(database, api.partner_id)
        assert [(d.recipient, d.channel, d.data) for d in stored] == [("79001234567", "sms", {"code": "X"})]

    @pytest.mark.parametrize(
        ("json_param", "error"),
        [
            pytest.param('{"code": ', "jsonParam is not valid JSON: ", id="truncated"),
            pytest.param("code=ABC", "jsonParam is not valid JSON: ", id="not-json"),
            pytest.param("[1, 2]", "jsonParam must hold a JSON object", id="an-array"),
            pytest.param('"text"', "jsonParam must hold a JSON object", id="a-string"),
            pytest.param("42", "jsonParam must hold a JSON object", id="a-number-string"),
            pytest.param(42, "jsonParam must be a JSON string", id="a-number"),
            pytest.param([1], "jsonParam must be a JSON string", id="a-list"),
        ],
    )
    async def test_bad_json_param_is_an_error_for_that_recipient(
        self, api: Api, database: Database, json_param: Any, error: str
    ) -> None:
        message_id = await api.message("email")
        body = {"recipients": [recipient("a@example.com", json_param)], "email": True}

        answer = await api.ok("POST", f"/api/v1/message/{message_id}/smartsend", body)

        [result] = answer["results"]
        assert (result["status"], result["locator"], "requestId" in result) == (
            "ERROR",
            "a@example.com",
            False,
        )
        assert result["message"].startswith(error)
        assert await deliveries_of(database, api.partner_id) == []

    async def test_json_param_nested_too_deeply_is_an_error_for_that_recipient(
        self, api: Api, database: Database
    ) -> None:
        message_id = await api.message("email")
        deep = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
        body = {"recipients": [recipient("a@example.com", deep), recipient("b@example.com", "{}")]}

        answer = await api.ok("POST", f"/api/v1/message/{message_id}/smartsend", body)

        assert [r["status"] for r in answer["results"]] == ["ERROR", "OK"]
        assert answer["results"][0]["message"].startswith("jsonParam is not valid JSON: ")
        assert [d.recipient for d in await deliveries_of(database, api.partner_id)] == ["b@example.com"]

    async def test_json_param_with_a_nul_character_is_an_error_for_that_recipient(
        self, api: Api, database: Database
    ) -> None:
        message_id = await api.message("email")
        body = {"recipients": [recipient("a@example.com", json.dumps({"code": "A\u0000B"}))]}

        answer = await api.ok("POST", f"/api/v1/message/{message_id}/smartsend", body)

        assert answer["results"] == [
            {
                "id": 0,
                "locator": "a@example.com",
                "status": "ERROR",
                "message": "jsonParam may not contain NUL characters (\\u0000)",
            }
        ]
        assert await deliveries_of(database, api.partner_id) == []

    @pytest.mark.parametrize("json_param", [None, "", "  "])
    async def test_no_json_param_means_no_data(self, api: Api, database: Database, json_param: Any) -> None:
        message_id = await api.message("email")

        answer = await api.ok(
            "POST",
            f"/api/v1/message/{message_id}/smartsend",
            {"recipients": [recipient("a@example.com", json_param)]},
        )

        assert answer["results"][0]["status"] == "OK"
        assert [d.data for d in await deliveries_of(database, api.partner_id)] == [{}]

    async def test_1000_recipients_are_accepted(self, api: Api, database: Database) -> None:
        message_id = await api.message("email")
        recipients = [recipient(f"r{i}@example.com", json.dumps({"i": i})) for i in range(1000)]

        answer = await api.ok(
            "POST", f"/api/v1/message/{message_id}/smartsend", {"recipients": recipients, "email": True}
        )

        assert [r["status"] for r in answer["results"]] == ["OK"] * 1000
        assert [r["locator"] for r in answer["results"]] == [f"r{i}@example.com" for i in range(1000)]
        assert len({r["requestId"] for r in answer["results"]}) == 1000
        assert len(await deliveries_of(database, api.partner_id)) == 1000

    async def test_1001_recipients_is_400_and_nothing_is_queued(self, api: Api, database: Database) -> None:
        message_id = await api.message("email")
        recipients = [recipient(f"r{i}@example.com") for i in range(1001)]

        response = await api.post(
            f"/api/v1/message/{message_id}/smartsend", {"recipients": recipients, "email": True}
        )

        assert response.status_code == 400
        assert response.json()["field"] == "recipients"
        assert await deliveries_of(database, api.partner_id) == []

    @pytest.mark.parametrize("body", [{"recipients": []}, {"email": True}, {"recipients": "a@example.com"}])
    async def test_no_recipients_is_400(self, api: Api, body: dict[str, Any]) -> None:
        message_id = await api.message("email")

        response = await api.post(f"/api/v1/message/{message_id}/smartsend", body)

        assert response.status_code == 400
        assert response.json()["field"] == "recipients"

    @pytest.mark.parametrize(
        ("channel", "locator", "stored"),
        [("email", "A@Example.com", "a@example.com"), ("sms", "+79001234567", "79001234567")],
    )
    async def test_without_the_email_flag_the_channel_is_the_messages(
        self, api: Api, database: Database, channel: str, locator: str, stored: str
    ) -> None:
        message_id = await api.message(channel)

        answer = await api.ok(
            "POST", f"/api/v1/message/{message_id}/smartsend", {"recipients": [recipient(locator)]}
        )

        assert answer["results"][0]["status"] == "OK"
        assert [(d.channel, d.recipient) for d in await deliveries_of(database, api.partner_id)] == [
            (channel, stored)
        ]

    async def test_email_flag_null_takes_the_messages_channel(self, api: Api) -> None:
        message_id = await api.message("sms")

        answer = await api.ok(
            "POST",
            f"/api/v1/message/{message_id}/smartsend",
            {"recipients": [recipient("79001234567")], "email": None},
        )

        assert answer["results"][0]["status"] == "OK"

    @pytest.mark.parametrize(("channel", "flag"), [("email", False), ("sms", True)])
    async def test_an_email_flag_contradicting_the_message_is_400(
        self, api: Api, database: Database, channel: str, flag: bool
    ) -> None:
        message_id = await api.message(channel)

        response = await api.post(
            f"/api/v1/message/{message_id}/smartsend",
            {"recipients": [recipient("79001234567")], "email": flag},
        )

        assert response.status_code == 400
        assert response.json() == bad_request(f"message {message_id} is an {channel} message", "email")
        assert await deliveries_of(database, api.partner_id) == []

    async def test_unknown_message_is_404(self, api: Api) -> None:
        response = await api.post(
            "/api/v1/message/999999/smartsend", {"recipients": [recipient("a@example.com")]}
        )

        assert response.status_code == 404
        assert response.json() == not_found("message 999999 not found")

    async def test_deleted_message_is_404(self, api: Api) -> None:
        message_id = await api.message("email")
        await api.delete(f"/api/v1/messages/{message_id}")

        response = await api.post(
            f"/api/v1/message/{message_id}/smartsend", {"recipients": [recipient("a@example.com")]}
        )

        assert response.status_code == 404

    async def test_trailing_slash(self, api: Api) -> None:
        message_id = await api.message("email")

        response = await api.post(
            f"/api/v1/message/{message_id}/smartsend/", {"recipients": [recipient("a@example.com")]}
        )

        assert response.status_code == 200
        assert response.json()["results"][0]["status"] == "OK"

    async def test_extra_recipient_and_request_fields_are_ignored(self, api: Api) -> None:
        message_id = await api.message("email")
        body = {
            "recipients": [
                {"locator": "a@example.com", "jsonParam": "{}", "contactId": None, "languageCode": "uk"}
            ],
            "email": True,
            "fromName": None,
            "externalRequestId": "my-id-1",
        }

        answer = await api.ok("POST", f"/api/v1/message/{message_id}/smartsend", body)

        assert answer["results"][0]["status"] == "OK"


class TestMessageStatus:
    async def send(self, api: Api, *locators: str, channel: str = "email") -> tuple[int, list[str]]:
        message_id = await api.message(channel)
        answer = await api.ok(
            "POST",
            f"/api/v1/message/{message_id}/smartsend",
            {"recipients": [recipient(x) for x in locators]},
        )
        return message_id, [r["requestId"] for r in answer["results"]]

    async def test_a_comma_list_answers_each_in_order(self, api: Api) -> None:
        message_id, ids = await self.send(api, "a@example.com", "b@example.com")

        answer = await api.ok("GET", "/api/v1/message/status", params={"ids": f"{ids[1]},{ids[0]}"})

        created = [r["createdDate"] for r in answer["results"]]
        assert all(ISO_DATE.fullmatch(c) for c in created)
        assert answer == {
            "results": [
                {
                    "requestId": request_id,
                    "status": "queued",
                    "statusDescription": None,
                    "attempts": 0,
                    "locator": locator,
                    "channel": "email",
                    "messageId": message_id,
                    "externalRequestId": None,
                    "sentDate": None,
                    "createdDate": created[n],
                    "promocodes": [],
                }
                for n, (request_id, locator) in enumerate(
                    [(ids[1], "b@example.com"), (ids[0], "a@example.com")]
                )
            ]
        }

    async def test_one_ids_key_per_id(self, api: Api) -> None:
        _, ids = await self.send(api, "a@example.com", "b@example.com")

        answer = await api.ok("GET", f"/api/v1/message/status?ids={ids[0]}&ids={ids[1]}")

        assert [(r["requestId"], r["locator"]) for r in answer["results"]] == [
            (ids[0], "a@example.com"),
            (ids[1], "b@example.com"),
        ]

    async def test_spaces_and_repeats_are_tolerated(self, api: Api) -> None:
        _, ids = await self.send(api, "a@example.com")

        answer = await api.ok("GET", f"/api/v1/message/status?ids={ids[0]}, {ids[0]},&ids={ids[0]}")

        assert [r["requestId"] for r in answer["results"]] == [ids[0]]

    async def test_an_unknown_id_is_not_found(self, api: Api) -> None:
        _, ids = await self.send(api, "a@example.com")

        answer = await api.ok("GET", f"/api/v1/message/status?ids=nope,{ids[0]}")

        assert answer["results"][0] == {"requestId": "nope", "status": "not found"}
        assert answer["results"][1]["status"] == "queued"

    @pytest.mark.parametrize("query", ["", "?ids=", "?ids=,,", "?other=1"])
    async def test_no_ids_is_400(self, api: Api, query: str) -> None:
        response = await api.get(f"/api/v1/message/status{query}")

        assert response.status_code == 400
        assert response.json() == bad_request("ids is required: one or more requestIds", "ids")

    async def test_more_than_1000_ids_is_400(self, api: Api) -> None:
        ids = ",".join(str(uuid.uuid4()) for _ in range(1001))

        response = await api.get("/api/v1/message/status", params={"ids": ids})

        assert response.status_code == 400
        assert response.json() == bad_request("at most 1000 ids", "ids")

    async def test_trailing_slash(self, api: Api) -> None:
        _, ids = await self.send(api, "a@example.com")

        answer = await api.ok("GET", f"/api/v1/message/status/?ids={ids[0]}")

        assert answer["results"][0]["requestId"] == ids[0]

    @pytest.mark.parametrize("channel", ["email", "sms"])
    async def test_a_worker_pass_without_channels_reports_channel_not_configured(
        self, api: Api, database: Database, settings: Settings, channel: str
    ) -> None:
        locator = "a@example.com" if channel == "email" else "79001234567"
        _, ids = await self.send(api, locator, channel=channel)

        await Worker(database, settings, channels={}).run_once()
        answer = await api.ok("GET", f"/api/v1/message/status?ids={ids[0]}")

        [result] = answer["results"]
        assert (result["status"], result["statusDescription"], result["attempts"], result["sentDate"]) == (
            "queued",
            "channel not configured",
            0,
            None,
        )


# ------------------------------------------------------------------------------------------------
# Workflows


def workflow(message_id: int, **fields: Any) -> dict[str, Any]:
    """SPEC §8's example workflow."""
    return {
        "name": "Welcome code",
        "enabled": True,
        "trigger": {"event": "promo_signup"},
        "steps": [
            {"type": "issue_promocode", "group": "Summer", "as": "code"},
            {"type": "send", "message_id": message_id, "to_param": "EmailAddress"},
            {"type": "add_tag", "tag": "Got summer code"},
            {"type": "wait", "seconds": 3600},
        ],
        **fields,
    }


def stored_workflow(workflow_id: int, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "name": body["name"],
        "enabled": body.get("enabled", True),
        "trigger": body["trigger"],
        "steps": body["steps"],
        "createdDate": answer["createdDate"],
        "updatedDate": answer["updatedDate"],
    }


class TestWorkflowsCrud:
    async def test_create_answers_the_stored_workflow(self, api: Api) -> None:
        message_id = await api.message("email")
        body = workflow(message_id)

        response = await api.post("/api/v1/workflows", body)

        assert response.status_code == 200
        answer = response.json()
        assert answer == stored_workflow(answer["id"], body, answer)
        assert ISO_DATE.fullmatch(answer["createdDate"])
        assert ISO_DATE.fullmatch(answer["updatedDate"])

    async def test_get_and_list(self, api: Api) -> None:
        message_id = await api.message("email")
        first = await api.ok("POST", "/api/v1/workflows", workflow(message_id))
        second = await api.ok(
            "POST",
            "/api/v1/workflows",
            {"name": "Tagged", "trigger": {"tag": "VIP"}, "steps": [{"type": "add_tag", "tag": "Seen"}]},
        )

        assert await api.ok("GET", f"/api/v1/workflows/{first['id']}") == first
        assert await api.ok("GET", "/api/v1/workflows") == [first, second]
        assert second["enabled"] is True
        assert second["trigger"] == {"tag": "VIP"}

    async def test_put_replaces(self, api: Api) -> None:
        message_id = await api.message("sms")
        created = await api.ok("POST", "/api/v1/workflows", workflow(message_id))
        replacement = {
            "name": "Renamed",
            "enabled": False,
            "trigger": {"tag": "Applied promo code Summer"},
            "steps": [{"type": "send", "message_id": message_id}],
        }

        response = await api.put(f"/api/v1/workflows/{created['id']}", replacement)

        assert response.status_code == 200
        answer = response.json()
        assert answer == stored_workflow(created["id"], replacement, answer)
        assert answer["createdDate"] == created["createdDate"]
        assert await api.ok("GET", f"/api/v1/workflows/{created['id']}") == answer

    async def test_put_validates_like_post(self, api: Api) -> None:
        message_id = await api.message("email")
        created = await api.ok("POST", "/api/v1/workflows", workflow(message_id))

        response = await api.put(f"/api/v1/workflows/{created['id']}", {**workflow(message_id), "steps": []})

        assert response.status_code == 400
        assert await api.ok("GET", f"/api/v1/workflows/{created['id']}") == created

    async def test_delete_then_get_is_404(self, api: Api) -> None:
        message_id = await api.message("email")
        created = await api.ok("POST", "/api/v1/workflows", workflow(message_id))

        deleted = await api.delete(f"/api/v1/workflows/{created['id']}")
        response = await api.get(f"/api/v1/workflows/{created['id']}")

        assert (deleted.status_code, deleted.content) == (200, b"")
        assert response.status_code == 404
        assert response.json() == not_found(f"workflow {created['id']} not found")
        assert await api.ok("GET", "/api/v1/workflows") == []
        assert (await api.delete(f"/api/v1/workflows/{created['id']}")).status_code == 404
        assert (await api.put(f"/api/v1/workflows/{created['id']}", workflow(message_id))).status_code == 404

    async def test_unknown_id_is_404(self, api: Api) -> None:
        response = await api.get("/api/v1/workflows/424242")

        assert response.status_code == 404
        assert response.json() == not_found("workflow 424242 not found")

    async def test_trailing_slashes(self, api: Api) -> None:
        message_id = await api.message("email")
        created = await api.post("/api/v1/workflows/", workflow(message_id))
        workflow_id = created.json()["id"]

        responses = [
            created,
            await api.get("/api/v1/workflows/"),
            await api.get(f"/api/v1/workflows/{workflow_id}/"),
            await api.put(f"/api/v1/workflows/{workflow_id}/", workflow(message_id, name="Again")),
            await api.delete(f"/api/v1/workflows/{workflow_id}/"),
        ]

        assert [r.status_code for r in responses] == [200] * 5

    @pytest.mark.parametrize(
        ("step", "field"),
        [
            pytest.param({"type": "issue_promocode", "as": "code"}, "steps.0", id="issue-without-group"),
            pytest.param(
                {"type": "issue_promocode", "group": ""}, "steps.0.group", id="issue-with-empty-group"
            ),
            pytest.param({"type": "send", "to_param": "EmailAddress"}, "steps.0", id="send-without-message"),
            pytest.param(
                {"type": "send", "message_id": "three"}, "steps.0.message_id", id="send-message-not-a-number"
            ),
            pytest.param({"type": "add_tag"}, "steps.0", id="add-tag-without-tag"),
            pytest.param({"type": "add_tag", "tag": ""}, "steps.0.tag", id="add-tag-empty"),
            pytest.param({"type": "wait"}, "steps.0", id="wait-without-seconds"),
            pytest.param({"type": "wait", "seconds": -1}, "steps.0.seconds", id="wait-negative"),
            pytest.param({"type": "wait", "seconds": "soon"}, "steps.0.seconds", id="wait-not-a-number"),
            pytest.param({"type": "launch_rocket"}, "steps.0.type", id="unknown-type"),
            pytest.param({"group": "Summer"}, "steps.0.type", id="no-type"),
            pytest.param(
                {"type": "add_tag", "tag": "x", "colour": "red"}, "steps.0.colour", id="unknown-field"
            ),
        ],
    )
    async def test_an_invalid_step_is_400_naming_it(self, api: Api, step: dict[str, Any], field: str) -> None:
        body = {"name": "W", "trigger": {"event": "e"}, "steps": [step]}

        response = await api.post("/api/v1/workflows", body)

        assert response.status_code == 400
        answer = response.json()
        assert (answer["field"], answer["status_code"]) == (field, -400)
        assert await api.ok("GET", "/api/v1/workflows") == []

    @pytest.mark.parametrize("step_type", ["issue_promocode", "send", "add_tag", "wait"])
    async def test_each_step_type_names_what_it_needs(self, api: Api, step_type: str) -> None:
        needs = {"issue_promocode": "group", "send": "message_id", "add_tag": "tag", "wait": "seconds"}[
            step_type
        ]

        response = await api.post(
            "/api/v1/workflows", {"name": "W", "trigger": {"event": "e"}, "steps": [{"type": step_type}]}
        )

        assert response.status_code == 400
        assert response.json() == bad_request(
            f"steps.0: Value error, a {step_type} step needs {needs!r}", "steps.0"
        )

    @pytest.mark.parametrize(
        "trigger",
        [
            pytest.param({"event": "e", "tag": "t"}, id="both"),
            pytest.param({}, id="neither"),
            pytest.param({"event": None, "tag": None}, id="both-null"),
        ],
    )
    async def test_trigger_must_be_exactly_one_of_event_and_tag(
        self, api: Api, trigger: dict[str, Any]
    ) -> None:
        body = {"name": "W", "trigger": trigger, "steps": [{"type": "wait", "seconds": 1}]}

        response = await api.post("/api/v1/workflows", body)

        assert response.status_code == 400
        assert response.json() == bad_request(
            'trigger: Value error, a trigger is {"event": KEY} or {"tag": NAME}', "trigger"
        )

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            pytest.param(
                {"name": "W", "steps": [{"type": "wait", "seconds": 1}]}, "trigger", id="no-trigger"
            ),
            pytest.param({"name": "W", "trigger": {"event": "e"}, "steps": []}, "steps", id="no-steps"),
            pytest.param({"name": "W", "trigger": {"event": "e"}}, "steps", id="steps-missing"),
            pytest.param(
                {"trigger": {"event": "e"}, "steps": [{"type": "wait", "seconds": 1}]}, "name", id="no-name"
            ),
            pytest.param(
                {"name": "W", "trigger": {"segment": "x"}, "steps": [{"type": "wait", "seconds": 1}]},
                "trigger.segment",
                id="unknown-trigger",
            ),
            pytest.param(
                {"name": "W", "trigger": {"event": "e" * 101}, "steps": [{"type": "wait", "seconds": 1}]},
                "trigger.event",
                id="event-key-too-long",
            ),
        ],
    )
    async def test_an_invalid_workflow_is_400_naming_the_field(
        self, api: Api, body: dict[str, Any], field: str
    ) -> None:
        response = await api.post("/api/v1/workflows", body)

        assert response.status_code == 400
        assert response.json()["field"] == field

    async def test_a_send_step_with_an_unknown_message_is_400(self, api: Api) -> None:
        body = {
            "name": "W",
            "trigger": {"event": "e"},
            "steps": [{"type": "wait", "seconds": 1}, {"type": "send", "message_id": 999999}],
        }

        response = await api.post("/api/v1/workflows", body)

        assert response.status_code == 400
        assert response.json() == bad_request(
            "steps.1.message_id: message 999999 not found", "steps.1.message_id"
        )
        assert await api.ok("GET", "/api/v1/workflows") == []

    async def test_a_send_step_with_a_deleted_message_is_400(self, api: Api) -> None:
        message_id = await api.message("email")
        await api.delete(f"/api/v1/messages/{message_id}")

        response = await api.post("/api/v1/workflows", workflow(message_id))

        assert response.status_code == 400
        assert response.json()["field"] == "steps.1.message_id"

    async def test_put_checks_send_steps_messages_too(self, api: Api) -> None:
        message_id = await api.message("email")
        created = await api.ok("POST", "/api/v1/workflows", workflow(message_id))

        response = await api.put(f"/api/v1/workflows/{created['id']}", workflow(message_id + 1000))

        assert response.status_code == 400
        assert response.json()["field"] == "steps.1.message_id"


# ------------------------------------------------------------------------------------------------
# Partners never see each other


class TestPartnerIsolation:
    async def test_another_partners_message_is_404(self, api: Api, other_api: Api) -> None:
        message_id = await api.message("email")

        got = await other_api.get(f"/api/v1/messages/{message_id}")
        put = await other_api.put(f"/api/v1/messages/{message_id}", EMAIL)
        deleted = await other_api.delete(f"/api/v1/messages/{message_id}")

        assert [r.status_code for r in (got, put, deleted)] == [404, 404, 404]
        assert got.json() == not_found(f"message {message_id} not found")
        assert await other_api.ok("GET", "/api/v1/messages") == []
        assert await api.ok("GET", f"/api/v1/messages/{message_id}") == {
            "id": message_id,
            "type": "email",
            **EMAIL,
        }

    async def test_another_partners_message_cannot_be_sent(
        self, api: Api, other_api: Api, database: Database
    ) -> None:
        message_id = await api.message("email")

        response = await other_api.post(
            f"/api/v1/message/{message_id}/smartsend", {"recipients": [recipient("a@example.com")]}
        )

        assert response.status_code == 404
        async with database.reading() as session:
            assert list(await session.scalars(select(Delivery))) == []

    async def test_another_partners_request_ids_are_not_found(self, api: Api, other_api: Api) -> None:
        message_id = await api.message("email")
        answer = await api.ok(
            "POST", f"/api/v1/message/{message_id}/smartsend", {"recipients": [recipient("a@example.com")]}
        )
        request_id = answer["results"][0]["requestId"]

        theirs = await other_api.ok("GET", f"/api/v1/message/status?ids={request_id}")

        assert theirs == {"results": [{"requestId": request_id, "status": "not found"}]}

    async def test_another_partners_workflow_is_404(
        self, api: Api, other_api: Api, database: Database
    ) -> None:
        message_id = await api.message("email")
        created = await api.ok("POST", "/api/v1/workflows", workflow(message_id))
        theirs = await other_api.message("email")

        got = await other_api.get(f"/api/v1/workflows/{created['id']}")
        put = await other_api.put(f"/api/v1/workflows/{created['id']}", workflow(theirs))
        deleted = await other_api.delete(f"/api/v1/workflows/{created['id']}")

        assert [r.status_code for r in (got, put, deleted)] == [404, 404, 404]
        assert await other_api.ok("GET", "/api/v1/workflows") == []
        assert await api.ok("GET", f"/api/v1/workflows/{created['id']}") == created
        async with database.reading() as session:
            stored = await session.get(Workflow, created["id"])
        assert stored is not None
        assert stored.deleted_at is None

    async def test_a_workflow_cannot_send_another_partners_message(self, api: Api, other_api: Api) -> None:
        theirs = await other_api.message("email")

        response = await api.post("/api/v1/workflows", workflow(theirs))

        assert response.status_code == 400
        assert response.json()["field"] == "steps.1.message_id"

    async def test_deleting_leaves_the_row_for_past_deliveries(self, api: Api, database: Database) -> None:
        message_id = await api.message("email")
        await api.delete(f"/api/v1/messages/{message_id}")

        async with database.reading() as session:
            stored = await session.get(Message, message_id)
        assert stored is not None
        assert stored.deleted_at is not None


class TestIdsInPaths:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/api/v1/messages/abc"),
            ("PUT", "/api/v1/messages/abc"),
            ("DELETE", "/api/v1/messages/1.5"),
            ("GET", "/api/v1/messages/99999999999999999999"),
            ("POST", "/api/v1/message/abc/smartsend"),
            ("POST", "/api/v1/message/99999999999999999999/smartsend/"),
            ("GET", "/api/v1/workflows/abc"),
            ("PUT", "/api/v1/workflows/-1"),
            ("DELETE", "/api/v1/workflows/99999999999999999999"),
        ],
    )
    async def test_an_id_that_cannot_be_stored_is_an_unknown_id(
        self, api: Api, method: str, path: str
    ) -> None:
        response = await api.call(method, path, json={})

        assert response.status_code == 404
        body = response.json()
        assert (sorted(body), body["status_code"]) == (["error", "status_code"], -404)

    async def test_the_largest_stored_id_is_looked_up(self, api: Api) -> None:
        response = await api.get("/api/v1/messages/999999999999999999")

        assert response.status_code == 404
        assert response.json() == not_found("message 999999999999999999 not found")
