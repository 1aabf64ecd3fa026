"""smartsend's ``fromName`` replaces the display name of the message's sender, not its address."""

from __future__ import annotations

import pytest

from tessera.messaging.worker import with_display_name


@pytest.mark.parametrize(
    ("sender", "display_name", "expected"),
    [
        ("shop@example.com", "Spring sale", "Spring sale <shop@example.com>"),
        ("Shop <shop@example.com>", "Spring sale", "Spring sale <shop@example.com>"),
        ("Shop <shop@example.com>", None, "Shop <shop@example.com>"),
        ("Shop <shop@example.com>", "", "Shop <shop@example.com>"),
        # Quoted where RFC 5322 needs it; encoded when it is not ASCII.
        ("shop@example.com", "Shop, Inc.", '"Shop, Inc." <shop@example.com>'),
        ("shop@example.com", "Магазин", "=?utf-8?b?0JzQsNCz0LDQt9C40L0=?= <shop@example.com>"),
    ],
)
def test_with_display_name(sender: str, display_name: str | None, expected: str) -> None:
    assert with_display_name(sender, display_name) == expected
