from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.customers import repository as customers_repository
from tessera.customers.models import Customer
from tessera.promocodes.models import (
    CodeRow,
    CodeState,
    GroupRow,
    Promocode,
    PromocodeActivation,
    PromocodeGroup,
)
from tessera.sql import Conn, Statement, as_datetime, as_decimal, as_json
from tessera.triggers import repository as triggers_repository

CODES = cast(Table, Promocode.__table__)
GROUPS = cast(Table, PromocodeGroup.__table__)
ACTIVATIONS = cast(Table, PromocodeActivation.__table__)

# The hot paths run on the driver (tessera.sql). The code states are written into the SQL as
# literals: a partial index (ix_promocodes_available, WHERE state = 1) is usable only when the
# query's own condition is a literal the planner can match, not a bound parameter.
AVAILABLE, ISSUED, APPLIED = int(CodeState.AVAILABLE), int(CodeState.ISSUED), int(CodeState.APPLIED)
_GROUP_COLUMNS = (
    "id, partner_id, name, group_type, apply_items_once, enabled, created_at, updated_at, discount_type,"
    " discount_value, discount_skus, min_cart_total, low_stock_warning, low_stock_alarm, low_stock_level"
)
_CODE_COLUMNS = (
    "id, partner_id, group_id, number, state, customer_id, receipt_date, activated_at, applied_times,"
    " date_of_use, expires_at"
)
GROUP_WIDTH, CODE_WIDTH = len(_GROUP_COLUMNS.split(",")), len(_CODE_COLUMNS.split(","))


def _prefixed(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


_G, _P = _prefixed(_GROUP_COLUMNS, "g"), _prefixed(_CODE_COLUMNS, "p")

_GROUP_BY_NAME = Statement(
    f"SELECT {_GROUP_COLUMNS} FROM promocode_groups WHERE partner_id = :partner_id AND name = :name"
)
#: The group by name and, in the same read, the id of the customer an identifier names.
_GROUP_WITH_CUSTOMER = {
    column: Statement(
        f"SELECT {_G}, (SELECT c.id FROM customers c"
        f" WHERE c.partner_id = :partner_id AND c.{column} = :value)"
        " FROM promocode_groups g WHERE g.partner_id = :partner_id AND g.name = :name"
    )
    for column in ("phone", "email", "origin_user_id")
}
# The group by name, its code with this number and the id of the customer an identifier names, in
# one read. partner_id in the join lets the code be found through its unique (partner_id, number,
# group_id) index; without it the database walks the whole group.
_GROUP_CODE_AND_CUSTOMER = {
    column: Statement(
        f"SELECT {_G}, {_P}, (SELECT c.id FROM customers c"
        f" WHERE c.partner_id = :partner_id AND c.{column} = :value)"
        " FROM promocode_groups g"
        " LEFT JOIN promocodes p ON p.partner_id = g.partner_id AND p.number = :number AND p.group_id = g.id"
        " WHERE g.partner_id = :partner_id AND g.name = :name"
    )
    for column in ("phone", "email", "origin_user_id")
}
_CODES_BY_NUMBER = Statement(
    f"SELECT {_P}, {_G} FROM promocodes p JOIN promocode_groups g ON g.id = p.group_id"
    " WHERE p.partner_id = :partner_id AND p.number = :number ORDER BY p.group_id"
)
_CODES_BY_NUMBERS = Statement(
    f"SELECT {_P}, {_G} FROM promocodes p JOIN promocode_groups g ON g.id = p.group_id"
    " WHERE p.partner_id = :partner_id AND p.number IN (SELECT value FROM json_each(:numbers))"
    " ORDER BY p.group_id, p.id",
    postgresql=f"SELECT {_P}, {_G} FROM promocodes p JOIN promocode_groups g ON g.id = p.group_id"
    " WHERE p.partner_id = :partner_id"
    " AND p.number = ANY(ARRAY(SELECT jsonb_array_elements_text(:numbers::jsonb)))"
    " ORDER BY p.group_id, p.id",
)
_APPLY = (
    f"UPDATE promocodes SET state = {APPLIED}, applied_times = applied_times + 1, date_of_use = :now"
    " WHERE id = :code_id"
)
_APPLY_MULTI_USE = Statement(_APPLY)
_APPLY_SINGLE_USE = Statement(f"{_APPLY} AND state <> {APPLIED}")


def _first_free(column: str, group_id: str, dialect: str, alias: str = "promocodes", limit: str = "1") -> str:
    """The first free, unexpired code of a group in id order (or the first ``limit``): the code an
    issue takes (``CLAIM``, ``CLAIM_MANY``) and the one the admin's preview shows
    (``_GROUP_WITH_NEXT_AVAILABLE``).

    On PostgreSQL, written as ``group_id = :group_id ORDER BY id``, the planner may walk the
    primary key in id order and filter, expecting a free code at once; but issued codes are
    exactly the lowest ids, so every issue walked past all of them (2.5 ms and 2,000 buffers per
    claim after 3,000 issues, growing). Asked in the free-code index's own order, (group_id, id),
    with group_id a range it cannot fold into a constant, only that index gives the order without
    a sort.
    """
    a = alias
    if dialect == "postgresql":
        group, order = f"{a}.group_id BETWEEN {group_id} AND {group_id}", f"{a}.group_id, {a}.id"
    else:
        group, order = f"{a}.group_id = {group_id}", f"{a}.id"
    return (
        f"SELECT {a}.{column} FROM promocodes {a} WHERE {group} AND {a}.state = {AVAILABLE}"
        f" AND ({a}.expires_at IS NULL OR {a}.expires_at > :now) ORDER BY {order} LIMIT {limit}"
    )


def _claim(dialect: str, lock: str) -> str:
    return (
        f"UPDATE promocodes SET state = {ISSUED}, customer_id = :customer_id, receipt_date = :now"
        f" WHERE id = ({_first_free('id', ':group_id', dialect, 'free')}{lock})"
        f" AND partner_id = :partner_id AND state = {AVAILABLE}"
        f" RETURNING {_CODE_COLUMNS}"
    )


#: Public for the test that checks its plan after an import.
CLAIM = Statement(_claim("sqlite", ""), postgresql=_claim("postgresql", " FOR UPDATE SKIP LOCKED"))


def _claim_many(dialect: str) -> str:
    """``CLAIM`` for a list of customers (a JSON array of ids) in one statement: the group's first
    free codes in id order, the n-th to the n-th customer. Fewer come back when fewer are free."""
    if dialect == "postgresql":
        wanted = (
            "SELECT CAST(value AS BIGINT) AS customer_id, position"
            " FROM jsonb_array_elements_text(:customer_ids::jsonb) WITH ORDINALITY AS w(value, position)"
        )
        lock = " FOR UPDATE SKIP LOCKED"
    else:
        wanted = "SELECT value AS customer_id, key + 1 AS position FROM json_each(:customer_ids)"
        lock = ""
    free = _first_free("id", ":group_id", dialect, "free", limit=":count")
    # RETURNING names only the updated table (SQLite allows no more): each code says its customer.
    return (
        f"WITH wanted AS ({wanted}),"
        # Chosen once (MATERIALIZED): as a join's inner side run again per row, the LIMIT would
        # reach past the codes this statement already took (see messaging's claim_deliveries).
        " picked AS MATERIALIZED (SELECT id, row_number() OVER (ORDER BY id) AS position"
        f" FROM ({free}{lock}) AS free)"
        f" UPDATE promocodes SET state = {ISSUED}, customer_id = wanted.customer_id, receipt_date = :now"
        " FROM picked JOIN wanted ON wanted.position = picked.position"
        f" WHERE promocodes.id = picked.id AND promocodes.partner_id = :partner_id"
        f" AND promocodes.state = {AVAILABLE}"
        f" RETURNING {_prefixed(_CODE_COLUMNS, 'promocodes')}"
    )


CLAIM_MANY = Statement(_claim_many("sqlite"), postgresql=_claim_many("postgresql"))
_ACTIVATE_SINGLE_USE_SQL = (
    "UPDATE promocodes SET activated_at = :now, customer_id = :customer_id,"
    " receipt_date = coalesce(receipt_date, :now),"
    f" state = CASE WHEN state = {AVAILABLE} THEN {ISSUED} ELSE state END"
    " WHERE id = :code_id AND activated_at IS NULL AND (customer_id IS NULL OR customer_id = :customer_id)"
    " RETURNING state, customer_id"
)
_RECORD_ACTIVATION_SQL = (
    "INSERT INTO promocode_activations (partner_id, promocode_id, customer_id, department_id, activated_at)"
    " VALUES (:partner_id, :code_id, :customer_id, :department_id, :now) ON CONFLICT DO NOTHING"
)
_ACTIVATE_SINGLE_USE = Statement(_ACTIVATE_SINGLE_USE_SQL)
#: PostgreSQL: the whole activation in one statement, so that it runs in autocommit without the
#: BEGIN and COMMIT round trips: the guarded UPDATE, the activation row, the customer's tag and
#: the workflows the tag starts. Each INSERT reads the UPDATE's RETURNING (or the tag's), so a
#: lost race writes nothing, and a customer who had the tag starts nothing.
_ACTIVATE_SINGLE_USE_AND_TAG = Statement(
    f"WITH activated AS ({_ACTIVATE_SINGLE_USE_SQL}),"
    " recorded AS (INSERT INTO promocode_activations"
    " (partner_id, promocode_id, customer_id, department_id, activated_at)"
    " SELECT CAST(:partner_id AS BIGINT), :code_id, :customer_id, CAST(:department_id AS BIGINT), :now"
    " FROM activated"
    " ON CONFLICT DO NOTHING),"
    f" tagged AS ({customers_repository.tag_customers_sql('activated', 'postgresql')}),"
    f" started AS ({triggers_repository.start_tag_runs_sql('tagged', 'postgresql')})"
    " SELECT state FROM activated"
)
_MARK_ISSUED = Statement(
    f"UPDATE promocodes SET state = {ISSUED}, receipt_date = :now WHERE id = :code_id AND state = {AVAILABLE}"
)
_STATE_OF = Statement("SELECT state FROM promocodes WHERE id = :code_id")
_RECORD_ACTIVATION = Statement(_RECORD_ACTIVATION_SQL)
_RETURN_UNSENT_SQL = (
    f"UPDATE promocodes SET state = {AVAILABLE}, customer_id = NULL, receipt_date = NULL"
    " WHERE id IN (:ids)"
    f" AND state = {ISSUED} AND activated_at IS NULL AND applied_times = 0"
    # A multi-use code's activations are rows of their own; it never gets an activated_at.
    " AND NOT EXISTS (SELECT 1 FROM promocode_activations a WHERE a.promocode_id = promocodes.id)"
    " RETURNING id"
)
_RETURN_UNSENT = Statement(
    _RETURN_UNSENT_SQL.replace(":ids", "SELECT value FROM json_each(:code_ids)"),
    postgresql=_RETURN_UNSENT_SQL.replace(
        ":ids", "SELECT jsonb_array_elements_text(:code_ids::jsonb)::bigint"
    ),
)
_COUNT_AVAILABLE_UP_TO = Statement(
    "SELECT count(*) FROM (SELECT id FROM promocodes"
    f" WHERE group_id = :group_id AND state = {AVAILABLE} LIMIT :limit) AS free"
)


def _group_with_next_available(dialect: str) -> str:
    return (
        f"SELECT {_G}, ({_first_free('number', 'g.id', dialect, 'p')})"
        " FROM promocode_groups g WHERE g.partner_id = :partner_id AND g.name = :name"
    )


#: The group by name and the number ``CLAIM`` would hand out next from it, read, not claimed.
_GROUP_WITH_NEXT_AVAILABLE = Statement(
    _group_with_next_available("sqlite"), postgresql=_group_with_next_available("postgresql")
)
_RAISE_LOW_STOCK_LEVEL = Statement(
    "UPDATE promocode_groups SET low_stock_level = :level WHERE id = :group_id AND low_stock_level < :level"
)


def group_row(row: Sequence[Any], at: int = 0) -> GroupRow:
    return GroupRow(
        int(row[at]),
        int(row[at + 1]),
        row[at + 2],
        int(row[at + 3]),
        bool(row[at + 4]),
        bool(row[at + 5]),
        as_datetime(row[at + 6]),  # type: ignore[arg-type]
        as_datetime(row[at + 7]),  # type: ignore[arg-type]
        row[at + 8],
        as_decimal(row[at + 9]),
        as_json(row[at + 10]),
        as_decimal(row[at + 11]),
        row[at + 12],
        row[at + 13],
        int(row[at + 14]),
    )


def code_row(row: Sequence[Any], at: int = 0) -> CodeRow:
    return CodeRow(
        int(row[at]),
        int(row[at + 1]),
        int(row[at + 2]),
        row[at + 3],
        int(row[at + 4]),
        row[at + 5],
        as_datetime(row[at + 6]),
        as_datetime(row[at + 7]),
        int(row[at + 8]),
        as_datetime(row[at + 9]),
        as_datetime(row[at + 10]),
    )


async def group_row_by_name(conn: Conn, partner_id: int, name: str) -> GroupRow | None:
    """The group as a frozen row, read on the driver (hot paths)."""
    row = await conn.fetchone(_GROUP_BY_NAME, partner_id=partner_id, name=name)
    return group_row(row) if row is not None else None


async def group_with_customer(
    conn: Conn, partner_id: int, group_name: str, identifier: str, value: str
) -> tuple[GroupRow, int | None] | None:
    """The named group and the id of the customer ``identifier = value`` names, in one read.

    None when there is no such group; the id is None when there is no such customer.
    """
    row = await conn.fetchone(
        _GROUP_WITH_CUSTOMER[identifier], partner_id=partner_id, name=group_name, value=value
    )
    if row is None:
        return None
    customer_id = row[GROUP_WIDTH]
    return group_row(row), int(customer_id) if customer_id is not None else None


async def group_code_and_customer(
    conn: Conn, partner_id: int, group_name: str, number: str, identifier: str, value: str
) -> tuple[GroupRow, CodeRow | None, int | None] | None:
    """The named group, its code with this number and the id of the customer ``identifier =
    value`` names, in one read. None when there is no such group; the code or the id is None
    when there is no such code or customer."""
    row = await conn.fetchone(
        _GROUP_CODE_AND_CUSTOMER[identifier],
        partner_id=partner_id,
        name=group_name,
        number=number,
        value=value,
    )
    if row is None:
        return None
    code = code_row(row, GROUP_WIDTH) if row[GROUP_WIDTH] is not None else None
    customer_id = row[GROUP_WIDTH + CODE_WIDTH]
    return group_row(row), code, int(customer_id) if customer_id is not None else None


async def find_by_number(conn: Conn, partner_id: int, number: str) -> list[tuple[CodeRow, GroupRow]]:
    rows = await conn.fetchall(_CODES_BY_NUMBER, partner_id=partner_id, number=number)
    return [(code_row(row), group_row(row, CODE_WIDTH)) for row in rows]


async def codes_by_numbers(
    conn: Conn, partner_id: int, numbers: Sequence[str]
) -> list[tuple[CodeRow, GroupRow]]:
    """The partner's codes with any of these numbers (one number may be in several groups)."""
    rows = await conn.fetchall(_CODES_BY_NUMBERS, partner_id=partner_id, numbers=list(numbers))
    return [(code_row(row), group_row(row, CODE_WIDTH)) for row in rows]


async def give_back(session: AsyncSession, code_id: int) -> None:
    """The one move back in the code's state machine (``CodeState``): deleting a purchase undoes
    its use of the code, and a code no purchase uses any more returns from applied to issued. It
    stays its customer's, never free again."""
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


async def return_unsent(conn: Conn, code_ids: Sequence[int]) -> list[int]:
    """Codes issued to a message that was never delivered go back to the pool, 2 → 1 (``CodeState``).

    Only while nobody used them: still issued, never activated (single- or multi-use) or applied;
    a send that failed late may have reached its recipient after all. Answers the ids that went
    back.
    """
    if not code_ids:
        return []
    rows = await conn.fetchall(_RETURN_UNSENT, code_ids=list(code_ids))
    return sorted(int(row[0]) for row in rows)


async def apply_code(conn: Conn, code_id: int, single_use: bool, now: datetime) -> bool:
    """Counts one use of the code in a purchase; a used single-use code refuses.

    One guarded UPDATE: of two purchases racing for the same single-use code, exactly one
    changes the row.
    """
    statement = _APPLY_SINGLE_USE if single_use else _APPLY_MULTI_USE
    return await conn.execute(statement, code_id=code_id, now=now) > 0


async def claim_next_available(
    conn: Conn, partner_id: int, group_id: int, customer_id: int, now: datetime
) -> CodeRow | None:
    """Hands the group's next free code to the customer, in one statement.

    PostgreSQL: the subquery locks one free row and skips rows other issuers hold, so concurrent
    issuers never wait on each other or take the same code; the outer ``state = 1`` re-checks
    the row after the lock. SQLite: ``BEGIN IMMEDIATE`` already makes writers take turns.
    """
    row = await conn.fetchone(
        CLAIM, group_id=group_id, partner_id=partner_id, customer_id=customer_id, now=now
    )
    return code_row(row) if row is not None else None


async def group_with_next_available(
    conn: Conn, partner_id: int, group_name: str, now: datetime
) -> tuple[GroupRow, str | None] | None:
    """The named group and the number of the code ``claim_next_available`` would hand out next,
    claiming nothing (the admin's message preview shows it). None when there is no such group;
    the number is None when the group has no free code."""
    row = await conn.fetchone(_GROUP_WITH_NEXT_AVAILABLE, partner_id=partner_id, name=group_name, now=now)
    if row is None:
        return None
    return group_row(row), row[GROUP_WIDTH]


async def claim_many_available(
    conn: Conn, partner_id: int, group_id: int, customer_ids: Sequence[int], now: datetime
) -> list[CodeRow | None]:
    """``claim_next_available`` for each of these customers in turn, in one statement: the
    codes, in the customers' order; None for those left without one (the group ran short)."""
    if not customer_ids:
        return []
    rows = await conn.fetchall(
        CLAIM_MANY,
        group_id=group_id,
        partner_id=partner_id,
        customer_ids=list(customer_ids),
        count=len(customer_ids),
        now=now,
    )
    by_customer: dict[int, list[CodeRow]] = {}
    for code in sorted((code_row(row) for row in rows), key=lambda code: code.id, reverse=True):
        by_customer.setdefault(code.customer_id or 0, []).append(code)
    # A customer named twice (one recipient, two deliveries) takes two codes, in id order.
    return [
        by_customer[customer_id].pop() if by_customer.get(customer_id) else None
        for customer_id in customer_ids
    ]


async def activate_single_use(
    conn: Conn,
    partner_id: int,
    code_id: int,
    customer_id: int,
    department_id: int,
    now: datetime,
    tag: tuple[int, str],
) -> int | None:
    """Marks a single-use code activated by this customer, records who activated it where, and
    gives the customer ``tag`` (id, name), starting its workflows if the tag is new to them.
    None when someone got there first (and then nothing is written).

    One guarded UPDATE decides: it succeeds only while ``activated_at`` is empty and the code is
    free or was issued to this same customer, so concurrent activations have exactly one winner.
    Returns the code's state afterwards.
    """
    tag_id, tag_name = tag
    params = {"partner_id": partner_id, "code_id": code_id, "customer_id": customer_id, "now": now}
    if not conn.is_sqlite:
        state = await conn.fetchval(
            _ACTIVATE_SINGLE_USE_AND_TAG, department_id=department_id, tag_id=tag_id, tag=tag_name, **params
        )
        return int(state) if state is not None else None
    state = await conn.fetchval(_ACTIVATE_SINGLE_USE, code_id=code_id, customer_id=customer_id, now=now)
    if state is None:
        return None
    await record_activation(conn, partner_id, code_id, customer_id, department_id, now)
    if await customers_repository.add_customer_tag(conn, partner_id, customer_id, tag_id, now):
        await triggers_repository.start_tag_runs(conn, partner_id, customer_id, tag_name, now)
    return int(state)


async def mark_issued(conn: Conn, code_id: int, now: datetime) -> int:
    """A multi-use code leaves the free pool on its first activation. Returns its state."""
    await conn.execute(_MARK_ISSUED, code_id=code_id, now=now)
    return int(await conn.fetchval(_STATE_OF, code_id=code_id) or 0)


async def record_activation(
    conn: Conn, partner_id: int, code_id: int, customer_id: int, department_id: int, now: datetime
) -> bool:
    """False when this customer had already activated this code (the unique key says so)."""
    added = await conn.execute(
        _RECORD_ACTIVATION,
        partner_id=partner_id,
        code_id=code_id,
        customer_id=customer_id,
        department_id=department_id,
        now=now,
    )
    return added > 0


async def count_available_up_to(conn: Conn, group_id: int, limit: int) -> int:
    """Free codes in the group, counted no further than ``limit`` (a bounded index scan)."""
    return int(await conn.fetchval(_COUNT_AVAILABLE_UP_TO, group_id=group_id, limit=limit) or 0)


async def raise_low_stock_level(conn: Conn, group_id: int, level: int) -> bool:
    """True for the one request that moves the group to this alert level: it fires the event."""
    return await conn.execute(_RAISE_LOW_STOCK_LEVEL, group_id=group_id, level=level) > 0


async def get_group(session: AsyncSession, partner_id: int, group_id: int) -> PromocodeGroup | None:
    return await session.scalar(
        select(PromocodeGroup).where(PromocodeGroup.partner_id == partner_id, PromocodeGroup.id == group_id)
    )


async def group_in_session_by_name(
    session: AsyncSession, partner_id: int, name: str
) -> PromocodeGroup | None:
    """The group as an ORM object attached to the session, for cold paths that change it."""
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


async def existing_numbers(
    session: AsyncSession, partner_id: int, group_id: int, numbers: Sequence[str]
) -> Sequence[str]:
    result = await session.scalars(
        select(Promocode.number).where(
            Promocode.partner_id == partner_id, Promocode.group_id == group_id, Promocode.number.in_(numbers)
        )
    )
    return result.all()


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
