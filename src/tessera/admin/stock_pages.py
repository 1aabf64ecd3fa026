"""Stock: the dashboard, uploads of promo codes and certificates, and group settings."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData, UploadFile

from tessera import errors
from tessera.admin.web import (
    AdminNotFound,
    Page,
    missing_is_404,
    redirect,
    signed_in_page,
    text_fields,
    uploaded_file,
)
from tessera.certificates import repository as certificate_repository
from tessera.certificates import rules as certificate_rules
from tessera.certificates import service as certificates
from tessera.clock import parse_datetime
from tessera.imports.bulk import Progress
from tessera.imports.parsers import FileFormat, detect_format
from tessera.promocodes import repository as promocode_repository
from tessera.promocodes import rules as promocode_rules
from tessera.promocodes import service as promocodes
from tessera.promocodes.models import PromocodeGroup
from tessera.promocodes.rules import GroupCounts
from tessera.promocodes.schemas import marketing_actions
from tessera.tenancy import repository as tenancy_repository

router = APIRouter(include_in_schema=False)

#: How many codes or certificates a group page lists.
GROUP_PAGE_ROWS = 25
UPLOAD_ID = re.compile(r"[0-9a-f-]{8,40}")


class ImportProgress:
    """How far each running import has got, for the upload page to poll while it waits.

    In-process: with several server processes a poll may reach another one, which answers 404,
    and the page then shows an indeterminate bar. The import itself is unaffected.
    """

    def __init__(self) -> None:
        self._running: dict[tuple[int, str], tuple[int, int]] = {}

    @contextlib.contextmanager
    def track(self, partner_id: int, upload_id: str | None) -> Iterator[Progress | None]:
        if not upload_id or not UPLOAD_ID.fullmatch(upload_id):
            yield None
            return
        key = (partner_id, upload_id)

        def update(done: int, total: int) -> None:
            self._running[key] = (done, total)

        self._running[key] = (0, 0)
        try:
            yield update
        finally:
            self._running.pop(key, None)

    def of(self, partner_id: int, upload_id: str) -> tuple[int, int] | None:
        return self._running.get((partner_id, upload_id))


import_progress = ImportProgress()


def stock_level(group: PromocodeGroup, counts: GroupCounts) -> str:
    """``alarm``, ``low`` or ``ok``: where the group's free codes stand against its thresholds."""
    level, _ = promocode_rules.low_stock_level(counts.unused, group.low_stock_warning, group.low_stock_alarm)
    return {0: "ok", 1: "low", 2: "alarm"}[level]


@router.get("/admin/", response_class=HTMLResponse)
async def dashboard(page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.reading() as session:
        groups = await promocodes.list_groups(session, page.partner_id)
        certificate_groups = await certificates.list_groups(session, page.partner_id, None)
        departments = await tenancy_repository.department_names(session, page.partner_id)
    return page.render(
        "dashboard.html",
        groups=[(group, counts, stock_level(group, counts)) for group, counts in groups],
        certificate_groups=certificate_groups,
        departments=departments,
    )


async def _upload_page(page: Page, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    async with page.database.reading() as session:
        departments = await tenancy_repository.list_departments(session, page.partner_id)
    kind = context.pop("kind", None) or page.request.query_params.get("kind", "promocodes")
    form = context.pop("form", None) or {"group": page.request.query_params.get("group", "")}
    return page.render(
        "upload.html",
        status_code=status_code,
        kind="certificates" if kind == "certificates" else "promocodes",
        form=form,
        departments=departments,
        **context,
    )


@router.get("/admin/upload", response_class=HTMLResponse)
async def upload_form(page: Page = Depends(signed_in_page)) -> Response:
    return await _upload_page(page)


def _uploaded(form: FormData) -> tuple[UploadFile, FileFormat]:
    """The form's file and its format, or the API's -4201 for a missing or unknown one."""
    upload = uploaded_file(form, "file")
    if upload is None:
        raise errors.InvalidFile(reason="choose a file to upload")
    return upload, detect_format(upload.filename)


@router.post("/admin/upload/promocodes")
async def upload_promocodes(page: Page = Depends(signed_in_page)) -> Response:
    form = await page.request.form()
    fields = text_fields(form)
    try:
        upload, fmt = _uploaded(form)
        group_type = promocode_rules.parse_group_type(fields.get("type") or None)
        expires_at = parse_datetime(fields.get("expires_at") or None, "expires_at")
        with import_progress.track(page.partner_id, fields.get("upload_id")) as on_progress:
            async with page.database.transaction() as session:
                group, imported = await promocodes.import_codes(
                    session,
                    page.partner_id,
                    name=fields.get("group", ""),
                    stream=upload.file,
                    fmt=fmt,
                    group_type=group_type if fields.get("type") else None,
                    # Unticked: "as the group is" for an existing group; new groups are single-use.
                    apply_items_once=False if fields.get("multi_use") == "on" else None,
                    expires_at=expires_at,
                    on_progress=on_progress,
                )
    except errors.TesseraError as error:
        return await _upload_page(page, status_code=422, kind="promocodes", form=fields, error=error)
    return redirect(f"/admin/promocodes/groups/{group.id}?imported={imported}")


@router.post("/admin/upload/certificates")
async def upload_certificates(page: Page = Depends(signed_in_page)) -> Response:
    form = await page.request.form()
    fields = text_fields(form)
    try:
        upload, fmt = _uploaded(form)
        value = certificate_rules.parse_value(fields.get("value", ""))
        try:
            department_id = int(fields.get("department_id", ""))
        except ValueError:
            raise errors.MissingField("department_id") from None
        with import_progress.track(page.partner_id, fields.get("upload_id")) as on_progress:
            async with page.database.transaction() as session:
                group, imported = await certificates.import_certificates(
                    session,
                    page.partner_id,
                    department_id=department_id,
                    name=fields.get("group", ""),
                    value=value,
                    stream=upload.file,
                    fmt=fmt,
                    on_progress=on_progress,
                )
    except errors.TesseraError as error:
        return await _upload_page(page, status_code=422, kind="certificates", form=fields, error=error)
    return redirect(f"/admin/certificates/groups/{group.id}?imported={imported}")


@router.get("/admin/upload/progress")
async def upload_progress(page: Page = Depends(signed_in_page)) -> Response:
    found = import_progress.of(page.partner_id, page.request.query_params.get("id", ""))
    if found is None:
        return JSONResponse({"error": "no import with this id is running in this process"}, status_code=404)
    done, total = found
    return JSONResponse({"done": done, "total": total})


def _imported_count(page: Page) -> int | None:
    """How many rows the upload that led here imported (its redirect says), for the notice."""
    imported = page.request.query_params.get("imported", "")
    return int(imported) if imported.isdigit() else None


def _group_form(group: PromocodeGroup) -> dict[str, str]:
    def plain(value: object) -> str:
        return "" if value is None else f"{value}"

    return {
        "name": group.name,
        "enabled": "on" if group.enabled else "",
        "low_stock_warning": plain(group.low_stock_warning),
        "low_stock_alarm": plain(group.low_stock_alarm),
        "discount_type": group.discount_type or "none",
        "discount_value": plain(group.discount_value),
        "skus": ", ".join(group.discount_skus or []),
        "min_cart_total": plain(group.min_cart_total),
    }


async def _group_page(page: Page, group_id: int, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    async with page.database.reading() as session:
        group = await promocode_repository.get_group(session, page.partner_id, group_id)
        if group is None:
            raise AdminNotFound()
        counts = await promocodes.counts_of(session, group)
        codes = await promocode_repository.codes_of_group(session, page.partner_id, group.id, GROUP_PAGE_ROWS)
    return page.render(
        "promocode_group.html",
        status_code=status_code,
        group=group,
        counts=counts,
        level=stock_level(group, counts),
        actions=marketing_actions(group),
        codes=codes,
        imported=_imported_count(page),
        form=context.pop("form", None) or _group_form(group),
        **context,
    )


@router.get("/admin/promocodes/groups/{group_id:tessera_id}", response_class=HTMLResponse)
async def promocode_group(group_id: int, page: Page = Depends(signed_in_page)) -> Response:
    return await _group_page(page, group_id)


def _skus(raw: str) -> list[str] | None:
    """SKUs as typed in the form: commas, spaces or new lines between them; none = whole cart."""
    skus = [sku for sku in raw.replace(",", " ").split() if sku]
    return skus or None


@router.post("/admin/promocodes/groups/{group_id:tessera_id}")
async def edit_promocode_group(group_id: int, page: Page = Depends(signed_in_page)) -> Response:
    fields = text_fields(await page.request.form())
    try:
        discount_type = fields.get("discount_type") or "none"
        discount = promocode_rules.parse_discount(
            discount_type,
            fields.get("discount_value") or None,
            _skus(fields.get("skus", "")),
            fields.get("min_cart_total") or None,
        )
        low_stock = {
            field: promocode_rules.parse_threshold(fields.get(field), field)
            for field in ("low_stock_warning", "low_stock_alarm")
        }
        with missing_is_404(errors.PromocodeGroupNotFound):
            async with page.database.transaction() as session:
                await promocodes.edit_group(
                    session,
                    page.partner_id,
                    group_id,
                    enabled=fields.get("enabled") == "on",
                    name=fields.get("name", ""),
                    discount=discount,
                    low_stock=low_stock,
                )
    except errors.TesseraError as error:
        fields.setdefault("enabled", "")
        return await _group_page(page, group_id, status_code=422, form=fields, error=error)
    return redirect(f"/admin/promocodes/groups/{group_id}?saved=1")


@router.get("/admin/certificates/groups/{group_id:tessera_id}", response_class=HTMLResponse)
async def certificate_group(group_id: int, page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.reading() as session:
        found = await certificates.list_groups(session, page.partner_id, None, group_id=group_id)
        if not found:
            raise AdminNotFound()
        [(group, total, activated, used)] = found
        rows = await certificate_repository.certificates_of_group(
            session, page.partner_id, group.id, GROUP_PAGE_ROWS
        )
        department = await tenancy_repository.get_department(session, group.department_id)
    return page.render(
        "certificate_group.html",
        group=group,
        total=total,
        activated=activated,
        used=used,
        certificates=rows,
        department=department,
        imported=_imported_count(page),
    )
