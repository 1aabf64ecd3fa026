"""The loyalty face's wire conventions (SPEC §3), shared by every domain's router.

SailPlay clients send parameters in the query string, a urlencoded or multipart form, or JSON;
an old client sends a GET whose urlencoded body repeats the query string. ``Params`` merges all of
these into one value per name. Routes answer GET and POST with and without the trailing slash,
because those clients treat a redirect like any other non-200 answer: as a transport failure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from tessera import errors
from tessera.db import Database, contains_nul
from tessera.routing import PARTNER_KEY, ApiRoute, JsonResponse

if TYPE_CHECKING:
    # The app puts the authenticator and the look-up guard in its state; the face needs their
    # types only, so tenancy (whose login route is on this face) never imports back.
    from tessera.tenancy.service import Authenticator, Caller, LookupGuard

#: Integer parameters are ids and counts stored in 64-bit columns.
MIN_ID, MAX_ID = -(2**63), 2**63 - 1
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})


class Params:
    """One request's parameters, whichever way they came."""

    def __init__(self, values: dict[str, Any], files: dict[str, UploadFile]) -> None:
        self._values = values
        self._files = files

    def get(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            value = json.dumps(value) if isinstance(value, dict | list) else str(value)
        value = value.strip()
        return value or None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise errors.MissingField(name)
        return value

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise errors.InvalidParameter(name, "not an integer") from None
        if not MIN_ID <= number <= MAX_ID:
            raise errors.InvalidParameter(name, "out of range")
        return number

    def require_integer(self, name: str) -> int:
        value = self.integer(name)
        if value is None:
            raise errors.MissingField(name)
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise errors.InvalidParameter(name, "not a boolean")

    def json(self, name: str) -> Any:
        """Complex parameters (``cart``, ``promocodes``) arrive as JSON strings inside a field."""
        raw = self._values.get(name)
        if raw is None or isinstance(raw, dict | list):
            return raw
        text = str(raw).strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise errors.InvalidParameter(name, "not valid JSON") from None

    def json_or_text(self, name: str) -> Any:
        """A JSON value if the field parses as JSON, else its text (``promocodes=A1,B2``)."""
        try:
            return self.json(name)
        except errors.InvalidParameter:
            return self.get(name)

    def file(self, name: str) -> UploadFile | None:
        return self._files.get(name)


#: A urlencoded or JSON body is read into memory whole; files come as multipart, spooled to disk.
MAX_BODY_BYTES = 4 * 1024 * 1024


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise errors.InvalidParameter("body", f"larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise errors.InvalidParameter("body", f"larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def _form_fields(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)


async def read_params(request: Request) -> Params:
    values: dict[str, Any] = {}
    files: dict[str, UploadFile] = {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        values.update(_form_fields(await _body(request)))
    elif content_type == "multipart/form-data":
        # Starlette spools uploaded files to temporary files: a big upload is never held in memory.
        form = await request.form(max_part_size=16 * 1024 * 1024)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = value
            else:
                values[key] = value
    elif content_type == "application/json":
        body = await _body(request)
        if body.strip():
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):  # RecursionError: nested too deeply
                raise errors.InvalidParameter("body", "not valid JSON") from None
            if not isinstance(parsed, dict):
                raise errors.InvalidParameter("body", "not a JSON object")
            values.update(parsed)
    # The query string wins ties: a GET that repeats its query in the body reads each value once.
    query: bytes = request.scope["query_string"]
    if query:
        values.update(_form_fields(query))
    for name, value in values.items():
        if contains_nul(value):
            # PostgreSQL cannot store U+0000; refuse it here rather than fail in the database.
            raise errors.InvalidParameter(name, "contains a NUL character")
    return Params(values, files)


def database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


class RateLimiter:
    """At most ``limit`` requests per partner in each one-second window, in this process.

    SailPlay answers HTTP 429 above 50 requests per second per partner; so do we, when a limit
    is configured. Counting per process keeps it free of shared state: with N processes the
    partner's ceiling is N times the limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._window = 0
        self._counts: dict[int, int] = {}

    def check(self, partner_id: int) -> None:
        if self.limit <= 0:
            return
        window = int(time.monotonic())
        if window != self._window:
            self._window = window
            self._counts.clear()
        count = self._counts.get(partner_id, 0) + 1
        self._counts[partner_id] = count
        if count > self.limit:
            raise errors.RateLimited()


async def authenticate(request: Request, params: Params) -> Caller:
    authenticator: Authenticator = request.app.state.authenticator
    try:
        department_id = params.integer("store_department_id")
    except errors.InvalidParameter:
        raise errors.PermissionDenied() from None
    caller = await authenticator.authenticate(params.get("token"), department_id)
    request.scope[PARTNER_KEY] = caller.partner_id
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.check(caller.partner_id)
    return caller


def client_address(request: Request) -> str:
    """The caller's address (behind a reverse proxy, uvicorn's ``--forwarded-allow-ips`` makes it
    the client's own)."""
    return request.client.host[:64] if request.client else ""


def ok(**payload: Any) -> JsonResponse:
    return JsonResponse({"status": "ok", **payload})


def error_response(error: errors.TesseraError) -> JsonResponse:
    """Business errors are HTTP 200: SailPlay clients read the body, not the status line."""
    status = error.http_status if isinstance(error, errors.TransportError) else 200
    return JsonResponse(error.body(), status_code=status)


class LoyaltyFace:
    @staticmethod
    def render_error(error: errors.TesseraError) -> Response:
        return error_response(error)


LOYALTY = LoyaltyFace()


if TYPE_CHECKING:
    Handler = Callable[[Request, Params], Awaitable[Response]]
    AuthedHandler = Callable[[Request, Params, Caller], Awaitable[Response]]


class LoyaltyRouter:
    """Registers each endpoint for GET and POST (``tessera.routing`` answers it with and without
    the trailing slash). A loyalty endpoint takes the request and parses its own parameters
    (``Params``)."""

    def __init__(self) -> None:
        self.routes: list[ApiRoute] = []

    def _add(self, paths: tuple[str, ...], endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        for path in paths:
            self.routes.append(ApiRoute(path.rstrip("/"), frozenset({"GET", "POST"}), endpoint, LOYALTY))

    def public(self, *paths: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                params = await read_params(request)
                return await handler(request, params)

            endpoint.__name__ = handler.__name__
            endpoint.__doc__ = handler.__doc__
            self._add(paths, endpoint)
            return handler

        return register

    def authed(self, *paths: str, lookup: bool = False) -> Callable[[AuthedHandler], AuthedHandler]:
        """An endpoint that needs a valid token for the named ``store_department_id`` (else -7).

        A ``lookup`` finds a code or certificate by its number: its misses are counted against
        enumeration (``tenancy.service.LookupGuard``)."""

        def register(handler: AuthedHandler) -> AuthedHandler:
            async def endpoint(request: Request) -> Response:
                params = await read_params(request)
                caller = await authenticate(request, params)
                if not lookup:
                    return await handler(request, params, caller)
                guard: LookupGuard = request.app.state.lookup_guard
                client = client_address(request)
                guard.check(caller.partner_id, client)
                try:
                    return await handler(request, params, caller)
                except (errors.PromocodeNotFound, errors.CertificateNotFound):
                    await guard.missed(caller.partner_id, client)
                    raise

            endpoint.__name__ = handler.__name__
            endpoint.__doc__ = handler.__doc__
            self._add(paths, endpoint)
            return handler

        return register
