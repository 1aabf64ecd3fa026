from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.customers.identifiers import CustomerRef, IdentifierKind
from tessera.customers.models import Customer, CustomerTag, Tag
from tessera.db import insert_or_ignore

_COLUMNS = {
    IdentifierKind.PHONE: Customer.phone,
    IdentifierKind.EMAIL: Customer.email,
    IdentifierKind.ORIGIN_USER_ID: Customer.origin_user_id,
}


async def find(session: AsyncSession, partner_id: int, ref: CustomerRef) -> Customer | None:
    return await session.scalar(
        select(Customer).where(Customer.partner_id == partner_id, _COLUMNS[ref.kind] == ref.value)
    )


async def find_id(session: AsyncSession, partner_id: int, ref: CustomerRef) -> int | None:
    # Core on the table: every issue and activation starts with this look-up.
    table = cast(Table, Customer.__table__)
    column = table.c[_COLUMNS[ref.kind].key]
    return await session.scalar(
        select(table.c.id).where(table.c.partner_id == partner_id, column == ref.value)
    )


async def get(session: AsyncSession, partner_id: int, customer_id: int) -> Customer | None:
    return await session.scalar(
        select(Customer).where(Customer.partner_id == partner_id, Customer.id == customer_id)
    )


async def add(session: AsyncSession, partner_id: int, fields: dict[str, Any]) -> Customer:
    customer = Customer(partner_id=partner_id, **fields)
    session.add(customer)
    await session.flush()
    return customer


async def ensure_tags(session: AsyncSession, partner_id: int, names: Sequence[str]) -> dict[str, int]:
    """Tag ids by name, creating the missing tags (concurrent creators both succeed).

    Tags are never deleted (only taken off customers), so the id of a tag that already existed
    is remembered on the pooled connection: activation tags a customer on every call. A tag this
    transaction creates is not remembered, since the transaction may still roll back.
    """
    connection = await session.connection()
    known: dict[tuple[int, str], int] = connection.info.setdefault("tag_ids", {})
    found = {name: known[(partner_id, name)] for name in names if (partner_id, name) in known}
    missing = [name for name in names if name not in found]
    if missing:
        existing = await _tag_ids(session, partner_id, missing)
        if len(known) < 10_000:
            known.update({(partner_id, name): tag_id for name, tag_id in existing.items()})
        found.update(existing)
        created = [name for name in missing if name not in existing]
        if created:
            await session.execute(
                insert_or_ignore(session, Tag.__table__),
                [{"partner_id": partner_id, "name": n} for n in created],
            )
            found.update(await _tag_ids(session, partner_id, created))
    return found


async def _tag_ids(session: AsyncSession, partner_id: int, names: Sequence[str]) -> dict[str, int]:
    rows = await session.execute(
        select(Tag.name, Tag.id).where(Tag.partner_id == partner_id, Tag.name.in_(names))
    )
    return {name: tag_id for name, tag_id in rows}


async def add_customer_tag(
    session: AsyncSession, partner_id: int, customer_id: int, tag_id: int, now: datetime
) -> bool:
    """True when the customer did not have the tag yet; the unique key settles concurrent adds."""
    result = await session.execute(
        insert_or_ignore(session, CustomerTag.__table__),
        {"partner_id": partner_id, "customer_id": customer_id, "tag_id": tag_id, "added_at": now},
    )
    return bool(getattr(result, "rowcount", 0))


async def customer_tags(
    session: AsyncSession, partner_id: int, customer_id: int
) -> Sequence[tuple[str, datetime]]:
    rows = await session.execute(
        select(Tag.name, CustomerTag.added_at)
        .join(Tag, Tag.id == CustomerTag.tag_id)
        .where(CustomerTag.partner_id == partner_id, CustomerTag.customer_id == customer_id)
        .order_by(CustomerTag.added_at, CustomerTag.id)
    )
    return rows.all()


async def delete_customer_tags(
    session: AsyncSession, partner_id: int, customer_id: int, names: Sequence[str]
) -> int:
    tag_ids = select(Tag.id).where(Tag.partner_id == partner_id, Tag.name.in_(names))
    result = await session.execute(
        delete(CustomerTag).where(
            CustomerTag.partner_id == partner_id,
            CustomerTag.customer_id == customer_id,
            CustomerTag.tag_id.in_(tag_ids),
        )
    )
    return int(getattr(result, "rowcount", 0))
