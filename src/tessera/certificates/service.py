"""Gift certificates: uploads, status and the created → activated → used lifecycle (SPEC §6)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import BinaryIO

from sqlalchemy.ext.asyncio import AsyncSession

from tessera import errors
from tessera.certificates import repository, rules
from tessera.certificates.models import Certificate, CertificateGroup
from tessera.certificates.rules import Transition
from tessera.clock import utcnow
from tessera.imports.bulk import Progress, import_numbers
from tessera.imports.parsers import FileFormat
from tessera.names import checked_name
from tessera.sql import Conn, on_session
from tessera.tenancy import service as tenancy

MAX_GROUP_NAME_LENGTH = 255


async def import_certificates(
    session: AsyncSession,
    partner_id: int,
    *,
    department_id: int,
    name: str,
    value: Decimal,
    stream: BinaryIO,
    fmt: FileFormat,
    on_progress: Progress | None = None,
) -> tuple[CertificateGroup, int]:
    """A new group in ``department_id`` holding every number of the file, or nothing at all."""
    name = checked_name(name, MAX_GROUP_NAME_LENGTH)
    department_id = await tenancy.department_of_partner(await on_session(session), partner_id, department_id)
    group = await repository.add_group(session, partner_id, department_id, name, value)

    async def existing(session: AsyncSession, numbers: Sequence[str]) -> Sequence[str]:
        return await repository.existing_numbers(session, partner_id, numbers)

    count = await import_numbers(
        session,
        stream,
        fmt,
        table="certificates",
        fixed={"partner_id": partner_id, "group_id": group.id, "department_id": department_id},
        min_length=rules.MIN_NUMBER_LENGTH,
        max_length=rules.MAX_NUMBER_LENGTH,
        existing_numbers=existing,
        on_progress=on_progress,
    )
    return group, count


async def list_groups(
    session: AsyncSession, partner_id: int, department_id: int | None, group_id: int | None = None
) -> Sequence[tuple[CertificateGroup, int, int, int]]:
    return await repository.list_groups(session, partner_id, department_id, group_id)


async def status(session: AsyncSession, partner_id: int, number: str) -> tuple[Certificate, CertificateGroup]:
    found = await repository.find(session, partner_id, number)
    if found is None:
        raise errors.CertificateNotFound()
    return found


async def _transition(
    conn: Conn, partner_id: int, number: str, target_dep_id: int, transition: Transition
) -> None:
    move = repository.activate if transition is Transition.ACTIVATE else repository.use
    # The guarded UPDATE goes first: a certificate of this partner whose department is
    # target_dep_id proves that department is the partner's, so the happy path is one statement.
    if await move(conn, partner_id, number, target_dep_id, utcnow()):
        return
    department_id = await tenancy.department_of_partner(conn, partner_id, target_dep_id)
    certificate = await repository.state_with_value(conn, partner_id, number)
    if certificate is None:
        raise errors.CertificateNotFound()
    raise rules.refusal(
        transition,
        same_department=certificate.department_id == department_id,
        activated=certificate.activated,
        used=certificate.used,
        deleted=certificate.deleted,
    )


async def activate(conn: Conn, partner_id: int, number: str, target_dep_id: int) -> None:
    await _transition(conn, partner_id, number, target_dep_id, Transition.ACTIVATE)


async def use(conn: Conn, partner_id: int, number: str, target_dep_id: int) -> None:
    await _transition(conn, partner_id, number, target_dep_id, Transition.USE)


async def delete(session: AsyncSession, partner_id: int, number: str) -> Certificate:
    """Final, from any state. Deleting twice answers with the first deletion (it is idempotent)."""
    await repository.delete(session, partner_id, number, utcnow())
    certificate, _ = await status(session, partner_id, number)
    return certificate
