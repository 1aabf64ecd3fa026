"""What operators poll (SPEC §9): ``/healthz`` while the process runs, ``/readyz`` when the database
answers and its schema is the one this code was written for, ``/metrics`` for Prometheus."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from tessera import errors, metrics
from tessera.clock import utcnow
from tessera.db import Database
from tessera.messaging import repository as messaging_repository
from tessera.routing import ApiRoute, JsonResponse
from tessera.sql import Statement

log = logging.getLogger("tessera.health")

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


async def metrics_page(request: Request) -> Response:
    """The process's (or every worker process's) counts, and what the database says now."""
    database: Database = request.app.state.database
    gauges = CollectorRegistry()
    due = Gauge("tessera_outbox_due", "Deliveries due to be sent now", registry=gauges)
    oldest = Gauge(
        "tessera_outbox_oldest_due_seconds", "How long the oldest due delivery has waited", registry=gauges
    )
    waiting = Gauge(
        "tessera_workflow_runs_waiting", "Workflow runs working, backing off or waiting", registry=gauges
    )
    now = utcnow()
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS), database.read() as conn:
            count, since = await messaging_repository.outbox_due(conn, now)
            runs = await messaging_repository.runs_waiting(conn)
    except Exception:  # the database is down: the process's own metrics still answer
        log.warning("metrics: the database could not be read", exc_info=True)
    else:
        due.set(count)
        oldest.set((now - since).total_seconds() if since is not None else 0)
        waiting.set(runs)
    body = metrics.process_metrics() + generate_latest(gauges)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = (
    ApiRoute("/healthz", frozenset({"GET"}), healthz, OPERATOR),
    ApiRoute("/readyz", frozenset({"GET"}), readyz, OPERATOR),
    ApiRoute("/metrics", frozenset({"GET"}), metrics_page, OPERATOR),
)
