"""The sign-in throttle: a capped number of failures per email and per address in a window."""

from __future__ import annotations

from tessera.admin.throttle import SignInThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_cap_blocks_the_next_try_until_the_oldest_failure_leaves_the_window() -> None:
    clock = FakeClock()
    throttle = SignInThrottle(max_failures=3, window_seconds=60, clock=clock)
    for _ in range(2):
        throttle.failed("email:a@x.io")
        clock.now += 10
    assert throttle.retry_after("email:a@x.io") is None
    throttle.failed("email:a@x.io")  # the third failure, at 1020
    assert throttle.retry_after("email:a@x.io") == 40.0  # the first (at 1000) leaves at 1060
    clock.now = 1060.0
    assert throttle.retry_after("email:a@x.io") is None


def test_any_blocked_key_blocks_and_the_longest_wait_is_given() -> None:
    clock = FakeClock()
    throttle = SignInThrottle(max_failures=2, window_seconds=100, clock=clock)
    throttle.failed("ip:10.0.0.1")
    clock.now += 50
    throttle.failed("ip:10.0.0.1", "email:b@x.io")
    throttle.failed("email:b@x.io")
    assert throttle.retry_after("email:c@x.io") is None
    assert throttle.retry_after("email:b@x.io", "ip:10.0.0.1") == 100.0
    assert throttle.retry_after("email:c@x.io", "ip:10.0.0.1") == 50.0


def test_a_success_forgets_the_failures_of_its_keys() -> None:
    throttle = SignInThrottle(max_failures=2, window_seconds=100, clock=FakeClock())
    throttle.failed("email:a@x.io")
    throttle.failed("email:a@x.io")
    assert throttle.retry_after("email:a@x.io") is not None
    throttle.succeeded("email:a@x.io")
    assert throttle.retry_after("email:a@x.io") is None
