"""The statements that store events and start workflow runs, on the driver (``tessera.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tessera.sql import Conn, Statement

# Events arrive by the thousand a second, and activations start tag workflows.
_ADD_EVENT = Statement(
    "INSERT INTO events (partner_id, event_type_key, key_value, params, received_at)"
    " VALUES (:partner_id, :key, :key_value, :params, :now) RETURNING id"
)
_WORKFLOWS_FOR_EVENT = Statement(
    "SELECT id, trigger_tag FROM workflows"
    " WHERE partner_id = :partner_id AND enabled AND deleted_at IS NULL AND trigger_event = :event"
    " ORDER BY id"
)
_RUN_COLUMNS = (
    "partner_id, workflow_id, customer_id, event_id, data, step_index, status, attempts, available_at,"
    " created_at"
)
_ADD_RUN = Statement(
    f"INSERT INTO workflow_runs ({_RUN_COLUMNS})"
    " VALUES (:partner_id, :workflow_id, :customer_id, :event_id, :data, 0, 'active', 0, :now, :now)"
)


def start_tag_runs_sql(customers: str, dialect: str) -> str:
    """Starts every enabled workflow that tag ``:tag`` triggers, once for each ``customer_id`` of
    ``customers`` (a FROM item: the customers who have just got the tag), due at ``:now``.

    A FROM item rather than one id, so that a statement that gives the tag can start the runs in
    the same statement (see ``promocodes.repository``'s activation).
    """
    if dialect == "postgresql":
        now, data = "CAST(:now AS TIMESTAMP)", "jsonb_build_object('tag', w.trigger_tag)"
    else:
        now, data = ":now", "json_object('tag', w.trigger_tag)"
    return (
        f"INSERT INTO workflow_runs ({_RUN_COLUMNS})"
        f" SELECT w.partner_id, w.id, c.customer_id, NULL, {data}, 0, 'active', 0, {now}, {now}"
        f" FROM {customers} AS c CROSS JOIN workflows w"
        " WHERE w.partner_id = :partner_id AND w.enabled AND w.deleted_at IS NULL AND w.trigger_tag = :tag"
        " ORDER BY w.id"
    )


_START_TAG_RUNS = Statement(
    start_tag_runs_sql("(SELECT :customer_id AS customer_id)", "sqlite"),
    postgresql=start_tag_runs_sql("(SELECT CAST(:customer_id AS BIGINT) AS customer_id)", "postgresql"),
)


async def add_event(
    conn: Conn, partner_id: int, key: str, key_value: str, params: dict[str, Any], now: datetime
) -> int:
    """Stores an event; returns its id."""
    event_id = await conn.fetchval(
        _ADD_EVENT, partner_id=partner_id, key=key, key_value=key_value, params=params, now=now
    )
    return int(event_id)


async def workflows_triggered_by(conn: Conn, partner_id: int, event: str) -> Sequence[tuple[int, str | None]]:
    """(id, trigger tag) of the enabled workflows an event key starts, by id."""
    rows = await conn.fetchall(_WORKFLOWS_FOR_EVENT, partner_id=partner_id, event=event)
    return [(int(workflow_id), tag) for workflow_id, tag in rows]


async def start_tag_runs(conn: Conn, partner_id: int, customer_id: int, tag: str, now: datetime) -> None:
    """Starts the workflows this tag triggers for a customer who has just got it."""
    await conn.execute(_START_TAG_RUNS, partner_id=partner_id, customer_id=customer_id, tag=tag, now=now)


async def add_runs(conn: Conn, runs: Sequence[dict[str, Any]], now: datetime) -> None:
    """New workflow runs, each due at once (``partner_id``, ``workflow_id``, ``customer_id``,
    ``event_id``, ``data``)."""
    if runs:
        await conn.executemany(_ADD_RUN, [{**run, "now": now} for run in runs])
