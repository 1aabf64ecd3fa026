"""eSputnik's contact calls over the loyalty face's customers (SPEC §4, §8).

A contact is a customer: its email channel is the customer's email, its sms channel the phone,
``externalCustomerId`` the ``origin_user_id``. What one face writes, the other reads.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from conftest import LoyaltyClient
from esputnik_client import EsputnikClient, events_of, new_key
from tessera.config import Settings
from tessera.customers.models import CustomerTag
from tessera.db import Database
from tessera.messaging.models import Delivery, WorkflowRun
from tessera.messaging.worker import Worker
from tessera.tenancy import service as tenancy

EMAIL = "anna@example.com"
PHONE = "79001234567"
USER_NOT_FOUND = {"status": "error", "status_code": -4000, "message": "User not found"}
ANNA = {
    "channels": [
        {"type": "email", "value": "Anna@Example.com"},
        {"type": "sms", "value": "+7 (900) 123-45-67"},
    ],
    "firstName": "Anna",
    "lastName": "Petrova",
    "externalCustomerId": "crm-42",
}


def bad_request(error: str, field: str) -> dict[str, Any]:
    return {"error": error, "status_code": -400, "field": field}


def not_found(error: str) -> dict[str, Any]:
    return {"error": error, "status_code": -404}


def user(**fields: Any) -> dict[str, Any]:
    """A users/info body: every field present, absent ones null."""
    empty = dict.fromkeys(
        ("phone", "email", "origin_user_id", "first_name", "last_name", "middle_name", "birth_date", "sex")
    )
    return {"status": "ok", **empty, **fields}


def contact(contact_id: int, **fields: Any) -> dict[str, Any]:
    """A contact as GET /contact/{id} answers it."""
    channels = []
    if fields.get("email"):
        channels.append({"type": "email", "value": fields["email"]})
    if fields.get("sms"):
        channels.append({"type": "sms", "value": fields["sms"]})
    return {
        "id": contact_id,
        "firstName": fields.get("firstName"),
        "lastName": fields.get("lastName"),
        "channels": channels,
        "externalCustomerId": fields.get("externalCustomerId"),
    }


def channels(email: str | None = None, sms: str | None = None) -> list[dict[str, str]]:
    found = [("email", email), ("sms", sms)]
    return [{"type": kind, "value": value} for kind, value in found if value is not None]


class Api(EsputnikClient):
    async def add(self, body: dict[str, Any]) -> int:
        contact_id: int = (await self.ok("POST", "/api/v1/contact", body))["id"]
        return contact_id


@pytest.fixture
async def api(client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment) -> Api:
    return Api(client, department.partner_id, await new_key(database, department.partner_id))


@pytest.fixture
async def other_api(client: httpx.AsyncClient, database: Database) -> Api:
    async with database.transaction() as session:
        other = await tenancy.create_department(session, "Another chain")
    return Api(client, other.partner_id, await new_key(database, other.partner_id))


async def runs_of(database: Database, partner_id: int) -> list[WorkflowRun]:
    async with database.reading() as session:
        rows = await session.scalars(
            select(WorkflowRun).where(WorkflowRun.partner_id == partner_id).order_by(WorkflowRun.id)
        )
        return list(rows)


class TestContactAdd:
    async def test_add_answers_the_id_of_the_loyalty_customer(self, api: Api, loyalty: LoyaltyClient) -> None:
        response = await api.call("POST", "/api/v1/contact", json=ANNA)

        assert response.status_code == 200
        contact_id = response.json()["id"]
        assert response.json() == {"id": contact_id}
        expected = user(
            id=contact_id,
            phone=PHONE,
            email=EMAIL,
            origin_user_id="crm-42",
            first_name="Anna",
            last_name="Petrova",
        )
        assert await loyalty.call("users/info", origin_user_id="crm-42") == expected
        assert await loyalty.call("users/info", email="ANNA@example.com") == expected
        assert await loyalty.call("users/info", user_phone=PHONE) == expected

    async def test_a_loyalty_customer_is_found_as_a_contact(self, api: Api, loyalty: LoyaltyClient) -> None:
        added = await loyalty.call("users/add", user_phone=PHONE, email=EMAIL, first_name="Anna")

        found = await api.ok("GET", "/api/v1/contacts", params={"email": EMAIL})

        assert found == [contact(added["id"], email=EMAIL, sms=PHONE, firstName="Anna")]

    async def test_adding_by_a_known_email_updates_that_contact(
        self, api: Api, loyalty: LoyaltyClient
    ) -> None:
        contact_id = await api.add(
            {"channels": channels(email=EMAIL), "firstName": "Anna", "lastName": "Petrova"}
        )

        again = await api.add(
            {"channels": channels(email="ANNA@EXAMPLE.COM", sms=PHONE), "firstName": "Anne"}
        )

        assert again == contact_id
        assert await api.ok("GET", f"/api/v1/contact/{contact_id}") == contact(
            contact_id, email=EMAIL, sms=PHONE, firstName="Anne", lastName="Petrova"
        )
        assert (await loyalty.call("users/info", user_phone=PHONE))["id"] == contact_id

    async def test_adding_by_a_known_external_id_updates_its_channels(self, api: Api) -> None:
        contact_id = await api.add({"channels": channels(email=EMAIL), "externalCustomerId": "crm-42"})

        again = await api.add({"channels": channels(email="new@example.com"), "externalCustomerId": "crm-42"})

        assert again == contact_id
        assert await api.ok("GET", f"/api/v1/contact/{contact_id}") == contact(
            contact_id, email="new@example.com", externalCustomerId="crm-42"
        )

    async def test_phone_is_an_alias_of_sms(self, api: Api) -> None:
        contact_id = await api.add({"channels": [{"type": "phone", "value": "+79001234567"}]})

        assert (await api.ok("GET", f"/api/v1/contact/{contact_id}"))["channels"] == [
            {"type": "sms", "value": PHONE}
        ]

    async def test_trailing_slash(self, api: Api) -> None:
        response = await api.call("POST", "/api/v1/contact/", json=ANNA)

        assert response.status_code == 200
        assert set(response.json()) == {"id"}

    async def test_invalid_email_is_400(self, api: Api) -> None:
        response = await api.call(
            "POST", "/api/v1/contact", json={"channels": channels(email="not-an-email")}
        )

        assert response.status_code == 400
        assert response.json() == bad_request("'not-an-email' is not valid email", "channels")

    async def test_invalid_phone_is_400(self, api: Api) -> None:
        response = await api.call("POST", "/api/v1/contact", json={"channels": channels(sms="12")})

        assert response.status_code == 400
        assert response.json() == bad_request("'12' is not a valid phone number", "channels")

    @pytest.mark.parametrize(
        "body", [{}, {"channels": []}, {"firstName": "Anna"}, {"channels": channels(email="")}]
    )
    async def test_no_identifier_is_400(self, api: Api, loyalty: LoyaltyClient, body: dict[str, Any]) -> None:
        response = await api.call("POST", "/api/v1/contact", json=body)

        assert response.status_code == 400
        assert response.json() == bad_request(
            "a contact needs an email or sms channel, or an externalCustomerId", "channels"
        )

    async def test_identifiers_of_two_contacts_is_400_and_changes_nothing(self, api: Api) -> None:
        first = await api.add({"channels": channels(email=EMAIL)})
        second = await api.add({"channels": channels(sms=PHONE)})

        response = await api.call(
            "POST", "/api/v1/contact", json={"channels": channels(email=EMAIL, sms=PHONE), "firstName": "X"}
        )

        assert response.status_code == 400
        assert response.json() == bad_request("Email is already used by another user", "channels")
        assert await api.ok("GET", f"/api/v1/contact/{first}") == contact(first, email=EMAIL)
        assert await api.ok("GET", f"/api/v1/contact/{second}") == contact(second, sms=PHONE)

    async def test_a_nul_character_is_400_on_every_database(self, api: Api) -> None:
        response = await api.call("POST", "/api/v1/contact", json={**ANNA, "firstName": "An\u0000na"})

        assert response.status_code == 400
        assert response.json() == bad_request("the body may not contain NUL characters (\\u0000)", "body")
        assert await api.ok("GET", "/api/v1/contacts", params={"email": EMAIL}) == []

    async def test_body_that_is_not_json_is_400(self, api: Api) -> None:
        response = await api.call(
            "POST", "/api/v1/contact", content=b"{nope", headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 400
        assert response.json()["field"] == "body"


class TestContactById:
    async def test_get_answers_the_contact(self, api: Api) -> None:
        contact_id = await api.add(ANNA)

        response = await api.call("GET", f"/api/v1/contact/{contact_id}")

        assert response.status_code == 200
        assert response.json() == contact(
            contact_id,
            email=EMAIL,
            sms=PHONE,
            firstName="Anna",
            lastName="Petrova",
            externalCustomerId="crm-42",
        )

    async def test_put_replaces_the_whole_contact(self, api: Api, loyalty: LoyaltyClient) -> None:
        contact_id = await api.add(ANNA)
        replacement = {"channels": channels(email="anna.new@example.com"), "firstName": "Ann"}

        response = await api.call("PUT", f"/api/v1/contact/{contact_id}", json=replacement)

        expected = contact(contact_id, email="anna.new@example.com", firstName="Ann")
        assert response.status_code == 200
        assert response.json() == expected
        assert await api.ok("GET", f"/api/v1/contact/{contact_id}") == expected
        assert await loyalty.call("users/info", user_phone=PHONE) == USER_NOT_FOUND
        assert await loyalty.call("users/info", origin_user_id="crm-42") == USER_NOT_FOUND
        assert await loyalty.call("users/info", email="anna.new@example.com") == user(
            id=contact_id, email="anna.new@example.com", first_name="Ann"
        )

    async def test_put_with_another_contacts_channel_is_400(self, api: Api) -> None:
        contact_id = await api.add(ANNA)
        other = await api.add({"channels": channels(email="boris@example.com")})

        response = await api.call(
            "PUT", f"/api/v1/contact/{contact_id}", json={"channels": channels(email="boris@example.com")}
        )

        assert response.status_code == 400
        assert response.json() == bad_request(
            f"email boris@example.com belongs to contact {other}", "channels"
        )
        assert (await api.ok("GET", f"/api/v1/contact/{contact_id}"))["channels"] == channels(EMAIL, PHONE)

    async def test_put_keeping_its_own_channels_is_allowed(self, api: Api) -> None:
        contact_id = await api.add(ANNA)

        answer = await api.ok("PUT", f"/api/v1/contact/{contact_id}", {**ANNA, "lastName": "Ivanova"})

        assert answer["lastName"] == "Ivanova"
        assert answer["channels"] == channels(EMAIL, PHONE)

    async def test_delete_erases_the_contact(
        self, api: Api, loyalty: LoyaltyClient, database: Database
    ) -> None:
        contact_id = await api.add(ANNA)
        await loyalty.call("users/tags/add", email=EMAIL, tags="VIP,Newsletter")

        response = await api.call("DELETE", f"/api/v1/contact/{contact_id}")

        assert (response.status_code, response.content) == (200, b"")
        got = await api.call("GET", f"/api/v1/contact/{contact_id}")
        assert got.status_code == 404
        assert got.json() == not_found(f"contact {contact_id} not found")
        assert await loyalty.call("users/info", email=EMAIL) == USER_NOT_FOUND
        assert await api.ok("GET", "/api/v1/contacts", params={"externalCustomerId": "crm-42"}) == []
        async with database.reading() as session:
            tags = await session.scalars(select(CustomerTag).where(CustomerTag.customer_id == contact_id))
            assert list(tags) == []

    async def test_a_deleted_contact_cannot_be_deleted_or_replaced_again(self, api: Api) -> None:
        contact_id = await api.add(ANNA)
        await api.call("DELETE", f"/api/v1/contact/{contact_id}")

        again = await api.call("DELETE", f"/api/v1/contact/{contact_id}")
        put = await api.call("PUT", f"/api/v1/contact/{contact_id}", json=ANNA)

        assert (again.status_code, put.status_code) == (404, 404)

    async def test_its_identifiers_are_free_again_after_delete(self, api: Api) -> None:
        contact_id = await api.add(ANNA)
        await api.call("DELETE", f"/api/v1/contact/{contact_id}")

        new_id = await api.add(ANNA)

        assert new_id != contact_id

    async def test_unknown_id_is_404(self, api: Api) -> None:
        for method in ("GET", "PUT", "DELETE"):
            response = await api.call(method, "/api/v1/contact/999999", json=ANNA)

            assert response.status_code == 404
            assert response.json() == not_found("contact 999999 not found")

    @pytest.mark.parametrize("contact_id", ["abc", "-1", "99999999999999999999"])
    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    async def test_an_id_that_cannot_be_stored_is_an_unknown_id(
        self, api: Api, method: str, contact_id: str
    ) -> None:
        response = await api.call(method, f"/api/v1/contact/{contact_id}", json=ANNA)

        assert response.status_code == 404
        body = response.json()
        assert (sorted(body), body["status_code"]) == (["error", "status_code"], -404)

    async def test_trailing_slashes(self, api: Api) -> None:
        contact_id = await api.add(ANNA)

        responses = [
            await api.call("GET", f"/api/v1/contact/{contact_id}/"),
            await api.call("PUT", f"/api/v1/contact/{contact_id}/", json=ANNA),
            await api.call("DELETE", f"/api/v1/contact/{contact_id}/"),
        ]

        assert [r.status_code for r in responses] == [200, 200, 200]


class TestContactDeleteByExternalId:
    async def test_removes_the_contact(self, api: Api, loyalty: LoyaltyClient) -> None:
        contact_id = await api.add(ANNA)

        response = await api.call("DELETE", "/api/v1/contact", params={"externalCustomerId": "crm-42"})

        assert (response.status_code, response.content) == (200, b"")
        assert (await api.call("GET", f"/api/v1/contact/{contact_id}")).status_code == 404
        assert await loyalty.call("users/info", email=EMAIL) == USER_NOT_FOUND

    async def test_trailing_slash_and_erase_flag(self, api: Api) -> None:
        await api.add(ANNA)

        response = await api.call("DELETE", "/api/v1/contact/?externalCustomerId=crm-42&erase=true")

        assert response.status_code == 200
        assert await api.ok("GET", "/api/v1/contacts", params={"email": EMAIL}) == []

    async def test_unknown_external_id_is_404(self, api: Api) -> None:
        response = await api.call("DELETE", "/api/v1/contact", params={"externalCustomerId": "nobody"})

        assert response.status_code == 404
        assert response.json() == not_found("no contact with externalCustomerId nobody")

    @pytest.mark.parametrize("query", ["", "?externalCustomerId=", "?externalCustomerId=%20%20"])
    async def test_missing_external_id_is_400(self, api: Api, query: str) -> None:
        response = await api.call("DELETE", f"/api/v1/contact{query}")

        assert response.status_code == 400
        assert response.json() == bad_request("externalCustomerId is required", "externalCustomerId")


class TestContactsBulk:
    async def test_adds_each_contact_in_order(self, api: Api, loyalty: LoyaltyClient) -> None:
        body = {
            "contacts": [
                ANNA,
                {"channels": channels(email="boris@example.com"), "firstName": "Boris"},
                {"channels": channels(sms="79002222222"), "externalCustomerId": "crm-7"},
            ],
            "dedupeOn": "email",
        }

        response = await api.call("POST", "/api/v1/contacts", json=body)

        assert response.status_code == 200
        ids = [r["id"] for r in response.json()["results"]]
        assert response.json() == {"results": [{"id": i} for i in ids]}
        assert len(set(ids)) == 3
        assert (await loyalty.call("users/info", origin_user_id="crm-42"))["id"] == ids[0]
        assert await loyalty.call("users/info", email="boris@example.com") == user(
            id=ids[1], email="boris@example.com", first_name="Boris"
        )
        assert await api.ok("GET", f"/api/v1/contact/{ids[2]}") == contact(
            ids[2], sms="79002222222", externalCustomerId="crm-7"
        )

    async def test_dedupe_on_email_updates_the_contact_with_that_email(self, api: Api) -> None:
        existing = await api.add({"channels": channels(email=EMAIL), "firstName": "Anna"})
        body = {
            "contacts": [{"channels": channels(email=EMAIL.upper(), sms=PHONE), "lastName": "Petrova"}],
            "dedupeOn": "email",
        }

        answer = await api.ok("POST", "/api/v1/contacts", body)

        assert answer == {"results": [{"id": existing}]}
        assert await api.ok("GET", f"/api/v1/contact/{existing}") == contact(
            existing, email=EMAIL, sms=PHONE, firstName="Anna", lastName="Petrova"
        )

    async def test_dedupe_on_sms_updates_the_contact_with_that_phone(self, api: Api) -> None:
        existing = await api.add({"channels": channels(sms=PHONE)})
        body = {"contacts": [{"channels": channels(email=EMAIL, sms="+" + PHONE)}], "dedupeOn": "sms"}

        answer = await api.ok("POST", "/api/v1/contacts", body)

        assert answer == {"results": [{"id": existing}]}
        assert await api.ok("GET", f"/api/v1/contact/{existing}") == contact(existing, email=EMAIL, sms=PHONE)

    async def test_dedupe_on_external_id_updates_that_contacts_channels(self, api: Api) -> None:
        existing = await api.add({"channels": channels(email=EMAIL), "externalCustomerId": "crm-42"})
        body = {
            "contacts": [{"channels": channels(email="new@example.com"), "externalCustomerId": "crm-42"}],
            "dedupeOn": "externalCustomerId",
        }

        answer = await api.ok("POST", "/api/v1/contacts", body)

        assert answer == {"results": [{"id": existing}]}
        assert await api.ok("GET", f"/api/v1/contact/{existing}") == contact(
            existing, email="new@example.com", externalCustomerId="crm-42"
        )

    async def test_dedupe_on_defaults_to_email(self, api: Api) -> None:
        existing = await api.add({"channels": channels(email=EMAIL)})

        answer = await api.ok("POST", "/api/v1/contacts", {"contacts": [{"channels": channels(email=EMAIL)}]})

        assert answer == {"results": [{"id": existing}]}

    async def test_unknown_dedupe_on_is_400(self, api: Api) -> None:
        response = await api.call(
            "POST", "/api/v1/contacts", json={"contacts": [ANNA], "dedupeOn": "firstName"}
        )

        assert response.status_code == 400
        assert response.json() == bad_request("dedupeOn is email, sms or externalCustomerId", "dedupeOn")
        assert await api.ok("GET", "/api/v1/contacts", params={"email": EMAIL}) == []

    async def test_one_invalid_contact_saves_none(self, api: Api) -> None:
        body = {"contacts": [ANNA, {"channels": channels(email="broken")}], "dedupeOn": "email"}

        response = await api.call("POST", "/api/v1/contacts", json=body)

        assert response.status_code == 400
        assert response.json() == bad_request("'broken' is not valid email", "channels")
        assert await api.ok("GET", "/api/v1/contacts", params={"email": EMAIL}) == []

    @pytest.mark.parametrize("body", [{"contacts": []}, {"dedupeOn": "email"}])
    async def test_no_contacts_is_400(self, api: Api, body: dict[str, Any]) -> None:
        response = await api.call("POST", "/api/v1/contacts", json=body)

        assert response.status_code == 400
        assert response.json()["field"] == "contacts"

    async def test_trailing_slash(self, api: Api) -> None:
        response = await api.call("POST", "/api/v1/contacts/", json={"contacts": [ANNA]})

        assert response.status_code == 200
        assert len(response.json()["results"]) == 1

    async def test_bulk_add_fires_no_event(self, api: Api, database: Database) -> None:
        await api.ok("POST", "/api/v1/contacts", {"contacts": [ANNA]})

        assert await events_of(database, api.partner_id) == []


class TestContactsSearch:
    @pytest.mark.parametrize(
        "query",
        [
            {"email": "ANNA@example.com"},
            {"sms": "+7 900 123 45 67"},
            {"sms": PHONE},
            {"externalCustomerId": "crm-42"},
        ],
    )
    async def test_finds_the_contact(self, api: Api, query: dict[str, str]) -> None:
        contact_id = await api.add(ANNA)

        response = await api.call("GET", "/api/v1/contacts", params=query)

        assert response.status_code == 200
        assert response.json() == [
            contact(
                contact_id,
                email=EMAIL,
                sms=PHONE,
                firstName="Anna",
                lastName="Petrova",
                externalCustomerId="crm-42",
            )
        ]

    @pytest.mark.parametrize(
        "query", [{"email": "nobody@example.com"}, {"sms": "79009999999"}, {"externalCustomerId": "crm-0"}]
    )
    async def test_nobody_found_is_an_empty_list(self, api: Api, query: dict[str, str]) -> None:
        await api.add(ANNA)

        assert await api.ok("GET", "/api/v1/contacts", params=query) == []

    @pytest.mark.parametrize("query", ["", "?email=", "?firstName=Anna"])
    async def test_without_a_criterion_is_400(self, api: Api, query: str) -> None:
        response = await api.call("GET", f"/api/v1/contacts{query}")

        assert response.status_code == 400
        assert response.json() == bad_request("search by email, sms or externalCustomerId", "email")

    @pytest.mark.parametrize(
        ("query", "error"),
        [
            ({"email": "not-an-email"}, "Invalid value of email"),
            ({"sms": "12"}, "Phone is not valid"),
        ],
    )
    async def test_a_malformed_criterion_is_400_naming_it(
        self, api: Api, query: dict[str, str], error: str
    ) -> None:
        response = await api.call("GET", "/api/v1/contacts", params=query)

        assert response.status_code == 400
        assert response.json() == bad_request(error, next(iter(query)))

    async def test_trailing_slash(self, api: Api) -> None:
        contact_id = await api.add(ANNA)

        found = await api.ok("GET", "/api/v1/contacts/", params={"email": EMAIL})

        assert [c["id"] for c in found] == [contact_id]


class TestSubscribe:
    async def test_adds_the_contact_and_fires_subscribe_from_api(
        self, api: Api, loyalty: LoyaltyClient, database: Database
    ) -> None:
        response = await api.call(
            "POST",
            "/api/v1/contact/subscribe",
            json={"contact": {"channels": channels(email="Anna@Example.com"), "firstName": "Anna"}},
        )

        assert response.status_code == 200
        contact_id = response.json()["id"]
        assert response.json() == {"id": contact_id}
        assert await loyalty.call("users/info", email=EMAIL) == user(
            id=contact_id, email=EMAIL, first_name="Anna"
        )
        [(key, key_value, params)] = await events_of(database, api.partner_id)
        assert (key, key_value) == ("subscribeFromApi", str(contact_id))
        assert params["ContactId"] == contact_id
        assert params["EmailAddress"] == EMAIL

    async def test_a_contact_without_the_wrapper_is_accepted(self, api: Api, database: Database) -> None:
        response = await api.call(
            "POST", "/api/v1/contact/subscribe/", json={"channels": channels(email=EMAIL)}
        )

        assert response.status_code == 200
        [(key, _, params)] = await events_of(database, api.partner_id)
        assert (key, params["ContactId"], params["EmailAddress"]) == (
            "subscribeFromApi",
            response.json()["id"],
            EMAIL,
        )

    async def test_an_existing_contact_is_updated_not_duplicated(self, api: Api, database: Database) -> None:
        contact_id = await api.add(ANNA)

        again = await api.ok(
            "POST", "/api/v1/contact/subscribe", {"contact": {"channels": channels(email=EMAIL)}}
        )

        assert again == {"id": contact_id}
        # eSputnik fires subscribeUpdateFromApi, not subscribeFromApi, for a contact it knows.
        assert [(e[0], e[2]["ContactId"]) for e in await events_of(database, api.partner_id)] == [
            ("subscribeUpdateFromApi", contact_id)
        ]

    async def test_invalid_contact_is_400_and_fires_nothing(self, api: Api, database: Database) -> None:
        response = await api.call(
            "POST", "/api/v1/contact/subscribe", json={"contact": {"channels": channels(email="broken")}}
        )

        assert response.status_code == 400
        assert response.json() == bad_request("'broken' is not valid email", "channels")
        assert await events_of(database, api.partner_id) == []

    async def test_starts_the_subscribe_workflow_for_that_contact(
        self, api: Api, loyalty: LoyaltyClient, database: Database, settings: Settings
    ) -> None:
        message_id = (
            await api.ok(
                "POST",
                "/api/v1/messages/email",
                {
                    "name": "Hi",
                    "from": "shop@example.com",
                    "subject": "Hi",
                    "htmlText": "Contact $!data.get('ContactId')",
                },
            )
        )["id"]
        await api.ok(
            "POST",
            "/api/v1/workflows",
            {
                "name": "Welcome",
                "trigger": {"event": "subscribeFromApi"},
                "steps": [
                    {"type": "add_tag", "tag": "Subscribed"},
                    {"type": "send", "message_id": message_id},
                ],
            },
        )

        contact_id = (
            await api.ok(
                "POST", "/api/v1/contact/subscribe", {"contact": {"channels": channels(email=EMAIL)}}
            )
        )["id"]
        [run] = await runs_of(database, api.partner_id)
        assert (run.customer_id, run.status, run.step_index) == (contact_id, "active", 0)

        await Worker(database, settings, channels={}).run_once()

        tags = await loyalty.call("users/tags/list", email=EMAIL)
        assert [t["name"] for t in tags["tags"]] == ["Subscribed"]
        [run] = await runs_of(database, api.partner_id)
        assert (run.status, run.step_index) == ("done", 2)
        async with database.reading() as session:
            [delivery] = await session.scalars(select(Delivery).where(Delivery.partner_id == api.partner_id))
        assert (delivery.recipient, delivery.message_id, delivery.data["ContactId"]) == (
            EMAIL,
            message_id,
            contact_id,
        )


class TestPartnerIsolation:
    async def test_another_partners_contact_is_404(self, api: Api, other_api: Api) -> None:
        contact_id = await api.add(ANNA)

        responses = [
            await other_api.call("GET", f"/api/v1/contact/{contact_id}"),
            await other_api.call("PUT", f"/api/v1/contact/{contact_id}", json=ANNA),
            await other_api.call("DELETE", f"/api/v1/contact/{contact_id}"),
            await other_api.call("DELETE", "/api/v1/contact", params={"externalCustomerId": "crm-42"}),
        ]

        assert [r.status_code for r in responses] == [404, 404, 404, 404]
        assert (await api.ok("GET", f"/api/v1/contact/{contact_id}"))["externalCustomerId"] == "crm-42"

    @pytest.mark.parametrize("query", [{"email": EMAIL}, {"sms": PHONE}, {"externalCustomerId": "crm-42"}])
    async def test_search_never_finds_another_partners_contact(
        self, api: Api, other_api: Api, query: dict[str, str]
    ) -> None:
        await api.add(ANNA)

        assert await other_api.ok("GET", "/api/v1/contacts", params=query) == []

    async def test_the_same_identifiers_make_separate_contacts_per_partner(
        self, api: Api, other_api: Api
    ) -> None:
        mine = await api.add(ANNA)

        theirs = await other_api.add({**ANNA, "firstName": "Other"})

        assert theirs != mine
        assert (await api.ok("GET", f"/api/v1/contact/{mine}"))["firstName"] == "Anna"
        assert (await other_api.ok("GET", f"/api/v1/contact/{theirs}"))["firstName"] == "Other"

    async def test_subscribe_starts_only_the_partners_own_workflows(
        self, api: Api, other_api: Api, database: Database
    ) -> None:
        await api.ok(
            "POST",
            "/api/v1/workflows",
            {
                "name": "W",
                "trigger": {"event": "subscribeFromApi"},
                "steps": [{"type": "add_tag", "tag": "S"}],
            },
        )

        await other_api.ok(
            "POST", "/api/v1/contact/subscribe", {"contact": {"channels": channels(email=EMAIL)}}
        )

        assert await runs_of(database, api.partner_id) == []
        assert await runs_of(database, other_api.partner_id) == []
