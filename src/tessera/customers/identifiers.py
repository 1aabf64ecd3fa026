"""Customer identifiers (SPEC §3, §4): pure rules, no database."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from tessera import errors

_PHONE_NOISE = str.maketrans("", "", "+ -()\t.")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
MIN_PHONE_DIGITS = 10
MAX_PHONE_DIGITS = 15
MAX_EMAIL_LENGTH = 320
MAX_ORIGIN_USER_ID_LENGTH = 255


class IdentifierKind(enum.Enum):
    PHONE = "phone"
    EMAIL = "email"
    ORIGIN_USER_ID = "origin_user_id"


@dataclass(frozen=True, slots=True)
class CustomerRef:
    kind: IdentifierKind
    value: str


def normalize_phone(raw: str) -> str:
    """International digits without ``+``: ``+7 (900) 123-45-67`` → ``79001234567``."""
    digits = raw.strip().translate(_PHONE_NOISE)
    if (
        not digits.isascii()
        or not digits.isdigit()
        or not MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS
    ):
        raise errors.InvalidPhone()
    return digits


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise errors.InvalidEmail()
    return email


def normalize_origin_user_id(raw: str) -> str:
    value = raw.strip()
    if not value or len(value) > MAX_ORIGIN_USER_ID_LENGTH:
        raise errors.InvalidParameter(
            "origin_user_id", f"must be 1 to {MAX_ORIGIN_USER_ID_LENGTH} characters"
        )
    return value


def customer_ref(user_phone: str | None, email: str | None, origin_user_id: str | None) -> CustomerRef:
    """The identifier a request names; SailPlay accepts any one of the three (phone first)."""
    if user_phone:
        return CustomerRef(IdentifierKind.PHONE, normalize_phone(user_phone))
    if email:
        return CustomerRef(IdentifierKind.EMAIL, normalize_email(email))
    if origin_user_id:
        return CustomerRef(IdentifierKind.ORIGIN_USER_ID, normalize_origin_user_id(origin_user_id))
    raise errors.MissingCustomerIdentifier()


def customer_refs(typed: str) -> list[CustomerRef]:
    """Every identifier a value typed into a search box could be, in this order: an email, a
    phone number, an external id (a look-up tries each)."""
    refs: list[CustomerRef] = []
    normalizers = (
        (IdentifierKind.EMAIL, normalize_email),
        (IdentifierKind.PHONE, normalize_phone),
        (IdentifierKind.ORIGIN_USER_ID, normalize_origin_user_id),
    )
    for kind, normalize in normalizers:
        try:
            refs.append(CustomerRef(kind, normalize(typed)))
        except errors.TesseraError:
            continue
    return refs
