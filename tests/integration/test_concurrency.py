"""Races (SPEC §5, §6): a single-use code, a certificate and a small group under 60 concurrent requests.

Activation, issue and certificate activate/use are single guarded statements (or row locks), so
however many requests arrive at once there is exactly one winner and no code is handed out twice.

Two ways of racing:

- in-process, ``asyncio.gather`` over the ASGI app. On PostgreSQL the app's pool runs the
  transactions really in parallel; on SQLite the writers queue on the process's one writer
  connection, so this alone would prove little there;
- across two real ``tessera serve`` processes sharing one database (a SQLite file migrated with
  ``tessera migrate``, or the PostgreSQL test database), hit at the same time: on SQLite that is
  two writers contending for the file lock, which is what a deployment with several processes does.

Each race of codes or certificates ends with the reconciler (``tessera check``) finding nothing wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from tessera.db import Database
from tessera.reconcile import Problem, find_problems

RACERS = 60
TESSERA = Path(sys.executable).with_name("tessera")
READY_TIMEOUT = 30.0  # seconds; a process boots in ~2 s, ~8 s on a loaded 2-CPU machine


class Loyalty(Protocol):
    async def call(self, path: str, files: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Customer:
    phone: str
    id: int


@dataclass(frozen=True)
class Shop:
    """The department the races run in: its id and an employee's PIN (certificates need both)."""

    store_department_id: int
    pin_code: str


def outcomes(bodies: Sequence[dict[str, Any]]) -> Counter[str | int]:
    """``{"ok": n, <status_code>: m, ...}``: the whole race's result in one comparable value."""
    return Counter("ok" if body["status"] == "ok" else body["status_code"] for body in bodies)


def winners(bodies: Sequence[dict[str, Any]]) -> list[int]:
    return [index for index, body in enumerate(bodies) if body["status"] == "ok"]


def phone(series: int, index: int) -> str:
    return f"7900{series:03d}{index:04d}"


async def add_customers(loyalty: Loyalty, count: int, series: int) -> list[Customer]:
    phones = [phone(series, index) for index in range(count)]
    bodies = await asyncio.gather(*(loyalty.call("users/add", user_phone=p) for p in phones))
    for body in bodies:
        assert body["status"] == "ok", body
    return [Customer(p, body["id"]) for p, body in zip(phones, bodies, strict=True)]


async def upload_codes(
    loyalty: Loyalty, group: str, numbers: Sequence[str], *, group_type: int, single_use: bool = True
) -> None:
    content = ("\n".join(numbers) + "\n").encode()
    body = await loyalty.call(
        "promocodes/numbers/add",
        files={"file": ("codes.txt", content, "text/plain")},
        name=group,
        type=str(group_type),
        apply_items_once="1" if single_use else "0",
    )
    assert body["status"] == "ok", body
    assert body["imported_count"] == len(numbers)


async def upload_certificate(loyalty: Loyalty, shop: Shop, number: str, group: str) -> None:
    body = await loyalty.call(
        "coupons/numbers/add",
        files={"file": ("gifts.txt", f"{number}\n".encode(), "text/plain")},
        type="2",
        value="500",
        name=group,
        target_dep_id=shop.store_department_id,
        pin_code=shop.pin_code,
    )
    assert body["status"] == "ok", body
    assert body["imported_count"] == 1


async def tags_of(loyalty: Loyalty, customers: Sequence[Customer]) -> list[set[str]]:
    bodies = await asyncio.gather(*(loyalty.call("users/tags/list", user_phone=c.phone) for c in customers))
    return [{tag["name"] for tag in body["tags"]} for body in bodies]


def caller(callers: Sequence[Loyalty], index: int) -> Loyalty:
    """Spreads the racers over every process (or the one in-process client)."""
    return callers[index % len(callers)]


# --- the races, shared by the in-process and the two-process tests ---------------------------------


async def race_issue(callers: Sequence[Loyalty]) -> None:
    """60 customers ask for a code of a 10-code group at once: 10 get one each, 50 hear -4105."""
    setup = callers[0]
    group = "Race issue"
    numbers = [f"ISSUE-{index:02d}" for index in range(10)]
    await upload_codes(setup, group, numbers, group_type=1)
    customers = await add_customers(setup, RACERS, series=3)

    bodies = await asyncio.gather(
        *(
            caller(callers, index).call("promocodes/issue", user_phone=customer.phone, group_name=group)
            for index, customer in enumerate(customers)
        )
    )

    assert outcomes(bodies) == {"ok": 10, -4105: 50}, outcomes(bodies)
    assert {body["message"] for body in bodies if body["status"] != "ok"} == {"No free promocodes in group"}
    issued = {customers[index].id: bodies[index]["promocode"] for index in winners(bodies)}
    handed_out = [code["number"] for code in issued.values()]
    assert sorted(handed_out) == numbers, "a code was handed out twice, or one not of the group"
    for customer_id, code in issued.items():
        assert code["issued_to"] == {"id": customer_id}
        assert code["promocode_status"] == 2

    listed = await setup.call("promocodes/groups/list")
    (counts,) = [g for g in listed["groups"]["enabled"] if g["name"] == group]
    assert (counts["total_count"], counts["unused_count"], counts["reserved_count"]) == (10, 0, 0)
    assert (counts["receipted_count"], counts["applied_count"]) == (10, 0)

    # The database agrees with the answers: each code is bound to the customer told it won it.
    infos = await asyncio.gather(*(setup.call("promocodes/info", number=n) for n in handed_out))
    owners = {info["numbers"][0]["number"]: info["numbers"][0]["issued_to"]["id"] for info in infos}
    assert owners == {code["number"]: customer_id for customer_id, code in issued.items()}
    # ... and no loser holds a code.
    held = await asyncio.gather(
        *(setup.call("promocodes/list-for-user", user_phone=c.phone) for c in customers)
    )
    for customer, body in zip(customers, held, strict=True):
        expected = [issued[customer.id]["number"]] if customer.id in issued else []
        assert [code["number"] for code in body["promocodes"]] == expected


async def race_certificate_use(callers: Sequence[Loyalty], shop: Shop) -> None:
    """60 tills use one activated certificate at once: one `used: true`, 59 × -4207."""
    setup = callers[0]
    number = "GIFT-RACE-USE"
    await upload_certificate(setup, shop, number, "Race use")
    activated = await setup.call(
        "coupons/numbers/activate", number=number, target_dep_id=shop.store_department_id
    )
    assert activated == {"status": "ok", "activated": True}

    bodies = await asyncio.gather(
        *(
            caller(callers, index).call(
                "coupons/numbers/use", number=number, target_dep_id=shop.store_department_id
            )
            for index in range(RACERS)
        )
    )

    assert outcomes(bodies) == {"ok": 1, -4207: RACERS - 1}, outcomes(bodies)
    (winner,) = [body for body in bodies if body["status"] == "ok"]
    assert winner == {"status": "ok", "used": True}
    assert {body["message"] for body in bodies if body["status"] != "ok"} == {"Certificate already used"}
    status = await setup.call("coupons/numbers/status", number=number)
    assert (status["activated"], status["used"], status["deleted"]) == (True, True, False)
    groups = await setup.call("coupons/groups/list")
    (counts,) = [g for g in groups["groups"] if g["name"] == "Race use"]
    assert (counts["total_count"], counts["activated_count"], counts["used_count"]) == (1, 1, 1)


async def race_issue_against_activate(callers: Sequence[Loyalty]) -> None:
    """One code of an activation group: 30 customers ask for it to be issued, 30 others activate
    it by its number, all at once. One of the 60 gets it; the code is that customer's alone."""
    setup = callers[0]
    group = "Race both"
    await upload_codes(setup, group, ["BOTH-1"], group_type=2)
    customers = await add_customers(setup, RACERS, series=5)

    bodies = await asyncio.gather(
        *(
            caller(callers, index).call("promocodes/issue", user_phone=customer.phone, group_name=group)
            if index % 2
            else caller(callers, index).call(
                "promocodes/activate", user_phone=customer.phone, group_name=group, number="BOTH-1"
            )
            for index, customer in enumerate(customers)
        )
    )

    results = outcomes(bodies)
    assert results["ok"] == 1 and set(results) <= {"ok", -4104, -4105}, results
    (winner,) = winners(bodies)
    info = await setup.call("promocodes/info", number="BOTH-1")
    assert info["numbers"][0]["issued_to"] == {"id": customers[winner].id}
    held = await asyncio.gather(
        *(setup.call("promocodes/list-for-user", user_phone=c.phone) for c in customers)
    )
    assert [index for index, body in enumerate(held) if body["promocodes"]] == [winner]


async def race_purchases(callers: Sequence[Loyalty]) -> None:
    """40 tills put one single-use code in a purchase at once: one is discounted, 39 are not."""
    setup = callers[0]
    await upload_codes(setup, "Race buy", ["BUY-10"], group_type=1)
    groups = await setup.call("promocodes/groups/list")
    (group,) = [g for g in groups["groups"]["enabled"] if g["name"] == "Race buy"]
    edited = await setup.call(
        "promocodes/groups/edit", group_id=group["id"], discount_type="percent", discount_value="10"
    )
    assert edited["status"] == "ok", edited
    basket = json.dumps({"1": {"sku": "A1", "price": 700}, "2": {"sku": "B2", "price": 300}})

    bodies = await asyncio.gather(
        *(
            caller(callers, index).call(
                "purchases/new",
                order_num=f"BUY-{index:02d}",
                cart=basket,
                promocodes='["BUY-10"]',
                promocodes_info=1,
            )
            for index in range(40)
        )
    )

    assert outcomes(bodies) == {"ok": 40}, outcomes(bodies)
    verdicts = Counter(
        (b["promocodes"][0]["status"], b["promocodes"][0]["status_description"]) for b in bodies
    )
    assert verdicts == {(5, "Applied"): 1, (2, "Promocode already used"): 39}, verdicts
    assert sorted(b["purchase"]["price"] for b in bodies) == [900] + [1000] * 39
    info = await setup.call("promocodes/info", number="BUY-10")
    assert (info["numbers"][0]["promocode_status"], info["numbers"][0]["applied_times"]) == (3, 1)


# --- in-process: asyncio.gather over the ASGI app ----------------------------------------------------


def shop_of(loyalty: Any) -> Shop:
    return Shop(loyalty.department.store_department_id, loyalty.department.pin_code)


async def test_single_use_code_is_activated_once(loyalty: Loyalty, database: Database) -> None:
    group = "Race single"
    await upload_codes(loyalty, group, ["RACE-ONE", "RACE-SPARE"], group_type=2, single_use=True)
    customers = await add_customers(loyalty, RACERS, series=1)

    bodies = await asyncio.gather(
        *(
            loyalty.call("promocodes/activate", user_phone=c.phone, group_name=group, number="RACE-ONE")
            for c in customers
        )
    )

    assert outcomes(bodies) == {"ok": 1, -4104: RACERS - 1}, outcomes(bodies)
    (winner_index,) = winners(bodies)
    assert bodies[winner_index] == {"status": "ok", "promocode_status": 2}
    assert {body["message"] for body in bodies if body["status"] != "ok"} == {"Promocode already activated"}
    winner = customers[winner_index]
    info = await loyalty.call("promocodes/info", number="RACE-ONE")
    (code,) = info["numbers"]
    assert code["issued_to"] == {"id": winner.id}
    assert (code["promocode_status"], code["activated"]) == (2, True)
    tag = f"Applied promo code {group}"
    tagged = [c for c, tags in zip(customers, await tags_of(loyalty, customers), strict=True) if tag in tags]
    assert tagged == [winner]
    # The spare code of the same group was not touched by the race.
    (spare,) = (await loyalty.call("promocodes/info", number="RACE-SPARE"))["numbers"]
    assert (spare["promocode_status"], spare["issued_to"]) == (1, None)
    assert await find_problems(database) == []


async def test_single_use_code_activated_by_one_customer_many_times_at_once(
    loyalty: Loyalty, database: Database
) -> None:
    group = "Race single, one customer"
    await upload_codes(loyalty, group, ["RACE-SELF"], group_type=2, single_use=True)
    (customer,) = await add_customers(loyalty, 1, series=2)

    bodies = await asyncio.gather(
        *(
            loyalty.call(
                "promocodes/activate", user_phone=customer.phone, group_name=group, number="RACE-SELF"
            )
            for _ in range(RACERS)
        )
    )

    assert outcomes(bodies) == {"ok": 1, -4104: RACERS - 1}, outcomes(bodies)
    listed = await loyalty.call("promocodes/list-for-user", user_phone=customer.phone)
    assert [code["number"] for code in listed["promocodes"]] == ["RACE-SELF"]
    assert await find_problems(database) == []


async def test_multi_use_code_is_activated_once_per_customer(loyalty: Loyalty, database: Database) -> None:
    group = "Race multi"
    await upload_codes(loyalty, group, ["MULTI-ALL", "MULTI-SELF"], group_type=2, single_use=False)
    customers = await add_customers(loyalty, RACERS + 1, series=4)
    racers, repeater = customers[:RACERS], customers[RACERS]

    # 60 different customers: every one of them activates the code.
    bodies = await asyncio.gather(
        *(
            loyalty.call("promocodes/activate", user_phone=c.phone, group_name=group, number="MULTI-ALL")
            for c in racers
        )
    )
    assert outcomes(bodies) == {"ok": RACERS}, outcomes(bodies)
    assert {body["promocode_status"] for body in bodies} == {2}
    tag = f"Applied promo code {group}"
    assert all(tag in tags for tags in await tags_of(loyalty, racers))

    # One customer 60 times at once: once.
    bodies = await asyncio.gather(
        *(
            loyalty.call(
                "promocodes/activate", user_phone=repeater.phone, group_name=group, number="MULTI-SELF"
            )
            for _ in range(RACERS)
        )
    )
    assert outcomes(bodies) == {"ok": 1, -4104: RACERS - 1}, outcomes(bodies)
    listed = await loyalty.call("promocodes/list-for-user", user_phone=repeater.phone)
    assert [code["number"] for code in listed["promocodes"]] == ["MULTI-SELF"]
    (groups,) = [g for g in (await loyalty.call("promocodes/groups/list"))["groups"]["enabled"]]
    assert (groups["total_count"], groups["unused_count"], groups["receipted_count"]) == (2, 0, 2)
    assert await find_problems(database) == []


async def test_issue_hands_each_code_out_once(loyalty: Loyalty, database: Database) -> None:
    await race_issue([loyalty])
    assert await find_problems(database) == []


async def test_certificate_is_used_once(loyalty: Loyalty, database: Database) -> None:
    await race_certificate_use([loyalty], shop_of(loyalty))
    assert await find_problems(database) == []


async def test_certificate_is_activated_once(loyalty: Loyalty, database: Database) -> None:
    shop = shop_of(loyalty)
    number = "GIFT-RACE-ACTIVATE"
    await upload_certificate(loyalty, shop, number, "Race activate")

    bodies = await asyncio.gather(
        *(
            loyalty.call("coupons/numbers/activate", number=number, target_dep_id=shop.store_department_id)
            for _ in range(RACERS)
        )
    )

    assert outcomes(bodies) == {"ok": 1, -4206: RACERS - 1}, outcomes(bodies)
    assert {body["message"] for body in bodies if body["status"] != "ok"} == {"Certificate already activated"}
    status = await loyalty.call("coupons/numbers/status", number=number)
    assert (status["activated"], status["used"], status["deleted"]) == (True, False, False)
    assert await find_problems(database) == []


# --- two real `tessera serve` processes on one database ---------------------------------------------


class RemoteLoyalty:
    """The loyalty face of one running process, called as a logged-in department."""

    def __init__(self, http: httpx.AsyncClient, store_department_id: int, token: str) -> None:
        self.http = http
        self.store_department_id = store_department_id
        self.token = token

    async def call(self, path: str, files: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        data = {"token": self.token, "store_department_id": self.store_department_id, **params}
        response = await self.http.post(f"/api/v2/{path.strip('/')}/", data=data, files=files)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@dataclass
class Servers:
    urls: list[str]
    department: dict[str, Any]
    #: The database both processes share, for the reconciler to read after the race.
    database_url: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_DATABASE_URL=database_url, PYTHONUNBUFFERED="1", COLUMNS="250", TERM="dumb")
    # Outside a demo start (PostgreSQL), serve refuses the default secret key.
    env["TESSERA_SECRET_KEY"] = "race-tests-" + "0" * 32
    return env


def run_cli(args: list[str], database_url: str, cwd: Path) -> str:
    done = subprocess.run(
        [str(TESSERA), *args],
        env=process_env(database_url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"tessera {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tessera serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"tessera serve did not listen on {port} within {READY_TIMEOUT} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def two_servers(database_url: str, database: Database, tmp_path: Path) -> Iterator[Servers]:
    """Two `tessera serve` processes on one database, with one department created by the CLI.

    On PostgreSQL the `database` fixture has just emptied the test database; on SQLite a new file
    is migrated by `tessera migrate`.
    """
    if database_url.startswith("sqlite"):
        shared_url = f"sqlite:///{tmp_path / 'shared.db'}"
        run_cli(["migrate"], shared_url, tmp_path)
    else:
        shared_url = database_url
    department = json.loads(
        run_cli(["departments", "create", "--name", "Race shop", "--json"], shared_url, tmp_path)
    )
    processes: list[tuple[subprocess.Popen[bytes], int, Path]] = []
    try:
        # Both boot at once, as processes of one deployment do (on SQLite each re-runs the migrations).
        for index in range(2):
            port = free_port()
            log = tmp_path / f"serve-{index}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [str(TESSERA), "serve", "--port", str(port)],
                    env=process_env(shared_url),
                    cwd=tmp_path,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            processes.append((process, port, log))
        for process, port, log in processes:
            wait_until_listening(process, port, log)
        urls = [f"http://127.0.0.1:{port}" for _, port, _ in processes]
        yield Servers(urls, department, shared_url)
    finally:
        for process, _, _ in processes:
            stop(process)
    for _, _, log in processes:
        output = log.read_text()
        assert "Traceback" not in output, output


async def problems_at(database_url: str) -> list[Problem]:
    """What ``tessera check`` finds in the database the processes share."""
    database = Database(database_url)
    try:
        return await find_problems(database)
    finally:
        await database.dispose()


async def remote_callers(servers: Servers, clients: list[httpx.AsyncClient]) -> list[Loyalty]:
    department = servers.department
    response = await clients[0].post(
        "/api/v2/login/",
        data={key: department[key] for key in ("store_department_id", "store_department_key", "pin_code")},
    )
    body = response.json()
    assert body["status"] == "ok", body
    # One token, valid at both processes: it lives in the shared database.
    return [RemoteLoyalty(http, department["store_department_id"], body["token"]) for http in clients]


def http_clients(servers: Servers) -> list[httpx.AsyncClient]:
    # uvicorn closes a keep-alive connection after 5 s idle. A request sent on a connection just
    # as the server closes it fails with ReadError, so the client gives idle connections up first.
    limits = httpx.Limits(max_connections=RACERS, max_keepalive_connections=RACERS, keepalive_expiry=1.0)
    return [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for url in servers.urls]


@pytest.mark.slow
async def test_issue_race_across_two_processes(two_servers: Servers) -> None:
    clients = http_clients(two_servers)
    try:
        await race_issue(await remote_callers(two_servers, clients))
    finally:
        for http in clients:
            await http.aclose()
    assert await problems_at(two_servers.database_url) == []


@pytest.mark.slow
async def test_certificate_use_race_across_two_processes(two_servers: Servers) -> None:
    clients = http_clients(two_servers)
    shop = Shop(two_servers.department["store_department_id"], two_servers.department["pin_code"])
    try:
        await race_certificate_use(await remote_callers(two_servers, clients), shop)
    finally:
        for http in clients:
            await http.aclose()
    assert await problems_at(two_servers.database_url) == []


@pytest.mark.slow
async def test_issue_against_activate_race_across_two_processes(two_servers: Servers) -> None:
    clients = http_clients(two_servers)
    try:
        await race_issue_against_activate(await remote_callers(two_servers, clients))
    finally:
        for http in clients:
            await http.aclose()
    assert await problems_at(two_servers.database_url) == []


@pytest.mark.slow
async def test_purchase_race_across_two_processes(two_servers: Servers) -> None:
    clients = http_clients(two_servers)
    try:
        await race_purchases(await remote_callers(two_servers, clients))
    finally:
        for http in clients:
            await http.aclose()
    assert await problems_at(two_servers.database_url) == []


async def test_issue_against_activate_race_in_one_process(loyalty: Loyalty, database: Database) -> None:
    await race_issue_against_activate([loyalty])
    assert await find_problems(database) == []


async def test_one_new_customer_added_by_many_requests_at_once_is_one_customer(loyalty: Loyalty) -> None:
    bodies = await asyncio.gather(
        *(loyalty.call("users/add", user_phone=phone(7, 1), email="race@example.com") for _ in range(RACERS))
    )

    assert outcomes(bodies) == {"ok": RACERS}, outcomes(bodies)
    assert len({body["id"] for body in bodies}) == 1


async def test_one_new_email_given_to_two_customers_at_once_goes_to_one(loyalty: Loyalty) -> None:
    """Each request completes a known customer with the same new email: the unique key decides,
    and the loser is told the email is taken (never a 500, never two owners)."""
    first, second = await add_customers(loyalty, 2, series=8)
    racers = [first, second] * (RACERS // 2)

    bodies = await asyncio.gather(
        *(loyalty.call("users/add", user_phone=c.phone, email="shared@example.com") for c in racers)
    )

    counted = outcomes(bodies)
    assert set(counted) <= {"ok", -200010}, counted
    owners = {body["id"] for body in bodies if body["status"] == "ok"}
    assert len(owners) == 1, owners
    assert counted[-200010] == sum(1 for c in racers if c.id not in owners)
