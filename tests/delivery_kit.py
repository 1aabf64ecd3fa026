"""What the delivery tests share: a real SMTP server, a real SMS gateway, the messaging API as an
eSputnik client calls it, and the worker driven pass by pass (the fixtures are in conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from tessera.clock import utcnow
from tessera.db import Database
from tessera.messaging.models import Delivery, WorkflowRun
from tessera.messaging.worker import Worker
from tessera.tenancy import service as tenancy

TESSERA = Path(sys.executable).with_name("tessera")
#: How long a drain may take before the test fails (a safety net, never an assertion on speed).
DRAIN_DEADLINE = 120.0


class Loyalty(Protocol):
    async def call(self, path: str, files: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]: ...


def free_port() -> int:
    """A port nothing listens on right now (aiosmtpd's Controller cannot be given port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- a real SMTP server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    envelope_to: tuple[str, ...]
    message: EmailMessage

    @property
    def to(self) -> str:
        (recipient,) = self.envelope_to
        return recipient

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else ""

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return str(part.get_content()) if part is not None else ""


class Mailbox:
    """The aiosmtpd handler: keeps every message it accepted.

    ``delay`` makes each message take that long *before* it is accepted, like a slow server; a client
    that disconnects meanwhile (a killed worker) cancels the handler, so that message is not kept.
    ``reject_first`` answers a temporary 451 to that many messages before accepting any.
    """

    def __init__(self) -> None:
        self.delay = 0.0
        #: Set when a message's DATA begins (the server runs in its own thread).
        self.started = threading.Event()
        self.reject_first = 0
        self.rejected = 0
        self._lock = threading.Lock()
        self._mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.started.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            if self.rejected < self.reject_first:
                self.rejected += 1
                return "451 4.3.0 Try again later"
            message = email.message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self._mails.append(Mail(tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @property
    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    def count(self) -> int:
        with self._lock:
            return len(self._mails)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a fixed port: ``stop()`` takes it down, ``start()`` brings a new one up
    on the same port (what a worker sees as "SMTP down for a while, then up")."""

    def __init__(self, mailbox: Mailbox, port: int) -> None:
        self.mailbox = mailbox
        self.port = port
        self.url = f"smtp://127.0.0.1:{port}"
        self._controller: Controller | None = None

    def start(self) -> None:
        assert self._controller is None
        controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# --- a real SMS gateway --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    answered: int


class SmsGateway:
    """A minimal HTTP/1.1 server (one request per connection) that records each JSON body it gets and
    answers 500 to the first ``fail_first`` requests, 200 after."""

    def __init__(self) -> None:
        self.fail_first = 0
        self.requests: list[GatewayRequest] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", free_port())
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/sms/send"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {}
            for line in header_lines:
                name, colon, value = line.partition(":")
                if colon:
                    headers[name.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            status = 500 if len(self.requests) < self.fail_first else 200
            self.requests.append(GatewayRequest(method, path, headers, json.loads(raw), status))
            payload = b'{"error":"gateway is down"}' if status == 500 else b'{"status":"accepted"}'
            reason = "Internal Server Error" if status == 500 else "OK"
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


# --- the messaging API, as an eSputnik client calls it --------------------------------------------------


class Api:
    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {key}"}

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers)

    async def created(self, path: str, body: Any) -> int:
        response = await self.post(path, body)
        assert response.status_code == 200, response.text
        created: int = response.json()["id"]
        return created

    async def email_message(self, html: str, subject: str = "Your promo code") -> int:
        body = {"name": "Promo", "from": "shop@example.com", "subject": subject, "htmlText": html}
        return await self.created("/api/v1/messages/email", body)

    async def sms_message(self, text: str, sender: str = "Shop") -> int:
        return await self.created("/api/v1/messages/sms", {"name": "Promo SMS", "from": sender, "text": text})

    async def workflow(self, event: str, steps: list[dict[str, Any]]) -> int:
        body = {"name": f"On {event}", "enabled": True, "trigger": {"event": event}, "steps": steps}
        return await self.created("/api/v1/workflows", body)

    async def event(self, key: str, key_value: str, params: dict[str, Any]) -> None:
        body = {
            "eventTypeKey": key,
            "keyValue": key_value,
            "params": [{"name": name, "value": value} for name, value in params.items()],
        }
        response = await self.post("/api/v1/event", body)
        assert response.status_code == 200, response.text
        assert response.content == b""

    async def smartsend(
        self, message_id: int, recipients: Sequence[tuple[str, dict[str, Any]]], **extra: Any
    ) -> list[str]:
        """Returns the requestIds, in the recipients' order."""
        body = {
            "recipients": [{"locator": to, "jsonParam": json.dumps(data)} for to, data in recipients],
            **extra,
        }
        response = await self.post(f"/api/v1/message/{message_id}/smartsend", body)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["status"] for r in results] == ["OK"] * len(recipients), results
        return [r["requestId"] for r in results]

    async def statuses(self, request_ids: Sequence[str]) -> list[dict[str, Any]]:
        response = await self.http.get(
            "/api/v1/message/status", params={"ids": ",".join(request_ids)}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results


async def api_for(http: httpx.AsyncClient, database: Database, partner_id: int) -> Api:
    async with database.transaction() as session:
        key = await tenancy.create_api_key(session, partner_id)
    return Api(http, key)


# --- driving the worker -------------------------------------------------------------------------------


async def pending(database: Database) -> int:
    """Outbox rows still queued plus workflow runs still active."""
    async with database.reading() as session:
        queued = await session.scalar(select(func.count()).where(Delivery.status == "queued"))
        active = await session.scalar(select(func.count()).where(WorkflowRun.status == "active"))
    return (queued or 0) + (active or 0)


async def make_due(database: Database) -> None:
    """Ends every backoff now: retries become due at once (leases are left alone)."""
    past = utcnow() - timedelta(seconds=1)
    async with database.transaction() as session:
        await session.execute(update(Delivery).where(Delivery.status == "queued").values(available_at=past))
        await session.execute(
            update(WorkflowRun).where(WorkflowRun.status == "active").values(available_at=past)
        )


#: A drain fails this soon once nothing more gets recorded (a worker that sends but never writes
#: the outcome), instead of waiting out DRAIN_DEADLINE.
STALL_SECONDS = 10.0


async def drain(database: Database, *workers: Worker) -> None:
    """Worker passes (all workers at once) until nothing is queued or active."""
    deadline = time.monotonic() + DRAIN_DEADLINE
    left, progressed = await pending(database), time.monotonic()
    while left:
        now = time.monotonic()
        assert now < deadline, "the outbox did not drain"
        assert now - progressed < STALL_SECONDS, f"{left} deliveries or runs stayed pending: nothing recorded"
        done = sum(await asyncio.gather(*(worker.run_once() for worker in workers)))
        if not done:
            await make_due(database)
            await asyncio.sleep(0.05)
        if (now_left := await pending(database)) < left:
            progressed = time.monotonic()
        left = now_left


async def deliveries(database: Database) -> list[Delivery]:
    async with database.reading() as session:
        return list((await session.scalars(select(Delivery).order_by(Delivery.id))).all())


def cli_env(database_url: str, **settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TESSERA_")}
    env["TESSERA_DATABASE_URL"] = database_url
    env.update({f"TESSERA_{name.upper()}": value for name, value in settings.items()})
    return env
