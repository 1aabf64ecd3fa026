from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tessera.clock import isoformat
from tessera.customers import service
from tessera.customers.identifiers import CustomerRef, customer_ref
from tessera.customers.schemas import sailplay_user
from tessera.sailplay import LoyaltyRouter, Params, database, ok
from tessera.sql import on_session
from tessera.tenancy.service import Caller

loyalty = LoyaltyRouter()


def phone_param(params: Params) -> str | None:
    # The seed's own request example sends `phone=`; SailPlay's reference says `user_phone=`.
    return params.get("user_phone") or params.get("phone")


def ref_from(params: Params) -> CustomerRef:
    return customer_ref(phone_param(params), params.get("email"), params.get("origin_user_id"))


@loyalty.authed("/api/v2/users/add")
async def add_user(request: Request, params: Params, caller: Caller) -> Response:
    data = service.CustomerInput.parse(
        phone=phone_param(params),
        email=params.get("email"),
        origin_user_id=params.get("origin_user_id"),
        birth_date=params.get("birth_date"),
        sex=params.integer("sex"),
        first_name=params.get("first_name"),
        last_name=params.get("last_name"),
        middle_name=params.get("middle_name"),
    )
    async with database(request).write() as conn:
        customer = await service.add_or_update(conn, caller.partner_id, data)
    return ok(**sailplay_user(customer))


@loyalty.authed("/api/v2/users/info")
async def user_info(request: Request, params: Params, caller: Caller) -> Response:
    ref = ref_from(params)
    async with database(request).reading() as session:
        customer = await service.get(session, caller.partner_id, ref)
    return ok(**sailplay_user(customer))


@loyalty.authed("/api/v2/users/tags/add")
async def add_tags(request: Request, params: Params, caller: Caller) -> Response:
    ref = ref_from(params)
    names = service.parse_tag_names(params.require("tags"))
    async with database(request).write() as conn:
        customer_id = await service.get_id(conn, caller.partner_id, ref)
        await service.add_tags(conn, caller.partner_id, customer_id, names)
    return ok()


@loyalty.authed("/api/v2/users/tags/list")
async def list_tags(request: Request, params: Params, caller: Caller) -> Response:
    ref = ref_from(params)
    async with database(request).reading() as session:
        customer_id = await service.get_id(await on_session(session), caller.partner_id, ref)
        tags = await service.list_tags(session, caller.partner_id, customer_id)
    return ok(tags=[{"name": name, "added_date": isoformat(added)} for name, added in tags])


@loyalty.authed("/api/v2/users/tags/delete")
async def delete_tags(request: Request, params: Params, caller: Caller) -> Response:
    ref = ref_from(params)
    names = service.parse_tag_names(params.require("tags"))
    async with database(request).transaction() as session:
        customer_id = await service.get_id(await on_session(session), caller.partner_id, ref)
        deleted = await service.delete_tags(session, caller.partner_id, customer_id, names)
    return ok(deleted_count=deleted)
