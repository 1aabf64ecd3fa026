"""Validating events as eSputnik does (SPEC §8): pure rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tessera import errors

MAX_EVENT_TYPE_KEY = 100
MAX_KEY_VALUE = 300
FORBIDDEN_CHARACTERS = frozenset("<;’\\/|\"`'^?!,>")
#: v2: where keyValue comes from when the event has none, in this order: eSputnik's five, then the
#: contact params its own promo-code guide puts in events (EmailAddress, Phone).
KEY_VALUE_PARAMS = ("contactId", "externalCustomerId", "email", "phone", "pushToken", "EmailAddress", "Phone")


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    key: str
    key_value: str
    params: dict[str, Any]


def _checked(value: Any, field: str, limit: int, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise errors.BadRequest(f"{field} is required", field=field)
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise errors.BadRequest(f"{field} must be a string", field=field)
    text = str(value).strip()
    if len(text) > limit:
        raise errors.BadRequest(f"{field} is longer than {limit} characters", field=field)
    bad = sorted(set(text) & FORBIDDEN_CHARACTERS)
    if bad:
        raise errors.BadRequest(f"{field} contains forbidden characters: {''.join(bad)}", field=field)
    return text


def parse_event(body: Any, *, version: int) -> IncomingEvent:
    if not isinstance(body, dict):
        raise errors.BadRequest("the body must be a JSON object", field="body")
    key = _checked(body.get("eventTypeKey"), "eventTypeKey", MAX_EVENT_TYPE_KEY)
    raw_params = body.get("params", [])
    if raw_params is None:
        raw_params = []
    if not isinstance(raw_params, list):
        raise errors.BadRequest("params must be an array of {name, value}", field="params")
    params: dict[str, Any] = {}
    for index, item in enumerate(raw_params):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise errors.BadRequest(
                f"params[{index}] must be an object with a name", field=f"params[{index}].name"
            )
        value = item.get("value")
        if version == 1 and isinstance(value, dict | list):
            # v1 takes nested JSON only as a string; keep it, as text, the way v1 clients send it.
            value = json.dumps(value, ensure_ascii=False)
        params[item["name"]] = value
    key_value = _checked(body.get("keyValue"), "keyValue", MAX_KEY_VALUE, required=version == 1)
    if key_value is None:
        for name in KEY_VALUE_PARAMS:
            value = params.get(name)
            if value is not None and str(value).strip() and str(value).strip().lower() != "null":
                key_value = _checked(value, "keyValue", MAX_KEY_VALUE)
                break
    if key_value is None:
        raise errors.BadRequest(
            "keyValue is required (or a contactId, externalCustomerId, email, phone, pushToken,"
            " EmailAddress or Phone param)",
            field="keyValue",
        )
    assert key is not None
    return IncomingEvent(key, key_value, params)
