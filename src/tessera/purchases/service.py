"""Carts priced with promo codes, paid in part by certificates, and recorded as purchases (SPEC §7)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tessera import errors
from tessera.certificates import repository as certificates_repository
from tessera.certificates import rules as certificate_rules
from tessera.certificates import service as certificates
from tessera.certificates.rules import Transition
from tessera.clock import isoformat, utcnow
from tessera.customers import service as customers
from tessera.promocodes import repository as promocodes
from tessera.promocodes.models import GroupRow, PromocodeGroup
from tessera.promocodes.schemas import marketing_actions
from tessera.purchases import repository
from tessera.purchases.models import Purchase
from tessera.purchases.pricing import (
    ZERO,
    CertificateCover,
    CodeCandidate,
    CodeStatus,
    CodeVerdict,
    DiscountType,
    Position,
    PricedCart,
    PromoAction,
    cover_with_certificates,
    drop_idle,
    judge_codes,
    price_cart,
)
from tessera.purchases.schemas import cart_payload, certificates_payload, codes_payload, money_out
from tessera.sql import Conn
from tessera.tenancy import service as tenancy


class OrderNumTaken(Exception):
    """Another request recorded this ``order_num`` first; its answer is to be replayed."""


@dataclass(frozen=True, slots=True)
class CartRequest:
    positions: list[Position]
    promocodes: list[str]
    certificates: list[str]
    promocodes_info: bool


def action_of(group: PromocodeGroup | GroupRow) -> PromoAction | None:
    if group.discount_type is None or group.discount_value is None:
        return None
    return PromoAction(
        group_id=group.id,
        name=marketing_actions(group)[0]["name"],
        discount_type=DiscountType(group.discount_type),
        value=group.discount_value,
        skus=frozenset(group.discount_skus) if group.discount_skus is not None else None,
        min_cart_total=group.min_cart_total,
    )


async def _judge(
    conn: Conn, partner_id: int, cart: CartRequest, now: datetime
) -> tuple[list[CodeVerdict], dict[int, PromoAction]]:
    found = await promocodes.codes_by_numbers(conn, partner_id, cart.promocodes) if cart.promocodes else []
    actions: dict[int, PromoAction] = {}
    candidates = []
    for code, group in found:
        action = action_of(group)
        if action is not None:
            actions[group.id] = action
        candidates.append(
            CodeCandidate(
                number=code.number,
                code_id=code.id,
                group_id=group.id,
                group_enabled=group.enabled,
                single_use=group.apply_items_once,
                state=code.state,
                expires_at=code.expires_at,
                action=action,
            )
        )
    verdicts = judge_codes(cart.promocodes, candidates, cart.positions, now)
    return drop_idle(verdicts, actions, cart.positions), actions


async def _cover(
    conn: Conn, partner_id: int, department_id: int, numbers: Sequence[str], total: Decimal
) -> list[CertificateCover]:
    """Checks every certificate is usable here, and how much of ``total`` each pays."""
    found = []
    for number in numbers:
        certificate = await certificates_repository.state_with_value(conn, partner_id, number)
        if certificate is None:
            raise errors.CertificateNotFound(f"Certificate not found: {number}")
        certificate_rules.check_allowed(
            Transition.USE,
            same_department=certificate.department_id == department_id,
            activated=certificate.activated,
            used=certificate.used,
            deleted=certificate.deleted,
        )
        found.append((certificate.id, certificate.value))
    amounts = cover_with_certificates(total, [value for _, value in found])
    return [
        CertificateCover(number, certificate_id, amount)
        for number, (certificate_id, _), amount in zip(numbers, found, amounts, strict=True)
    ]


def _answer(
    cart: CartRequest,
    priced: PricedCart,
    verdicts: Sequence[CodeVerdict],
    actions: dict[int, PromoAction],
    product_ids: dict[str, int],
    covers: Sequence[CertificateCover],
    *,
    used: bool,
) -> dict[str, Any]:
    answer: dict[str, Any] = {"cart": cart_payload(priced, actions, product_ids)}
    if cart.promocodes_info:
        answer["promocodes"] = codes_payload(verdicts, actions)
    if cart.certificates:
        answer["certificates"] = certificates_payload(covers, used=used)
    return answer


async def calculate(conn: Conn, partner_id: int, department_id: int, cart: CartRequest) -> dict[str, Any]:
    """``marketing-actions/calc``: what ``purchases/new`` would do with this cart, changing nothing."""
    now = utcnow()
    department_id = await tenancy.department_of_partner(conn, partner_id, department_id)
    verdicts, actions = await _judge(conn, partner_id, cart, now)
    matched = [
        actions[v.candidate.group_id] for v in verdicts if v.status == CodeStatus.MATCHED and v.candidate
    ]
    priced = price_cart(cart.positions, matched)
    covers = await _cover(conn, partner_id, department_id, cart.certificates, priced.total_price)
    product_ids = await repository.product_ids(conn, partner_id, [p.sku for p in cart.positions])
    return _answer(cart, priced, verdicts, actions, product_ids, covers, used=False)


async def create(
    conn: Conn,
    partner_id: int,
    department_id: int,
    cart: CartRequest,
    *,
    customer: customers.CustomerInput | None,
    order_num: str | None,
) -> dict[str, Any]:
    """``purchases/new``: applies the matched codes and the certificates, once.

    The purchase row is written first, and a repeated ``order_num`` ends the request there with
    ``OrderNumTaken`` (the caller replays the first answer): on PostgreSQL a concurrent request
    with the same ``order_num`` waits on its unique key, before it has touched a code, a
    certificate or the customer. Each code and certificate then changes through a guarded
    UPDATE, so a single-use code raced by two purchases is applied by one; the other purchase is
    priced without it and its verdict says so.
    """
    now = utcnow()
    department_id = await tenancy.department_of_partner(conn, partner_id, department_id)
    original_total = sum((p.price for p in cart.positions), ZERO)
    fields: dict[str, Any] = {
        "partner_id": partner_id,
        "department_id": department_id,
        "customer_id": None,
        "order_num": order_num,
        "original_price": original_total,
        "price": original_total,
        "paid_by_certificates": ZERO,
        "purchase_date": now,
        "response": {},
    }
    purchase_id = await repository.add_purchase_once(conn, fields)
    if purchase_id is None:
        raise OrderNumTaken()
    customer_id = (await customers.add_or_update(conn, partner_id, customer)).id if customer else None

    verdicts, actions = await _judge(conn, partner_id, cart, now)
    final: list[CodeVerdict] = []
    applied: list[PromoAction] = []
    for verdict in verdicts:
        chosen = verdict.candidate
        if verdict.status != CodeStatus.MATCHED or chosen is None:
            final.append(verdict)
        elif await promocodes.apply_code(conn, chosen.code_id, chosen.single_use, now):
            await repository.link_code(conn, partner_id, purchase_id, chosen.code_id)
            applied.append(actions[chosen.group_id])
            final.append(CodeVerdict(verdict.number, CodeStatus.APPLIED, "Applied", chosen))
        else:
            final.append(CodeVerdict(verdict.number, CodeStatus.RECOGNIZED, "Promocode already used", chosen))
    priced = price_cart(cart.positions, applied)

    covers = await _cover(conn, partner_id, department_id, cart.certificates, priced.total_price)
    for cover in covers:
        if cover.amount > 0:
            await certificates.use(conn, partner_id, cover.number, department_id)
            await repository.link_certificate(
                conn, partner_id, purchase_id, cover.certificate_id, cover.amount
            )
    product_ids = await repository.ensure_products(conn, partner_id, [p.sku for p in cart.positions], now)

    paid = sum((c.amount for c in covers if c.amount > 0), ZERO)
    final_values = {"customer_id": customer_id, "price": priced.total_price, "paid_by_certificates": paid}
    answer = _answer(cart, priced, final, actions, product_ids, covers, used=True)
    answer["purchase"] = purchase_payload(Purchase(**{**fields, **final_values, "id": purchase_id}))
    await repository.finish_purchase(conn, purchase_id, **final_values, response=answer)
    return answer


def purchase_payload(purchase: Purchase) -> dict[str, Any]:
    return {
        "id": purchase.id,
        "order_num": purchase.order_num,
        "store_department_id": purchase.department_id,
        "user_id": purchase.customer_id,
        "original_price": money_out(purchase.original_price),
        "price": money_out(purchase.price),
        "paid_by_certificates": money_out(purchase.paid_by_certificates),
        "to_pay": money_out(purchase.price - purchase.paid_by_certificates),
        "purchase_date": isoformat(purchase.purchase_date),
        "is_deleted": purchase.deleted_at is not None,
        "deleted_date": isoformat(purchase.deleted_at),
    }


def replay(purchase: Purchase) -> dict[str, Any]:
    """The answer first given for this purchase, with its current deletion state."""
    return {**purchase.response, "purchase": purchase_payload(purchase)}


async def find(
    session: AsyncSession, partner_id: int, department_id: int, purchase_id: int | None, order_num: str | None
) -> Purchase:
    """By ``purchase_id`` (which wins when both are given) or by the department's ``order_num``."""
    purchase = None
    if purchase_id is not None:
        purchase = await repository.by_id(session, partner_id, purchase_id)
    elif order_num is not None:
        purchase = await repository.by_order_num(session, partner_id, department_id, order_num)
    else:
        raise errors.MissingField("purchase_id")
    if purchase is None:
        raise errors.PurchaseNotFound()
    return purchase


async def delete(
    session: AsyncSession, partner_id: int, department_id: int, purchase_id: int | None, order_num: str | None
) -> Purchase:
    """Deletes a purchase and gives its promo codes their use back; certificates stay used.

    Certificates only move forward (SPEC §6), so a refund of one is a new certificate. Deleting
    twice changes nothing the second time.
    """
    purchase = await find(session, partner_id, department_id, purchase_id, order_num)
    if await repository.mark_deleted(session, partner_id, purchase.id, utcnow()):
        for code_id in await repository.linked_code_ids(session, partner_id, purchase.id):
            await promocodes.give_back(session, code_id)
        await session.refresh(purchase)
    return purchase
