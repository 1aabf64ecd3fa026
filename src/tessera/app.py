from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tessera import errors, esputnik
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
from tessera.sailplay import RateLimiter, error_response
from tessera.tenancy.router import loyalty as tenancy_loyalty
from tessera.tenancy.service import Authenticator


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """The whole service. Pass ``database`` to share one pool with the caller (tests, CLI)."""
    settings = settings or Settings()
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

    app = FastAPI(title="Tessera", version="0.1.0", lifespan=lifespan, redirect_slashes=False)
    app.state.settings = settings
    app.state.database = db
    app.state.authenticator = Authenticator(db, settings.token_cache_seconds)
    app.state.api_keys = esputnik.ApiKeyAuthenticator(db)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second)

    for loyalty in (
        tenancy_loyalty,
        customers_loyalty,
        promocodes_loyalty,
        certificates_loyalty,
        purchases_loyalty,
    ):
        app.router.routes.extend(loyalty.routes)
    app.router.routes.extend(messaging.routes)
    app.router.routes.extend(contacts.routes)
    admin_web.install(app)

    @app.exception_handler(errors.TesseraError)
    async def render_error(request: Request, error: errors.TesseraError) -> Response:
        if esputnik.is_messaging_path(request.url.path):
            return esputnik.error_response(error)
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def render_http_error(request: Request, error: StarletteHTTPException) -> Response:
        if admin_web.is_admin_path(request.url.path):
            title = "Not found" if error.status_code == 404 else f"Error {error.status_code}"
            return admin_web.error_page(request, error.status_code, title, str(error.detail))
        if error.status_code == 404:
            unknown = errors.UnknownPath(f"Unknown path {request.url.path}")
            if esputnik.is_messaging_path(request.url.path):
                return esputnik.error_response(unknown)
            return error_response(unknown)
        if esputnik.is_messaging_path(request.url.path):
            return JSONResponse(
                {"error": str(error.detail), "status_code": -error.status_code}, status_code=error.status_code
            )
        return JSONResponse(
            {"status": "error", "status_code": -error.status_code, "message": str(error.detail)},
            status_code=error.status_code,
        )

    return app
