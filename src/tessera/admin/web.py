"""What every admin page shares: templates, the signed-in admin, CSRF checks and error pages."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import FormData, UploadFile

from tessera.admin import service
from tessera.admin.service import SignedIn
from tessera.config import Settings
from tessera.db import Database
from tessera.routing import MAX_ID_DIGITS

HERE = Path(__file__).parent
SESSION_COOKIE = "tessera_admin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

templates = Jinja2Templates(directory=HERE / "templates")


class _IdConvertor(Convertor[int]):
    """An id in an admin URL: digits that fit a BIGINT. Anything else is a 404 page, not a
    database overflow."""

    regex = f"[0-9]{{1,{MAX_ID_DIGITS}}}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("tessera_id", _IdConvertor())


def _number(value: int | float | Decimal | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return f"{value:,.2f}".replace(",", "\u202f")
    return f"{value:,}".replace(",", "\u202f")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "—"


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


templates.env.filters["number"] = _number
templates.env.filters["when"] = _when
templates.env.globals["percent"] = _percent


class SignInRequired(Exception):
    """No valid session: the browser is sent to the sign-in page, and back here afterwards."""


class AdminNotFound(Exception):
    """The thing does not exist, or belongs to another partner: both look the same from outside."""


class CsrfRejected(Exception):
    pass


@contextlib.contextmanager
def missing_is_404(*missing: type[Exception]) -> Iterator[None]:
    """Turns a service's "no such thing" errors into the admin's 404 page: for ids of another
    partner they are what the service answers too."""
    try:
        yield
    except missing:
        raise AdminNotFound() from None


@dataclass(frozen=True, slots=True)
class Page:
    """One request of a signed-in admin."""

    request: Request
    admin: SignedIn
    csrf_token: str

    @property
    def partner_id(self) -> int:
        return self.admin.partner_id

    @property
    def database(self) -> Database:
        database: Database = self.request.app.state.database
        return database

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, template, status_code, page=self, admin=self.admin, **context)


#: Admin pages hold customer data and one-time secrets: never cached, never framed by another site.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("page", None)
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    return response


async def signed_in_page(request: Request) -> AsyncIterator[Page]:
    """The dependency of every page behind sign-in; on a POST it also checks the CSRF token.

    A POST's form (with any uploaded file Starlette spooled to disk) is closed once the page is
    done with it, refused or not."""
    try:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise SignInRequired()
        database: Database = request.app.state.database
        async with database.reading() as session:
            admin = await service.signed_in(session, token)
        if admin is None:
            raise SignInRequired()
        settings: Settings = request.app.state.settings
        secret = settings.secret_key
        if request.method not in ("GET", "HEAD"):
            submitted = request.headers.get(CSRF_HEADER)
            if submitted is None:
                form = await request.form()
                value = form.get(CSRF_FIELD)
                submitted = value if isinstance(value, str) else None
            if not service.csrf_matches(secret, token, submitted):
                raise CsrfRejected()
        yield Page(request, admin, service.csrf_token(secret, token))
    finally:
        await request.close()


def text_fields(form: FormData) -> dict[str, str]:
    """A form's text fields, kept to fill the form again after an error."""
    return {key: value.strip() for key, value in form.items() if isinstance(value, str) and key != CSRF_FIELD}


def uploaded_file(form: FormData, name: str) -> UploadFile | None:
    value = form.get(name)
    if isinstance(value, UploadFile) and value.filename:
        return value
    return None


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def error_page(request: Request, status_code: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", status_code, title=title, detail=detail)


def is_admin_path(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")
