"""A worker's hold on what it claimed: a batch of deliveries, or of workflow runs (SPEC §8).

A claim is leased until a time on the database's clock. Working through a batch can outlast the
lease (a slow relay, a slow step), so the hold is renewed once a third of the lease has gone by,
and each item is checked before it is worked: one whose lease lapsed and that another worker has
since claimed has a newer serial (a delivery's attempt count, a run's claim serial), is no longer
held, and is skipped, so the two workers never both work it and neither fails its batch.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.db import Database
from tessera.messaging import repository

#: Extends the claims given (id → serial) to the time given; answers the ids still held.
Renew = Callable[[AsyncSession, dict[int, int], datetime], Awaitable[set[int]]]


class Claim:
    def __init__(self, database: Database, lease: timedelta, held: dict[int, int], renew: Renew) -> None:
        self.database = database
        self.lease = lease
        self.held = dict(held)
        self._renew = renew
        self._renewed = time.monotonic()

    async def holds(self, item_id: int) -> bool:
        """Whether this worker still holds the item; renews the batch's lease when it is due."""
        if item_id in self.held and time.monotonic() - self._renewed > self.lease.total_seconds() / 3:
            async with self.database.transaction() as session:
                until = await repository.database_now(session) + self.lease
                kept = await self._renew(session, self.held, until)
            self.held = {i: serial for i, serial in self.held.items() if i in kept}
            self._renewed = time.monotonic()
        return item_id in self.held

    def serial(self, item_id: int) -> int:
        return self.held[item_id]

    def release(self, item_id: int) -> None:
        """The item is done with (its outcome recorded): it is no longer renewed."""
        self.held.pop(item_id, None)
