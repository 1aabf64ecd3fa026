"""Promo codes in messages: ``$!promocodes.issue('<group>')`` (SPEC §10, "Codes in campaigns").

A template names the groups it takes codes from (``templates.promocode_groups``). The worker
claims a batch of due deliveries, and before it renders any of them claims their codes here, in
one short transaction per batch:

- each code is issued to the recipient's contact (created if new; a batch's contacts are found
  or created together) by the same rules and the same guarded statement as
  ``promocodes/issue``, and tied to its delivery (``DeliveryCode``) in that
  transaction; the unique (delivery, group) key and the lock on the held deliveries make it once
  per delivery, so a retry or a render after a crash shows the same code, and two workers never
  give one recipient two codes;
- a delivery whose group is unknown, disabled or out of codes is refused with the reason and
  fails alone, before anything is written for it; one that needs two groups and gets only one
  keeps neither;
- a batch is one transaction, never the whole send: a smartsend of any size holds the pool only
  as long as one batch takes.

A delivery that fails for good gives its codes back (``return_unsent``), unless one was used,
once a worker whose lease lapsed can no longer be sending it (``schedule_return``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tessera import errors
from tessera.clock import utcnow
from tessera.customers import service as customers
from tessera.customers.identifiers import IdentifierKind
from tessera.db import Database
from tessera.messaging import repository
from tessera.messaging.models import Delivery, DeliveryStatus
from tessera.promocodes import rules
from tessera.promocodes import service as promocodes
from tessera.promocodes.models import CodeRow, GroupRow
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
        for carried_code in await repository.carried_codes(conn, sorted(held)):
            if carried_code.returned_at is None:
                claimed.codes.setdefault(carried_code.delivery_id, {})[carried_code.group_name] = (
                    carried_code.number
                )
        lacking = [
            (delivery, missing)
            for delivery in wanted
            if delivery.id in held
            and (missing := [g for g in groups[delivery.id] if g not in claimed.codes.get(delivery.id, {})])
        ]
        if not lacking:
            return claimed
        # First, without writing anything, which deliveries the groups can serve: each group is
        # read once and its free codes counted as far as the batch needs. One refused here leaves
        # no trace, not even a contact.
        stock = _Stock(conn)
        await stock.count([(delivery.partner_id, missing) for delivery, missing in lacking])
        served = []
        for delivery, missing in lacking:
            reason = stock.take(delivery.partner_id, missing)
            if reason is None:
                served.append((delivery, missing))
            else:
                claimed.refused[delivery.id] = reason
        contacts = await _contacts(conn, [delivery for delivery, _ in served])
        # One statement per group for the whole batch, each delivery in its turn.
        needing: dict[tuple[int, str], list[Delivery]] = {}
        for delivery, missing in served:
            for name in missing:
                needing.setdefault((delivery.partner_id, name), []).append(delivery)
        taken: dict[int, dict[str, CodeRow]] = {}
        for (partner_id, name), group_deliveries in sorted(needing.items()):
            customer_ids = [contacts[partner_id, d.channel, d.recipient] for d in group_deliveries]
            issued = await promocodes.claim_many_from(conn, stock.group(partner_id, name), customer_ids)
            for delivery, issued_code in zip(group_deliveries, issued, strict=True):
                if issued_code is not None:
                    taken.setdefault(delivery.id, {})[name] = issued_code
        now = utcnow()
        carried: list[dict[str, object]] = []
        unsent: list[int] = []
        for delivery, missing in served:
            got = taken.get(delivery.id, {})
            short = [name for name in missing if name not in got]
            if short:
                # Fewer free than counted (expired codes, another issuer): all of its codes or
                # none, so those it did get go straight back.
                claimed.refused[delivery.id] = refusal(short[0], errors.NoFreePromocodes())
                unsent += [code.id for code in got.values()]
                continue
            claimed.codes.setdefault(delivery.id, {}).update(
                {name: code.number for name, code in got.items()}
            )
            carried += [
                {"delivery_id": delivery.id, "group_name": name, "promocode_id": code.id, "now": now}
                for name, code in got.items()
            ]
        await promocodes.return_unsent(conn, unsent)
        await repository.add_carried_codes(conn, carried)
        # Once per group and batch, after its claims: a crossing fires its event once, and no
        # group row is locked while the batch's other claims run.
        for key in sorted(needing):
            await promocodes.check_low_stock(conn, stock.group(*key))
    return claimed


async def _contacts(conn: Conn, deliveries: Sequence[Delivery]) -> dict[tuple[int, str, str], int]:
    """Each recipient's contact (created when new): by email for email, by phone for SMS."""
    wanted: dict[tuple[int, str], set[str]] = {}
    for delivery in deliveries:
        wanted.setdefault((delivery.partner_id, delivery.channel), set()).add(delivery.recipient)
    found = {}
    for (partner_id, channel), recipients in wanted.items():
        kind = IdentifierKind.EMAIL if channel == "email" else IdentifierKind.PHONE
        ids = await customers.find_or_add_many(conn, partner_id, kind, sorted(recipients))
        found.update({(partner_id, channel, recipient): ids[recipient] for recipient in recipients})
    return found


class _Stock:
    """The batch's groups, by partner and name, each read once, with the free codes each has
    left for the batch (counted no further than the batch needs), or why it gives none."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self._groups: dict[tuple[int, str], GroupRow] = {}
        self._left: dict[tuple[int, str], int] = {}
        self._refusals: dict[tuple[int, str], str] = {}

    async def count(self, needs: Sequence[tuple[int, Sequence[str]]]) -> None:
        wanted = Counter((partner_id, name) for partner_id, names in needs for name in names)
        for (partner_id, name), needed in sorted(wanted.items()):
            try:
                group = await promocodes.group_row_named(self.conn, partner_id, name)
                rules.check_can_issue(group_enabled=group.enabled)
            except REFUSALS as error:
                self._refusals[partner_id, name] = refusal(name, error)
                continue
            self._groups[partner_id, name] = group
            self._left[partner_id, name] = await promocodes.free_codes_up_to(self.conn, group, needed)

    def take(self, partner_id: int, names: Sequence[str]) -> str | None:
        """Sets aside one code of each group for a delivery; or why it cannot have them all."""
        for name in names:
            if (partner_id, name) in self._refusals:
                return self._refusals[partner_id, name]
            if not self._left[partner_id, name]:
                return refusal(name, errors.NoFreePromocodes())
        for name in names:
            self._left[partner_id, name] -= 1
        return None

    def group(self, partner_id: int, name: str) -> GroupRow:
        return self._groups[partner_id, name]


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


async def schedule_return(conn: Conn, delivery_id: int, at: datetime) -> None:
    """A delivery failed for good: its codes are to go back to their pools at ``at``.

    Not at once: a worker whose lease lapsed mid-send (a stalled process) may still deliver the
    message after another worker took the delivery over and failed it. Its success is recorded
    over the failure until then, and the codes stay with the recipient who got them.
    """
    await repository.schedule_return(conn, delivery_id, at)


async def settle_returns(database: Database, limit: int) -> int:
    """Gives back the codes of failed deliveries whose return is due (on the database's clock, as
    ``return_at`` was set); answers how many deliveries it settled."""
    async with database.read() as conn:
        now = await repository.clock(conn)
        due = await repository.returns_due(conn, now, limit)
    for delivery_id in due:
        async with database.write() as conn:
            await settle_return(conn, delivery_id, now)
    return len(due)


async def settle_return(conn: Conn, delivery_id: int, now: datetime) -> None:
    """One delivery's due codes back to their pools, if no late success kept them first. Taking
    the return (clearing ``return_at``) comes first: a success recorded after it keeps nothing
    (``repository.finish_delivery``), so a code never goes back from a message that went out."""
    if not await repository.claim_return(conn, delivery_id, now):
        return
    if await repository.delivery_status(conn, delivery_id) == DeliveryStatus.FAILED:
        await return_unsent(conn, delivery_id, now)


async def return_unsent(conn: Conn, delivery_id: int, now: datetime) -> list[int]:
    """A failed delivery's codes return to their pools, unless somebody activated or applied one
    after all (a send that failed late may have reached its recipient). Answers the ids of the
    codes returned."""
    carried = [
        code.promocode_id
        for code in await repository.carried_codes(conn, [delivery_id])
        if code.returned_at is None
    ]
    returned = await promocodes.return_unsent(conn, carried)
    await repository.mark_returned(conn, delivery_id, returned, now)
    return returned
