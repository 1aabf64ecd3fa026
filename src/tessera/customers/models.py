from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tessera.clock import utcnow
from tessera.db import Base, BigId


class Customer(Base):
    """A retailer's customer (SailPlay's user, eSputnik's contact).

    Each identifier is unique within the partner; NULLs never collide on either database. The
    unique keys lead with the identifier, not the partner: a look-up by email can then use only
    the email key, whereas keys led by ``partner_id`` all match ``partner_id = ?``, and on stale
    statistics PostgreSQL picked the phone or origin-user-id key for an email look-up and read
    every customer of the partner (migration 0010).
    """

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("phone", "partner_id"),
        UniqueConstraint("email", "partner_id"),
        UniqueConstraint("origin_user_id", "partner_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    phone: Mapped[str | None] = mapped_column(String(32))
    #: Stored lower-cased: emails are compared case-insensitively.
    email: Mapped[str | None] = mapped_column(String(320))
    origin_user_id: Mapped[str | None] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    middle_name: Mapped[str | None] = mapped_column(String(255))
    birth_date: Mapped[date | None]
    sex: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("partner_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerTag(Base):
    """A tag given to a customer. The unique key makes "already has it" a no-op, even concurrently."""

    __tablename__ = "customer_tags"
    __table_args__ = (UniqueConstraint("partner_id", "customer_id", "tag_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customer as ``add_or_update`` writes and reads it on the driver: the columns, no ORM."""

    id: int
    partner_id: int
    phone: str | None
    email: str | None
    origin_user_id: str | None
    first_name: str | None
    last_name: str | None
    middle_name: str | None
    birth_date: date | None
    sex: int | None
