"""The delivery worker: runs workflow steps and sends the outbox (SPEC §8).

It runs inside ``tessera serve`` and alone as ``tessera worker``; any number may share one
database. Claims are leased (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), each outcome is written
as soon as it is known (while the next message goes out: ``WriteBehind``), and a claim whose
worker died comes back when its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, Protocol

from tessera import logs, metrics
from tessera.clock import utcnow
from tessera.config import Settings
from tessera.db import Database
from tessera.messaging import delivery_codes, repository
from tessera.messaging.channels import (
    SEND_TIMEOUT_SECONDS,
    EmailChannel,
    MaySend,
    OnResult,
    Outgoing,
    SmsChannel,
)
from tessera.messaging.leases import Claim
from tessera.messaging.models import Delivery, DeliveryStatus, Message
from tessera.messaging.renderer import shared as shared_renderer
from tessera.messaging.rules import retry_delay
from tessera.messaging.templates import RenderFailed, promocode_groups
from tessera.messaging.workflows import WorkflowEngine

log = logging.getLogger("tessera.worker")


class Channel(Protocol):
    async def send(self, batch: Sequence[Outgoing], on_result: OnResult, may_send: MaySend) -> None: ...


def channels_from(settings: Settings) -> dict[str, Channel]:
    configured: dict[str, Channel] = {}
    if settings.smtp_url:
        configured["email"] = EmailChannel(settings.smtp_url)
    if settings.sms_url:
        configured["sms"] = SmsChannel(settings.sms_url)
    return configured


def with_display_name(sender: str, display_name: str | None) -> str:
    """The message's sender address under smartsend's ``fromName``, when one was given:
    ``("Shop <shop@example.com>", "Spring sale")`` → ``Spring sale <shop@example.com>``."""
    if not display_name:
        return sender
    _, address = email.utils.parseaddr(sender)
    return email.utils.formataddr((display_name, address or sender))


def templates_of(message: Message) -> tuple[str | None, ...]:
    """What a delivery of this message renders: subject, HTML and text; or the SMS text."""
    if message.channel == "email":
        return (message.subject, message.html_text, message.plain_text)
    return (message.sms_text,)


def outgoing(delivery: Delivery, message: Message, rendered: tuple[str, ...], sms_from: str) -> Outgoing:
    """One delivery, from ``templates_of(message)`` rendered with its data."""
    if message.channel == "email":
        subject, html, text = rendered
        return Outgoing(
            delivery_id=delivery.id,
            request_id=delivery.request_id,
            recipient=delivery.recipient,
            sender=with_display_name(message.sender, delivery.sender_name),
            subject=subject,
            html=html,
            text=text,
        )
    (text,) = rendered
    return Outgoing(
        delivery_id=delivery.id,
        request_id=delivery.request_id,
        recipient=delivery.recipient,
        sender=delivery.sender_name or message.sender or sms_from,
        subject="",
        html="",
        text=text,
    )


#: Writes one delivery's outcome: its id and the error (None: sent).
WriteOutcome = Callable[[int, str | None], Coroutine[Any, Any, None]]


class WriteBehind:
    """Writes each outcome while the next message goes out: the channel's send does not wait for
    the database, nor the database for the relay. Outcomes are still written one by one as they
    come, at most ``in_flight`` behind the sends.

    Every outcome put is written (the message went out: its outcome must not be dropped), and the
    first write that fails stops the batch: ``check``, asked before each send, raises it, so no
    message goes out whose outcome could not be written; ``put`` raises it too, once its own
    outcome's write is under way.
    """

    def __init__(self, write: WriteOutcome, in_flight: int = 2) -> None:
        self._write = write
        self._slots = asyncio.Semaphore(in_flight)
        self._writing: set[asyncio.Task[None]] = set()
        self._failed: BaseException | None = None

    async def put(self, delivery_id: int, error: str | None) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._write(delivery_id, error))
        self._writing.add(task)
        task.add_done_callback(self._written)
        self.check()

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writing.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None and self._failed is None:
            self._failed = task.exception()

    def check(self) -> None:
        """Raises the first write that failed."""
        if self._failed is not None:
            raise self._failed

    async def wait(self) -> None:
        """Every outcome put so far, written; raises the first write that failed."""
        await self.settle()
        self.check()

    async def settle(self) -> None:
        """Every outcome put so far, written, whatever happens to the caller: a cancelled wait
        leaves the writes running."""
        if self._writing:
            await asyncio.shield(asyncio.gather(*self._writing, return_exceptions=True))


class Worker:
    def __init__(
        self, database: Database, settings: Settings, channels: dict[str, Channel] | None = None
    ) -> None:
        self.database = database
        self.settings = settings
        self.channels = channels if channels is not None else channels_from(settings)
        self.lease = timedelta(seconds=settings.delivery_lease_seconds)
        self.code_return_delay = timedelta(
            seconds=settings.delivery_code_return_seconds
            if settings.delivery_code_return_seconds is not None
            else settings.delivery_lease_seconds + SEND_TIMEOUT_SECONDS
        )
        self.engine = WorkflowEngine(
            database, settings.delivery_max_attempts, settings.delivery_backoff_cap_seconds
        )

    async def run_once(self) -> int:
        """One pass: due workflow runs, due deliveries, then the codes of failed deliveries due
        to go back. Returns how much it did."""
        done = await self.process_runs() + await self.process_deliveries()
        return done + await delivery_codes.settle_returns(self.database, self.settings.worker_batch_size)

    async def run_forever(self, stop: asyncio.Event) -> None:
        logs.configure(self.settings.log_format)  # alone as `tessera worker`, no app did it
        while not stop.is_set():
            try:
                done = await self.run_once()
            except Exception:
                log.exception("worker pass failed; retrying")
                done = 0
            if not done:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.worker_poll_seconds)

    async def process_runs(self) -> int:
        async with self.database.reading() as session:
            if not await repository.run_due(session, await repository.database_now(session)):
                return 0
        async with self.database.transaction() as session:
            claimed = await repository.claim_runs(
                session, await repository.database_now(session), self.lease, self.settings.worker_batch_size
            )
        claim = Claim(self.database, self.lease, claimed, repository.hold_runs)
        for run_id in claimed:
            await self.engine.execute(run_id, claim)
            claim.release(run_id)
        return len(claimed)

    async def process_deliveries(self) -> int:
        async with self.database.reading() as session:
            now = await repository.database_now(session)
            due = [
                channel
                for channel in ("email", "sms")
                if await repository.delivery_due(session, channel, now, configured=channel in self.channels)
            ]
        if not due:
            return 0
        sendable = [channel for channel in due if channel in self.channels]
        async with self.database.transaction() as session:
            now = await repository.database_now(session)
            for channel in due:
                if channel not in self.channels:
                    await repository.note_unconfigured(session, channel, now)
            claimed = (
                await repository.claim_deliveries(
                    session, sendable, now, self.lease, self.settings.worker_batch_size
                )
                if sendable
                else []
            )
        if not claimed:
            return 0
        async with self.database.reading() as session:
            messages = {
                m_id: await repository.message_by_id(session, m_id)
                for m_id in {d.message_id for d in claimed}
            }
        ready: dict[str, list[Outgoing]] = {}
        attempts = {d.id: d.attempts for d in claimed}
        channels = {d.id: d.channel for d in claimed}
        # Promo codes first ($!promocodes.issue): claimed for the whole batch in one transaction.
        groups_of = {
            m_id: promocode_groups(*templates_of(m)) for m_id, m in messages.items() if m is not None
        }
        groups = {d.id: groups_of[d.message_id] for d in claimed if d.message_id in groups_of}
        codes = await delivery_codes.claim(self.database, claimed, groups)
        renderable = [
            (d, m)
            for d in claimed
            if (m := messages.get(d.message_id)) is not None
            and d.id not in codes.refused
            and d.id not in codes.lost
        ]
        # The whole batch in one call to the renderer's child process (renderer.py).
        rendered = await shared_renderer().render(
            [(templates_of(m), d.data or {}, codes.of(d.id)) for d, m in renderable]
        )
        results = {d.id: result for (d, _), result in zip(renderable, rendered, strict=True)}
        for delivery in claimed:
            if delivery.id in codes.lost:
                continue  # another worker took it over while its codes were being claimed
            message = messages.get(delivery.message_id)
            if delivery.id in codes.refused:
                problem: str | None = codes.refused[delivery.id]
            elif message is None:
                problem = f"template failed: message {delivery.message_id} no longer exists"
            elif isinstance(result := results[delivery.id], RenderFailed):
                problem = f"template failed: {result}"
            else:
                problem = None
                ready.setdefault(delivery.channel, []).append(
                    outgoing(delivery, message, result, self.settings.sms_from)
                )
            if problem is not None:
                await self._record(delivery.id, delivery.channel, attempts[delivery.id], problem, final=True)

        claim = Claim(
            self.database,
            self.lease,
            {item.delivery_id: attempts[item.delivery_id] for b in ready.values() for item in b},
            repository.renew_leases,
        )

        async def record(delivery_id: int, error: str | None) -> None:
            await self._record(delivery_id, channels[delivery_id], attempts[delivery_id], error)

        outcomes = WriteBehind(record)

        async def may_send(delivery_id: int) -> bool:
            outcomes.check()  # an outcome that could not be written stops the sends
            return await claim.holds(delivery_id)

        async def on_result(delivery_id: int, error: str | None) -> None:
            claim.release(delivery_id)
            await outcomes.put(delivery_id, error)

        try:
            for channel, batch in ready.items():
                await self.channels[channel].send(batch, on_result, may_send)
        except BaseException:
            await outcomes.settle()  # the outcomes of what went out, then the send's own error
            raise
        await outcomes.wait()
        return len(claimed)

    async def _record(
        self, delivery_id: int, channel: str, attempts: int, error: str | None, final: bool = False
    ) -> None:
        # One guarded statement (autocommit on PostgreSQL), but a failure and the return of its
        # codes commit together.
        async with self.database.write_one() as conn:
            now = utcnow()
            if error is None:
                outcome = "sent"
                recorded = await repository.finish_delivery(
                    conn, delivery_id, attempts, status=DeliveryStatus.SENT, reason=None, now=now
                )
            elif final or attempts >= self.settings.delivery_max_attempts:
                outcome = "failed"
                async with conn.atomic():
                    recorded = await repository.finish_delivery(
                        conn, delivery_id, attempts, status=DeliveryStatus.FAILED, reason=error, now=now
                    )
                    if recorded:
                        returns_at = await repository.clock(conn) + self.code_return_delay
                        await delivery_codes.schedule_return(conn, delivery_id, returns_at)
            else:
                outcome = "retry"
                now = await repository.clock(conn)
                delay = retry_delay(attempts, self.settings.delivery_backoff_cap_seconds)
                recorded = await repository.finish_delivery(
                    conn,
                    delivery_id,
                    attempts,
                    status=DeliveryStatus.QUEUED,
                    reason=error,
                    now=now,
                    retry_at=now + delay,
                )
        level = logging.INFO
        if not recorded:
            # Another worker took it back: its own attempt counts. A message that went out anyway
            # is worth a look: sent twice, or sent after its codes went back to the pool.
            level = logging.WARNING if error is None else logging.INFO
            outcome = "sent, but no longer held" if error is None else "lost claim"
        else:
            metrics.DELIVERIES.labels(channel, outcome).inc()
        # By id: what a delivery carries (its recipient, its codes) never reaches a log line.
        log.log(
            level,
            "delivery %s (%s) attempt %s: %s",
            delivery_id,
            channel,
            attempts,
            outcome,
            extra={"delivery_id": delivery_id, "channel": channel, "attempt": attempts, "outcome": outcome},
        )
