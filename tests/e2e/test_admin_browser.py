"""The admin UI in a real browser (Debian's Chromium driven by Playwright), against a real server
on a real port: one marketer's journey through every kind of page, and one partner's admin trying
another partner's URLs. Each page is saved as a screenshot in ``screenshots/`` for a person to
look at.

CI (`.ci/run`) installs Chromium and sets TESSERA_REQUIRE_BROWSER=1, so there a missing browser
fails the run; a plain `make test` on a machine without Chromium skips these tests and says so.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tessera.admin import service as admin_service
from tessera.app import create_app
from tessera.config import Settings
from tessera.db import Database
from tessera.tenancy import service as tenancy

playwright_api = pytest.importorskip("playwright.async_api")

#: Debian's package by default; TESSERA_CHROMIUM names another Chromium build.
CHROMIUM = shutil.which(os.environ.get("TESSERA_CHROMIUM", "chromium"))
REQUIRED = os.environ.get("TESSERA_REQUIRE_BROWSER") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
#: Chromium as root on a machine with no network: no sandbox, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
EXPECT_TIMEOUT_MS = 15_000
GREETING = "<p>Hello $!data.get('name'), your code is <b>$!data.get('code')</b></p>"

pytestmark = pytest.mark.slow

if CHROMIUM is None:
    message = "Chromium is not installed (apt-get install chromium): the admin UI browser tests are skipped"
    if REQUIRED:
        raise RuntimeError(message.replace("are skipped", "are required here (TESSERA_REQUIRE_BROWSER=1)"))
    pytestmark = [pytestmark, pytest.mark.skip(reason=message)]

expect = playwright_api.expect
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def base_url(settings: Settings, database: Database) -> AsyncIterator[str]:
    """The whole app, delivery worker included, served by uvicorn on a free port."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, database), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


async def new_partner(database: Database, email: str) -> tenancy.NewDepartment:
    async with database.transaction() as session:
        department = await tenancy.create_department(session, f"{email.split('@')[0]} shop")
        await admin_service.create_admin(session, department.partner_id, email, PASSWORD)
    return department


class Screenshots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.count = 0

    async def take(self, page: Any, name: str) -> None:
        self.count += 1
        await page.screenshot(path=self.folder / f"{self.count:02d}-{name}.png", full_page=True)


async def sign_in(page: Any, base_url: str, email: str) -> None:
    await page.goto(f"{base_url}/admin/")
    await expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def count_cell(scope: Any, name: str) -> Any:
    return scope.locator(f'[data-count="{name}"]')


def thousands(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")


async def activate_over_api(
    base_url: str, department: tenancy.NewDepartment, number: str, phone: str
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        login = await http.post(
            "/api/v2/login/",
            data={
                "store_department_id": department.store_department_id,
                "store_department_key": department.store_department_key,
                "pin_code": department.pin_code,
            },
        )
        token = login.json()["token"]
        auth = {"token": token, "store_department_id": department.store_department_id}
        added = await http.post("/api/v2/users/add/", data={**auth, "user_phone": phone})
        assert added.json()["status"] == "ok", added.text
        activated = await http.post(
            "/api/v2/promocodes/activate/",
            data={
                **auth,
                "user_phone": phone,
                "group_name": "SPRING",
                "number": number,
            },
        )
        assert activated.json() == {"status": "ok", "promocode_status": 2}, activated.text


async def test_marketer_journey(
    base_url: str, browser: Any, database: Database, database_url: str, tmp_path: Path
) -> None:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    shots = Screenshots(SCREENSHOTS / f"journey-{backend}")
    department = await new_partner(database, "marketer@shop.example")
    codes_file = tmp_path / "spring.txt"
    codes_file.write_text("".join(f"SPRING-{n:04d}\n" for n in range(1, 1001)))

    page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # Sign in; the dashboard starts empty and says what to do.
    await page.goto(f"{base_url}/admin/")
    await shots.take(page, "sign-in")
    await sign_in(page, base_url, "marketer@shop.example")
    await expect(page.get_by_text("No promo-code groups yet")).to_be_visible()
    await shots.take(page, "dashboard-empty")

    # Upload 1,000 codes: the progress bar shows, then the group page with its counts.
    await page.get_by_role("link", name="Upload", exact=True).click()
    await page.get_by_label("Group name").fill("SPRING")
    await page.get_by_label("Type").select_option("activation")
    await page.get_by_label("File").set_input_files(codes_file)
    await shots.take(page, "upload")
    await page.get_by_role("button", name="Upload codes").click()
    await expect(page.get_by_role("status")).to_have_text(f"Imported {thousands(1000)} codes into SPRING.")
    await expect(count_cell(page, "total")).to_have_text(thousands(1000))
    await expect(count_cell(page, "unused")).to_have_text(thousands(1000))
    await shots.take(page, "group-after-upload")

    # The dashboard shows the group's counts and stock bar.
    await page.get_by_role("link", name="Dashboard").click()
    row = page.locator('tr[data-group="SPRING"]')
    await expect(count_cell(row, "total")).to_have_text(thousands(1000))
    await expect(count_cell(row, "unused")).to_have_text(thousands(1000))
    await expect(count_cell(row, "issued")).to_have_text("0")
    await shots.take(page, "dashboard")

    # Look a code up: it is free.
    await page.get_by_role("link", name="Look up").click()
    await page.get_by_role("searchbox").fill("SPRING-0042")
    await page.get_by_role("button", name="Look up").click()
    found = page.locator("#found-codes tbody tr")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text("free")
    await shots.take(page, "lookup")
    await found.get_by_role("link", name="SPRING-0042").click()
    await expect(page.get_by_text("Nothing has happened to it yet.")).to_be_visible()

    # A customer activates it over the API; the code page and the counts show it.
    await activate_over_api(base_url, department, "SPRING-0042", "+7 900 123-45-67")
    await page.reload()
    await expect(page.locator("h1")).to_contain_text("activated")
    await expect(page.locator("#history")).to_contain_text("79001234567")
    await shots.take(page, "code-activated")
    await page.locator("#history").get_by_role("link", name="79001234567").click()
    await expect(page.locator("#tags")).to_contain_text("Applied promo code SPRING")
    await expect(page.locator("#customer-codes")).to_contain_text("SPRING-0042")
    await shots.take(page, "customer")
    await page.get_by_role("link", name="Dashboard").click()
    await expect(count_cell(row, "unused")).to_have_text("999")
    await expect(count_cell(row, "issued")).to_have_text("1")

    # An email message: the preview renders the template with the sample data as it is typed.
    await page.get_by_role("link", name="Messages").click()
    await expect(page.get_by_text("No messages yet")).to_be_visible()
    await page.get_by_role("link", name="New email").click()
    await page.get_by_label("Name", exact=True).fill("Welcome email")
    await page.get_by_label("From").fill("shop@example.com")
    await page.get_by_label("Subject").fill("Your code, $!data.get('name')")
    await page.get_by_label("HTML").fill(
        "<p>Hello $!data.get('name'), your code is <b>$!data.get('code')</b></p>"
    )
    preview = page.frame_locator("iframe[title='HTML preview']")
    await expect(preview.locator("body")).to_have_text("Hello Anna, your code is SPRING-2026-0001")
    await page.get_by_label("Sample data").fill('{"name": "Bob", "code": "SPRING-0007"}')
    await expect(preview.locator("body")).to_have_text("Hello Bob, your code is SPRING-0007")
    await expect(page.locator('[data-preview-field="subject"]')).to_have_text("Your code, Bob")
    await page.get_by_label("HTML").fill("<p>$data.__class__</p>")
    await expect(page.locator("[data-preview-error]")).to_contain_text("may not contain '__'")
    await page.get_by_label("HTML").fill(
        "<p>Hello $!data.get('name'), your code is <b>$!data.get('code')</b></p>"
    )
    await expect(page.locator("[data-preview-error]")).to_be_hidden()
    await shots.take(page, "message-editor")
    await page.get_by_role("button", name="Save message").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    await expect(preview.locator("body")).to_have_text("Hello Anna, your code is SPRING-2026-0001")

    # A workflow: on registration, issue a code and send the email.
    await page.get_by_role("link", name="Workflows").click()
    await page.get_by_role("link", name="New workflow").click()
    await page.get_by_label("Name", exact=True).fill("Welcome")
    await page.get_by_label("Event type or tag").fill("registration")
    steps = page.locator("[data-step]")
    await steps.nth(0).get_by_label("Step 1").select_option("issue_promocode")
    await steps.nth(0).get_by_label("From group").fill("SPRING")
    await page.get_by_role("button", name="Add a step").click()
    await steps.nth(1).get_by_label("Step 2").select_option("send")
    await steps.nth(1).locator('select[name$="-message_id"]').select_option(label="Welcome email (email)")
    await shots.take(page, "workflow-editor")
    await page.get_by_role("button", name="Save workflow").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    await page.get_by_role("link", name="Workflows").click()
    listed = page.locator("#workflows tbody tr")
    await expect(listed).to_have_count(1)
    await expect(listed).to_contain_text("event registration")
    await expect(listed).to_contain_text("issue a code from SPRING → send “Welcome email”")
    await shots.take(page, "workflows")

    for name in ("Deliveries", "Settings"):
        await page.get_by_role("link", name=name, exact=True).click()
        await expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
        await shots.take(page, name.lower())

    # Sign out: the admin UI asks to sign in again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    await page.goto(f"{base_url}/admin/")
    await expect(page).to_have_url(re.compile(r"/admin/login"))
    await shots.take(page, "signed-out")
    assert errors == [], errors


async def test_an_admin_cannot_open_another_partners_group_by_url(
    base_url: str, browser: Any, database: Database, database_url: str
) -> None:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    shots = Screenshots(SCREENSHOTS / f"isolation-{backend}")
    await new_partner(database, "owner@first.example")
    await new_partner(database, "other@second.example")

    owner = await (await browser.new_context()).new_page()
    await sign_in(owner, base_url, "owner@first.example")
    await owner.get_by_role("link", name="Upload", exact=True).click()
    await owner.get_by_label("Group name").fill("VIP")
    await owner.get_by_label("File").set_input_files(
        files=[{"name": "vip.csv", "mimeType": "text/csv", "buffer": b"VIP-1\nVIP-2\n"}]
    )
    await owner.get_by_role("button", name="Upload codes").click()
    await expect(owner.get_by_role("status")).to_contain_text("Imported 2 codes")
    group_url = owner.url.split("?")[0]
    await owner.get_by_role("link", name="VIP-1").click()
    code_url = owner.url

    other = await (await browser.new_context()).new_page()
    await sign_in(other, base_url, "other@second.example")
    await expect(other.locator('tr[data-group="VIP"]')).to_have_count(0)
    for url in (group_url, code_url):
        response = await other.goto(url)
        assert response is not None and response.status == 404, url
        await expect(other.get_by_role("heading", name="Not found")).to_be_visible()
        await expect(other.get_by_text("VIP")).to_have_count(0)
    await shots.take(other, "other-partners-group")
    await other.goto(f"{base_url}/admin/lookup?q=VIP-1")
    await expect(other.get_by_text("Nothing matches")).to_be_visible()

    # The owner still sees it.
    response = await owner.goto(group_url)
    assert response is not None and response.status == 200


async def test_a_refused_upload_shows_the_apis_error_and_keeps_the_form(
    base_url: str, browser: Any, database: Database, database_url: str
) -> None:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    shots = Screenshots(SCREENSHOTS / f"refused-upload-{backend}")
    await new_partner(database, "careful@shop.example")
    page = await (await browser.new_context()).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await sign_in(page, base_url, "careful@shop.example")

    await page.get_by_role("link", name="Upload", exact=True).click()
    await page.get_by_label("Group name").fill("AUTUMN")
    await page.get_by_label("File").set_input_files(
        files=[{"name": "autumn.txt", "mimeType": "text/plain", "buffer": b"AUT-1\nAUT-2\nAUT-1\n"}]
    )
    await page.get_by_role("button", name="Upload codes").click()

    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Duplicate numbers in file (-4202)")
    await expect(alert).to_contain_text("AUT-1")
    await expect(page.get_by_label("Group name")).to_have_value("AUTUMN")
    await shots.take(page, "refused-upload")
    await page.get_by_role("link", name="Dashboard").click()
    await expect(page.get_by_text("No promo-code groups yet")).to_be_visible()
    assert errors == [], errors
