"""The admin UI assembled: every page module's routes, its static files and its error pages.

Page modules take what they share from ``admin.web``; only this module knows them all, so imports
run one way (site → pages → web).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from tessera.admin import auth_pages, lookup_pages, messaging_pages, settings_pages, stock_pages
from tessera.admin.throttle import MAX_FAILURES_PER_ADDRESS, SignInThrottle
from tessera.admin.web import HERE, AdminNotFound, CsrfRejected, SignInRequired, error_page, redirect


def install(app: FastAPI) -> None:
    for module in (auth_pages, stock_pages, lookup_pages, messaging_pages, settings_pages):
        app.include_router(module.router)
    app.mount("/admin/static", StaticFiles(directory=HERE / "static"), name="admin-static")
    app.state.sign_ins_by_email = SignInThrottle()
    app.state.sign_ins_by_address = SignInThrottle(max_failures=MAX_FAILURES_PER_ADDRESS)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def home() -> Response:
        """The service's root is the admin UI (the API faces live under /api)."""
        return RedirectResponse("/admin/", status_code=307)

    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, _: SignInRequired) -> Response:
        back = request.url.path if request.method == "GET" else "/admin/"
        if request.url.query and request.method == "GET":
            back += "?" + request.url.query
        return redirect(f"/admin/login?next={quote(back, safe='')}")

    @app.exception_handler(AdminNotFound)
    async def not_found(request: Request, _: AdminNotFound) -> Response:
        return error_page(
            request, 404, "Not found", "There is nothing here, or it belongs to another account."
        )

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, _: CsrfRejected) -> Response:
        return error_page(
            request,
            403,
            "This form has expired",
            "The page was opened in another session. Go back, reload it and try again.",
        )
