from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tessera.clock import utcnow
from tessera.db import Base, BigId


class Partner(Base):
    """A retailer's account: the unit of tenancy. Everything else carries its ``partner_id``."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Department(Base):
    """A shop, site or app. ``id`` is SailPlay's ``store_department_id``."""

    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("partner_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    #: scrypt hash of the numeric ``store_department_key``, as ``salt$hash`` in hex.
    key_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Employee(Base):
    """An employee's PIN in a department. PINs are returned by login, so they are not secrets."""

    __tablename__ = "employees"
    __table_args__ = (UniqueConstraint("partner_id", "department_id", "pin_code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    pin_code: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthToken(Base):
    """A login token, bound to the department it was issued for. Only its SHA-256 is stored."""

    __tablename__ = "auth_tokens"
    __table_args__ = (
        UniqueConstraint("partner_id", "token_hash"),
        # Requests name the department, not the partner; this finds the token from its hash.
        Index("ix_auth_tokens_token_hash", "token_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    pin_code: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: None = never expires (``TESSERA_TOKEN_TTL_SECONDS=0``).
    expires_at: Mapped[datetime | None]


class ApiKey(Base):
    """A partner's key for the messaging face: ``tsk_<partner_id>_<secret>``. Only its SHA-256 is stored.

    The partner id inside the key lets a lookup go straight to the partner's rows.
    """

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("partner_id", "key_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    key_hash: Mapped[str] = mapped_column(String(64))
    #: The first characters of the key, so an admin can tell keys apart without seeing them.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class LookupMisses(Base):
    """Failed code and certificate look-ups by one partner's client address in one minute: the
    count that stops a client from enumerating codes (``tenancy.service.LookupGuard``). Shared by
    every process; rows of past minutes are deleted as new ones come."""

    __tablename__ = "lookup_misses"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Minutes since the epoch (UTC).
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    misses: Mapped[int]
