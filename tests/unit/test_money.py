"""Amounts, read one way everywhere (money.py): prices, discounts, certificate values."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tessera import errors
from tessera.money import MAX_AMOUNT, parse_amount


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", D("12")),
        (12, D("12")),
        ("12.5", D("12.5")),
        (" 12,50 ", D("12.50")),
        ("0", D("0")),
        (0.25, D("0.25")),
    ],
)
def test_an_amount_is_a_number_with_a_dot_or_a_comma(raw: object, expected: D) -> None:
    assert parse_amount(raw, "x") == expected


def test_a_price_is_rounded_half_up_to_the_cent() -> None:
    assert parse_amount("0.005", "x", round_to_cents=True) == D("0.01")
    assert parse_amount("0.004", "x", round_to_cents=True) == D("0.00")
    assert parse_amount(12, "x", round_to_cents=True) == D("12.00")


def test_an_amount_someone_sets_refuses_a_third_decimal() -> None:
    with pytest.raises(errors.InvalidParameter, match="at most two decimal places"):
        parse_amount("0.005", "discount_value")


@pytest.mark.parametrize("raw", ["ten", "", "1.2.3", "[]"])
def test_what_is_not_a_number_is_refused(raw: str) -> None:
    with pytest.raises(errors.InvalidParameter, match="not a number"):
        parse_amount(raw, "x")


@pytest.mark.parametrize(
    "raw", ["-0.01", "NaN", "Infinity", "-Infinity", "1e300", str(MAX_AMOUNT + D("0.01"))]
)
def test_negative_infinite_and_too_large_amounts_are_refused(raw: str) -> None:
    with pytest.raises(errors.InvalidParameter, match="must be a non-negative amount up to"):
        parse_amount(raw, "x", round_to_cents=True)


def test_the_largest_amount_is_taken() -> None:
    assert parse_amount(str(MAX_AMOUNT), "x") == MAX_AMOUNT


def test_a_positive_amount_refuses_zero() -> None:
    with pytest.raises(errors.InvalidParameter, match="must be a positive amount up to"):
        parse_amount("0", "value", positive=True)
    assert parse_amount("0.01", "value", positive=True) == D("0.01")
