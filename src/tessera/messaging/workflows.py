"""The workflow engine: walks a run's steps, one transaction per step (SPEC §8).

A step's effect and the advance of the run's ``step_index`` commit together, guarded by the
index it started from. If two workers ever held the same run, only one advance succeeds and the
other's work rolls back with it: ``issue_promocode`` never takes a second code for a run, and a
``send`` step writes one delivery.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tessera import errors, metrics
from tessera.clock import utcnow
from tessera.customers import repository as customers_repository
from tessera.customers import service as customers
from tessera.customers.identifiers import normalize_email, normalize_phone
from tessera.db import Database
from tessera.messaging import repository
from tessera.messaging.contacts import contact_from
from tessera.messaging.leases import Claim
from tessera.messaging.models import DeliveryStatus, RunStatus, WorkflowRun
from tessera.messaging.rules import retry_delay
from tessera.messaging.schemas import WorkflowStep, parse_steps
from tessera.promocodes import service as promocodes
from tessera.sql import is_unique_violation, on_session

log = logging.getLogger("tessera.worker")


class StepFailed(Exception):
    """The step cannot complete now; the run is retried with backoff, then marked failed."""


class _LostRace(Exception):
    pass


class WorkflowEngine:
    def __init__(self, database: Database, max_attempts: int, backoff_cap_seconds: float) -> None:
        self.database = database
        self.max_attempts = max_attempts
        self.backoff_cap_seconds = backoff_cap_seconds
        #: The step being worked (index, type), for its log line.
        self._current: tuple[int, str] | None = None

    async def execute(self, run_id: int, claim: Claim) -> None:
        """Runs steps until the run ends, waits, or a step fails; stops as soon as ``claim`` no
        longer holds the run (its lease lapsed and another worker took it over)."""
        while await claim.holds(run_id):
            serial = claim.serial(run_id)
            self._current = None
            try:
                async with self.database.transaction() as session:
                    goes_on = await self._step(session, run_id, serial)
                if self._current is not None:
                    _log_step(run_id, *self._current, "done")
                if not goes_on:
                    return
            except _LostRace:
                return
            except (StepFailed, errors.TesseraError) as error:
                await self._failed(run_id, serial, str(error) or type(error).__name__)
                return
            except Exception as error:
                if is_unique_violation(error):
                    # The step's delivery is already written: another worker took the run over.
                    return
                log.exception("workflow run %s failed unexpectedly", run_id)
                await self._failed(run_id, serial, f"unexpected error: {type(error).__name__}")
                return

    async def _step(self, session: AsyncSession, run_id: int, serial: int) -> bool:
        """One step; True when the run should go straight on to the next."""
        run = await repository.get_run(session, run_id, for_update=True)
        if run is None or run.status != RunStatus.ACTIVE or run.claim_serial != serial:
            return False
        workflow = await repository.get_workflow(session, run.partner_id, run.workflow_id)
        steps = parse_steps(workflow.steps) if workflow is not None else []
        if workflow is None or run.step_index >= len(steps):
            await self._advance(session, run, status=RunStatus.DONE, locked_until=None)
            return False
        step = steps[run.step_index]
        self._current = (run.step_index, step.type)
        data = dict(run.data)
        values: dict[str, Any] = {"step_index": run.step_index + 1, "attempts": 0, "last_error": None}
        if step.type == "issue_promocode":
            customer_id = await self._customer(session, run)
            code, _ = await promocodes.issue_to_customer(
                await on_session(session), run.partner_id, customer_id, step.group or ""
            )
            data[step.as_ or "code"] = code.number
            values.update(customer_id=customer_id, data=data)
        elif step.type == "send":
            await self._send(session, run, step, data)
        elif step.type == "add_tag":
            customer_id = await self._customer(session, run)
            await customers.add_tags(await on_session(session), run.partner_id, customer_id, [step.tag or ""])
            values.update(customer_id=customer_id)
        elif step.type == "wait":
            now = await repository.database_now(session)
            values.update(available_at=now + timedelta(seconds=step.seconds or 0), locked_until=None)
            await self._advance(session, run, **values)
            return False
        await self._advance(session, run, **values)
        return True

    async def _advance(self, session: AsyncSession, run: WorkflowRun, **values: Any) -> None:
        if not await repository.advance_run(session, run.id, run.step_index, run.claim_serial, **values):
            raise _LostRace()

    async def _customer(self, session: AsyncSession, run: WorkflowRun) -> int:
        """The run's customer; for an event, the contact its params name (created if new)."""
        if run.customer_id is not None:
            return run.customer_id
        key_value = None
        if run.event_id is not None:
            event = await repository.get_event(session, run.event_id)
            key_value = event.key_value if event is not None else None
        contact = contact_from(run.data, key_value)
        if contact is None:
            raise StepFailed("the event names no contact (EmailAddress, Phone or externalCustomerId)")
        customer = await customers.add_or_update(await on_session(session), run.partner_id, contact)
        run.customer_id = customer.id
        return customer.id

    async def _send(
        self, session: AsyncSession, run: WorkflowRun, step: WorkflowStep, data: dict[str, Any]
    ) -> None:
        message = await repository.get_message(session, run.partner_id, step.message_id or 0)
        if message is None:
            raise StepFailed(f"message {step.message_id} not found")
        if step.to_param:
            raw = data.get(step.to_param)
            if not isinstance(raw, str | int) or not str(raw).strip():
                raise StepFailed(f"the event has no {step.to_param!r} param to send to")
            raw_recipient = str(raw)
        else:
            customer_id = await self._customer(session, run)
            customer = await customers_repository.get(session, run.partner_id, customer_id)
            found = (customer.email if message.channel == "email" else customer.phone) if customer else None
            if not found:
                raise StepFailed(f"the contact has no {'email' if message.channel == 'email' else 'phone'}")
            raw_recipient = found
        try:
            recipient = (
                normalize_email(raw_recipient)
                if message.channel == "email"
                else normalize_phone(raw_recipient)
            )
        except errors.TesseraError:
            raise StepFailed(f"{raw_recipient!r} is not a valid {message.channel} recipient") from None
        await repository.add_deliveries(
            session,
            [
                {
                    "partner_id": run.partner_id,
                    "request_id": str(uuid.uuid4()),
                    "message_id": message.id,
                    "channel": message.channel,
                    "recipient": recipient,
                    "data": data,
                    "workflow_run_id": run.id,
                    "step_index": run.step_index,
                    "status": DeliveryStatus.QUEUED,
                    "attempts": 0,
                    "available_at": utcnow(),
                }
            ],
        )

    async def _failed(self, run_id: int, serial: int, reason: str) -> None:
        async with self.database.transaction() as session:
            run = await repository.get_run(session, run_id, for_update=True)
            if run is None or run.status != RunStatus.ACTIVE or run.claim_serial != serial:
                return
            outcome = "failed" if run.attempts >= self.max_attempts else "retry"
            step_type = self._current[1] if self._current is not None else "end"
            if outcome == "failed":
                values: dict[str, Any] = {
                    "status": RunStatus.FAILED,
                    "locked_until": None,
                    "last_error": reason,
                }
            else:
                values = {
                    "available_at": await repository.database_now(session)
                    + retry_delay(run.attempts, self.backoff_cap_seconds),
                    "locked_until": None,
                    "last_error": reason,
                }
            if not await repository.advance_run(session, run.id, run.step_index, serial, **values):
                return
        _log_step(run_id, run.step_index, step_type, outcome)


def _log_step(run_id: int, step_index: int, step_type: str, outcome: str) -> None:
    """One line and one count per workflow step: done, retry (backing off) or failed for good."""
    metrics.WORKFLOW_STEPS.labels(step_type, outcome).inc()
    log.info(
        "workflow run %s step %s (%s): %s",
        run_id,
        step_index,
        step_type,
        outcome,
        extra={"run_id": run_id, "step": step_index, "step_type": step_type, "outcome": outcome},
    )
