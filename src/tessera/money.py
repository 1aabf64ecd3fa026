"""Money amounts: how every face reads a price, a discount or a certificate's value."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tessera import errors

#: The largest amount the NUMERIC(14, 2) columns hold.
MAX_AMOUNT = Decimal("999999999999.99")
CENT = Decimal("0.01")


def parse_amount(value: Any, field: str, *, positive: bool = False, round_to_cents: bool = False) -> Decimal:
    """An amount from a parameter, a form field or a JSON number: ``12``, ``12.5``, ``"12,50"``.

    It is finite, at most ``MAX_AMOUNT``, and not negative (above zero when ``positive``). An
    amount someone sets (a discount, a certificate's value) has at most two decimals, else it is
    refused; a price in a cart is rounded half up to the cent, as tills compute them
    (``round_to_cents``).
    """
    try:
        amount = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise errors.InvalidParameter(field, "not a number") from None
    low_enough = amount.is_finite() and amount <= MAX_AMOUNT
    if not low_enough or amount < 0 or (positive and amount == 0):
        kind = "positive" if positive else "non-negative"
        raise errors.InvalidParameter(field, f"must be a {kind} amount up to {MAX_AMOUNT}")
    if round_to_cents:
        return amount.quantize(CENT, ROUND_HALF_UP)
    if amount != amount.quantize(CENT):
        raise errors.InvalidParameter(field, "at most two decimal places")
    return amount
