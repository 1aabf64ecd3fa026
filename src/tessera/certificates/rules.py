"""Gift-certificate rules as plain functions (SPEC §6): no database, tested on their own."""

from __future__ import annotations

import enum
from decimal import Decimal, InvalidOperation

from tessera import errors
from tessera.money import MAX_AMOUNT

MIN_NUMBER_LENGTH = 2
MAX_NUMBER_LENGTH = 255


class Transition(enum.Enum):
    ACTIVATE = "activate"
    USE = "use"


def refusal(
    transition: Transition, *, same_department: bool, activated: bool, used: bool, deleted: bool
) -> errors.TesseraError:
    """Why a guarded transition found no row to change, from the certificate's current state.

    The department comes first, so another department learns nothing about the state.
    """
    if not same_department:
        return errors.CertificateOfAnotherDepartment()
    if deleted:
        return errors.CertificateDeleted()
    if used:
        return errors.CertificateAlreadyUsed()
    if transition is Transition.ACTIVATE:
        return errors.CertificateAlreadyActivated()
    if not activated:
        return errors.CertificateNotActivated()
    # The row changed between the UPDATE and this re-read: someone else just won the race.
    return errors.CertificateAlreadyUsed()


def parse_value(raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip().replace(",", "."))
    except InvalidOperation:
        raise errors.InvalidParameter("value", "not a number") from None
    if not value.is_finite() or value <= 0 or value > MAX_AMOUNT:
        raise errors.InvalidParameter("value", "must be a positive amount")
    if value != value.quantize(Decimal("0.01")):
        raise errors.InvalidParameter("value", "at most two decimal places")
    return value


def format_value(value: Decimal) -> str:
    """The seed sends ``"value": "50"``: a string, without a needless fraction."""
    normalized = value.quantize(Decimal("0.01"))
    if normalized == normalized.to_integral_value():
        return str(normalized.to_integral_value())
    return format(normalized.normalize(), "f")
