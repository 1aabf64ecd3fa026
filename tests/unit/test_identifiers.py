"""Customer identifiers (SPEC §3, §4): phones, emails, origin_user_id and which one a request names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera import errors
from tessera.customers.identifiers import (
    MAX_EMAIL_LENGTH,
    MAX_ORIGIN_USER_ID_LENGTH,
    CustomerRef,
    IdentifierKind,
    customer_ref,
    normalize_email,
    normalize_origin_user_id,
    normalize_phone,
)

# --- phones ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("79001234567", "79001234567"),
        ("+79001234567", "79001234567"),
        ("+7 (900) 123-45-67", "79001234567"),
        ("  +7 900 123 45 67  ", "79001234567"),
        ("7-900-123-45-67", "79001234567"),
        ("380 (44) 123 45 67", "380441234567"),
        ("0123456789", "0123456789"),  # 10 digits: the shortest accepted
        ("123456789012345", "123456789012345"),  # 15 digits: the longest accepted
    ],
)
def test_phone_is_normalised_to_international_digits(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "+",
        "123456789",  # 9 digits
        "1234567890123456",  # 16 digits
        "7900123456a",
        "phone",
        "7900123456#7",
        "+7 900 123 45 67 ext. 5",
        "٧٩٠٠١٢٣٤٥٦٧",  # Arabic-Indic digits: str.isdigit() says yes, the wire format says no
        "７９００１２３４５６７",  # fullwidth digits
        "79001234567\n1",
    ],
)
def test_invalid_phone_is_refused(raw: str) -> None:
    with pytest.raises(errors.InvalidPhone) as caught:
        normalize_phone(raw)
    assert caught.value.status_code == -1001
    assert caught.value.text == "Phone is not valid"


NOISE = st.text(alphabet=" -()", max_size=3)


@st.composite
def decorated_phones(draw: st.DrawFn) -> tuple[str, str]:
    """A phone of 10–15 digits, written the way people write phones: `+7 (900) 123-45-67`."""
    digits = draw(st.text(alphabet="0123456789", min_size=10, max_size=15))
    plus = draw(st.sampled_from(["", "+"]))
    noise = draw(st.lists(NOISE, min_size=len(digits) + 1, max_size=len(digits) + 1))
    body = "".join(gap + digit for gap, digit in zip(noise, digits, strict=False)) + noise[-1]
    return plus + body, digits


@given(decorated_phones())
def test_any_decorated_phone_normalises_back_to_its_digits(case: tuple[str, str]) -> None:
    written, digits = case
    assert normalize_phone(written) == digits


@given(st.text(alphabet="0123456789", min_size=0, max_size=30))
def test_digit_strings_are_valid_exactly_when_10_to_15_long(digits: str) -> None:
    if 10 <= len(digits) <= 15:
        assert normalize_phone(digits) == digits
    else:
        with pytest.raises(errors.InvalidPhone):
            normalize_phone(digits)


# --- emails ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user@example.com", "user@example.com"),
        ("  John.Doe@Example.COM ", "john.doe@example.com"),
        ("A+tag@Sub.Domain.ORG", "a+tag@sub.domain.org"),
        ("a@b.c", "a@b.c"),
    ],
)
def test_email_is_lower_cased_and_trimmed(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "plainaddress",
        "@example.com",
        "user@",
        "user@example",
        "user@example.",
        "user@@example.com",
        "us er@example.com",
        "user@exa mple.com",
        "a" * (MAX_EMAIL_LENGTH - len("@example.com") + 1) + "@example.com",
    ],
)
def test_invalid_email_is_refused(raw: str) -> None:
    with pytest.raises(errors.InvalidEmail) as caught:
        normalize_email(raw)
    assert caught.value.status_code == -1002
    assert caught.value.text == "Invalid value of email"


def test_email_of_the_longest_allowed_length_is_accepted() -> None:
    email = "a" * (MAX_EMAIL_LENGTH - len("@example.com")) + "@example.com"
    assert len(email) == MAX_EMAIL_LENGTH
    assert normalize_email(email.upper()) == email


@given(
    st.from_regex(r"[A-Za-z0-9._+-]{1,20}@[A-Za-z0-9-]{1,20}\.[A-Za-z]{2,6}", fullmatch=True),
)
def test_emails_differing_only_in_case_normalise_alike(email: str) -> None:
    assert normalize_email(email.upper()) == normalize_email(email.lower()) == email.lower()


# --- origin_user_id ----------------------------------------------------------------------------------


def test_origin_user_id_is_trimmed_and_keeps_its_case() -> None:
    assert normalize_origin_user_id("  Shop-42/ABC ") == "Shop-42/ABC"
    assert normalize_origin_user_id("x" * MAX_ORIGIN_USER_ID_LENGTH) == "x" * MAX_ORIGIN_USER_ID_LENGTH


@pytest.mark.parametrize("raw", ["", "   ", "x" * (MAX_ORIGIN_USER_ID_LENGTH + 1)])
def test_invalid_origin_user_id_is_refused(raw: str) -> None:
    with pytest.raises(errors.InvalidParameter) as caught:
        normalize_origin_user_id(raw)
    assert caught.value.status_code == -1000
    assert caught.value.field == "origin_user_id"


# --- which identifier a request names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_phone", "email", "origin_user_id", "expected"),
    [
        ("+7 900 123-45-67", "A@B.cd", "ext-1", CustomerRef(IdentifierKind.PHONE, "79001234567")),
        ("79001234567", None, None, CustomerRef(IdentifierKind.PHONE, "79001234567")),
        ("79001234567", None, "ext-1", CustomerRef(IdentifierKind.PHONE, "79001234567")),
        (None, "A@B.cd", "ext-1", CustomerRef(IdentifierKind.EMAIL, "a@b.cd")),
        ("", "A@B.cd", None, CustomerRef(IdentifierKind.EMAIL, "a@b.cd")),
        (None, None, " ext-1 ", CustomerRef(IdentifierKind.ORIGIN_USER_ID, "ext-1")),
        ("", "", "ext-1", CustomerRef(IdentifierKind.ORIGIN_USER_ID, "ext-1")),
    ],
)
def test_customer_ref_prefers_phone_then_email_then_origin_user_id(
    user_phone: str | None, email: str | None, origin_user_id: str | None, expected: CustomerRef
) -> None:
    assert customer_ref(user_phone, email, origin_user_id) == expected


def test_customer_ref_validates_the_identifier_it_chooses() -> None:
    # The phone wins even when it is invalid: a valid email does not rescue it.
    with pytest.raises(errors.InvalidPhone):
        customer_ref("12", "a@b.cd", "ext-1")
    # The email is chosen only without a phone; then an invalid one is an error too.
    with pytest.raises(errors.InvalidEmail):
        customer_ref(None, "not-an-email", "ext-1")
    # An invalid email behind a valid phone is never looked at.
    assert customer_ref("79001234567", "not-an-email", None).kind is IdentifierKind.PHONE


@pytest.mark.parametrize(("user_phone", "email", "origin_user_id"), [(None, None, None), ("", "", "")])
def test_customer_ref_without_any_identifier(
    user_phone: str | None, email: str | None, origin_user_id: str | None
) -> None:
    with pytest.raises(errors.MissingCustomerIdentifier) as caught:
        customer_ref(user_phone, email, origin_user_id)
    assert caught.value.body() == {
        "status": "error",
        "status_code": -1000,
        "message": "Provide user_phone or email or origin_user_id",
    }
