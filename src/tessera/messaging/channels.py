"""Sending: email over SMTP (aiosmtplib) and SMS through an HTTP gateway (httpx)."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
import httpx


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One rendered message, ready for its channel."""

    delivery_id: int
    request_id: str
    recipient: str
    sender: str
    subject: str
    html: str
    text: str


#: Called with (delivery id, None when accepted else the reason) right after each attempt, so the
#: outcome is stored before the next message goes: a crash can repeat at most the one in flight.
OnResult = Callable[[int, str | None], Awaitable[None]]
#: Asked right before each message: False when this worker no longer holds its claim.
MaySend = Callable[[int], Awaitable[bool]]
#: How long one send may take (an SMTP exchange, a gateway request) before it fails.
SEND_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """``smtp://[user:password@]host[:port]``; ``smtps://`` for implicit TLS."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"TESSERA_SMTP_URL must look like smtp://host:port, not {url!r}")
        use_tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if use_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
        )


_TAGS = re.compile(r"<[^>]+>")


def email_message(item: Outgoing) -> EmailMessage:
    message = EmailMessage()
    message["From"] = item.sender
    message["To"] = item.recipient
    message["Subject"] = item.subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    # The request id in the Message-ID lets a receiving system drop a resent duplicate.
    message["Message-ID"] = f"<{item.request_id}@tessera>"
    message.set_content(item.text or _TAGS.sub("", item.html) or " ")
    if item.html:
        message.add_alternative(item.html, subtype="html")
    return message


class EmailChannel:
    """Sends a batch over one SMTP connection; each message succeeds or fails on its own."""

    def __init__(self, url: str, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.target = SmtpTarget.parse(url)
        self.timeout = timeout

    async def send(self, batch: Sequence[Outgoing], on_result: OnResult, may_send: MaySend) -> None:
        client = aiosmtplib.SMTP(
            hostname=self.target.host,
            port=self.target.port,
            username=self.target.username,
            password=self.target.password,
            use_tls=self.target.use_tls,
            start_tls=False if self.target.use_tls else None,
            timeout=self.timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            for item in batch:
                await on_result(item.delivery_id, f"SMTP connection failed: {error}")
            return
        lost: str | None = None
        try:
            for item in batch:
                if not await may_send(item.delivery_id):
                    continue
                if lost is not None:
                    await on_result(item.delivery_id, lost)
                    continue
                try:
                    await client.send_message(email_message(item))
                except aiosmtplib.SMTPServerDisconnected as error:
                    lost = f"SMTP server disconnected: {error}"
                    await on_result(item.delivery_id, lost)
                    continue
                except (aiosmtplib.SMTPException, OSError) as error:
                    await on_result(item.delivery_id, f"SMTP error: {error}")
                    continue
                await on_result(item.delivery_id, None)
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


class SmsChannel:
    """POSTs ``{"from","to","text"}`` as JSON to the gateway; any 2xx is success."""

    def __init__(self, url: str, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.timeout = timeout

    async def send(self, batch: Sequence[Outgoing], on_result: OnResult, may_send: MaySend) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for item in batch:
                if not await may_send(item.delivery_id):
                    continue
                try:
                    response = await client.post(
                        self.url,
                        json={"from": item.sender, "to": item.recipient, "text": item.text},
                        headers={"Idempotency-Key": item.request_id},
                    )
                except httpx.HTTPError as error:
                    await on_result(item.delivery_id, f"SMS gateway unreachable: {error}")
                    continue
                if response.is_success:
                    await on_result(item.delivery_id, None)
                else:
                    reason = f"SMS gateway answered {response.status_code}: {response.text[:200]}"
                    await on_result(item.delivery_id, reason)
