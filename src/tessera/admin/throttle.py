"""Slows down password guessing at the sign-in form."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: Failed sign-ins allowed per email within the window.
MAX_FAILURES = 10
#: Per client address: higher, as one office may sit behind one address.
MAX_FAILURES_PER_ADDRESS = 50
WINDOW_SECONDS = 15 * 60
#: Keys remembered at most; beyond it the oldest are dropped (a flood cannot exhaust memory).
MAX_KEYS = 100_000


class SignInThrottle:
    """Counts recent failed sign-ins per key (an email, a client address) in this process.

    argon2 already makes each guess cost the server ~50 ms; this caps how many guesses one
    account or one address gets. With several server processes each counts its own, so the cap
    is per process: still a few dozen guesses per quarter hour, not millions.
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until any of the keys may try again, or None when none is blocked."""
        now = self._clock()
        waits = []
        for key in keys:
            failures = self._recent(key, now)
            if failures is not None and len(failures) >= self._max_failures:
                waits.append(failures[0] + self._window - now)
        return max(waits) if waits else None

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            failures = self._recent(key, now)
            if failures is None:
                if len(self._failures) >= MAX_KEYS:
                    del self._failures[next(iter(self._failures))]
                failures = self._failures[key] = deque()
            failures.append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
