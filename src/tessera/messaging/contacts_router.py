"""eSputnik's contact calls over the loyalty face's customers (SPEC §8).

A contact is a customer: its email channel is the customer's email, its sms channel the phone,
``externalCustomerId`` the ``origin_user_id``. Removing a contact erases its personal data and
tags but keeps the row, because codes, activations and purchases still point at it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from tessera import errors
from tessera.customers import repository as customers_repository
from tessera.customers import service as customers
from tessera.customers.identifiers import CustomerRef, IdentifierKind, customer_ref
from tessera.customers.models import Customer, CustomerRow
from tessera.esputnik import MessagingRouter, json_body
from tessera.messaging.schemas import validated
from tessera.routing import JsonResponse
from tessera.sailplay import database
from tessera.sql import on_session
from tessera.triggers import service as triggers

contacts = MessagingRouter()


class Channel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    value: str


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    channels: list[Channel] = Field(default_factory=list)
    firstName: str | None = Field(None, max_length=255)
    lastName: str | None = Field(None, max_length=255)
    externalCustomerId: str | None = Field(None, max_length=255)


class ContactsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    contacts: list[ContactIn] = Field(min_length=1, max_length=3000)
    dedupeOn: str = "email"


def contact_input(contact: ContactIn) -> customers.CustomerInput:
    email = next((c.value for c in contact.channels if c.type.lower() == "email"), None)
    phone = next((c.value for c in contact.channels if c.type.lower() in ("sms", "phone")), None)
    try:
        parsed = customers.CustomerInput.parse(
            phone=phone,
            email=email,
            origin_user_id=contact.externalCustomerId,
            first_name=contact.firstName,
            last_name=contact.lastName,
        )
    except errors.InvalidEmail:
        raise errors.BadRequest(f"'{email}' is not valid email", field="channels") from None
    except errors.InvalidPhone:
        raise errors.BadRequest(f"'{phone}' is not a valid phone number", field="channels") from None
    if not parsed.refs():
        raise errors.BadRequest(
            "a contact needs an email or sms channel, or an externalCustomerId", field="channels"
        )
    return parsed


def contact_out(customer: Customer | CustomerRow) -> dict[str, Any]:
    channels = []
    if customer.email:
        channels.append({"type": "email", "value": customer.email})
    if customer.phone:
        channels.append({"type": "sms", "value": customer.phone})
    return {
        "id": customer.id,
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "channels": channels,
        "externalCustomerId": customer.origin_user_id,
    }


async def _save(session: AsyncSession, partner: int, contact: ContactIn) -> CustomerRow:
    try:
        return await customers.add_or_update(await on_session(session), partner, contact_input(contact))
    except (errors.PhoneTaken, errors.EmailTaken, errors.OriginUserIdTaken) as error:
        raise errors.BadRequest(error.text, field="channels") from None


async def _contact(session: AsyncSession, partner: int, contact_id: int) -> Customer:
    customer = await customers_repository.get(session, partner, contact_id)
    if customer is None or not (customer.email or customer.phone or customer.origin_user_id):
        raise errors.NotFound(f"contact {contact_id} not found")
    return customer


@contacts.route("/api/v1/contact", ["POST"])
async def add_contact(request: Request, partner: int) -> JsonResponse:
    contact = validated(ContactIn, await json_body(request))
    async with database(request).transaction() as session:
        customer = await _save(session, partner, contact)
    return JsonResponse({"id": customer.id})


@contacts.route("/api/v1/contact/subscribe", ["POST"])
async def subscribe(request: Request, partner: int) -> JsonResponse:
    body = await json_body(request)
    contact = validated(ContactIn, body.get("contact", body) if isinstance(body, dict) else body)
    async with database(request).transaction() as session:
        conn = await on_session(session)
        known = [
            await customers_repository.find_row(conn, partner, ref) for ref in contact_input(contact).refs()
        ]
        customer = await _save(session, partner, contact)
        # eSputnik: subscribeFromApi for a new contact, subscribeUpdateFromApi for a known one.
        key = "subscribeUpdateFromApi" if any(known) else "subscribeFromApi"
        params = {"ContactId": customer.id, "EmailAddress": customer.email, "Phone": customer.phone}
        await triggers.record_event(conn, partner, key, str(customer.id), params, customer_id=customer.id)
    return JsonResponse({"id": customer.id})


@contacts.route("/api/v1/contacts", ["POST"])
async def add_contacts(request: Request, partner: int) -> JsonResponse:
    body = validated(ContactsIn, await json_body(request, max_bytes=20 * 1024 * 1024))
    if body.dedupeOn not in ("email", "sms", "externalCustomerId"):
        raise errors.BadRequest("dedupeOn is email, sms or externalCustomerId", field="dedupeOn")
    async with database(request).transaction() as session:
        saved = [await _save(session, partner, contact) for contact in body.contacts]
    return JsonResponse({"results": [{"id": c.id} for c in saved]})


@contacts.route("/api/v1/contacts", ["GET"])
async def search_contacts(request: Request, partner: int) -> JsonResponse:
    query = request.query_params
    if not (query.get("email") or query.get("sms") or query.get("externalCustomerId")):
        raise errors.BadRequest("search by email, sms or externalCustomerId", field="email")
    try:
        ref = customer_ref(query.get("sms"), query.get("email"), query.get("externalCustomerId"))
    except errors.TesseraError as error:
        # customer_ref reads sms first, then email: the criterion it refused is the first given.
        field = next(name for name in ("sms", "email", "externalCustomerId") if query.get(name))
        raise errors.BadRequest(error.text, field=field) from None
    async with database(request).reading() as session:
        customer = await customers_repository.find(session, partner, ref)
    return JsonResponse([contact_out(customer)] if customer else [])


@contacts.route("/api/v1/contact/{contact_id}", ["GET"])
async def get_contact(request: Request, partner: int, contact_id: int) -> JsonResponse:
    async with database(request).reading() as session:
        customer = await _contact(session, partner, contact_id)
    return JsonResponse(contact_out(customer))


@contacts.route("/api/v1/contact/{contact_id}", ["PUT"])
async def replace_contact(request: Request, partner: int, contact_id: int) -> JsonResponse:
    contact = validated(ContactIn, await json_body(request))
    data = contact_input(contact)
    async with database(request).transaction() as session:
        customer = await _contact(session, partner, contact_id)
        for ref in data.refs():
            owner = await customers_repository.find(session, partner, ref)
            if owner is not None and owner.id != customer.id:
                raise errors.BadRequest(
                    f"{ref.kind.value} {ref.value} belongs to contact {owner.id}", field="channels"
                )
        customer.email, customer.phone, customer.origin_user_id = data.email, data.phone, data.origin_user_id
        customer.first_name, customer.last_name = data.first_name, data.last_name
        await session.flush()
    return JsonResponse(contact_out(customer))


async def _erase(session: AsyncSession, partner: int, customer: Customer) -> None:
    tags = [name for name, _ in await customers.list_tags(session, partner, customer.id)]
    if tags:
        await customers.delete_tags(session, partner, customer.id, tags)
    customer.email = customer.phone = customer.origin_user_id = None
    customer.first_name = customer.last_name = customer.middle_name = None
    customer.birth_date = None
    customer.sex = None
    await session.flush()


@contacts.route("/api/v1/contact/{contact_id}", ["DELETE"])
async def delete_contact(request: Request, partner: int, contact_id: int) -> Response:
    async with database(request).transaction() as session:
        await _erase(session, partner, await _contact(session, partner, contact_id))
    return Response(status_code=200)


@contacts.route("/api/v1/contact", ["DELETE"])
async def delete_contact_by_external_id(request: Request, partner: int) -> Response:
    external_id = request.query_params.get("externalCustomerId", "").strip()
    if not external_id:
        raise errors.BadRequest("externalCustomerId is required", field="externalCustomerId")
    async with database(request).transaction() as session:
        customer = await customers_repository.find(
            session, partner, CustomerRef(IdentifierKind.ORIGIN_USER_ID, external_id)
        )
        if customer is None:
            raise errors.NotFound(f"no contact with externalCustomerId {external_id}")
        await _erase(session, partner, customer)
    return Response(status_code=200)
