"""Messages with a live preview, workflows, and the deliveries log."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse, Response

from tessera import errors
from tessera.admin.web import Page, missing_is_404, redirect, signed_in_page, text_fields
from tessera.customers.identifiers import IdentifierKind, customer_refs
from tessera.messaging import delivery_codes, renderer, repository, service, templates
from tessera.messaging.models import DeliveryStatus, Message, Workflow
from tessera.messaging.schemas import EmailMessageIn, SmsMessageIn, WorkflowIn, validated
from tessera.promocodes import service as promocodes
from tessera.sql import Conn

router = APIRouter(include_in_schema=False)

CHANNELS = ("email", "sms")
DELIVERY_STATUSES = tuple(DeliveryStatus)
DELIVERIES_PER_PAGE = 100
MAX_PREVIEW_BYTES = 256 * 1024
STEP_FIELDS = ("type", "group", "as", "message_id", "to_param", "tag", "seconds")
SAMPLE_DATA = '{\n  "code": "SPRING-2026-0001",\n  "name": "Anna"\n}'


# Messages


def _message_form(message: Message) -> dict[str, str]:
    return {
        "name": message.name,
        "from": message.sender,
        "subject": message.subject or "",
        "htmlText": message.html_text or "",
        "plainText": message.plain_text or "",
        "text": message.sms_text or "",
    }


def _message_body(channel: str, fields: dict[str, str]) -> EmailMessageIn | SmsMessageIn:
    if channel == "email":
        return validated(EmailMessageIn, {**fields, "plainText": fields.get("plainText") or None})
    return validated(SmsMessageIn, fields)


@router.get("/admin/messages", response_class=HTMLResponse)
async def messages(page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.reading() as session:
        found = await service.list_messages(session, page.partner_id)
    return page.render("messages.html", messages=found)


def _editor(
    page: Page,
    channel: str,
    form: dict[str, str],
    message: Message | None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    return page.render(
        "message_edit.html",
        status_code=status_code,
        channel=channel,
        form={"sample": SAMPLE_DATA, **form},
        message=message,
        **extra,
    )


@router.get("/admin/messages/new", response_class=HTMLResponse)
async def new_message(page: Page = Depends(signed_in_page)) -> Response:
    channel = "sms" if page.request.query_params.get("channel") == "sms" else "email"
    return _editor(page, channel, {}, None)


@router.post("/admin/messages/new")
async def create_message(page: Page = Depends(signed_in_page)) -> Response:
    fields = text_fields(await page.request.form())
    channel = "sms" if fields.get("channel") == "sms" else "email"
    try:
        body = _message_body(channel, fields)
        async with page.database.transaction() as session:
            message = await service.create_message(
                session, page.partner_id, service.message_fields(channel, body)
            )
    except errors.TesseraError as error:
        return _editor(page, channel, fields, None, status_code=422, error=error)
    return redirect(f"/admin/messages/{message.id}?saved=1")


async def _message(page: Page, message_id: int) -> Message:
    async with page.database.reading() as session:
        with missing_is_404(errors.NotFound):
            return await service.get_message(session, page.partner_id, message_id)


@router.get("/admin/messages/{message_id:tessera_id}", response_class=HTMLResponse)
async def edit_message(message_id: int, page: Page = Depends(signed_in_page)) -> Response:
    message = await _message(page, message_id)
    return _editor(page, message.channel, _message_form(message), message)


@router.post("/admin/messages/{message_id:tessera_id}")
async def save_message(message_id: int, page: Page = Depends(signed_in_page)) -> Response:
    message = await _message(page, message_id)
    fields = text_fields(await page.request.form())
    try:
        body = _message_body(message.channel, fields)
        async with page.database.transaction() as session:
            await service.replace_message(
                session, page.partner_id, message_id, service.message_fields(message.channel, body)
            )
    except errors.TesseraError as error:
        return _editor(page, message.channel, fields, message, status_code=422, error=error)
    return redirect(f"/admin/messages/{message_id}?saved=1")


@router.post("/admin/messages/{message_id:tessera_id}/delete")
async def delete_message(message_id: int, page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.transaction() as session:
        with missing_is_404(errors.NotFound):
            await service.delete_message(session, page.partner_id, message_id)
    return redirect("/admin/messages?deleted=1")


@dataclass(frozen=True, slots=True)
class SampleCodes:
    """What the preview shows for ``$!promocodes.issue('<group>')``: each group's next free code,
    read and not claimed, or why a send could not take one from it (as the delivery would say)."""

    codes: dict[str, str]
    refused: dict[str, str]


async def sample_codes(conn: Conn, partner_id: int, groups: Iterable[str]) -> SampleCodes:
    found = SampleCodes({}, {})
    for name in groups:
        try:
            found.codes[name] = await promocodes.next_to_issue(conn, partner_id, name)
        except delivery_codes.REFUSALS as error:
            found.refused[name] = delivery_codes.refusal(name, error)
    return found


async def render_preview(
    sources: dict[str, str], sample: str, codes: SampleCodes | None = None
) -> dict[str, Any]:
    """Each template rendered with the sample as ``$data`` and ``codes`` as its promo codes, or
    the reason it cannot be; in the renderer's child process, like a delivery, so a template
    cannot exhaust this process."""
    codes = codes or SampleCodes({}, {})
    try:
        data = json.loads(sample) if sample.strip() else {}
    except ValueError as error:
        return {"error": f"Sample data is not valid JSON: {error}"}
    if not isinstance(data, dict):
        return {"error": 'Sample data must be a JSON object, like {"code": "A1"}'}
    rendered: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for field, source in sources.items():
        try:
            templates.check(source)
            no_code = [codes.refused[g] for g in templates.promocode_groups(source) if g in codes.refused]
            if no_code:
                problems[field] = "; ".join(no_code)
            else:
                (rendered[field],) = await renderer.shared().render_one((source,), data, codes.codes)
        except templates.TemplateRefused as refused:
            column = f", column {refused.column}" if refused.column else ""
            where = f" (line {refused.line}{column})" if refused.line else ""
            problems[field] = refused.reason + where
        except templates.RenderFailed as failed:
            problems[field] = str(failed)
    return {"rendered": rendered, "problems": problems}


#: The groups a preview looks up at most: those of an email's three templates.
MAX_PREVIEW_GROUPS = 3 * templates.MAX_GROUPS


def _can_be_saved(source: str) -> bool:
    try:
        templates.check(source)
    except templates.TemplateRefused:
        return False
    return True


@router.post("/admin/messages/preview")
async def preview(page: Page = Depends(signed_in_page)) -> Response:
    """What the editor shows as it is typed: the CSRF token comes in a header (see admin.js)."""
    raw = await page.request.body()
    if len(raw) > MAX_PREVIEW_BYTES:
        return JSONResponse({"error": "The message is too large to preview"}, status_code=413)
    try:
        body = json.loads(raw)
        sources = {str(k): str(v) for k, v in body.get("templates", {}).items()}
        sample = str(body.get("sample", ""))
    except (ValueError, AttributeError):
        return JSONResponse({"error": "Send {templates: {...}, sample: '...'}"}, status_code=400)
    codes = None
    # The groups of the templates that can be saved (``check`` bounds how many each names): what
    # a send would claim, only read. A preview issues nothing.
    if groups := templates.promocode_groups(*filter(_can_be_saved, sources.values())):
        async with page.database.read() as conn:
            codes = await sample_codes(conn, page.partner_id, groups[:MAX_PREVIEW_GROUPS])
    return JSONResponse(await render_preview(sources, sample, codes))


# Workflows


def workflow_body(fields: dict[str, str]) -> dict[str, Any]:
    """The API's workflow JSON from the editor's flat form fields (``steps-<n>-<field>``)."""
    by_index: dict[int, dict[str, str]] = {}
    for key, value in fields.items():
        match = re.fullmatch(r"steps-(\d{1,3})-(\w+)", key)
        if match and match.group(2) in STEP_FIELDS and value:
            by_index.setdefault(int(match.group(1)), {})[match.group(2)] = value
    steps: list[dict[str, Any]] = []
    for index in sorted(by_index):
        raw = by_index[index]
        if not raw.get("type"):
            continue  # a blank row
        step: dict[str, Any] = {"type": raw["type"]}
        wanted = {
            "issue_promocode": ("group", "as"),
            "send": ("message_id", "to_param"),
            "add_tag": ("tag",),
            "wait": ("seconds",),
        }.get(raw["type"], ())
        for name in wanted:
            if name in raw:
                step[name] = raw[name]
        steps.append(step)
    trigger_kind = "tag" if fields.get("trigger_kind") == "tag" else "event"
    return {
        "name": fields.get("name", ""),
        "enabled": fields.get("enabled") == "on",
        "trigger": {trigger_kind: fields.get("trigger_value") or None},
        "steps": steps,
    }


def _workflow_form(workflow: Workflow) -> dict[str, str]:
    form = {
        "name": workflow.name,
        "enabled": "on" if workflow.enabled else "",
        "trigger_kind": "tag" if workflow.trigger_tag else "event",
        "trigger_value": workflow.trigger_tag or workflow.trigger_event or "",
    }
    for index, step in enumerate(workflow.steps):
        for name, value in step.items():
            form[f"steps-{index}-{name}"] = str(value)
    return form


def _step_rows(form: dict[str, str]) -> list[dict[str, str]]:
    """The editor's step rows, as typed: kept after an error, plus one blank row to add a step."""
    indexes = sorted({int(m.group(1)) for k in form if (m := re.fullmatch(r"steps-(\d{1,3})-\w+", k))})
    rows = [{name: form.get(f"steps-{i}-{name}", "") for name in STEP_FIELDS} for i in indexes]
    rows = [row for row in rows if any(row.values())]
    return [*rows, dict.fromkeys(STEP_FIELDS, "")]


async def _workflow_editor(
    page: Page, form: dict[str, str], workflow: Workflow | None, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    async with page.database.reading() as session:
        messages = await service.list_messages(session, page.partner_id)
    return page.render(
        "workflow_edit.html",
        status_code=status_code,
        form=form,
        steps=_step_rows(form),
        workflow=workflow,
        messages=messages,
        **extra,
    )


@router.get("/admin/workflows", response_class=HTMLResponse)
async def workflows(page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.reading() as session:
        found = await service.list_workflows(session, page.partner_id)
        names = {m.id: m.name for m in await service.list_messages(session, page.partner_id)}
    return page.render("workflows.html", workflows=found, message_names=names)


@router.get("/admin/workflows/new", response_class=HTMLResponse)
async def new_workflow(page: Page = Depends(signed_in_page)) -> Response:
    return await _workflow_editor(page, {"enabled": "on", "trigger_kind": "event"}, None)


@router.post("/admin/workflows/new")
async def create_workflow(page: Page = Depends(signed_in_page)) -> Response:
    fields = text_fields(await page.request.form())
    try:
        body = validated(WorkflowIn, workflow_body(fields))
        async with page.database.transaction() as session:
            workflow = await service.create_workflow(session, page.partner_id, body)
    except errors.TesseraError as error:
        return await _workflow_editor(page, fields, None, status_code=422, error=error)
    return redirect(f"/admin/workflows/{workflow.id}?saved=1")


async def _workflow(page: Page, workflow_id: int) -> Workflow:
    async with page.database.reading() as session:
        with missing_is_404(errors.NotFound):
            return await service.get_workflow(session, page.partner_id, workflow_id)


@router.get("/admin/workflows/{workflow_id:tessera_id}", response_class=HTMLResponse)
async def edit_workflow(workflow_id: int, page: Page = Depends(signed_in_page)) -> Response:
    workflow = await _workflow(page, workflow_id)
    return await _workflow_editor(page, _workflow_form(workflow), workflow)


@router.post("/admin/workflows/{workflow_id:tessera_id}")
async def save_workflow(workflow_id: int, page: Page = Depends(signed_in_page)) -> Response:
    workflow = await _workflow(page, workflow_id)
    fields = text_fields(await page.request.form())
    try:
        body = validated(WorkflowIn, workflow_body(fields))
        async with page.database.transaction() as session:
            await service.replace_workflow(session, page.partner_id, workflow_id, body)
    except errors.TesseraError as error:
        return await _workflow_editor(page, fields, workflow, status_code=422, error=error)
    return redirect(f"/admin/workflows/{workflow_id}?saved=1")


@router.post("/admin/workflows/{workflow_id:tessera_id}/delete")
async def delete_workflow(workflow_id: int, page: Page = Depends(signed_in_page)) -> Response:
    async with page.database.transaction() as session:
        with missing_is_404(errors.NotFound):
            await service.delete_workflow(session, page.partner_id, workflow_id)
    return redirect("/admin/workflows?deleted=1")


# Deliveries


def _recipient_filter(raw: str) -> str | None:
    """Recipients are stored normalised: a typed phone or email is normalised the same way."""
    raw = raw.strip()
    if not raw:
        return None
    return next(
        (ref.value for ref in customer_refs(raw) if ref.kind is not IdentifierKind.ORIGIN_USER_ID), raw
    )


@router.get("/admin/deliveries", response_class=HTMLResponse)
async def deliveries(page: Page = Depends(signed_in_page)) -> Response:
    params = page.request.query_params
    status = params.get("status") if params.get("status") in DELIVERY_STATUSES else None
    channel = params.get("channel") if params.get("channel") in CHANNELS else None
    recipient = params.get("recipient", "")[:320]
    before = params.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) <= 18 else None
    async with page.database.reading() as session:
        rows = await repository.list_deliveries(
            session,
            page.partner_id,
            status=status,
            channel=channel,
            recipients=[wanted] if (wanted := _recipient_filter(recipient)) else [],
            before_id=before_id,
            limit=DELIVERIES_PER_PAGE + 1,
        )
    more = len(rows) > DELIVERIES_PER_PAGE
    rows = rows[:DELIVERIES_PER_PAGE]
    filters = {"status": status or "", "channel": channel or "", "recipient": recipient}
    return page.render(
        "deliveries.html",
        deliveries=rows,
        filters=filters,
        next_before=rows[-1][0].id if more else None,
        statuses=DELIVERY_STATUSES,
        channels=CHANNELS,
    )
