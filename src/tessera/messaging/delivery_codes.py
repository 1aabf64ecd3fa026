"""Promo codes in messages: ``$!promocodes.issue('<group>')`` (SPEC §10, "Codes in campaigns").

A template names the groups it takes codes from (``templates.promocode_groups``). The worker
claims a batch of due deliveries, and before it renders any of them claims their codes here, in
one short transaction per batch:

- each code is issued to the recipient's contact (created if new) by the same rules and the same
  guarded statement as ``promocodes/issue``, and tied to its delivery (``DeliveryCode``) in that
  transaction; the unique (delivery, group) key and the lock on the held deliveries make it once
  per delivery, so a retry or a render after a crash shows the same code, and two workers never
  give one recipient two codes;
- a delivery whose group is unknown, disabled or out of codes is refused with the reason and
  fails alone; one that needs two groups and gets only one keeps neither;
- a batch is one transaction, never the whole send: a smartsend of any size holds the pool only
  as long as one batch takes.

A delivery that fails for good gives its codes back (``give_back``): nobody saw them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tessera import errors
from tessera.clock import utcnow
from tessera.customers import service as customers
from tessera.customers.service import CustomerInput
from tessera.db import Database
from tessera.messaging import repository
from tessera.messaging.models import Delivery
from tessera.promocodes import repository as promocodes_repository
from tessera.promocodes import service as promocodes
from tessera.sql import Conn


@dataclass
class ClaimedCodes:
    """What a batch's claim found: the codes each delivery carries (group → code), the deliveries
    that cannot be sent (why), and those another worker took over meanwhile (not to be sent)."""

    codes: dict[int, dict[str, str]] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)
    lost: set[int] = field(default_factory=set)

    def of(self, delivery_id: int) -> dict[str, str]:
        return self.codes.get(delivery_id, {})


async def claim(
    database: Database, deliveries: Sequence[Delivery], groups: Mapping[int, Sequence[str]]
) -> ClaimedCodes:
    """Claims the codes these deliveries (just claimed by this worker) still lack; ``groups``
    names each delivery's groups, by delivery id."""
    claimed = ClaimedCodes()
    wanted = [delivery for delivery in deliveries if groups.get(delivery.id)]
    if not wanted:
        return claimed
    async with database.write() as conn:
        held = await repository.held_deliveries(conn, {d.id: d.attempts for d in wanted})
        claimed.lost = {delivery.id for delivery in wanted} - held
        for code in await repository.carried_codes(conn, sorted(held)):
            if code.returned_at is None:
                claimed.codes.setdefault(code.delivery_id, {})[code.group_name] = code.number
        now = utcnow()
        for delivery in wanted:
            if delivery.id not in held:
                continue
            carried = claimed.codes.setdefault(delivery.id, {})
            missing = [name for name in groups[delivery.id] if name not in carried]
            if not missing:
                continue
            try:
                if len(missing) == 1:
                    carried.update(await _claim_for(conn, delivery, missing, now))
                else:
                    # All of its codes or none: a code claimed before another group refused
                    # would be burnt, its delivery never sent.
                    async with conn.savepoint():
                        carried.update(await _claim_for(conn, delivery, missing, now))
            except _Refused as refused:
                claimed.refused[delivery.id] = refused.reason
    return claimed


async def _claim_for(conn: Conn, delivery: Delivery, names: Sequence[str], now: datetime) -> dict[str, str]:
    contact = (
        CustomerInput(email=delivery.recipient)
        if delivery.channel == "email"
        else CustomerInput(phone=delivery.recipient)
    )
    try:
        customer_id = await customers.find_or_add(conn, delivery.partner_id, contact)
    except errors.TesseraError as error:
        raise _Refused(f"the recipient cannot be made a contact: {error.text}") from None
    codes = {}
    for name in names:
        try:
            code, _ = await promocodes.issue_to_customer(conn, delivery.partner_id, customer_id, name)
        except REFUSALS as error:
            raise _Refused(refusal(name, error)) from None
        await repository.add_carried_code(conn, delivery.id, name, code.id, now)
        codes[name] = code.number
    return codes


_REASONS: dict[type[errors.TesseraError], str] = {
    errors.PromocodeGroupNotFound: "no such group",
    errors.PromocodeGroupDisabled: "the group is disabled",
    errors.NoFreePromocodes: "no free codes left",
}
#: The errors of an issue that refuse one delivery (the others fail the batch's claim).
REFUSALS = tuple(_REASONS)


def refusal(group_name: str, error: errors.TesseraError) -> str:
    """Why a delivery cannot take a code from the group (one of ``REFUSALS``), as its status
    reason says it; the admin's message preview says the same."""
    return f"promo-code group {group_name!r}: {_REASONS[type(error)]}"


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def give_back(conn: Conn, delivery_id: int, now: datetime) -> list[int]:
    """A delivery failed for good: its codes return to their pools, unless somebody activated or
    applied one after all (a send that failed late may have reached its recipient). Answers the
    ids of the codes returned."""
    carried = [
        code.promocode_id
        for code in await repository.carried_codes(conn, [delivery_id])
        if code.returned_at is None
    ]
    returned = await promocodes_repository.return_unsent(conn, carried)
    await repository.mark_returned(conn, delivery_id, returned, now)
    return returned
