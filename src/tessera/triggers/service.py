"""Events and new tags start workflow runs.

Both write their runs in the caller's transaction, so an event or a tag is never stored without
the runs it starts, nor the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tessera.clock import utcnow
from tessera.sql import Conn
from tessera.triggers import repository


async def record_event(
    conn: Conn,
    partner_id: int,
    key: str,
    key_value: str,
    params: dict[str, Any],
    customer_id: int | None = None,
) -> int:
    now = utcnow()
    event_id = await repository.add_event(conn, partner_id, key, key_value, params, now)
    workflows = await repository.workflows_triggered_by(conn, partner_id, key)
    await repository.add_runs(
        conn,
        [
            {
                "partner_id": partner_id,
                "workflow_id": workflow_id,
                "customer_id": customer_id,
                "event_id": event_id,
                "data": dict(params),
            }
            for workflow_id, _ in workflows
        ],
        now,
    )
    return event_id


async def tags_added(conn: Conn, partner_id: int, customer_id: int, tags: Sequence[str]) -> None:
    """Starts every enabled workflow triggered by one of these tags, which the customer just got."""
    now = utcnow()
    for tag in dict.fromkeys(tags):
        await repository.start_tag_runs(conn, partner_id, customer_id, tag, now)
