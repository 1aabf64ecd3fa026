"""The whole service: both API faces on ``tessera.routing``'s lean path, the admin UI behind it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tessera import apidoc, errors, esputnik, health, logs
from tessera.admin import site as admin_site
from tessera.admin import web as admin_web
from tessera.certificates.router import loyalty as certificates_loyalty
from tessera.config import Settings
from tessera.customers.router import loyalty as customers_loyalty
from tessera.db import Database
from tessera.messaging.contacts_router import contacts
from tessera.messaging.router import messaging
from tessera.messaging.worker import Worker
from tessera.promocodes.router import loyalty as promocodes_loyalty
from tessera.purchases.router import loyalty as purchases_loyalty
from tessera.routing import Face, RouteTable, TesseraApp
from tessera.sailplay import LOYALTY, RateLimiter
from tessera.tenancy.router import loyalty as tenancy_loyalty
from tessera.tenancy.service import ApiKeyAuthenticator, Authenticator, LookupGuard


def _face_of_unknown_path(path: str) -> Face | None:
    """Which face answers a path no route has: the API prefixes by their face (the loyalty face's
    old /api/v1 paths are the messaging face's exceptions); the rest is the admin app's."""
    if esputnik.is_messaging_path(path):
        return esputnik.MESSAGING
    if path.startswith("/api/"):
        return LOYALTY
    return None


def create_app(settings: Settings | None = None, database: Database | None = None) -> TesseraApp:
    """The whole service. Pass ``database`` to share one pool with the caller (tests, CLI)."""
    settings = settings or Settings()
    logs.configure(settings.log_format, requests=settings.log_requests)
    owns_database = database is None
    db = database or settings.database()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker = None
        if settings.serve_runs_worker:
            worker = asyncio.create_task(Worker(db, settings).run_forever(stop), name="tessera-worker")
        yield
        stop.set()
        if worker is not None:
            await worker
        if owns_database:
            await db.dispose()

    # The admin UI (and lifespan) runs on FastAPI, where its dependencies earn their cost; the API
    # faces never reach it.
    admin = FastAPI(
        title="Tessera", version="0.1.0", lifespan=lifespan, redirect_slashes=False, openapi_url=None
    )
    admin.state.settings = settings
    admin.state.database = db
    admin.state.authenticator = Authenticator(db, settings.token_cache_seconds)
    admin.state.api_keys = ApiKeyAuthenticator(db)
    admin.state.rate_limiter = RateLimiter(settings.rate_limit_per_second)
    admin.state.lookup_guard = LookupGuard(db, settings.lookup_misses_per_minute)
    admin_site.install(admin)

    @admin.exception_handler(errors.TesseraError)
    async def render_error(request: Request, error: errors.TesseraError) -> Response:
        return LOYALTY.render_error(error)

    @admin.exception_handler(StarletteHTTPException)
    async def render_http_error(request: Request, error: StarletteHTTPException) -> Response:
        if admin_web.is_admin_path(request.url.path):
            title = "Not found" if error.status_code == 404 else f"Error {error.status_code}"
            return admin_web.error_page(request, error.status_code, title, str(error.detail))
        if error.status_code == 404:
            return LOYALTY.render_error(errors.UnknownPath(f"Unknown path {request.url.path}"))
        return LOYALTY.render_error(errors.MethodNotAllowed(str(error.detail)))

    routes = RouteTable()
    for loyalty in (
        tenancy_loyalty,
        customers_loyalty,
        promocodes_loyalty,
        certificates_loyalty,
        purchases_loyalty,
    ):
        routes.extend(loyalty.routes)
    routes.extend(messaging.routes)
    routes.extend(contacts.routes)
    routes.extend(health.ROUTES)
    routes.extend(apidoc.ROUTES)
    return TesseraApp(routes, admin, _face_of_unknown_path)
