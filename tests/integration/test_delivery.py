"""Delivery end to end (SPEC §8, issue item 7): outbox, worker, real SMTP server, real SMS gateway.

Everything goes through the HTTP API (ASGI, in-process) and out through the real channels: an
aiosmtpd server and a tiny HTTP/1.1 SMS gateway, both started here on free local ports. The worker
is driven in-process with ``Worker.run_once`` passes; retries are brought forward by moving
``available_at`` into the past (and the backoff cap is tiny), so nothing here waits for a backoff
or asserts a timing. The crash test runs ``tessera worker`` as a real process and SIGKILLs it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from delivery_kit import (
    TESSERA,
    Api,
    Loyalty,
    Mailbox,
    SmsGateway,
    SmtpServer,
    api_for,
    cli_env,
    deliveries,
    drain,
    make_due,
)
from tessera import metrics
from tessera.app import create_app
from tessera.clock import utcnow
from tessera.config import Settings
from tessera.db import Database
from tessera.messaging.models import Delivery, WorkflowRun
from tessera.messaging.templates import OUT_OF_MEMORY
from tessera.messaging.worker import Worker
from tessera.reconcile import find_problems
from tessera.tenancy import service as tenancy

# --- the seed's two scenarios ---------------------------------------------------------------------------


async def test_seed_event_starts_a_workflow_whose_email_carries_the_code(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    message_id = await api.email_message("<p>Your promo code: <b>$!data.get('code')</b></p>")
    await api.workflow(
        "promo_code_added", [{"type": "send", "message_id": message_id, "to_param": "EmailAddress"}]
    )

    await api.event(
        "promo_code_added", "mail@example.com", {"EmailAddress": "mail@example.com", "code": "ABC-123"}
    )
    assert mailbox.mails == []  # stored, not sent: the worker sends
    await drain(database, Worker(database, delivering))

    (mail,) = mailbox.mails
    assert mail.to == "mail@example.com"
    assert mail.message["To"] == "mail@example.com"
    assert mail.message["From"] == "shop@example.com"
    assert mail.message["Subject"] == "Your promo code"
    assert "<p>Your promo code: <b>ABC-123</b></p>" in mail.html
    assert "Your promo code: ABC-123" in mail.text
    (delivery,) = await deliveries(database)
    assert (delivery.status, delivery.attempts, delivery.recipient) == ("sent", 1, "mail@example.com")
    assert mail.message["Message-ID"] == f"<{delivery.request_id}@tessera>"


async def test_seed_smartsend_sends_each_recipient_its_own_data(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    message_id = await api.email_message("<p>Hi $!data.get('name'), your code is $!data.get('code')</p>")
    recipients = [
        ("ann@example.com", {"code": "ABC-123", "name": "Ann"}),
        ("bob@example.com", {"code": "ABC-124", "name": "Bob"}),
        ("cid@example.com", {"code": "ABC-125", "name": "Cid"}),
    ]
    request_ids = await api.smartsend(message_id, recipients, email=True)
    assert len(set(request_ids)) == 3
    assert {s["status"] for s in await api.statuses(request_ids)} == {"queued"}

    await drain(database, Worker(database, delivering))

    by_recipient = {mail.to: mail for mail in mailbox.mails}
    assert len(mailbox.mails) == 3
    assert sorted(by_recipient) == [to for to, _ in recipients]
    for to, data in recipients:
        assert f"Hi {data['name']}, your code is {data['code']}" in by_recipient[to].html
        others = {d["code"] for t, d in recipients if t != to}
        assert not any(code in by_recipient[to].html for code in others)
    statuses = await api.statuses(request_ids)
    assert [(s["requestId"], s["status"], s["attempts"]) for s in statuses] == [
        (request_id, "sent", 1) for request_id in request_ids
    ]
    assert [s["locator"] for s in statuses] == [to for to, _ in recipients]


async def test_smartsend_from_name_and_external_request_id(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox, gateway: SmsGateway
) -> None:
    email_id = await api.email_message("<p>Code $!data.get('code')</p>")
    sms_id = await api.sms_message("Code $!data.get('code')", sender="Shop")
    (by_email,) = await api.smartsend(
        email_id, [("ann@example.com", {"code": "E-1"})], fromName="Spring sale", externalRequestId="crm-7"
    )
    (by_sms,) = await api.smartsend(sms_id, [("79001234567", {"code": "S-1"})], fromName="SPRING")
    (plain,) = await api.smartsend(email_id, [("bob@example.com", {"code": "E-2"})], fromName=None)

    await drain(database, Worker(database, delivering))

    senders = {mail.to: str(mail.message["From"]) for mail in mailbox.mails}
    # The name is the caller's; the address stays the message's own.
    assert senders == {
        "ann@example.com": "Spring sale <shop@example.com>",
        "bob@example.com": "shop@example.com",
    }
    assert [request.body["from"] for request in gateway.requests] == ["SPRING"]
    statuses = await api.statuses([by_email, by_sms, plain])
    assert [(s["status"], s["externalRequestId"]) for s in statuses] == [
        ("sent", "crm-7"),
        ("sent", None),
        ("sent", None),
    ]


async def test_a_from_name_with_a_line_break_is_refused(api: Api, database: Database) -> None:
    email_id = await api.email_message("<p>Hi</p>")
    body = {"recipients": [{"locator": "ann@example.com"}], "fromName": "Sale\r\nBcc: all@example.com"}

    response = await api.post(f"/api/v1/message/{email_id}/smartsend", body)

    assert response.status_code == 400
    assert response.json()["field"] == "fromName"
    assert await deliveries(database) == []


# --- a pool code per event, under 200 concurrent events ----------------------------------------------------


async def test_two_hundred_concurrent_events_each_get_their_own_pool_code_by_email(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    count = 200
    numbers = [f"SUMMER-{index:04d}" for index in range(count)]
    uploaded = await loyalty.call(
        "promocodes/numbers/add",
        files={"file": ("codes.txt", ("\n".join(numbers) + "\n").encode(), "text/plain")},
        name="Summer",
        type="1",
    )
    assert uploaded["imported_count"] == count
    message_id = await api.email_message("<p>Your code: <b>$!data.get('code')</b></p>")
    await api.workflow(
        "promo_signup",
        [
            {"type": "issue_promocode", "group": "Summer", "as": "code"},
            {"type": "send", "message_id": message_id, "to_param": "EmailAddress"},
        ],
    )
    addresses = [f"buyer{index:03d}@example.com" for index in range(count)]

    await asyncio.gather(
        *(api.event("promo_signup", address, {"EmailAddress": address}) for address in addresses)
    )
    # Three workers side by side, 40 claims each per pass: they share the runs and the outbox.
    workers = [Worker(database, delivering.model_copy(update={"worker_batch_size": 40})) for _ in range(3)]
    await drain(database, *workers)

    mails = mailbox.mails
    assert len(mails) == count
    code_of: dict[str, str] = {}
    for mail in mails:
        found = re.search(r"Your code: <b>([A-Z0-9-]+)</b>", mail.html)
        assert found is not None, mail.html
        assert mail.message["To"] == mail.to
        code_of[mail.to] = found.group(1)
    assert sorted(code_of) == addresses  # each address got exactly one email
    assert len(set(code_of.values())) == count  # no code twice
    assert set(code_of.values()) == set(numbers)
    async with database.reading() as session:
        runs = (await session.scalars(select(WorkflowRun))).all()
    assert {run.status for run in runs} == {"done"}
    # Each email carries the code its own run issued to that contact.
    assert {run.data["EmailAddress"]: run.data["code"] for run in runs} == code_of
    groups = (await loyalty.call("promocodes/groups/list"))["groups"]["enabled"]
    (summer,) = [group for group in groups if group["name"] == "Summer"]
    assert (summer["total_count"], summer["unused_count"]) == (count, 0)


# --- a batch that outlasts its lease ---------------------------------------------------------------------


async def test_a_batch_that_outlasts_its_lease_is_renewed_not_sent_twice(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    message_id = await api.email_message("<p>Code $!data.get('code')</p>")
    recipients = [(f"slow{index:02d}@example.com", {"code": f"S-{index}"}) for index in range(20)]
    await api.smartsend(message_id, recipients)
    # 20 messages at 0.1 s each take twice the 1 s lease: without renewal, the second worker would
    # take the unsent rows back when the lease lapses and both would send them.
    mailbox.delay = 0.1
    settings = delivering.model_copy(update={"delivery_lease_seconds": 1.0, "worker_batch_size": 50})
    first, second = Worker(database, settings), Worker(database, settings)

    async def keep_claiming() -> None:
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            await second.run_once()
            await asyncio.sleep(0.05)

    await asyncio.gather(first.run_once(), keep_claiming())
    await drain(database, first)

    assert sorted(mail.to for mail in mailbox.mails) == [to for to, _ in recipients]
    assert {(d.status, d.attempts) for d in await deliveries(database)} == {("sent", 1)}


async def test_a_worker_whose_lease_lapsed_mid_send_neither_sends_the_rest_nor_records(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    """SPEC §8: exactly once, except the message in flight when its claim was lost, which the
    other worker sends again under the same Message-ID (so the receiver can drop it)."""
    message_id = await api.email_message("<p>Code $!data.get('code')</p>")
    recipients = [(f"lapse{index}@example.com", {"code": f"L-{index}"}) for index in range(3)]
    await api.smartsend(message_id, recipients)
    settings = delivering.model_copy(update={"delivery_lease_seconds": 1.0})
    first, second = Worker(database, settings), Worker(database, settings)
    mailbox.delay = 1.6  # the first message outlasts the first worker's lease...
    sending = asyncio.create_task(first.run_once())
    await asyncio.sleep(0.3)
    mailbox.delay = 0.0  # ...and the server is quick again for everything after it
    await asyncio.sleep(0.9)  # the first worker's leases have lapsed: the second takes the rows
    assert await second.run_once() == 3
    assert await sending == 3

    counts = Counter(mail.to for mail in mailbox.mails)
    assert counts == {"lapse0@example.com": 2, "lapse1@example.com": 1, "lapse2@example.com": 1}
    first_message, again = [m.message["Message-ID"] for m in mailbox.mails if m.to == "lapse0@example.com"]
    assert first_message == again
    # The second worker's outcome stands; the first recorded nothing over it.
    assert {(d.status, d.attempts) for d in await deliveries(database)} == {("sent", 2)}


async def test_a_message_one_worker_delivered_is_not_sent_again_when_the_re_claiming_worker_fails(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    """A send that succeeded is recorded whichever claim it was made under: the first worker's
    message arrives after its lease lapsed, the second worker's attempt of the same message is
    refused by the server, and the message stays sent (it is not queued to go out a second time)."""
    message_id = await api.email_message("<p>Code $!data.get('code')</p>")
    await api.smartsend(message_id, [("late@example.com", {"code": "LATE-1"})])
    settings = delivering.model_copy(update={"delivery_lease_seconds": 1.0})
    first, second = Worker(database, settings), Worker(database, settings)
    mailbox.delay = 2.0  # the first worker's message is accepted after its lease lapsed
    sending = asyncio.create_task(first.run_once())
    assert await asyncio.to_thread(mailbox.started.wait, 30)  # the first worker is inside its send
    mailbox.delay = 0.0
    async with database.transaction() as session:  # ... and its lease lapses meanwhile
        await session.execute(update(Delivery).values(locked_until=utcnow() - timedelta(seconds=1)))
    mailbox.reject_first = 1  # the second worker's attempt is refused (451), the first's is not
    assert await second.run_once() == 1
    assert await sending == 1

    [delivery] = await deliveries(database)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    await drain(database, Worker(database, delivering))
    assert [mail.to for mail in mailbox.mails] == ["late@example.com"]


# --- a failing channel ---------------------------------------------------------------------------------


async def test_smtp_down_for_a_while_then_up_every_message_arrives_once(
    api: Api, database: Database, delivering: Settings, smtp: SmtpServer, mailbox: Mailbox
) -> None:
    message_id = await api.email_message("<p>Code $!data.get('code')</p>")
    recipients = [(f"r{index}@example.com", {"code": f"C-{index}"}) for index in range(5)]
    request_ids = await api.smartsend(message_id, recipients)
    worker = Worker(database, delivering)
    smtp.stop()

    for attempt in (1, 2):
        await worker.run_once()
        statuses = await api.statuses(request_ids)
        assert {s["status"] for s in statuses} == {"queued"}
        assert {s["attempts"] for s in statuses} == {attempt}
        for status in statuses:
            assert status["statusDescription"].startswith("SMTP connection failed"), status
        await make_due(database)

    smtp.start()
    await drain(database, worker)

    assert Counter(mail.to for mail in mailbox.mails) == {to: 1 for to, _ in recipients}
    for mail in mailbox.mails:
        assert f"Code C-{mail.to[1]}" in mail.html
    statuses = await api.statuses(request_ids)
    assert [(s["status"], s["attempts"], s["statusDescription"]) for s in statuses] == [("sent", 3, None)] * 5


async def test_a_server_refusing_some_messages_for_now_gets_them_again_once(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    mailbox.reject_first = 2
    message_id = await api.email_message("<p>Code $!data.get('code')</p>")
    recipients = [(f"r{index}@example.com", {"code": f"C-{index}"}) for index in range(4)]
    request_ids = await api.smartsend(message_id, recipients)
    worker = Worker(database, delivering)

    await worker.run_once()
    first = await api.statuses(request_ids)
    assert Counter(s["status"] for s in first) == {"queued": 2, "sent": 2}
    for status in first:
        if status["status"] == "queued":
            assert status["statusDescription"].startswith("SMTP error"), status
            assert "Try again later" in status["statusDescription"]
    await drain(database, worker)

    assert Counter(mail.to for mail in mailbox.mails) == {to: 1 for to, _ in recipients}
    assert sorted(s["attempts"] for s in await api.statuses(request_ids)) == [1, 1, 2, 2]


async def test_failed_with_the_reason_after_the_configured_attempts(
    api: Api, database: Database, delivering: Settings, smtp: SmtpServer, mailbox: Mailbox
) -> None:
    smtp.stop()  # and never up again
    settings = delivering.model_copy(update={"delivery_max_attempts": 3})
    message_id = await api.email_message("<p>Code $!data.get('code')</p>")
    (request_id,) = await api.smartsend(message_id, [("lost@example.com", {"code": "X"})])
    worker = Worker(database, settings)

    await drain(database, worker)
    await worker.run_once()  # a failed delivery stays failed

    (status,) = await api.statuses([request_id])
    assert (status["status"], status["attempts"]) == ("failed", 3)
    assert status["statusDescription"].startswith("SMTP connection failed")
    assert mailbox.mails == []


async def test_without_smtp_email_waits_as_channel_not_configured_then_goes_out(
    api: Api, database: Database, settings: Settings, delivering: Settings, mailbox: Mailbox
) -> None:
    unconfigured = settings.model_copy(update={"smtp_url": None, "sms_url": None})
    message_id = await api.email_message("<p>Code $!data.get('code')</p>")
    (request_id,) = await api.smartsend(message_id, [("wait@example.com", {"code": "W-1"})])

    for _ in range(2):
        assert await Worker(database, unconfigured).run_once() == 0
        (status,) = await api.statuses([request_id])
        assert (status["status"], status["statusDescription"], status["attempts"]) == (
            "queued",
            "channel not configured",
            0,
        )
    assert mailbox.mails == []

    await drain(database, Worker(database, delivering))  # the same outbox, now with SMTP configured

    (mail,) = mailbox.mails
    assert (mail.to, "Code W-1" in mail.html) == ("wait@example.com", True)
    (status,) = await api.statuses([request_id])
    assert (status["status"], status["statusDescription"], status["attempts"]) == ("sent", None, 1)


async def test_sms_waits_as_channel_not_configured_while_email_goes_out(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    email_only = delivering.model_copy(update={"sms_url": None})
    email_id = await api.email_message("<p>Code $!data.get('code')</p>")
    sms_id = await api.sms_message("Code $!data.get('code')")
    (by_email,) = await api.smartsend(email_id, [("both@example.com", {"code": "E-1"})])
    (by_sms,) = await api.smartsend(sms_id, [("380501234567", {"code": "S-1"})])

    await Worker(database, email_only).run_once()

    sent, waiting = await api.statuses([by_email, by_sms])
    assert sent["status"] == "sent"
    assert (waiting["status"], waiting["statusDescription"]) == ("queued", "channel not configured")
    assert [mail.to for mail in mailbox.mails] == ["both@example.com"]


# --- templates that cannot render -----------------------------------------------------------------------


async def test_a_render_failure_fails_only_that_delivery(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    message_id = await api.email_message("<p>Your sixth item: $data.get('items').get(5)</p>")
    recipients = [
        ("long@example.com", {"items": [f"L{index}" for index in range(6)]}),
        ("short@example.com", {"items": ["S0", "S1"]}),
        ("longer@example.com", {"items": [f"M{index}" for index in range(9)]}),
    ]
    request_ids = await api.smartsend(message_id, recipients)

    await drain(database, Worker(database, delivering))

    assert sorted(mail.to for mail in mailbox.mails) == ["long@example.com", "longer@example.com"]
    for mail in mailbox.mails:
        expected = "L5" if mail.to == "long@example.com" else "M5"
        assert f"Your sixth item: {expected}" in mail.html
    long, short, longer = await api.statuses(request_ids)
    assert (long["status"], longer["status"]) == ("sent", "sent")
    assert (short["status"], short["attempts"]) == ("failed", 1)
    assert short["statusDescription"] == "template failed: no element 5 in a list of 2"


async def test_a_render_that_would_exhaust_memory_fails_that_delivery_and_the_worker_goes_on(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    """The hostile-input issue's reproducer: the padding comes from the recipient's data, so one
    recipient's render would take gigabytes. It fails alone, in the renderer's child process."""
    message_id = await api.email_message("<p>$data.get('code').zfill($data.get('width'))</p>")
    recipients = [
        ("calm@example.com", {"code": "C-1", "width": 8}),
        ("bomb@example.com", {"code": "B-1", "width": 3_000_000_000}),
        ("next@example.com", {"code": "N-1", "width": 3}),
    ]
    request_ids = await api.smartsend(message_id, recipients)

    await drain(database, Worker(database, delivering))

    assert sorted(mail.to for mail in mailbox.mails) == ["calm@example.com", "next@example.com"]
    assert any("000000C-1" not in mail.html and "00000C-1" in mail.html for mail in mailbox.mails)
    calm, bomb, following = await api.statuses(request_ids)
    assert (calm["status"], following["status"]) == ("sent", "sent")
    assert (bomb["status"], bomb["attempts"]) == ("failed", 1)
    assert bomb["statusDescription"] == f"template failed: {OUT_OF_MEMORY}"


async def test_a_template_with_a_syntax_error_is_refused_when_saved(api: Api) -> None:
    response = await api.post(
        "/api/v1/messages/email",
        {"name": "Bad", "from": "shop@example.com", "subject": "Hi", "htmlText": "<p>\n#if($x</p>"},
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["field"], body["line"], isinstance(body["column"], int)) == ("htmlText", 2, True)


# --- SMS through the HTTP gateway ------------------------------------------------------------------------


async def test_sms_through_the_gateway_and_a_500_is_retried_and_delivered_once(
    api: Api, database: Database, delivering: Settings, gateway: SmsGateway
) -> None:
    gateway.fail_first = 2
    message_id = await api.sms_message("Your code $!data.get('code')", sender="Shop")
    (request_id,) = await api.smartsend(message_id, [("+7 (900) 123-45-67", {"code": "S-1"})])
    worker = Worker(database, delivering)

    for attempt in (1, 2):
        await worker.run_once()
        (status,) = await api.statuses([request_id])
        assert (status["status"], status["attempts"]) == ("queued", attempt)
        assert status["statusDescription"].startswith("SMS gateway answered 500")
        await make_due(database)
    await drain(database, worker)

    expected = {"from": "Shop", "to": "79001234567", "text": "Your code S-1"}
    assert [(r.method, r.path, r.body, r.answered) for r in gateway.requests] == [
        ("POST", "/sms/send", expected, 500),
        ("POST", "/sms/send", expected, 500),
        ("POST", "/sms/send", expected, 200),
    ]
    assert all(r.headers["content-type"] == "application/json" for r in gateway.requests)
    assert {r.headers["idempotency-key"] for r in gateway.requests} == {request_id}
    (status,) = await api.statuses([request_id])
    assert (status["status"], status["attempts"], status["statusDescription"]) == ("sent", 3, None)
    await worker.run_once()
    assert len(gateway.requests) == 3  # sent stays sent


# --- a worker killed in the middle of a batch --------------------------------------------------------------


@pytest.mark.slow
async def test_a_killed_workers_leased_messages_are_sent_by_another_once_but_the_one_in_flight(
    worker_database: tuple[str, Database], smtp: SmtpServer, mailbox: Mailbox, tmp_path: Path
) -> None:
    url, database = worker_database
    settings = Settings(database_url=url, token_cache_seconds=0, serve_runs_worker=False)
    async with database.transaction() as session:
        department = await tenancy.create_department(session, "Kill test shop")
    transport = httpx.ASGITransport(app=create_app(settings, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http:
        api = await api_for(http, database, department.partner_id)
        message_id = await api.email_message("<p>Message number $data.get('n')</p>")
        recipients = [(f"user{index:03d}@example.com", {"n": index}) for index in range(100)]
        request_ids = await api.smartsend(message_id, recipients)

    mailbox.delay = 0.2  # a slow server: the first worker is mid-batch for a while
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        first = await asyncio.create_subprocess_exec(
            str(TESSERA),
            "worker",
            env=cli_env(
                url,
                smtp_url=smtp.url,
                delivery_lease_seconds="3",
                worker_batch_size="50",
                worker_poll_seconds="0.2",
            ),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while mailbox.count() < 10:
                assert first.returncode is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                await asyncio.sleep(0.01)
            # Kill at a random point of a message's cycle, not right after an arrival we just saw.
            await asyncio.sleep(random.uniform(0, mailbox.delay))
            first.kill()
        finally:
            if first.returncode is None:
                first.kill()
            await first.wait()
    await asyncio.sleep(0.1)  # let the server notice the dead connection
    before_kill = mailbox.count()
    assert 0 < before_kill < len(recipients)

    mailbox.delay = 0.0
    second = Worker(
        database,
        settings.model_copy(update={"smtp_url": smtp.url, "delivery_lease_seconds": 3.0}),
    )
    await drain(database, second)  # waits out the dead worker's leases, then sends what they held

    mails = mailbox.mails
    counts = Counter(mail.to for mail in mails)
    duplicates = sum(times - 1 for times in counts.values())
    print(f"kill test: {before_kill} arrived before the kill, {len(mails)} in all, {duplicates} duplicate(s)")
    # Every recipient got its email. A duplicate is possible by design, but only one: the message the
    # killed worker had in flight, if the server accepted it and the worker died before writing
    # "sent" (each outcome is committed right after its attempt, so nothing else can repeat).
    assert set(counts) == {to for to, _ in recipients}
    assert duplicates <= 1
    for to, times in counts.items():
        if times > 1:  # the one in flight at the kill: sent again under the same Message-ID
            ids = {mail.message["Message-ID"] for mail in mails if mail.to == to}
            assert len(ids) == 1, ids
    for mail in mails:
        assert f"Message number {int(mail.to[4:7])}</p>" in mail.html
    statuses = [status["status"] for status in await api_statuses(database, request_ids)]
    assert statuses == ["sent"] * len(recipients)
    assert await find_problems(database) == []


async def api_statuses(database: Database, request_ids: Sequence[str]) -> list[dict[str, Any]]:
    async with database.reading() as session:
        found = {
            d.request_id: d
            for d in (
                await session.scalars(select(Delivery).where(Delivery.request_id.in_(request_ids)))
            ).all()
        }
    return [{"status": found[r].status, "attempts": found[r].attempts} for r in request_ids]


# --- what an operator sees ------------------------------------------------------------------------------


async def test_each_attempt_is_a_log_line_and_a_count_without_what_it_carried(
    api: Api, database: Database, delivering: Settings, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tessera")
    message_id = await api.email_message("<p>Code $!data.get('code')</p>")
    await api.smartsend(
        message_id, [("first@example.com", {"code": "LOGME-1"}), ("second@example.com", {"code": "LOGME-2"})]
    )
    sent = metrics.DELIVERIES.labels("email", "sent")
    before = sent._value.get()

    await drain(database, Worker(database, delivering))

    assert len(mailbox.mails) == 2
    lines = [r for r in caplog.records if r.name == "tessera.worker"]
    ids = sorted(d.id for d in await deliveries(database))
    assert sorted((r.delivery_id, r.channel, r.attempt, r.outcome) for r in lines) == [  # type: ignore[attr-defined]
        (delivery_id, "email", 1, "sent") for delivery_id in ids
    ]
    assert sent._value.get() == before + 2
    text = "\n".join(r.getMessage() for r in lines)
    for carried in ("first@example.com", "second@example.com", "LOGME-1", "LOGME-2"):
        assert carried not in text
