"""Prometheus metrics of this process (SPEC §9); ``/metrics`` (``tessera.health``) serves them.

With ``tessera serve --workers N`` each worker process writes its counts to files in
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` answers their sum, whichever process serves it
(prometheus-client's multiprocess mode). What is read from the database (the outbox, waiting
runs) is one answer for every process, so it is computed at scrape time, not counted here.

No label carries a secret, a phone, an email or a code: routes are templates (``/api/v1/
messages/{message_id}``), channels and outcomes are fixed words.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

REQUESTS = Counter(
    "tessera_requests_total",
    "API requests answered, by route template, method and status",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "tessera_request_duration_seconds",
    "Time to answer an API request, by route template",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DELIVERIES = Counter(
    "tessera_delivery_attempts_total",
    "Delivery attempts by channel and outcome (sent, retry, failed)",
    ["channel", "outcome"],
)
WORKFLOW_STEPS = Counter(
    "tessera_workflow_steps_total",
    "Workflow steps by type and outcome (done, retry, failed)",
    ["type", "outcome"],
)
IMPORTS_RUNNING = Gauge(
    "tessera_imports_running", "Code and certificate imports in progress", multiprocess_mode="livesum"
)

#: Route label of a request no route took (an unknown path): one value, whatever the path was.
UNKNOWN_ROUTE = "(unknown)"


def process_metrics() -> bytes:
    """This process's metrics, or every process's summed in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
