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
_WORKFLOWS_FOR_TAG = Statement(
    "SELECT id, trigger_tag FROM workflows"
    " WHERE partner_id = :partner_id AND enabled AND deleted_at IS NULL AND trigger_tag = :tag"
)
_ADD_RUN = Statement(
    "INSERT INTO workflow_runs (partner_id, workflow_id, customer_id, event_id, data, step_index,"
    " status, attempts, available_at, created_at)"
    " VALUES (:partner_id, :workflow_id, :customer_id, :event_id, :data, 0, 'active', 0, :now, :now)"
)


async def add_event(
    conn: Conn, partner_id: int, key: str, key_value: str, params: dict[str, Any], now: datetime
) -> int:
    """Stores an event; returns its id."""
    event_id = await conn.fetchval(
        _ADD_EVENT, partner_id=partner_id, key=key, key_value=key_value, params=params, now=now
    )
    return int(event_id)


async def workflows_triggered_by(
    conn: Conn, partner_id: int, *, event: str | None = None, tags: Sequence[str] = ()
) -> Sequence[tuple[int, str | None]]:
    """(id, trigger tag) of the enabled workflows an event key or these tags start, by id."""
    if event is not None:
        rows = await conn.fetchall(_WORKFLOWS_FOR_EVENT, partner_id=partner_id, event=event)
        return [(int(workflow_id), tag) for workflow_id, tag in rows]
    found = [
        (int(workflow_id), tag)
        for name in dict.fromkeys(tags)
        for workflow_id, tag in await conn.fetchall(_WORKFLOWS_FOR_TAG, partner_id=partner_id, tag=name)
    ]
    return sorted(found)


async def add_runs(conn: Conn, runs: Sequence[dict[str, Any]], now: datetime) -> None:
    """New workflow runs, each due at once (``partner_id``, ``workflow_id``, ``customer_id``,
    ``event_id``, ``data``)."""
    if runs:
        await conn.executemany(_ADD_RUN, [{**run, "now": now} for run in runs])
