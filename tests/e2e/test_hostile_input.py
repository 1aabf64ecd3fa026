"""Hostile parameters get a clear error in the face's shape, never a 500 (the reproducers of the
hostile-input issue): numbers past the 64-bit columns, amounts past NUMERIC(14, 2), JSON nested
deeper than the parser goes, ids in paths, and a handler that fails unexpectedly."""

from __future__ import annotations

import httpx
import pytest

from conftest import LoyaltyClient
from esputnik_client import new_key
from tessera.db import Database
from tessera.tenancy import service as tenancy

HUGE = "99999999999999999999"
HUGE_AMOUNT = {"discount_value": "1e300"}


async def test_a_huge_department_id_before_authentication_is_permission_denied(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/api/v2/promocodes/groups/list/", params={"token": "x", "store_department_id": HUGE}
    )
    assert response.status_code == 200
    assert response.json()["status_code"] == -7


async def test_a_huge_partner_id_in_an_api_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/messages", headers={"Authorization": f"Bearer tsk_{HUGE}_x"})
    assert response.status_code == 401
    assert response.json()["status_code"] == -401


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("promocodes/groups/edit", {"group_id": HUGE}, "group_id"),
        ("promocodes/groups/edit", {"group_id": "1", "low_stock_warning": HUGE}, "low_stock_warning"),
        (
            "promocodes/groups/edit",
            {"group_id": "1", "discount_type": "fixed", "discount_value": "1e300"},
            None,
        ),
        ("coupons/numbers/use", {"number": "X", "target_dep_id": HUGE}, "target_dep_id"),
        ("coupons/groups/list", {"target_dep_id": f"-{HUGE}"}, "target_dep_id"),
        ("purchases/get", {"purchase_id": HUGE}, "purchase_id"),
    ],
)
async def test_out_of_range_numbers_are_invalid_parameters(
    loyalty: LoyaltyClient, path: str, params: dict[str, str], field: str | None
) -> None:
    body = await loyalty.call(path, **params)
    assert body["status"] == "error" and body["status_code"] == -1000, body
    if field is not None:
        assert field in body["message"], body


async def test_json_nested_too_deeply_is_an_invalid_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v2/login/", content="[" * 100_000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["status_code"] == -1000


async def test_an_id_in_a_path_too_long_for_a_bigint_is_an_unknown_path(
    client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
) -> None:
    key = await new_key(database, department.partner_id)
    response = await client.get(f"/api/v1/messages/{HUGE}", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404
    assert response.json()["status_code"] == -404


async def test_an_unexpected_failure_answers_the_faces_json_with_a_request_id(
    loyalty: LoyaltyClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.promocodes import service

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "find", broken)
    response = await loyalty.http.post(
        "/api/v2/promocodes/info/",
        data={**loyalty.auth(), "number": "X"},
        headers={"X-Request-Id": "req-42"},
    )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "req-42"
    body = response.json()
    assert body["status"] == "error" and body["status_code"] == -500 and body["request_id"] == "req-42"
    assert "a bug" not in response.text


async def test_a_cart_position_number_past_64_bits_is_an_invalid_cart(loyalty: LoyaltyClient) -> None:
    cart = f'{{"{HUGE}": {{"sku": "A", "price": 10, "quantity": 1}}}}'
    body = await loyalty.call("marketing-actions/calc", cart=cart)
    assert body["status"] == "error" and body["status_code"] == -1000, body


async def test_an_event_param_past_64_bits_is_stored(
    client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
) -> None:
    key = await new_key(database, department.partner_id)
    event = {"eventTypeKey": "big", "keyValue": "k-1", "params": [{"name": "n", "value": int(HUGE)}]}
    response = await client.post("/api/v2/event", json=event, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "query",
    ["ids=a%00b", "ids=ok&ids=%00", "email=a%00@example.com"],
)
async def test_a_nul_in_a_messaging_query_is_a_400_not_a_database_failure(
    client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment, query: str
) -> None:
    """Found by schemathesis on PostgreSQL, which cannot hold U+0000: message/status answered 500."""
    key = await new_key(database, department.partner_id)
    path = "/api/v1/contacts" if query.startswith("email") else "/api/v1/message/status"
    response = await client.get(f"{path}?{query}", headers={"Authorization": f"Bearer {key}"})
    assert (response.status_code, response.json()["field"]) == (400, "query"), response.text


async def test_a_malformed_multipart_body_is_a_400_in_the_faces_shape(loyalty: LoyaltyClient) -> None:
    response = await loyalty.http.post(
        "/api/v2/promocodes/numbers/add/",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--x--\r\n",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "error" and body["status_code"] == -400, body
