"""Gift-certificate rules (SPEC §6): why a transition is refused, and how values are read and written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera import errors
from tessera.certificates.rules import Transition, check_allowed, format_value, parse_value, refusal
from tessera.money import MAX_AMOUNT as MAX_VALUE

# --- refusal: every transition from every state ------------------------------------------------------

ACTIVATE, USE = Transition.ACTIVATE, Transition.USE

#: The states a certificate can really be in: (activated, used, deleted).
CREATED = (False, False, False)
ACTIVATED = (True, False, False)
USED = (True, True, False)
CREATED_DELETED = (False, False, True)
ACTIVATED_DELETED = (True, False, True)
USED_DELETED = (True, True, True)

REFUSALS: list[tuple[Transition, tuple[bool, bool, bool], type[errors.TesseraError]]] = [
    # activate: only a created certificate moves; the guarded UPDATE refuses every other state.
    (ACTIVATE, ACTIVATED, errors.CertificateAlreadyActivated),
    (ACTIVATE, USED, errors.CertificateAlreadyUsed),
    (ACTIVATE, CREATED_DELETED, errors.CertificateDeleted),
    (ACTIVATE, ACTIVATED_DELETED, errors.CertificateDeleted),
    (ACTIVATE, USED_DELETED, errors.CertificateDeleted),
    # Cannot be seen after a refused activate (states only move forward); if it ever were, the
    # answer is "already activated", never a success.
    (ACTIVATE, CREATED, errors.CertificateAlreadyActivated),
    # use: only an activated certificate moves.
    (USE, CREATED, errors.CertificateNotActivated),
    (USE, USED, errors.CertificateAlreadyUsed),
    (USE, CREATED_DELETED, errors.CertificateDeleted),
    (USE, ACTIVATED_DELETED, errors.CertificateDeleted),
    (USE, USED_DELETED, errors.CertificateDeleted),
    # An activated certificate re-read after a refused use: someone else just used it.
    (USE, ACTIVATED, errors.CertificateAlreadyUsed),
]


def state_name(state: tuple[bool, bool, bool]) -> str:
    flags = [name for name, on in zip(("activated", "used", "deleted"), state, strict=True) if on]
    return "+".join(flags) or "created"


@pytest.mark.parametrize(
    ("transition", "state", "expected"),
    REFUSALS,
    ids=[f"{transition.value}-{state_name(state)}" for transition, state, _ in REFUSALS],
)
def test_refusal_in_the_certificates_own_department(
    transition: Transition, state: tuple[bool, bool, bool], expected: type[errors.TesseraError]
) -> None:
    activated, used, deleted = state
    error = refusal(transition, same_department=True, activated=activated, used=used, deleted=deleted)
    assert type(error) is expected


def test_every_real_state_and_transition_is_in_the_table() -> None:
    states = {CREATED, ACTIVATED, USED, CREATED_DELETED, ACTIVATED_DELETED, USED_DELETED}
    assert {(t, s) for t, s, _ in REFUSALS} == {(t, s) for t in Transition for s in states}


@given(
    transition=st.sampled_from(Transition),
    activated=st.booleans(),
    used=st.booleans(),
    deleted=st.booleans(),
)
def test_another_department_learns_nothing_about_the_state(
    transition: Transition, activated: bool, used: bool, deleted: bool
) -> None:
    error = refusal(transition, same_department=False, activated=activated, used=used, deleted=deleted)
    assert type(error) is errors.CertificateOfAnotherDepartment
    assert error.body() == {
        "status": "error",
        "status_code": -4204,
        "message": "Certificate belongs to another department",
    }


@given(transition=st.sampled_from(Transition), activated=st.booleans(), used=st.booleans())
def test_deleted_is_final_whatever_else_happened(transition: Transition, activated: bool, used: bool) -> None:
    error = refusal(transition, same_department=True, activated=activated, used=used, deleted=True)
    assert (error.status_code, error.text) == (-4208, "Certificate is deleted")


@given(transition=st.sampled_from(Transition), activated=st.booleans())
def test_a_used_certificate_is_refused_as_used(transition: Transition, activated: bool) -> None:
    error = refusal(transition, same_department=True, activated=activated, used=True, deleted=False)
    assert (error.status_code, error.text) == (-4207, "Certificate already used")


ALLOWED = {(ACTIVATE, CREATED), (USE, ACTIVATED)}
ALL_STATES = [CREATED, ACTIVATED, USED, CREATED_DELETED, ACTIVATED_DELETED, USED_DELETED]


@pytest.mark.parametrize("transition", list(Transition))
@pytest.mark.parametrize("state", ALL_STATES, ids=state_name)
def test_check_allowed_lets_only_the_two_forward_moves_through(
    transition: Transition, state: tuple[bool, bool, bool]
) -> None:
    activated, used, deleted = state
    flags = {"activated": activated, "used": used, "deleted": deleted}
    if (transition, state) in ALLOWED:
        check_allowed(transition, same_department=True, **flags)
        with pytest.raises(errors.CertificateOfAnotherDepartment):
            check_allowed(transition, same_department=False, **flags)
    else:
        with pytest.raises(errors.TesseraError) as refused:
            check_allowed(transition, same_department=True, **flags)
        assert type(refused.value) is type(refusal(transition, same_department=True, **flags))


def test_refusal_messages_are_the_error_table_s() -> None:
    def body(transition: Transition, **state: bool) -> tuple[int, str]:
        error = refusal(transition, **{"same_department": True, **state})
        return error.status_code, error.text

    not_activated = body(USE, activated=False, used=False, deleted=False)
    assert not_activated == (-4205, "Certificate is not activated")
    already_activated = body(ACTIVATE, activated=True, used=False, deleted=False)
    assert already_activated == (-4206, "Certificate already activated")


# --- values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "shown"),
    [
        ("50", Decimal("50"), "50"),
        ("50.5", Decimal("50.5"), "50.5"),
        ("50.50", Decimal("50.50"), "50.5"),
        ("50.00", Decimal("50"), "50"),
        ("50,5", Decimal("50.5"), "50.5"),  # a decimal comma, as spreadsheets in many locales write it
        (" 7 ", Decimal("7"), "7"),
        ("0.01", Decimal("0.01"), "0.01"),
        ("100", Decimal("100"), "100"),
        ("1E+2", Decimal("100"), "100"),
        ("1234567.89", Decimal("1234567.89"), "1234567.89"),
        (str(MAX_VALUE), MAX_VALUE, "999999999999.99"),
    ],
)
def test_parse_and_format_value(raw: str, value: Decimal, shown: str) -> None:
    parsed = parse_value(raw)
    assert parsed == value
    assert format_value(parsed) == shown


@pytest.mark.parametrize(
    "raw",
    ["0", "0.00", "-1", "-0.01", "abc", "", "  ", "1.234", "0.001", "NaN", "Infinity", "-Infinity", "1e400"],
)
def test_parse_value_refuses(raw: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        parse_value(raw)
    assert caught.value.field == "value"
    assert caught.value.status_code == -1000


def test_parse_value_refuses_more_than_the_maximum() -> None:
    with pytest.raises(errors.InvalidParameter):
        parse_value(str(MAX_VALUE + Decimal("0.01")))


AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=MAX_VALUE, places=2, allow_nan=False)


@given(AMOUNTS)
def test_format_value_round_trips_through_parse_value(amount: Decimal) -> None:
    shown = format_value(amount)
    assert parse_value(shown) == amount
    # A plain decimal string: no exponent, no needless zeros, no needless point.
    assert "E" not in shown.upper()
    if "." in shown:
        assert not shown.endswith("0")
        assert len(shown.split(".")[1]) <= 2
