"""Gift-certificate rules as plain functions (SPEC §6): no database, tested on their own."""

from __future__ import annotations

import enum
from decimal import Decimal

from tessera import errors
from tessera.money import parse_amount

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


def check_allowed(
    transition: Transition, *, same_department: bool, activated: bool, used: bool, deleted: bool
) -> None:
    """Refuses a transition the certificate's state does not allow, before anything is written
    (a purchase checks its certificates first). The guarded UPDATE in ``certificates.repository``
    still decides a race: this state may be stale by the time it runs."""
    allowed = same_department and not deleted and not used and (activated is (transition is Transition.USE))
    if not allowed:
        raise refusal(
            transition, same_department=same_department, activated=activated, used=used, deleted=deleted
        )


def parse_value(raw: str) -> Decimal:
    """A group's value: a positive amount with at most two decimals."""
    return parse_amount(raw, "value", positive=True)


def format_value(value: Decimal) -> str:
    """The seed sends ``"value": "50"``: a string, without a needless fraction."""
    normalized = value.quantize(Decimal("0.01"))
    if normalized == normalized.to_integral_value():
        return str(normalized.to_integral_value())
    return format(normalized.normalize(), "f")
