"""Partners, departments, logins and API keys: who is calling, and on whose behalf."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tessera import errors
from tessera.clock import utcnow
from tessera.db import Database
from tessera.names import checked_name
from tessera.routing import MAX_ID_DIGITS
from tessera.secrets import fast_hash, new_digits, new_token, slow_hash, verify_slow_hash
from tessera.sql import Conn
from tessera.tenancy import repository
from tessera.tenancy.models import ApiKey

DEPARTMENT_KEY_DIGITS = 16
PIN_DIGITS = 4
MAX_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated loyalty-face request: the partner, its department and the employee's PIN."""

    partner_id: int
    department_id: int
    pin_code: str


@dataclass(frozen=True, slots=True)
class NewDepartment:
    """Returned once at creation: the key is never readable again."""

    partner_id: int
    store_department_id: int
    store_department_key: str
    pin_code: str


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    pin_codes: list[str]


async def create_department(session: AsyncSession, name: str, partner_id: int | None = None) -> NewDepartment:
    name = checked_name(name, MAX_NAME_LENGTH)
    if partner_id is None:
        partner = await repository.add_partner(session, name)
        partner_id = partner.id
    elif await repository.get_partner(session, partner_id) is None:
        raise errors.PartnerNotFound(f"Partner {partner_id} not found")
    key = new_digits(DEPARTMENT_KEY_DIGITS)
    department = await repository.add_department(session, partner_id, name, slow_hash(key))
    pin_code = new_digits(PIN_DIGITS)
    await repository.add_employee(session, department, pin_code)
    return NewDepartment(partner_id, department.id, key, pin_code)


async def add_employee(session: AsyncSession, partner_id: int, department_id: int) -> str:
    department = await repository.get_department(session, department_id)
    if department is None or department.partner_id != partner_id:
        raise errors.DepartmentNotFound()
    pin_code = new_digits(PIN_DIGITS)
    await repository.add_employee(session, department, pin_code)
    return pin_code


async def login(
    session: AsyncSession, department_id: int, department_key: str, pin_code: str, ttl_seconds: int
) -> LoginResult:
    department = await repository.get_department(session, department_id)
    # scrypt takes tens of milliseconds by design: keep it off the event loop.
    if department is None:
        raise errors.LoginFailed()
    if not await asyncio.to_thread(verify_slow_hash, department_key, department.key_hash):
        raise errors.LoginFailed()
    pins = list(await repository.pin_codes(session, department))
    if pin_code not in pins:
        raise errors.LoginFailed()
    token = new_token()
    expires_at = utcnow() + timedelta(seconds=ttl_seconds) if ttl_seconds > 0 else None
    await repository.add_token(session, department, pin_code, fast_hash(token), expires_at)
    return LoginResult(token, pins)


async def check_pin_code(session: AsyncSession, caller: Caller, pin_code: str) -> None:
    department = await repository.get_department(session, caller.department_id)
    if department is None or pin_code not in await repository.pin_codes(session, department):
        raise errors.InvalidPinCode()


async def department_of_partner(conn: Conn, partner_id: int, department_id: int) -> int:
    if await repository.partner_of_department(conn, department_id) != partner_id:
        raise errors.DepartmentNotFound()
    return department_id


class Authenticator:
    """Checks a loyalty token against the department it must belong to.

    Tokens cannot be revoked before they expire, so a positive answer is safe to remember for a
    short while (never past the token's expiry): hot paths then skip a query.
    """

    def __init__(self, database: Database, cache_seconds: float) -> None:
        self._database = database
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, int], tuple[Caller, float]] = {}

    async def authenticate(self, token: str | None, department_id: int | None) -> Caller:
        if not token or department_id is None:
            raise errors.PermissionDenied()
        token_hash = fast_hash(token)
        key = (token_hash, department_id)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._database.read() as conn:
            found = await repository.find_token(conn, token_hash, department_id, utcnow())
        if found is None:
            raise errors.PermissionDenied()
        caller = Caller(found.partner_id, found.department_id, found.pin_code)
        until = now + self._cache_seconds
        if found.expires_at is not None:
            until = min(until, now + (found.expires_at - utcnow()).total_seconds())
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (caller, until)
        return caller


class LookupGuard:
    """Stops a client from enumerating codes and certificates (SPEC §3's look-ups).

    Failed look-ups (an unknown code or certificate number) are counted per partner and client
    address in one-minute windows, in the database, so every process shares the count. Past
    ``limit`` in a minute, that client's look-ups (found or not) answer HTTP 429 until the minute
    ends. A process learns that a client is over the limit from its own next miss, so hits cost
    nothing: a client spread over N processes gets at most N more misses than the limit.
    """

    def __init__(self, database: Database, limit: int) -> None:
        self._database = database
        self.limit = limit
        self._blocked: dict[tuple[int, str], int] = {}
        self._minute = 0

    @staticmethod
    def _current_minute() -> int:
        return int(time.time() // 60)

    def check(self, partner_id: int, client: str) -> None:
        """Refuses a look-up by a client that is over the limit this minute."""
        if self._blocked and self._blocked.get((partner_id, client)) == self._current_minute():
            raise errors.LookupsLimited()

    async def missed(self, partner_id: int, client: str) -> None:
        """Counts a failed look-up; refuses it too when it is one over the limit."""
        if self.limit <= 0:
            return
        minute = self._current_minute()
        async with self._database.write() as conn:
            if minute != self._minute:
                # A new minute: this process drops what it knew, and the table what is past.
                self._minute = minute
                self._blocked.clear()
                await repository.forget_lookup_misses(conn, minute - 1)
            misses = await repository.count_lookup_miss(conn, partner_id, client, minute)
        if misses > self.limit:
            self._blocked[(partner_id, client)] = minute
            raise errors.LookupsLimited()


class ApiKeyAuthenticator:
    """Finds the partner of an API key. Keys can be revoked, so answers are remembered only briefly."""

    def __init__(self, database: Database, cache_seconds: float = 5.0) -> None:
        self._database = database
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[int, float]] = {}

    def forget_partner(self, partner_id: int) -> None:
        """After a revocation: this process stops accepting the partner's revoked keys at once."""
        self._cache = {k: v for k, v in self._cache.items() if v[0] != partner_id}

    async def partner_of(self, key: str | None) -> int:
        if not key or not key.startswith("tsk_"):
            raise errors.Unauthorized()
        digits = key.split("_")[1] if key.count("_") >= 2 else ""
        if not (digits.isdigit() and digits.isascii() and len(digits) <= MAX_ID_DIGITS):
            raise errors.Unauthorized()
        partner_id = int(digits)
        key_hash = fast_hash(key)
        cached = self._cache.get(key_hash)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._database.read() as conn:
            live = await repository.api_key_is_live(conn, partner_id, key_hash)
        if not live:
            raise errors.Unauthorized()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_hash] = (partner_id, now + self._cache_seconds)
        return partner_id


async def create_api_key(session: AsyncSession, partner_id: int) -> str:
    if await repository.get_partner(session, partner_id) is None:
        raise errors.PartnerNotFound(f"Partner {partner_id} not found")
    key = f"tsk_{partner_id}_{new_token()}"
    await repository.add_api_key(session, partner_id, fast_hash(key), key[: len(f"tsk_{partner_id}_") + 4])
    return key


async def revoke_api_key(session: AsyncSession, partner_id: int, api_key_id: int) -> None:
    if not await repository.revoke_api_key(session, partner_id, api_key_id, utcnow()):
        raise errors.InvalidParameter("api_key", "no such live key")


async def departments_listed(
    session: AsyncSession, partner_id: int | None = None
) -> list[repository.DepartmentListed]:
    """Every department with its partner's name, or those of one partner."""
    if partner_id is not None and await repository.get_partner(session, partner_id) is None:
        raise errors.PartnerNotFound(f"Partner {partner_id} not found")
    return await repository.departments_with_partners(session, partner_id)


async def rotate_department_key(session: AsyncSession, department_id: int) -> str:
    """A new ``store_department_key``, returned once: the old key stops logging in at once.
    Tokens it logged in before keep working until they expire."""
    key = new_digits(DEPARTMENT_KEY_DIGITS)
    if not await repository.set_department_key_hash(session, department_id, slow_hash(key)):
        raise errors.DepartmentNotFound(f"Department {department_id} not found")
    return key


async def api_keys_of(session: AsyncSession, partner_id: int) -> Sequence[ApiKey]:
    """A partner's API keys, revoked ones included (only their prefixes are stored)."""
    if await repository.get_partner(session, partner_id) is None:
        raise errors.PartnerNotFound(f"Partner {partner_id} not found")
    return await repository.list_api_keys(session, partner_id)
