from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tessera.sailplay import LoyaltyRouter, Params, database, ok
from tessera.tenancy import service

loyalty = LoyaltyRouter()


@loyalty.public("/api/v2/login", "/api/v1/login")
async def login(request: Request, params: Params) -> Response:
    department_id = params.require_integer("store_department_id")
    department_key = params.require("store_department_key")
    pin_code = params.require("pin_code")
    settings = request.app.state.settings
    async with database(request).transaction() as session:
        result = await service.login(
            session, department_id, department_key, pin_code, settings.token_ttl_seconds
        )
    return ok(token=result.token, pin_codes=result.pin_codes)
