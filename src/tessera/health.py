"""Health and readiness for operators (SPEC §9): ``/healthz`` while the process runs, ``/readyz``
when the database answers and its schema is the one this code was written for."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from tessera import errors
from tessera.db import Database
from tessera.routing import ApiRoute, JsonResponse
from tessera.sql import Statement

_SCHEMA_VERSION = Statement("SELECT version_num FROM alembic_version")
#: A readiness probe that cannot reach the database answers 503 within this long.
DATABASE_TIMEOUT_SECONDS = 5.0


class NotReady(errors.TransportError):
    status_code = -503
    message = "Not ready"
    http_status = 503


class OperatorFace:
    @staticmethod
    def render_error(error: errors.TesseraError) -> Response:
        return JsonResponse({"status": "error", "reason": error.text}, status_code=error.http_status)


OPERATOR = OperatorFace()


async def healthz(request: Request) -> Response:
    return JsonResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    from tessera import migrate  # alembic is slow to import: only a readiness probe loads it

    database: Database = request.app.state.database
    head = await migrate.head_revision()
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS), database.read() as conn:
            current = await conn.fetchval(_SCHEMA_VERSION)
    except TimeoutError:
        raise NotReady(f"the database did not answer within {DATABASE_TIMEOUT_SECONDS:g} s") from None
    except Exception as error:  # the server is down, or the schema was never created
        raise NotReady(f"the database cannot be read: {type(error).__name__}: run tessera migrate?") from None
    if current != head:
        raise NotReady(f"the schema is at {current}, this code needs {head}: run tessera migrate")
    return JsonResponse({"status": "ok", "schema": head})


ROUTES = (
    ApiRoute("/healthz", frozenset({"GET"}), healthz, OPERATOR),
    ApiRoute("/readyz", frozenset({"GET"}), readyz, OPERATOR),
)
