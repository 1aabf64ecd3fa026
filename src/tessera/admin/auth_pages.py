"""Sign-in and sign-out."""

from __future__ import annotations

import hmac
import math
import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from tessera import errors
from tessera.admin import service
from tessera.admin.throttle import SignInThrottle
from tessera.admin.web import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Page,
    redirect,
    render,
    signed_in_page,
)
from tessera.db import Database

router = APIRouter()

#: Before sign-in there is no session to tie a CSRF token to: the form carries a random value that
#: must match this cookie (double submit), so another site cannot sign a browser in as someone else.
LOGIN_COOKIE = "tessera_admin_login"


def _safe_next(raw: str | None) -> str:
    """Only a path inside the admin UI: never an open redirect to another site."""
    if raw and raw.startswith("/admin/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/admin/"


def _login_form(
    request: Request, *, email: str = "", error: str | None = None, status_code: int = 200
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        status_code,
        email=email,
        error=error,
        login_token=token,
        next=_safe_next(request.query_params.get("next")),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/admin/login",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/admin", include_in_schema=False)
async def admin_root() -> Response:
    return redirect("/admin/")


@router.get("/admin/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request) -> Response:
    return _login_form(request)


@router.post("/admin/login", include_in_schema=False)
async def login(request: Request) -> Response:
    async with request.form() as form:
        email = str(form.get("email", "")).strip()
        password = str(form.get("password", ""))
        submitted = str(form.get(CSRF_FIELD, ""))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, submitted):
        return _login_form(
            request, email=email, error="The sign-in form expired. Please try again.", status_code=403
        )
    by_email: SignInThrottle = request.app.state.sign_ins_by_email
    by_address: SignInThrottle = request.app.state.sign_ins_by_address
    email_key = email.lower()
    address_key = request.client.host if request.client else "unknown"
    wait = max(by_email.retry_after(email_key) or 0, by_address.retry_after(address_key) or 0)
    if wait:
        minutes = math.ceil(wait / 60)
        message = f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
        return _login_form(request, email=email, error=message, status_code=429)
    database: Database = request.app.state.database
    try:
        async with database.transaction() as session:
            token = await service.sign_in(session, email, password)
    except errors.TesseraError as error:
        by_email.failed(email_key)
        by_address.failed(address_key)
        return _login_form(request, email=email, error=error.text, status_code=401)
    # Only the account's count: one good password must not clear an address's guesses at others.
    by_email.succeeded(email_key)
    response = redirect(_safe_next(str(form.get("next", ""))))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(service.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        path="/admin",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/admin/login")
    return response


@router.post("/admin/logout", include_in_schema=False)
async def logout(page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.transaction() as session:
        await service.sign_out(session, page.admin.session_token)
    response = redirect("/admin/login?signed_out=1")
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response
