from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tessera.clock import utcnow
from tessera.db import Base, BigId


class CertificateGroup(Base):
    """One upload of gift certificates: a department and a value."""

    __tablename__ = "certificate_groups"
    __table_args__ = (Index("ix_certificate_groups_partner_id_department_id", "partner_id", "department_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Certificate(Base):
    """created → activated → used, forward only; ``deleted_at`` is final and allowed in any state.

    The state is three timestamps rather than one column so each transition is a single guarded
    UPDATE whose WHERE clause says exactly which states it may leave from.
    """

    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("partner_id", "number"),
        Index("ix_certificates_group_id", "group_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys on the bulk-imported columns (see ``Promocode``): the import writes them
    # from a group it has just checked, and groups, departments and partners are never deleted.
    partner_id: Mapped[int] = mapped_column(BigId)
    group_id: Mapped[int] = mapped_column(BigId)
    department_id: Mapped[int] = mapped_column(BigId)
    number: Mapped[str] = mapped_column(String(255))
    activated_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
