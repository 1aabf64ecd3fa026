from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, SmallInteger, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tessera.clock import utcnow
from tessera.db import Base, BigId


class GroupType(enum.IntEnum):
    SIMPLE = 1
    ACTIVATION = 2


class CodeState(enum.IntEnum):
    """SPEC §5. The transitions, each one guarded statement in ``promocodes.repository``:

    - issue (``claim_next_available``) and activate (``activate_single_use``): 1 → 2;
    - apply to a purchase (``apply_code``): 2 → 3, or 1 → 3 for a code typed at the till; a
      single-use code only once (``rules.is_used_up``);
    - give back (``give_back``): 3 → 2 when the last purchase that applied it is deleted;
    - return unsent (``return_unsent``): 2 → 1 when the message that carried the code to its
      customer failed for good, so nobody saw it (SPEC §10); only a code never activated or
      applied.

    Nothing else makes a code free (1) again.
    """

    AVAILABLE = 1
    ISSUED = 2  # sent, issued or activated: it belongs to a customer now
    APPLIED = 3  # applied to a purchase


class PromocodeGroup(Base):
    __tablename__ = "promocode_groups"
    __table_args__ = (UniqueConstraint("partner_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    name: Mapped[str] = mapped_column(String(128))
    group_type: Mapped[int] = mapped_column(SmallInteger)
    #: SailPlay's name for single-use. True: each code is used once, by one customer. False: a
    #: code may be activated once per customer and applied any number of times.
    apply_items_once: Mapped[bool] = mapped_column(default=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The group's promo action (SPEC §7): what a code of this group takes off a cart.
    discount_type: Mapped[str | None] = mapped_column(String(16))
    discount_value: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    #: SKUs the discount applies to; None = the whole cart.
    discount_skus: Mapped[list[Any] | None] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    min_cart_total: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # Low-stock alerts (eSputnik's Warning / Alarm): fire `promocodes_low_stock` once per crossing.
    low_stock_warning: Mapped[int | None]
    low_stock_alarm: Mapped[int | None]
    #: The last level fired: 0 none, 1 warning, 2 alarm. Reset when stock is added.
    low_stock_level: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))


class Promocode(Base):
    __tablename__ = "promocodes"
    __table_args__ = (
        # number first: `info` finds a number across all of a partner's groups with this index.
        UniqueConstraint("partner_id", "number", "group_id"),
        # The pool of codes still free to issue: the `issue` claim reads its first entry.
        Index(
            "ix_promocodes_available",
            "group_id",
            "id",
            postgresql_where=text("state = 1"),
            sqlite_where=text("state = 1"),
        ),
        Index("ix_promocodes_group_id_state", "group_id", "state"),
        Index(
            "ix_promocodes_customer_id",
            "customer_id",
            postgresql_where=text("customer_id IS NOT NULL"),
            sqlite_where=text("customer_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys on the columns every bulk-imported row carries: PostgreSQL checks each one
    # with a per-row trigger, which more than doubled a million-code COPY. Groups and partners are
    # never deleted, and only the import (inside the group's own transaction) writes these rows.
    partner_id: Mapped[int] = mapped_column(BigId)
    group_id: Mapped[int] = mapped_column(BigId)
    number: Mapped[str] = mapped_column(String(128))
    state: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    #: The customer the code was issued to or activated by (single-use codes).
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    receipt_date: Mapped[datetime | None]
    #: When a single-use code was activated; the guard that makes activation happen once.
    activated_at: Mapped[datetime | None]
    applied_times: Mapped[int] = mapped_column(server_default=text("0"))
    date_of_use: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class PromocodeActivation(Base):
    """Who activated which code. The unique key is what limits a multi-use code to once per customer."""

    __tablename__ = "promocode_activations"
    __table_args__ = (
        UniqueConstraint("partner_id", "promocode_id", "customer_id"),
        Index("ix_promocode_activations_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    promocode_id: Mapped[int] = mapped_column(ForeignKey("promocodes.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    activated_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A group as the hot paths read it (``repository``, on the driver): the columns, no ORM."""

    id: int
    partner_id: int
    name: str
    group_type: int
    apply_items_once: bool
    enabled: bool
    created_at: datetime
    updated_at: datetime
    discount_type: str | None
    discount_value: Decimal | None
    discount_skus: list[Any] | None
    min_cart_total: Decimal | None
    low_stock_warning: int | None
    low_stock_alarm: int | None
    low_stock_level: int


@dataclass(frozen=True, slots=True)
class CodeRow:
    """A promo code as the hot paths read it: the columns, no ORM."""

    id: int
    partner_id: int
    group_id: int
    number: str
    state: int
    customer_id: int | None
    receipt_date: datetime | None
    activated_at: datetime | None
    applied_times: int
    date_of_use: datetime | None
    expires_at: datetime | None
