"""Delivery and workflow rules without a database (messaging/rules.py)."""

from __future__ import annotations

from datetime import timedelta

from tessera.messaging.rules import retry_delay


def test_the_wait_doubles_from_one_second() -> None:
    assert [retry_delay(attempts, 300).total_seconds() for attempts in (0, 1, 2, 3, 4)] == [1, 1, 2, 4, 8]


def test_the_wait_never_passes_its_cap() -> None:
    assert retry_delay(30, 300) == timedelta(seconds=300)
    assert retry_delay(3, 2.5) == timedelta(seconds=2.5)
