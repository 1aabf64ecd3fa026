"""Promo-code groups, look-ups, activation, issue and uploads (SPEC §5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import BinaryIO

from sqlalchemy.ext.asyncio import AsyncSession

from tessera import errors
from tessera.clock import utcnow
from tessera.customers import service as customers
from tessera.customers.identifiers import CustomerRef
from tessera.imports.bulk import Progress, import_numbers
from tessera.imports.parsers import FileFormat
from tessera.promocodes import repository, rules
from tessera.promocodes.models import CodeRow, CodeState, GroupRow, GroupType, Promocode, PromocodeGroup
from tessera.promocodes.rules import GroupCounts
from tessera.sql import Conn, on_session
from tessera.tenancy.service import Caller
from tessera.triggers import service as triggers

APPLIED_TAG = "Applied promo code {group}"


async def group_row_named(conn: Conn, partner_id: int, name: str) -> GroupRow:
    """The group's row; an unknown name is ``PromocodeGroupNotFound``."""
    group = await repository.group_row_by_name(conn, partner_id, name)
    if group is None:
        raise errors.PromocodeGroupNotFound()
    return group


async def list_groups(session: AsyncSession, partner_id: int) -> list[tuple[PromocodeGroup, GroupCounts]]:
    groups = await repository.list_groups(session, partner_id)
    by_state = await repository.state_counts(session, partner_id, [g.id for g in groups])
    return [(group, GroupCounts.from_states(by_state[group.id])) for group in groups]


async def counts_of(session: AsyncSession, group: PromocodeGroup) -> GroupCounts:
    by_state = await repository.state_counts(session, group.partner_id, [group.id])
    return GroupCounts.from_states(by_state[group.id])


async def find(conn: Conn, partner_id: int, number: str) -> list[tuple[CodeRow, GroupRow]]:
    found = await repository.find_by_number(conn, partner_id, number)
    if not found:
        raise errors.PromocodeNotFound()
    return found


async def activate(conn: Conn, caller: Caller, ref: CustomerRef, group_name: str, number: str) -> int:
    """Binds an activation code to a customer and tags them; returns the code's state.

    Single-use codes activate once, ever: the guarded UPDATE in ``activate_single_use`` has one
    winner. Multi-use codes activate once per customer: the activation row's unique key decides.
    Runs in ``Database.write_one``: a single-use activation is one statement once its tag is
    known; every other write here commits together in ``conn.atomic()``.
    """
    now = utcnow()
    found = await repository.group_code_and_customer(
        conn, caller.partner_id, group_name, number, ref.kind.value, ref.value
    )
    if found is None:
        raise errors.PromocodeGroupNotFound()
    group, code, customer_id = found
    if code is None:
        raise errors.PromocodeNotFound()
    if customer_id is None:
        raise errors.CustomerNotFound()
    rules.check_can_activate(
        group_type=group.group_type, group_enabled=group.enabled, expires_at=code.expires_at, now=now
    )
    tag = APPLIED_TAG.format(group=group.name)
    if group.apply_items_once:
        async with customers.tagging(conn, caller.partner_id, tag, now) as tag_id:
            state = await repository.activate_single_use(
                conn, caller.partner_id, code.id, customer_id, caller.department_id, now, (tag_id, tag)
            )
            if state is None:
                raise errors.PromocodeAlreadyActivated()
    else:
        async with conn.atomic():
            if not await repository.record_activation(
                conn, caller.partner_id, code.id, customer_id, caller.department_id, now
            ):
                raise errors.PromocodeAlreadyActivated()
            state = await repository.mark_issued(conn, code.id, now)
            await customers.add_tags(conn, caller.partner_id, customer_id, [tag], now)
    await check_low_stock(conn, group)
    return state


async def issue(conn: Conn, partner_id: int, ref: CustomerRef, group_name: str) -> tuple[CodeRow, GroupRow]:
    """Hands the customer the group's next free code; see ``repository.claim_next_available``.

    The group and the customer are read together: with the claim, an issue is two statements.
    """
    found = await repository.group_with_customer(conn, partner_id, group_name, ref.kind.value, ref.value)
    if found is None:
        # An unknown customer is -4000 whatever the group, as on every call that names one.
        await customers.get_id(conn, partner_id, ref)
        raise errors.PromocodeGroupNotFound()
    group, customer_id = found
    if customer_id is None:
        raise errors.CustomerNotFound()
    return await issue_from(conn, group, customer_id)


async def issue_to_customer(
    conn: Conn, partner_id: int, customer_id: int, group_name: str
) -> tuple[CodeRow, GroupRow]:
    return await issue_from(conn, await group_row_named(conn, partner_id, group_name), customer_id)


async def issue_from(conn: Conn, group: GroupRow, customer_id: int) -> tuple[CodeRow, GroupRow]:
    """The group's next free code, issued to the customer: what every issue comes down to."""
    rules.check_can_issue(group_enabled=group.enabled)
    code = await repository.claim_next_available(conn, group.partner_id, group.id, customer_id, utcnow())
    if code is None:
        raise errors.NoFreePromocodes()
    await check_low_stock(conn, group)
    return code, group


async def claim_many_from(conn: Conn, group: GroupRow, customer_ids: Sequence[int]) -> list[CodeRow | None]:
    """``issue_from`` for each of these customers, in one statement (a batch of messages): the
    codes in the customers' order, None for those the group ran short of. The low-stock check is
    the caller's, once per batch (``check_low_stock``)."""
    rules.check_can_issue(group_enabled=group.enabled)
    return await repository.claim_many_available(conn, group.partner_id, group.id, customer_ids, utcnow())


async def free_codes_up_to(conn: Conn, group: GroupRow, limit: int) -> int:
    """How many codes the group can still issue, counted no further than ``limit``."""
    return await repository.count_available_up_to(conn, group.id, limit)


async def return_unsent(conn: Conn, code_ids: Sequence[int]) -> list[int]:
    """Codes a message carried that never reached anyone go back to the pool (``CodeState``)."""
    return await repository.return_unsent(conn, code_ids)


async def next_to_issue(conn: Conn, partner_id: int, group_name: str) -> str:
    """The number an issue from the group would hand out next, claiming nothing (the admin's
    message preview shows it); refused as an issue would be: no such group, a disabled group, no
    free code."""
    found = await repository.group_with_next_available(conn, partner_id, group_name, utcnow())
    if found is None:
        raise errors.PromocodeGroupNotFound()
    group, number = found
    rules.check_can_issue(group_enabled=group.enabled)
    if number is None:
        raise errors.NoFreePromocodes()
    return number


LOW_STOCK_EVENT = "promocodes_low_stock"


async def check_low_stock(conn: Conn, group: GroupRow) -> None:
    """Fires ``promocodes_low_stock`` once when free codes fall to a threshold (warning, then alarm).

    Counting is bounded by the threshold, and the group row is written only on a crossing, so
    this adds no hot row to issuing.
    """
    thresholds = [t for t in (group.low_stock_warning, group.low_stock_alarm) if t is not None]
    if not thresholds:
        return
    available = await repository.count_available_up_to(conn, group.id, max(thresholds) + 1)
    level, threshold = rules.low_stock_level(available, group.low_stock_warning, group.low_stock_alarm)
    if level <= group.low_stock_level:
        return
    # The level and the event commit together, so a crossing is either recorded or seen again.
    async with conn.atomic():
        if not await repository.raise_low_stock_level(conn, group.id, level):
            return
        await triggers.record_event(
            conn,
            group.partner_id,
            LOW_STOCK_EVENT,
            f"promocode-group-{group.id}",
            {
                "group": group.name,
                "groupId": group.id,
                "level": rules.LOW_STOCK_LEVELS[level],
                "threshold": threshold,
                "actualCount": available,
            },
        )


async def list_for_customer(
    session: AsyncSession, partner_id: int, ref: CustomerRef
) -> tuple[int, Sequence[tuple[Promocode, PromocodeGroup]]]:
    customer_id = await customers.get_id(await on_session(session), partner_id, ref)
    return customer_id, await repository.codes_of_customer(session, partner_id, customer_id)


async def import_codes(
    session: AsyncSession,
    partner_id: int,
    *,
    name: str,
    stream: BinaryIO,
    fmt: FileFormat,
    group_type: GroupType | None = None,
    apply_items_once: bool | None = None,
    expires_at: datetime | None = None,
    on_progress: Progress | None = None,
) -> tuple[PromocodeGroup, int]:
    """Creates the group (or appends to it) and imports the file, all or nothing."""
    name = rules.check_group_name(name)
    group = await repository.group_in_session_by_name(session, partner_id, name)
    if group is None:
        group = await repository.add_group(
            session,
            partner_id,
            name,
            group_type or GroupType.SIMPLE,
            True if apply_items_once is None else apply_items_once,
        )
    elif group_type is not None and group_type != group.group_type:
        raise errors.InvalidParameter("type", f"group {name!r} already exists with type {group.group_type}")
    elif apply_items_once is not None and apply_items_once != group.apply_items_once:
        raise errors.InvalidParameter(
            "apply_items_once", f"group {name!r} already has {group.apply_items_once}"
        )
    group_id = group.id

    async def existing(session: AsyncSession, numbers: Sequence[str]) -> Sequence[str]:
        return await repository.existing_numbers(session, partner_id, group_id, numbers)

    fixed: dict[str, object] = {
        "partner_id": partner_id,
        "group_id": group_id,
        "state": int(CodeState.AVAILABLE),
        "applied_times": 0,
    }
    if expires_at is not None:
        fixed["expires_at"] = expires_at
    count = await import_numbers(
        session,
        stream,
        fmt,
        table="promocodes",
        fixed=fixed,
        min_length=rules.MIN_NUMBER_LENGTH,
        max_length=rules.MAX_NUMBER_LENGTH,
        existing_numbers=existing,
        on_progress=on_progress,
    )
    # New stock: the next crossing of a threshold fires again.
    group.low_stock_level = 0
    group.updated_at = utcnow()
    await session.flush()
    return group, count


#: Passed as ``discount`` to leave the group's promo action as it is.
UNCHANGED = object()


async def edit_group(
    session: AsyncSession,
    partner_id: int,
    group_id: int,
    *,
    enabled: bool | None,
    name: str | None,
    discount: rules.DiscountSettings | object | None = UNCHANGED,
    low_stock: dict[str, int | None] | None = None,
) -> PromocodeGroup:
    group = await repository.get_group(session, partner_id, group_id)
    if group is None:
        raise errors.PromocodeGroupNotFound()
    if name is not None:
        name = rules.check_group_name(name)
        other = await repository.group_in_session_by_name(session, partner_id, name)
        if other is not None and other.id != group.id:
            raise errors.PromocodeGroupNameTaken()
        group.name = name
    if enabled is not None:
        group.enabled = enabled
    if low_stock:
        group.low_stock_warning = low_stock.get("low_stock_warning", group.low_stock_warning)
        group.low_stock_alarm = low_stock.get("low_stock_alarm", group.low_stock_alarm)
        group.low_stock_level = 0
    if discount is not UNCHANGED:
        settings = discount if isinstance(discount, rules.DiscountSettings) else None
        group.discount_type = settings.discount_type if settings else None
        group.discount_value = settings.value if settings else None
        group.discount_skus = list(settings.skus) if settings and settings.skus is not None else None
        group.min_cart_total = settings.min_cart_total if settings else None
    group.updated_at = utcnow()
    await session.flush()
    return group
