from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.purchases.models import Purchase, PurchaseCertificate, PurchasePromocode
from tessera.sql import Conn, Statement

# purchases/new writes these on the driver (tessera.sql), in the session's transaction.
_PRODUCT_IDS = Statement(
    "SELECT sku, id FROM products WHERE partner_id = :partner_id"
    " AND sku IN (SELECT value FROM json_each(:skus))",
    postgresql="SELECT sku, id FROM products WHERE partner_id = :partner_id"
    " AND sku = ANY(ARRAY(SELECT jsonb_array_elements_text(:skus::jsonb)))",
)
_ADD_PRODUCT = Statement(
    "INSERT INTO products (partner_id, sku, created_at) VALUES (:partner_id, :sku, :now)"
    " ON CONFLICT DO NOTHING"
)
_ADD_PURCHASE_ONCE = Statement(
    "INSERT INTO purchases (partner_id, department_id, customer_id, order_num, original_price, price,"
    " paid_by_certificates, purchase_date, response)"
    " VALUES (:partner_id, :department_id, :customer_id, :order_num, :original_price, :price,"
    " :paid_by_certificates, :purchase_date, :response)"
    " ON CONFLICT DO NOTHING RETURNING id"
)
_FINISH_PURCHASE = Statement(
    "UPDATE purchases SET customer_id = :customer_id, price = :price,"
    " paid_by_certificates = :paid_by_certificates, response = :response WHERE id = :purchase_id"
)
_LINK_CODE = Statement(
    "INSERT INTO purchase_promocodes (partner_id, purchase_id, promocode_id)"
    " VALUES (:partner_id, :purchase_id, :code_id)"
)
_LINK_CERTIFICATE = Statement(
    "INSERT INTO purchase_certificates (partner_id, purchase_id, certificate_id, amount)"
    " VALUES (:partner_id, :purchase_id, :certificate_id, :amount)"
)


async def ensure_products(conn: Conn, partner_id: int, skus: Sequence[str], now: datetime) -> dict[str, int]:
    """The SKUs' product ids, creating the products not seen before. A partner sells the same
    SKUs again and again: the look-up usually finds them all and nothing is inserted."""
    found = await product_ids(conn, partner_id, skus)
    missing = [sku for sku in dict.fromkeys(skus) if sku not in found]
    if not missing:
        return found
    await conn.executemany(
        _ADD_PRODUCT, [{"partner_id": partner_id, "sku": sku, "now": now} for sku in missing]
    )
    return {**found, **await product_ids(conn, partner_id, missing)}


async def product_ids(conn: Conn, partner_id: int, skus: Sequence[str]) -> dict[str, int]:
    rows = await conn.fetchall(_PRODUCT_IDS, partner_id=partner_id, skus=list(skus))
    return {sku: int(product_id) for sku, product_id in rows}


async def by_order_num(
    session: AsyncSession, partner_id: int, department_id: int, order_num: str
) -> Purchase | None:
    return await session.scalar(
        select(Purchase).where(
            Purchase.partner_id == partner_id,
            Purchase.department_id == department_id,
            Purchase.order_num == order_num,
        )
    )


async def by_id(session: AsyncSession, partner_id: int, purchase_id: int) -> Purchase | None:
    return await session.scalar(
        select(Purchase).where(Purchase.partner_id == partner_id, Purchase.id == purchase_id)
    )


async def add_purchase_once(conn: Conn, fields: dict[str, Any]) -> int | None:
    """Inserts the purchase and returns its id; None when its department already has this
    ``order_num``. ``ON CONFLICT DO NOTHING`` rather than a savepoint around a plain insert: one
    round trip instead of three, and on PostgreSQL a concurrent insert of the same ``order_num``
    still makes this one wait for that transaction's outcome."""
    purchase_id = await conn.fetchval(_ADD_PURCHASE_ONCE, **fields)
    return int(purchase_id) if purchase_id is not None else None


async def finish_purchase(conn: Conn, purchase_id: int, **values: Any) -> None:
    await conn.execute(_FINISH_PURCHASE, purchase_id=purchase_id, **values)


async def link_code(conn: Conn, partner_id: int, purchase_id: int, code_id: int) -> None:
    await conn.execute(_LINK_CODE, partner_id=partner_id, purchase_id=purchase_id, code_id=code_id)


async def link_certificate(
    conn: Conn, partner_id: int, purchase_id: int, certificate_id: int, amount: Decimal
) -> None:
    await conn.execute(
        _LINK_CERTIFICATE,
        partner_id=partner_id,
        purchase_id=purchase_id,
        certificate_id=certificate_id,
        amount=amount,
    )


async def linked_code_ids(session: AsyncSession, partner_id: int, purchase_id: int) -> Sequence[int]:
    result = await session.scalars(
        select(PurchasePromocode.promocode_id).where(
            PurchasePromocode.partner_id == partner_id, PurchasePromocode.purchase_id == purchase_id
        )
    )
    return result.all()


async def mark_deleted(session: AsyncSession, partner_id: int, purchase_id: int, now: datetime) -> bool:
    """True for the one request that deletes it; a repeated delete changes nothing."""
    result = await session.execute(
        update(Purchase)
        .where(Purchase.partner_id == partner_id, Purchase.id == purchase_id, Purchase.deleted_at.is_(None))
        .values(deleted_at=now)
        .returning(Purchase.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def purchases_with_code(
    session: AsyncSession, partner_id: int, promocode_id: int
) -> Sequence[Purchase]:
    result = await session.scalars(
        select(Purchase)
        .join(PurchasePromocode, PurchasePromocode.purchase_id == Purchase.id)
        .where(PurchasePromocode.partner_id == partner_id, PurchasePromocode.promocode_id == promocode_id)
        .order_by(Purchase.purchase_date, Purchase.id)
    )
    return result.all()


async def purchases_with_certificate(
    session: AsyncSession, partner_id: int, certificate_id: int
) -> Sequence[tuple[Purchase, Decimal]]:
    rows = await session.execute(
        select(Purchase, PurchaseCertificate.amount)
        .join(PurchaseCertificate, PurchaseCertificate.purchase_id == Purchase.id)
        .where(
            PurchaseCertificate.partner_id == partner_id, PurchaseCertificate.certificate_id == certificate_id
        )
        .order_by(Purchase.purchase_date, Purchase.id)
    )
    return [(purchase, amount) for purchase, amount in rows]


async def purchases_of_customer(
    session: AsyncSession, partner_id: int, customer_id: int, limit: int
) -> Sequence[Purchase]:
    result = await session.scalars(
        select(Purchase)
        .where(Purchase.partner_id == partner_id, Purchase.customer_id == customer_id)
        .order_by(Purchase.purchase_date.desc(), Purchase.id.desc())
        .limit(limit)
    )
    return result.all()
