from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.db import insert_or_ignore
from tessera.promocodes.models import CodeState, Promocode, PromocodeGroup
from tessera.purchases.models import Product, Purchase, PurchaseCertificate, PurchasePromocode


async def codes_by_numbers(
    session: AsyncSession, partner_id: int, numbers: Sequence[str]
) -> Sequence[tuple[Promocode, PromocodeGroup]]:
    rows = await session.execute(
        select(Promocode, PromocodeGroup)
        .join(PromocodeGroup, PromocodeGroup.id == Promocode.group_id)
        .where(Promocode.partner_id == partner_id, Promocode.number.in_(numbers))
        .order_by(Promocode.group_id, Promocode.id)
    )
    return rows.all()


async def apply_code(session: AsyncSession, code_id: int, single_use: bool, now: datetime) -> bool:
    """Counts one use of the code in a purchase; a used single-use code refuses.

    One guarded UPDATE: of two purchases racing for the same single-use code, exactly one
    changes the row.
    """
    query = update(Promocode).where(Promocode.id == code_id)
    if single_use:
        query = query.where(Promocode.state != CodeState.APPLIED)
    result = await session.execute(
        query.values(state=CodeState.APPLIED, applied_times=Promocode.applied_times + 1, date_of_use=now)
        .returning(Promocode.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def give_back_code(session: AsyncSession, code_id: int) -> None:
    """Undoes one use when its purchase is deleted: the code returns to issued, never to free."""
    await session.execute(
        update(Promocode)
        .where(Promocode.id == code_id, Promocode.applied_times > 0)
        .values(
            applied_times=Promocode.applied_times - 1,
            # else_ is the column, not a literal: it gives the CASE its type on PostgreSQL.
            state=case((Promocode.applied_times <= 1, CodeState.ISSUED), else_=Promocode.state),
        )
        .execution_options(synchronize_session=False)
    )


async def ensure_products(session: AsyncSession, partner_id: int, skus: Sequence[str]) -> dict[str, int]:
    """The SKUs' product ids, creating the products not seen before. A partner sells the same
    SKUs again and again: the look-up usually finds them all and nothing is inserted."""
    found = await product_ids(session, partner_id, skus)
    missing = [sku for sku in dict.fromkeys(skus) if sku not in found]
    if not missing:
        return found
    await session.execute(
        insert_or_ignore(session, Product.__table__), [{"partner_id": partner_id, "sku": s} for s in missing]
    )
    return {**found, **await product_ids(session, partner_id, missing)}


async def product_ids(session: AsyncSession, partner_id: int, skus: Sequence[str]) -> dict[str, int]:
    rows = await session.execute(
        select(Product.sku, Product.id).where(Product.partner_id == partner_id, Product.sku.in_(skus))
    )
    return {sku: product_id for sku, product_id in rows}


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


async def add_purchase_once(session: AsyncSession, fields: dict[str, Any]) -> int | None:
    """Inserts the purchase and returns its id; None when its department already has this
    ``order_num``. ``ON CONFLICT DO NOTHING`` rather than a savepoint around a plain insert: one
    round trip instead of three, and on PostgreSQL a concurrent insert of the same ``order_num``
    still makes this one wait for that transaction's outcome."""
    purchase_id: int | None = await session.scalar(insert_or_ignore(session, Purchase, Purchase.id), fields)
    return purchase_id


async def finish_purchase(session: AsyncSession, purchase_id: int, **values: Any) -> None:
    await session.execute(update(Purchase).where(Purchase.id == purchase_id).values(**values))


async def link_code(session: AsyncSession, partner_id: int, purchase_id: int, code_id: int) -> None:
    await session.execute(
        insert(PurchasePromocode).values(partner_id=partner_id, purchase_id=purchase_id, promocode_id=code_id)
    )


async def link_certificate(
    session: AsyncSession, partner_id: int, purchase_id: int, certificate_id: int, amount: Decimal
) -> None:
    session.add(
        PurchaseCertificate(
            partner_id=partner_id, purchase_id=purchase_id, certificate_id=certificate_id, amount=amount
        )
    )
    await session.flush()


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
