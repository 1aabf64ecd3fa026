from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.certificates.models import Certificate, CertificateGroup
from tessera.sql import Conn, Statement, as_decimal

#: The guarded transitions are Core statements on the table: they are the hot path of `use`.
CERTIFICATES = cast(Table, Certificate.__table__)


async def add_group(
    session: AsyncSession, partner_id: int, department_id: int, name: str, value: Decimal
) -> CertificateGroup:
    group = CertificateGroup(partner_id=partner_id, department_id=department_id, name=name, value=value)
    session.add(group)
    await session.flush()
    return group


async def list_groups(
    session: AsyncSession, partner_id: int, department_id: int | None, group_id: int | None = None
) -> Sequence[tuple[CertificateGroup, int, int, int]]:
    """Each group (of a department, or the one group) with its total, activated and used counts
    (deleted certificates not counted)."""
    live = Certificate.deleted_at.is_(None)
    counted = select(
        Certificate.group_id,
        func.count().label("total"),
        func.count(Certificate.activated_at).label("activated"),
        func.count(Certificate.used_at).label("used"),
    ).where(Certificate.partner_id == partner_id, live)
    if group_id is not None:
        counted = counted.where(Certificate.group_id == group_id)
    counts = counted.group_by(Certificate.group_id).subquery()
    query = (
        select(
            CertificateGroup,
            func.coalesce(counts.c.total, 0),
            func.coalesce(counts.c.activated, 0),
            func.coalesce(counts.c.used, 0),
        )
        .outerjoin(counts, counts.c.group_id == CertificateGroup.id)
        .where(CertificateGroup.partner_id == partner_id)
        .order_by(CertificateGroup.id)
    )
    if department_id is not None:
        query = query.where(CertificateGroup.department_id == department_id)
    if group_id is not None:
        query = query.where(CertificateGroup.id == group_id)
    rows = await session.execute(query)
    return [(group, int(total), int(activated), int(used)) for group, total, activated, used in rows]


async def find(
    session: AsyncSession, partner_id: int, number: str
) -> tuple[Certificate, CertificateGroup] | None:
    row = await session.execute(
        select(Certificate, CertificateGroup)
        .join(CertificateGroup, CertificateGroup.id == Certificate.group_id)
        .where(Certificate.partner_id == partner_id, Certificate.number == number)
    )
    found = row.first()
    return (found[0], found[1]) if found else None


async def existing_numbers(session: AsyncSession, partner_id: int, numbers: Sequence[str]) -> Sequence[str]:
    result = await session.scalars(
        select(Certificate.number).where(
            Certificate.partner_id == partner_id, Certificate.number.in_(numbers)
        )
    )
    return result.all()


# The guarded transitions run on the driver (tessera.sql): they are the hot path of `use`.
_GUARD = (
    "WHERE partner_id = :partner_id AND number = :number AND department_id = :department_id"
    " AND used_at IS NULL AND deleted_at IS NULL"
)
_ACTIVATE = Statement(f"UPDATE certificates SET activated_at = :now {_GUARD} AND activated_at IS NULL")
_USE = Statement(f"UPDATE certificates SET used_at = :now {_GUARD} AND activated_at IS NOT NULL")
_WITH_VALUE = Statement(
    "SELECT c.id, c.department_id, c.activated_at, c.used_at, c.deleted_at, g.value"
    " FROM certificates c JOIN certificate_groups g ON g.id = c.group_id"
    " WHERE c.partner_id = :partner_id AND c.number = :number"
)


@dataclass(frozen=True, slots=True)
class CertificateState:
    """What a purchase needs to know of a certificate: where and whether it can pay, and how much."""

    id: int
    department_id: int
    activated: bool
    used: bool
    deleted: bool
    value: Decimal


async def state_with_value(conn: Conn, partner_id: int, number: str) -> CertificateState | None:
    row = await conn.fetchone(_WITH_VALUE, partner_id=partner_id, number=number)
    if row is None:
        return None
    value = as_decimal(row[5])
    assert value is not None
    return CertificateState(
        int(row[0]), int(row[1]), row[2] is not None, row[3] is not None, row[4] is not None, value
    )


async def activate(conn: Conn, partner_id: int, number: str, department_id: int, now: datetime) -> bool:
    """created → activated, only in the certificate's own department; one winner under concurrency."""
    changed = await conn.execute(
        _ACTIVATE, partner_id=partner_id, number=number, department_id=department_id, now=now
    )
    return changed > 0


async def use(conn: Conn, partner_id: int, number: str, department_id: int, now: datetime) -> bool:
    """activated → used, once: the guard ``used_at IS NULL`` lets exactly one request through."""
    changed = await conn.execute(
        _USE, partner_id=partner_id, number=number, department_id=department_id, now=now
    )
    return changed > 0


async def delete(session: AsyncSession, partner_id: int, number: str, now: datetime) -> bool:
    result = await session.execute(
        update(CERTIFICATES)
        .where(
            Certificate.partner_id == partner_id,
            Certificate.number == number,
            Certificate.deleted_at.is_(None),
        )
        .values(deleted_at=now)
        .returning(Certificate.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def certificates_of_group(
    session: AsyncSession, partner_id: int, group_id: int, limit: int
) -> Sequence[Certificate]:
    result = await session.scalars(
        select(Certificate)
        .where(Certificate.partner_id == partner_id, Certificate.group_id == group_id)
        .order_by(Certificate.id)
        .limit(limit)
    )
    return result.all()


async def get_certificate(
    session: AsyncSession, partner_id: int, certificate_id: int
) -> tuple[Certificate, CertificateGroup] | None:
    row = (
        await session.execute(
            select(Certificate, CertificateGroup)
            .join(CertificateGroup, CertificateGroup.id == Certificate.group_id)
            .where(Certificate.partner_id == partner_id, Certificate.id == certificate_id)
        )
    ).first()
    return (row[0], row[1]) if row is not None else None
