"""The messaging face's wire conventions (SPEC §8), shared by its routers.

eSputnik clients authenticate with a partner API key (HTTP Basic with the key as password, or a
Bearer token), send JSON, and read real HTTP statuses: 400 with a JSON error naming the field,
401 without a valid key, 404 for an unknown id. Paths answer with and without a trailing slash.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from tessera import errors
from tessera.db import contains_nul
from tessera.routing import PARTNER_KEY, ApiRoute, JsonResponse

if TYPE_CHECKING:
    # The app puts the authenticator in its state: the face needs only its type.
    from tessera.tenancy.service import ApiKeyAuthenticator

#: A messaging-face handler: (request, partner id, path parameters) → response.
Handler = Callable[..., Awaitable[Response]]

#: The SailPlay clients' old paths that share /api/v1 with the messaging face.
LOYALTY_V1_PREFIXES = ("/api/v1/login", "/api/v1/purchases", "/api/v1/marketing-actions")
MAX_BODY_BYTES = 20 * 1024


def is_messaging_path(path: str) -> bool:
    if path.startswith("/api/v2/event"):
        return True
    return path.startswith("/api/v1/") and not path.startswith(LOYALTY_V1_PREFIXES)


def error_response(error: errors.TesseraError) -> JsonResponse:
    body: dict[str, Any] = {"error": error.text, "status_code": error.status_code, **error.extra}
    headers = {"WWW-Authenticate": 'Basic realm="tessera"'} if error.http_status == 401 else None
    return JsonResponse(body, status_code=error.http_status, headers=headers)


class MessagingFace:
    @staticmethod
    def render_error(error: errors.TesseraError) -> Response:
        return error_response(error)


MESSAGING = MessagingFace()


def api_key_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


async def partner_id(request: Request) -> int:
    authenticator: ApiKeyAuthenticator = request.app.state.api_keys
    partner = await authenticator.partner_of(api_key_from(request))
    request.scope[PARTNER_KEY] = partner
    return partner


async def json_body(request: Request, *, max_bytes: int = 1024 * 1024) -> Any:
    body = await request.body()
    if len(body) > max_bytes:
        raise errors.BadRequest(f"the body is larger than {max_bytes // 1024} KB", field="body")
    if not body.strip():
        raise errors.BadRequest("the body must be JSON", field="body")
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply
        raise errors.BadRequest(f"the body is not valid JSON: {error}", field="body") from None
    if contains_nul(parsed):
        raise errors.BadRequest("the body may not contain NUL characters (\\u0000)", field="body")
    return parsed


class MessagingRouter:
    """A handler is called as ``handler(request, partner, **path_params)`` with the partner its
    API key names; handlers read and validate their bodies themselves. Path parameters named
    ``{*_id}`` are ids (``tessera.routing``); every path also answers with a trailing slash."""

    def __init__(self) -> None:
        self.routes: list[ApiRoute] = []

    def route(self, path: str, methods: list[str]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                partner = await partner_id(request)
                if b"%00" in request.scope["query_string"]:
                    # PostgreSQL cannot hold U+0000: refused here, not failed in the database.
                    raise errors.BadRequest(
                        "the query string may not contain NUL characters (%00)", field="query"
                    )
                return await handler(request, partner, **request.path_params)

            self.routes.append(ApiRoute(path.rstrip("/"), frozenset(methods), endpoint, MESSAGING))
            return handler

        return register
