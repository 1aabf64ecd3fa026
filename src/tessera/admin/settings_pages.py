"""Settings: departments with their PIN codes, and API keys for the messaging face."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from tessera import errors
from tessera.admin.web import Page, missing_is_404, redirect, signed_in_page, text_fields
from tessera.tenancy import repository as tenancy_repository
from tessera.tenancy import service as tenancy
from tessera.tenancy.service import ApiKeyAuthenticator

router = APIRouter(include_in_schema=False)


async def _settings_page(page: Page, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    async with page.database.reading() as session:
        departments = await tenancy_repository.list_departments(session, page.partner_id)
        pins = await tenancy_repository.pin_codes_by_department(session, page.partner_id)
        api_keys = await tenancy_repository.list_api_keys(session, page.partner_id)
    return page.render(
        "settings.html",
        status_code=status_code,
        departments=departments,
        pins=pins,
        api_keys=api_keys,
        form=context.pop("form", {}),
        **context,
    )


@router.get("/admin/settings", response_class=HTMLResponse)
async def settings(page: Page = Depends(signed_in_page)) -> Response:
    return await _settings_page(page)


@router.post("/admin/settings/departments")
async def create_department(page: Page = Depends(signed_in_page)) -> Response:
    fields = text_fields(await page.request.form())
    try:
        async with page.database.transaction() as session:
            created = await tenancy.create_department(session, fields.get("name", ""), page.partner_id)
    except errors.TesseraError as error:
        return await _settings_page(page, status_code=422, form=fields, department_error=error)
    # The key is shown this once: only its hash is stored.
    return await _settings_page(page, created_department=created)


@router.post("/admin/settings/departments/{department_id:tessera_id}/pins")
async def add_pin_code(department_id: int, page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.transaction() as session:
        with missing_is_404(errors.DepartmentNotFound):
            pin_code = await tenancy.add_employee(session, page.partner_id, department_id)
    return await _settings_page(page, new_pin=(department_id, pin_code))


@router.post("/admin/settings/api-keys")
async def create_api_key(page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.transaction() as session:
        api_key = await tenancy.create_api_key(session, page.partner_id)
    return await _settings_page(page, created_api_key=api_key)


@router.post("/admin/settings/api-keys/{api_key_id:tessera_id}/revoke")
async def revoke_api_key(api_key_id: int, page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.transaction() as session:
        with missing_is_404(errors.InvalidParameter):
            await tenancy.revoke_api_key(session, page.partner_id, api_key_id)
    authenticator: ApiKeyAuthenticator = page.request.app.state.api_keys
    authenticator.forget_partner(page.partner_id)
    return redirect("/admin/settings?revoked=1")
