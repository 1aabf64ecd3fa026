"""The baseline for the HTTP benchmarks: a bare Starlette app running one SQL statement per request.

Same wire as Tessera (form-urlencoded POST, same paths, JSON answers), same drivers (an asyncpg
pool / sqlite3 connections on the event loop with the app's PRAGMAs and ``BEGIN IMMEDIATE`` for
writes), but nothing else: no authentication (the token is ignored), no ORM, no customer or group look-ups
(phones and group names are mapped to ids once at start-up), one statement per request.

``/api/v1/event`` (for bench/bench_messaging.py) is the messaging face's event intake: the JSON
body parsed and its ``params`` list turned into an object, as Tessera does, then one ``INSERT`` of
the same row into the real ``events`` table; no API key is checked and no workflows are looked up.

``/api/v2/purchases/new`` (for bench/bench_purchases.py) runs, in one transaction on the driver,
the statements Tessera runs for a cart with one promo code: the department check, the purchase
row (``ON CONFLICT DO NOTHING``), the codes and their groups, the guarded apply, the code's link,
the products' ids and the purchase's final row with its answer; the cart is priced with floats and
the answer is a minimal JSON. No authentication, no customer, no certificates.

Run by bench/bench_http.py as ``uvicorn bench.bare_app:create_app --factory --workers N``;
configured through the environment:

    BENCH_DATABASE_URL   sqlite:///path or postgresql://...
    BENCH_PARTNER_ID     the partner every request acts for
    BENCH_POOL_SIZE      asyncpg pool size per worker (default 30, as Tessera's 20 + 10 overflow)
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# -- the statements, one per endpoint ---------------------------------------------------------------

PG = {
    "info": """
        SELECT p.number, p.state, p.customer_id, p.receipt_date, p.activated_at, p.applied_times,
               p.date_of_use, p.expires_at, g.id, g.name, g.group_type, g.apply_items_once, g.enabled
        FROM promocodes p JOIN promocode_groups g ON g.id = p.group_id
        WHERE p.partner_id = $1 AND p.number = $2
        ORDER BY p.group_id""",
    "issue": """
        UPDATE promocodes SET state = 2, customer_id = $1, receipt_date = $2
        WHERE id = (SELECT id FROM promocodes WHERE group_id = $3 AND state = 1
                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
          AND state = 1
        RETURNING number""",
    "activate": """
        UPDATE promocodes
        SET activated_at = $1, customer_id = $2, receipt_date = coalesce(receipt_date, $1),
            state = CASE WHEN state = 1 THEN 2 ELSE state END
        WHERE partner_id = $3 AND number = $4 AND group_id = $5
          AND activated_at IS NULL AND (customer_id IS NULL OR customer_id = $2)
        RETURNING state""",
    "use": """
        UPDATE certificates SET used_at = $1
        WHERE partner_id = $2 AND number = $3 AND department_id = $4
          AND activated_at IS NOT NULL AND used_at IS NULL AND deleted_at IS NULL
        RETURNING id""",
    "event": """
        INSERT INTO events (partner_id, event_type_key, key_value, params, received_at)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING id""",
}


#: purchases/new: the statements Tessera runs for a cart with one promo code, in one transaction.
PG_PURCHASE = {
    "department": "SELECT partner_id FROM departments WHERE id = $1",
    "add_purchase": """
        INSERT INTO purchases (partner_id, department_id, customer_id, order_num, original_price, price,
                               paid_by_certificates, purchase_date, response)
        VALUES ($1, $2, NULL, $3, $4, $4, 0, $5, '{}')
        ON CONFLICT DO NOTHING RETURNING id""",
    "codes": """
        SELECT p.id, p.state, g.id, g.apply_items_once, g.enabled, g.discount_type, g.discount_value
        FROM promocodes p JOIN promocode_groups g ON g.id = p.group_id
        WHERE p.partner_id = $1 AND p.number = ANY(ARRAY(SELECT jsonb_array_elements_text($2::jsonb)))
        ORDER BY p.group_id, p.id""",
    "apply": """
        UPDATE promocodes SET state = 3, applied_times = applied_times + 1, date_of_use = $2
        WHERE id = $1 AND state <> 3""",
    "link": "INSERT INTO purchase_promocodes (partner_id, purchase_id, promocode_id) VALUES ($1, $2, $3)",
    "products": """
        SELECT sku, id FROM products
        WHERE partner_id = $1 AND sku = ANY(ARRAY(SELECT jsonb_array_elements_text($2::jsonb)))""",
    "finish": "UPDATE purchases SET price = $2, response = $3 WHERE id = $1",
    "add_product": """
        INSERT INTO products (partner_id, sku, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
}
SQLITE_PURCHASE = {
    **{name: sql.replace("$", "?") for name, sql in PG_PURCHASE.items()},
    "codes": """
        SELECT p.id, p.state, g.id, g.apply_items_once, g.enabled, g.discount_type, g.discount_value
        FROM promocodes p JOIN promocode_groups g ON g.id = p.group_id
        WHERE p.partner_id = ?1 AND p.number IN (SELECT value FROM json_each(?2))
        ORDER BY p.group_id, p.id""",
    "products": """
        SELECT sku, id FROM products WHERE partner_id = ?1 AND sku IN (SELECT value FROM json_each(?2))""",
}


def _sqlite(sql: str) -> str:
    """$1-style placeholders to SQLite's ?NNN, and no FOR UPDATE."""
    for n in range(9, 0, -1):
        sql = sql.replace(f"${n}", f"?{n}")
    return sql.replace(" FOR UPDATE SKIP LOCKED", "")


SQLITE = {name: _sqlite(sql) for name, sql in PG.items()}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_time(moment: datetime) -> str:
    # How SQLAlchemy's SQLite DateTime stores it, so both apps write the same values.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _error(message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message})


class Backend:
    partner_id: int
    customers: dict[str, int]
    groups: dict[str, int]

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def fetch(self, name: str, *args: Any) -> list[Any]: ...
    async def write(self, name: str, *args: Any) -> Any: ...
    def when(self) -> Any:
        return _now()

    async def purchase(self, department_id: int, order_num: str, cart: dict[str, Any], numbers: str) -> Any:
        """The whole of a purchase in one transaction; the answer, or None for a refused code."""


def _purchase_answer(
    codes: list[Any], cart: dict[str, Any], numbers: str, applied: bool = True
) -> tuple[float, dict[str, Any]]:
    """Prices the cart with the first matching code's percent (when it was applied) and builds the
    answer; a code another purchase used first is reported as such and takes nothing off."""
    total = sum(float(p["price"]) * float(p.get("quantity", 1)) for p in cart.values())
    percent = float(codes[0][6]) if applied and codes and codes[0][5] == "percent" else 0.0
    price = round(total * (100 - percent) / 100, 2)
    verdict = "Applied" if applied else "Promocode already used"
    answer = {
        "cart": {"total_price": price, "positions": list(cart.values())},
        "promocodes": [{"number": json.loads(numbers)[0], "status_description": verdict}],
    }
    return price, answer


class Postgres(Backend):
    def __init__(self, url: str, pool_size: int) -> None:
        self.url = url
        self.pool_size = pool_size

    async def start(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(
            self.url, min_size=min(10, self.pool_size), max_size=self.pool_size
        )
        rows = await self.pool.fetch("SELECT phone, id FROM customers WHERE partner_id = $1", self.partner_id)
        self.customers = {phone: id_ for phone, id_ in rows if phone}
        rows = await self.pool.fetch(
            "SELECT name, id FROM promocode_groups WHERE partner_id = $1", self.partner_id
        )
        self.groups = dict(rows)

    async def stop(self) -> None:
        await self.pool.close()

    async def fetch(self, name: str, *args: Any) -> list[Any]:
        return list(await self.pool.fetch(PG[name], *args))

    async def write(self, name: str, *args: Any) -> Any:
        # One statement in autocommit: its own transaction.
        return await self.pool.fetchval(PG[name], *args)

    async def purchase(self, department_id: int, order_num: str, cart: dict[str, Any], numbers: str) -> Any:
        sql = PG_PURCHASE
        skus = json.dumps([p["sku"] for p in cart.values()])
        now = _now()
        async with self.pool.acquire() as connection, connection.transaction():
            if await connection.fetchval(sql["department"], department_id) != self.partner_id:
                return None
            total = Decimal(str(sum(float(p["price"]) * float(p.get("quantity", 1)) for p in cart.values())))
            purchase_id = await connection.fetchval(
                sql["add_purchase"], self.partner_id, department_id, order_num, total, now
            )
            codes = await connection.fetch(sql["codes"], self.partner_id, numbers)
            if not codes:
                return None
            applied = await connection.execute(sql["apply"], codes[0][0], now) == "UPDATE 1"
            if applied:
                await connection.execute(sql["link"], self.partner_id, purchase_id, codes[0][0])
            found = await connection.fetch(sql["products"], self.partner_id, skus)
            known = {sku for sku, _ in found}
            missing = [sku for sku in json.loads(skus) if sku not in known]
            if missing:
                await connection.executemany(
                    sql["add_product"], [(self.partner_id, sku, now) for sku in missing]
                )
                await connection.fetch(sql["products"], self.partner_id, json.dumps(missing))
            price, answer = _purchase_answer(list(codes), cart, numbers, applied)
            await connection.execute(sql["finish"], purchase_id, Decimal(str(price)), json.dumps(answer))
        return answer


class Sqlite(Backend):
    """Two sqlite3 connections per process used on the event loop, as Tessera uses them: a
    reader in autocommit and a writer whose ``BEGIN IMMEDIATE … COMMIT`` runs without yielding."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=NORMAL"):
            connection.execute(f"PRAGMA {pragma}")
        return connection

    async def start(self) -> None:
        self.writer = self._connect()
        self.reader = self._connect()
        rows = self.reader.execute(
            "SELECT phone, id FROM customers WHERE partner_id = ?", (self.partner_id,)
        ).fetchall()
        self.customers = {phone: id_ for phone, id_ in rows if phone}
        rows = self.reader.execute(
            "SELECT name, id FROM promocode_groups WHERE partner_id = ?", (self.partner_id,)
        ).fetchall()
        self.groups = {name: id_ for name, id_ in rows}

    async def stop(self) -> None:
        self.writer.close()
        self.reader.close()

    async def fetch(self, name: str, *args: Any) -> list[Any]:
        return self.reader.execute(SQLITE[name], args).fetchall()

    async def write(self, name: str, *args: Any) -> Any:
        self.writer.execute("BEGIN IMMEDIATE")
        try:
            rows = self.writer.execute(SQLITE[name], args).fetchall()
        except BaseException:
            self.writer.execute("ROLLBACK")
            raise
        self.writer.execute("COMMIT")
        return rows[0][0] if rows else None

    def when(self) -> Any:
        return _sqlite_time(_now())

    async def purchase(self, department_id: int, order_num: str, cart: dict[str, Any], numbers: str) -> Any:
        sql, writer = SQLITE_PURCHASE, self.writer
        skus = json.dumps([p["sku"] for p in cart.values()])
        now = self.when()
        writer.execute("BEGIN IMMEDIATE")
        try:
            row = writer.execute(sql["department"], (department_id,)).fetchone()
            if row is None or row[0] != self.partner_id:
                writer.execute("ROLLBACK")
                return None
            total = sum(float(p["price"]) * float(p.get("quantity", 1)) for p in cart.values())
            (purchase_id,) = writer.execute(
                sql["add_purchase"], (self.partner_id, department_id, order_num, total, now)
            ).fetchone()
            codes = writer.execute(sql["codes"], (self.partner_id, numbers)).fetchall()
            if not codes:
                writer.execute("ROLLBACK")
                return None
            applied = writer.execute(sql["apply"], (codes[0][0], now)).rowcount == 1
            if applied:
                writer.execute(sql["link"], (self.partner_id, purchase_id, codes[0][0]))
            known = {sku for sku, _ in writer.execute(sql["products"], (self.partner_id, skus)).fetchall()}
            missing = [sku for sku in json.loads(skus) if sku not in known]
            if missing:
                writer.executemany(sql["add_product"], [(self.partner_id, sku, now) for sku in missing])
                writer.execute(sql["products"], (self.partner_id, json.dumps(missing))).fetchall()
            price, answer = _purchase_answer(codes, cart, numbers, applied)
            writer.execute(sql["finish"], (purchase_id, price, json.dumps(answer)))
        except BaseException:
            writer.execute("ROLLBACK")
            raise
        writer.execute("COMMIT")
        return answer


def _backend() -> Backend:
    url = os.environ["BENCH_DATABASE_URL"]
    backend: Backend
    if url.startswith("sqlite:///"):
        backend = Sqlite(url.removeprefix("sqlite:///"))
    else:
        backend = Postgres(url, int(os.environ.get("BENCH_POOL_SIZE", "30")))
    backend.partner_id = int(os.environ["BENCH_PARTNER_ID"])
    return backend


def create_app() -> Starlette:
    db = _backend()

    async def info(request: Request) -> JSONResponse:
        form = await request.form()
        rows = await db.fetch("info", db.partner_id, form["number"])
        if not rows:
            return _error("Promocode not found")
        return JSONResponse(
            {
                "status": "ok",
                "numbers": [
                    {
                        "number": row[0],
                        "promocode_status": row[1],
                        "issued_to": {"id": row[2]} if row[2] is not None else None,
                        "receipt_date": str(row[3]) if row[3] is not None else None,
                        "activated": row[4] is not None,
                        "applied_times": row[5],
                        "group": {"id": row[8], "name": row[9], "type": row[10], "enabled": bool(row[12])},
                    }
                    for row in rows
                ],
            }
        )

    async def issue(request: Request) -> JSONResponse:
        form = await request.form()
        customer_id = db.customers[str(form["user_phone"])]
        number = await db.write("issue", customer_id, db.when(), db.groups[str(form["group_name"])])
        if number is None:
            return _error("No free promo codes")
        return JSONResponse({"status": "ok", "promocode": {"number": number}})

    async def activate(request: Request) -> JSONResponse:
        form = await request.form()
        customer_id = db.customers[str(form["user_phone"])]
        state = await db.write(
            "activate",
            db.when(),
            customer_id,
            db.partner_id,
            form["number"],
            db.groups[str(form["group_name"])],
        )
        if state is None:
            return _error("Promocode already activated")
        return JSONResponse({"status": "ok", "promocode_status": state})

    async def use(request: Request) -> JSONResponse:
        form = await request.form()
        used = await db.write(
            "use", db.when(), db.partner_id, form["number"], int(str(form["target_dep_id"]))
        )
        if used is None:
            return _error("Certificate cannot be used")
        return JSONResponse({"status": "ok", "used": True})

    async def event(request: Request) -> Response:
        body = json.loads(await request.body())
        params = {item["name"]: item.get("value") for item in body.get("params") or []}
        # PostgreSQL: jsonb takes the JSON text (asyncpg has no codec for it by default); SQLite: TEXT.
        await db.write(
            "event", db.partner_id, body["eventTypeKey"], body["keyValue"], json.dumps(params), db.when()
        )
        return Response(status_code=200)

    async def purchase(request: Request) -> JSONResponse:
        form = await request.form()
        answer = await db.purchase(
            int(str(form["store_department_id"])),
            str(form["order_num"]),
            json.loads(str(form["cart"])),
            str(form["promocodes"]),
        )
        if answer is None:
            return _error("Promocode not found")
        return JSONResponse({"status": "ok", **answer})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.start()
        yield
        await db.stop()

    routes = []
    for path, endpoint in (
        ("/api/v2/promocodes/info", info),
        ("/api/v2/promocodes/issue", issue),
        ("/api/v2/promocodes/activate", activate),
        ("/api/v2/coupons/numbers/use", use),
        ("/api/v1/event", event),
        ("/api/v2/purchases/new", purchase),
    ):
        routes += [Route(path, endpoint, methods=["POST"]), Route(path + "/", endpoint, methods=["POST"])]
    return Starlette(routes=routes, lifespan=lifespan)
