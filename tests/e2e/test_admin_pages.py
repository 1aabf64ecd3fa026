"""The admin UI at /admin over HTTP, without a browser.

Sign-in and sessions, CSRF, partner isolation, uploads, group settings, look-ups, messages,
workflows, deliveries, codes in campaigns, settings, and the `tessera admins create` command.
Pages are read into a small element tree (the standard library's HTMLParser), so assertions name
elements by id, attribute or form field rather than by the exact markup. Data is made the way
clients make it: through the loyalty face (``LoyaltyClient``) and the messaging face
(``EsputnikClient``); the delivery worker sends through a real SMTP server (``Inbox``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from conftest import LoyaltyClient, login
from esputnik_client import EsputnikClient, new_key
from tessera.admin import service as admin_service
from tessera.admin.models import AdminSession, AdminUser
from tessera.app import create_app
from tessera.certificates.models import Certificate, CertificateGroup
from tessera.clock import utcnow
from tessera.config import Settings
from tessera.customers.models import Customer
from tessera.db import Database
from tessera.messaging.models import Delivery
from tessera.messaging.worker import Worker
from tessera.models import Base
from tessera.promocodes.models import Promocode
from tessera.tenancy import service as tenancy
from tessera.tenancy.models import ApiKey

SESSION_COOKIE = "tessera_admin"
PASSWORD = "correct horse battery"
OUR_ADMIN = "admin@main-street.example"
THEIR_ADMIN = "admin@another-chain.example"
OUR_SHOP = "Main street shop"  # the `department` fixture's department, and so its partner's name
PHONE = "79001234567"
TESSERA = Path(sys.executable).parent / "tessera"

# ------------------------------------------------------------------------------------------------
# Reading pages


VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


@dataclass
class Element:
    """One element of a served page, with just enough querying for these tests."""

    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]

    def iter(self) -> Iterator[Element]:
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants by tag and attributes: ``data_count=`` is ``data-count``, ``class_=`` one class."""
        wanted = {name.rstrip("_").replace("_", "-"): value for name, value in attrs.items()}
        return [
            element
            for element in self.iter()
            if (tag is None or element.tag == tag)
            and all(element._has(name, value) for name, value in wanted.items())
        ]

    def find(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag or '*'} {attrs}> in the page"
        return found[0]

    def has(self, tag: str | None = None, **attrs: str) -> bool:
        return bool(self.find_all(tag, **attrs))

    def _has(self, name: str, value: str) -> bool:
        if name == "class":
            return value in self.attrs.get("class", "").split()
        return self.attrs.get(name) == value

    @property
    def raw_text(self) -> str:
        return "".join(c if isinstance(c, str) else c.raw_text for c in self.children)

    @property
    def text(self) -> str:
        """The text with runs of white space (thousands separators too) made one space."""
        return " ".join(self.raw_text.split())

    def fields(self) -> dict[str, str]:
        """A form's values as a browser would send them: unticked checkboxes are absent."""
        values: dict[str, str] = {}
        for element in self.iter():
            name = element.attrs.get("name")
            if not name or element.tag not in ("input", "textarea", "select"):
                continue
            kind = element.attrs.get("type", "text")
            if element.tag == "textarea":
                values[name] = element.raw_text
            elif element.tag == "select":
                options = element.find_all("option")
                chosen = next((o for o in options if "selected" in o.attrs), options[0] if options else None)
                if chosen is not None:
                    values[name] = chosen.attrs.get("value", chosen.text)
            elif kind == "checkbox":
                if "checked" in element.attrs:
                    values[name] = element.attrs.get("value", "on")
            elif kind != "file":
                values[name] = element.attrs.get("value", "")
        return values

    def facts(self) -> dict[str, str]:
        """A ``<dl>``'s terms and their descriptions."""
        terms = [dt.text for dt in self.find_all("dt")]
        return dict(zip(terms, [dd.text for dd in self.find_all("dd")], strict=True))

    def rows(self) -> list[list[str]]:
        """A table's body rows, as the text of each cell."""
        return [[cell.text for cell in row.find_all("td")] for row in self.find("tbody").find_all("tr")]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value if value is not None else "" for name, value in attrs})
        self.open[-1].children.append(element)
        if tag not in VOID_TAGS:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open[-1].children.append(Element(tag, {n: v if v is not None else "" for n, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.open) - 1, 0, -1):
            if self.open[depth].tag == tag:
                del self.open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def html(response: httpx.Response) -> Element:
    builder = _TreeBuilder()
    builder.feed(response.text)
    builder.close()
    return builder.root


def alert(response: httpx.Response) -> str:
    """The error's message as the page shows it (``role="alert"``), without its details."""
    return html(response).find(role="alert").find("strong").text


def alert_details(response: httpx.Response) -> str:
    """Everything the error box says: the message, its status code, the line or the duplicates."""
    return html(response).find(role="alert").text


def history(page: Element) -> list[str]:
    """What a code's history says happened, oldest first, without the times."""
    return [item.find("span").text for item in page.find(id="history").find_all("li")]


def number(element: Element) -> int:
    """A count as the pages print it: ``1 000`` with a narrow no-break space."""
    return int("".join(element.text.split()))


def redirected_to(response: httpx.Response, pattern: str) -> re.Match[str]:
    assert response.status_code == 303, (response.status_code, response.text[:800])
    found = re.fullmatch(pattern, response.headers["location"])
    assert found, response.headers["location"]
    return found


# ------------------------------------------------------------------------------------------------
# A signed-in browser


class AdminBrowser:
    """One browser of one admin: its cookie jar holds the session (path=/admin), and it posts
    forms with the CSRF token from the ``<meta name="csrf-token">`` of the pages it is served."""

    def __init__(self, http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> None:
        self.http = http
        self.email = email
        self.password = password
        self.csrf_token = ""

    async def open_sign_in(self, **params: str) -> tuple[httpx.Response, str]:
        """GET /admin/login: the form, and the token it carries (matched by the login cookie)."""
        response = await self.http.get("/admin/login", params=params or None)
        assert response.status_code == 200
        return response, html(response).find("input", name="csrf_token")["value"]

    async def submit_sign_in(
        self, *, email: str | None = None, password: str | None = None, next_path: str = "/admin/"
    ) -> httpx.Response:
        _, token = await self.open_sign_in()
        return await self.http.post(
            "/admin/login",
            data={
                "email": self.email if email is None else email,
                "password": self.password if password is None else password,
                "csrf_token": token,
                "next": next_path,
            },
        )

    async def sign_in(self) -> AdminBrowser:
        redirected_to(await self.submit_sign_in(), "/admin/")
        self.csrf_token = html(await self.get("/admin/")).find("meta", name="csrf-token")["content"]
        return self

    @property
    def session_token(self) -> str | None:
        return self.http.cookies.get(SESSION_COOKIE)

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(path, params=params or None)  # {} would drop the path's own query

    async def page(self, path: str, **params: str) -> Element:
        response = await self.get(path, **params)
        assert response.status_code == 200, (response.status_code, response.text[:800])
        return html(response)

    async def post(
        self, path: str, data: dict[str, str] | None = None, files: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Submits a form as the page would: with the page's CSRF token."""
        return await self.post_raw(path, {**(data or {}), "csrf_token": self.csrf_token}, files)

    async def post_raw(
        self, path: str, data: dict[str, str], files: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Submits exactly these fields: no token is added."""
        return await self.http.post(path, data=data, files=files)

    async def preview(
        self, templates: dict[str, str], sample: str, token: str | None = None
    ) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf_token if token is None else token}
        return await self.http.post(
            "/admin/messages/preview", json={"templates": templates, "sample": sample}, headers=headers
        )


async def add_admin(database: Database, partner_id: int, email: str, password: str = PASSWORD) -> int:
    async with database.transaction() as session:
        return await admin_service.create_admin(session, partner_id, email, password)


# ------------------------------------------------------------------------------------------------
# Data, made through the APIs


def lines(*numbers: str) -> bytes:
    return "".join(f"{n}\n" for n in numbers).encode()


def text_file(*numbers: str, name: str = "codes.txt") -> dict[str, Any]:
    return {"file": (name, lines(*numbers), "text/plain")}


async def ok(loyalty: LoyaltyClient, path: str, files: dict[str, Any] | None = None, **params: Any) -> Any:
    body = await loyalty.call(path, files=files, **params)
    assert body["status"] == "ok", body
    return body


async def one(database: Database, query: Any) -> Any:
    async with database.reading() as session:
        return await session.scalar(query)


async def count(database: Database, model: type[Base]) -> int:
    return int(await one(database, select(func.count()).select_from(model)))


async def database_rows(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: equal before and after means the request changed nothing."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with database.reading() as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(select(table).order_by(*table.primary_key.columns))
            rows[table.name] = [tuple(row) for row in result]
    return rows


EMAIL_MESSAGE = {
    "name": "Welcome code",
    "from": "shop@example.com",
    "subject": "Your code, $!data.get('name')",
    "htmlText": "<p>Your code: $!data.get('code')</p>",
    "plainText": "Your code: $!data.get('code')",
}
SMS_MESSAGE = {"name": "Code by SMS", "from": "Shop", "text": "Code $!data.get('code')"}


async def api_message(api: EsputnikClient, channel: str = "email", **fields: str) -> int:
    body = {**(EMAIL_MESSAGE if channel == "email" else SMS_MESSAGE), **fields}
    message_id: int = (await api.ok("POST", f"/api/v1/messages/{channel}", body))["id"]
    return message_id


async def smartsend(api: EsputnikClient, message_id: int, *locators: str, email: bool = True) -> None:
    body = {"recipients": [{"locator": locator} for locator in locators], "email": email}
    answer = await api.ok("POST", f"/api/v1/message/{message_id}/smartsend", body)
    assert [r["status"] for r in answer["results"]] == ["OK"] * len(locators), answer


@dataclass(frozen=True)
class Partner:
    """One partner with a bit of everything, each made the way the APIs' clients make it."""

    department: tenancy.NewDepartment
    loyalty: LoyaltyClient
    api: EsputnikClient
    prefix: str
    phone: str
    recipient: str
    group_id: int
    code_id: int
    certificate_group_id: int
    certificate_id: int
    customer_id: int
    message_id: int
    workflow_id: int
    api_key_id: int

    @property
    def partner_id(self) -> int:
        return self.department.partner_id

    @property
    def department_id(self) -> int:
        return self.department.store_department_id

    @property
    def group_name(self) -> str:
        return f"{self.prefix} codes"

    @property
    def code_number(self) -> str:
        return f"{self.prefix}-CODE-1"

    @property
    def certificate_group_name(self) -> str:
        return f"{self.prefix} gifts"

    @property
    def certificate_number(self) -> str:
        return f"{self.prefix}-GIFT-1"


async def stocked_partner(
    http: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment, prefix: str, phone: str
) -> Partner:
    loyalty = LoyaltyClient(http, department, await login(http, department))
    partner_id = department.partner_id
    codes = await ok(
        loyalty,
        "promocodes/numbers/add",
        files=text_file(f"{prefix}-CODE-1", f"{prefix}-CODE-2"),
        name=f"{prefix} codes",
        type="activation",
    )
    await ok(loyalty, "users/add", user_phone=phone)
    await ok(
        loyalty,
        "promocodes/activate",
        user_phone=phone,
        group_name=f"{prefix} codes",
        number=f"{prefix}-CODE-1",
    )
    gifts = await ok(
        loyalty,
        "coupons/numbers/add",
        files=text_file(f"{prefix}-GIFT-1", f"{prefix}-GIFT-2"),
        name=f"{prefix} gifts",
        value="500",
        target_dep_id=department.store_department_id,
        pin_code=department.pin_code,
    )
    api = EsputnikClient(http, partner_id, await new_key(database, partner_id))
    message_id = await api_message(api, name=f"{prefix} welcome")
    workflow = await api.ok(
        "POST",
        "/api/v1/workflows",
        {
            "name": f"{prefix} welcome",
            "trigger": {"event": "promo_signup"},
            "steps": [{"type": "send", "message_id": message_id}],
        },
    )
    recipient = f"{prefix.lower()}-customer@example.com"
    await smartsend(api, message_id, recipient)
    return Partner(
        department=department,
        loyalty=loyalty,
        api=api,
        prefix=prefix,
        phone=phone,
        recipient=recipient,
        group_id=codes["group"]["id"],
        code_id=await one(database, select(Promocode.id).where(Promocode.number == f"{prefix}-CODE-1")),
        certificate_group_id=gifts["group"]["id"],
        certificate_id=await one(
            database, select(Certificate.id).where(Certificate.number == f"{prefix}-GIFT-1")
        ),
        customer_id=await one(
            database, select(Customer.id).where(Customer.partner_id == partner_id, Customer.phone == phone)
        ),
        message_id=message_id,
        workflow_id=workflow["id"],
        api_key_id=await one(database, select(ApiKey.id).where(ApiKey.partner_id == partner_id)),
    )


# ------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
async def admin(
    client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
) -> AdminBrowser:
    """The admin of the `department` fixture's partner, signed in on the `client` fixture."""
    await add_admin(database, department.partner_id, OUR_ADMIN)
    return await AdminBrowser(client, OUR_ADMIN).sign_in()


@pytest.fixture
async def second_http(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser (a cookie jar of its own) on another process of the service, same database."""
    transport = httpx.ASGITransport(app=create_app(settings, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http:
        yield http


@pytest.fixture
async def api(
    client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
) -> EsputnikClient:
    return EsputnikClient(client, department.partner_id, await new_key(database, department.partner_id))


@pytest.fixture
async def ours(client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment) -> Partner:
    return await stocked_partner(client, database, department, "OUR", PHONE)


@pytest.fixture
async def theirs(client: httpx.AsyncClient, database: Database) -> Partner:
    async with database.transaction() as session:
        department = await tenancy.create_department(session, "Another chain")
    return await stocked_partner(client, database, department, "THEIR", "79007654321")


@pytest.fixture
async def their_admin(second_http: httpx.AsyncClient, database: Database, theirs: Partner) -> AdminBrowser:
    await add_admin(database, theirs.partner_id, THEIR_ADMIN)
    return await AdminBrowser(second_http, THEIR_ADMIN).sign_in()


# ------------------------------------------------------------------------------------------------
# Sign-in and sign-out


#: Where ``next`` must not lead after signing in.
OFF_SITE = [
    "https://evil.example/",
    "//evil.example/",
    "//evil.example/admin/",
    "/\\evil.example",
    "/admin/\\\\evil.example",
    "javascript:alert(1)",
    "/api/v1/messages",
    "",
]
#: Pages of the admin UI, some with a query.
PAGES = [
    "/admin/",
    "/admin/upload?kind=certificates",
    "/admin/lookup?q=A%201",
    "/admin/promocodes/groups/1",
    "/admin/codes/1",
    "/admin/customers/1",
    "/admin/messages/new?channel=sms",
    "/admin/workflows",
    "/admin/deliveries?status=queued",
    "/admin/settings",
]


class TestSignIn:
    async def test_the_right_password_redirects_to_next_and_the_page_names_the_partner(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)
        browser = AdminBrowser(client, OUR_ADMIN)

        response = await browser.submit_sign_in(next_path="/admin/settings")

        redirected_to(response, "/admin/settings")
        dashboard = await browser.page("/admin/")
        assert dashboard.find("span", title=f"partner {department.partner_id}").text == OUR_SHOP
        assert OUR_ADMIN in dashboard.find(class_="who").text

    async def test_the_session_cookie_is_http_only_lax_and_scoped_to_the_admin_ui(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)

        response = await AdminBrowser(client, OUR_ADMIN).submit_sign_in()

        [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")]
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path=/admin", "samesite=lax"} <= attributes

    async def test_the_email_is_matched_whatever_its_case(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)

        response = await AdminBrowser(client, OUR_ADMIN).submit_sign_in(email=f"  {OUR_ADMIN.upper()} ")

        redirected_to(response, "/admin/")

    @pytest.mark.parametrize(
        ("email", "password"),
        [
            pytest.param(OUR_ADMIN, "not the password", id="wrong-password"),
            pytest.param("nobody@example.com", PASSWORD, id="unknown-email"),
        ],
    )
    async def test_a_wrong_password_and_an_unknown_email_get_the_same_401(
        self,
        client: httpx.AsyncClient,
        database: Database,
        department: tenancy.NewDepartment,
        email: str,
        password: str,
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)

        response = await AdminBrowser(client, OUR_ADMIN).submit_sign_in(email=email, password=password)

        assert response.status_code == 401
        assert alert(response) == "Wrong email or password"
        assert html(response).find("input", name="email")["value"] == email
        assert client.cookies.get(SESSION_COOKIE) is None
        assert await count(database, AdminSession) == 0

    async def test_after_ten_failures_even_the_right_password_waits(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)
        await add_admin(database, department.partner_id, THEIR_ADMIN)
        guesser = AdminBrowser(client, OUR_ADMIN)
        for _ in range(10):
            assert (await guesser.submit_sign_in(password="guess")).status_code == 401

        response = await guesser.submit_sign_in()

        assert response.status_code == 429
        assert alert(response) == "Too many failed sign-ins. Try again in 15 minutes."
        assert await count(database, AdminSession) == 0
        # Another account from the same address is not locked out by them.
        redirected_to(await AdminBrowser(client, THEIR_ADMIN).submit_sign_in(), "/admin/")

    async def test_signing_in_clears_the_accounts_failures(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)
        browser = AdminBrowser(client, OUR_ADMIN)
        for _ in range(9):
            assert (await browser.submit_sign_in(password="guess")).status_code == 401
        redirected_to(await browser.submit_sign_in(), "/admin/")
        for _ in range(9):
            assert (await browser.submit_sign_in(password="guess")).status_code == 401

        redirected_to(await browser.submit_sign_in(), "/admin/")

    async def test_a_form_posted_without_the_login_cookie_is_403(
        self,
        client: httpx.AsyncClient,
        second_http: httpx.AsyncClient,
        database: Database,
        department: tenancy.NewDepartment,
    ) -> None:
        """Another site can post the form, but not with the cookie the form was served with."""
        await add_admin(database, department.partner_id, OUR_ADMIN)
        _, token_served_elsewhere = await AdminBrowser(second_http, OUR_ADMIN).open_sign_in()

        response = await client.post(
            "/admin/login",
            data={
                "email": OUR_ADMIN,
                "password": PASSWORD,
                "csrf_token": token_served_elsewhere,
                "next": "/",
            },
        )

        assert response.status_code == 403
        assert alert(response) == "The sign-in form expired. Please try again."
        assert await count(database, AdminSession) == 0

    @pytest.mark.parametrize("token", ["", "forged-token"])
    async def test_a_token_not_matching_the_login_cookie_is_403(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment, token: str
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)
        await AdminBrowser(client, OUR_ADMIN).open_sign_in()  # the browser has its login cookie

        response = await client.post(
            "/admin/login", data={"email": OUR_ADMIN, "password": PASSWORD, "csrf_token": token}
        )

        assert response.status_code == 403
        assert html(response).find("input", name="email")["value"] == OUR_ADMIN
        assert await count(database, AdminSession) == 0

    async def test_a_next_outside_the_admin_ui_goes_to_the_dashboard(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)
        browser = AdminBrowser(client, OUR_ADMIN)

        sent_to = {
            next_path: (await browser.submit_sign_in(next_path=next_path)).headers["location"]
            for next_path in OFF_SITE
        }

        assert sent_to == dict.fromkeys(OFF_SITE, "/admin/")

    async def test_the_form_does_not_carry_an_off_site_next(self, client: httpx.AsyncClient) -> None:
        response, _ = await AdminBrowser(client, OUR_ADMIN).open_sign_in(next="//evil.example/")

        assert html(response).find("input", name="next")["value"] == "/admin/"

    async def test_a_page_without_a_session_sends_the_browser_to_sign_in(
        self, client: httpx.AsyncClient
    ) -> None:
        responses = {path: await client.get(path) for path in PAGES}

        assert {path: (r.status_code, r.headers.get("location")) for path, r in responses.items()} == {
            path: (303, f"/admin/login?next={quote(path, safe='')}") for path in PAGES
        }

    async def test_an_unknown_session_cookie_is_sent_to_sign_in(self, client: httpx.AsyncClient) -> None:
        client.cookies.set(SESSION_COOKIE, "made-up-token", domain="tessera.test", path="/admin")

        response = await client.get("/admin/settings")

        redirected_to(response, re.escape("/admin/login?next=%2Fadmin%2Fsettings"))

    async def test_signing_in_from_that_redirect_comes_back_to_the_page(
        self, client: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)
        browser = AdminBrowser(client, OUR_ADMIN)
        sent_to = (await client.get("/admin/lookup?q=A1")).headers["location"]
        form, token = await browser.open_sign_in(**dict(parse_qsl(urlsplit(sent_to).query)))
        fields = {**html(form).find("form").fields(), "email": OUR_ADMIN, "password": PASSWORD}

        response = await client.post("/admin/login", data={**fields, "csrf_token": token})

        redirected_to(response, re.escape("/admin/lookup?q=A1"))


class TestSignOut:
    async def test_the_old_session_cookie_stops_working_even_when_replayed(
        self, admin: AdminBrowser, second_http: httpx.AsyncClient, database: Database
    ) -> None:
        token = admin.session_token
        assert token
        second_http.cookies.set(SESSION_COOKIE, token, domain="tessera.test", path="/admin")
        assert (await second_http.get("/admin/")).status_code == 200  # the replay works while signed in

        response = await admin.post("/admin/logout")

        redirected_to(response, re.escape("/admin/login?signed_out=1"))
        assert admin.session_token is None
        replayed = await second_http.get("/admin/")
        redirected_to(replayed, re.escape("/admin/login?next=%2Fadmin%2F"))
        assert await count(database, AdminSession) == 0

    async def test_the_sign_in_page_then_says_so(self, admin: AdminBrowser) -> None:
        response = await admin.post("/admin/logout")

        page = await admin.page(response.headers["location"])

        assert page.find(class_="notice").text == "You are signed out."

    async def test_other_sessions_of_the_admin_stay_signed_in(
        self, admin: AdminBrowser, second_http: httpx.AsyncClient
    ) -> None:
        elsewhere = await AdminBrowser(second_http, OUR_ADMIN).sign_in()

        await admin.post("/admin/logout")

        assert (await elsewhere.get("/admin/")).status_code == 200


# ------------------------------------------------------------------------------------------------
# CSRF


@dataclass(frozen=True)
class FormPost:
    path: str
    data: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] | None = None


def workflow_form(name: str, message_id: int) -> dict[str, str]:
    return {
        "name": name,
        "enabled": "on",
        "trigger_kind": "event",
        "trigger_value": "promo_signup",
        "steps-0-type": "send",
        "steps-0-message_id": str(message_id),
    }


#: Every POST that changes something, with a form that would change it given the right token.
POSTS: dict[str, Callable[[Partner], FormPost]] = {
    "upload-promocodes": lambda p: FormPost(
        "/admin/upload/promocodes", {"group": "Autumn"}, text_file("AUT-1", "AUT-2")
    ),
    "upload-certificates": lambda p: FormPost(
        "/admin/upload/certificates",
        {"group": "Gift 100", "value": "100", "department_id": str(p.department_id)},
        text_file("GIFT-100-1"),
    ),
    "edit-group": lambda p: FormPost(
        f"/admin/promocodes/groups/{p.group_id}", {"name": "Renamed", "discount_type": "none"}
    ),
    "new-message": lambda p: FormPost(
        "/admin/messages/new", {"channel": "sms", "name": "New", "from": "Shop", "text": "Hi"}
    ),
    "save-message": lambda p: FormPost(
        f"/admin/messages/{p.message_id}", {"channel": "email", **EMAIL_MESSAGE, "name": "Renamed"}
    ),
    "delete-message": lambda p: FormPost(f"/admin/messages/{p.message_id}/delete"),
    "new-workflow": lambda p: FormPost("/admin/workflows/new", workflow_form("New", p.message_id)),
    "save-workflow": lambda p: FormPost(
        f"/admin/workflows/{p.workflow_id}", workflow_form("Renamed", p.message_id)
    ),
    "delete-workflow": lambda p: FormPost(f"/admin/workflows/{p.workflow_id}/delete"),
    "new-department": lambda p: FormPost("/admin/settings/departments", {"name": "Online shop"}),
    "add-pin-code": lambda p: FormPost(f"/admin/settings/departments/{p.department_id}/pins"),
    "new-api-key": lambda p: FormPost("/admin/settings/api-keys"),
    "revoke-api-key": lambda p: FormPost(f"/admin/settings/api-keys/{p.api_key_id}/revoke"),
    "sign-out": lambda p: FormPost("/admin/logout"),
}
#: Those that name one thing by its id: another partner's is out of reach.
ID_ADDRESSED_POSTS = [
    "edit-group",
    "save-message",
    "delete-message",
    "save-workflow",
    "delete-workflow",
    "add-pin-code",
    "revoke-api-key",
]


class TestCsrf:
    @pytest.mark.parametrize("route", list(POSTS))
    async def test_only_the_pages_token_lets_a_post_through(
        self, admin: AdminBrowser, ours: Partner, database: Database, route: str
    ) -> None:
        post = POSTS[route](ours)
        before = await database_rows(database)

        missing = await admin.post_raw(post.path, post.data, post.files)
        wrong = await admin.post_raw(post.path, {**post.data, "csrf_token": "0" * 64}, post.files)

        assert (missing.status_code, wrong.status_code) == (403, 403)
        assert html(wrong).find("h1").text == "This form has expired"
        assert await database_rows(database) == before
        # The control: the very same form, with the page's token, is accepted and changes something.
        accepted = await admin.post(post.path, post.data, post.files)
        assert accepted.status_code in (200, 303), accepted.text[:800]
        assert await database_rows(database) != before

    async def test_the_token_of_another_session_is_refused(
        self, admin: AdminBrowser, second_http: httpx.AsyncClient, ours: Partner, database: Database
    ) -> None:
        elsewhere = await AdminBrowser(second_http, OUR_ADMIN).sign_in()
        assert elsewhere.csrf_token != admin.csrf_token
        before = await database_rows(database)

        response = await admin.post_raw(
            f"/admin/messages/{ours.message_id}/delete", {"csrf_token": elsewhere.csrf_token}
        )

        assert response.status_code == 403
        assert await database_rows(database) == before

    @pytest.mark.parametrize("token", ["", "0" * 64], ids=["empty-header", "wrong-header"])
    async def test_the_preview_needs_the_token_in_its_header(self, admin: AdminBrowser, token: str) -> None:
        response = await admin.preview({"text": "Hi"}, "{}", token=token)

        assert response.status_code == 403

    async def test_the_preview_without_the_header_is_403(self, admin: AdminBrowser) -> None:
        response = await admin.http.post(
            "/admin/messages/preview", json={"templates": {"text": "Hi"}, "sample": "{}"}
        )

        assert response.status_code == 403

    async def test_a_post_without_a_session_goes_to_sign_in_and_changes_nothing(
        self, client: httpx.AsyncClient, ours: Partner, database: Database
    ) -> None:
        before = await database_rows(database)

        response = await client.post(f"/admin/messages/{ours.message_id}/delete")

        redirected_to(response, re.escape("/admin/login?next=%2Fadmin%2F"))
        assert await database_rows(database) == before


# ------------------------------------------------------------------------------------------------
# Partner isolation

THEIR_PAGES: dict[str, Callable[[Partner], str]] = {
    "promocode-group": lambda p: f"/admin/promocodes/groups/{p.group_id}",
    "certificate-group": lambda p: f"/admin/certificates/groups/{p.certificate_group_id}",
    "code": lambda p: f"/admin/codes/{p.code_id}",
    "certificate": lambda p: f"/admin/certificates/{p.certificate_id}",
    "customer": lambda p: f"/admin/customers/{p.customer_id}",
    "message": lambda p: f"/admin/messages/{p.message_id}",
    "workflow": lambda p: f"/admin/workflows/{p.workflow_id}",
}


class TestPartnerIsolation:
    async def test_every_page_of_another_partners_things_is_404(
        self, admin: AdminBrowser, ours: Partner, theirs: Partner, their_admin: AdminBrowser
    ) -> None:
        paths = {name: path_of(theirs) for name, path_of in THEIR_PAGES.items()}
        assert {
            name: (await their_admin.get(path)).status_code for name, path in paths.items()
        } == dict.fromkeys(paths, 200)  # the ids are real

        responses = {name: await admin.get(path) for name, path in paths.items()}

        assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(paths, 404)
        for name, response in responses.items():
            assert "belongs to another account" in html(response).text, name
            assert theirs.prefix not in response.text, name

    async def test_another_partners_things_cannot_be_changed(
        self, admin: AdminBrowser, ours: Partner, theirs: Partner, database: Database
    ) -> None:
        before = await database_rows(database)

        statuses = {}
        for route in ID_ADDRESSED_POSTS:
            post = POSTS[route](theirs)
            statuses[route] = (await admin.post(post.path, post.data, post.files)).status_code

        assert statuses == dict.fromkeys(ID_ADDRESSED_POSTS, 404)
        assert await database_rows(database) == before

    async def test_looking_up_another_partners_numbers_finds_nothing(
        self, admin: AdminBrowser, ours: Partner, theirs: Partner, their_admin: AdminBrowser
    ) -> None:
        queries = [theirs.code_number, theirs.certificate_number, theirs.phone]
        assert [(await their_admin.page("/admin/lookup", q=q)).has(class_="empty") for q in queries] == [
            False
        ] * len(queries)

        pages = [await admin.page("/admin/lookup", q=q) for q in queries]

        assert [page.find(class_="empty").text for page in pages] == [
            f"Nothing matches {q}. Codes and certificates are matched exactly; "
            "phone numbers may be typed with +, spaces or dashes."
            for q in queries
        ]

    async def test_the_dashboard_lists_only_the_partners_own_groups(
        self, admin: AdminBrowser, ours: Partner, theirs: Partner
    ) -> None:
        page = await admin.page("/admin/")

        assert [row["data-group"] for row in page.find(id="promocode-groups").find_all("tr")[1:]] == [
            ours.group_name
        ]
        assert [row[0] for row in page.find(id="certificate-groups").rows()] == [ours.certificate_group_name]

    async def test_the_deliveries_log_lists_only_the_partners_own_deliveries(
        self, admin: AdminBrowser, ours: Partner, theirs: Partner, their_admin: AdminBrowser
    ) -> None:
        mine = (await admin.page("/admin/deliveries")).find(id="deliveries").rows()
        their = (await their_admin.page("/admin/deliveries")).find(id="deliveries").rows()

        assert [row[1] for row in mine] == [f"{ours.recipient} email"]
        assert [row[1] for row in their] == [f"{theirs.recipient} email"]

    async def test_the_upload_form_offers_only_the_partners_own_departments(
        self, admin: AdminBrowser, ours: Partner, theirs: Partner
    ) -> None:
        page = await admin.page("/admin/upload", kind="certificates")

        options = page.find("select", name="department_id").find_all("option")
        assert [o["value"] for o in options] == [str(ours.department_id)]


# ------------------------------------------------------------------------------------------------
# Uploads


class TestUploads:
    async def test_a_thousand_line_file_makes_a_group_of_a_thousand(
        self, admin: AdminBrowser, loyalty: LoyaltyClient
    ) -> None:
        numbers = [f"BULK-{i:04d}" for i in range(1000)]

        response = await admin.post("/admin/upload/promocodes", {"group": "Bulk"}, text_file(*numbers))

        group_id = redirected_to(response, r"/admin/promocodes/groups/(\d+)\?imported=1000").group(1)
        group_page = await admin.page(response.headers["location"])
        assert group_page.find(role="status").text == "Imported 1 000 codes into Bulk."
        row = (await admin.page("/admin/")).find("tr", data_group="Bulk")
        assert number(row.find(data_count="total")) == 1000
        assert number(row.find(data_count="unused")) == 1000
        listed = (await ok(loyalty, "promocodes/groups/list"))["groups"]["enabled"]
        assert [(g["id"], g["name"], g["total_count"]) for g in listed] == [(int(group_id), "Bulk", 1000)]

    async def test_codes_added_to_an_existing_group_add_to_its_total(
        self, admin: AdminBrowser, loyalty: LoyaltyClient
    ) -> None:
        await admin.post("/admin/upload/promocodes", {"group": "Spring"}, text_file("SPR-1", "SPR-2"))

        response = await admin.post("/admin/upload/promocodes", {"group": "Spring"}, text_file("SPR-3"))

        redirected_to(response, r"/admin/promocodes/groups/\d+\?imported=1")
        listed = (await ok(loyalty, "promocodes/groups/list"))["groups"]["enabled"]
        assert [(g["name"], g["total_count"]) for g in listed] == [("Spring", 3)]

    async def test_an_activation_multi_use_group_with_an_expiry(
        self, admin: AdminBrowser, loyalty: LoyaltyClient
    ) -> None:
        form = {"group": "Club", "type": "activation", "multi_use": "on", "expires_at": "2099-01-31T12:00"}

        response = await admin.post("/admin/upload/promocodes", form, text_file("CLUB-1"))

        redirected_to(response, r"/admin/promocodes/groups/\d+\?imported=1")
        [group] = (await ok(loyalty, "promocodes/groups/list"))["groups"]["enabled"]
        assert (group["group_type"], group["apply_items_once"]) == (2, False)
        [code] = (await ok(loyalty, "promocodes/info", number="CLUB-1"))["numbers"]
        assert code["expiration_date"].startswith("2099-01-31T12:00:00")

    @pytest.mark.parametrize(
        ("numbers", "detail"),
        [
            pytest.param(["BAD-1", "BAD-2", "BAD-1"], "repeated in the file: BAD-1", id="duplicate-line"),
            pytest.param(["BAD-1", "9" * 129, "BAD-3"], "Line 2: ", id="too-long-number"),
        ],
    )
    async def test_a_bad_file_is_422_with_the_apis_error_and_imports_nothing(
        self, admin: AdminBrowser, loyalty: LoyaltyClient, numbers: list[str], detail: str
    ) -> None:
        response = await admin.post("/admin/upload/promocodes", {"group": "Broken"}, text_file(*numbers))

        assert response.status_code == 422
        refused = await loyalty.call("promocodes/numbers/add", files=text_file(*numbers), name="Broken")
        assert refused["status"] == "error"
        assert alert(response).startswith(refused["message"])
        assert f"({refused['status_code']})" in alert_details(response)
        assert detail in " ".join(alert_details(response).split())
        assert html(response).find("input", name="group")["value"] == "Broken"
        groups = (await ok(loyalty, "promocodes/groups/list"))["groups"]
        assert groups == {"enabled": [], "disabled": []}

    async def test_a_running_import_reports_its_progress_to_the_same_admin_only(
        self, admin: AdminBrowser, second_http: httpx.AsyncClient, database: Database
    ) -> None:
        async with database.transaction() as session:
            elsewhere = await tenancy.create_department(session, "Another chain")
        await add_admin(database, elsewhere.partner_id, THEIR_ADMIN)
        other_admin = await AdminBrowser(second_http, THEIR_ADMIN).sign_in()
        upload_id = "5f0c2a1e-9b7d-4c3e-8a61-0d2f4b6c8e10"
        numbers = [f"BIG-{n:06d}" for n in range(200_000)]
        upload = asyncio.create_task(
            admin.post(
                "/admin/upload/promocodes", {"group": "Big", "upload_id": upload_id}, text_file(*numbers)
            )
        )
        seen: list[dict[str, int]] = []
        while not upload.done():
            polled = await admin.get("/admin/upload/progress", id=upload_id)
            if polled.status_code == 200:
                seen.append(polled.json())
                assert (await other_admin.get("/admin/upload/progress", id=upload_id)).status_code == 404
            await asyncio.sleep(0.005)
        redirected_to(await upload, r"/admin/promocodes/groups/\d+\?imported=200000")

        assert any(0 < p["done"] <= p["total"] for p in seen), seen
        assert [p["done"] for p in seen] == sorted(p["done"] for p in seen)
        assert (await admin.get("/admin/upload/progress", id=upload_id)).status_code == 404

    async def test_a_bad_file_for_an_existing_group_leaves_its_codes_as_they_were(
        self, admin: AdminBrowser, loyalty: LoyaltyClient
    ) -> None:
        await admin.post("/admin/upload/promocodes", {"group": "Spring"}, text_file("SPR-1", "SPR-2"))

        response = await admin.post(
            "/admin/upload/promocodes", {"group": "Spring"}, text_file("SPR-3", "SPR-3")
        )

        assert response.status_code == 422
        [group] = (await ok(loyalty, "promocodes/groups/list"))["groups"]["enabled"]
        assert group["total_count"] == 2

    async def test_certificates_upload_to_a_department_of_the_partner(
        self, admin: AdminBrowser, loyalty: LoyaltyClient, department: tenancy.NewDepartment
    ) -> None:
        form = {"group": "Gift 500", "value": "500", "department_id": str(department.store_department_id)}

        response = await admin.post(
            "/admin/upload/certificates", form, text_file("GIFT-1", "GIFT-2", "GIFT-3")
        )

        redirected_to(response, r"/admin/certificates/groups/\d+\?imported=3")
        page = await admin.page(response.headers["location"])
        assert page.find(role="status").text == "Imported 3 certificates into Gift 500."
        listed = (await ok(loyalty, "coupons/groups/list"))["groups"]
        assert [(g["name"], g["value"], g["total_count"], g["dep_id"]) for g in listed] == [
            ("Gift 500", "500", 3, department.store_department_id)
        ]

    async def test_certificates_upload_to_another_partners_department_fails(
        self, admin: AdminBrowser, database: Database
    ) -> None:
        async with database.transaction() as session:
            elsewhere = await tenancy.create_department(session, "Another chain")
        form = {"group": "Stolen", "value": "500", "department_id": str(elsewhere.store_department_id)}

        response = await admin.post("/admin/upload/certificates", form, text_file("GIFT-1"))

        assert response.status_code == 422
        assert alert(response).startswith("Department not found")
        assert html(response).find("input", name="group")["value"] == "Stolen"
        assert (await count(database, CertificateGroup), await count(database, Certificate)) == (0, 0)

    @pytest.mark.parametrize(
        "files",
        [
            pytest.param(None, id="no-file-field"),
            pytest.param({"file": ("", b"", "application/octet-stream")}, id="no-file-chosen"),
        ],
    )
    @pytest.mark.parametrize("kind", ["promocodes", "certificates"])
    async def test_a_form_without_a_file_is_422_and_creates_nothing(
        self,
        admin: AdminBrowser,
        database: Database,
        department: tenancy.NewDepartment,
        kind: str,
        files: dict[str, Any] | None,
    ) -> None:
        form = {"group": "Empty", "value": "100", "department_id": str(department.store_department_id)}
        before = await database_rows(database)

        response = await admin.post(f"/admin/upload/{kind}", form, files)

        assert response.status_code == 422
        assert alert(response).startswith("Invalid file")
        assert html(response).find("input", name="group")["value"] == "Empty"
        assert await database_rows(database) == before


# ------------------------------------------------------------------------------------------------
# Group settings


async def upload_group(admin: AdminBrowser, name: str, size: int) -> int:
    response = await admin.post(
        "/admin/upload/promocodes", {"group": name}, text_file(*(f"{name}-{i}" for i in range(size)))
    )
    return int(redirected_to(response, rf"/admin/promocodes/groups/(\d+)\?imported={size}").group(1))


GROUP_FORM = {
    "name": "Spring",
    "enabled": "on",
    "low_stock_warning": "",
    "low_stock_alarm": "",
    "discount_type": "none",
    "discount_value": "",
    "skus": "",
    "min_cart_total": "",
}


class TestGroupSettings:
    async def test_name_thresholds_and_a_percent_action_are_saved_and_shown(
        self, admin: AdminBrowser, loyalty: LoyaltyClient
    ) -> None:
        group_id = await upload_group(admin, "Spring", 10)
        typed = {
            **GROUP_FORM,
            "name": "Spring sale",
            "low_stock_warning": "5",
            "low_stock_alarm": "2",
            "discount_type": "percent",
            "discount_value": "15",
            "skus": "A1, B2",
            "min_cart_total": "100",
        }

        response = await admin.post(f"/admin/promocodes/groups/{group_id}", typed)

        redirected_to(response, rf"/admin/promocodes/groups/{group_id}\?saved=1")
        page = await admin.page(response.headers["location"])
        assert page.find(role="status").text == "Saved."
        assert page.find("h1").text == "Spring sale"
        shown = page.find("form", action=f"/admin/promocodes/groups/{group_id}").fields()
        assert {k: shown[k] for k in ("name", "enabled", "low_stock_warning", "low_stock_alarm")} == {
            "name": "Spring sale",
            "enabled": "on",
            "low_stock_warning": "5",
            "low_stock_alarm": "2",
        }
        assert (shown["discount_type"], shown["skus"]) == ("percent", "A1, B2")
        assert (float(shown["discount_value"]), float(shown["min_cart_total"])) == (15, 100)
        [group] = (await ok(loyalty, "promocodes/groups/list"))["groups"]["enabled"]
        assert (group["name"], group["low_stock_warning"], group["low_stock_alarm"]) == ("Spring sale", 5, 2)
        [action] = group["marketing_actions"]
        assert (action["discount_type"], action["discount_value"], action["skus"]) == (
            "percent",
            15.0,
            ["A1", "B2"],
        )
        assert action["client_msg"] == "15% off on A1, B2"
        assert action["client_msg"] in [badge.text for badge in page.find_all("span", class_="badge")]

    async def test_unticking_enabled_disables_the_group(
        self, admin: AdminBrowser, loyalty: LoyaltyClient
    ) -> None:
        group_id = await upload_group(admin, "Spring", 3)
        typed = {k: v for k, v in GROUP_FORM.items() if k != "enabled"}

        redirected_to(await admin.post(f"/admin/promocodes/groups/{group_id}", typed), r".*\?saved=1")

        groups = (await ok(loyalty, "promocodes/groups/list"))["groups"]
        assert ([g["name"] for g in groups["enabled"]], [g["name"] for g in groups["disabled"]]) == (
            [],
            ["Spring"],
        )
        row = (await admin.page("/admin/")).find("tr", data_group="Spring")
        assert row.find(class_="badge").text == "disabled"

    async def test_choosing_no_discount_removes_the_action(
        self, admin: AdminBrowser, loyalty: LoyaltyClient
    ) -> None:
        group_id = await upload_group(admin, "Spring", 3)
        fixed = {**GROUP_FORM, "discount_type": "fixed", "discount_value": "250"}
        redirected_to(await admin.post(f"/admin/promocodes/groups/{group_id}", fixed), r".*\?saved=1")
        [group] = (await ok(loyalty, "promocodes/groups/list"))["groups"]["enabled"]
        assert group["marketing_actions"][0]["client_msg"] == "250 off"

        await admin.post(f"/admin/promocodes/groups/{group_id}", GROUP_FORM)

        [group] = (await ok(loyalty, "promocodes/groups/list"))["groups"]["enabled"]
        assert group["marketing_actions"] == []

    @pytest.mark.parametrize(
        ("change", "error"),
        [
            pytest.param(
                {"discount_type": "percent", "discount_value": "150"},
                "Invalid value of discount_value: "
                "a percent is above 0 and at most 100; a fixed amount above 0",
                id="percent-above-100",
            ),
            pytest.param(
                {"low_stock_warning": "-1"},
                "Invalid value of low_stock_warning: must not be negative",
                id="negative-threshold",
            ),
            pytest.param(
                {"low_stock_alarm": "ten"},
                "Invalid value of low_stock_alarm: not an integer",
                id="not-a-number",
            ),
            pytest.param(
                {"discount_type": "fixed", "discount_value": ""},
                "Provide required {'field': 'discount_value'}",
                id="fixed-without-amount",
            ),
        ],
    )
    async def test_invalid_settings_are_422_with_the_typed_values_kept(
        self, admin: AdminBrowser, loyalty: LoyaltyClient, change: dict[str, str], error: str
    ) -> None:
        group_id = await upload_group(admin, "Spring", 3)
        typed = {**{k: v for k, v in GROUP_FORM.items() if k != "enabled"}, "name": "Typed name", **change}

        response = await admin.post(f"/admin/promocodes/groups/{group_id}", typed)

        assert response.status_code == 422
        assert alert(response) == error
        shown = html(response).find("form", action=f"/admin/promocodes/groups/{group_id}").fields()
        assert {k: v for k, v in shown.items() if k != "csrf_token"} == typed  # "enabled" stays unticked
        [group] = (await ok(loyalty, "promocodes/groups/list"))["groups"]["enabled"]
        assert (group["name"], group["low_stock_warning"], group["marketing_actions"]) == ("Spring", None, [])

    async def test_the_dashboard_marks_groups_at_their_thresholds(self, admin: AdminBrowser) -> None:
        for name, thresholds in [
            ("Plenty", {"low_stock_warning": "4", "low_stock_alarm": "1"}),
            ("Low", {"low_stock_warning": "5", "low_stock_alarm": "1"}),
            ("Empty-ish", {"low_stock_warning": "9", "low_stock_alarm": "5"}),
        ]:
            group_id = await upload_group(admin, name, 5)
            saved = await admin.post(
                f"/admin/promocodes/groups/{group_id}", {**GROUP_FORM, "name": name, **thresholds}
            )
            assert saved.status_code == 303

        page = await admin.page("/admin/")

        badges = {
            name: page.find("tr", data_group=name).find(class_="badge").text
            for name in ("Plenty", "Low", "Empty-ish")
        }
        assert badges == {"Plenty": "enabled", "Low": "low stock", "Empty-ish": "low stock: alarm"}


# ------------------------------------------------------------------------------------------------
# Look-ups


@pytest.fixture
async def customer(loyalty: LoyaltyClient) -> dict[str, Any]:
    body: dict[str, Any] = await ok(
        loyalty, "users/add", user_phone=PHONE, email="anna@example.com", origin_user_id="crm-42"
    )
    return body


@pytest.fixture
async def spring(loyalty: LoyaltyClient) -> None:
    """An activation group, Spring, of three codes."""
    await ok(
        loyalty, "promocodes/numbers/add", files=text_file("SPR-1", "SPR-2", "SPR-3"), name="Spring", type="2"
    )


async def code_link(admin: AdminBrowser, code_number: str) -> str:
    """The code's page, as linked from the look-up."""
    page = await admin.page("/admin/lookup", q=code_number)
    return page.find(id="found-codes").find("tbody").find("a")["href"]


class TestLookup:
    async def test_a_code_number_shows_the_code_and_its_state(
        self, admin: AdminBrowser, spring: None
    ) -> None:
        page = await admin.page("/admin/lookup", q="SPR-2")

        [row] = page.find(id="found-codes").rows()
        assert row[:3] == ["SPR-2", "Spring", "free"]

    async def test_an_activated_code_shows_as_activated(
        self, admin: AdminBrowser, loyalty: LoyaltyClient, spring: None, customer: dict[str, Any]
    ) -> None:
        await ok(loyalty, "promocodes/activate", user_phone=PHONE, group_name="Spring", number="SPR-1")

        page = await admin.page("/admin/lookup", q="SPR-1")

        [row] = page.find(id="found-codes").rows()
        assert row[:3] == ["SPR-1", "Spring", "activated"]

    async def test_a_certificate_number_shows_the_certificate(
        self, admin: AdminBrowser, loyalty: LoyaltyClient, department: tenancy.NewDepartment
    ) -> None:
        await ok(
            loyalty,
            "coupons/numbers/add",
            files=text_file("GIFT-1"),
            name="Gift 500",
            value="500",
            target_dep_id=department.store_department_id,
            pin_code=department.pin_code,
        )

        page = await admin.page("/admin/lookup", q="GIFT-1")

        assert page.find("table").rows() == [["GIFT-1", "Gift 500", "500.00", "created"]]
        link = page.find("table").find("tbody").find("a")["href"]
        certificate = await admin.page(link)
        assert certificate.find("h1").text == "GIFT-1 created"

    @pytest.mark.parametrize(
        ("query", "matched_by"),
        [
            pytest.param("+7 900 123 45 67", "phone", id="phone-with-plus-and-spaces"),
            pytest.param("+7 (900) 123-45-67", "phone", id="phone-with-brackets-and-dashes"),
            pytest.param("ANNA@Example.COM", "email", id="email-in-another-case"),
            pytest.param("crm-42", "origin user id", id="external-id"),
        ],
    )
    async def test_a_customer_is_found_by_phone_email_or_external_id(
        self, admin: AdminBrowser, customer: dict[str, Any], query: str, matched_by: str
    ) -> None:
        page = await admin.page("/admin/lookup", q=query)

        assert page.find(id="found-customers").rows() == [
            [f"customer {customer['id']}", PHONE, "anna@example.com", "crm-42", matched_by]
        ]
        assert page.find("input", name="q")["value"] == query

    async def test_nothing_found_says_so(self, admin: AdminBrowser, spring: None) -> None:
        page = await admin.page("/admin/lookup", q="NO-SUCH-1")

        assert page.find(class_="empty").text.startswith("Nothing matches NO-SUCH-1")

    async def test_the_code_page_shows_who_activated_it(
        self, admin: AdminBrowser, loyalty: LoyaltyClient, spring: None, customer: dict[str, Any]
    ) -> None:
        await ok(loyalty, "promocodes/activate", user_phone=PHONE, group_name="Spring", number="SPR-1")

        page = await admin.page(await code_link(admin, "SPR-1"))

        assert history(page) == [f"activated in {OUR_SHOP} by {PHONE}"]
        assert page.find(id="history").find("a")["href"] == f"/admin/customers/{customer['id']}"
        assert page.find(id="code-facts").facts()["State"] == "activated"

    async def test_the_code_page_shows_whom_it_was_issued_to(
        self, admin: AdminBrowser, loyalty: LoyaltyClient, customer: dict[str, Any]
    ) -> None:
        await ok(loyalty, "promocodes/numbers/add", files=text_file("GIVE-1"), name="Giveaway")
        issued = await ok(loyalty, "promocodes/issue", user_phone=PHONE, group_name="Giveaway")
        assert issued["promocode"]["number"] == "GIVE-1"

        page = await admin.page(await code_link(admin, "GIVE-1"))

        assert history(page) == [f"issued to {PHONE}"]
        facts = page.find(id="code-facts").facts()
        assert (facts["State"], facts["Belongs to"]) == ("issued", PHONE)

    async def test_the_customer_page_shows_tags_and_codes_issued_and_activated(
        self, admin: AdminBrowser, loyalty: LoyaltyClient, spring: None, customer: dict[str, Any]
    ) -> None:
        await ok(loyalty, "promocodes/numbers/add", files=text_file("GIVE-1"), name="Giveaway")
        await ok(loyalty, "promocodes/issue", user_phone=PHONE, group_name="Giveaway")
        await ok(loyalty, "promocodes/activate", user_phone=PHONE, group_name="Spring", number="SPR-1")

        page = await admin.page(f"/admin/customers/{customer['id']}")

        assert [tag.text for tag in page.find(id="tags").find_all("span")] == ["Applied promo code Spring"]
        codes = {row[0]: row for row in page.find(id="customer-codes").rows()}
        assert set(codes) == {"GIVE-1", "SPR-1"}
        assert codes["GIVE-1"][1:3] == ["Giveaway", "issued"]
        assert codes["SPR-1"][1:3] == ["Spring", "activated"]
        assert codes["GIVE-1"][3] != "—"  # issued at
        assert codes["SPR-1"][4] != "—"  # activated at
        facts = page.find(id="customer-facts").facts()
        assert (facts["Phone"], facts["Email"], facts["External id"]) == (PHONE, "anna@example.com", "crm-42")

    async def test_the_customer_page_shows_the_messages_sent_to_the_customer(
        self, admin: AdminBrowser, api: EsputnikClient, customer: dict[str, Any]
    ) -> None:
        await smartsend(api, await api_message(api), "Anna@Example.com", "bob@example.com")
        await smartsend(api, await api_message(api, "sms"), "+7 900 123-45-67", "79007654321", email=False)

        page = await admin.page(f"/admin/customers/{customer['id']}")

        sent = [row[1] for row in page.find(id="customer-deliveries").rows()]
        assert sorted(sent) == ["79001234567 sms", "anna@example.com email"]

    async def test_a_customer_with_no_messages_says_so(
        self, admin: AdminBrowser, customer: dict[str, Any]
    ) -> None:
        page = await admin.page(f"/admin/customers/{customer['id']}")

        assert not page.has(id="customer-deliveries")
        assert "No messages sent to this customer" in page.text


# ------------------------------------------------------------------------------------------------
# Messages


class TestMessages:
    async def test_an_email_made_in_the_editor_is_the_apis_message(
        self, admin: AdminBrowser, api: EsputnikClient
    ) -> None:
        response = await admin.post("/admin/messages/new", {"channel": "email", **EMAIL_MESSAGE})

        message_id = int(redirected_to(response, r"/admin/messages/(\d+)\?saved=1").group(1))
        assert await api.ok("GET", f"/api/v1/messages/{message_id}") == {
            "id": message_id,
            "type": "email",
            **EMAIL_MESSAGE,
        }

    async def test_an_sms_made_in_the_editor_is_the_apis_message(
        self, admin: AdminBrowser, api: EsputnikClient
    ) -> None:
        response = await admin.post("/admin/messages/new", {"channel": "sms", **SMS_MESSAGE})

        message_id = int(redirected_to(response, r"/admin/messages/(\d+)\?saved=1").group(1))
        assert await api.ok("GET", f"/api/v1/messages/{message_id}") == {
            "id": message_id,
            "type": "sms",
            **SMS_MESSAGE,
        }
        listed = (await admin.page("/admin/messages")).find(id="messages").rows()
        assert [row[:3] for row in listed] == [["Code by SMS", "sms", "Shop"]]

    async def test_the_editor_shows_the_saved_message(self, admin: AdminBrowser, api: EsputnikClient) -> None:
        message_id = await api_message(api)

        page = await admin.page(f"/admin/messages/{message_id}")

        shown = page.find(id="message-form").fields()
        assert {k: shown[k] for k in EMAIL_MESSAGE} == EMAIL_MESSAGE
        assert shown["channel"] == "email"

    async def test_editing_replaces_the_message(self, admin: AdminBrowser, api: EsputnikClient) -> None:
        message_id = await api_message(api)
        edited = {**EMAIL_MESSAGE, "name": "Renamed", "subject": "New subject", "plainText": ""}

        response = await admin.post(f"/admin/messages/{message_id}", {"channel": "email", **edited})

        redirected_to(response, rf"/admin/messages/{message_id}\?saved=1")
        assert await api.ok("GET", f"/api/v1/messages/{message_id}") == {
            "id": message_id,
            "type": "email",
            **edited,
            "plainText": None,
        }

    async def test_a_template_syntax_error_is_422_with_the_typed_text_kept(
        self, admin: AdminBrowser, api: EsputnikClient
    ) -> None:
        typed = {**EMAIL_MESSAGE, "htmlText": "<p>Hi</p>\n#foreach($x in"}

        response = await admin.post("/admin/messages/new", {"channel": "email", **typed})

        assert response.status_code == 422
        assert alert(response).startswith("htmlText: ")
        assert "line 2, column" in alert(response)
        shown = html(response).find(id="message-form").fields()
        assert {k: shown[k] for k in typed} == typed
        assert await api.ok("GET", "/api/v1/messages") == []

    async def test_a_refused_template_on_save_leaves_the_message_as_it_was(
        self, admin: AdminBrowser, api: EsputnikClient
    ) -> None:
        message_id = await api_message(api, "sms")
        before = await api.ok("GET", f"/api/v1/messages/{message_id}")

        response = await admin.post(
            f"/admin/messages/{message_id}", {"channel": "sms", **SMS_MESSAGE, "text": "$x.__class__"}
        )

        assert response.status_code == 422
        assert alert(response).startswith("text: templates may not contain '__'")
        assert html(response).find("textarea", name="text").raw_text == "$x.__class__"
        assert await api.ok("GET", f"/api/v1/messages/{message_id}") == before

    async def test_deleting_removes_the_message(self, admin: AdminBrowser, api: EsputnikClient) -> None:
        message_id = await api_message(api)

        response = await admin.post(f"/admin/messages/{message_id}/delete")

        redirected_to(response, re.escape("/admin/messages?deleted=1"))
        assert (await api.get(f"/api/v1/messages/{message_id}")).status_code == 404
        assert (await admin.get(f"/admin/messages/{message_id}")).status_code == 404

    async def test_the_preview_renders_the_templates_with_the_sample(self, admin: AdminBrowser) -> None:
        response = await admin.preview(
            {"subject": "Hi $!data.get('name')", "htmlText": "<b>$!data.get('code')</b>$!data.get('none')"},
            '{"code": "SPRING-1", "name": "Anna"}',
        )

        assert response.status_code == 200
        assert response.json() == {
            "rendered": {"subject": "Hi Anna", "htmlText": "<b>SPRING-1</b>"},
            "problems": {},
        }

    async def test_the_preview_reports_a_sample_that_is_not_json(self, admin: AdminBrowser) -> None:
        response = await admin.preview({"text": "$!data.get('code')"}, '{"code": ')

        assert response.status_code == 200
        assert response.json()["error"].startswith("Sample data is not valid JSON: ")

    async def test_the_preview_reports_a_refused_template_as_a_problem(self, admin: AdminBrowser) -> None:
        response = await admin.preview({"text": "$data.__class__", "subject": "ok"}, "{}")

        assert response.status_code == 200
        assert response.json() == {
            "rendered": {"subject": "ok"},
            "problems": {"text": "templates may not contain '__' (line 1)"},
        }

    async def test_the_preview_of_a_body_that_is_not_json_is_400(self, admin: AdminBrowser) -> None:
        response = await admin.http.post(
            "/admin/messages/preview", content=b"templates", headers={"X-CSRF-Token": admin.csrf_token}
        )

        assert response.status_code == 400
        assert "error" in response.json()


# ------------------------------------------------------------------------------------------------
# Workflows


class TestWorkflows:
    async def test_a_workflow_made_in_the_editor_is_the_apis_workflow(
        self, admin: AdminBrowser, api: EsputnikClient
    ) -> None:
        message_id = await api_message(api)
        editor = await admin.page("/admin/workflows/new")
        offered = editor.find("select", name="steps-0-message_id").find_all("option")
        assert [o["value"] for o in offered] == ["", str(message_id)]
        form = {
            "name": "Welcome code",
            "enabled": "on",
            "trigger_kind": "event",
            "trigger_value": "promo_signup",
            "steps-0-type": "issue_promocode",
            "steps-0-group": "Summer",
            "steps-0-as": "code",
            "steps-0-tag": "typed in a field this step has not",
            "steps-1-type": "send",
            "steps-1-message_id": str(message_id),
            "steps-1-to_param": "EmailAddress",
            "steps-2-type": "",
            "steps-3-type": "add_tag",
            "steps-3-tag": "Got summer code",
        }

        response = await admin.post("/admin/workflows/new", form)

        workflow_id = int(redirected_to(response, r"/admin/workflows/(\d+)\?saved=1").group(1))
        [stored] = await api.ok("GET", "/api/v1/workflows")
        assert {k: stored[k] for k in ("id", "name", "enabled", "trigger", "steps")} == {
            "id": workflow_id,
            "name": "Welcome code",
            "enabled": True,
            "trigger": {"event": "promo_signup"},
            "steps": [
                {"type": "issue_promocode", "group": "Summer", "as": "code"},
                {"type": "send", "message_id": message_id, "to_param": "EmailAddress"},
                {"type": "add_tag", "tag": "Got summer code"},
            ],
        }

    async def test_the_editor_shows_the_saved_steps(self, admin: AdminBrowser, api: EsputnikClient) -> None:
        message_id = await api_message(api)
        created = await api.ok(
            "POST",
            "/api/v1/workflows",
            {
                "name": "Tagged",
                "enabled": False,
                "trigger": {"tag": "VIP"},
                "steps": [{"type": "wait", "seconds": 60}, {"type": "send", "message_id": message_id}],
            },
        )

        page = await admin.page(f"/admin/workflows/{created['id']}")

        shown = page.find(id="workflow-form").fields()
        assert "enabled" not in shown
        assert (shown["name"], shown["trigger_kind"], shown["trigger_value"]) == ("Tagged", "tag", "VIP")
        assert (shown["steps-0-type"], float(shown["steps-0-seconds"])) == ("wait", 60)
        assert (shown["steps-1-type"], shown["steps-1-message_id"]) == ("send", str(message_id))
        assert shown["steps-2-type"] == ""  # a blank row to add a step

    async def test_a_send_step_without_a_message_is_422_with_the_fields_kept(
        self, admin: AdminBrowser, api: EsputnikClient
    ) -> None:
        form = {
            "name": "Broken",
            "trigger_kind": "tag",
            "trigger_value": "VIP",
            "steps-0-type": "add_tag",
            "steps-0-tag": "Seen",
            "steps-1-type": "send",
            "steps-1-to_param": "EmailAddress",
        }

        response = await admin.post("/admin/workflows/new", form)

        assert response.status_code == 422
        assert "a send step needs 'message_id'" in alert(response)
        shown = html(response).find(id="workflow-form").fields()
        assert {k: shown[k] for k in form} == form
        assert "enabled" not in shown
        assert await api.ok("GET", "/api/v1/workflows") == []

    async def test_a_workflow_without_steps_is_422(self, admin: AdminBrowser, api: EsputnikClient) -> None:
        response = await admin.post(
            "/admin/workflows/new", {"name": "Empty", "trigger_kind": "event", "trigger_value": "signup"}
        )

        assert response.status_code == 422
        assert alert(response).startswith("steps: ")
        assert await api.ok("GET", "/api/v1/workflows") == []

    async def test_editing_replaces_the_trigger_and_steps(
        self, admin: AdminBrowser, api: EsputnikClient
    ) -> None:
        message_id = await api_message(api)
        created = await api.ok(
            "POST",
            "/api/v1/workflows",
            {
                "name": "Welcome",
                "trigger": {"event": "signup"},
                "steps": [{"type": "send", "message_id": message_id}],
            },
        )
        form = {
            "name": "Tag VIPs",
            "trigger_kind": "tag",
            "trigger_value": "Applied promo code Spring",
            "steps-0-type": "add_tag",
            "steps-0-tag": "VIP",
        }

        response = await admin.post(f"/admin/workflows/{created['id']}", form)

        redirected_to(response, rf"/admin/workflows/{created['id']}\?saved=1")
        stored = await api.ok("GET", f"/api/v1/workflows/{created['id']}")
        assert {k: stored[k] for k in ("name", "enabled", "trigger", "steps")} == {
            "name": "Tag VIPs",
            "enabled": False,
            "trigger": {"tag": "Applied promo code Spring"},
            "steps": [{"type": "add_tag", "tag": "VIP"}],
        }
        listed = (await admin.page("/admin/workflows")).find(id="workflows").rows()
        assert [row[:4] for row in listed] == [
            ["Tag VIPs", "tag Applied promo code Spring", "tag “VIP”", "disabled"]
        ]

    async def test_deleting_removes_the_workflow(self, admin: AdminBrowser, api: EsputnikClient) -> None:
        message_id = await api_message(api)
        created = await api.ok(
            "POST",
            "/api/v1/workflows",
            {
                "name": "Welcome",
                "trigger": {"event": "signup"},
                "steps": [{"type": "send", "message_id": message_id}],
            },
        )

        response = await admin.post(f"/admin/workflows/{created['id']}/delete")

        redirected_to(response, re.escape("/admin/workflows?deleted=1"))
        assert (await api.get(f"/api/v1/workflows/{created['id']}")).status_code == 404
        page = await admin.page("/admin/workflows?deleted=1")
        assert page.find(role="status").text == "Workflow deleted."
        assert not page.has(id="workflows")


# ------------------------------------------------------------------------------------------------
# Deliveries


@pytest.fixture
async def three_deliveries(api: EsputnikClient, database: Database) -> None:
    """Anna and Bob by email, one phone by SMS; Bob's has been sent."""
    await smartsend(api, await api_message(api), "anna@example.com", "Bob@Example.com")
    await smartsend(api, await api_message(api, "sms"), "+7 900 123 45 67", email=False)
    async with database.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.recipient == "bob@example.com")
            .values(status="sent", attempts=1, sent_at=utcnow())
        )


DELIVERY_FILTERS: dict[str, dict[str, str]] = {
    "none": {},
    "status-queued": {"status": "queued"},
    "status-sent": {"status": "sent"},
    "status-failed": {"status": "failed"},
    "channel-sms": {"channel": "sms"},
    "channel-email": {"channel": "email"},
    "email-in-another-case": {"recipient": "ANNA@example.COM"},
    "phone-as-typed": {"recipient": "+7 (900) 123-45-67"},
    "channel-and-status": {"channel": "email", "status": "queued"},
    "unknown-status-is-ignored": {"status": "bogus"},
}


def recipients(page: Element) -> list[str]:
    if not page.has(id="deliveries"):
        return []
    return [row[1].rsplit(" ", 1)[0] for row in page.find(id="deliveries").rows()]


class TestDeliveries:
    async def test_smartsend_recipients_are_listed_as_queued_with_no_attempts(
        self, admin: AdminBrowser, api: EsputnikClient
    ) -> None:
        await smartsend(api, await api_message(api), "anna@example.com", "bob@example.com")

        page = await admin.page("/admin/deliveries")

        rows = page.find(id="deliveries").rows()
        assert [(row[1], row[2], row[3], row[4]) for row in rows] == [
            ("bob@example.com email", "Welcome code", "queued", "0"),
            ("anna@example.com email", "Welcome code", "queued", "0"),
        ]

    async def test_the_filters_by_status_channel_and_recipient(
        self, admin: AdminBrowser, three_deliveries: None
    ) -> None:
        found, kept = {}, {}
        for name, filters in DELIVERY_FILTERS.items():
            page = await admin.page("/admin/deliveries", **filters)
            found[name] = recipients(page)
            shown = page.find("form", action="/admin/deliveries").fields()
            kept[name] = {k: shown[k] for k in filters}

        assert kept == {**DELIVERY_FILTERS, "unknown-status-is-ignored": {"status": ""}}

        assert found == {
            "none": [PHONE, "bob@example.com", "anna@example.com"],
            "status-queued": [PHONE, "anna@example.com"],
            "status-sent": ["bob@example.com"],
            "status-failed": [],
            "channel-sms": [PHONE],
            "channel-email": ["bob@example.com", "anna@example.com"],
            "email-in-another-case": ["anna@example.com"],
            "phone-as-typed": [PHONE],
            "channel-and-status": ["anna@example.com"],
            "unknown-status-is-ignored": [PHONE, "bob@example.com", "anna@example.com"],
        }

    async def test_no_match_says_so(self, admin: AdminBrowser, three_deliveries: None) -> None:
        page = await admin.page("/admin/deliveries", status="failed")

        assert page.find(class_="empty").text == "No deliveries match these filters."

    @pytest.mark.parametrize(("sent", "older_link"), [(100, False), (101, True)])
    async def test_an_older_link_appears_beyond_100_rows(
        self, admin: AdminBrowser, api: EsputnikClient, sent: int, older_link: bool
    ) -> None:
        await smartsend(api, await api_message(api), *(f"r{i:03d}@example.com" for i in range(sent)))

        page = await admin.page("/admin/deliveries")

        assert len(page.find(id="deliveries").rows()) == 100
        assert recipients(page)[0] == f"r{sent - 1:03d}@example.com"
        assert page.has("p", class_="pager") is older_link

    async def test_the_older_link_leads_to_the_rest_with_the_filters_kept(
        self, admin: AdminBrowser, api: EsputnikClient
    ) -> None:
        await smartsend(api, await api_message(api, "sms"), "+79000000000", email=False)
        await smartsend(api, await api_message(api), *(f"r{i:03d}@example.com" for i in range(101)))
        first = await admin.page("/admin/deliveries", channel="email")
        href = first.find("p", class_="pager").find("a")["href"]

        older = await admin.page(urljoin("/admin/deliveries", href))

        assert recipients(older) == ["r000@example.com"]
        assert not older.has("p", class_="pager")
        assert older.find("form", action="/admin/deliveries").fields()["channel"] == "email"


# ------------------------------------------------------------------------------------------------
# Codes in campaigns: $!promocodes.issue('<group>') in the editor's preview and on a code's page


class Inbox:
    """An SMTP server on 127.0.0.1 (aiosmtpd, in its own thread) for the delivery worker: it
    accepts every message, except that it answers 550 to the addresses in ``bouncing``."""

    def __init__(self) -> None:
        self.bouncing: set[str] = set()
        self._lock = threading.Lock()
        self._received: list[tuple[str, ...]] = []
        with socket.socket() as probe:  # aiosmtpd's Controller cannot be given port 0
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.url = f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.bouncing & set(envelope.rcpt_tos):
            return "550 5.1.1 No such mailbox"
        with self._lock:
            self._received.append(tuple(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    @property
    def received(self) -> list[tuple[str, ...]]:
        """The recipients of each message accepted."""
        with self._lock:
            return list(self._received)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture
def sending(settings: Settings, inbox: Inbox) -> Settings:
    """The worker's settings: email through ``inbox``, and a refused message fails for good and
    gives its code back in the same pass."""
    return settings.model_copy(
        update={"smtp_url": inbox.url, "delivery_max_attempts": 1, "delivery_code_return_seconds": 0.0}
    )


CAMPAIGN = "<p>Your code: <b>$!promocodes.issue('Spring sale')</b></p>"


async def send_campaign(
    api: EsputnikClient, database: Database, sending: Settings, recipient: str
) -> Delivery:
    """A message with a code, smartsent to one recipient and put through one worker pass."""
    message_id = await api_message(api, name="Spring campaign", htmlText=CAMPAIGN)
    await smartsend(api, message_id, recipient)
    await Worker(database, sending).run_once()
    delivery: Delivery = await one(database, select(Delivery).where(Delivery.message_id == message_id))
    return delivery


async def free_codes(loyalty: LoyaltyClient, group_name: str) -> int:
    groups = (await ok(loyalty, "promocodes/groups/list"))["groups"]
    [group] = [g for g in groups["enabled"] + groups["disabled"] if g["name"] == group_name]
    return int(group["unused_count"])


class TestCodesInCampaigns:
    async def test_the_preview_shows_the_groups_next_free_code_and_issues_nothing(
        self, admin: AdminBrowser, loyalty: LoyaltyClient, database: Database, customer: dict[str, Any]
    ) -> None:
        await ok(
            loyalty,
            "promocodes/numbers/add",
            files=text_file("SALE-1", "SALE-2", "SALE-3"),
            name="Spring sale",
        )
        await ok(loyalty, "promocodes/issue", user_phone=PHONE, group_name="Spring sale")  # SALE-1
        before = await database_rows(database)
        templates = {
            "subject": "$!promocodes.issue('Spring sale') for $!data.get('name')",
            "htmlText": CAMPAIGN,
        }

        first = await admin.preview(templates, '{"name": "Anna"}')
        second = await admin.preview(templates, '{"name": "Anna"}')

        assert first.status_code == 200
        # Every field that names the group shows the one code a send would claim for it.
        assert first.json() == {
            "rendered": {"subject": "SALE-2 for Anna", "htmlText": "<p>Your code: <b>SALE-2</b></p>"},
            "problems": {},
        }
        assert second.json() == first.json()
        assert await database_rows(database) == before
        assert await free_codes(loyalty, "Spring sale") == 2

    @pytest.mark.parametrize(
        ("group", "reason"),
        [
            pytest.param("Nobody made me", "no such group", id="unknown"),
            pytest.param("Switched off", "the group is disabled", id="disabled"),
            pytest.param("All gone", "no free codes left", id="no-free-code"),
        ],
    )
    async def test_the_preview_says_why_a_send_could_not_take_a_code(
        self,
        admin: AdminBrowser,
        loyalty: LoyaltyClient,
        customer: dict[str, Any],
        group: str,
        reason: str,
    ) -> None:
        switched_off = await ok(
            loyalty, "promocodes/numbers/add", files=text_file("OFF-1"), name="Switched off"
        )
        await ok(loyalty, "promocodes/groups/edit", group_id=switched_off["group"]["id"], enabled="0")
        await ok(loyalty, "promocodes/numbers/add", files=text_file("GONE-1"), name="All gone")
        await ok(loyalty, "promocodes/issue", user_phone=PHONE, group_name="All gone")

        response = await admin.preview(
            {"subject": "Hi $!data.get('name')", "htmlText": f"<b>$!promocodes.issue('{group}')</b>"},
            '{"name": "Anna"}',
        )

        assert response.json() == {
            "rendered": {"subject": "Hi Anna"},
            # What the delivery's status would say (messaging/delivery_codes.py).
            "problems": {"htmlText": f"promo-code group {group!r}: {reason}"},
        }

    async def test_the_code_page_names_the_delivery_that_carried_it(
        self,
        admin: AdminBrowser,
        api: EsputnikClient,
        loyalty: LoyaltyClient,
        database: Database,
        sending: Settings,
        inbox: Inbox,
    ) -> None:
        await ok(loyalty, "promocodes/numbers/add", files=text_file("SALE-1", "SALE-2"), name="Spring sale")

        delivery = await send_campaign(api, database, sending, "anna@example.com")

        assert inbox.received == [("anna@example.com",)]
        page = await admin.page(await code_link(admin, "SALE-1"))
        carried = page.find(id="code-deliveries")
        [row] = carried.rows()
        assert row[:5] == [
            f"{delivery.id} {delivery.request_id}",
            "Spring campaign",
            "email",
            "sent",
            "Spring sale",
        ]
        assert row[5] != "—"  # claimed at
        assert row[6] == "—"  # not given back
        # The recipient is the code's customer, shown as such; the deliveries add no address.
        assert page.find(id="code-facts").facts()["Belongs to"] == "anna@example.com"
        assert "anna@example.com" not in carried.text
        # The link opens the deliveries log at this delivery.
        log = await admin.page(urljoin("/admin/codes/", carried.find("tbody").find("a")["href"]))
        assert log.find(id="deliveries").rows()[0][1] == "anna@example.com email"
        assert not (await admin.page(await code_link(admin, "SALE-2"))).has(id="code-deliveries")

    async def test_a_code_given_back_by_a_failed_delivery_lists_both_deliveries(
        self,
        admin: AdminBrowser,
        api: EsputnikClient,
        loyalty: LoyaltyClient,
        database: Database,
        sending: Settings,
        inbox: Inbox,
    ) -> None:
        await ok(loyalty, "promocodes/numbers/add", files=text_file("SALE-1", "SALE-2"), name="Spring sale")
        inbox.bouncing.add("gone@example.com")

        bounced = await send_campaign(api, database, sending, "gone@example.com")
        sent = await send_campaign(api, database, sending, "anna@example.com")

        assert inbox.received == [("anna@example.com",)]
        page = await admin.page(await code_link(admin, "SALE-1"))
        rows = page.find(id="code-deliveries").rows()
        assert [(row[0].split()[0], row[3]) for row in rows] == [
            (str(bounced.id), "failed"),
            (str(sent.id), "sent"),
        ]
        assert rows[0][6].startswith("given back ") and rows[0][6] != "given back —"
        assert rows[1][6] == "—"
        assert history(page) == ["issued to anna@example.com"]
        assert await free_codes(loyalty, "Spring sale") == 1


# ------------------------------------------------------------------------------------------------
# Settings


class TestSettings:
    async def test_a_new_department_shows_its_key_once_and_the_key_logs_in(
        self, admin: AdminBrowser, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        response = await admin.post("/admin/settings/departments", {"name": "Online shop"})

        assert response.status_code == 200
        shown = html(response).find(id="new-department").facts()
        created = tenancy.NewDepartment(
            department.partner_id,
            int(shown["store_department_id"]),
            shown["store_department_key"],
            shown["pin_code"],
        )
        assert await login(client, created)
        again = await admin.page("/admin/settings")
        assert not again.has(id="new-department")
        assert created.store_department_key not in again.text
        assert [row[:2] for row in again.find(id="departments").rows()] == [
            [str(department.store_department_id), OUR_SHOP],
            [str(created.store_department_id), "Online shop"],
        ]

    async def test_a_department_without_a_name_is_422(self, admin: AdminBrowser, database: Database) -> None:
        before = await database_rows(database)

        response = await admin.post("/admin/settings/departments", {"name": "   "})

        assert response.status_code == 422
        assert alert(response) == "Invalid value of name: must be 1 to 255 characters"
        assert await database_rows(database) == before

    async def test_a_new_pin_code_logs_in_with_the_departments_key(
        self, admin: AdminBrowser, client: httpx.AsyncClient, department: tenancy.NewDepartment
    ) -> None:
        response = await admin.post(f"/admin/settings/departments/{department.store_department_id}/pins")

        assert response.status_code == 200
        pin_code = html(response).find(role="status").find("strong").text
        assert pin_code != department.pin_code
        assert await login(client, replace(department, pin_code=pin_code))
        pins = html(response).find(id="departments").rows()[0][2]
        assert set(pins.split(", ")) == {department.pin_code, pin_code}

    async def test_a_new_api_key_opens_the_messaging_api(
        self, admin: AdminBrowser, client: httpx.AsyncClient
    ) -> None:
        response = await admin.post("/admin/settings/api-keys")

        assert response.status_code == 200
        key = html(response).find(id="new-api-key").find("code").text
        answer = await client.get("/api/v1/messages", headers={"Authorization": f"Bearer {key}"})
        assert (answer.status_code, answer.json()) == (200, [])
        again = await admin.page("/admin/settings")
        assert key not in again.text
        [listed] = again.find(id="api-keys").rows()
        assert listed[0].endswith("…")
        assert key.startswith(listed[0].removesuffix("…"))
        assert listed[2] == "active"

    async def test_a_revoked_key_is_401_at_once_through_the_same_process(
        self, admin: AdminBrowser, client: httpx.AsyncClient
    ) -> None:
        key = html(await admin.post("/admin/settings/api-keys")).find(id="new-api-key").find("code").text
        headers = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/api/v1/messages", headers=headers)).status_code == 200  # now remembered
        settings = await admin.page("/admin/settings")
        revoke = settings.find(id="api-keys").find("form")["action"]

        response = await admin.post(revoke)

        redirected_to(response, re.escape("/admin/settings?revoked=1"))
        assert (await client.get("/api/v1/messages", headers=headers)).status_code == 401
        shown = (await admin.page("/admin/settings")).find(id="api-keys").rows()
        assert shown[0][2].startswith("revoked")
        assert (await admin.post(revoke)).status_code == 404  # revoked once


# ------------------------------------------------------------------------------------------------
# `tessera admins create`


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        """The one line a refused command prints (``error: <message>``), else all of stderr."""
        printed = [line for line in self.stderr.splitlines() if line.startswith("error: ")]
        if len(printed) != 1 or self.stderr.strip() != printed[0]:
            return self.stderr
        return printed[0].removeprefix("error: ")


async def tessera_cli(database_url: str, cwd: Path, *args: str) -> Run:
    """The real console script, against the test database, away from any .env of the checkout."""
    process = await asyncio.create_subprocess_exec(
        str(TESSERA),
        *args,
        cwd=cwd,
        env={**os.environ, "TESSERA_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


def create_admin_args(partner_id: int, email: str, password: str) -> list[str]:
    return ["admins", "create", "--partner-id", str(partner_id), "--email", email, "--password", password]


class TestAdminsCreateCommand:
    async def test_prints_the_new_admin_who_can_then_sign_in(
        self,
        client: httpx.AsyncClient,
        database_url: str,
        department: tenancy.NewDepartment,
        tmp_path: Path,
    ) -> None:
        args = create_admin_args(department.partner_id, "New.Admin@Example.com", "long enough")

        run = await tessera_cli(database_url, tmp_path, *args, "--json")

        assert run.returncode == 0, run.stderr
        printed = json.loads(run.stdout)
        assert printed == {
            "admin_id": printed["admin_id"],
            "partner_id": department.partner_id,
            "email": "new.admin@example.com",
        }
        assert isinstance(printed["admin_id"], int)
        browser = AdminBrowser(client, "new.admin@example.com", "long enough")
        redirected_to(await browser.submit_sign_in(), "/admin/")

    async def test_a_duplicate_email_a_short_password_or_an_unknown_partner_exits_1_saying_why(
        self, database: Database, database_url: str, department: tenancy.NewDepartment, tmp_path: Path
    ) -> None:
        await add_admin(database, department.partner_id, OUR_ADMIN)
        ours = department.partner_id
        refused = {
            "duplicate-email": (
                create_admin_args(ours, OUR_ADMIN.upper(), "long enough"),
                f"Invalid value of email: an admin with email {OUR_ADMIN} already exists",
            ),
            "short-password": (
                create_admin_args(ours, "new@example.com", "7-chars"),
                "Invalid value of password: must be at least 8 characters",
            ),
            "unknown-partner": (
                create_admin_args(987654, "new@example.com", "long enough"),
                "Partner 987654 not found",
            ),
        }

        runs = await asyncio.gather(
            *(tessera_cli(database_url, tmp_path, *args, "--json") for args, _ in refused.values())
        )

        assert {
            name: (run.returncode, run.stdout, run.error) for name, run in zip(refused, runs, strict=True)
        } == {name: (1, "", message) for name, (_, message) in refused.items()}
        assert await count(database, AdminUser) == 1


class TestRoot:
    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    async def test_the_root_redirects_to_the_admin_ui(self, client: httpx.AsyncClient, method: str) -> None:
        response = await client.request(method, "/")

        assert (response.status_code, response.headers["location"]) == (307, "/admin/")

    async def test_another_method_on_the_root_is_not_a_redirect(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/")

        assert response.status_code == 405
