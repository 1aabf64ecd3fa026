"""SPEC §9, "API documents": ``/openapi.json`` describes every route served and no other, is valid
OpenAPI 3.1, and the service answers as it says. ``/docs`` renders it from Tessera's own files.

Schemathesis generates requests for each operation from the document (examples, valid and
invalid data), sends them to the ASGI app in-process, logged in on both faces (a department's
token for the loyalty face, an API key for the messaging face), and checks every answer: no 5xx,
a documented status and content type, a body that matches its schema, the documented headers.

More examples: ``TESSERA_OPENAPI_EXAMPLES=200 pytest tests/e2e/test_openapi.py``.
The suite runs the same examples every time, so a CI run is repeatable; ``TESSERA_FUZZ_RANDOM=1``
draws new ones (what found the NUL in message/status).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import login
from tessera import apidoc
from tessera.apidoc import table
from tessera.app import create_app
from tessera.config import Settings
from tessera.db import Database
from tessera.esputnik import MESSAGING
from tessera.health import OPERATOR
from tessera.routing import ApiRoute, TesseraApp
from tessera.sailplay import LOYALTY
from tessera.tenancy import service as tenancy

EXAMPLES = int(os.environ.get("TESSERA_OPENAPI_EXAMPLES", "12"))
#: Draw new examples each run instead of the fixed sequence.
EXPLORE = os.environ.get("TESSERA_FUZZ_RANDOM") == "1"
BASE_URL = "http://tessera.test"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _routes_of_the_service() -> list[ApiRoute]:
    """The routes a service serves, read without a database (nothing connects until a request)."""
    url = f"sqlite:///{Path(tempfile.gettempdir()) / 'tessera-openapi-never-opened.db'}"
    return create_app(Settings(database_url=url), Database(url)).routes.routes()


DOCUMENT = apidoc.document(_routes_of_the_service())
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [(path, method.upper()) for path, item in DOCUMENT["paths"].items() for method in item]


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in document["paths"].items() for method in item}


@pytest.fixture
def app(settings: Settings, database: Database) -> TesseraApp:
    # Generated requests come fast: no rate limit, and look-up misses never lock the client out.
    quiet = settings.model_copy(update={"rate_limit_per_second": 0, "lookup_misses_per_minute": 0})
    return create_app(quiet, database)


@pytest.fixture
async def http(app: TesseraApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


# -- (a) every route served is documented, and nothing else ---------------------------------------


async def test_the_document_describes_every_route_served_method_by_method(
    app: TesseraApp, http: httpx.AsyncClient
) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    served = {(route.path, method) for route in app.routes.routes() for method in route.methods}
    documented = _documented(response.json())
    assert sorted(served - documented) == [], "served but not documented"
    assert sorted(documented - served) == [], "documented but not served"


def test_every_route_has_its_entry_in_the_table_and_every_entry_a_route() -> None:
    routes = _routes_of_the_service()
    paths = {route.path for route in routes}
    assert sorted(paths - set(table.PATHS)) == [], "served without an entry in tessera.apidoc.table"
    assert sorted(set(table.PATHS) - paths) == [], "an entry in tessera.apidoc.table for no route"
    methods: dict[str, set[str]] = {}
    for route in routes:
        methods.setdefault(route.path, set()).update(route.methods)
        entry = table.PATHS[route.path]
        if route.face is LOYALTY:
            assert isinstance(entry, table.Loyalty), route.path
            assert route.methods == {"GET", "POST"}, route.path
        else:
            assert route.face in (MESSAGING, OPERATOR), route.path
            kind = table.Messaging if route.face is MESSAGING else table.Operator
            assert isinstance(entry, dict), route.path
            assert all(isinstance(entry[method], kind) for method in route.methods), route.path
    for path, entry in table.PATHS.items():
        if isinstance(entry, dict):
            assert set(entry) == methods[path], path
    undocumented = [
        f"{method.upper()} {path}"
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if operation.get("summary") == "Not documented"
    ]
    assert undocumented == []


def test_each_loyalty_operation_lists_its_error_codes_with_their_messages() -> None:
    info = DOCUMENT["paths"]["/api/v2/promocodes/activate"]["post"]
    error = info["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"][1]
    codes = error["properties"]["status_code"]["enum"]
    assert {-7, -1000, -1001, -4000, -4100, -4101, -4102, -4103, -4104, -4106} <= set(codes)
    assert "| -4104 | Promocode already activated |" in info["description"]
    assert "| -1000 | Provide required {'field': 'NAME'} |" in info["description"]
    login_codes = DOCUMENT["paths"]["/api/v2/login"]["get"]["responses"]["200"]["content"]
    assert (
        -7 not in login_codes["application/json"]["schema"]["oneOf"][1]["properties"]["status_code"]["enum"]
    )


def test_messaging_bodies_are_the_pydantic_models_own_schemas() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for model in table.MODELS:
        own = model.model_json_schema(ref_template="#/components/schemas/{model}")
        own.pop("$defs", None)
        assert schemas[model.__name__] == own, model.__name__
    body = DOCUMENT["paths"]["/api/v1/workflows"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/WorkflowIn"}


# -- (b) valid OpenAPI 3.1 ------------------------------------------------------------------------


async def test_the_document_served_is_valid_openapi_3_1(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    validate_openapi(document, cls=OpenAPIV31SpecValidator)
    schemathesis.openapi.from_dict(document).validate()
    ids = [operation["operationId"] for item in document["paths"].values() for operation in item.values()]
    assert len(ids) == len(set(ids)) == len(OPERATIONS)
    schemes = document["components"]["securitySchemes"]
    assert (schemes["loyaltyToken"]["in"], schemes["loyaltyToken"]["name"]) == ("query", "token")
    assert {schemes["apiKeyBasic"]["scheme"], schemes["apiKeyBearer"]["scheme"]} == {"basic", "bearer"}


async def test_docs_load_nothing_from_outside(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "https:" not in policy and "http:" not in policy
    resources = re.findall(r'(?:src|href|data-openapi)="([^"]*)"', page.text)
    assert "/openapi.json" in resources and len(resources) >= 4
    for resource in resources:
        if resource.startswith("data:"):
            continue
        assert resource.startswith("/"), resource
        answer = await http.get(resource)
        assert answer.status_code == 200, resource
        assert answer.content, resource
    assert (await http.get("/docs/swagger-ui.css")).headers["content-type"].startswith("text/css")


#: Debian's package by default; TESSERA_CHROMIUM names another Chromium build (as the admin UI's
#: browser tests do). CI sets TESSERA_REQUIRE_BROWSER=1: there a missing browser fails.
CHROMIUM = shutil.which(os.environ.get("TESSERA_CHROMIUM", "chromium"))


@pytest.mark.slow
async def test_docs_render_in_a_browser_that_fetches_nothing_from_outside(http: httpx.AsyncClient) -> None:
    """Chromium opens /docs; every request it makes is answered by the app in-process, and any
    request for another address is recorded and refused."""
    if CHROMIUM is None:
        if os.environ.get("TESSERA_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is not installed, and TESSERA_REQUIRE_BROWSER=1")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.async_api import Route, async_playwright

    outside: list[str] = []
    problems: list[str] = []

    async def serve(route: Route) -> None:
        request = route.request
        if not request.url.startswith(f"{BASE_URL}/"):
            outside.append(request.url)
            await route.abort()
            return
        answer = await http.request(
            request.method, request.url, headers=request.headers, content=request.post_data_buffer
        )
        await route.fulfill(status=answer.status_code, headers=dict(answer.headers), body=answer.content)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        )
        try:
            page = await browser.new_page()
            page.on(
                "console", lambda message: problems.append(message.text) if message.type == "error" else None
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            await page.route("**/*", serve)
            await page.goto(f"{BASE_URL}/docs")
            await page.wait_for_selector(".opblock", timeout=20_000)
            operations = await page.locator(".opblock").count()
        finally:
            await browser.close()
    assert outside == []
    assert problems == []
    assert operations == len(OPERATIONS)


# -- (c) the service answers as documented --------------------------------------------------------


async def send(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request encoded by requests, as schemathesis encodes it, sent through the ASGI app
    (whose answer keeps the request's body, for the checks to read)."""
    prepared = requests.Request(method=method, url=url, **kwargs).prepare()
    assert prepared.method is not None and prepared.url is not None
    return await http.request(
        prepared.method, prepared.url, content=prepared.body, headers=dict(prepared.headers)
    )


#: Each operation's cases: its documented examples, valid data and invalid data (built outside a
#: Hypothesis test: schemathesis runs one of its own to complete the examples).
_STRATEGIES: dict[tuple[str, str], st.SearchStrategy[Case]] = {}


def strategy(path: str, method: str) -> st.SearchStrategy[Case]:
    if (path, method) not in _STRATEGIES:
        operation = SCHEMA[path][method]
        _STRATEGIES[path, method] = st.one_of(
            *operation.get_strategies_from_examples(),
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
    return _STRATEGIES[path, method]


@dataclass
class Live:
    """A logged-in department and an API key of its partner, with data for examples to find."""

    http: httpx.AsyncClient
    token: str
    department: tenancy.NewDepartment
    api_key: str

    async def send(self, case: Case, basic: bool) -> httpx.Response:
        """The request as schemathesis would send it with requests, logged in, through the ASGI app."""
        kwargs = case.as_transport_kwargs(base_url=BASE_URL)
        params = dict(kwargs.get("params") or {})
        headers = dict(kwargs.get("headers") or {})
        security = DOCUMENT["paths"][case.path][case.method.lower()].get("security")
        if security == [apidoc.build.LOYALTY_SECURITY]:
            params.update(token=self.token, store_department_id=str(self.department.store_department_id))
        elif security == apidoc.build.MESSAGING_SECURITY:
            credentials = base64.b64encode(f"tessera:{self.api_key}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}" if basic else f"Bearer {self.api_key}"
        return await send(
            self.http,
            kwargs["method"],
            kwargs["url"],
            params=params,
            headers=headers,
            data=kwargs.get("data"),
            json=kwargs.get("json"),
            files=kwargs.get("files"),
        )


@pytest.fixture
async def live(http: httpx.AsyncClient, database: Database, department: tenancy.NewDepartment) -> Live:
    """What the documented examples name: the customer, group `Summer` and its codes, certificates,
    order `order-1`, message 1, a workflow, a contact. Each answer is checked against the document
    too, so the happy paths that random data seldom reaches (uploads, purchases) are checked."""
    token = await login(http, department)
    async with database.transaction() as session:
        api_key = await tenancy.create_api_key(session, department.partner_id)
    auth = {"token": token, "store_department_id": department.store_department_id}
    loyalty: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
        ("users/add", {"user_phone": "79001234567", "email": "anna@example.com", "first_name": "Anna"}, None),
        (
            "promocodes/numbers/add",
            {"name": "Summer", "type": 2},
            {"file": ("codes.txt", b"SUMMER-1\nSUMMER-2\nSUMMER-3\nSUMMER-4\n")},
        ),
        ("promocodes/groups/edit", {"group_id": 1, "discount_type": "percent", "discount_value": 10}, None),
        (
            "coupons/numbers/add",
            {
                "type": 2,
                "value": 50,
                "name": "Gifts",
                "target_dep_id": department.store_department_id,
                "pin_code": department.pin_code,
            },
            {"file": ("gifts.csv", b"GIFT-1\nGIFT-2\nGIFT-3\n")},
        ),
        (
            "coupons/numbers/activate",
            {"number": "GIFT-1", "target_dep_id": department.store_department_id},
            None,
        ),
        (
            "coupons/numbers/activate",
            {"number": "GIFT-2", "target_dep_id": department.store_department_id},
            None,
        ),
        (
            "promocodes/activate",
            {"user_phone": "79001234567", "group_name": "Summer", "number": "SUMMER-4"},
            None,
        ),
        (
            "purchases/new",
            {
                "cart": '{"1":{"sku":"A1","price":1000,"quantity":1,"min_price":800}}',
                "promocodes": '["SUMMER-4"]',
                "promocodes_info": 1,
                "certificates": '["GIFT-1"]',
                "order_num": "order-1",
                "email": "anna@example.com",
            },
            None,
        ),
    ]
    for path, params, files in loyalty:
        answer = await send(http, "POST", f"{BASE_URL}/api/v2/{path}", data={**auth, **params}, files=files)
        assert answer.json()["status"] == "ok", answer.text
        SCHEMA[f"/api/v2/{path}"]["POST"].validate_response(answer)
    messaging: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/messages/email", table.EMAIL_EXAMPLE),
        ("POST", "/api/v1/messages/sms", table.SMS_EXAMPLE),
        ("POST", "/api/v1/workflows", table.WORKFLOW_EXAMPLE),
        ("POST", "/api/v1/contact", table.CONTACT_EXAMPLE),
        ("POST", "/api/v1/message/{message_id}/smartsend", {"recipients": [{"locator": "anna@example.com"}]}),
    ]
    for method, path, body in messaging:
        url = BASE_URL + path.format(message_id=1)
        answer = await send(http, method, url, json=body, headers={"Authorization": f"Bearer {api_key}"})
        assert answer.status_code == 200, answer.text
        SCHEMA[path][method].validate_response(answer)
    return Live(http, token, department, api_key)


@pytest.fixture
def cases(request: pytest.FixtureRequest) -> st.SearchStrategy[Case]:
    path, method = request.param
    return strategy(path, method)


@pytest.mark.parametrize("cases", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS], indirect=True)
@settings(
    max_examples=EXAMPLES,
    derandomize=not EXPLORE,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
async def test_the_service_answers_as_documented(
    cases: st.SearchStrategy[Case], live: Live, data: st.DataObject
) -> None:
    case = data.draw(cases)
    response = await live.send(case, basic=data.draw(st.booleans()))
    case.validate_response(response, checks=CHECKS)
