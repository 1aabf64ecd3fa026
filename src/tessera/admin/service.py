"""Signing admins in and out, and the CSRF token that every form of a session carries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tessera import errors
from tessera.admin import repository
from tessera.admin.models import AdminSession, AdminUser
from tessera.clock import utcnow
from tessera.customers.identifiers import normalize_email
from tessera.secrets import fast_hash, hash_password, new_token, verify_password
from tessera.tenancy import repository as tenancy_repository
from tessera.tenancy.models import Partner

MIN_PASSWORD_LENGTH = 8
SESSION_LIFETIME = timedelta(hours=12)

_unknown_admin_hash: str | None = None


def _hash_for_unknown_admin() -> str:
    """Verified when the email is unknown, so a wrong email costs as long as a wrong password and
    the sign-in form does not tell which emails have accounts."""
    global _unknown_admin_hash
    if _unknown_admin_hash is None:
        _unknown_admin_hash = hash_password(new_token())
    return _unknown_admin_hash


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who is behind a session cookie."""

    admin_id: int
    email: str
    partner_id: int
    partner_name: str
    session_token: str


class SignInFailed(errors.TesseraError):
    status_code = -7
    message = "Wrong email or password"


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise errors.InvalidParameter("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


async def create_admin(session: AsyncSession, partner_id: int, email: str, password: str) -> int:
    email = normalize_email(email)
    check_password(password)
    if await tenancy_repository.get_partner(session, partner_id) is None:
        raise errors.PartnerNotFound(f"Partner {partner_id} not found")
    if await repository.admin_by_email(session, email) is not None:
        raise errors.InvalidParameter("email", f"an admin with email {email} already exists")
    password_hash = await asyncio.to_thread(hash_password, password)
    admin = await repository.add_admin(session, partner_id, email, password_hash)
    return admin.id


async def sign_in(session: AsyncSession, email: str, password: str) -> str:
    """Checks the password and opens a session; returns the cookie's token."""
    try:
        email = normalize_email(email)
    except errors.TesseraError:
        email = ""
    admin = await repository.admin_by_email(session, email) if email else None
    # argon2 takes tens of milliseconds by design: keep it off the event loop.
    stored = admin.password_hash if admin is not None else _hash_for_unknown_admin()
    matches = await asyncio.to_thread(verify_password, password, stored)
    if admin is None or not matches:
        raise SignInFailed()
    now = utcnow()
    await repository.delete_expired_sessions(session, admin.id, now)
    token = new_token()
    await repository.add_session(session, admin, fast_hash(token), now + SESSION_LIFETIME)
    return token


async def signed_in(session: AsyncSession, token: str) -> SignedIn | None:
    found = await repository.find_session(session, fast_hash(token), utcnow())
    if found is None:
        return None
    _, admin, partner = found
    return SignedIn(admin.id, admin.email, partner.id, partner.name, token)


async def sign_out(session: AsyncSession, token: str) -> None:
    await repository.delete_session(session, fast_hash(token))


def csrf_token(secret_key: str, session_token: str) -> str:
    """Derived from the session, so nothing more is stored, and useless without the session."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret_key: str, session_token: str, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(csrf_token(secret_key, session_token), submitted)


@dataclass(frozen=True, slots=True)
class AdminListed:
    """An admin as `tessera admins list` shows them: never their password hash."""

    admin_id: int
    email: str
    partner_id: int
    partner_name: str
    created_at: datetime


async def list_admins(session: AsyncSession, partner_id: int | None = None) -> list[AdminListed]:
    """Every admin, or those of one partner, with the partner's name."""
    if partner_id is not None and await tenancy_repository.get_partner(session, partner_id) is None:
        raise errors.PartnerNotFound(f"Partner {partner_id} not found")
    query = select(
        AdminUser.id, AdminUser.email, AdminUser.partner_id, Partner.name, AdminUser.created_at
    ).join(Partner, Partner.id == AdminUser.partner_id)
    if partner_id is not None:
        query = query.where(AdminUser.partner_id == partner_id)
    rows = await session.execute(query.order_by(AdminUser.id))
    return [AdminListed(int(row[0]), row[1], int(row[2]), row[3], row[4]) for row in rows]


async def reset_password(session: AsyncSession, email: str, password: str) -> AdminListed:
    """Gives the admin with this email a new password and signs them out everywhere: a password
    is reset because it was forgotten or because someone else may know it."""
    email = normalize_email(email)
    check_password(password)
    admin = await repository.admin_by_email(session, email)
    if admin is None:
        raise errors.NotFound(f"No admin with email {email}")
    admin.password_hash = await asyncio.to_thread(hash_password, password)
    await session.execute(delete(AdminSession).where(AdminSession.admin_user_id == admin.id))
    await session.flush()
    partner = await tenancy_repository.get_partner(session, admin.partner_id)
    partner_name = partner.name if partner is not None else ""
    return AdminListed(admin.id, admin.email, admin.partner_id, partner_name, admin.created_at)
