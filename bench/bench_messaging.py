"""The messaging face: smartsend delivered end to end, and the event intake, each against a baseline.

Per database, a fresh database is seeded through the real CLI (``tessera migrate``, ``tessera
departments create --json``, ``tessera api-keys create --json``).

**smartsend**: an aiosmtpd server on 127.0.0.1 (in this process, on its own thread) only counts
what it receives. Baseline first: ``bench/bare_smtp.py`` as a subprocess sends the same number of
messages, built as the worker builds them, with a bare aiosmtplib loop (over one connection, then
over a new connection every 200 messages, the worker's batch). Then ``tessera serve`` (with
``TESSERA_SMTP_URL`` and ``TESSERA_SERVE_RUNS_WORKER=false``) takes an email message over HTTP and
10 smartsend requests of 1,000 recipients each, and as soon as the last one has answered a
``tessera worker`` subprocess is started; the clock stops when the server has counted every
message. Times are taken from the start (of the first smartsend, of the worker process, of the bare
subprocess) to the arrival of the last message, so both sides include their interpreter's start-up.
The same again **with a code**: a promo-code group of twice as many codes as recipients is uploaded
through ``/api/v2/promocodes/numbers/add`` (untimed), and the message's HTML takes each recipient's
code from it with ``$!promocodes.issue('bench-campaign')``, so the worker claims and issues one code
per delivery; the sink keeps what it receives, and afterwards every message must carry one code,
all distinct, the ones the database says each recipient's delivery carries.

**events**: ``tessera serve --workers N`` (``TESSERA_SERVE_RUNS_WORKER=false``, so nothing else
writes) and then the bare app (``bench/bare_app.py``, whose ``/api/v1/event`` inserts the same row
into ``events``) take ``POST /api/v1/event`` from wrk (bench/wrk/event.lua), every request with its
own ``keyValue``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import bare_smtp, bench_http, common
from bench.common import log

#: The worker's batch (TESSERA_WORKER_BATCH_SIZE's default): one SMTP connection per batch.
WORKER_BATCH = 200
TARGET_RATIO = 0.5
TARGET_EVENTS = 2000
SEND_TIMEOUT = 900.0
#: A send fails when no message has arrived for this long (say, every delivery refused).
STALL_SECONDS = 120.0
RUN_DIR = bench_http.RUN_DIR


@dataclass(frozen=True)
class Sizes:
    requests: int
    recipients_per_request: int

    @property
    def messages(self) -> int:
        return self.requests * self.recipients_per_request


FULL = Sizes(requests=10, recipients_per_request=1000)
QUICK = Sizes(requests=10, recipients_per_request=300)

#: ours + code: the group the codes are claimed from, and the message that claims one per delivery
#: (the bare loop's text, with the code claimed at send time instead of read from ``$data``).
CODE_GROUP = "bench-campaign"
CODE_HTML_TEMPLATE = f"<p>Hi $!data.get('name'), your code is $!promocodes.issue('{CODE_GROUP}')</p>"
#: Codes as long as the bare loop's ``CODE-00000000``, so both sides' messages have the same size.
CODE_LENGTH = 13
#: The pool holds this many codes per recipient: a campaign's group is rarely exactly its size.
POOL_PER_RECIPIENT = 2
_CODE_IN_MESSAGE = re.compile(rb"your code is ([0-9A-Z]+)")


@dataclass
class MessagingSeed:
    db: str
    url: str
    partner_id: int
    api_key: str
    department_id: int
    department_key: str
    pin_code: str
    seed_seconds: dict[str, float] = field(default_factory=dict)


def seed(db: str) -> MessagingSeed:
    url = common.fresh_database(db, "messaging")
    timings = {"migrate": common.tessera("migrate", database_url=url).seconds}
    department = common.create_department(url)
    partner_id = int(department["partner_id"])
    created = common.tessera(
        "api-keys", "create", "--partner-id", str(partner_id), "--json", database_url=url
    )
    timings["api key"] = created.seconds
    return MessagingSeed(
        db=db,
        url=url,
        partner_id=partner_id,
        api_key=str(created.json()["api_key"]),
        department_id=int(department["store_department_id"]),
        department_key=str(department["store_department_key"]),
        pin_code=str(department["pin_code"]),
        seed_seconds=timings,
    )


def query(seed: MessagingSeed, sql: str) -> list[tuple[Any, ...]]:
    """One read-only statement on the seeded database (checks after a run)."""
    if seed.db == "sqlite":
        with contextlib.closing(sqlite3.connect(seed.url.removeprefix("sqlite:///"))) as connection:
            return list(connection.execute(sql).fetchall())

    async def fetch() -> list[tuple[Any, ...]]:
        import asyncpg

        connection = await asyncpg.connect(seed.url)
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    return asyncio.run(fetch())


def _tidy(seed: MessagingSeed, *tables: str) -> None:
    """Before a run: VACUUM (ANALYZE) on PostgreSQL (events, deliveries and ``tables``), a WAL
    checkpoint on SQLite."""
    if seed.db == "postgresql":
        common.pg_execute(
            *(f"VACUUM (ANALYZE) {table}" for table in ("events", "deliveries", *tables)), url=seed.url
        )
    else:
        with contextlib.closing(sqlite3.connect(seed.url.removeprefix("sqlite:///"))) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# --------------------------------------------------------------------------------------------------
# the SMTP sink


class CountingHandler:
    """aiosmtpd handler: counts messages and bytes, notes when the first and last arrived; with
    ``keep``, also keeps each message's recipients and content (checked after the run)."""

    def __init__(self) -> None:
        self.expect(0)

    def expect(self, count: int, *, keep: bool = False) -> None:
        self.target = count
        self.count = 0
        self.bytes = 0
        self.first: float | None = None
        self.last: float | None = None
        self.keep = keep
        self.received: list[tuple[list[str], bytes]] = []
        self.done = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.count += 1
        self.bytes += len(envelope.content or b"")
        if self.keep:
            self.received.append((list(envelope.rcpt_tos), envelope.content or b""))
        if self.count >= self.target:
            self.done.set()
        return "250 OK"


class SmtpSink:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.handler = CountingHandler()
        self.port = common.free_port()  # Controller(port=0) cannot tell which port it got
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def wait(self, process: subprocess.Popen[bytes], timeout: float = SEND_TIMEOUT) -> None:
        """Until every expected message has arrived; fails if the sender exits, stalls for
        ``STALL_SECONDS`` or takes too long."""
        deadline = time.monotonic() + timeout
        seen, progressed = self.handler.count, time.monotonic()
        while not self.handler.done.wait(0.05):
            if self.handler.count != seen:
                seen, progressed = self.handler.count, time.monotonic()
            elif time.monotonic() - progressed > STALL_SECONDS:
                raise RuntimeError(
                    f"no message for {STALL_SECONDS:g}s: {seen} of {self.handler.target} arrived"
                )
            if process.poll() is not None and not self.handler.done.wait(1.0):
                raise RuntimeError(
                    f"sender exited ({process.returncode}) after {self.handler.count} of "
                    f"{self.handler.target} messages"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.handler.count} of {self.handler.target} messages arrived")


def _timing(sink: SmtpSink, started: float, messages: int) -> dict[str, Any]:
    handler = sink.handler
    assert handler.first is not None and handler.last is not None
    seconds = handler.last - started
    spread = handler.last - handler.first
    return {
        "seconds": seconds,
        "messages_per_second": messages / seconds,
        "first_to_last_seconds": spread,
        "first_to_last_per_second": (messages - 1) / spread if spread else None,
        "until_first_seconds": handler.first - started,
        "bytes_per_message": handler.bytes / handler.count if handler.count else None,
    }


# --------------------------------------------------------------------------------------------------
# smartsend


def run_bare_smtp(sink: SmtpSink, messages: int, per_connection: int) -> dict[str, Any]:
    label = f"{per_connection} per connection" if per_connection else "one connection"
    log(f"smartsend bare aiosmtplib loop: {messages:,} messages, {label}")
    sink.handler.expect(messages)
    command = [
        sys.executable,
        "-m",
        "bench.bare_smtp",
        "--port",
        str(sink.port),
        "--count",
        str(messages),
        "--per-connection",
        str(per_connection),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=common.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        sink.wait(process)
    except BaseException:
        process.kill()  # the subprocess started just above
        process.wait()
        raise
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode != 0:
        raise RuntimeError(f"bare_smtp failed ({process.returncode}): {stderr.decode()[-2000:]}")
    result = _timing(sink, started, messages)
    reported = json.loads(stdout.decode().strip().splitlines()[-1])
    result["client_seconds"] = reported["seconds"]
    result["cpu_seconds"] = reported["cpu_seconds"]
    result["cpu_ms_per_message"] = 1000 * reported["cpu_seconds"] / messages
    result["received"] = sink.handler.count
    log(f"  {result['messages_per_second']:,.0f} messages/s ({result['seconds']:.1f}s)")
    return result


def _smartsend_bodies(sizes: Sizes) -> list[bytes]:
    bodies = []
    for r in range(sizes.requests):
        recipients = []
        for i in range(r * sizes.recipients_per_request, (r + 1) * sizes.recipients_per_request):
            address, data = bare_smtp.recipient(i)
            recipients.append({"locator": address, "jsonParam": json.dumps(data)})
        bodies.append(json.dumps({"recipients": recipients}).encode())
    return bodies


def _upload_pool(base: str, seed: MessagingSeed, path: Path) -> dict[str, Any]:
    """The campaign's promo-code group, through the loyalty API (``promocodes/numbers/add``)."""
    with httpx.Client(base_url=base, timeout=300) as loyalty:
        token = common.login(loyalty, seed.department_id, seed.department_key, seed.pin_code)
        started = time.perf_counter()
        answer = loyalty.post(
            "/api/v2/promocodes/numbers/add/",
            data={"token": token, "store_department_id": seed.department_id, "name": CODE_GROUP},
            files={"file": (path.name, path.read_bytes(), "text/csv")},
        )
        seconds = time.perf_counter() - started
    body = answer.json()
    if body.get("status") != "ok":
        raise RuntimeError(f"promocodes/numbers/add failed: {answer.text[:2000]}")
    return {"seconds": seconds, "imported_count": body["imported_count"], "group_id": body["group"]["id"]}


def _check_codes(
    seed: MessagingSeed,
    message_id: int,
    received: list[tuple[list[str], bytes]],
    pool: set[str],
    messages: int,
) -> dict[str, Any]:
    """Every message as received carries one code, all distinct, from the pool; and each is the code
    the database says that recipient's delivery carries, issued to the recipient's contact."""
    by_address: dict[str, str] = {}
    found: list[str] = []
    without = several = 0
    for recipients, content in received:
        codes = {code.decode() for code in _CODE_IN_MESSAGE.findall(content)}
        if len(codes) != 1:
            without += not codes
            several += len(codes) > 1
            continue
        code = codes.pop()
        found.append(code)
        by_address.update((address.lower(), code) for address in recipients)
    distinct = set(found)
    stored = query(
        seed,
        "SELECT d.recipient, p.number, c.email FROM delivery_codes dc"
        " JOIN deliveries d ON d.id = dc.delivery_id JOIN promocodes p ON p.id = dc.promocode_id"
        f" LEFT JOIN customers c ON c.id = p.customer_id WHERE d.message_id = {message_id}"
        " AND dc.returned_at IS NULL",
    )
    free_after = query(
        seed,
        "SELECT count(*) FROM promocodes p JOIN promocode_groups g ON g.id = p.group_id"
        f" WHERE g.partner_id = {seed.partner_id} AND g.name = '{CODE_GROUP}' AND p.state = 1",
    )[0][0]
    check: dict[str, Any] = {
        "recipients": messages,
        "messages_received": len(received),
        "messages_with_one_code": len(found),
        "messages_without_a_code": without,
        "messages_with_several_codes": several,
        "distinct_codes": len(distinct),
        "codes_not_from_the_pool": len(distinct - pool),
        "delivery_codes_rows": len(stored),
        "rows_matching_the_message": sum(by_address.get(r.lower()) == number for r, number, _ in stored),
        "issued_to_the_recipient": sum((email or "") == r.lower() for r, _, email in stored),
        "pool": len(pool),
        "pool_free_after": free_after,
    }
    check["ok"] = (
        check["messages_received"] == messages
        and check["messages_with_one_code"] == messages
        and check["distinct_codes"] == messages
        and not check["codes_not_from_the_pool"]
        and check["delivery_codes_rows"] == messages
        and check["rows_matching_the_message"] == messages
        and check["issued_to_the_recipient"] == messages
        and check["pool_free_after"] == len(pool) - messages
    )
    return check


def run_ours_smartsend(
    seed: MessagingSeed, sink: SmtpSink, sizes: Sizes, *, with_code: bool = False
) -> dict[str, Any]:
    """``tessera serve`` takes the message and the smartsend requests, ``tessera worker`` sends.
    ``with_code``: the message claims a code per delivery (``CODE_HTML_TEMPLATE``) from a group
    uploaded first (untimed), and the codes received are checked."""
    messages = sizes.messages
    scenario = "with a code" if with_code else "plain"
    tag = "messaging-code" if with_code else "messaging"
    env = {"TESSERA_SMTP_URL": sink.url, "TESSERA_SERVE_RUNS_WORKER": "false"}
    headers = {"Authorization": f"Bearer {seed.api_key}", "Content-Type": "application/json"}
    bodies = _smartsend_bodies(sizes)
    result: dict[str, Any] = {"scenario": scenario}
    pool: set[str] = set()
    with (
        bench_http.server("ours", seed, 1, env=env, tag=tag) as (base, _),
        httpx.Client(base_url=base, headers=headers, timeout=300) as client,
    ):
        if with_code:
            path = common.codes_file(
                POOL_PER_RECIPIENT * messages, seed=21, length=CODE_LENGTH, tag="campaign"
            )
            log(f"smartsend {seed.db}: uploading {path.name} as {CODE_GROUP!r} (promocodes/numbers/add)")
            result["pool_upload"] = _upload_pool(base, seed, path)
            pool = set(common.read_codes(path))
            if result["pool_upload"]["imported_count"] != len(pool):
                raise RuntimeError(f"uploaded {len(pool)} codes, imported {result['pool_upload']}")
            # The plain run's 10,000 sent deliveries behind us, the new pool analysed.
            _tidy(seed, "promocodes", "customers")
        answer = client.post(
            "/api/v1/messages/email",
            json={
                "name": f"bench {scenario}",
                "from": bare_smtp.SENDER,
                "subject": bare_smtp.SUBJECT,
                "htmlText": CODE_HTML_TEMPLATE if with_code else bare_smtp.HTML_TEMPLATE,
            },
        )
        answer.raise_for_status()
        message_id = int(answer.json()["id"])
        log(
            f"smartsend {seed.db} ({scenario}): {sizes.requests} × {sizes.recipients_per_request:,} "
            "recipients, then tessera worker"
        )
        sink.handler.expect(messages, keep=with_code)
        started = time.perf_counter()
        refused = 0
        for body in bodies:
            answer = client.post(f"/api/v1/message/{message_id}/smartsend", content=body)
            answer.raise_for_status()
            refused += sum(1 for r in answer.json()["results"] if r["status"] != "OK")
        intake = time.perf_counter() - started
        if refused:
            raise RuntimeError(f"smartsend refused {refused} recipients")
        worker_started = time.perf_counter()
        log_path = RUN_DIR / f"worker-{tag}-{seed.db}.log"
        with log_path.open("wb") as log_file:
            worker = subprocess.Popen(
                [str(common.TESSERA), "worker"],
                cwd=common.ROOT,
                env={**os.environ, **env, "TESSERA_DATABASE_URL": seed.url},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                try:
                    sink.wait(worker)
                except RuntimeError as error:
                    raise RuntimeError(f"{error} (smartsend {scenario}; see {log_path})") from None
                worker_cpu = common.process_tree_cpu_seconds(worker.pid)
                end_to_end = _timing(sink, started, messages)
                worker_only = _timing(sink, worker_started, messages)
                worker_only["cpu_seconds"] = worker_cpu
                worker_only["cpu_ms_per_message"] = 1000 * worker_cpu / messages
                time.sleep(1.0)  # anything sent twice would arrive now
            finally:
                bench_http.stop(worker)
    statuses = dict(
        query(
            seed,
            f"SELECT status, count(*) FROM deliveries WHERE message_id = {message_id} GROUP BY status",
        )
    )
    result.update(
        {
            "intake_seconds": intake,
            "intake_recipients_per_second": messages / intake,
            "end_to_end": end_to_end,
            "worker": worker_only,
            "received": sink.handler.count,
            "delivery_statuses": statuses,
        }
    )
    if sink.handler.count != messages or statuses.get("sent") != messages:
        raise RuntimeError(f"expected {messages} sent once each: received {sink.handler.count}, {statuses}")
    log(
        f"  intake {intake:.1f}s, end to end {end_to_end['seconds']:.1f}s "
        f"({end_to_end['messages_per_second']:,.0f} messages/s), worker {worker_only['seconds']:.1f}s"
    )
    if with_code:
        # Reported, not asserted: the table and the JSON say whether the codes were right.
        result["codes"] = codes = _check_codes(seed, message_id, sink.handler.received, pool, messages)
        sink.handler.received = []
        log(
            f"  codes: {codes['distinct_codes']:,} distinct in {codes['messages_received']:,} messages "
            f"for {messages:,} recipients: " + ("ok" if codes["ok"] else f"WRONG {codes}")
        )
    return result


def run_smartsend(seed: MessagingSeed, sizes: Sizes) -> dict[str, Any]:
    with SmtpSink() as sink:
        bare_one = run_bare_smtp(sink, sizes.messages, 0)
        bare_batched = run_bare_smtp(sink, sizes.messages, WORKER_BATCH)
        ours = run_ours_smartsend(seed, sink, sizes)
        coded = run_ours_smartsend(seed, sink, sizes, with_code=True)
    bare_rate = bare_one["messages_per_second"]
    e2e_ratio = ours["end_to_end"]["messages_per_second"] / bare_rate
    coded_ratio = coded["end_to_end"]["messages_per_second"] / bare_rate
    return {
        "messages": sizes.messages,
        "requests": sizes.requests,
        "recipients_per_request": sizes.recipients_per_request,
        "ours": ours,
        "bare_one_connection": bare_one,
        f"bare_{WORKER_BATCH}_per_connection": bare_batched,
        "ratio_end_to_end": e2e_ratio,
        "ratio_worker": ours["worker"]["messages_per_second"] / bare_rate,
        "meets_target": e2e_ratio >= TARGET_RATIO,
        # The same mail out, each message with its own promo code claimed by the worker; against the
        # same bare loop (which sends the same messages and claims nothing).
        "with_code": {
            "ours": coded,
            "ratio_end_to_end": coded_ratio,
            "ratio_worker": coded["worker"]["messages_per_second"] / bare_rate,
            "ratio_to_plain": coded["end_to_end"]["messages_per_second"]
            / ours["end_to_end"]["messages_per_second"],
            "codes_ok": coded["codes"]["ok"],
            "meets_target": coded_ratio >= TARGET_RATIO,
        },
    }


# --------------------------------------------------------------------------------------------------
# events


def run_events_server(seed: MessagingSeed, kind: str, workers: int, duration: float) -> dict[str, Any]:
    env = {"TESSERA_SERVE_RUNS_WORKER": "false"}
    wrk_env = {"BENCH_API_KEY": seed.api_key}
    run = f"{kind}-w{workers}"
    _tidy(seed)
    with bench_http.server(kind, seed, workers, env=env, tag="messaging") as (base, process):
        bench_http.wrk("event", base, min(2.0, duration), {**wrk_env, "BENCH_RUN": f"warm-{run}"})
        log(f"events {seed.db} workers={workers} {kind:4s} for {duration:g}s")
        cpu_before = common.process_tree_cpu_seconds(process.pid)
        result = bench_http.wrk("event", base, duration, {**wrk_env, "BENCH_RUN": run})
        cpu = common.process_tree_cpu_seconds(process.pid) - cpu_before
    result["server_cpu_seconds"] = cpu
    result["cpu_ms_per_request"] = 1000 * cpu / result["requests"] if result["requests"] else None
    # Every answered request is stored (and a few more that were in flight when wrk stopped).
    result["stored"] = query(seed, f"SELECT count(*) FROM events WHERE key_value LIKE '{run}-%'")[0][0]
    log(
        f"  {result['rps']:,.0f} events/s  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
        f"CPU {result['cpu_ms_per_request'] or 0:.2f} ms/event  errors {result['errors']}  "
        f"stored {result['stored']:,}" + (f"  e.g. {result['first_error'][:160]}" if result["errors"] else "")
    )
    return result


def run_events(seed: MessagingSeed, workers: tuple[int, ...], duration: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for count in workers:
        ours = run_events_server(seed, "ours", count, duration)
        bare = run_events_server(seed, "bare", count, duration)
        ratio = ours["rps"] / bare["rps"] if bare["rps"] else None
        results[str(count)] = {
            "ours": ours,
            "bare": bare,
            "ratio": ratio,
            "meets_target": ours["rps"] >= TARGET_EVENTS and not ours["errors"],
        }
    return results


# --------------------------------------------------------------------------------------------------


def run_messaging(
    dbs: list[str],
    *,
    quick: bool = False,
    workers: tuple[int, ...] = (1, 2),
    duration: float | None = None,
    smartsend: bool = True,
) -> dict[str, Any]:
    """Both parts; ``smartsend=False`` (``python -m bench.run events``) measures the events alone."""
    duration = duration or (3.0 if quick else 10.0)
    sizes = QUICK if quick else FULL
    results: dict[str, Any] = {
        "duration_seconds": duration,
        "connections": bench_http.CONNECTIONS,
        "wrk_threads": bench_http.THREADS,
        "worker_batch": WORKER_BATCH,
        "databases": {},
    }
    for db in dbs:
        log(f"messaging {db}: seeding")
        seeded = seed(db)
        results["databases"][db] = {"seed_seconds": seeded.seed_seconds}
        if smartsend:
            results["databases"][db]["smartsend"] = run_smartsend(seeded, sizes)
        results["databases"][db]["events"] = run_events(seeded, workers, duration)
    return results


def smartsend_table(results: dict[str, Any]) -> str:
    rows = []
    for db, entry in results["databases"].items():
        s = entry["smartsend"]
        scenarios = [("plain", s["ours"], s, None)]
        if "with_code" in s:  # absent from results written before the scenario existed
            coded = s["with_code"]
            scenarios.append(("+ code", coded["ours"], coded, coded["ours"]["codes"]))
        for scenario, ours, compared, codes in scenarios:
            rows.append(
                [
                    db,
                    scenario,
                    ours["intake_seconds"],
                    ours["end_to_end"]["seconds"],
                    ours["end_to_end"]["messages_per_second"],
                    ours["worker"]["seconds"],
                    ours["worker"]["messages_per_second"],
                    ours["worker"]["first_to_last_per_second"],
                    s["bare_one_connection"]["messages_per_second"],
                    s["bare_one_connection"]["first_to_last_per_second"],
                    s[f"bare_{WORKER_BATCH}_per_connection"]["messages_per_second"],
                    ours["worker"]["cpu_ms_per_message"],
                    s["bare_one_connection"]["cpu_ms_per_message"],
                    codes["distinct_codes"] if codes else None,
                    ("yes" if codes["ok"] else "NO") if codes else None,
                    f"{compared['ratio_end_to_end']:.2f}",
                    f"{compared['ratio_worker']:.2f}",
                    "yes" if compared["meets_target"] else "NO",
                ]
            )
    first = next(iter(results["databases"].values()))["smartsend"]
    title = (
        f"smartsend: {first['requests']} requests × {first['recipients_per_request']:,} recipients "
        f"= {first['messages']:,} emails to a local aiosmtpd server that only counts, plain and with "
        "a promo code claimed per recipient ($!promocodes.issue, checked: one code per message, all "
        "distinct, as stored); seconds and messages/s until the last one arrived (first→last: between "
        "the first and last arrival); CPU ms per message of the sending process (start-up included), "
        "not of the sink or PostgreSQL; both rows against the same bare loop, which claims no code"
    )
    headers = [
        "database",
        "scenario",
        "intake s",
        "ours e2e s",
        "msg/s",
        "worker s",
        "msg/s",
        "first→last msg/s",
        "bare 1 conn msg/s",
        "first→last msg/s",
        f"bare {WORKER_BATCH}/conn msg/s",
        "worker CPU ms/msg",
        "bare CPU ms/msg",
        "distinct codes",
        "codes ok",
        "e2e/bare",
        "worker/bare",
        f"e2e/bare>={TARGET_RATIO:.0%}",
    ]
    return title + "\n" + common.table(headers, rows)


def events_table(results: dict[str, Any]) -> str:
    rows = []
    for db, entry in results["databases"].items():
        for count, compared in entry["events"].items():
            ours, bare = compared["ours"], compared["bare"]
            rows.append(
                [
                    db,
                    count,
                    ours["rps"],
                    ours["p50_ms"],
                    ours["p99_ms"],
                    ours["errors"],
                    ours.get("cpu_ms_per_request"),
                    bare["rps"],
                    bare["p50_ms"],
                    bare["p99_ms"],
                    bare["errors"],
                    bare.get("cpu_ms_per_request"),
                    f"{compared['ratio']:.2f}" if compared["ratio"] is not None else None,
                    "yes" if compared["meets_target"] else "NO",
                ]
            )
    title = (
        f"events, POST /api/v1/event, wrk -t{results['wrk_threads']} -c{results['connections']} "
        f"-d{results['duration_seconds']:g}s: events/s, latency ms, server CPU ms per event "
        "(server processes only, not PostgreSQL)"
    )
    headers = [
        "database",
        "workers",
        "ours ev/s",
        "p50",
        "p99",
        "errors",
        "CPU ms/ev",
        "bare ev/s",
        "p50",
        "p99",
        "errors",
        "CPU ms/ev",
        "ours/bare",
        f">={TARGET_EVENTS}",
    ]
    return title + "\n" + common.table(headers, rows)
