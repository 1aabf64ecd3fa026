"""Generating and hashing secrets. Nothing secret is stored in clear (SPEC §2)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


def new_token() -> str:
    """A SailPlay login token: 40 hex characters (160 random bits)."""
    return secrets.token_hex(20)


def new_digits(length: int) -> str:
    """A random numeric secret with no leading zero (clients store keys and PINs as integers)."""
    first = str(secrets.randbelow(9) + 1)
    return first + "".join(str(secrets.randbelow(10)) for _ in range(length - 1))


def fast_hash(secret: str) -> str:
    """For high-entropy secrets (tokens, API keys): a plain SHA-256 is enough and costs microseconds."""
    return hashlib.sha256(secret.encode()).hexdigest()


#: scrypt's cost for new hashes. The cost is stored in each hash, so raising it later keeps old
#: hashes verifiable (tests lower it: the suite creates thousands of departments).
SCRYPT_COST = 2**14


def slow_hash(secret: str) -> str:
    """For low-entropy numeric department keys: salted scrypt, so a leaked table is not a key list."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_COST, r=8, p=1)
    return f"scrypt${SCRYPT_COST}${salt.hex()}${digest.hex()}"


def verify_slow_hash(secret: str, stored: str) -> bool:
    try:
        scheme, cost, salt_hex, digest_hex = stored.split("$")
        n = int(cost)
    except ValueError:
        return False
    if scheme != "scrypt" or n < 2 or n & (n - 1):
        return False
    try:
        digest = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt_hex), n=n, r=8, p=1)
    except ValueError:  # a damaged stored hash never matches
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


#: argon2id with the library's defaults (RFC 9106's second recommendation). The parameters are
#: stored in each hash; tests swap in a cheap hasher.
PASSWORD_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """For admin passwords, which people choose: argon2id is slow and memory-hard on purpose."""
    return PASSWORD_HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    try:
        return PASSWORD_HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
