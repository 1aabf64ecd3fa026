from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tessera.clock import utcnow
from tessera.db import Base, BigId

Json = JSON().with_variant(JSONB(), "postgresql")


class DeliveryStatus(enum.StrEnum):
    """A delivery is queued until it is sent, or failed for good (SPEC §8)."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class RunStatus(enum.StrEnum):
    """A workflow run is active (working or waiting) until it is done or failed for good."""

    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"


class Message(Base):
    """A prepared email or SMS whose texts are Velocity templates."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_partner_id", "partner_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    channel: Mapped[str] = mapped_column(String(8))  # "email" | "sms"
    name: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    html_text: Mapped[str | None] = mapped_column(Text)
    plain_text: Mapped[str | None] = mapped_column(Text)
    sms_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: Deleted messages stay for the deliveries that used them.
    deleted_at: Mapped[datetime | None]


class Event(Base):
    """An event as received, stored before the 200 is sent."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_partner_id_event_type_key", "partner_id", "event_type_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    event_type_key: Mapped[str] = mapped_column(String(100))
    key_value: Mapped[str] = mapped_column(String(300))
    params: Mapped[dict[str, Any]] = mapped_column(Json)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (
        Index("ix_workflows_partner_id_trigger_event", "partner_id", "trigger_event"),
        Index("ix_workflows_partner_id_trigger_tag", "partner_id", "trigger_tag"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    name: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(default=True)
    trigger_event: Mapped[str | None] = mapped_column(String(100))
    trigger_tag: Mapped[str | None] = mapped_column(String(255))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]


class WorkflowRun(Base):
    """One start of a workflow for one contact; the worker walks its steps.

    Each step's effect and the advance of ``step_index`` commit together, so a crash or a retry
    repeats at most the step in flight, and a step like ``issue_promocode`` never runs twice.
    """

    __tablename__ = "workflow_runs"
    __table_args__ = (
        # In the claim's order (available_at, id), so a claim reads the index in order and
        # stops at its batch, sorting nothing, whatever the statistics say (migration 0010).
        Index(
            "ix_workflow_runs_due",
            "available_at",
            "id",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    step_index: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.ACTIVE)  # a RunStatus
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    #: Counts the run's claims: a worker holds the run while this is still the number its claim
    #: set, so a worker whose lease lapsed and was taken over can tell (the worker's ``RunClaim``).
    claim_serial: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """The outbox: one message to one recipient, written in the transaction that caused it.

    ``request_id`` is what smartsend answers and ``message/status`` reports. A workflow's send
    step writes at most one delivery per run and step (the unique key), however often it retries.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("partner_id", "request_id"),
        UniqueConstraint("partner_id", "workflow_run_id", "step_index"),
        # In the claim's order (available_at, id), so a claim reads the index in order and
        # stops at its batch, sorting nothing, whatever the statistics say (migration 0010).
        Index(
            "ix_deliveries_due",
            "available_at",
            "id",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # The admin's deliveries log: a partner's newest first, a page at a time; and one
        # recipient's (the log's filter, a customer's page).
        Index("ix_deliveries_partner_id_id", "partner_id", "id"),
        Index("ix_deliveries_partner_id_recipient_id", "partner_id", "recipient", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    request_id: Mapped[str] = mapped_column(String(36))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(320))
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    #: smartsend's ``fromName``: the sender's display name (SMS: the alpha-name) for this delivery.
    sender_name: Mapped[str | None] = mapped_column(String(255))
    #: smartsend's ``externalRequestId``: the caller's own id, reported back by ``message/status``.
    external_request_id: Mapped[str | None] = mapped_column(String(255))
    workflow_run_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_runs.id"))
    step_index: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.QUEUED)  # a DeliveryStatus
    #: Why it is waiting or failed: "channel not configured", the SMTP error, ...
    status_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class DeliveryCode(Base):
    """A promo code a delivery carries: ``$!promocodes.issue('<group>')`` in its message (SPEC §10).

    Claimed before the delivery is first rendered, in one transaction with the code's issue to the
    recipient's contact, and at most once per delivery and group (the unique key): a retry, or a
    render after a crash, shows the same code. A delivery that fails for good gives its codes back
    to the pool (``returned_at``), once a worker whose lease lapsed can no longer be sending it
    (``return_at``); the row stays, so a code's page still names every delivery
    that carried it.
    """

    __tablename__ = "delivery_codes"
    __table_args__ = (
        UniqueConstraint("delivery_id", "group_name"),
        Index("ix_delivery_codes_promocode_id", "promocode_id"),
        Index(
            "ix_delivery_codes_return_at",
            "return_at",
            postgresql_where=text("return_at IS NOT NULL"),
            sqlite_where=text("return_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"))
    #: The name as the template wrote it.
    group_name: Mapped[str] = mapped_column(String(128))
    promocode_id: Mapped[int] = mapped_column(ForeignKey("promocodes.id"))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    returned_at: Mapped[datetime | None]
    #: While a failed delivery's codes wait to go back (``delivery_codes.schedule_return``): when.
    return_at: Mapped[datetime | None]
