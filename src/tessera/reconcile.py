"""The reconciler behind ``tessera check``: reads the whole database and names every broken invariant.

Each rule checked here is kept by the code that writes (guarded UPDATEs, unique keys, one
transaction per step); this module re-derives it from what is stored, so a bug, a hand edit or a
half-restored backup shows up as a named problem instead of as a wrong answer months later.

It only reads. When two stored facts disagree, nothing here can know which one is true (did the
purchase happen, or did the code's counter drift?), so repairing is left to a person who has read
the report. Every comparison is made inside one SELECT, and one statement sees one committed
state on both databases, so ``tessera check`` may run beside a live service: a unit of work still
in flight is invisible to it, never half-seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy import and_, exists, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.certificates.models import Certificate, CertificateGroup
from tessera.db import Database
from tessera.messaging.models import Delivery, DeliveryCode, Message, Workflow, WorkflowRun
from tessera.promocodes.models import CodeState, GroupType, Promocode, PromocodeActivation, PromocodeGroup
from tessera.promocodes.rules import GroupCounts
from tessera.purchases.models import Purchase, PurchaseCertificate, PurchasePromocode


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken invariant: its name, the partner whose data it is (when known), and what is wrong."""

    invariant: str
    partner_id: int | None
    detail: str

    def __str__(self) -> str:
        partner = f"partner {self.partner_id}" if self.partner_id is not None else "partner unknown"
        return f"{self.invariant} ({partner}): {self.detail}"


Check = Callable[[AsyncSession], Awaitable[list[Problem]]]
CHECKS: list[Check] = []


def _check(function: Check) -> Check:
    CHECKS.append(function)
    return function


async def find_problems(database: Database) -> list[Problem]:
    """Every broken invariant, check by check, in the order the checks are written below."""
    problems: list[Problem] = []
    async with database.reading() as session:
        for check in CHECKS:
            problems.extend(await check(session))
    return problems


def _ids(values: Sequence[Any]) -> str:
    return ", ".join(str(value) for value in values)


AVAILABLE, ISSUED, APPLIED = int(CodeState.AVAILABLE), int(CodeState.ISSUED), int(CodeState.APPLIED)
STATES = (AVAILABLE, ISSUED, APPLIED)


# -- promo codes --------------------------------------------------------------------------------
# Groups store no counters: the API and the admin count codes by state (``GroupCounts``), so what
# must hold is that those counts cover every code, and that each code's columns tell one story.


@_check
async def group_counts(session: AsyncSession) -> list[Problem]:
    """Every code is counted in its group's ``total`` (as unused or receipted): a code in a state
    ``GroupCounts`` does not know would be in the group and yet in none of its counts."""
    by_group: dict[int, dict[int, int]] = {}
    for group_id, state, count in await session.execute(
        select(Promocode.group_id, Promocode.state, func.count()).group_by(
            Promocode.group_id, Promocode.state
        )
    ):
        by_group.setdefault(group_id, {})[state] = count
    # Read after the codes: a group is committed with (or before) its codes, so each is found.
    groups = await session.execute(select(PromocodeGroup.id, PromocodeGroup.partner_id, PromocodeGroup.name))
    problems = []
    for group_id, partner_id, name in groups:
        by_state = by_group.get(group_id, {})
        stored, counted = sum(by_state.values()), GroupCounts.from_states(by_state).total
        if stored != counted:
            unknown = sorted(state for state in by_state if state not in STATES)
            problems.append(
                Problem(
                    "group_counts",
                    partner_id,
                    f"promo-code group {group_id} ({name!r}) holds {stored} codes but its counts total"
                    f" {counted}: those in state(s) {_ids(unknown)} are counted nowhere",
                )
            )
    return problems


@_check
async def code_group(session: AsyncSession) -> list[Problem]:
    """Codes carry no foreign keys (imports are faster without): each names a group that exists
    and belongs to the code's own partner."""
    rows = await session.execute(
        select(
            Promocode.id,
            Promocode.partner_id,
            Promocode.number,
            Promocode.group_id,
            PromocodeGroup.partner_id,
        )
        .outerjoin(PromocodeGroup, PromocodeGroup.id == Promocode.group_id)
        .where(or_(PromocodeGroup.id.is_(None), PromocodeGroup.partner_id != Promocode.partner_id))
        .order_by(Promocode.id)
    )
    return [
        Problem(
            "code_group",
            partner_id,
            f"code {code_id} ({number!r}) is in group {group_id}, which does not exist"
            if group_partner is None
            else f"code {code_id} ({number!r}) is in group {group_id}, which is partner {group_partner}'s",
        )
        for code_id, partner_id, number, group_id, group_partner in rows
    ]


@_check
async def code_number_twice(session: AsyncSession) -> list[Problem]:
    """A number is in a group once. The unique key is (partner_id, number, group_id), so only a
    code whose partner differs from its group's could repeat one (``code_group`` names that too)."""
    repeated = (
        select(Promocode.group_id, Promocode.number)
        .group_by(Promocode.group_id, Promocode.number)
        .having(func.count() > 1)
        .subquery()
    )
    rows = await session.execute(
        select(Promocode.group_id, Promocode.number, Promocode.id, Promocode.partner_id)
        .join(
            repeated, and_(repeated.c.group_id == Promocode.group_id, repeated.c.number == Promocode.number)
        )
        .order_by(Promocode.group_id, Promocode.number, Promocode.id)
    )
    problems = []
    for (group_id, number), codes in groupby(rows, key=lambda row: (row[0], row[1])):
        found = list(codes)
        problems.append(
            Problem(
                "code_number_twice",
                found[0][3],
                f"number {number!r} is in promo-code group {group_id} {len(found)} times"
                f" (codes {_ids([row[2] for row in found])})",
            )
        )
    return problems


def _code_faults(
    state: int, *, holder: bool, activated: bool, received: bool, used_on: bool, applied_times: int
) -> list[str]:
    """What about a code contradicts its state; empty when nothing does."""
    faults = []
    if state == AVAILABLE:
        # Leaving the free pool (issue, activation, a purchase) is what sets each of these.
        marks = {"a customer": holder, "an activation time": activated, "a receipt date": received}
        faults += [f"has {mark}" for mark, found in {**marks, "a date of use": used_on}.items() if found]
    if activated and not holder:
        faults.append("is activated but held by no customer")
    if applied_times < 0:
        faults.append(f"counts {applied_times} uses")
    elif state == APPLIED and applied_times == 0:
        faults.append("counts no use")
    elif state != APPLIED and applied_times > 0:
        faults.append(f"counts {applied_times} use(s)")
    if state == APPLIED and not used_on:
        faults.append("has no date of use")
    return faults


@_check
async def code_state(session: AsyncSession) -> list[Problem]:
    """A code's state and its ownership columns agree: a free code (state 1) has no customer,
    activation, receipt or use; an applied code (state 3) is the one with uses, and has a date of
    use; an activated code has a holder. (Unknown states are ``group_counts``' to report.)"""
    holder, activated = Promocode.customer_id.is_not(None), Promocode.activated_at.is_not(None)
    received, used_on = Promocode.receipt_date.is_not(None), Promocode.date_of_use.is_not(None)
    applied, uses = Promocode.state == APPLIED, Promocode.applied_times
    rows = await session.execute(
        select(Promocode.id, Promocode.partner_id, Promocode.number, Promocode.state, holder, activated)
        .add_columns(received, used_on, uses)
        .where(
            Promocode.state.in_(STATES),
            or_(
                and_(Promocode.state == AVAILABLE, or_(holder, activated, received, used_on)),
                and_(activated, not_(holder)),
                uses < 0,
                and_(applied, or_(uses == 0, not_(used_on))),
                and_(not_(applied), uses > 0),
            ),
        )
        .order_by(Promocode.id)
    )
    problems = []
    for code_id, partner_id, number, state, *flags, applied_times in rows:
        has_holder, is_activated, is_received, is_used_on = (bool(flag) for flag in flags)
        faults = _code_faults(
            state,
            holder=has_holder,
            activated=is_activated,
            received=is_received,
            used_on=is_used_on,
            applied_times=applied_times,
        )
        problems.append(
            Problem(
                "code_state", partner_id, f"code {code_id} ({number!r}) in state {state} {', '.join(faults)}"
            )
        )
    return problems


def _live_uses() -> Any:
    """Per code, how many purchases not deleted applied it (deleting one gives the use back)."""
    return (
        select(PurchasePromocode.promocode_id.label("code_id"), func.count().label("uses"))
        .join(Purchase, Purchase.id == PurchasePromocode.purchase_id)
        .where(Purchase.deleted_at.is_(None))
        .group_by(PurchasePromocode.promocode_id)
        .subquery()
    )


@_check
async def code_uses(session: AsyncSession) -> list[Problem]:
    """A code's ``applied_times`` is the number of live purchases it is linked to: ``purchases/new``
    adds one to both in one transaction, and deleting the purchase takes the one back."""
    live = _live_uses()
    linked = func.coalesce(live.c.uses, 0)
    rows = await session.execute(
        select(Promocode.id, Promocode.partner_id, Promocode.number, Promocode.applied_times, linked)
        .outerjoin(live, live.c.code_id == Promocode.id)
        .where(Promocode.applied_times != linked)
        .order_by(Promocode.id)
    )
    return [
        Problem(
            "code_uses",
            partner_id,
            f"code {code_id} ({number!r}) counts {applied_times} use(s) but {purchases} live purchase(s)"
            " applied it",
        )
        for code_id, partner_id, number, applied_times, purchases in rows
    ]


@_check
async def code_used_twice(session: AsyncSession) -> list[Problem]:
    """A single-use code (``apply_items_once``) is applied by at most one live purchase: the guarded
    UPDATE in ``promocodes.repository.apply_code`` lets one of racing purchases through."""
    live = _live_uses()
    rows = await session.execute(
        select(Promocode.id, Promocode.partner_id, Promocode.number, Purchase.id)
        .join(live, live.c.code_id == Promocode.id)
        .join(PromocodeGroup, PromocodeGroup.id == Promocode.group_id)
        .join(PurchasePromocode, PurchasePromocode.promocode_id == Promocode.id)
        .join(Purchase, Purchase.id == PurchasePromocode.purchase_id)
        .where(live.c.uses > 1, PromocodeGroup.apply_items_once, Purchase.deleted_at.is_(None))
        .order_by(Promocode.id, Purchase.id)
    )
    problems = []
    for (code_id, partner_id, number), purchases in groupby(rows, key=lambda row: tuple(row[:3])):
        purchase_ids = [row[3] for row in purchases]
        problems.append(
            Problem(
                "code_used_twice",
                partner_id,
                f"single-use code {code_id} ({number!r}) is applied by {len(purchase_ids)} live purchases"
                f" ({_ids(purchase_ids)})",
            )
        )
    return problems


@_check
async def code_owned_twice(session: AsyncSession) -> list[Problem]:
    """A single-use code belongs to one customer: every activation of it is by the customer holding
    it (the guarded UPDATE in ``activate_single_use``). A multi-use code is activated once per
    customer, which its activations' unique key enforces, and issuing never hands one code to two
    customers (one ``customer_id`` column), so neither needs reading here."""
    activation = PromocodeActivation
    disowned = (
        select(activation.promocode_id)
        .join(Promocode, Promocode.id == activation.promocode_id)
        .join(PromocodeGroup, PromocodeGroup.id == Promocode.group_id)
        .where(PromocodeGroup.apply_items_once)
        .group_by(activation.promocode_id, Promocode.customer_id)
        .having(
            or_(
                Promocode.customer_id.is_(None),
                func.min(activation.customer_id) != Promocode.customer_id,
                func.max(activation.customer_id) != Promocode.customer_id,
            )
        )
    )
    rows = await session.execute(
        select(
            Promocode.id,
            Promocode.partner_id,
            Promocode.number,
            Promocode.customer_id,
            activation.customer_id,
        )
        .join(activation, activation.promocode_id == Promocode.id)
        .where(Promocode.id.in_(disowned))
        .order_by(Promocode.id, activation.customer_id)
    )
    problems = []
    for (code_id, partner_id, number, holder), activations in groupby(rows, key=lambda row: tuple(row[:4])):
        customers = [row[4] for row in activations]
        held = f"held by customer {holder}" if holder is not None else "held by no customer"
        problems.append(
            Problem(
                "code_owned_twice",
                partner_id,
                f"single-use code {code_id} ({number!r}) is {held} but activated by customer(s)"
                f" {_ids(customers)}",
            )
        )
    return problems


@_check
async def code_activation(session: AsyncSession) -> list[Problem]:
    """A single-use code's ``activated_at`` and its one activation row are written together; a
    multi-use code records activations only as rows. Only activation groups are activated, a code
    leaves the free pool when first activated, and an activation is of its own partner's code."""
    activation = PromocodeActivation
    single_use = PromocodeGroup.apply_items_once
    problems = []
    flagged = await session.execute(
        select(Promocode.id, Promocode.partner_id, Promocode.number, single_use)
        .join(PromocodeGroup, PromocodeGroup.id == Promocode.group_id)
        .where(
            Promocode.activated_at.is_not(None),
            or_(not_(single_use), ~exists().where(activation.promocode_id == Promocode.id)),
        )
        .order_by(Promocode.id)
    )
    for code_id, partner_id, number, is_single_use in flagged:
        why = "has no activation record" if is_single_use else "is multi-use, which records none"
        problems.append(
            Problem(
                "code_activation", partner_id, f"code {code_id} ({number!r}) has an activation time but {why}"
            )
        )
    rows = await session.execute(
        select(activation.id, activation.partner_id, Promocode.id, Promocode.number, Promocode.partner_id)
        .add_columns(
            Promocode.state, Promocode.activated_at.is_not(None), PromocodeGroup.group_type, single_use
        )
        .join(Promocode, Promocode.id == activation.promocode_id)
        .join(PromocodeGroup, PromocodeGroup.id == Promocode.group_id)
        .where(
            or_(
                PromocodeGroup.group_type != int(GroupType.ACTIVATION),
                Promocode.state == AVAILABLE,
                and_(single_use, Promocode.activated_at.is_(None)),
                activation.partner_id != Promocode.partner_id,
            )
        )
        .order_by(activation.id)
    )
    for activation_id, partner_id, code_id, number, code_partner, state, *rest in rows:
        is_activated, group_type, is_single_use = bool(rest[0]), rest[1], bool(rest[2])
        faults = []
        if group_type != GroupType.ACTIVATION:
            faults.append(f"its group is of type {group_type}, not an activation group")
        if state == AVAILABLE:
            faults.append("the code is still free (state 1)")
        if is_single_use and not is_activated:
            faults.append("the single-use code has no activation time")
        if code_partner != partner_id:
            faults.append(f"the code is partner {code_partner}'s")
        problems.append(
            Problem(
                "code_activation",
                partner_id,
                f"activation {activation_id} of code {code_id} ({number!r}): {'; '.join(faults)}",
            )
        )
    return problems


# -- certificates -------------------------------------------------------------------------------


@_check
async def certificate_group(session: AsyncSession) -> list[Problem]:
    """Certificates carry no foreign keys (as codes): each is in a group that exists, of its own
    partner and department (the group gives its value; the department is where it may be used)."""
    rows = await session.execute(
        select(Certificate.id, Certificate.partner_id, Certificate.number, Certificate.group_id)
        .add_columns(Certificate.department_id, CertificateGroup.partner_id, CertificateGroup.department_id)
        .outerjoin(CertificateGroup, CertificateGroup.id == Certificate.group_id)
        .where(
            or_(
                CertificateGroup.id.is_(None),
                CertificateGroup.partner_id != Certificate.partner_id,
                CertificateGroup.department_id != Certificate.department_id,
            )
        )
        .order_by(Certificate.id)
    )
    problems = []
    for certificate_id, partner_id, number, group_id, department_id, group_partner, group_department in rows:
        if group_partner is None:
            why = "which does not exist"
        elif group_partner != partner_id:
            why = f"which is partner {group_partner}'s"
        else:
            why = f"of department {group_department}, while the certificate is department {department_id}'s"
        problems.append(
            Problem(
                "certificate_group",
                partner_id,
                f"certificate {certificate_id} ({number!r}) is in group {group_id}, {why}",
            )
        )
    return problems


@_check
async def certificate_state(session: AsyncSession) -> list[Problem]:
    """created → activated → used, forward only: a used certificate was activated, and one that paid
    for a purchase is used (``purchases/new`` marks it in the same transaction)."""
    paid = exists().where(PurchaseCertificate.certificate_id == Certificate.id)
    used, activated = Certificate.used_at.is_not(None), Certificate.activated_at.is_not(None)
    rows = await session.execute(
        select(Certificate.id, Certificate.partner_id, Certificate.number, used)
        .where(or_(and_(used, not_(activated)), and_(not_(used), paid)))
        .order_by(Certificate.id)
    )
    return [
        Problem(
            "certificate_state",
            partner_id,
            f"certificate {certificate_id} ({number!r}) "
            + ("is used but was never activated" if is_used else "paid for a purchase but is not used"),
        )
        for certificate_id, partner_id, number, is_used in rows
    ]


@_check
async def certificate_used_twice(session: AsyncSession) -> list[Problem]:
    """A certificate pays for one purchase, ever: a deleted purchase leaves it used (SPEC §6)."""
    twice = (
        select(PurchaseCertificate.certificate_id)
        .group_by(PurchaseCertificate.certificate_id)
        .having(func.count() > 1)
    )
    rows = await session.execute(
        select(Certificate.id, Certificate.partner_id, Certificate.number, PurchaseCertificate.purchase_id)
        .join(PurchaseCertificate, PurchaseCertificate.certificate_id == Certificate.id)
        .where(Certificate.id.in_(twice))
        .order_by(Certificate.id, PurchaseCertificate.purchase_id)
    )
    problems = []
    for (certificate_id, partner_id, number), purchases in groupby(rows, key=lambda row: tuple(row[:3])):
        purchase_ids = [row[3] for row in purchases]
        problems.append(
            Problem(
                "certificate_used_twice",
                partner_id,
                f"certificate {certificate_id} ({number!r}) paid for {len(purchase_ids)} purchases"
                f" ({_ids(purchase_ids)})",
            )
        )
    return problems


# -- deliveries and workflow runs ---------------------------------------------------------------


@_check
async def delivery_cause(session: AsyncSession) -> list[Problem]:
    """Every delivery has a cause: a message of its partner and channel, and either a smartsend
    request (no run, no step) or a workflow run of its partner that has passed the step that wrote
    it (the send step and the run's advance commit together)."""
    run_set, step_set = Delivery.workflow_run_id.is_not(None), Delivery.step_index.is_not(None)
    rows = await session.execute(
        select(Delivery.id, Delivery.partner_id, Delivery.channel, Delivery.message_id)
        .add_columns(Delivery.workflow_run_id, Delivery.step_index, Message.partner_id, Message.channel)
        .add_columns(WorkflowRun.id, WorkflowRun.partner_id, WorkflowRun.step_index)
        .outerjoin(Message, Message.id == Delivery.message_id)
        .outerjoin(WorkflowRun, WorkflowRun.id == Delivery.workflow_run_id)
        .where(
            or_(
                Message.id.is_(None),
                Message.partner_id != Delivery.partner_id,
                Message.channel != Delivery.channel,
                and_(run_set, not_(step_set)),
                and_(step_set, not_(run_set)),
                and_(run_set, WorkflowRun.id.is_(None)),
                WorkflowRun.partner_id != Delivery.partner_id,
                WorkflowRun.step_index <= Delivery.step_index,
            )
        )
        .order_by(Delivery.id)
    )
    problems = []
    for delivery_id, partner_id, channel, message_id, run_id, step, *found in rows:
        message_partner, message_channel, run_found, run_partner, run_step = found
        faults = []
        if message_partner is None:
            faults.append(f"its message {message_id} does not exist")
        elif message_partner != partner_id:
            faults.append(f"its message {message_id} is partner {message_partner}'s")
        elif message_channel != channel:
            faults.append(f"it goes by {channel} but message {message_id} is {message_channel}")
        if (run_id is None) != (step is None):
            named = (
                f"workflow run {run_id} but no step" if step is None else f"step {step} but no workflow run"
            )
            faults.append(f"it names {named} (a workflow's delivery names both, smartsend's neither)")
        if run_id is not None and run_found is None:
            faults.append(f"its workflow run {run_id} does not exist")
        elif run_partner is not None and run_partner != partner_id:
            faults.append(f"its workflow run {run_id} is partner {run_partner}'s")
        elif run_step is not None and step is not None and run_step <= step:
            faults.append(
                f"its workflow run {run_id} is at step {run_step}, not past step {step} that sent it"
            )
        problems.append(Problem("delivery_cause", partner_id, f"delivery {delivery_id}: {'; '.join(faults)}"))
    return problems


DELIVERY_STATUSES = ("queued", "sent", "failed")


@_check
async def delivery_status(session: AsyncSession) -> list[Problem]:
    """A delivery is queued, sent or failed, and it has a sent time exactly when it was sent."""
    sent, has_sent_at = Delivery.status == "sent", Delivery.sent_at.is_not(None)
    rows = await session.execute(
        select(Delivery.id, Delivery.partner_id, Delivery.status)
        .where(
            or_(
                Delivery.status.not_in(DELIVERY_STATUSES),
                and_(sent, not_(has_sent_at)),
                and_(not_(sent), has_sent_at),
            )
        )
        .order_by(Delivery.id)
    )
    problems = []
    for delivery_id, partner_id, status in rows:
        if status not in DELIVERY_STATUSES:
            why = f"has the unknown status {status!r}"
        elif status == "sent":
            why = "is sent but has no sent time"
        else:
            why = f"is {status} but has a sent time"
        problems.append(Problem("delivery_status", partner_id, f"delivery {delivery_id} {why}"))
    return problems


@_check
async def delivery_twice(session: AsyncSession) -> list[Problem]:
    """A workflow's send step writes one delivery per run. The unique key includes partner_id, so
    only a delivery of another partner than its run's could repeat one (``delivery_cause`` says so)."""
    twice = (
        select(Delivery.workflow_run_id, Delivery.step_index)
        .where(Delivery.workflow_run_id.is_not(None))
        .group_by(Delivery.workflow_run_id, Delivery.step_index)
        .having(func.count() > 1)
        .subquery()
    )
    rows = await session.execute(
        select(Delivery.workflow_run_id, Delivery.step_index, Delivery.id, WorkflowRun.partner_id)
        .join(
            twice,
            and_(
                twice.c.workflow_run_id == Delivery.workflow_run_id, twice.c.step_index == Delivery.step_index
            ),
        )
        .outerjoin(WorkflowRun, WorkflowRun.id == Delivery.workflow_run_id)
        .order_by(Delivery.workflow_run_id, Delivery.step_index, Delivery.id)
    )
    problems = []
    for (run_id, step, partner_id), deliveries in groupby(rows, key=lambda row: (row[0], row[1], row[3])):
        delivery_ids = [row[2] for row in deliveries]
        problems.append(
            Problem(
                "delivery_twice",
                partner_id,
                f"workflow run {run_id} has {len(delivery_ids)} deliveries for step {step}"
                f" ({_ids(delivery_ids)})",
            )
        )
    return problems


@_check
async def delivery_code(session: AsyncSession) -> list[Problem]:
    """A code a delivery carries (``$!promocodes.issue``) is one of its partner's, out of the free
    pool and held by a customer, and no other delivery carries it too; a code given back was
    given back by a delivery that failed."""
    live = DeliveryCode.returned_at.is_(None)
    carriers = (
        select(DeliveryCode.promocode_id, func.count().label("carriers"))
        .where(live)
        .group_by(DeliveryCode.promocode_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Delivery.id,
            Delivery.partner_id,
            Delivery.status,
            Promocode.id,
            Promocode.number,
            Promocode.partner_id,
            Promocode.state,
            Promocode.customer_id,
            live,
            carriers.c.carriers,
        )
        .join(Delivery, Delivery.id == DeliveryCode.delivery_id)
        .join(Promocode, Promocode.id == DeliveryCode.promocode_id)
        .outerjoin(carriers, carriers.c.promocode_id == DeliveryCode.promocode_id)
        .where(
            or_(
                Promocode.partner_id != Delivery.partner_id,
                and_(live, or_(Promocode.state == AVAILABLE, Promocode.customer_id.is_(None))),
                and_(live, carriers.c.carriers > 1),
                and_(not_(live), Delivery.status != "failed"),
            )
        )
        .order_by(DeliveryCode.id)
    )
    problems = []
    for delivery_id, partner_id, status, code_id, number, code_partner, state, holder, *rest in rows:
        is_live, count = bool(rest[0]), rest[1] or 0
        faults = []
        if code_partner != partner_id:
            faults.append(f"is partner {code_partner}'s")
        if is_live and (state == AVAILABLE or holder is None):
            faults.append("is free again" if state == AVAILABLE else "is held by no customer")
        if is_live and count > 1:
            faults.append(f"is carried by {count} deliveries")
        if not is_live and status != "failed":
            faults.append(f"was given back though the delivery is {status}")
        detail = f"delivery {delivery_id} carries code {code_id} ({number!r}), which {' and '.join(faults)}"
        problems.append(Problem("delivery_code", partner_id, detail))
    return problems


@_check
async def run_workflow(session: AsyncSession) -> list[Problem]:
    """A run's workflow exists and is its partner's: the engine reads it by (partner, id), and would
    end a run whose workflow it cannot find without running a step. (A deleted workflow is still
    there: its runs end at their next step, as the engine intends.)"""
    rows = await session.execute(
        select(WorkflowRun.id, WorkflowRun.partner_id, WorkflowRun.workflow_id, Workflow.partner_id)
        .outerjoin(Workflow, Workflow.id == WorkflowRun.workflow_id)
        .where(or_(Workflow.id.is_(None), Workflow.partner_id != WorkflowRun.partner_id))
        .order_by(WorkflowRun.id)
    )
    return [
        Problem(
            "run_workflow",
            partner_id,
            f"workflow run {run_id} belongs to workflow {workflow_id}, "
            + ("which does not exist" if owner is None else f"which is partner {owner}'s"),
        )
        for run_id, partner_id, workflow_id, owner in rows
    ]


RUN_STATUSES = ("active", "done", "failed")


@_check
async def run_steps(session: AsyncSession) -> list[Problem]:
    """A run walks its workflow's steps one at a time, so while its workflow is as it was when the
    run started, ``step_index`` never passes the number of steps, and a ``done`` run took them
    all. (An active run may sit exactly at the end for a moment: its last step has committed and
    the next transaction marks it done.) Runs of a workflow edited or deleted since they started
    are checked only for a known status and a step index that is not negative."""
    is_sqlite = session.get_bind().dialect.name == "sqlite"
    steps = func.json_array_length(Workflow.steps) if is_sqlite else func.jsonb_array_length(Workflow.steps)
    unchanged = and_(Workflow.deleted_at.is_(None), Workflow.updated_at <= WorkflowRun.created_at)
    rows = await session.execute(
        select(WorkflowRun.id, WorkflowRun.partner_id, WorkflowRun.workflow_id, WorkflowRun.status)
        .add_columns(WorkflowRun.step_index, steps)
        .join(Workflow, Workflow.id == WorkflowRun.workflow_id)
        .where(
            or_(
                WorkflowRun.status.not_in(RUN_STATUSES),
                WorkflowRun.step_index < 0,
                and_(unchanged, WorkflowRun.step_index > steps),
                and_(unchanged, WorkflowRun.status == "done", WorkflowRun.step_index < steps),
            )
        )
        .order_by(WorkflowRun.id)
    )
    problems = []
    for run_id, partner_id, workflow_id, status, step_index, step_count in rows:
        if status not in RUN_STATUSES:
            why = f"has the unknown status {status!r}"
        elif step_index < 0:
            why = f"is at step {step_index}"
        elif step_index > step_count:
            why = f"is {status} at step {step_index}, past the last of its {step_count} steps"
        else:
            why = f"is done at step {step_index} of {step_count}, with steps left to run"
        problems.append(
            Problem("run_steps", partner_id, f"workflow run {run_id} of workflow {workflow_id} {why}")
        )
    return problems
