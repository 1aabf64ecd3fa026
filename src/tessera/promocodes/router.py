from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tessera import errors
from tessera.clock import parse_datetime, utcnow
from tessera.customers.router import ref_from
from tessera.imports.parsers import detect_format
from tessera.promocodes import rules, service
from tessera.promocodes.schemas import group_object, promocode_object
from tessera.sailplay import LoyaltyRouter, Params, database, ok
from tessera.tenancy.service import Caller

loyalty = LoyaltyRouter()


@loyalty.authed("/api/v2/promocodes/groups/list")
async def list_groups(request: Request, params: Params, caller: Caller) -> Response:
    async with database(request).reading() as session:
        groups = await service.list_groups(session, caller.partner_id)
    enabled = [group_object(g, c) for g, c in groups if g.enabled]
    disabled = [group_object(g, c) for g, c in groups if not g.enabled]
    return ok(groups={"enabled": enabled, "disabled": disabled})


@loyalty.authed("/api/v2/promocodes/info", "/api/v2/promocodes/search", lookup=True)
async def info(request: Request, params: Params, caller: Caller) -> Response:
    number = params.require("number")
    async with database(request).read() as conn:
        found = await service.find(conn, caller.partner_id, number)
    now = utcnow()
    numbers = [promocode_object(code, group, now) for code, group in found]
    # `info` (the seed) calls the list `numbers`; `search` (SailPlay's SDK) calls it `promocodes`.
    return ok(numbers=numbers, promocodes=numbers)


@loyalty.authed("/api/v2/promocodes/activate", lookup=True)
async def activate(request: Request, params: Params, caller: Caller) -> Response:
    ref = ref_from(params)
    group_name = params.require("group_name")
    number = params.require("number")
    async with database(request).write_one() as conn:
        state = await service.activate(conn, caller, ref, group_name, number)
    return ok(promocode_status=state)


@loyalty.authed("/api/v2/promocodes/issue")
async def issue(request: Request, params: Params, caller: Caller) -> Response:
    ref = ref_from(params)
    group_name = params.require("group_name")
    async with database(request).write_one() as conn:
        code, group = await service.issue(conn, caller.partner_id, ref, group_name)
    return ok(promocode=promocode_object(code, group, utcnow()))


@loyalty.authed("/api/v2/promocodes/list-for-user")
async def list_for_user(request: Request, params: Params, caller: Caller) -> Response:
    ref = ref_from(params)
    async with database(request).reading() as session:
        customer_id, codes = await service.list_for_customer(session, caller.partner_id, ref)
    now = utcnow()
    return ok(promocodes=[promocode_object(code, group, now, customer_id) for code, group in codes])


@loyalty.authed("/api/v2/promocodes/numbers/add")
async def add_numbers(request: Request, params: Params, caller: Caller) -> Response:
    upload = params.file("file")
    if upload is None:
        raise errors.InvalidFile(reason="no file uploaded in the multipart field 'file'")
    name = params.require("name")
    fmt = detect_format(upload.filename)
    raw_type = params.get("type")
    group_type = rules.parse_group_type(raw_type) if raw_type is not None else None
    expires_at = parse_datetime(params.get("expires_at"), "expires_at")
    async with database(request).transaction() as session:
        group, imported = await service.import_codes(
            session,
            caller.partner_id,
            name=name,
            stream=upload.file,
            fmt=fmt,
            group_type=group_type,
            apply_items_once=params.boolean("apply_items_once"),
            expires_at=expires_at,
        )
        counts = await service.counts_of(session, group)
    return ok(imported_count=imported, group=group_object(group, counts))


@loyalty.authed("/api/v2/promocodes/groups/edit")
async def edit_group(request: Request, params: Params, caller: Caller) -> Response:
    group_id = params.require_integer("group_id")
    discount_type = params.get("discount_type")
    discount = (
        rules.parse_discount(
            discount_type, params.get("discount_value"), params.json("skus"), params.get("min_cart_total")
        )
        if discount_type is not None
        else service.UNCHANGED
    )
    low_stock = {
        field: rules.parse_threshold(params.get(field), field)
        for field in ("low_stock_warning", "low_stock_alarm")
        if params.get(field) is not None
    }
    async with database(request).transaction() as session:
        group = await service.edit_group(
            session,
            caller.partner_id,
            group_id,
            enabled=params.boolean("enabled"),
            name=params.get("name"),
            discount=discount,
            low_stock=low_stock,
        )
        counts = await service.counts_of(session, group)
    return ok(group=group_object(group, counts))
