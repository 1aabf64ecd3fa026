from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.sql import Conn, Statement, as_datetime
from tessera.tenancy.models import ApiKey, AuthToken, Department, Employee, Partner


async def add_partner(session: AsyncSession, name: str) -> Partner:
    partner = Partner(name=name)
    session.add(partner)
    await session.flush()
    return partner


async def get_partner(session: AsyncSession, partner_id: int) -> Partner | None:
    return await session.get(Partner, partner_id)


async def add_department(session: AsyncSession, partner_id: int, name: str, key_hash: str) -> Department:
    department = Department(partner_id=partner_id, name=name, key_hash=key_hash)
    session.add(department)
    await session.flush()
    return department


async def get_department(session: AsyncSession, department_id: int) -> Department | None:
    return await session.get(Department, department_id)


async def add_employee(session: AsyncSession, department: Department, pin_code: str) -> Employee:
    employee = Employee(partner_id=department.partner_id, department_id=department.id, pin_code=pin_code)
    session.add(employee)
    await session.flush()
    return employee


async def pin_codes(session: AsyncSession, department: Department) -> Sequence[str]:
    result = await session.scalars(
        select(Employee.pin_code)
        .where(Employee.partner_id == department.partner_id, Employee.department_id == department.id)
        .order_by(Employee.id)
    )
    return result.all()


async def add_token(
    session: AsyncSession, department: Department, pin_code: str, token_hash: str, expires_at: datetime | None
) -> None:
    session.add(
        AuthToken(
            partner_id=department.partner_id,
            department_id=department.id,
            pin_code=pin_code,
            token_hash=token_hash,
            expires_at=expires_at,
        )
    )
    await session.flush()


# Every request authenticates: these run on the driver (tessera.sql).
_FIND_TOKEN = Statement(
    "SELECT partner_id, department_id, pin_code, expires_at FROM auth_tokens"
    " WHERE token_hash = :token_hash AND department_id = :department_id"
    " AND (expires_at IS NULL OR expires_at > :now)"
)
_API_KEY_EXISTS = Statement(
    "SELECT id FROM api_keys WHERE partner_id = :partner_id AND key_hash = :key_hash AND revoked_at IS NULL"
)
_PARTNER_OF_DEPARTMENT = Statement("SELECT partner_id FROM departments WHERE id = :department_id")


@dataclass(frozen=True, slots=True)
class TokenRow:
    partner_id: int
    department_id: int
    pin_code: str
    expires_at: datetime | None


async def find_token(conn: Conn, token_hash: str, department_id: int, now: datetime) -> TokenRow | None:
    row = await conn.fetchone(_FIND_TOKEN, token_hash=token_hash, department_id=department_id, now=now)
    if row is None:
        return None
    return TokenRow(int(row[0]), int(row[1]), row[2], as_datetime(row[3]))


async def partner_of_department(conn: Conn, department_id: int) -> int | None:
    partner_id = await conn.fetchval(_PARTNER_OF_DEPARTMENT, department_id=department_id)
    return int(partner_id) if partner_id is not None else None


_COUNT_LOOKUP_MISS = Statement(
    "INSERT INTO lookup_misses (partner_id, client, minute, misses)"
    " VALUES (:partner_id, :client, :minute, 1)"
    " ON CONFLICT (partner_id, client, minute) DO UPDATE SET misses = lookup_misses.misses + 1"
    " RETURNING misses"
)
_FORGET_LOOKUP_MISSES = Statement("DELETE FROM lookup_misses WHERE minute < :minute")


async def count_lookup_miss(conn: Conn, partner_id: int, client: str, minute: int) -> int:
    """Counts one failed look-up; answers how many this client has had in this minute, in every
    process together."""
    misses = await conn.fetchval(_COUNT_LOOKUP_MISS, partner_id=partner_id, client=client, minute=minute)
    return int(misses)


async def forget_lookup_misses(conn: Conn, before_minute: int) -> None:
    await conn.execute(_FORGET_LOOKUP_MISSES, minute=before_minute)


async def add_api_key(session: AsyncSession, partner_id: int, key_hash: str, prefix: str) -> ApiKey:
    api_key = ApiKey(partner_id=partner_id, key_hash=key_hash, prefix=prefix)
    session.add(api_key)
    await session.flush()
    return api_key


async def api_key_is_live(conn: Conn, partner_id: int, key_hash: str) -> bool:
    return await conn.fetchval(_API_KEY_EXISTS, partner_id=partner_id, key_hash=key_hash) is not None


async def count_partners(session: AsyncSession) -> int:
    return len((await session.scalars(select(Partner.id).limit(1))).all())


async def list_departments(session: AsyncSession, partner_id: int) -> Sequence[Department]:
    result = await session.scalars(
        select(Department).where(Department.partner_id == partner_id).order_by(Department.id)
    )
    return result.all()


async def department_names(session: AsyncSession, partner_id: int) -> dict[int, str]:
    rows = await session.execute(
        select(Department.id, Department.name).where(Department.partner_id == partner_id)
    )
    return {department_id: name for department_id, name in rows}


async def pin_codes_by_department(session: AsyncSession, partner_id: int) -> dict[int, list[str]]:
    rows = await session.execute(
        select(Employee.department_id, Employee.pin_code)
        .where(Employee.partner_id == partner_id)
        .order_by(Employee.id)
    )
    pins: dict[int, list[str]] = {}
    for department_id, pin_code in rows:
        pins.setdefault(department_id, []).append(pin_code)
    return pins


async def list_api_keys(session: AsyncSession, partner_id: int) -> Sequence[ApiKey]:
    result = await session.scalars(select(ApiKey).where(ApiKey.partner_id == partner_id).order_by(ApiKey.id))
    return result.all()


async def revoke_api_key(session: AsyncSession, partner_id: int, api_key_id: int, now: datetime) -> bool:
    """Guarded: only a live key of this partner is revoked, once."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.partner_id == partner_id, ApiKey.id == api_key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True, slots=True)
class DepartmentListed:
    """A department with its partner's name, for `tessera departments list`."""

    id: int
    name: str
    partner_id: int
    partner_name: str


async def departments_with_partners(
    session: AsyncSession, partner_id: int | None = None
) -> list[DepartmentListed]:
    query = select(Department.id, Department.name, Department.partner_id, Partner.name).join(
        Partner, Partner.id == Department.partner_id
    )
    if partner_id is not None:
        query = query.where(Department.partner_id == partner_id)
    rows = await session.execute(query.order_by(Department.id))
    return [DepartmentListed(int(row[0]), row[1], int(row[2]), row[3]) for row in rows]


async def set_department_key_hash(session: AsyncSession, department_id: int, key_hash: str) -> bool:
    """Replaces the department's key: the old one stops logging in at once. False: no such department."""
    result = await session.execute(
        update(Department).where(Department.id == department_id).values(key_hash=key_hash)
    )
    return bool(getattr(result, "rowcount", 0))
