"""The request path of both API faces: one dictionary look-up from a path to its endpoint.

Every loyalty and messaging request pays for whatever sits between the socket and its handler, so
nothing does unless that face needs it. A path is found by exact look-up (a trailing slash or
none, as the faces' clients send them), not by trying each route's pattern in turn; no middleware
runs; answers are encoded with orjson. Path parameters are ids: a segment of 1 to 18 digits in a
route registered as ``/messages/{message_id}`` (anything else is an unknown path, not a database
overflow). Everything that is not an API path (the admin UI, its static files) goes to a Starlette
app behind this one.

Each route belongs to a face, which renders its errors: a ``TesseraError`` raised anywhere below
a handler comes back in that face's JSON shape, and so does an unexpected exception (HTTP 500,
with the request id that the log line carries; never a text/plain page).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera import errors, metrics

log = logging.getLogger("tessera.errors")
request_log = logging.getLogger("tessera.requests")

Endpoint = Callable[[Request], Awaitable[Response]]

_PARAMETER = re.compile(r"\{(\w+)\}")
#: A path parameter: a stored id, digits that fit a BIGINT.
MAX_ID_DIGITS = 18


class JsonResponse(Response):
    """JSON encoded by orjson: several times faster than the standard library's encoder."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:
            # What orjson refuses and the json module takes: integers beyond 64 bits echoed from
            # a client's own JSON.
            return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


class Face(Protocol):
    """How one API face answers what went wrong."""

    def render_error(self, error: errors.TesseraError) -> Response: ...


@dataclass(frozen=True, slots=True)
class ApiRoute:
    path: str
    methods: frozenset[str]
    endpoint: Endpoint
    face: Face


def _key(path: str) -> str:
    return path.rstrip("/") or "/"


class RouteTable:
    """API routes by path; see the module docstring."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, ApiRoute]] = {}
        self._templated: dict[str, tuple[tuple[str, ...], dict[str, ApiRoute]]] = {}

    def add(self, route: ApiRoute) -> None:
        names = tuple(_PARAMETER.findall(route.path))
        if names:
            key = _key(_PARAMETER.sub("{}", route.path))
            known_names, by_method = self._templated.setdefault(key, (names, {}))
            assert known_names == names, f"{route.path}: parameters named differently at one path"
        else:
            by_method = self._exact.setdefault(_key(route.path), {})
        for method in route.methods:
            assert method not in by_method, f"{method} {route.path} registered twice"
            by_method[method] = route

    def extend(self, routes: Iterable[ApiRoute]) -> None:
        for route in routes:
            self.add(route)

    def match(self, path: str) -> tuple[dict[str, ApiRoute], dict[str, int]] | None:
        key = _key(path)
        found = self._exact.get(key)
        if found is not None:
            return found, {}
        if not self._templated:
            return None
        segments = key.split("/")
        values = []
        for index, segment in enumerate(segments):
            if segment.isdigit() and segment.isascii() and len(segment) <= MAX_ID_DIGITS:
                segments[index] = "{}"
                values.append(int(segment))
        if not values:
            return None
        templated = self._templated.get("/".join(segments))
        if templated is None:
            return None
        names, by_method = templated
        return by_method, dict(zip(names, values, strict=True))

    def routes(self) -> list[ApiRoute]:
        """Every route once, by path."""
        by_path = [*self._exact.values(), *(by_method for _, by_method in self._templated.values())]
        return sorted({route for by_method in by_path for route in by_method.values()}, key=lambda r: r.path)

    def paths(self) -> list[str]:
        return sorted(
            [*self._exact, *(self._path_of(by_method) for _, by_method in self._templated.values())]
        )

    @staticmethod
    def _path_of(by_method: dict[str, ApiRoute]) -> str:
        return next(iter(by_method.values())).path


class TesseraApp:
    """The ASGI application: API routes by look-up, everything else (and lifespan) to ``fallback``.

    ``state`` is the fallback's, so ``request.app.state`` is the same object on every page.
    """

    def __init__(
        self, routes: RouteTable, fallback: Any, unknown_path_face: Callable[[str], Face | None]
    ) -> None:
        self.routes = routes
        self.fallback: ASGIApp = fallback
        self.state = fallback.state
        self._unknown_path_face = unknown_path_face

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        path: str = scope["path"]
        found = self.routes.match(path)
        if found is None:
            face = self._unknown_path_face(path)
            if face is None:
                await self.fallback(scope, receive, send)
                return
        started = time.perf_counter()
        request_id = _request_id(scope)
        method: str = scope["method"]
        if found is None:
            assert face is not None
            template = metrics.UNKNOWN_ROUTE
            response = face.render_error(errors.UnknownPath(f"Unknown path {path}"))
        else:
            by_method, path_params = found
            route = by_method.get(method) or (by_method.get("GET") if method == "HEAD" else None)
            template = next(iter(by_method.values())).path
            if route is None:
                allowed = ", ".join(sorted({*by_method, *(["HEAD"] if "GET" in by_method else [])}))
                response = next(iter(by_method.values())).face.render_error(errors.MethodNotAllowed())
                response.headers["Allow"] = allowed
            else:
                response = await self._answer(route, scope, receive, path_params, request_id)
        response.headers["X-Request-Id"] = request_id
        await response(scope, receive, send)
        _observe(scope, method, template, response.status_code, time.perf_counter() - started, request_id)

    async def _answer(
        self, route: ApiRoute, scope: Scope, receive: Receive, path_params: dict[str, int], request_id: str
    ) -> Response:
        scope["app"] = self
        scope["path_params"] = path_params
        request = Request(scope, receive)
        try:
            try:
                return await route.endpoint(request)
            except errors.TesseraError as error:
                return route.face.render_error(error)
            except HTTPException as error:
                # Starlette's own refusals (a malformed multipart body, a part over its size limit).
                return route.face.render_error(errors.BadRequestBody(error.status_code, str(error.detail)))
            except Exception:
                log.exception(
                    "unexpected error in %s %s (request id %s)",
                    scope["method"],
                    route.path,
                    request_id,
                    extra={"route": route.path, "request_id": request_id},
                )
                return route.face.render_error(errors.InternalError(request_id))
        finally:
            # An uploaded file is spooled to a temporary file by Starlette: closed here, once
            # the answer is made, whatever happened.
            await request.close()


#: The scope key under which authentication leaves the caller's partner id, for the request's log line.
PARTNER_KEY = "tessera.partner"


def _observe(scope: Scope, method: str, route: str, status: int, seconds: float, request_id: str) -> None:
    """The request's metrics and its log line: by route template, never by path or query."""
    metrics.REQUESTS.labels(route, method, status).inc()
    metrics.REQUEST_SECONDS.labels(route).observe(seconds)
    if request_log.isEnabledFor(logging.INFO):
        partner = scope.get(PARTNER_KEY)
        duration_ms = round(seconds * 1000, 2)
        request_log.info(
            "%s %s %s %.2fms partner=%s request_id=%s",
            method,
            route,
            status,
            duration_ms,
            partner if partner is not None else "-",
            request_id,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "partner": partner,
                "request_id": request_id,
            },
        )


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = str(value.decode("latin-1"))[:64]
            if given and given.isprintable():
                return given
    return uuid.uuid4().hex
