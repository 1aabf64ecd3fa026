"""Codes in campaigns (SPEC §10): ``$!promocodes.issue('<group>')`` in messages sent in bulk.

End to end, on both databases: the messaging API queues the deliveries, the worker claims a code
per delivery and sends it through a real aiosmtpd server, and the loyalty API shows whom each
code was issued to. The kill test runs ``tessera worker`` as a process and SIGKILLs it between
the claim and the send.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from delivery_kit import (
    TESSERA,
    Api,
    Loyalty,
    Mailbox,
    SmtpServer,
    api_for,
    cli_env,
    deliveries,
    drain,
    make_due,
)
from tessera.app import create_app
from tessera.clock import utcnow
from tessera.config import Settings
from tessera.customers import service as customers
from tessera.customers.identifiers import IdentifierKind
from tessera.customers.models import Customer
from tessera.db import Database
from tessera.messaging import delivery_codes, repository
from tessera.messaging.models import Delivery, DeliveryCode, DeliveryStatus, Event
from tessera.messaging.worker import Worker
from tessera.promocodes import service as promocodes
from tessera.promocodes.models import CodeRow, Promocode
from tessera.reconcile import find_problems
from tessera.tenancy import service as tenancy

CODE = re.compile(r"code: <b>([A-Z0-9-]*)</b>")


def code_in(html: str) -> str:
    found = CODE.search(html)
    assert found is not None, html
    return found.group(1)


async def upload(loyalty: Loyalty, name: str, numbers: Sequence[str]) -> dict[str, Any]:
    body = await loyalty.call(
        "promocodes/numbers/add",
        files={"file": ("codes.txt", ("\n".join(numbers) + "\n").encode(), "text/plain")},
        name=name,
        type="1",
    )
    assert body["status"] == "ok", body
    group: dict[str, Any] = body["group"]
    return group


async def codes_of(loyalty: Loyalty, email: str) -> list[str]:
    body = await loyalty.call("promocodes/list-for-user", email=email)
    assert body["status"] == "ok", body
    return [code["number"] for code in body["promocodes"]]


async def states(database: Database) -> dict[str, tuple[int, int | None]]:
    """Each code's state and holder, by number."""
    async with database.reading() as session:
        rows = await session.execute(select(Promocode.number, Promocode.state, Promocode.customer_id))
    return {number: (state, customer_id) for number, state, customer_id in rows}


async def carried(database: Database) -> list[tuple[int, str, str, bool]]:
    """Every delivery_codes row: (delivery id, group, code, given back), in claim order."""
    async with database.reading() as session:
        rows = await session.execute(
            select(
                DeliveryCode.delivery_id, DeliveryCode.group_name, Promocode.number, DeliveryCode.returned_at
            )
            .join(Promocode, Promocode.id == DeliveryCode.promocode_id)
            .order_by(DeliveryCode.id)
        )
    return [
        (delivery_id, group, number, returned is not None) for delivery_id, group, number, returned in rows
    ]


async def test_two_recipients_get_two_codes_each_issued_to_its_own_contact(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    await upload(loyalty, "Spring sale", ["SPRING-1", "SPRING-2", "SPRING-3"])
    message_id = await api.email_message(
        "<p>Hi $!data.get('name'), your code: <b>$!promocodes.issue('Spring sale')</b></p>"
        # The same group twice in one message is the same code.
        "<p>Again: $!promocodes.issue('Spring sale')</p>"
    )
    request_ids = await api.smartsend(
        message_id, [("ann@example.com", {"name": "Ann"}), ("bob@example.com", {"name": "Bob"})]
    )

    await drain(database, Worker(database, delivering))

    sent = {mail.to: code_in(mail.html) for mail in mailbox.mails}
    assert sorted(sent) == ["ann@example.com", "bob@example.com"]
    assert len(set(sent.values())) == 2 and set(sent.values()) < {"SPRING-1", "SPRING-2", "SPRING-3"}
    for to, code in sent.items():
        assert f"Again: {code}</p>" in next(mail.html for mail in mailbox.mails if mail.to == to)
        # Issued to the contact the message went to (created for it), as promocodes/issue would.
        assert await codes_of(loyalty, to) == [code]
    statuses = await api.statuses(request_ids)
    assert [(s["status"], s["promocodes"]) for s in statuses] == [
        ("sent", [{"group": "Spring sale", "code": sent[to], "returned": False}])
        for to in ("ann@example.com", "bob@example.com")
    ]
    groups = (await loyalty.call("promocodes/groups/list"))["groups"]["enabled"]
    (spring,) = groups
    assert (spring["total_count"], spring["unused_count"]) == (3, 1)
    assert await find_problems(database) == []


async def test_an_exhausted_group_fails_one_delivery_with_the_reason_and_sends_the_other(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    await upload(loyalty, "Last one", ["ONLY-1"])
    message_id = await api.email_message("<p>Your code: <b>$!promocodes.issue('Last one')</b></p>")
    first, second = await api.smartsend(message_id, [("ann@example.com", {}), ("bob@example.com", {})])

    await drain(database, Worker(database, delivering))

    (mail,) = mailbox.mails
    assert (mail.to, code_in(mail.html)) == ("ann@example.com", "ONLY-1")
    sent, failed = await api.statuses([first, second])
    assert (sent["status"], sent["promocodes"]) == (
        "sent",
        [{"group": "Last one", "code": "ONLY-1", "returned": False}],
    )
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["statusDescription"] == "promo-code group 'Last one': no free codes left"
    assert failed["promocodes"] == []
    assert await codes_of(loyalty, "ann@example.com") == ["ONLY-1"]
    assert await find_problems(database) == []


@pytest.mark.parametrize(
    ("group", "reason"),
    [("Nobody made me", "no such group"), ("Switched off", "the group is disabled")],
)
async def test_an_unknown_or_disabled_group_fails_that_delivery_with_the_reason(
    api: Api,
    loyalty: Loyalty,
    database: Database,
    delivering: Settings,
    mailbox: Mailbox,
    group: str,
    reason: str,
) -> None:
    switched_off = await upload(loyalty, "Switched off", ["OFF-1"])
    await loyalty.call("promocodes/groups/edit", group_id=switched_off["id"], enabled="0")
    with_code = await api.email_message(f"<p>Your code: <b>$!promocodes.issue('{group}')</b></p>")
    without = await api.email_message("<p>No code here</p>")
    (refused,) = await api.smartsend(with_code, [("ann@example.com", {})])
    (plain,) = await api.smartsend(without, [("bob@example.com", {})])

    await drain(database, Worker(database, delivering))

    assert [mail.to for mail in mailbox.mails] == ["bob@example.com"]
    failed, sent = await api.statuses([refused, plain])
    assert (failed["status"], failed["statusDescription"]) == (
        "failed",
        f"promo-code group {group!r}: {reason}",
    )
    assert sent["status"] == "sent"
    assert (await states(database))["OFF-1"] == (1, None)


async def test_a_message_needing_two_groups_gets_both_codes_or_neither(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    await upload(loyalty, "Plenty", ["P-1", "P-2", "P-3"])
    await upload(loyalty, "Scarce", ["S-1"])
    message_id = await api.email_message(
        "<p>Your code: <b>$!promocodes.issue('Plenty')</b> and $!promocodes.issue('Scarce')</p>"
    )
    first, second = await api.smartsend(message_id, [("ann@example.com", {}), ("bob@example.com", {})])

    await drain(database, Worker(database, delivering))

    (mail,) = mailbox.mails
    assert mail.to == "ann@example.com" and "P-1</b> and S-1</p>" in mail.html
    sent, failed = await api.statuses([first, second])
    assert [code["code"] for code in sent["promocodes"]] == ["P-1", "S-1"]
    assert failed["statusDescription"] == "promo-code group 'Scarce': no free codes left"
    # Refused before anything was written for him: no Plenty code, not even a contact.
    assert failed["promocodes"] == []
    assert (await states(database))["P-2"] == (1, None)
    unknown = await loyalty.call("promocodes/list-for-user", email="bob@example.com")
    assert unknown["status_code"] == -4000
    assert await find_problems(database) == []


async def test_a_code_claimed_before_another_group_fails_after_all_goes_back_at_once(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    """Scarce's one code counts as free but has expired: its claim fails after Plenty's succeeded."""
    await upload(loyalty, "Plenty", ["P-1", "P-2"])
    await upload(loyalty, "Scarce", ["S-1"])
    async with database.transaction() as session:
        await session.execute(
            update(Promocode).where(Promocode.number == "S-1").values(expires_at=utcnow() - timedelta(days=1))
        )
    message_id = await api.email_message(
        "<p>Your code: <b>$!promocodes.issue('Plenty')</b> and $!promocodes.issue('Scarce')</p>"
    )
    (request_id,) = await api.smartsend(message_id, [("ann@example.com", {})])

    await drain(database, Worker(database, delivering))

    assert mailbox.mails == []
    (failed,) = await api.statuses([request_id])
    assert failed["statusDescription"] == "promo-code group 'Scarce': no free codes left"
    assert (await states(database))["P-1"] == (1, None)  # its claim undone with the refusal
    assert await carried(database) == []
    assert await find_problems(database) == []


async def test_a_retried_delivery_shows_the_same_code_and_takes_no_other(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    await upload(loyalty, "Spring sale", ["SPRING-1", "SPRING-2"])
    message_id = await api.email_message("<p>Your code: <b>$!promocodes.issue('Spring sale')</b></p>")
    (request_id,) = await api.smartsend(message_id, [("ann@example.com", {})])
    mailbox.reject_first = 2  # the server says "try again later" twice

    await drain(database, Worker(database, delivering))

    (mail,) = mailbox.mails
    assert code_in(mail.html) == "SPRING-1"
    (status,) = await api.statuses([request_id])
    assert (status["status"], status["attempts"]) == ("sent", 3)
    assert (await states(database))["SPRING-2"] == (1, None)
    assert len(await carried(database)) == 1


async def test_a_delivery_that_fails_for_good_gives_its_code_back_to_the_pool(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    await upload(loyalty, "Spring sale", ["SPRING-1", "SPRING-2"])
    message_id = await api.email_message("<p>Your code: <b>$!promocodes.issue('Spring sale')</b></p>")
    (bounced,) = await api.smartsend(message_id, [("ann@example.com", {})])
    mailbox.reject_first = delivering.delivery_max_attempts  # every attempt refused

    await drain(database, Worker(database, delivering))

    assert mailbox.mails == []
    (status,) = await api.statuses([bounced])
    assert status["status"] == "failed"
    assert status["promocodes"] == [{"group": "Spring sale", "code": "SPRING-1", "returned": True}]
    assert (await states(database))["SPRING-1"] == (1, None)  # free again, nobody's
    assert await codes_of(loyalty, "ann@example.com") == []
    assert await find_problems(database) == []

    # The pool is whole again: the next recipient gets the code nobody saw.
    (sent,) = await api.smartsend(message_id, [("bob@example.com", {})])
    await drain(database, Worker(database, delivering))
    (mail,) = mailbox.mails
    assert (mail.to, code_in(mail.html)) == ("bob@example.com", "SPRING-1")
    (status,) = await api.statuses([sent])
    assert status["promocodes"] == [{"group": "Spring sale", "code": "SPRING-1", "returned": False}]
    assert await find_problems(database) == []


async def failed_keeping_its_code(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> tuple[Worker, Delivery]:
    """Ann's delivery of SPRING-1 refused at every attempt, with codes going back after 300 s:
    answers the worker and the delivery as its last claim left it."""
    await upload(loyalty, "Spring sale", ["SPRING-1", "SPRING-2"])
    message_id = await api.email_message("<p>Your code: <b>$!promocodes.issue('Spring sale')</b></p>")
    await api.smartsend(message_id, [("ann@example.com", {})])
    mailbox.reject_first = delivering.delivery_max_attempts
    worker = Worker(database, delivering.model_copy(update={"delivery_code_return_seconds": 300.0}))
    await drain(database, worker)
    (failed,) = await deliveries(database)
    assert failed.status == "failed"
    return worker, failed


async def make_returns_due(database: Database) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(DeliveryCode)
            .where(DeliveryCode.return_at.is_not(None))
            .values(return_at=utcnow() - timedelta(seconds=1))
        )


async def test_a_failed_deliverys_code_goes_back_only_once_no_lapsed_worker_can_be_sending_it(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    worker, failed = await failed_keeping_its_code(api, loyalty, database, delivering, mailbox)
    ann = (await states(database))["SPRING-1"][1]

    await worker.run_once()

    assert (await states(database))["SPRING-1"] == (2, ann)  # still ann's: the wait is not over
    assert await carried(database) == [(failed.id, "Spring sale", "SPRING-1", False)]
    assert await find_problems(database) == []

    await make_returns_due(database)
    await worker.run_once()

    assert (await states(database))["SPRING-1"] == (1, None)
    assert await carried(database) == [(failed.id, "Spring sale", "SPRING-1", True)]
    (status,) = await api.statuses([failed.request_id])
    assert (status["status"], status["promocodes"][0]["returned"]) == ("failed", True)
    assert await find_problems(database) == []


async def test_a_late_success_of_a_lapsed_claim_keeps_the_code_with_its_recipient(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    """The claim before the last one lapsed mid-send (a stalled process); its send went through
    after the last claim had failed the delivery for good."""
    worker, failed = await failed_keeping_its_code(api, loyalty, database, delivering, mailbox)
    ann = (await states(database))["SPRING-1"][1]

    async with database.write_one() as conn:
        await repository.finish_delivery(
            conn, failed.id, failed.attempts - 1, status=DeliveryStatus.SENT, reason=None, now=utcnow()
        )
    await make_returns_due(database)
    await worker.run_once()

    assert (await states(database))["SPRING-1"] == (2, ann)
    assert await codes_of(loyalty, "ann@example.com") == ["SPRING-1"]
    (status,) = await api.statuses([failed.request_id])
    assert (status["status"], status["promocodes"][0]["returned"]) == ("sent", False)
    assert await find_problems(database) == []
    async with database.reading() as session:
        assert await session.scalar(select(func.count()).where(DeliveryCode.return_at.is_not(None))) == 0


async def test_a_success_that_comes_while_or_after_the_codes_go_back_is_refused(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    """The return is under way (its unit of work open) when the lapsed claim's success arrives:
    the success waits, then finds the codes gone and records nothing, so no code is both in a
    sent message and back in the pool."""
    _, failed = await failed_keeping_its_code(api, loyalty, database, delivering, mailbox)
    await make_returns_due(database)

    async def late_success() -> bool:
        async with database.write_one() as conn:
            return await repository.finish_delivery(
                conn, failed.id, failed.attempts - 1, status=DeliveryStatus.SENT, reason=None, now=utcnow()
            )

    async with database.write() as conn:
        await delivery_codes.settle_return(conn, failed.id, utcnow())
        late = asyncio.create_task(late_success())
        await asyncio.sleep(0.2)

    assert await late is False
    assert (await states(database))["SPRING-1"] == (1, None)
    (status,) = await api.statuses([failed.request_id])
    assert (status["status"], status["promocodes"][0]["returned"]) == ("failed", True)
    assert await find_problems(database) == []


async def fail_for_good_around(
    api: Api,
    database: Database,
    delivering: Settings,
    mailbox: Mailbox,
    group_name: str,
    meanwhile: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    """Sends ann one message carrying a code of the group, refuses its first attempt, runs
    ``meanwhile`` while the delivery waits for its retry, then refuses the last attempt too.
    Answers the delivery's ``message/status`` result."""
    message_id = await api.email_message(f"<p>Your code: <b>$!promocodes.issue('{group_name}')</b></p>")
    (request_id,) = await api.smartsend(message_id, [("ann@example.com", {})])
    mailbox.reject_first = 1
    worker = Worker(database, delivering.model_copy(update={"delivery_max_attempts": 2}))
    await worker.run_once()  # claimed and refused once: queued for a retry
    await meanwhile()
    mailbox.reject_first = 2

    await make_due(database)
    await drain(database, worker)

    (status,) = await api.statuses([request_id])
    return status


async def test_a_code_someone_used_is_not_given_back_when_its_delivery_fails(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    """A send that failed late may still have reached its recipient: a code they used stays used."""
    group = await upload(loyalty, "Spring sale", ["SPRING-1"])
    edited = await loyalty.call(
        "promocodes/groups/edit", group_id=group["id"], discount_type="percent", discount_value="10"
    )
    assert edited["status"] == "ok", edited

    async def buy_with_the_code() -> None:
        body = await loyalty.call(
            "purchases/new",
            email="ann@example.com",
            order_num="A-1",
            cart='{"1": {"sku": "TEA", "price": 10}}',
            promocodes='["SPRING-1"]',
        )
        assert body["status"] == "ok", body
        assert (await states(database))["SPRING-1"][0] == 3, body

    status = await fail_for_good_around(api, database, delivering, mailbox, "Spring sale", buy_with_the_code)

    assert status["status"] == "failed"
    assert status["promocodes"] == [{"group": "Spring sale", "code": "SPRING-1", "returned": False}]
    assert (await states(database))["SPRING-1"][0] == 3
    assert await find_problems(database) == []


async def test_a_multi_use_code_someone_activated_is_not_given_back_when_its_delivery_fails(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    """A multi-use code's activation is a row of its own (no activated_at): it counts as a use."""
    body = await loyalty.call(
        "promocodes/numbers/add",
        files={"file": ("codes.txt", b"CLUB-1\n", "text/plain")},
        name="Club",
        type="2",
        apply_items_once="0",
    )
    assert body["status"] == "ok", body

    async def activate_the_code() -> None:
        activated = await loyalty.call(
            "promocodes/activate", email="ann@example.com", group_name="Club", number="CLUB-1"
        )
        assert activated["status"] == "ok", activated

    status = await fail_for_good_around(api, database, delivering, mailbox, "Club", activate_the_code)

    assert status["status"] == "failed"
    assert status["promocodes"] == [{"group": "Club", "code": "CLUB-1", "returned": False}]
    assert (await states(database))["CLUB-1"][0] == 2
    assert await find_problems(database) == []


async def test_a_workflow_send_step_carries_a_code_from_the_template(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    await upload(loyalty, "Welcome", ["W-1", "W-2"])
    message_id = await api.email_message("<p>Welcome! Your code: <b>$!promocodes.issue('Welcome')</b></p>")
    await api.workflow("signed_up", [{"type": "send", "message_id": message_id, "to_param": "EmailAddress"}])

    await api.event("signed_up", "ann@example.com", {"EmailAddress": "ann@example.com"})
    await api.event("signed_up", "bob@example.com", {"EmailAddress": "bob@example.com"})
    await drain(database, Worker(database, delivering))

    sent = {mail.to: code_in(mail.html) for mail in mailbox.mails}
    assert sorted(sent.values()) == ["W-1", "W-2"]
    for to, code in sent.items():
        assert await codes_of(loyalty, to) == [code]
    assert await find_problems(database) == []


async def test_a_send_of_a_thousand_claims_in_batches_and_a_pool_that_runs_out_fails_the_rest(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    group = await upload(loyalty, "Big sale", [f"BIG-{n:04d}" for n in range(950)])
    edited = await loyalty.call(
        "promocodes/groups/edit", group_id=group["id"], low_stock_warning="100", low_stock_alarm="10"
    )
    assert edited["status"] == "ok", edited
    message_id = await api.email_message("<p>Your code: <b>$!promocodes.issue('Big sale')</b></p>")
    recipients = [(f"buyer{n:04d}@example.com", {}) for n in range(1000)]
    request_ids = await api.smartsend(message_id, recipients)
    worker = Worker(database, delivering.model_copy(update={"worker_batch_size": 100}))

    # One pass claims one batch and its codes: the pool is held batch by batch, not for the send.
    assert await worker.process_deliveries() == 100
    async with database.reading() as session:
        claimed = await session.scalar(select(func.count()).select_from(DeliveryCode))
        issued = await session.scalar(select(func.count()).where(Promocode.state == 2))
    assert (claimed, issued) == (100, 100)

    await drain(database, worker)

    codes = [code_in(mail.html) for mail in mailbox.mails]
    assert len(codes) == len(set(codes)) == 950
    statuses = await api.statuses(request_ids)
    failed = [s for s in statuses if s["status"] == "failed"]
    assert len(failed) == 50
    assert {s["statusDescription"] for s in failed} == {"promo-code group 'Big sale': no free codes left"}
    async with database.reading() as session:
        alerts = (
            await session.scalars(select(Event.params).where(Event.event_type_key == "promocodes_low_stock"))
        ).all()
    assert [(alert["level"], alert["threshold"]) for alert in alerts] == [("WARNING", 100), ("ALARM", 10)]
    assert await find_problems(database) == []


async def test_a_delivery_taken_over_by_another_worker_gets_its_codes_from_the_new_claim_only(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings
) -> None:
    """Two workers never give one recipient two codes: the one whose claim lapsed claims none."""
    await upload(loyalty, "Spring sale", ["SPRING-1", "SPRING-2"])
    message_id = await api.email_message("<p>Your code: <b>$!promocodes.issue('Spring sale')</b></p>")
    await api.smartsend(message_id, [("ann@example.com", {})])
    (queued,) = await deliveries(database)
    old_claim = await claimed_again(database, queued)
    new_claim = await claimed_again(database, queued)  # the lease lapsed and another worker took it
    groups = {queued.id: ("Spring sale",)}

    late, current = await asyncio.gather(
        delivery_codes.claim(database, [old_claim], groups),
        delivery_codes.claim(database, [new_claim], groups),
    )

    assert (late.lost, late.codes) == ({queued.id}, {})
    assert current.codes == {queued.id: {"Spring sale": "SPRING-1"}}
    again = await delivery_codes.claim(database, [new_claim], groups)  # a re-render: the same code
    assert again.codes == current.codes
    assert await carried(database) == [(queued.id, "Spring sale", "SPRING-1", False)]


async def claimed_again(database: Database, delivery: Delivery) -> Delivery:
    """The delivery as a worker's claim sees it: its attempt count raised by one, as a claim does."""
    async with database.transaction() as session:
        await session.execute(
            update(Delivery).where(Delivery.id == delivery.id).values(attempts=Delivery.attempts + 1)
        )
        fresh = await session.get(Delivery, delivery.id, populate_existing=True)
        assert fresh is not None
        return fresh


async def test_a_worker_killed_between_claim_and_send_is_followed_by_a_send_of_the_same_code(
    worker_database: tuple[str, Database], smtp: SmtpServer, mailbox: Mailbox, tmp_path: Path
) -> None:
    url, database = worker_database
    settings = Settings(database_url=url, token_cache_seconds=0, serve_runs_worker=False)
    async with database.transaction() as session:
        department = await tenancy.create_department(session, "Kill test shop")
    transport = httpx.ASGITransport(app=create_app(settings, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http:
        api = await api_for(http, database, department.partner_id)
        await upload_by_cli(url, tmp_path, department.partner_id, ["KILL-1", "KILL-2", "KILL-3"])
        message_id = await api.email_message("<p>Your code: <b>$!promocodes.issue('Kill sale')</b></p>")
        (request_id,) = await api.smartsend(message_id, [("ann@example.com", {})])

    mailbox.delay = 30.0  # the server holds the message: the worker is between claim and send
    first = await asyncio.create_subprocess_exec(
        str(TESSERA),
        "worker",
        env=cli_env(url, smtp_url=smtp.url, delivery_lease_seconds="2", worker_poll_seconds="0.2"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not mailbox.started.is_set():
            assert first.returncode is None and time.monotonic() < deadline
            await asyncio.sleep(0.01)
        first.kill()
    finally:
        if first.returncode is None:
            first.kill()
        await first.wait()
    await asyncio.sleep(0.1)  # the server notices the dead connection and drops the message
    assert mailbox.count() == 0
    [(_, _, claimed_code, _)] = await carried(database)

    mailbox.delay = 0.0
    await drain(database, Worker(database, settings.model_copy(update={"smtp_url": smtp.url})))

    (mail,) = mailbox.mails
    assert code_in(mail.html) == claimed_code
    assert [row[2] for row in await carried(database)] == [claimed_code]
    issued = [number for number, (state, _) in (await states(database)).items() if state != 1]
    assert issued == [claimed_code]
    async with database.reading() as session:
        status = await session.scalar(select(Delivery.status).where(Delivery.request_id == request_id))
    assert status == "sent"
    assert await find_problems(database) == []


async def upload_by_cli(url: str, tmp_path: Path, partner_id: int, numbers: Sequence[str]) -> None:
    """The group "Kill sale", imported by ``tessera promocodes import`` (this test has no loyalty login)."""
    path = tmp_path / "codes.txt"
    path.write_text("\n".join(numbers) + "\n")
    command = await asyncio.create_subprocess_exec(
        str(TESSERA),
        "promocodes",
        "import",
        str(path),
        "--partner-id",
        str(partner_id),
        "--group",
        "Kill sale",
        env=cli_env(url),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await command.communicate()
    assert command.returncode == 0, output.decode()


async def test_a_batchs_contacts_are_found_or_created_together_each_once(
    loyalty: Loyalty, database: Database, department: tenancy.NewDepartment
) -> None:
    known = await loyalty.call("users/add", email="ann@example.com", first_name="Ann")
    assert known["status"] == "ok", known
    emails = ["ann@example.com", "bob@example.com", "cid@example.com"]

    async with database.write() as conn:
        first = await customers.find_or_add_many(conn, department.partner_id, IdentifierKind.EMAIL, emails)
    async with database.write() as conn:
        again = await customers.find_or_add_many(conn, department.partner_id, IdentifierKind.EMAIL, emails)

    assert first == again and sorted(first) == emails
    assert first["ann@example.com"] == known["id"]  # the customer she is, with her name kept
    ann = await loyalty.call("users/info", email="ann@example.com")
    assert ann["first_name"] == "Ann", ann
    async with database.reading() as session:
        count = await session.scalar(select(func.count()).select_from(Customer))
    assert count == 3


async def test_one_recipient_named_twice_gets_a_code_for_each_message(
    api: Api, loyalty: Loyalty, database: Database, delivering: Settings, mailbox: Mailbox
) -> None:
    await upload(loyalty, "Spring sale", ["SPRING-1", "SPRING-2", "SPRING-3"])
    message_id = await api.email_message("<p>Your code: <b>$!promocodes.issue('Spring sale')</b></p>")
    await api.smartsend(message_id, [("ann@example.com", {}), ("ann@example.com", {})])

    await drain(database, Worker(database, delivering))

    codes = sorted(code_in(mail.html) for mail in mailbox.mails)
    assert codes == ["SPRING-1", "SPRING-2"]
    assert sorted(await codes_of(loyalty, "ann@example.com")) == codes


async def test_batches_claiming_side_by_side_never_take_one_code_twice(
    loyalty: Loyalty, database: Database, department: tenancy.NewDepartment
) -> None:
    """Four batches of 50 at once on a group of 120: every code goes once, and 80 ask in vain."""
    await upload(loyalty, "Race", [f"R-{n:03d}" for n in range(120)])
    async with database.write() as conn:
        emails = [f"buyer{n:03d}@example.com" for n in range(200)]
        ids = await customers.find_or_add_many(conn, department.partner_id, IdentifierKind.EMAIL, emails)
        group = await promocodes.group_row_named(conn, department.partner_id, "Race")
    batches = [[ids[email] for email in emails[n : n + 50]] for n in range(0, 200, 50)]

    async def claim(customer_ids: list[int]) -> list[CodeRow | None]:
        async with database.write() as conn:
            return await promocodes.claim_many_from(conn, group, customer_ids)

    results = await asyncio.gather(*(claim(batch) for batch in batches))

    taken = [code for result in results for code in result if code is not None]
    assert len(taken) == len({code.id for code in taken}) == 120
    assert sum(code is None for result in results for code in result) == 80
    for batch, result in zip(batches, results, strict=True):
        assert all(code.customer_id == customer for customer, code in zip(batch, result, strict=True) if code)
    held = await states(database)
    assert sorted(holder for state, holder in held.values()) == sorted(code.customer_id for code in taken)
    assert await find_problems(database) == []
