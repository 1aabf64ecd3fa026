"""Promo-code rules as plain functions: no database, tested on their own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tessera import errors
from tessera.money import parse_amount
from tessera.names import checked_name
from tessera.promocodes.models import CodeState, GroupType

MIN_NUMBER_LENGTH = 1
MAX_NUMBER_LENGTH = 128
MAX_GROUP_NAME_LENGTH = 128

_TYPE_WORDS = {
    "1": GroupType.SIMPLE,
    "simple": GroupType.SIMPLE,
    "2": GroupType.ACTIVATION,
    "activation": GroupType.ACTIVATION,
}


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """SPEC §5: ``total = unused + receipted``; ``reserved = unused``; ``applied ⊆ receipted``."""

    total: int
    unused: int
    reserved: int
    receipted: int
    applied: int

    @classmethod
    def from_states(cls, by_state: Mapping[int, int]) -> GroupCounts:
        unused = by_state.get(CodeState.AVAILABLE, 0)
        issued = by_state.get(CodeState.ISSUED, 0)
        applied = by_state.get(CodeState.APPLIED, 0)
        return cls(
            total=unused + issued + applied,
            unused=unused,
            reserved=unused,
            receipted=issued + applied,
            applied=applied,
        )


def parse_group_type(raw: str | None, default: GroupType = GroupType.SIMPLE) -> GroupType:
    if raw is None:
        return default
    try:
        return _TYPE_WORDS[raw.strip().lower()]
    except KeyError:
        raise errors.InvalidParameter("type", "use 1 (simple) or 2 (activation)") from None


def check_group_name(name: str) -> str:
    return checked_name(name, MAX_GROUP_NAME_LENGTH)


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def check_can_activate(
    *, group_type: int, group_enabled: bool, expires_at: datetime | None, now: datetime
) -> None:
    if group_type != GroupType.ACTIVATION:
        raise errors.NotActivationGroup()
    if not group_enabled:
        raise errors.PromocodeGroupDisabled()
    if is_expired(expires_at, now):
        raise errors.PromocodeExpired()


def check_can_issue(*, group_enabled: bool) -> None:
    """Any group may issue its free codes, while it is enabled."""
    if not group_enabled:
        raise errors.PromocodeGroupDisabled()


def is_used_up(*, single_use: bool, state: int) -> bool:
    """A single-use code applied to a purchase is used up; a multi-use code never is."""
    return single_use and state == CodeState.APPLIED


def can_be_applied(
    *, group_enabled: bool, single_use: bool, state: int, expires_at: datetime | None, now: datetime
) -> bool:
    """Whether a purchase could use the code now (``purchases.pricing.judge_code`` says why not)."""
    if not group_enabled or is_expired(expires_at, now):
        return False
    return not is_used_up(single_use=single_use, state=state)


DISCOUNT_TYPES = ("percent", "fixed")


@dataclass(frozen=True, slots=True)
class DiscountSettings:
    """A group's promo action as set with ``groups/edit`` (SPEC §7)."""

    discount_type: str
    value: Decimal
    skus: tuple[str, ...] | None
    min_cart_total: Decimal | None


def parse_discount(
    discount_type: str, value: str | None, skus: Any, min_cart_total: str | None
) -> DiscountSettings | None:
    """None means ``discount_type=none``: remove the group's action."""
    kind = discount_type.strip().lower()
    if kind == "none":
        return None
    if kind not in DISCOUNT_TYPES:
        raise errors.InvalidParameter("discount_type", "use percent, fixed or none")
    if value is None:
        raise errors.MissingField("discount_value")
    amount = parse_amount(value, "discount_value")
    if amount <= 0 or (kind == "percent" and amount > 100):
        raise errors.InvalidParameter(
            "discount_value", "a percent is above 0 and at most 100; a fixed amount above 0"
        )
    parsed_skus: tuple[str, ...] | None = None
    if skus is not None:
        if not isinstance(skus, list) or not skus or not all(isinstance(s, str | int) for s in skus):
            raise errors.InvalidParameter("skus", 'a JSON array of SKUs, e.g. ["A1","B2"]')
        parsed_skus = tuple(dict.fromkeys(str(s).strip() for s in skus))
    minimum = parse_amount(min_cart_total, "min_cart_total") if min_cart_total is not None else None
    return DiscountSettings(kind, amount, parsed_skus, minimum)


#: The threshold columns are 32-bit integers.
MAX_THRESHOLD = 2**31 - 1
LOW_STOCK_LEVELS = {1: "WARNING", 2: "ALARM"}


def low_stock_level(available: int, warning: int | None, alarm: int | None) -> tuple[int, int | None]:
    """The alert level stock is at (0 none, 1 warning, 2 alarm) and the threshold it crossed."""
    if alarm is not None and available <= alarm:
        return 2, alarm
    if warning is not None and available <= warning:
        return 1, warning
    return 0, None


def parse_threshold(raw: str | None, field: str) -> int | None:
    """A low-stock threshold: a non-negative integer, or empty / ``none`` to remove it."""
    if raw is None or raw.strip().lower() in ("", "none", "null"):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.InvalidParameter(field, "not an integer") from None
    if value < 0:
        raise errors.InvalidParameter(field, "must not be negative")
    if value > MAX_THRESHOLD:
        raise errors.InvalidParameter(field, f"at most {MAX_THRESHOLD}")
    return value
