"""Log lines for operators (SPEC §9): one per request, delivery attempt and workflow step.

``TESSERA_LOG_FORMAT=json`` writes each as one JSON object (with its fields: ``route``,
``status``, ``partner``, ``request_id``...); the default is a line of text. Nothing that could be
a secret is ever put in a line: requests are logged by route template, never by their path or
query string (SailPlay clients put tokens there), and deliveries by id, never by what they carry.
"""

from __future__ import annotations

import logging
import sys
import time
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


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``; the time's seconds are formatted once a second, not per line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._prefix = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._prefix},{int(record.msecs):03d}"


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines in batches: a request line costs a few microseconds, not a system call.

    A batch is written once it holds 64 KB or is a second old (checked at each line, and by
    ``logging.shutdown`` at exit); a warning or an error is written at once with what is waiting.
    A crash can lose at most the last second of INFO lines.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._waiting: list[str] = []
        self._size = 0
        self._since = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if not self._waiting:
            self._since = time.monotonic()
        self._waiting.append(line)
        self._size += len(line)
        if (
            record.levelno >= logging.WARNING
            or self._size >= 64 * 1024
            or time.monotonic() - self._since >= 1.0
        ):
            self.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            if self._waiting:
                self.stream.write("\n".join(self._waiting) + "\n")
                self._waiting.clear()
                self._size = 0
            super().flush()
        finally:
            self.release()


def configure(log_format: str = "text", *, requests: bool | None = None) -> None:
    """Sends the ``tessera`` loggers' INFO lines to stderr, once per process; without
    ``requests``, not the line per request (metrics still count every request)."""
    logger = logging.getLogger("tessera")
    if requests is not None:
        logging.getLogger("tessera.requests").setLevel(logging.INFO if requests else logging.WARNING)
    if getattr(logger, _CONFIGURED, False):
        return
    # No caller, thread or process names in the records: nothing prints them, and finding them
    # is most of what a log call costs.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = BatchingStreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    setattr(logger, _CONFIGURED, True)
