from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.customers.models import Customer
from tessera.db import insert_or_ignore
from tessera.promocodes.models import CodeState, Promocode, PromocodeActivation, PromocodeGroup

CODES = cast(Table, Promocode.__table__)
GROUPS = cast(Table, PromocodeGroup.__table__)
ACTIVATIONS = cast(Table, PromocodeActivation.__table__)

# The hot paths' statements are built once, with bound parameters: building a statement costs
# more than running it (SQLAlchemy then reuses its compiled form from the cache).
_GROUP_BY_NAME = select(GROUPS).where(
    GROUPS.c.partner_id == bindparam("partner_id"), GROUPS.c.name == bindparam("name")
)
_GROUP_AND_CODE = (
    select(GROUPS, CODES)
    .select_from(
        GROUPS.outerjoin(
            CODES,
            # partner_id in the join lets the code be found through its unique (partner_id, number,
            # group_id) index; without it the database walks the whole group.
            and_(
                CODES.c.partner_id == GROUPS.c.partner_id,
                CODES.c.number == bindparam("number"),
                CODES.c.group_id == GROUPS.c.id,
            ),
        )
    )
    .where(GROUPS.c.partner_id == bindparam("partner_id"), GROUPS.c.name == bindparam("name"))
)
_FREE_CODE = (
    select(CODES.c.id)
    .where(
        CODES.c.group_id == bindparam("p_group_id"),
        CODES.c.state == CodeState.AVAILABLE,
        or_(CODES.c.expires_at.is_(None), CODES.c.expires_at > bindparam("p_now")),
    )
    .order_by(CODES.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_CLAIM = (
    update(CODES)
    .where(
        CODES.c.id == _FREE_CODE,
        CODES.c.partner_id == bindparam("p_partner_id"),
        CODES.c.state == CodeState.AVAILABLE,
    )
    .values(state=CodeState.ISSUED, customer_id=bindparam("p_customer_id"), receipt_date=bindparam("p_now"))
    .returning(*CODES.c)
)
_ACTIVATE_SINGLE_USE = (
    update(CODES)
    .where(
        CODES.c.id == bindparam("p_code_id"),
        CODES.c.activated_at.is_(None),
        or_(CODES.c.customer_id.is_(None), CODES.c.customer_id == bindparam("p_customer_id")),
    )
    .values(
        activated_at=bindparam("p_now"),
        customer_id=bindparam("p_customer_id"),
        receipt_date=func.coalesce(CODES.c.receipt_date, bindparam("p_now")),
        state=case((CODES.c.state == CodeState.AVAILABLE, CodeState.ISSUED), else_=CODES.c.state),
    )
    .returning(CODES.c.state)
)
_CODES_BY_NUMBER = (
    select(CODES, GROUPS)
    .join(GROUPS, GROUPS.c.id == CODES.c.group_id)
    .where(CODES.c.partner_id == bindparam("partner_id"), CODES.c.number == bindparam("number"))
    .order_by(CODES.c.group_id)
)


_CUSTOMERS = cast(Table, Customer.__table__)
#: The group by name and, in the same read, the id of the customer an identifier names.
_GROUP_WITH_CUSTOMER = {
    column: select(
        GROUPS,
        select(_CUSTOMERS.c.id)
        .where(_CUSTOMERS.c.partner_id == bindparam("partner_id"), _CUSTOMERS.c[column] == bindparam("value"))
        .scalar_subquery()
        .label("customer_id_found"),
    ).where(GROUPS.c.partner_id == bindparam("partner_id"), GROUPS.c.name == bindparam("name"))
    for column in ("phone", "email", "origin_user_id")
}


def _columns_of(row: Sequence[object], *tables: Table) -> list[dict[str, object]]:
    """A joined Core row as one column-name → value dict per table, in the order selected."""
    values, offset = [], 0
    for table in tables:
        width = len(table.c)
        values.append(dict(zip(table.c.keys(), row[offset : offset + width], strict=True)))
        offset += width
    return values


async def get_group(session: AsyncSession, partner_id: int, group_id: int) -> PromocodeGroup | None:
    return await session.scalar(
        select(PromocodeGroup).where(PromocodeGroup.partner_id == partner_id, PromocodeGroup.id == group_id)
    )


async def read_group_by_name(session: AsyncSession, partner_id: int, name: str) -> PromocodeGroup | None:
    """A detached group for the hot paths that only read it (issue, activate)."""
    row = (await session.execute(_GROUP_BY_NAME, {"partner_id": partner_id, "name": name})).first()
    return PromocodeGroup(**row._mapping) if row is not None else None


async def group_with_customer(
    session: AsyncSession, partner_id: int, group_name: str, identifier: str, value: str
) -> tuple[PromocodeGroup, int | None] | None:
    """The named group and the id of the customer ``identifier = value`` names, in one read.

    None when there is no such group; the id is None when there is no such customer.
    """
    params = {"partner_id": partner_id, "name": group_name, "value": value}
    row = (await session.execute(_GROUP_WITH_CUSTOMER[identifier], params)).first()
    if row is None:
        return None
    values = tuple(row)
    (group_values,) = _columns_of(values, GROUPS)
    group = PromocodeGroup(**group_values)
    customer_id = values[len(GROUPS.c)]
    return group, int(customer_id) if customer_id is not None else None


async def group_and_code(
    session: AsyncSession, partner_id: int, group_name: str, number: str
) -> tuple[PromocodeGroup, Promocode | None] | None:
    """The named group and its code with this number, in one read (None: no such group)."""
    params = {"partner_id": partner_id, "name": group_name, "number": number}
    row = (await session.execute(_GROUP_AND_CODE, params)).first()
    if row is None:
        return None
    group_values, code_values = _columns_of(tuple(row), GROUPS, CODES)
    code = Promocode(**code_values) if code_values["id"] is not None else None
    return PromocodeGroup(**group_values), code


async def get_group_by_name(session: AsyncSession, partner_id: int, name: str) -> PromocodeGroup | None:
    return await session.scalar(
        select(PromocodeGroup).where(PromocodeGroup.partner_id == partner_id, PromocodeGroup.name == name)
    )


async def add_group(
    session: AsyncSession, partner_id: int, name: str, group_type: int, apply_items_once: bool
) -> PromocodeGroup:
    group = PromocodeGroup(
        partner_id=partner_id,
        name=name,
        group_type=group_type,
        apply_items_once=apply_items_once,
        enabled=True,
    )
    session.add(group)
    await session.flush()
    return group


async def list_groups(session: AsyncSession, partner_id: int) -> Sequence[PromocodeGroup]:
    result = await session.scalars(
        select(PromocodeGroup).where(PromocodeGroup.partner_id == partner_id).order_by(PromocodeGroup.id)
    )
    return result.all()


async def state_counts(
    session: AsyncSession, partner_id: int, group_ids: Sequence[int]
) -> dict[int, dict[int, int]]:
    """Codes per state per group, read from the (group_id, state) index."""
    rows = await session.execute(
        select(Promocode.group_id, Promocode.state, func.count())
        .where(Promocode.partner_id == partner_id, Promocode.group_id.in_(group_ids))
        .group_by(Promocode.group_id, Promocode.state)
    )
    counts: dict[int, dict[int, int]] = {group_id: {} for group_id in group_ids}
    for group_id, state, count in rows:
        counts[group_id][state] = count
    return counts


async def find_by_number(
    session: AsyncSession, partner_id: int, number: str
) -> Sequence[tuple[Promocode, PromocodeGroup]]:
    rows = await session.execute(_CODES_BY_NUMBER, {"partner_id": partner_id, "number": number})
    found = []
    for row in rows:
        code_values, group_values = _columns_of(tuple(row), CODES, GROUPS)
        found.append((Promocode(**code_values), PromocodeGroup(**group_values)))
    return found


async def existing_numbers(
    session: AsyncSession, partner_id: int, group_id: int, numbers: Sequence[str]
) -> Sequence[str]:
    result = await session.scalars(
        select(Promocode.number).where(
            Promocode.partner_id == partner_id, Promocode.group_id == group_id, Promocode.number.in_(numbers)
        )
    )
    return result.all()


async def claim_next_available(
    session: AsyncSession, partner_id: int, group_id: int, customer_id: int, now: datetime
) -> Promocode | None:
    """Hands the group's next free code to the customer, in one statement.

    PostgreSQL: the subquery locks one free row and skips rows other issuers hold, so concurrent
    issuers never wait on each other or take the same code; the outer ``state = 1`` re-checks
    the row after the lock. SQLite: ``BEGIN IMMEDIATE`` already makes writers take turns, and
    ``FOR UPDATE`` compiles to nothing there.
    """
    # Core on the table, not the ORM: this is the hottest statement, and the row comes back whole.
    params = {"p_group_id": group_id, "p_partner_id": partner_id, "p_customer_id": customer_id, "p_now": now}
    result = await session.execute(_CLAIM, params)
    row = result.first()
    return Promocode(**row._mapping) if row is not None else None


async def activate_single_use(
    session: AsyncSession, code_id: int, customer_id: int, now: datetime
) -> int | None:
    """Marks a single-use code activated by this customer; None when someone got there first.

    One guarded UPDATE: it succeeds only while ``activated_at`` is empty and the code is free or
    was issued to this same customer, so concurrent activations have exactly one winner.
    Returns the code's state afterwards.
    """
    result = await session.execute(
        _ACTIVATE_SINGLE_USE, {"p_code_id": code_id, "p_customer_id": customer_id, "p_now": now}
    )
    state = result.scalar_one_or_none()
    return int(state) if state is not None else None


async def mark_issued(session: AsyncSession, code_id: int, now: datetime) -> int:
    """A multi-use code leaves the free pool on its first activation. Returns its state."""
    await session.execute(
        update(CODES)
        .where(CODES.c.id == code_id, CODES.c.state == CodeState.AVAILABLE)
        .values(state=CodeState.ISSUED, receipt_date=now)
    )
    return int(await session.scalar(select(CODES.c.state).where(CODES.c.id == code_id)) or 0)


async def record_activation(
    session: AsyncSession, partner_id: int, code_id: int, customer_id: int, department_id: int, now: datetime
) -> bool:
    """False when this customer had already activated this code (the unique key says so)."""
    result = await session.execute(
        insert_or_ignore(session, ACTIVATIONS),
        {
            "partner_id": partner_id,
            "promocode_id": code_id,
            "customer_id": customer_id,
            "department_id": department_id,
            "activated_at": now,
        },
    )
    return bool(getattr(result, "rowcount", 0))


async def codes_of_customer(
    session: AsyncSession, partner_id: int, customer_id: int
) -> Sequence[tuple[Promocode, PromocodeGroup]]:
    """Codes issued to the customer or activated by them."""
    activated = select(PromocodeActivation.promocode_id).where(
        PromocodeActivation.partner_id == partner_id, PromocodeActivation.customer_id == customer_id
    )
    rows = await session.execute(
        select(Promocode, PromocodeGroup)
        .join(PromocodeGroup, PromocodeGroup.id == Promocode.group_id)
        .where(
            Promocode.partner_id == partner_id,
            or_(Promocode.customer_id == customer_id, Promocode.id.in_(activated)),
        )
        .order_by(Promocode.receipt_date, Promocode.id)
    )
    return rows.all()


async def count_available_up_to(session: AsyncSession, group_id: int, limit: int) -> int:
    """Free codes in the group, counted no further than ``limit`` (a bounded index scan)."""
    free = (
        select(Promocode.id)
        .where(Promocode.group_id == group_id, Promocode.state == CodeState.AVAILABLE)
        .limit(limit)
        .subquery()
    )
    return int(await session.scalar(select(func.count()).select_from(free)) or 0)


async def raise_low_stock_level(session: AsyncSession, group_id: int, level: int) -> bool:
    """True for the one request that moves the group to this alert level: it fires the event."""
    result = await session.execute(
        update(PromocodeGroup)
        .where(PromocodeGroup.id == group_id, PromocodeGroup.low_stock_level < level)
        .values(low_stock_level=level)
        .returning(PromocodeGroup.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def codes_of_group(
    session: AsyncSession, partner_id: int, group_id: int, limit: int
) -> Sequence[Promocode]:
    """The group's first codes, for the admin's group page."""
    result = await session.scalars(
        select(Promocode)
        .where(Promocode.partner_id == partner_id, Promocode.group_id == group_id)
        .order_by(Promocode.id)
        .limit(limit)
    )
    return result.all()


async def get_code(
    session: AsyncSession, partner_id: int, code_id: int
) -> tuple[Promocode, PromocodeGroup] | None:
    row = (
        await session.execute(
            select(Promocode, PromocodeGroup)
            .join(PromocodeGroup, PromocodeGroup.id == Promocode.group_id)
            .where(Promocode.partner_id == partner_id, Promocode.id == code_id)
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


async def activations_of_code(
    session: AsyncSession, partner_id: int, code_id: int
) -> Sequence[tuple[PromocodeActivation, Customer]]:
    rows = await session.execute(
        select(PromocodeActivation, Customer)
        .join(Customer, Customer.id == PromocodeActivation.customer_id)
        .where(PromocodeActivation.partner_id == partner_id, PromocodeActivation.promocode_id == code_id)
        .order_by(PromocodeActivation.activated_at, PromocodeActivation.id)
    )
    return [(activation, customer) for activation, customer in rows]


async def activation_times_of_customer(
    session: AsyncSession, partner_id: int, customer_id: int
) -> dict[int, datetime]:
    """When the customer activated each code, by code id."""
    rows = await session.execute(
        select(PromocodeActivation.promocode_id, PromocodeActivation.activated_at).where(
            PromocodeActivation.partner_id == partner_id, PromocodeActivation.customer_id == customer_id
        )
    )
    return {code_id: activated_at for code_id, activated_at in rows}
