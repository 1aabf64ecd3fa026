from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tessera.clock import utcnow
from tessera.db import Base, BigId

Money = Numeric(14, 2)
Json = JSON().with_variant(JSONB(), "postgresql")


class Product(Base):
    """A SKU the partner sells; unknown SKUs in a purchase are created."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("partner_id", "sku"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    sku: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Purchase(Base):
    """A purchase. ``order_num`` is unique per department: repeating it returns ``response``."""

    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("partner_id", "department_id", "order_num"),
        Index("ix_purchases_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    order_num: Mapped[str | None] = mapped_column(String(255))
    original_price: Mapped[Decimal] = mapped_column(Money)
    price: Mapped[Decimal] = mapped_column(Money)
    paid_by_certificates: Mapped[Decimal] = mapped_column(Money)
    purchase_date: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    #: The answer given when the purchase was made, replayed for a repeated ``order_num``.
    response: Mapped[dict[str, Any]] = mapped_column(Json)


class PurchasePromocode(Base):
    """A code applied to a purchase, so deleting the purchase can give the use back."""

    __tablename__ = "purchase_promocodes"
    __table_args__ = (UniqueConstraint("partner_id", "purchase_id", "promocode_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id"))
    promocode_id: Mapped[int] = mapped_column(ForeignKey("promocodes.id"))


class PurchaseCertificate(Base):
    __tablename__ = "purchase_certificates"
    __table_args__ = (UniqueConstraint("partner_id", "purchase_id", "certificate_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id"))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
