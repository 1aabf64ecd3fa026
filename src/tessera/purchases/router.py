from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tessera.customers.router import phone_param
from tessera.customers.service import CustomerInput
from tessera.purchases import service
from tessera.purchases.pricing import parse_cart, parse_numbers
from tessera.sailplay import LoyaltyRouter, Params, database, ok
from tessera.tenancy.service import Caller

loyalty = LoyaltyRouter()


def cart_request(params: Params) -> service.CartRequest:
    cart = params.json("cart")
    if cart is None:
        params.require("cart")
    return service.CartRequest(
        positions=parse_cart(cart),
        promocodes=parse_numbers(params.json_or_text("promocodes"), "promocodes"),
        certificates=parse_numbers(params.json_or_text("certificates"), "certificates"),
        promocodes_info=bool(params.boolean("promocodes_info")),
    )


def department_of(params: Params, caller: Caller) -> int:
    """A purchase may be booked to another department of the partner (``target_dep_id``)."""
    return params.integer("target_dep_id") or caller.department_id


def customer_of(params: Params) -> CustomerInput | None:
    phone, email, origin = phone_param(params), params.get("email"), params.get("origin_user_id")
    if not (phone or email or origin):
        return None
    return CustomerInput.parse(phone=phone, email=email, origin_user_id=origin)


@loyalty.authed("/api/v2/marketing-actions/calc", "/api/v1/marketing-actions/calc")
async def calc(request: Request, params: Params, caller: Caller) -> Response:
    cart = cart_request(params)
    async with database(request).read() as conn:
        answer = await service.calculate(conn, caller.partner_id, department_of(params, caller), cart)
    return ok(**answer)


@loyalty.authed("/api/v2/purchases/new", "/api/v1/purchases/new")
async def new_purchase(request: Request, params: Params, caller: Caller) -> Response:
    cart = cart_request(params)
    customer = customer_of(params)
    order_num = params.get("order_num")
    department_id = department_of(params, caller)
    db = database(request)
    try:
        async with db.write() as conn:
            answer = await service.create(
                conn, caller.partner_id, department_id, cart, customer=customer, order_num=order_num
            )
    except service.OrderNumTaken:
        async with db.reading() as session:
            purchase = await service.find(session, caller.partner_id, department_id, None, order_num)
            answer = service.replay(purchase)
    return ok(**answer)


@loyalty.authed("/api/v2/purchases/get", "/api/v1/purchases/get")
async def get_purchase(request: Request, params: Params, caller: Caller) -> Response:
    async with database(request).reading() as session:
        purchase = await service.find(
            session,
            caller.partner_id,
            department_of(params, caller),
            params.integer("purchase_id"),
            params.get("order_num"),
        )
    return ok(**service.replay(purchase))


@loyalty.authed("/api/v2/purchases/delete", "/api/v1/purchases/delete")
async def delete_purchase(request: Request, params: Params, caller: Caller) -> Response:
    async with database(request).transaction() as session:
        purchase = await service.delete(
            session,
            caller.partner_id,
            department_of(params, caller),
            params.integer("purchase_id"),
            params.get("order_num"),
        )
    return ok(purchase=service.purchase_payload(purchase))
