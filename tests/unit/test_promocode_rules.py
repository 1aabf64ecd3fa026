"""Promo-code rules (SPEC §5) as plain functions: counts, group types, activation, applicability."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera import errors
from tessera.promocodes.models import CodeState, GroupType
from tessera.promocodes.rules import (
    MAX_GROUP_NAME_LENGTH,
    GroupCounts,
    can_be_applied,
    check_can_activate,
    check_group_name,
    is_expired,
    parse_group_type,
)

NOW = datetime(2026, 6, 1, 12, 0, 0)
PAST = NOW - timedelta(seconds=1)
FUTURE = NOW + timedelta(days=1)

# --- counts ------------------------------------------------------------------------------------------


def test_counts_match_the_seeds_example() -> None:
    # The seed's group: 100 codes, 62 still free, 38 handed out (of which 5 used in purchases).
    counts = GroupCounts.from_states({1: 62, 2: 33, 3: 5})
    assert counts == GroupCounts(total=100, unused=62, reserved=62, receipted=38, applied=5)


def test_counts_of_an_empty_group_are_zero() -> None:
    assert GroupCounts.from_states({}) == GroupCounts(total=0, unused=0, reserved=0, receipted=0, applied=0)


def test_counts_accept_enum_and_plain_int_keys_alike() -> None:
    plain = GroupCounts.from_states({1: 3, 2: 2, 3: 1})
    typed = GroupCounts.from_states({CodeState.AVAILABLE: 3, CodeState.ISSUED: 2, CodeState.APPLIED: 1})
    assert plain == typed


@given(
    st.dictionaries(
        keys=st.sampled_from([int(state) for state in CodeState]),
        values=st.integers(min_value=0, max_value=10**12),
    )
)
def test_counts_invariants_hold_for_any_state_counts(by_state: dict[int, int]) -> None:
    counts = GroupCounts.from_states(by_state)
    assert counts.total == counts.unused + counts.receipted
    assert counts.reserved == counts.unused
    assert 0 <= counts.applied <= counts.receipted
    assert counts.total == sum(by_state.values())
    assert counts.unused == by_state.get(1, 0)
    assert counts.applied == by_state.get(3, 0)


# --- group types and names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", GroupType.SIMPLE),
        ("simple", GroupType.SIMPLE),
        (" Simple ", GroupType.SIMPLE),
        ("2", GroupType.ACTIVATION),
        ("activation", GroupType.ACTIVATION),
        ("ACTIVATION", GroupType.ACTIVATION),
    ],
)
def test_parse_group_type(raw: str, expected: GroupType) -> None:
    assert parse_group_type(raw) is expected


def test_parse_group_type_without_a_value_gives_the_default() -> None:
    assert parse_group_type(None) is GroupType.SIMPLE
    assert parse_group_type(None, default=GroupType.ACTIVATION) is GroupType.ACTIVATION


@pytest.mark.parametrize("raw", ["", "0", "3", "12", "simpl", "activated", "-1"])
def test_parse_group_type_refuses_anything_else(raw: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        parse_group_type(raw)
    assert caught.value.field == "type"
    assert caught.value.status_code == -1000


def test_check_group_name() -> None:
    assert check_group_name("  Summer  ") == "Summer"
    assert check_group_name("x" * MAX_GROUP_NAME_LENGTH) == "x" * MAX_GROUP_NAME_LENGTH
    for bad in ("", "   ", "x" * (MAX_GROUP_NAME_LENGTH + 1)):
        with pytest.raises(errors.InvalidParameter):
            check_group_name(bad)


# --- expiry and activation ---------------------------------------------------------------------------


def test_is_expired_at_and_after_the_expiry_moment() -> None:
    assert not is_expired(None, NOW)
    assert not is_expired(FUTURE, NOW)
    assert is_expired(NOW, NOW)
    assert is_expired(PAST, NOW)


def expected_activation_error(
    group_type: GroupType, enabled: bool, expired: bool
) -> type[errors.TesseraError] | None:
    """The first rule broken, in the order the API reports them: type, then enabled, then expiry."""
    if group_type is not GroupType.ACTIVATION:
        return errors.NotActivationGroup
    if not enabled:
        return errors.PromocodeGroupDisabled
    if expired:
        return errors.PromocodeExpired
    return None


@pytest.mark.parametrize(
    ("group_type", "enabled", "expired"),
    list(itertools.product(GroupType, [True, False], [True, False])),
)
def test_check_can_activate_reports_the_first_broken_rule(
    group_type: GroupType, enabled: bool, expired: bool
) -> None:
    expected = expected_activation_error(group_type, enabled, expired)
    expires_at = PAST if expired else FUTURE
    if expected is None:
        check_can_activate(group_type=group_type, group_enabled=enabled, expires_at=expires_at, now=NOW)
    else:
        with pytest.raises(expected):
            check_can_activate(group_type=group_type, group_enabled=enabled, expires_at=expires_at, now=NOW)


@pytest.mark.parametrize(
    ("group_type", "enabled", "expires_at", "status_code"),
    [
        (1, False, PAST, -4102),
        (2, False, PAST, -4103),
        (2, True, NOW, -4106),
    ],
)
def test_activation_errors_carry_their_status_codes(
    group_type: int, enabled: bool, expires_at: datetime, status_code: int
) -> None:
    with pytest.raises(errors.TesseraError) as caught:
        check_can_activate(group_type=group_type, group_enabled=enabled, expires_at=expires_at, now=NOW)
    assert caught.value.status_code == status_code


def test_a_code_without_expiry_in_an_enabled_activation_group_can_be_activated() -> None:
    check_can_activate(group_type=2, group_enabled=True, expires_at=None, now=NOW)


# --- can_be_applied ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enabled", "single_use", "state", "expires_at", "expected"),
    [
        (True, True, CodeState.AVAILABLE, None, True),
        (True, True, CodeState.ISSUED, None, True),
        (True, True, CodeState.APPLIED, None, False),  # a used single-use code
        (True, False, CodeState.APPLIED, None, True),  # multi-use: used codes stay usable
        (True, False, CodeState.ISSUED, FUTURE, True),
        (True, True, CodeState.ISSUED, PAST, False),  # expired
        (True, False, CodeState.ISSUED, NOW, False),  # expires this very moment
        (False, False, CodeState.ISSUED, None, False),  # disabled group
        (False, True, CodeState.AVAILABLE, FUTURE, False),
    ],
)
def test_can_be_applied(
    enabled: bool, single_use: bool, state: CodeState, expires_at: datetime | None, expected: bool
) -> None:
    assert (
        can_be_applied(
            group_enabled=enabled, single_use=single_use, state=state, expires_at=expires_at, now=NOW
        )
        is expected
    )


@given(
    enabled=st.booleans(),
    single_use=st.booleans(),
    state=st.sampled_from(list(CodeState)),
    expires_in=st.one_of(st.none(), st.integers(min_value=-(10**6), max_value=10**6)),
)
def test_can_be_applied_is_false_whenever_a_rule_forbids_it(
    enabled: bool, single_use: bool, state: CodeState, expires_in: int | None
) -> None:
    expires_at = None if expires_in is None else NOW + timedelta(seconds=expires_in)
    result = can_be_applied(
        group_enabled=enabled, single_use=single_use, state=state, expires_at=expires_at, now=NOW
    )
    forbidden = (
        not enabled
        or (expires_in is not None and expires_in <= 0)
        or (single_use and state is CodeState.APPLIED)
    )
    assert result is not forbidden
