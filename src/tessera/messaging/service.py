"""Messages, smartsend, delivery status and workflows (SPEC §8)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tessera import errors
from tessera.clock import isoformat, utcnow
from tessera.customers.identifiers import normalize_email, normalize_phone
from tessera.db import contains_nul
from tessera.messaging import repository, templates
from tessera.messaging.models import Delivery, DeliveryStatus, Message, Workflow
from tessera.messaging.schemas import EmailMessageIn, SmartsendIn, SmsMessageIn, WorkflowIn
from tessera.sql import on_session


def _check_templates(**fields: str | None) -> None:
    """A template is checked when saved: its syntax error comes back with line and column."""
    for field, source in fields.items():
        if source is None:
            continue
        try:
            templates.check(source)
        except templates.TemplateRefused as error:
            refused = errors.BadRequest(f"{field}: {error.reason}", field=field)
            if error.line is not None:
                refused.extra["line"] = error.line
            if error.column is not None:
                refused.extra["column"] = error.column
            raise refused from None


def message_fields(channel: str, body: EmailMessageIn | SmsMessageIn) -> dict[str, Any]:
    if isinstance(body, EmailMessageIn):
        _check_templates(subject=body.subject, htmlText=body.htmlText, plainText=body.plainText)
        return {
            "channel": "email",
            "name": body.name,
            "sender": body.sender,
            "subject": body.subject,
            "html_text": body.htmlText,
            "plain_text": body.plainText,
            "sms_text": None,
        }
    _check_templates(text=body.text)
    return {
        "channel": "sms",
        "name": body.name,
        "sender": body.sender,
        "subject": None,
        "html_text": None,
        "plain_text": None,
        "sms_text": body.text,
    }


def message_out(message: Message) -> dict[str, Any]:
    common = {"id": message.id, "name": message.name, "from": message.sender, "type": message.channel}
    if message.channel == "email":
        return {
            **common,
            "subject": message.subject,
            "htmlText": message.html_text,
            "plainText": message.plain_text,
        }
    return {**common, "text": message.sms_text}


async def create_message(session: AsyncSession, partner_id: int, fields: dict[str, Any]) -> Message:
    return await repository.add_message(session, partner_id=partner_id, **fields)


async def list_messages(session: AsyncSession, partner_id: int) -> Sequence[Message]:
    return await repository.list_messages(session, partner_id)


async def get_message(session: AsyncSession, partner_id: int, message_id: int) -> Message:
    message = await repository.get_message(session, partner_id, message_id)
    if message is None:
        raise errors.NotFound(f"message {message_id} not found")
    return message


async def replace_message(
    session: AsyncSession, partner_id: int, message_id: int, fields: dict[str, Any]
) -> Message:
    message = await get_message(session, partner_id, message_id)
    if fields["channel"] != message.channel:
        raise errors.BadRequest(f"message {message_id} is an {message.channel} message", field="type")
    for name, value in fields.items():
        setattr(message, name, value)
    message.updated_at = utcnow()
    await session.flush()
    return message


async def delete_message(session: AsyncSession, partner_id: int, message_id: int) -> None:
    message = await get_message(session, partner_id, message_id)
    message.deleted_at = utcnow()
    await session.flush()


def _recipient_result(locator: str, request_id: str | None, error: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"id": 0, "locator": locator, "status": "ERROR" if error else "OK"}
    if request_id:
        result["requestId"] = request_id
    if error:
        result["message"] = error
    return result


async def smartsend(
    session: AsyncSession, partner_id: int, message_id: int, body: SmartsendIn
) -> dict[str, Any]:
    """Queues one delivery per valid recipient; each answers OK with a requestId, or ERROR with why."""
    message = await get_message(session, partner_id, message_id)
    if body.email is not None and body.email != (message.channel == "email"):
        raise errors.BadRequest(f"message {message_id} is an {message.channel} message", field="email")
    now = utcnow()
    results = []
    rows = []
    sender_name = (body.fromName or "").strip() or None
    if sender_name is not None and any(ord(char) < 32 or ord(char) == 127 for char in sender_name):
        # It becomes part of a From header: a line break there would let it write headers.
        raise errors.BadRequest(
            "fromName may not contain line breaks or control characters", field="fromName"
        )
    for recipient in body.recipients:
        locator = (recipient.locator or "").strip()
        try:
            normalized = normalize_email(locator) if message.channel == "email" else normalize_phone(locator)
        except errors.TesseraError:
            kind = "email" if message.channel == "email" else "phone number"
            results.append(_recipient_result(locator, None, f"'{locator}' is not valid {kind}"))
            continue
        data, problem = _json_param(recipient.jsonParam)
        if problem:
            results.append(_recipient_result(locator, None, problem))
            continue
        request_id = str(uuid.uuid4())
        rows.append(
            {
                "partner_id": partner_id,
                "request_id": request_id,
                "message_id": message.id,
                "channel": message.channel,
                "recipient": normalized,
                "data": data,
                "sender_name": sender_name,
                "external_request_id": body.externalRequestId,
                "status": DeliveryStatus.QUEUED,
                "attempts": 0,
                "available_at": now,
            }
        )
        results.append(_recipient_result(locator, request_id, None))
    await repository.add_deliveries(session, rows)
    return {"id": 0, "results": results}


def _json_param(raw: Any) -> tuple[dict[str, Any], str | None]:
    """``jsonParam`` is a JSON *string* holding an object (an object itself is accepted too)."""
    if raw is None:
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    if not isinstance(raw, str):
        return {}, "jsonParam must be a JSON string"
    if not raw.strip():
        return {}, None
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply
        return {}, f"jsonParam is not valid JSON: {error}"
    if not isinstance(parsed, dict):
        return {}, "jsonParam must hold a JSON object"
    if contains_nul(parsed):
        return {}, "jsonParam may not contain NUL characters (\\u0000)"
    return parsed, None


def delivery_status(delivery: Delivery, codes: Sequence[repository.CarriedCode] = ()) -> dict[str, Any]:
    """One delivery as ``message/status`` reports it; ``promocodes`` lists the codes it carried
    (SPEC §10), each ``returned`` once the failed delivery gave it back to its group."""
    return {
        "requestId": delivery.request_id,
        "status": delivery.status,
        "statusDescription": delivery.status_reason,
        "attempts": delivery.attempts,
        "locator": delivery.recipient,
        "channel": delivery.channel,
        "messageId": delivery.message_id,
        "externalRequestId": delivery.external_request_id,
        "sentDate": isoformat(delivery.sent_at),
        "createdDate": isoformat(delivery.created_at),
        "promocodes": [
            {"group": code.group_name, "code": code.number, "returned": code.returned_at is not None}
            for code in codes
        ],
    }


async def statuses(
    session: AsyncSession, partner_id: int, request_ids: Sequence[str]
) -> list[dict[str, Any]]:
    found = {
        d.request_id: d for d in await repository.deliveries_by_request_ids(session, partner_id, request_ids)
    }
    carried: dict[int, list[repository.CarriedCode]] = {}
    for code in await repository.carried_codes(await on_session(session), [d.id for d in found.values()]):
        carried.setdefault(code.delivery_id, []).append(code)
    return [
        delivery_status(found[r], carried.get(found[r].id, ()))
        if r in found
        else {"requestId": r, "status": "not found"}
        for r in request_ids
    ]


def workflow_fields(body: WorkflowIn) -> dict[str, Any]:
    return {
        "name": body.name,
        "enabled": body.enabled,
        "trigger_event": body.trigger.event,
        "trigger_tag": body.trigger.tag,
        "steps": [step.dump() for step in body.steps],
    }


def workflow_out(workflow: Workflow) -> dict[str, Any]:
    trigger = {"event": workflow.trigger_event} if workflow.trigger_event else {"tag": workflow.trigger_tag}
    return {
        "id": workflow.id,
        "name": workflow.name,
        "enabled": workflow.enabled,
        "trigger": trigger,
        "steps": workflow.steps,
        "createdDate": isoformat(workflow.created_at),
        "updatedDate": isoformat(workflow.updated_at),
    }


async def _check_workflow_refs(session: AsyncSession, partner_id: int, fields: dict[str, Any]) -> None:
    for index, step in enumerate(fields["steps"]):
        if (
            step["type"] == "send"
            and await repository.get_message(session, partner_id, step["message_id"]) is None
        ):
            # Named as the request's validation errors name a step's field ("steps.0.tag").
            field = f"steps.{index}.message_id"
            raise errors.BadRequest(f"{field}: message {step['message_id']} not found", field=field)


async def create_workflow(session: AsyncSession, partner_id: int, body: WorkflowIn) -> Workflow:
    fields = workflow_fields(body)
    await _check_workflow_refs(session, partner_id, fields)
    return await repository.add_workflow(session, partner_id=partner_id, **fields)


async def list_workflows(session: AsyncSession, partner_id: int) -> Sequence[Workflow]:
    return await repository.list_workflows(session, partner_id)


async def get_workflow(session: AsyncSession, partner_id: int, workflow_id: int) -> Workflow:
    workflow = await repository.get_workflow(session, partner_id, workflow_id)
    if workflow is None:
        raise errors.NotFound(f"workflow {workflow_id} not found")
    return workflow


async def replace_workflow(
    session: AsyncSession, partner_id: int, workflow_id: int, body: WorkflowIn
) -> Workflow:
    workflow = await get_workflow(session, partner_id, workflow_id)
    fields = workflow_fields(body)
    await _check_workflow_refs(session, partner_id, fields)
    for name, value in fields.items():
        setattr(workflow, name, value)
    workflow.updated_at = utcnow()
    await session.flush()
    return workflow


async def delete_workflow(session: AsyncSession, partner_id: int, workflow_id: int) -> None:
    workflow = await get_workflow(session, partner_id, workflow_id)
    workflow.deleted_at = utcnow()
    await session.flush()
