"""The old SailPlay client, replayed exactly (SPEC §3).

"Existing SailPlay clients log in at /api/v1/login/, send every call as a GET whose parameters sit
in the query string and again in a urlencoded body, always with a trailing slash and with
store_department_key and pin_code on every call, and treat any answer other than HTTP 200 as a
transport failure. All of that must work."
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from conftest import LoyaltyClient
from tessera.tenancy import service as tenancy

PHONE = "79001234567"
FORM = {"content-type": "application/x-www-form-urlencoded"}
TOKEN = re.compile(r"[0-9a-f]{40}")


class OldClient:
    """GET, parameters in the query string and again in a urlencoded body, trailing slash, full
    credentials on every call; anything but HTTP 200 is a transport failure."""

    def __init__(self, http: httpx.AsyncClient, department: tenancy.NewDepartment) -> None:
        self.http = http
        self.department = department
        self.token: str | None = None

    def credentials(self) -> dict[str, Any]:
        return {
            "store_department_id": self.department.store_department_id,
            "store_department_key": self.department.store_department_key,
            "pin_code": self.department.pin_code,
        }

    async def get(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.request("GET", url, params=params, content=urlencode(params), headers=FORM)
        assert response.status_code == 200, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    async def login(self) -> dict[str, Any]:
        body = await self.get("/api/v1/login/", self.credentials())
        if body.get("status") == "ok":
            self.token = body["token"]
        return body

    async def call(self, path: str, **params: Any) -> dict[str, Any]:
        full = {**self.credentials(), "token": self.token, **params}
        return await self.get(f"/api/v2/{path}/", full)


@pytest.fixture
async def old(client: httpx.AsyncClient, department: tenancy.NewDepartment) -> OldClient:
    old = OldClient(client, department)
    assert (await old.login())["status"] == "ok"
    return old


async def upload(loyalty: LoyaltyClient, name: str, *numbers: str, **options: str) -> dict[str, Any]:
    """Uploads are an admin's job (multipart POST), not the old client's."""
    body = await loyalty.call(
        "promocodes/numbers/add",
        files={"file": ("codes.txt", "".join(f"{n}\n" for n in numbers).encode(), "text/plain")},
        name=name,
        **options,
    )
    assert body["status"] == "ok", body
    group: dict[str, Any] = body["group"]
    return group


class TestOldClientLogin:
    async def test_login_at_v1_with_doubled_parameters(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        body = await OldClient(client, department).login()

        assert body == {"status": "ok", "token": body["token"], "pin_codes": [department.pin_code]}
        assert TOKEN.fullmatch(body["token"])

    async def test_wrong_credentials_answer_http_200(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        old = OldClient(client, department)
        old.department = tenancy.NewDepartment(
            department.partner_id,
            department.store_department_id,
            department.store_department_key + "1",
            department.pin_code,
        )

        body = await old.login()

        assert body == {
            "status": "error",
            "status_code": -2,
            "message": "Data not found with provided store_department_key, store_department_id and pin_code",
        }


class TestOldClientCustomers:
    async def test_users_add(self, old: OldClient) -> None:
        body = await old.call("users/add", user_phone="+7 (900) 123-45-67", email="Anna@Example.com")

        assert body == {
            "status": "ok",
            "id": body["id"],
            "phone": PHONE,
            "email": "anna@example.com",
            "origin_user_id": None,
            "first_name": None,
            "last_name": None,
            "middle_name": None,
            "birth_date": None,
            "sex": None,
        }

    async def test_users_info(self, old: OldClient) -> None:
        added = await old.call("users/add", user_phone=PHONE, first_name="Anna")

        body = await old.call("users/info", user_phone=PHONE)

        assert body == added

    async def test_unknown_user_answers_http_200(self, old: OldClient) -> None:
        body = await old.call("users/info", user_phone=PHONE)

        assert body == {"status": "error", "status_code": -4000, "message": "User not found"}

    async def test_invalid_phone_answers_http_200(self, old: OldClient) -> None:
        body = await old.call("users/add", user_phone="123")

        assert body == {"status": "error", "status_code": -1001, "message": "Phone is not valid"}

    async def test_taken_email_answers_http_200(self, old: OldClient) -> None:
        await old.call("users/add", email="anna@example.com")
        await old.call("users/add", user_phone=PHONE)

        body = await old.call("users/add", user_phone=PHONE, email="anna@example.com")

        assert body == {
            "status": "error",
            "status_code": -200010,
            "message": "Email is already used by another user",
        }

    async def test_tags_add_list_delete(self, old: OldClient) -> None:
        await old.call("users/add", user_phone=PHONE)

        added = await old.call("users/tags/add", user_phone=PHONE, tags="VIP,Gold")
        listed = await old.call("users/tags/list", user_phone=PHONE)
        deleted = await old.call("users/tags/delete", user_phone=PHONE, tags="Gold")
        remaining = await old.call("users/tags/list", user_phone=PHONE)

        assert added == {"status": "ok"}
        assert [t["name"] for t in listed["tags"]] == ["VIP", "Gold"]
        assert deleted == {"status": "ok", "deleted_count": 1}
        assert [t["name"] for t in remaining["tags"]] == ["VIP"]


class TestOldClientPromocodes:
    @pytest.fixture
    async def spring(self, old: OldClient, loyalty: LoyaltyClient) -> dict[str, Any]:
        await old.call("users/add", user_phone=PHONE)
        return await upload(loyalty, "Spring", "P-1", "P-2", type="2")

    async def test_groups_list(self, old: OldClient, loyalty: LoyaltyClient, spring: dict[str, Any]) -> None:
        body = await old.call("promocodes/groups/list")

        assert body == {"status": "ok", "groups": {"enabled": [spring], "disabled": []}}

    async def test_info(self, old: OldClient, loyalty: LoyaltyClient, spring: dict[str, Any]) -> None:
        body = await old.call("promocodes/info", number="P-1")

        assert body == await loyalty.call("promocodes/info", number="P-1")
        assert [(n["number"], n["group"]["name"]) for n in body["numbers"]] == [("P-1", "Spring")]

    async def test_unknown_number_answers_http_200(self, old: OldClient, spring: dict[str, Any]) -> None:
        body = await old.call("promocodes/info", number="P-9")

        assert body == {"status": "error", "status_code": -4100, "message": "Number not found"}

    async def test_activate_then_again(self, old: OldClient, spring: dict[str, Any]) -> None:
        first = await old.call("promocodes/activate", user_phone=PHONE, group_name="Spring", number="P-2")
        again = await old.call("promocodes/activate", user_phone=PHONE, group_name="Spring", number="P-2")

        assert first == {"status": "ok", "promocode_status": 2}
        assert again == {"status": "error", "status_code": -4104, "message": "Promocode already activated"}

    async def test_issue_until_exhausted(self, old: OldClient, spring: dict[str, Any]) -> None:
        first = await old.call("promocodes/issue", user_phone=PHONE, group_name="Spring")
        second = await old.call("promocodes/issue", user_phone=PHONE, group_name="Spring")
        exhausted = await old.call("promocodes/issue", user_phone=PHONE, group_name="Spring")

        assert (first["status"], first["promocode"]["number"]) == ("ok", "P-1")
        assert (second["status"], second["promocode"]["number"]) == ("ok", "P-2")
        assert exhausted == {
            "status": "error",
            "status_code": -4105,
            "message": "No free promocodes in group",
        }

    async def test_list_for_user(self, old: OldClient, spring: dict[str, Any]) -> None:
        await old.call("promocodes/issue", user_phone=PHONE, group_name="Spring")
        await old.call("promocodes/activate", user_phone=PHONE, group_name="Spring", number="P-2")

        body = await old.call("promocodes/list-for-user", user_phone=PHONE)

        assert body["status"] == "ok"
        assert [(c["number"], c["activated"]) for c in body["promocodes"]] == [("P-1", False), ("P-2", True)]

    async def test_disabled_group_answers_http_200(
        self, old: OldClient, loyalty: LoyaltyClient, spring: dict[str, Any]
    ) -> None:
        await loyalty.call("promocodes/groups/edit", group_id=spring["id"], enabled="0")

        body = await old.call("promocodes/issue", user_phone=PHONE, group_name="Spring")

        assert body == {"status": "error", "status_code": -4103, "message": "Promocode group is disabled"}


class TestOldClientErrorsAreHttp200:
    async def test_bad_token_answers_http_200(self, old: OldClient) -> None:
        old.token = "f" * 40 if old.token != "f" * 40 else "e" * 40

        body = await old.call("users/info", user_phone=PHONE)

        assert body == {
            "status": "error",
            "status_code": -7,
            "message": "Permission denied. Provide auth token and store_department_id",
        }

    async def test_missing_parameter_answers_http_200(self, old: OldClient) -> None:
        body = await old.call("promocodes/info")

        assert body == {
            "status": "error",
            "status_code": -1000,
            "message": "Provide required {'field': 'number'}",
        }

    async def test_duplicate_upload_answers_http_200(self, loyalty: LoyaltyClient) -> None:
        await upload(loyalty, "Spring", "P-1")

        body = await loyalty.call(
            "promocodes/numbers/add", files={"file": ("codes.txt", b"P-1\n", "text/plain")}, name="Spring"
        )

        assert body == {
            "status": "error",
            "status_code": -4202,
            "message": "Duplicate numbers in file",
            "duplicates": ["P-1"],
        }


class TestParameterSources:
    async def test_each_doubled_value_is_read_once(self, old: OldClient) -> None:
        await old.call("users/add", user_phone=PHONE)

        await old.call("users/tags/add", user_phone=PHONE, tags="VIP")
        body = await old.call("users/tags/list", user_phone=PHONE)

        assert [t["name"] for t in body["tags"]] == ["VIP"]

    async def test_query_string_wins_over_a_differing_body(
        self, old: OldClient, loyalty: LoyaltyClient
    ) -> None:
        await upload(loyalty, "Spring", "QUERY", "BODY")
        auth = old.credentials() | {"token": old.token}

        response = await old.http.request(
            "GET",
            "/api/v2/promocodes/info/",
            params={**auth, "number": "QUERY"},
            content=urlencode({**auth, "number": "BODY"}),
            headers=FORM,
        )

        assert response.status_code == 200
        assert [n["number"] for n in response.json()["numbers"]] == ["QUERY"]

    async def test_credentials_sent_on_every_call_are_ignored_even_when_stale(self, old: OldClient) -> None:
        await old.call("users/add", user_phone=PHONE)

        body = await old.call("users/info", user_phone=PHONE, store_department_key="1", pin_code="0")

        assert (body["status"], body["phone"]) == ("ok", PHONE)

    async def test_json_body_on_post(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        login = await client.post("/api/v1/login/", json=OldClient(client, department).credentials())
        token = login.json()["token"]
        auth = {"token": token, "store_department_id": department.store_department_id}

        added = await client.post("/api/v2/users/add/", json={**auth, "user_phone": "+7 900 123 45 67"})
        info = await client.post("/api/v2/users/info/", json={**auth, "user_phone": PHONE})

        assert added.status_code == info.status_code == 200
        assert added.json()["phone"] == PHONE
        assert info.json() == added.json()

    async def test_json_body_with_non_string_values(self, old: OldClient, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v2/users/add/",
            json={
                "token": old.token,
                "store_department_id": old.department.store_department_id,
                "user_phone": int(PHONE),
                "sex": 1,
            },
        )

        body = response.json()
        assert (body["status"], body["phone"], body["sex"]) == ("ok", PHONE, 1)

    async def test_get_with_query_string_only(self, old: OldClient, client: httpx.AsyncClient) -> None:
        await old.call("users/add", user_phone=PHONE)

        response = await client.get(
            "/api/v2/users/info/",
            params={
                "token": old.token,
                "store_department_id": old.department.store_department_id,
                "phone": PHONE,
            },
        )

        assert response.status_code == 200
        assert response.json()["phone"] == PHONE


ENDPOINTS = [
    "login",
    "users/add",
    "users/info",
    "users/tags/add",
    "users/tags/list",
    "users/tags/delete",
    "promocodes/groups/list",
    "promocodes/groups/edit",
    "promocodes/info",
    "promocodes/search",
    "promocodes/activate",
    "promocodes/issue",
    "promocodes/list-for-user",
    "promocodes/numbers/add",
]


class TestPaths:
    @pytest.mark.parametrize("method", ["GET", "POST"])
    @pytest.mark.parametrize("path", ENDPOINTS)
    async def test_endpoint_answers_without_trailing_slash_and_without_redirect(
        self, old: OldClient, method: str, path: str
    ) -> None:
        params = old.credentials() | {"token": old.token}
        with_slash = await old.http.request(method, f"/api/v2/{path}/", params=params)
        response = await old.http.request(method, f"/api/v2/{path}", params=params)

        assert response.status_code == 200
        assert "location" not in response.headers
        body = response.json()
        # The endpoint itself answered, past authentication: not an unknown path, a refused
        # method or a refused token; and just as it answers with the slash (a new token aside).
        assert body["status"] == "ok" or body["status_code"] not in (-404, -405, -7), body
        assert {k: v for k, v in body.items() if k != "token"} == {
            k: v for k, v in with_slash.json().items() if k != "token"
        }

    @pytest.mark.parametrize("method", ["GET", "POST"])
    async def test_v1_login_answers_without_trailing_slash(
        self, client: httpx.AsyncClient, department: tenancy.NewDepartment, method: str
    ) -> None:
        response = await client.request(
            method, "/api/v1/login", params=OldClient(client, department).credentials()
        )

        assert response.status_code == 200
        assert response.json()["status"] == "ok"

    async def test_no_trailing_slash_with_doubled_parameters(self, old: OldClient) -> None:
        await old.call("users/add", user_phone=PHONE)

        body = await old.get(
            "/api/v2/users/info", old.credentials() | {"token": old.token, "user_phone": PHONE}
        )

        assert (body["status"], body["phone"]) == ("ok", PHONE)

    @pytest.mark.parametrize("method", ["GET", "POST"])
    @pytest.mark.parametrize(
        "path", ["/api/v2/nope/", "/api/v2/nope", "/api/v2/promocodes/", "/api/v2/users/info/x/"]
    )
    async def test_unknown_path_is_a_json_404(
        self, client: httpx.AsyncClient, method: str, path: str
    ) -> None:
        response = await client.request(method, path)

        assert response.status_code == 404
        assert response.json() == {"status": "error", "status_code": -404, "message": f"Unknown path {path}"}


class TestNulCharacters:
    async def test_a_nul_in_a_parameter_is_a_clear_error_not_a_database_failure(
        self, loyalty: LoyaltyClient
    ) -> None:
        body = await loyalty.call("promocodes/info", number="AB\x00C")

        assert body == {
            "status": "error",
            "status_code": -1000,
            "message": "Invalid value of number: contains a NUL character",
        }
