"""Customers and their tags (SPEC §4)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tessera import errors
from tessera.clock import utcnow
from tessera.customers import repository
from tessera.customers.identifiers import (
    CustomerRef,
    IdentifierKind,
    normalize_email,
    normalize_origin_user_id,
    normalize_phone,
)
from tessera.customers.models import Customer, CustomerRow
from tessera.sql import Conn, is_unique_violation
from tessera.triggers import service as triggers

MAX_TAG_LENGTH = 255
PROFILE_FIELDS = ("first_name", "last_name", "middle_name", "birth_date", "sex")


@dataclass(frozen=True, slots=True)
class CustomerInput:
    phone: str | None = None
    email: str | None = None
    origin_user_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    birth_date: date | None = None
    sex: int | None = None

    @classmethod
    def parse(
        cls,
        *,
        phone: str | None,
        email: str | None,
        origin_user_id: str | None,
        birth_date: str | None = None,
        sex: int | None = None,
        **names: str | None,
    ) -> CustomerInput:
        parsed_birth_date = None
        if birth_date:
            try:
                parsed_birth_date = date.fromisoformat(birth_date[:10])
            except ValueError:
                raise errors.InvalidParameter("birth_date", "use YYYY-MM-DD") from None
            # SailPlay clamps years before 1900 to 1900.
            if parsed_birth_date.year < 1900:
                parsed_birth_date = parsed_birth_date.replace(year=1900)
        if sex is not None and sex not in (1, 2, 3):
            raise errors.InvalidParameter("sex", "1 male, 2 female, 3 other")
        return cls(
            phone=normalize_phone(phone) if phone else None,
            email=normalize_email(email) if email else None,
            origin_user_id=normalize_origin_user_id(origin_user_id) if origin_user_id else None,
            birth_date=parsed_birth_date,
            sex=sex,
            **{k: v for k, v in names.items() if k in ("first_name", "last_name", "middle_name")},
        )

    def refs(self) -> list[CustomerRef]:
        pairs = (
            (IdentifierKind.PHONE, self.phone),
            (IdentifierKind.EMAIL, self.email),
            (IdentifierKind.ORIGIN_USER_ID, self.origin_user_id),
        )
        return [CustomerRef(kind, value) for kind, value in pairs if value]


_COMPLETES = (IdentifierKind.ORIGIN_USER_ID, IdentifierKind.PHONE, IdentifierKind.EMAIL)

_TAKEN = {
    IdentifierKind.PHONE: errors.PhoneTaken,
    IdentifierKind.EMAIL: errors.EmailTaken,
    IdentifierKind.ORIGIN_USER_ID: errors.OriginUserIdTaken,
}


async def add_or_update(conn: Conn, partner_id: int, data: CustomerInput) -> CustomerRow:
    """``users/add``: creates the customer, or completes the one an identifier already names.

    The identifiers given must not name two different customers: that is the -200007/-200010
    conflict. Profile fields that are given overwrite stored ones; absent ones are kept.
    """
    refs = data.refs()
    if not refs:
        raise errors.MissingCustomerIdentifier()
    fields: dict[str, Any] = {
        name: getattr(data, name) for name in PROFILE_FIELDS if getattr(data, name) is not None
    }
    fields.update({ref.kind.value: ref.value for ref in refs})
    existing = await _existing(conn, partner_id, refs)
    if existing is not None and all(getattr(existing, ref.kind.value) == ref.value for ref in refs):
        # Known by every identifier given (a returning customer): nothing can collide.
        return await _write(conn, partner_id, existing, fields)
    try:
        # A new customer or a new identifier may collide with a concurrent request's.
        async with conn.savepoint():
            return await _write(conn, partner_id, existing, fields)
    except Exception as error:
        if not is_unique_violation(error):
            raise
        # A concurrent request took an identifier between our look-up and our write: now the
        # look-up sees it, and this becomes an update (or the identifier is "taken").
        existing = await _existing(conn, partner_id, refs)
        if existing is None:
            raise
        return await _write(conn, partner_id, existing, fields)


async def find_or_add_many(
    conn: Conn, partner_id: int, kind: IdentifierKind, values: Sequence[str]
) -> dict[str, int]:
    """The ids of the customers these identifiers (of one kind, normalized) name, by identifier;
    those nobody has yet become new customers known by it alone. Three statements for any number:
    the contacts of a batch of messages."""
    found = await repository.ids_by(conn, partner_id, kind, values)
    missing = sorted(set(values) - found.keys())
    if missing:
        await repository.add_by(conn, partner_id, kind, missing, utcnow())
        found.update(await repository.ids_by(conn, partner_id, kind, missing))
    return found


async def _write(
    conn: Conn, partner_id: int, existing: CustomerRow | None, fields: dict[str, Any]
) -> CustomerRow:
    if existing is None:
        return await repository.add_row(conn, partner_id, fields, utcnow())
    return await repository.update_row(conn, existing.id, fields, utcnow())


async def _existing(conn: Conn, partner_id: int, refs: list[CustomerRef]) -> CustomerRow | None:
    """The customer to complete: the one the partner's own id names, else the phone's, else the
    email's. Another identifier given that names someone else is "taken" (-200007 / -200010)."""
    owners = {ref.kind: await repository.find_row(conn, partner_id, ref) for ref in refs}
    existing = next((owners[k] for k in _COMPLETES if owners.get(k) is not None), None)
    for kind, owner in owners.items():
        if owner is not None and existing is not None and owner.id != existing.id:
            raise _TAKEN[kind]()
    return existing


async def get(session: AsyncSession, partner_id: int, ref: CustomerRef) -> Customer:
    customer = await repository.find(session, partner_id, ref)
    if customer is None:
        raise errors.CustomerNotFound()
    return customer


async def get_id(conn: Conn, partner_id: int, ref: CustomerRef) -> int:
    customer = await repository.find_row(conn, partner_id, ref)
    if customer is None:
        raise errors.CustomerNotFound()
    return customer.id


def parse_tag_names(raw: str) -> list[str]:
    """``tags=Tag1,Tag2``: trimmed, de-duplicated, in the order given."""
    names = list(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if not names:
        raise errors.MissingField("tags")
    for name in names:
        if len(name) > MAX_TAG_LENGTH:
            raise errors.InvalidParameter("tags", f"a tag is longer than {MAX_TAG_LENGTH} characters")
    return names


async def add_tags(
    conn: Conn,
    partner_id: int,
    customer_id: int,
    names: Sequence[str],
    now: datetime | None = None,
) -> list[str]:
    """Gives the customer these tags and starts the workflows of those new to them (returned)."""
    now = now or utcnow()
    tag_ids = await repository.ensure_tags(conn, partner_id, names, now)
    added = []
    for name in names:
        if await repository.add_customer_tag(conn, partner_id, customer_id, tag_ids[name], now):
            added.append(name)
    await triggers.tags_added(conn, partner_id, customer_id, added)
    return added


@contextlib.asynccontextmanager
async def tagging(conn: Conn, partner_id: int, name: str, now: datetime) -> AsyncIterator[int]:
    """The id of tag ``name`` for a write that gives it, in the block.

    A tag this process has not seen yet may have to be created: then the block runs in one
    transaction with the creation (``conn.atomic()``), so a write that fails leaves no tag behind.
    Once the id is known, the block adds nothing, and a single statement in it can run in
    autocommit (``Database.write_one``).
    """
    tag_id = repository.known_tag_id(conn, partner_id, name)
    if tag_id is not None:
        yield tag_id
        return
    async with conn.atomic():
        yield (await repository.ensure_tags(conn, partner_id, [name], now))[name]


async def list_tags(
    session: AsyncSession, partner_id: int, customer_id: int
) -> Sequence[tuple[str, datetime]]:
    return await repository.customer_tags(session, partner_id, customer_id)


async def delete_tags(session: AsyncSession, partner_id: int, customer_id: int, names: Sequence[str]) -> int:
    return await repository.delete_customer_tags(session, partner_id, customer_id, names)
