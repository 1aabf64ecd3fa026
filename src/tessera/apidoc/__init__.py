"""API documents (SPEC §9): ``GET /openapi.json`` describes both faces, ``GET /docs`` renders it.

The document is built once per route table (``tessera.apidoc.build``, from ``table``). ``/docs``
is Swagger UI, whose script and style sheet are served from here too, out of the
``fastapi-offline`` package's copy: the page loads nothing from elsewhere, and its
Content-Security-Policy says so to the browser. Both answer on the operator's face, like
``tessera.health``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import importlib.util
import weakref
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tessera import errors
from tessera.apidoc.build import document
from tessera.health import OPERATOR
from tessera.routing import ApiRoute, RouteTable

__all__ = ["ROUTES", "document"]

_DOCUMENTS: weakref.WeakKeyDictionary[RouteTable, bytes] = weakref.WeakKeyDictionary()

#: Swagger UI's start: the document's address comes from the page, so this text (and its hash in
#: the page's Content-Security-Policy) never changes.
_START = (
    'window.addEventListener("load", function () {'
    ' var root = document.getElementById("swagger-ui");'
    " window.ui = SwaggerUIBundle({url: root.dataset.openapi, dom_id: '#swagger-ui', deepLinking: true,"
    " validatorUrl: null, presets: [SwaggerUIBundle.presets.apis], layout: 'BaseLayout'});"
    " });"
)
_START_HASH = base64.b64encode(hashlib.sha256(_START.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src 'self' 'sha256-{_START_HASH}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tessera API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{root}/openapi.json"></div>
<script src="{root}/docs/swagger-ui-bundle.js"></script>
<script>{start}</script>
</body>
</html>
"""
#: Swagger UI's files, by the name they are served under /docs/.
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


async def openapi_json(request: Request) -> Response:
    routes: RouteTable = request.app.routes
    body = _DOCUMENTS.get(routes)
    if body is None:
        body = _DOCUMENTS[routes] = orjson.dumps(document(routes.routes()))
    return Response(body, media_type="application/json")


async def docs(request: Request) -> Response:
    root = html.escape(request.scope.get("root_path", "").rstrip("/"), quote=True)
    page = _PAGE.format(root=root, start=_START)
    return Response(
        page,
        media_type="text/html",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"},
    )


@functools.cache
def _asset(name: str) -> bytes:
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise errors.UnknownPath(f"Swagger UI's {name} is not installed (the fastapi-offline package)")
    return (Path(next(iter(spec.submodule_search_locations))) / "static" / name).read_bytes()


async def asset(request: Request) -> Response:
    name = request.scope["path"].rstrip("/").rpartition("/")[2]
    return Response(
        _asset(name),
        media_type=ASSETS[name],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


GET = frozenset({"GET"})
ROUTES = (
    ApiRoute("/openapi.json", GET, openapi_json, OPERATOR),
    ApiRoute("/docs", GET, docs, OPERATOR),
    *(ApiRoute(f"/docs/{name}", GET, asset, OPERATOR) for name in ASSETS),
)
