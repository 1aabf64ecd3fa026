"""Names people give things (groups, departments): one rule, each with its column's length."""

from __future__ import annotations

from tessera import errors


def checked_name(raw: str, max_length: int, field: str = "name") -> str:
    """The name without surrounding spaces: 1 to ``max_length`` characters (its column's width)."""
    name = raw.strip()
    if not name or len(name) > max_length:
        raise errors.InvalidParameter(field, f"must be 1 to {max_length} characters")
    return name
