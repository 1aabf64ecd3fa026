from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.customers.identifiers import CustomerRef, IdentifierKind
from tessera.customers.models import Customer, CustomerRow, CustomerTag, Tag
from tessera.sql import Conn, Statement, as_date

_COLUMNS = {
    IdentifierKind.PHONE: Customer.phone,
    IdentifierKind.EMAIL: Customer.email,
    IdentifierKind.ORIGIN_USER_ID: Customer.origin_user_id,
}


async def find(session: AsyncSession, partner_id: int, ref: CustomerRef) -> Customer | None:
    return await session.scalar(
        select(Customer).where(Customer.partner_id == partner_id, _COLUMNS[ref.kind] == ref.value)
    )


_ROW_COLUMNS = (
    "id, partner_id, phone, email, origin_user_id, first_name, last_name, middle_name, birth_date, sex"
)
_FIND_ROW = {
    kind: Statement(
        f"SELECT {_ROW_COLUMNS} FROM customers WHERE partner_id = :partner_id AND {column.key} = :value"
    )
    for kind, column in _COLUMNS.items()
}
_ADD_ROW = Statement(
    "INSERT INTO customers (partner_id, phone, email, origin_user_id, first_name, last_name, middle_name,"
    " birth_date, sex, created_at, updated_at)"
    " VALUES (:partner_id, :phone, :email, :origin_user_id, :first_name, :last_name, :middle_name,"
    f" :birth_date, :sex, :now, :now) RETURNING {_ROW_COLUMNS}"
)
#: Given fields overwrite, absent ones (None) keep what is stored.
_UPDATE_ROW = Statement(
    "UPDATE customers SET phone = coalesce(:phone, phone), email = coalesce(:email, email),"
    " origin_user_id = coalesce(:origin_user_id, origin_user_id),"
    " first_name = coalesce(:first_name, first_name), last_name = coalesce(:last_name, last_name),"
    " middle_name = coalesce(:middle_name, middle_name), birth_date = coalesce(:birth_date, birth_date),"
    f" sex = coalesce(:sex, sex), updated_at = :now WHERE id = :customer_id RETURNING {_ROW_COLUMNS}"
)
WRITABLE = ("phone", "email", "origin_user_id", "first_name", "last_name", "middle_name", "birth_date", "sex")


def _customer_row(row: Sequence[Any]) -> CustomerRow:
    return CustomerRow(
        int(row[0]), int(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], as_date(row[8]), row[9]
    )


#: Contacts by one identifier, many at once (a batch of messages to send): the values travel as
#: one JSON array. On PostgreSQL each value is its own probe of the identifier's key (a subquery
#: per value): as ``= ANY(...)``, on statistics that lag a bulk creation of contacts, the planner
#: scanned another key for ``partner_id`` alone and filtered every customer of the partner.
IDS_BY = {
    kind: Statement(
        f"SELECT {column.key}, id FROM customers WHERE partner_id = :partner_id"
        f" AND {column.key} IN (SELECT value FROM json_each(:values))",
        postgresql="SELECT given.value, (SELECT id FROM customers"
        f" WHERE {column.key} = given.value AND partner_id = :partner_id)"
        " FROM jsonb_array_elements_text(:values::jsonb) AS given(value)",
    )
    for kind, column in _COLUMNS.items()
}
#: A contact known by this identifier alone; one that a concurrent writer created is left alone.
_ADD_BY = {
    kind: Statement(
        f"INSERT INTO customers (partner_id, {column.key}, created_at, updated_at)"
        " SELECT :partner_id, value, :now, :now FROM json_each(:values) WHERE true ON CONFLICT DO NOTHING",
        postgresql=f"INSERT INTO customers (partner_id, {column.key}, created_at, updated_at)"
        " SELECT CAST(:partner_id AS BIGINT), value, :now, :now"
        " FROM jsonb_array_elements_text(:values::jsonb) AS value ON CONFLICT DO NOTHING",
    )
    for kind, column in _COLUMNS.items()
}


async def ids_by(conn: Conn, partner_id: int, kind: IdentifierKind, values: Sequence[str]) -> dict[str, int]:
    """The ids of the partner's customers with these identifiers (of one kind), by identifier."""
    if not values:
        return {}
    rows = await conn.fetchall(IDS_BY[kind], partner_id=partner_id, values=list(values))
    return {row[0]: int(row[1]) for row in rows if row[1] is not None}


async def add_by(
    conn: Conn, partner_id: int, kind: IdentifierKind, values: Sequence[str], now: datetime
) -> None:
    """New customers known by these identifiers only; a value another customer took meanwhile
    is skipped (``ids_by`` then finds that customer)."""
    if values:
        await conn.execute(_ADD_BY[kind], partner_id=partner_id, values=list(values), now=now)


async def find_row(conn: Conn, partner_id: int, ref: CustomerRef) -> CustomerRow | None:
    """``find``, on the driver, for the paths that write customers there (``add_or_update``)."""
    row = await conn.fetchone(_FIND_ROW[ref.kind], partner_id=partner_id, value=ref.value)
    return _customer_row(row) if row is not None else None


async def add_row(conn: Conn, partner_id: int, fields: dict[str, Any], now: datetime) -> CustomerRow:
    values = {name: fields.get(name) for name in WRITABLE}
    row = await conn.fetchone(_ADD_ROW, partner_id=partner_id, now=now, **values)
    assert row is not None
    return _customer_row(row)


async def update_row(conn: Conn, customer_id: int, fields: dict[str, Any], now: datetime) -> CustomerRow:
    values = {name: fields.get(name) for name in WRITABLE}
    row = await conn.fetchone(_UPDATE_ROW, customer_id=customer_id, now=now, **values)
    assert row is not None
    return _customer_row(row)


async def get(session: AsyncSession, partner_id: int, customer_id: int) -> Customer | None:
    return await session.scalar(
        select(Customer).where(Customer.partner_id == partner_id, Customer.id == customer_id)
    )


_TAG_ID = Statement("SELECT id FROM tags WHERE partner_id = :partner_id AND name = :name")
_ADD_TAG = Statement(
    "INSERT INTO tags (partner_id, name, created_at) VALUES (:partner_id, :name, :now) ON CONFLICT DO NOTHING"
)


def tag_customers_sql(customers: str, dialect: str) -> str:
    """Gives tag ``:tag_id`` to each ``customer_id`` of ``customers`` (a FROM item) who lacks it;
    the unique key settles concurrent adds. Returns the ids of the customers who got it.

    A FROM item rather than one id, so that a statement that decides who gets the tag can give it
    in the same statement (see ``promocodes.repository``'s activation).
    """
    if dialect == "postgresql":
        partner, tag = "CAST(:partner_id AS BIGINT)", "CAST(:tag_id AS BIGINT)"
        now = "CAST(:now AS TIMESTAMP)"
    else:
        partner, tag, now = ":partner_id", ":tag_id", ":now"
    # WHERE true: SQLite would read the ON of ON CONFLICT as the FROM item's join condition.
    return (
        "INSERT INTO customer_tags (partner_id, customer_id, tag_id, added_at)"
        f" SELECT {partner}, c.customer_id, {tag}, {now} FROM {customers} AS c WHERE true"
        " ON CONFLICT DO NOTHING RETURNING customer_id"
    )


_ADD_CUSTOMER_TAG = Statement(
    tag_customers_sql("(SELECT :customer_id AS customer_id)", "sqlite"),
    postgresql=tag_customers_sql("(SELECT CAST(:customer_id AS BIGINT) AS customer_id)", "postgresql"),
)


def known_tag_id(conn: Conn, partner_id: int, name: str) -> int | None:
    """The tag's id when a committed unit of work of this process has already read it."""
    found = conn.known.get(("tag", partner_id, name))
    return int(found) if found is not None else None


async def ensure_tags(conn: Conn, partner_id: int, names: Sequence[str], now: datetime) -> dict[str, int]:
    """Tag ids by name, creating the missing tags (concurrent creators both succeed: the second
    one's insert does nothing, and its read then sees the first one's tag).

    Tags are never deleted (only taken off customers), so a tag's id is remembered once the unit
    of work commits (``Conn.known``): activation tags a customer on every call.
    """
    found: dict[str, int] = {}
    for name in names:
        tag_id = known_tag_id(conn, partner_id, name)
        if tag_id is None:
            tag_id = await conn.fetchval(_TAG_ID, partner_id=partner_id, name=name)
            if tag_id is None:
                await conn.execute(_ADD_TAG, partner_id=partner_id, name=name, now=now)
                tag_id = await conn.fetchval(_TAG_ID, partner_id=partner_id, name=name)
            conn.remember(("tag", partner_id, name), int(tag_id))
        found[name] = int(tag_id)
    return found


async def add_customer_tag(conn: Conn, partner_id: int, customer_id: int, tag_id: int, now: datetime) -> bool:
    """True when the customer did not have the tag yet; the unique key settles concurrent adds."""
    added = await conn.fetchval(
        _ADD_CUSTOMER_TAG, partner_id=partner_id, customer_id=customer_id, tag_id=tag_id, now=now
    )
    return added is not None


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
