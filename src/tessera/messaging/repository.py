from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Update, and_, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.clock import utcnow
from tessera.messaging.models import (
    Delivery,
    DeliveryStatus,
    Event,
    Message,
    RunStatus,
    Workflow,
    WorkflowRun,
)
from tessera.messaging.rules import CHANNEL_NOT_CONFIGURED
from tessera.sql import Conn, Statement, as_datetime

_OUTBOX_DUE = Statement(
    "SELECT count(*), min(available_at) FROM deliveries"
    f" WHERE status = '{DeliveryStatus.QUEUED}' AND available_at <= :now"
)
_RUNS_WAITING = Statement(f"SELECT count(*) FROM workflow_runs WHERE status = '{RunStatus.ACTIVE}'")

# Promo codes in deliveries (SPEC §10). Lists of ids travel as one JSON parameter.
_IDS_SQLITE = "SELECT value FROM json_each(:ids)"
_IDS_POSTGRESQL = "SELECT jsonb_array_elements_text(:ids::jsonb)::bigint"
_HELD_SQL = (
    f"SELECT d.id FROM deliveries d JOIN {{pairs}} WHERE d.status = '{DeliveryStatus.QUEUED}' ORDER BY d.id"
)
#: Which deliveries of a batch this worker still holds (the attempt count its claim set);
#: PostgreSQL locks them, so a worker that took one over waits for the codes claimed with it.
_HELD = Statement(
    _HELD_SQL.format(
        pairs="json_each(:held) h ON d.id = json_extract(h.value, '$[0]')"
        " AND d.attempts = json_extract(h.value, '$[1]')"
    ),
    postgresql=_HELD_SQL.format(
        pairs="jsonb_array_elements(:held::jsonb) h ON d.id = (h.value->>0)::bigint"
        " AND d.attempts = (h.value->>1)::int"
    )
    + " FOR UPDATE OF d",
)
_CARRIED_SQL = (
    "SELECT dc.delivery_id, dc.group_name, p.number, p.id, dc.returned_at FROM delivery_codes dc"
    " JOIN promocodes p ON p.id = dc.promocode_id WHERE dc.delivery_id IN ({ids}) ORDER BY dc.id"
)
_CARRIED = Statement(
    _CARRIED_SQL.format(ids=_IDS_SQLITE), postgresql=_CARRIED_SQL.format(ids=_IDS_POSTGRESQL)
)
_ADD_CARRIED = Statement(
    "INSERT INTO delivery_codes (delivery_id, group_name, promocode_id, claimed_at)"
    " VALUES (:delivery_id, :group_name, :promocode_id, :now)"
)
_MARK_RETURNED_SQL = (
    "UPDATE delivery_codes SET returned_at = :now"
    " WHERE delivery_id = :delivery_id AND returned_at IS NULL AND promocode_id IN ({ids})"
)
_MARK_RETURNED = Statement(
    _MARK_RETURNED_SQL.format(ids=_IDS_SQLITE),
    postgresql=_MARK_RETURNED_SQL.format(ids=_IDS_POSTGRESQL),
)
_SCHEDULE_RETURN = Statement(
    "UPDATE delivery_codes SET return_at = :at WHERE delivery_id = :delivery_id AND returned_at IS NULL"
)
_RETURNS_DUE = Statement(
    "SELECT DISTINCT delivery_id FROM delivery_codes WHERE return_at <= :now"
    " ORDER BY delivery_id LIMIT :limit"
)
#: Takes a due return: the rows it clears are the ones this settle gives back, and a late success
#: (``_MARK_SENT``) that comes after finds none to keep.
_CLAIM_RETURN = Statement(
    "UPDATE delivery_codes SET return_at = NULL"
    " WHERE delivery_id = :delivery_id AND return_at IS NOT NULL AND return_at <= :now RETURNING id"
)
_STATUS = Statement("SELECT status FROM deliveries WHERE id = :delivery_id")
_DELIVERIES_OF_CODE = Statement(
    "SELECT d.id, d.request_id, d.status, d.channel, m.name, dc.group_name, dc.claimed_at, dc.returned_at"
    " FROM delivery_codes dc JOIN deliveries d ON d.id = dc.delivery_id"
    " JOIN messages m ON m.id = d.message_id"
    " WHERE dc.promocode_id = :promocode_id ORDER BY dc.id"
)


@dataclass(frozen=True, slots=True)
class CarriedCode:
    """A promo code claimed for a delivery; ``returned_at`` once its failed delivery gave it back."""

    delivery_id: int
    group_name: str
    number: str
    promocode_id: int
    returned_at: datetime | None


@dataclass(frozen=True, slots=True)
class CarryingDelivery:
    """A delivery that carried a given code (the admin's page of the code)."""

    id: int
    request_id: str
    status: str
    channel: str
    message_name: str
    group_name: str
    claimed_at: datetime
    returned_at: datetime | None


async def held_deliveries(conn: Conn, held: dict[int, int]) -> set[int]:
    """Of these deliveries (id → the attempt count this worker's claim set), those it still holds."""
    if not held:
        return set()
    rows = await conn.fetchall(_HELD, held=[[d_id, attempts] for d_id, attempts in held.items()])
    return {int(row[0]) for row in rows}


async def carried_codes(conn: Conn, delivery_ids: Sequence[int]) -> list[CarriedCode]:
    """The codes claimed for these deliveries, given back or not, in the order they were claimed."""
    if not delivery_ids:
        return []
    rows = await conn.fetchall(_CARRIED, ids=list(delivery_ids))
    return [CarriedCode(int(row[0]), row[1], row[2], int(row[3]), as_datetime(row[4])) for row in rows]


async def add_carried_codes(conn: Conn, rows: Sequence[Mapping[str, Any]]) -> None:
    """Ties claimed codes to their deliveries: rows of delivery_id, group_name, promocode_id, now."""
    if rows:
        await conn.executemany(_ADD_CARRIED, rows)


async def mark_returned(conn: Conn, delivery_id: int, code_ids: Sequence[int], now: datetime) -> None:
    if code_ids:
        await conn.execute(_MARK_RETURNED, delivery_id=delivery_id, ids=list(code_ids), now=now)


async def schedule_return(conn: Conn, delivery_id: int, at: datetime) -> None:
    """The delivery's codes not yet given back are to go back at ``at``."""
    await conn.execute(_SCHEDULE_RETURN, delivery_id=delivery_id, at=at)


async def returns_due(conn: Conn, now: datetime, limit: int) -> list[int]:
    """Deliveries whose codes are due to go back, by id."""
    return [int(row[0]) for row in await conn.fetchall(_RETURNS_DUE, now=now, limit=limit)]


async def claim_return(conn: Conn, delivery_id: int, now: datetime) -> bool:
    """Takes the delivery's due return; False when a late success or another worker took it."""
    return bool(await conn.fetchall(_CLAIM_RETURN, delivery_id=delivery_id, now=now))


async def delivery_status(conn: Conn, delivery_id: int) -> str | None:
    status = await conn.fetchval(_STATUS, delivery_id=delivery_id)
    return str(status) if status is not None else None


async def deliveries_of_code(conn: Conn, promocode_id: int) -> list[CarryingDelivery]:
    rows = await conn.fetchall(_DELIVERIES_OF_CODE, promocode_id=promocode_id)
    found = []
    for row in rows:
        claimed_at = as_datetime(row[6])
        assert claimed_at is not None  # NOT NULL
        found.append(
            CarryingDelivery(
                int(row[0]), row[1], row[2], row[3], row[4], row[5], claimed_at, as_datetime(row[7])
            )
        )
    return found


async def outbox_due(conn: Conn, now: datetime) -> tuple[int, datetime | None]:
    """How many deliveries are due now, and since when the oldest of them (the metrics)."""
    row = await conn.fetchone(_OUTBOX_DUE, now=now)
    assert row is not None
    return int(row[0]), as_datetime(row[1])


async def runs_waiting(conn: Conn) -> int:
    """Workflow runs not yet done or failed: working, backing off, or waiting on a wait step."""
    return int(await conn.fetchval(_RUNS_WAITING))


async def add_message(session: AsyncSession, **fields: Any) -> Message:
    message = Message(**fields)
    session.add(message)
    await session.flush()
    return message


async def get_message(session: AsyncSession, partner_id: int, message_id: int) -> Message | None:
    return await session.scalar(
        select(Message).where(
            Message.partner_id == partner_id, Message.id == message_id, Message.deleted_at.is_(None)
        )
    )


async def message_by_id(session: AsyncSession, message_id: int) -> Message | None:
    """For the worker, which sends a delivery accepted before any later deletion of its message."""
    return await session.get(Message, message_id)


async def list_messages(session: AsyncSession, partner_id: int) -> Sequence[Message]:
    result = await session.scalars(
        select(Message)
        .where(Message.partner_id == partner_id, Message.deleted_at.is_(None))
        .order_by(Message.id)
    )
    return result.all()


async def add_deliveries(session: AsyncSession, deliveries: Sequence[dict[str, Any]]) -> None:
    if deliveries:
        session.add_all([Delivery(**delivery) for delivery in deliveries])
        await session.flush()


async def deliveries_by_request_ids(
    session: AsyncSession, partner_id: int, request_ids: Sequence[str]
) -> Sequence[Delivery]:
    result = await session.scalars(
        select(Delivery).where(Delivery.partner_id == partner_id, Delivery.request_id.in_(request_ids))
    )
    return result.all()


async def add_workflow(session: AsyncSession, **fields: Any) -> Workflow:
    workflow = Workflow(**fields)
    session.add(workflow)
    await session.flush()
    return workflow


async def get_workflow(session: AsyncSession, partner_id: int, workflow_id: int) -> Workflow | None:
    return await session.scalar(
        select(Workflow).where(
            Workflow.partner_id == partner_id, Workflow.id == workflow_id, Workflow.deleted_at.is_(None)
        )
    )


async def list_workflows(session: AsyncSession, partner_id: int) -> Sequence[Workflow]:
    result = await session.scalars(
        select(Workflow)
        .where(Workflow.partner_id == partner_id, Workflow.deleted_at.is_(None))
        .order_by(Workflow.id)
    )
    return result.all()


def _due(model: type[Delivery] | type[WorkflowRun], status: DeliveryStatus | RunStatus, now: datetime) -> Any:
    return and_(
        model.status == status,
        model.available_at <= now,
        or_(model.locked_until.is_(None), model.locked_until < now),
    )


def _due_batch(
    model: type[Delivery] | type[WorkflowRun],
    status: DeliveryStatus | RunStatus,
    now: datetime,
    limit: int,
    *conditions: Any,
) -> Any:
    """The rows a claim leases (see ``claim_deliveries``): up to ``limit`` due rows in the due
    index's order, locked, skipping those other workers hold; chosen once (``MATERIALIZED``)."""
    return (
        select(model.id)
        .where(_due(model, status, now), *conditions)
        .order_by(model.available_at, model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )


def claim_deliveries_statement(
    channels: Sequence[str], now: datetime, lease: timedelta, limit: int
) -> Update:
    """``claim_deliveries``' statement, without what it returns (also for tests of its plan)."""
    due = _due_batch(Delivery, DeliveryStatus.QUEUED, now, limit, Delivery.channel.in_(channels))
    return (
        update(Delivery)
        .where(Delivery.id.in_(select(due.c.id)))
        .values(locked_until=now + lease, attempts=Delivery.attempts + 1)
    )


async def claim_deliveries(
    session: AsyncSession, channels: Sequence[str], now: datetime, lease: timedelta, limit: int
) -> Sequence[Delivery]:
    """Leases up to ``limit`` due deliveries of the given channels to this worker.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets any number of workers claim side by side without
    taking the same row; SQLite: ``BEGIN IMMEDIATE`` makes claims take turns. A worker that dies
    keeps its rows only until ``locked_until``; then they are due again.

    The due rows are chosen once, in a ``MATERIALIZED`` CTE. As ``IN (subquery)`` the planner may
    run the subquery again for each outer row (a nested loop, when statistics are stale), and a
    row this very UPDATE already leased then fails the locking re-check, so LIMIT reaches past
    it: one claim took all 1,000 due deliveries instead of a batch of 100.

    The UPDATE names its rows by id alone. The CTE's ``FOR UPDATE`` re-checked and locked each
    one, so a status condition here would add no guard, but it would let the planner scan the
    partial due index (it implies ``status = 'queued'``) and join every due row against the
    batch: 0.7 s a claim with 10,000 due on statistics from before a smartsend.
    """
    result = await session.scalars(
        claim_deliveries_statement(channels, now, lease, limit)
        .returning(Delivery)
        .execution_options(synchronize_session=False)
    )
    return result.all()


async def note_unconfigured(session: AsyncSession, channel: str, now: datetime) -> None:
    await session.execute(
        update(Delivery)
        .where(
            Delivery.status == DeliveryStatus.QUEUED,
            Delivery.channel == channel,
            Delivery.available_at <= now,
            Delivery.status_reason.is_distinct_from(CHANNEL_NOT_CONFIGURED),
        )
        .values(status_reason=CHANNEL_NOT_CONFIGURED)
        .execution_options(synchronize_session=False)
    )


#: The outcome of a send, written once per message, on the driver. A send that succeeded is
#: recorded whichever claim made it (no attempts guard): if the row was taken over meanwhile and
#: the other worker's attempt failed, the message was still delivered and must not go out again.
#: It is recorded over a failure too while the failure's codes wait to go back
#: (``schedule_return``): the recipient got them, and keeps them. Failures and retries are
#: recorded only under the claim that made them.
_MARK_SENT_SQL = (
    f"UPDATE deliveries SET status = '{DeliveryStatus.SENT}', sent_at = :now, locked_until = NULL,"
    f" status_reason = NULL WHERE id = :delivery_id AND (status = '{DeliveryStatus.QUEUED}'"
    f" OR (status = '{DeliveryStatus.FAILED}' AND {{kept}})) RETURNING id"
)
#: Codes waiting to go back after a failure (``schedule_return``), kept by a late success. On
#: PostgreSQL in the same statement: the CTE's UPDATE of the delivery's code rows waits for a
#: return under way (``claim_return``) and then finds nothing, so a success can never land on a
#: delivery whose codes went back.
_KEEP_CODES_SQL = (
    "UPDATE delivery_codes SET return_at = NULL WHERE delivery_id = :delivery_id AND return_at IS NOT NULL"
)
_KEEP_CODES = Statement(_KEEP_CODES_SQL)
_MARK_SENT = Statement(
    _MARK_SENT_SQL.format(kept=":kept"),
    postgresql=f"WITH kept AS ({_KEEP_CODES_SQL} RETURNING delivery_id) "
    + _MARK_SENT_SQL.format(kept="EXISTS (SELECT 1 FROM kept)"),
)
_UNDER_CLAIM = (
    f" WHERE id = :delivery_id AND status = '{DeliveryStatus.QUEUED}' AND attempts = :attempts RETURNING id"
)
_MARK_FAILED = Statement(
    f"UPDATE deliveries SET status = '{DeliveryStatus.FAILED}', locked_until = NULL, status_reason = :reason"
    + _UNDER_CLAIM
)
_QUEUE_AGAIN = Statement(
    "UPDATE deliveries SET available_at = :retry_at, locked_until = NULL, status_reason = :reason"
    + _UNDER_CLAIM
)


async def finish_delivery(
    conn: Conn,
    delivery_id: int,
    attempts: int,
    *,
    status: DeliveryStatus,
    reason: str | None,
    now: datetime,
    retry_at: datetime | None = None,
) -> bool:
    """Records one attempt's outcome: sent (whichever claim sent it), or, if this worker's claim
    still stands (same attempt count), failed for good or queued again until ``retry_at``.
    One guarded statement, which may run in autocommit."""
    if status == DeliveryStatus.SENT:
        if conn.is_sqlite:  # writers take turns: the statements cannot interleave
            found = await conn.fetchval(_MARK_SENT, delivery_id=delivery_id, now=now, kept=False)
            if found is None and await conn.execute(_KEEP_CODES, delivery_id=delivery_id) > 0:
                found = await conn.fetchval(_MARK_SENT, delivery_id=delivery_id, now=now, kept=True)
        else:
            found = await conn.fetchval(_MARK_SENT, delivery_id=delivery_id, now=now)
    elif status == DeliveryStatus.FAILED:
        found = await conn.fetchval(_MARK_FAILED, delivery_id=delivery_id, attempts=attempts, reason=reason)
    else:
        found = await conn.fetchval(
            _QUEUE_AGAIN, delivery_id=delivery_id, attempts=attempts, reason=reason, retry_at=retry_at
        )
    return found is not None


async def renew_leases(session: AsyncSession, held: dict[int, int], until: datetime) -> set[int]:
    """Extends this worker's claims (delivery id → its attempt count) and says which it still has.

    A claim whose lease lapsed and that another worker took has a higher attempt count, so it is
    not renewed: this worker must not send it.
    """
    if not held:
        return set()
    result = await session.scalars(
        update(Delivery)
        .where(
            Delivery.status == DeliveryStatus.QUEUED,
            tuple_(Delivery.id, Delivery.attempts).in_(list(held.items())),
        )
        .values(locked_until=until)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.all())


#: The database's clock on PostgreSQL (``database_now``, ``clock``).
_CLOCK_SQL = "SELECT clock_timestamp() AT TIME ZONE 'UTC'"
_CLOCK = Statement(_CLOCK_SQL)


async def clock(conn: Conn) -> datetime:
    """``database_now`` on the driver."""
    if conn.is_sqlite:
        return utcnow()
    now: datetime = await conn.fetchval(_CLOCK)
    return now


async def database_now(session: AsyncSession) -> datetime:
    """The database's clock, in naive UTC like every stored timestamp: leases are taken and
    renewed on it, so workers on hosts whose clocks disagree still agree on when a lease ends.
    SQLite is a file on this host, so its clock is this host's."""
    if session.get_bind().dialect.name != "postgresql":
        return utcnow()
    now: datetime = await session.scalar(text(_CLOCK_SQL))
    return now


async def claim_runs(session: AsyncSession, now: datetime, lease: timedelta, limit: int) -> dict[int, int]:
    """Leases up to ``limit`` due runs; answers each run's id with the claim serial this claim set,
    which the worker's hold on the run is checked against (``hold_runs``, ``advance_run``).
    Written as ``claim_deliveries`` is, for the same reasons."""
    due = _due_batch(WorkflowRun, RunStatus.ACTIVE, now, limit)
    result = await session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.id.in_(select(due.c.id)))
        .values(
            locked_until=now + lease,
            attempts=WorkflowRun.attempts + 1,
            claim_serial=WorkflowRun.claim_serial + 1,
        )
        .returning(WorkflowRun.id, WorkflowRun.claim_serial)
        .execution_options(synchronize_session=False)
    )
    return {int(run_id): int(serial) for run_id, serial in sorted(tuple(row) for row in result)}


async def hold_runs(session: AsyncSession, held: dict[int, int], until: datetime) -> set[int]:
    """Extends this worker's claims (run id → claim serial) to ``until``; answers the runs it still
    holds. A run whose lease lapsed and that another worker claimed has a newer serial."""
    if not held:
        return set()
    result = await session.scalars(
        update(WorkflowRun)
        .where(
            WorkflowRun.status == RunStatus.ACTIVE,
            tuple_(WorkflowRun.id, WorkflowRun.claim_serial).in_(list(held.items())),
        )
        .values(locked_until=until)
        .returning(WorkflowRun.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.all())


async def get_run(session: AsyncSession, run_id: int, *, for_update: bool = False) -> WorkflowRun | None:
    """A run; ``for_update`` locks its row on PostgreSQL for the step's transaction, so a claim by
    another worker waits for the step to commit (SQLite's writers take turns anyway)."""
    return await session.get(WorkflowRun, run_id, with_for_update=for_update or None)


async def advance_run(
    session: AsyncSession, run_id: int, expected_step: int, claim_serial: int | None = None, **values: Any
) -> bool:
    """Moves a run past ``expected_step``; False if another worker already did, or took the run
    over (``claim_serial`` no longer this worker's): the step's work then rolls back with this
    transaction."""
    guards = [
        WorkflowRun.id == run_id,
        WorkflowRun.step_index == expected_step,
        WorkflowRun.status == RunStatus.ACTIVE,
    ]
    if claim_serial is not None:
        guards.append(WorkflowRun.claim_serial == claim_serial)
    result = await session.execute(
        update(WorkflowRun)
        .where(*guards)
        .values(**values)
        .returning(WorkflowRun.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def get_event(session: AsyncSession, event_id: int) -> Event | None:
    return await session.get(Event, event_id)


async def run_due(session: AsyncSession, now: datetime) -> bool:
    """Whether any workflow run is due: a read, so an idle worker never takes SQLite's write lock."""
    found = await session.scalar(
        select(WorkflowRun.id).where(_due(WorkflowRun, RunStatus.ACTIVE, now)).limit(1)
    )
    return found is not None


async def delivery_due(session: AsyncSession, channel: str, now: datetime, *, configured: bool) -> bool:
    """Whether the channel has a delivery to send (configured) or to mark as waiting (not)."""
    query = select(Delivery.id).where(_due(Delivery, DeliveryStatus.QUEUED, now), Delivery.channel == channel)
    if not configured:
        query = query.where(Delivery.status_reason.is_distinct_from(CHANNEL_NOT_CONFIGURED))
    return await session.scalar(query.limit(1)) is not None


async def list_deliveries(
    session: AsyncSession,
    partner_id: int,
    *,
    status: str | None,
    channel: str | None,
    recipients: Sequence[str] = (),
    before_id: int | None,
    limit: int,
) -> Sequence[tuple[Delivery, str, str | None]]:
    """The deliveries log, newest first: each delivery with its message's and workflow's names."""
    query = (
        select(Delivery, Message.name, Workflow.name)
        .join(Message, Message.id == Delivery.message_id)
        .outerjoin(WorkflowRun, WorkflowRun.id == Delivery.workflow_run_id)
        .outerjoin(Workflow, Workflow.id == WorkflowRun.workflow_id)
        .where(Delivery.partner_id == partner_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Delivery.status == status)
    if channel:
        query = query.where(Delivery.channel == channel)
    if recipients:
        query = query.where(Delivery.recipient.in_(recipients))
    if before_id is not None:
        query = query.where(Delivery.id < before_id)
    rows = await session.execute(query)
    return [(delivery, message_name, workflow_name) for delivery, message_name, workflow_name in rows]
