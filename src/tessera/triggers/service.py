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
) -> None:
    """Stores the event and starts the enabled workflows it triggers (one statement on PostgreSQL,
    so it may run in autocommit)."""
    await repository.record_event(conn, partner_id, key, key_value, params, customer_id, utcnow())


async def tags_added(conn: Conn, partner_id: int, customer_id: int, tags: Sequence[str]) -> None:
    """Starts every enabled workflow triggered by one of these tags, which the customer just got."""
    now = utcnow()
    for tag in dict.fromkeys(tags):
        await repository.start_tag_runs(conn, partner_id, customer_id, tag, now)
