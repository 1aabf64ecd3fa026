"""Admin users and their sessions: all the SQL the sign-in needs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.admin.models import AdminSession, AdminUser
from tessera.tenancy.models import Partner


async def add_admin(session: AsyncSession, partner_id: int, email: str, password_hash: str) -> AdminUser:
    admin = AdminUser(partner_id=partner_id, email=email, password_hash=password_hash)
    session.add(admin)
    await session.flush()
    return admin


async def admin_by_email(session: AsyncSession, email: str) -> AdminUser | None:
    return await session.scalar(select(AdminUser).where(AdminUser.email == email))


async def add_session(
    session: AsyncSession, admin: AdminUser, token_hash: str, expires_at: datetime
) -> AdminSession:
    row = AdminSession(
        partner_id=admin.partner_id, admin_user_id=admin.id, token_hash=token_hash, expires_at=expires_at
    )
    session.add(row)
    await session.flush()
    return row


async def find_session(
    session: AsyncSession, token_hash: str, now: datetime
) -> tuple[AdminSession, AdminUser, Partner] | None:
    row = (
        await session.execute(
            select(AdminSession, AdminUser, Partner)
            .join(AdminUser, AdminUser.id == AdminSession.admin_user_id)
            .join(Partner, Partner.id == AdminSession.partner_id)
            .where(AdminSession.token_hash == token_hash, AdminSession.expires_at > now)
        )
    ).first()
    return (row[0], row[1], row[2]) if row is not None else None


async def delete_session(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(AdminSession).where(AdminSession.token_hash == token_hash))


async def delete_expired_sessions(session: AsyncSession, admin_user_id: int, now: datetime) -> None:
    await session.execute(
        delete(AdminSession).where(
            AdminSession.admin_user_id == admin_user_id, AdminSession.expires_at <= now
        )
    )
