from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tessera import errors
from tessera.esputnik import MAX_BODY_BYTES, MessagingRouter, json_body
from tessera.messaging import service
from tessera.messaging.events import parse_event
from tessera.messaging.schemas import EmailMessageIn, SmartsendIn, SmsMessageIn, WorkflowIn, validated
from tessera.routing import JsonResponse
from tessera.sailplay import database
from tessera.triggers import service as triggers

messaging = MessagingRouter()


async def _event(request: Request, partner: int, version: int) -> Response:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise errors.BadRequest("the event is larger than 20 KB", field="body")
    incoming = parse_event(await json_body(request, max_bytes=MAX_BODY_BYTES), version=version)
    async with database(request).write_one() as conn:
        await triggers.record_event(conn, partner, incoming.key, incoming.key_value, incoming.params)
    return Response(status_code=200)


@messaging.route("/api/v1/event", ["POST"])
async def event_v1(request: Request, partner: int) -> Response:
    return await _event(request, partner, version=1)


@messaging.route("/api/v2/event", ["POST"])
async def event_v2(request: Request, partner: int) -> Response:
    return await _event(request, partner, version=2)


@messaging.route("/api/v1/messages/email", ["POST"])
async def create_email(request: Request, partner: int) -> JsonResponse:
    fields = service.message_fields("email", validated(EmailMessageIn, await json_body(request)))
    async with database(request).transaction() as session:
        message = await service.create_message(session, partner, fields)
    return JsonResponse({"id": message.id})


@messaging.route("/api/v1/messages/sms", ["POST"])
async def create_sms(request: Request, partner: int) -> JsonResponse:
    fields = service.message_fields("sms", validated(SmsMessageIn, await json_body(request)))
    async with database(request).transaction() as session:
        message = await service.create_message(session, partner, fields)
    return JsonResponse({"id": message.id})


@messaging.route("/api/v1/messages", ["GET"])
async def list_messages(request: Request, partner: int) -> JsonResponse:
    async with database(request).reading() as session:
        messages = await service.list_messages(session, partner)
    return JsonResponse([service.message_out(m) for m in messages])


@messaging.route("/api/v1/messages/{message_id}", ["GET"])
async def get_message(request: Request, partner: int, message_id: int) -> JsonResponse:
    async with database(request).reading() as session:
        message = await service.get_message(session, partner, message_id)
    return JsonResponse(service.message_out(message))


@messaging.route("/api/v1/messages/{message_id}", ["PUT"])
async def replace_message(request: Request, partner: int, message_id: int) -> JsonResponse:
    body = await json_body(request)
    db = database(request)
    async with db.transaction() as session:
        current = await service.get_message(session, partner, message_id)
        model: type[EmailMessageIn] | type[SmsMessageIn] = (
            EmailMessageIn if current.channel == "email" else SmsMessageIn
        )
        fields = service.message_fields(current.channel, validated(model, body))
        message = await service.replace_message(session, partner, message_id, fields)
    return JsonResponse(service.message_out(message))


@messaging.route("/api/v1/messages/{message_id}", ["DELETE"])
async def delete_message(request: Request, partner: int, message_id: int) -> Response:
    async with database(request).transaction() as session:
        await service.delete_message(session, partner, message_id)
    return Response(status_code=200)


@messaging.route("/api/v1/message/{message_id}/smartsend", ["POST"])
async def smartsend(request: Request, partner: int, message_id: int) -> JsonResponse:
    body = validated(SmartsendIn, await json_body(request, max_bytes=10 * 1024 * 1024))
    async with database(request).transaction() as session:
        answer = await service.smartsend(session, partner, message_id, body)
    return JsonResponse(answer)


@messaging.route("/api/v1/message/status", ["GET"])
async def message_status(request: Request, partner: int) -> JsonResponse:
    # `ids=a,b` or `ids=a&ids=b`: both are what eSputnik clients send.
    request_ids = [part.strip() for raw in request.query_params.getlist("ids") for part in raw.split(",")]
    request_ids = [r for r in dict.fromkeys(request_ids) if r]
    if not request_ids:
        raise errors.BadRequest("ids is required: one or more requestIds", field="ids")
    if len(request_ids) > 1000:
        raise errors.BadRequest("at most 1000 ids", field="ids")
    async with database(request).reading() as session:
        found = await service.statuses(session, partner, request_ids)
    return JsonResponse({"results": found})


@messaging.route("/api/v1/workflows", ["POST"])
async def create_workflow(request: Request, partner: int) -> JsonResponse:
    body = validated(WorkflowIn, await json_body(request))
    async with database(request).transaction() as session:
        workflow = await service.create_workflow(session, partner, body)
    return JsonResponse(service.workflow_out(workflow))


@messaging.route("/api/v1/workflows", ["GET"])
async def list_workflows(request: Request, partner: int) -> JsonResponse:
    async with database(request).reading() as session:
        workflows = await service.list_workflows(session, partner)
    return JsonResponse([service.workflow_out(w) for w in workflows])


@messaging.route("/api/v1/workflows/{workflow_id}", ["GET"])
async def get_workflow(request: Request, partner: int, workflow_id: int) -> JsonResponse:
    async with database(request).reading() as session:
        workflow = await service.get_workflow(session, partner, workflow_id)
    return JsonResponse(service.workflow_out(workflow))


@messaging.route("/api/v1/workflows/{workflow_id}", ["PUT"])
async def replace_workflow(request: Request, partner: int, workflow_id: int) -> JsonResponse:
    body = validated(WorkflowIn, await json_body(request))
    async with database(request).transaction() as session:
        workflow = await service.replace_workflow(session, partner, workflow_id, body)
    return JsonResponse(service.workflow_out(workflow))


@messaging.route("/api/v1/workflows/{workflow_id}", ["DELETE"])
async def delete_workflow(request: Request, partner: int, workflow_id: int) -> Response:
    async with database(request).transaction() as session:
        await service.delete_workflow(session, partner, workflow_id)
    return Response(status_code=200)
