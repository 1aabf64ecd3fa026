from __future__ import annotations

from datetime import UTC, datetime

from tessera import errors


def utcnow() -> datetime:
    """Naive UTC: both databases store timestamps without a zone, and SPEC dates carry no offset."""
    return datetime.now(UTC).replace(tzinfo=None)


def parse_datetime(raw: str | None, field: str) -> datetime | None:
    """An ISO 8601 parameter; a value with an offset is converted to naive UTC."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise errors.InvalidParameter(field, "use ISO 8601, e.g. 2026-12-31T23:59:59") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def isoformat(moment: datetime | None) -> str | None:
    """SPEC §3 dates: ISO 8601 UTC without offset, milliseconds, e.g. ``2017-11-30T17:17:18.071``."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds")
