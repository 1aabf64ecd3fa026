"""Delivery and workflow rules as plain functions: no database, tested on their own."""

from __future__ import annotations

from datetime import timedelta

#: Why a delivery waits when its channel (SMTP, the SMS gateway) is not set up.
CHANNEL_NOT_CONFIGURED = "channel not configured"


def retry_delay(attempts: int, cap_seconds: float) -> timedelta:
    """How long a failed delivery or workflow step waits before its next attempt: 1, 2, 4 … seconds
    after the 1st, 2nd, 3rd … attempt, never more than ``cap_seconds``."""
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), cap_seconds))
