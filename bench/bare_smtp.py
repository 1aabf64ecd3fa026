"""The baseline for smartsend delivery: a bare aiosmtplib loop, and the recipients both sides use.

Builds, for each recipient, the message Tessera's worker builds (``email.message.EmailMessage``
with From, To, Subject, Date and Message-ID, a text part made by stripping the tags from the HTML,
and the HTML as an alternative), from the same data rendered with an f-string instead of a Velocity
template, and sends them in order: over one SMTP connection, or over a new connection every
``--per-connection`` messages (the worker opens one per claimed batch). Nothing is read from or
written to a database.

Run by bench/bench_messaging.py as a subprocess, like the worker it is compared with:

    python -m bench.bare_smtp --port P --count 10000 [--per-connection 200]

prints one line of JSON: ``{"sent": N, "seconds": S, "cpu_seconds": C}`` (S from the first
connect to the last quit; C the process's user + system CPU, interpreter start-up included).
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import json
import re
import resource
import sys
import time
import uuid
from email.message import EmailMessage

import aiosmtplib

SENDER = "shop@example.com"
SUBJECT = "Your promo code"
#: The message's htmlText in Tessera, and the same text as the f-string the bare loop renders.
HTML_TEMPLATE = "<p>Hi $!data.get('name'), your code is $!data.get('code')</p>"
_TAGS = re.compile(r"<[^>]+>")


def recipient(i: int) -> tuple[str, dict[str, str]]:
    """The ``i``-th recipient: its address and its data (``jsonParam``)."""
    return f"user{i:06d}@example.com", {"name": f"Customer {i}", "code": f"CODE-{i:08d}"}


def render(data: dict[str, str]) -> str:
    return f"<p>Hi {data['name']}, your code is {data['code']}</p>"


def build(address: str, html: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = address
    message["Subject"] = SUBJECT
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = f"<{uuid.uuid4()}@bare>"
    message.set_content(_TAGS.sub("", html) or " ")
    message.add_alternative(html, subtype="html")
    return message


async def send_all(host: str, port: int, count: int, per_connection: int) -> int:
    sent = 0
    for start in range(0, count, per_connection):
        async with aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, timeout=30) as client:
            for i in range(start, min(start + per_connection, count)):
                address, data = recipient(i)
                await client.send_message(build(address, render(data)))
                sent += 1
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_smtp")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--per-connection", type=int, default=0, help="0: all over one connection")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sent = asyncio.run(send_all(args.host, args.port, args.count, args.per_connection or args.count))
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"sent": sent, "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
