"""Who a workflow run or a message is for: contacts named in event data (pure rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tessera import errors
from tessera.customers.identifiers import normalize_email, normalize_phone
from tessera.customers.service import CustomerInput

EMAIL_PARAMS = ("EmailAddress", "email", "Email", "emailAddress")
PHONE_PARAMS = ("Phone", "phone", "PhoneNumber", "phoneNumber", "sms", "SMS")
EXTERNAL_ID_PARAMS = ("externalCustomerId", "ExternalCustomerId")


def _first(data: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, str | int) and str(value).strip() and str(value).strip().lower() != "null":
            return str(value).strip()
    return None


def contact_from(data: Mapping[str, Any], key_value: str | None = None) -> CustomerInput | None:
    """The contact an event's params (or its keyValue) name, or None when they name nobody."""
    email = _first(data, EMAIL_PARAMS)
    phone = _first(data, PHONE_PARAMS)
    external = _first(data, EXTERNAL_ID_PARAMS)
    if not (email or phone or external) and key_value:
        if "@" in key_value:
            email = key_value
        else:
            try:
                phone = normalize_phone(key_value)
            except errors.InvalidPhone:
                external = key_value
    if not (email or phone or external):
        return None
    try:
        return CustomerInput(
            email=normalize_email(email) if email else None,
            phone=normalize_phone(phone) if phone else None,
            origin_user_id=external,
        )
    except (errors.InvalidEmail, errors.InvalidPhone):
        # A malformed address in the params: fall back to the identifiers that do parse.
        return CustomerInput(origin_user_id=external) if external else None
