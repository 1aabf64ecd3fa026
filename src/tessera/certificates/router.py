from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tessera import errors
from tessera.certificates import rules, service
from tessera.clock import isoformat
from tessera.imports.parsers import detect_format
from tessera.sailplay import LoyaltyRouter, Params, database, ok
from tessera.tenancy import service as tenancy
from tessera.tenancy.service import Caller

loyalty = LoyaltyRouter()

#: SPEC names the certificate calls `coupons/...`; the seed's own pages put them under `promocodes/`.
PREFIXES = ("/api/v2/coupons", "/api/v2/promocodes/coupons")


def paths(suffix: str) -> tuple[str, ...]:
    return tuple(prefix + suffix for prefix in PREFIXES)


@loyalty.authed(*paths("/numbers/add"))
async def add_numbers(request: Request, params: Params, caller: Caller) -> Response:
    raw_type = params.get("type")
    if raw_type is not None and raw_type != "2":
        raise errors.InvalidParameter("type", "certificates are type 2")
    value = rules.parse_value(params.require("value"))
    name = params.require("name")
    target_dep_id = params.require_integer("target_dep_id")
    pin_code = params.require("pin_code")
    upload = params.file("file")
    if upload is None:
        raise errors.InvalidFile(reason="no file uploaded in the multipart field 'file'")
    fmt = detect_format(upload.filename)
    async with database(request).transaction() as session:
        await tenancy.check_pin_code(session, caller, pin_code)
        group, imported = await service.import_certificates(
            session,
            caller.partner_id,
            department_id=target_dep_id,
            name=name,
            value=value,
            stream=upload.file,
            fmt=fmt,
        )
    return ok(
        group={"id": group.id, "name": group.name, "dep_id": group.department_id}, imported_count=imported
    )


@loyalty.authed(*paths("/groups/list"))
async def list_groups(request: Request, params: Params, caller: Caller) -> Response:
    department_id = params.integer("target_dep_id")
    async with database(request).reading() as session:
        groups = await service.list_groups(session, caller.partner_id, department_id)
    return ok(
        groups=[
            {
                "id": group.id,
                "name": group.name,
                "create_date": isoformat(group.created_at),
                "dep_id": group.department_id,
                "value": rules.format_value(group.value),
                "total_count": total,
                "activated_count": activated,
                "used_count": used,
            }
            for group, total, activated, used in groups
        ]
    )


@loyalty.authed(*paths("/numbers/status"), lookup=True)
async def status(request: Request, params: Params, caller: Caller) -> Response:
    number = params.require("number")
    async with database(request).reading() as session:
        certificate, group = await service.status(session, caller.partner_id, number)
    return ok(
        number=certificate.number,
        activated=certificate.activated_at is not None,
        used=certificate.used_at is not None,
        deleted=certificate.deleted_at is not None,
        value_type=2,
        value=rules.format_value(group.value),
        group={"id": group.id, "name": group.name},
        dep_id=certificate.department_id,
        activated_date=isoformat(certificate.activated_at),
        used_date=isoformat(certificate.used_at),
        deleted_date=isoformat(certificate.deleted_at),
    )


@loyalty.authed(*paths("/numbers/activate"), lookup=True)
async def activate(request: Request, params: Params, caller: Caller) -> Response:
    number = params.require("number")
    target_dep_id = params.require_integer("target_dep_id")
    async with database(request).write() as conn:
        await service.activate(conn, caller.partner_id, number, target_dep_id)
    return ok(activated=True)


@loyalty.authed(*paths("/numbers/use"), lookup=True)
async def use(request: Request, params: Params, caller: Caller) -> Response:
    number = params.require("number")
    target_dep_id = params.require_integer("target_dep_id")
    async with database(request).write() as conn:
        await service.use(conn, caller.partner_id, number, target_dep_id)
    return ok(used=True)


@loyalty.authed(*paths("/numbers/delete"))
async def delete(request: Request, params: Params, caller: Caller) -> Response:
    number = params.require("number")
    async with database(request).transaction() as session:
        certificate = await service.delete(session, caller.partner_id, number)
    return ok(deleted=True, deleted_date=isoformat(certificate.deleted_at), number=certificate.number)
