"""Secrets (SPEC §2): tokens, numeric keys and PINs, and the hashes that are all the database keeps."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera.secrets import fast_hash, new_digits, new_token, slow_hash, verify_slow_hash


def test_token_is_40_lowercase_hex_characters() -> None:
    for _ in range(50):
        assert re.fullmatch(r"[0-9a-f]{40}", new_token())


def test_tokens_are_distinct() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000


@pytest.mark.parametrize("length", [1, 2, 4, 16, 40])
def test_new_digits_has_the_length_asked_for_and_no_leading_zero(length: int) -> None:
    for _ in range(200):
        digits = new_digits(length)
        assert len(digits) == length
        assert digits.isascii() and digits.isdigit()
        assert digits[0] != "0"
        # Clients store keys and PINs as integers: the round trip must not lose a digit.
        assert str(int(digits)) == digits


def test_new_digits_uses_every_digit() -> None:
    seen = set("".join(new_digits(16) for _ in range(200)))
    assert seen == set("0123456789")
    assert {new_digits(1) for _ in range(500)} == set("123456789")


def test_fast_hash_is_a_stable_sha256_hex_digest() -> None:
    assert fast_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert fast_hash("abc") == fast_hash("abc")
    assert fast_hash("abc") != fast_hash("abd")


def test_slow_hash_verifies_the_right_secret_and_not_a_wrong_one() -> None:
    secret = new_digits(16)
    stored = slow_hash(secret)
    assert secret not in stored
    assert stored.startswith("scrypt$")
    assert verify_slow_hash(secret, stored)
    assert not verify_slow_hash(secret[:-1], stored)
    assert not verify_slow_hash(secret + "0", stored)
    assert not verify_slow_hash("", stored)
    one_digit_off = secret[:-1] + str((int(secret[-1]) + 1) % 10)
    assert not verify_slow_hash(one_digit_off, stored)


def test_slow_hash_is_salted() -> None:
    first, second = slow_hash("1234567890123456"), slow_hash("1234567890123456")
    assert first != second
    assert verify_slow_hash("1234567890123456", first)
    assert verify_slow_hash("1234567890123456", second)


@pytest.mark.parametrize(
    "stored",
    ["", "plain", "scrypt$00", "bcrypt$00$00", "scrypt$00$00$00", fast_hash("1234567890123456")],
)
def test_verify_slow_hash_refuses_what_is_not_a_slow_hash(stored: str) -> None:
    assert not verify_slow_hash("1234567890123456", stored)


@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_fast_hash_of_any_secret_is_64_hex_and_deterministic(secret: str) -> None:
    digest = fast_hash(secret)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == fast_hash(secret)


def test_the_cost_is_stored_so_a_hash_verifies_after_the_cost_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tessera import secrets as tessera_secrets

    monkeypatch.setattr(tessera_secrets, "SCRYPT_COST", 2**4)
    stored = slow_hash("1234567890123456")
    assert stored.split("$")[1] == "16"
    monkeypatch.setattr(tessera_secrets, "SCRYPT_COST", 2**14)
    assert verify_slow_hash("1234567890123456", stored)
    assert not verify_slow_hash("1234567890123456", stored.replace("scrypt$16$", "scrypt$15$"))


@pytest.mark.parametrize(
    "stored", ["scrypt$16$zz$00", "scrypt$x$00$00", "scrypt$15$00$00", "bcrypt$16$00$00", ""]
)
def test_a_damaged_stored_hash_never_matches(stored: str) -> None:
    assert not verify_slow_hash("1234", stored)
