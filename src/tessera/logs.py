"""Log lines for operators (SPEC §9): one per request, delivery attempt and workflow step.

``TESSERA_LOG_FORMAT=json`` writes each as one JSON object (with its fields: ``route``,
``status``, ``partner``, ``request_id``...); the default is a line of text. Nothing that could be
a secret is ever put in a line: requests are logged by route template, never by their path or
query string (SailPlay clients put tokens there), and deliveries by id, never by what they carry.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

#: The fields a line may carry beside its message; only these reach a JSON line.
FIELDS = (
    "method",
    "route",
    "status",
    "duration_ms",
    "partner",
    "request_id",
    "delivery_id",
    "channel",
    "outcome",
    "attempt",
    "run_id",
    "step",
    "step_type",
)
_CONFIGURED = "_tessera_configured"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure(log_format: str = "text", *, requests: bool | None = None) -> None:
    """Sends the ``tessera`` loggers' INFO lines to stderr, once per process; without
    ``requests``, not the line per request (metrics still count every request)."""
    logger = logging.getLogger("tessera")
    if requests is not None:
        logging.getLogger("tessera.requests").setLevel(logging.INFO if requests else logging.WARNING)
    if getattr(logger, _CONFIGURED, False):
        return
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    setattr(logger, _CONFIGURED, True)
