"""Promo-code rules as plain functions: no database, tested on their own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from tessera import errors
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
    name = name.strip()
    if not name or len(name) > MAX_GROUP_NAME_LENGTH:
        raise errors.InvalidParameter("name", f"must be 1 to {MAX_GROUP_NAME_LENGTH} characters")
    return name


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


def can_be_applied(
    *, group_enabled: bool, apply_items_once: bool, state: int, expires_at: datetime | None, now: datetime
) -> bool:
    """Whether a purchase could use the code now: a used single-use code cannot."""
    if not group_enabled or is_expired(expires_at, now):
        return False
    return not (apply_items_once and state == CodeState.APPLIED)
