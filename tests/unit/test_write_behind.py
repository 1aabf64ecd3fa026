"""The worker writes each outcome while the next message goes out (``WriteBehind``)."""

from __future__ import annotations

import asyncio

import pytest

from tessera.messaging.worker import WriteBehind


class Writes:
    """Outcome writes that finish only when the test lets them."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.written: list[tuple[int, str | None]] = []
        self.go: dict[int, asyncio.Event] = {}
        self.failing: set[int] = set()

    async def __call__(self, delivery_id: int, error: str | None) -> None:
        self.started.append(delivery_id)
        await self.go.setdefault(delivery_id, asyncio.Event()).wait()
        if delivery_id in self.failing:
            raise ConnectionError(f"database gone while writing {delivery_id}")
        self.written.append((delivery_id, error))

    def finish(self, delivery_id: int) -> None:
        self.go.setdefault(delivery_id, asyncio.Event()).set()


async def test_a_put_does_not_wait_for_its_write() -> None:
    writes = Writes()
    behind = WriteBehind(writes, in_flight=2)

    await asyncio.wait_for(behind.put(1, None), 1)
    await asyncio.wait_for(behind.put(2, "SMTP error: 550"), 1)
    await asyncio.sleep(0)

    assert writes.started == [1, 2]
    assert writes.written == []
    writes.finish(1)
    writes.finish(2)
    await behind.wait()
    assert sorted(writes.written) == [(1, None), (2, "SMTP error: 550")]


async def test_no_more_than_in_flight_outcomes_are_left_unwritten() -> None:
    writes = Writes()
    behind = WriteBehind(writes, in_flight=2)
    await behind.put(1, None)
    await behind.put(2, None)

    third = asyncio.create_task(behind.put(3, None))
    await asyncio.sleep(0.05)
    assert not third.done()  # the next send waits for a write to finish

    writes.finish(1)
    await asyncio.wait_for(third, 1)
    for delivery_id in (2, 3):
        writes.finish(delivery_id)
    await behind.wait()
    assert sorted(d for d, _ in writes.written) == [1, 2, 3]


async def test_wait_returns_only_when_every_outcome_is_written() -> None:
    writes = Writes()
    behind = WriteBehind(writes, in_flight=4)
    for delivery_id in (1, 2, 3):
        await behind.put(delivery_id, None)

    waiting = asyncio.create_task(behind.wait())
    writes.finish(1)
    writes.finish(3)
    await asyncio.sleep(0.05)
    assert not waiting.done()

    writes.finish(2)
    await asyncio.wait_for(waiting, 1)
    assert sorted(d for d, _ in writes.written) == [1, 2, 3]


async def after_a_failed_write() -> tuple[Writes, WriteBehind]:
    """Delivery 1's outcome written, and the write failed."""
    writes = Writes()
    writes.failing.add(1)
    behind = WriteBehind(writes, in_flight=2)
    await behind.put(1, None)
    writes.finish(1)
    await asyncio.sleep(0.01)
    return writes, behind


async def test_a_failed_write_stops_the_sends_and_is_raised() -> None:
    _, behind = await after_a_failed_write()

    with pytest.raises(ConnectionError, match="writing 1"):
        behind.check()  # asked before the next send: no message goes out whose outcome is lost
    with pytest.raises(ConnectionError, match="writing 1"):
        await behind.wait()


async def test_an_outcome_put_after_a_failed_write_is_still_written() -> None:
    """The message went out before the failure was seen: its outcome is not dropped."""
    writes, behind = await after_a_failed_write()

    with pytest.raises(ConnectionError, match="writing 1"):
        await behind.put(2, None)
    writes.finish(2)
    await behind.settle()

    assert writes.written == [(2, None)]


async def test_a_write_failing_while_a_put_waits_for_a_slot_still_writes_that_outcome() -> None:
    writes = Writes()
    writes.failing.add(1)
    behind = WriteBehind(writes, in_flight=1)
    await behind.put(1, None)
    waiting = asyncio.create_task(behind.put(2, None))
    await asyncio.sleep(0.01)

    writes.finish(1)

    with pytest.raises(ConnectionError, match="writing 1"):
        await asyncio.wait_for(waiting, 1)
    writes.finish(2)
    await behind.settle()
    assert writes.written == [(2, None)]


async def test_a_cancelled_wait_leaves_the_writes_running() -> None:
    writes = Writes()
    behind = WriteBehind(writes, in_flight=2)
    await behind.put(1, None)
    waiting = asyncio.create_task(behind.wait())
    await asyncio.sleep(0.01)

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    writes.finish(1)
    await behind.settle()

    assert writes.written == [(1, None)]
