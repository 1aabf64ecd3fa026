"""``purchases/new`` over HTTP with wrk: a 10-position cart and one single-use promo code each time.

Per database, seeded through the real CLI and then over HTTP, as bench_http does: ``tessera
migrate``, ``tessera departments create``, ``tessera promocodes import`` of 500,000 codes
(``--quick``: 200,000) into a new simple group (single-use: ``apply_items_once`` is on by
default), a token from ``/api/v2/login``, and the group's promo action set with
``promocodes/groups/edit`` (10 % off). One purchase is then made by hand and its answer checked
(and kept in the JSON). For each worker count, ``tessera serve --workers N`` is started, warmed up
for 2 s with the same script, and wrk runs ``purchases/new`` for the given duration with 32
connections: every request uses a code no other request uses (each server run takes its own slice
of the codes and each wrk thread a disjoint part of it) and its own ``order_num``.

The bare baseline (bench/bare_app.py) runs the same statements in one transaction on the driver
and answers a minimal JSON; each server gets its own never-used slices of the codes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import bench_http, common
from bench.common import log

TARGET_RPS = 1000
TARGET_RATIO = 0.5
GROUP = "bench-purchases"
POSITIONS = 10
#: Codes kept back from the wrk slices: the hand-checked purchase uses the first one.
PROBES = 10
RUN_DIR = bench_http.RUN_DIR

#: The cart every request sends: 10 positions of 1,000 each, as a JSON string.
CART = json.dumps(
    {str(n): {"sku": f"SKU-{n}", "price": 1000, "quantity": 1} for n in range(1, POSITIONS + 1)},
    separators=(",", ":"),
)


@dataclass(frozen=True)
class Sizes:
    codes: int


FULL = Sizes(codes=500_000)
QUICK = Sizes(codes=200_000)


@dataclass
class PurchaseSeed:
    db: str
    url: str
    partner_id: int
    department_id: int
    department_key: str
    pin_code: str
    group_id: int
    numbers: list[str]
    token: str | None = None
    probe: dict[str, Any] | None = None
    taken: int = PROBES
    seed_seconds: dict[str, float] = field(default_factory=dict)

    def next_slice(self, size: int, name: str) -> Path:
        """The next ``size`` never-used codes, as a file for wrk."""
        if self.taken + size > len(self.numbers):
            raise RuntimeError("not enough seeded codes left")
        start, self.taken = self.taken, self.taken + size
        return common.write_lines(
            RUN_DIR / f"{self.db}-purchases-{name}.txt", self.numbers[start : start + size]
        )


def seed(db: str, sizes: Sizes) -> PurchaseSeed:
    timings: dict[str, float] = {}
    url = common.fresh_database(db, "purchases")
    timings["migrate"] = common.tessera("migrate", database_url=url).seconds
    department = common.create_department(url)
    partner_id = int(department["partner_id"])
    path = common.codes_file(sizes.codes, seed=21, tag="purchase_codes")
    log(f"seeding {db}: importing {path.name} as {GROUP}")
    imported = common.tessera(
        "promocodes", "import", str(path), "--partner-id", str(partner_id), "--group", GROUP, "--json",
        database_url=url,
    )  # fmt: skip
    timings[f"import {GROUP}"] = imported.seconds
    return PurchaseSeed(
        db=db,
        url=url,
        partner_id=partner_id,
        department_id=int(department["store_department_id"]),
        department_key=str(department["store_department_key"]),
        pin_code=str(department["pin_code"]),
        group_id=int(imported.json()["group_id"]),
        numbers=common.read_codes(path),
        seed_seconds=timings,
    )


def prepare(base: str, seed: PurchaseSeed) -> None:
    """Once per database: a token, the group's promo action, and one purchase checked by hand."""
    if seed.token is not None:
        return
    with httpx.Client(base_url=base, timeout=30) as client:
        seed.token = common.login(client, seed.department_id, seed.department_key, seed.pin_code)
        credentials = {"token": seed.token, "store_department_id": seed.department_id}
        answer = client.post(
            "/api/v2/promocodes/groups/edit/",
            data={**credentials, "group_id": seed.group_id, "discount_type": "percent", "discount_value": 10},
        ).json()
        if answer.get("status") != "ok":
            raise RuntimeError(f"groups/edit failed: {answer}")
        response = client.post(
            "/api/v2/purchases/new/",
            data={
                **credentials,
                "cart": CART,
                "promocodes": json.dumps([seed.numbers[0]]),
                "promocodes_info": 1,
                "order_num": "probe-1",
            },
        )
    answer = response.json()
    codes = answer.get("promocodes") or [{}]
    total = answer.get("cart", {}).get("cart", {}).get("total_price")
    if answer.get("status") != "ok" or codes[0].get("status_description") != "Applied" or total != 9000:
        raise RuntimeError(f"the checked purchase went wrong: {response.text[:2000]}")
    seed.probe = {"body": response.text, "bytes": len(response.content)}


def _tidy(seed: PurchaseSeed) -> None:
    if seed.db == "postgresql":
        common.pg_execute("VACUUM (ANALYZE) promocodes", "VACUUM (ANALYZE) purchases", url=seed.url)
    else:
        with contextlib.closing(sqlite3.connect(seed.url.removeprefix("sqlite:///"))) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _wrk_env(seed: PurchaseSeed, numbers: Path, run: str, contended: str | None = None) -> dict[str, str]:
    assert seed.token is not None
    mixed = {"BENCH_MIXED": "1", "BENCH_CONTENDED": contended} if contended else {}
    return {
        "BENCH_TOKEN": seed.token,
        "BENCH_DEPARTMENT_ID": str(seed.department_id),
        "BENCH_CART": CART,
        "BENCH_NUMBERS": str(numbers),
        "BENCH_RUN": run,
        **mixed,
    }


def run_server(
    seed: PurchaseSeed,
    workers: int,
    duration: float,
    slice_size: int,
    kind: str = "ours",
    mixed: bool = False,
) -> dict[str, Any]:
    """One server's run. ``mixed``: every cart also has a never-sold product, and one request in
    ten races all the others for one shared single-use code (bench/wrk/purchase.lua)."""
    run = f"{kind}-w{workers}" + ("-mixed" if mixed else "")
    # One shared code per mixed run, from the codes kept back from the wrk slices.
    contended = seed.numbers[1 + zlib.crc32(run.encode()) % (PROBES - 1)] if mixed else None
    _tidy(seed)
    with bench_http.server(kind, seed, workers, tag="purchases") as (base, process):
        if kind == "ours":
            prepare(base, seed)
        warm = seed.next_slice(slice_size, f"warm-{run}")
        bench_http.wrk("purchase", base, min(2.0, duration), _wrk_env(seed, warm, f"warm-{run}", contended))
        numbers = seed.next_slice(slice_size, run)
        log(f"purchases {seed.db} workers={workers} {kind} for {duration:g}s")
        cpu_before = common.process_tree_cpu_seconds(process.pid)
        result = bench_http.wrk("purchase", base, duration, _wrk_env(seed, numbers, run, contended))
        cpu = common.process_tree_cpu_seconds(process.pid) - cpu_before
    result["server_cpu_seconds"] = cpu
    result["cpu_ms_per_request"] = 1000 * cpu / result["requests"] if result["requests"] else None
    result["meets_target"] = result["rps"] >= TARGET_RPS and not result["errors"] and not result["misses"]
    log(
        f"  {result['rps']:,.0f} purchases/s  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
        f"CPU {result['cpu_ms_per_request'] or 0:.2f} ms/purchase  errors {result['errors']}  "
        f"not applied {result['misses']}"
        + (f"  e.g. {result['first_error'][:160]}" if result["errors"] else "")
    )
    return result


def run_purchases(
    dbs: list[str], *, quick: bool = False, workers: tuple[int, ...] = (1, 2), duration: float | None = None
) -> dict[str, Any]:
    duration = duration or (3.0 if quick else 10.0)
    sizes = QUICK if quick else FULL
    # A warm-up and a measured run each, for ours and for bare.
    slice_size = (sizes.codes - PROBES) // (8 * len(workers))
    results: dict[str, Any] = {
        "duration_seconds": duration,
        "connections": bench_http.CONNECTIONS,
        "wrk_threads": bench_http.THREADS,
        "sizes": sizes.__dict__,
        "codes_per_run": slice_size,
        "cart": CART,
        "databases": {},
    }
    for db in dbs:
        log(f"purchases {db}: seeding")
        seeded = seed(db, sizes)
        entry: dict[str, Any] = {"seed_seconds": seeded.seed_seconds, "workers": {}}
        entry["mixed"] = {}
        for count in workers:
            for mixed, into in ((False, entry["workers"]), (True, entry["mixed"])):
                ours = run_server(seeded, count, duration, slice_size, mixed=mixed)
                bare = run_server(seeded, count, duration, slice_size, kind="bare", mixed=mixed)
                ours["bare"] = bare
                ours["ratio"] = ours["rps"] / bare["rps"] if bare["rps"] else None
                ours["meets_target"] = ours["meets_target"] and (ours["ratio"] or 0) >= TARGET_RATIO
                into[str(count)] = ours
        entry["checked_purchase"] = seeded.probe
        results["databases"][db] = entry
    return results


def purchases_table(results: dict[str, Any]) -> str:
    rows = []
    for db, entry in results["databases"].items():
        runs = [("steady", c, r) for c, r in entry["workers"].items()]
        runs += [("mixed", c, r) for c, r in entry.get("mixed", {}).items()]
        for cart, count, r in runs:
            rows.append(
                [
                    db,
                    cart,
                    count,
                    r["rps"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["errors"],
                    r["misses"],
                    r.get("cpu_ms_per_request"),
                    r["bare"]["rps"],
                    r["bare"]["p50_ms"],
                    r["bare"]["p99_ms"],
                    r["bare"]["errors"] + r["bare"]["misses"],
                    r["bare"].get("cpu_ms_per_request"),
                    f"{r['ratio']:.2f}" if r["ratio"] is not None else "-",
                    "yes" if r["meets_target"] else "NO",
                ]
            )
    title = (
        f"purchases/new, {POSITIONS}-position cart + 1 single-use promo code, wrk "
        f"-t{results['wrk_threads']} -c{results['connections']} -d{results['duration_seconds']:g}s: "
        "successful purchases/s, latency ms, server CPU ms per request (server processes only); "
        "mixed carts: a new product in each, one request in ten racing for one shared code"
    )
    headers = [
        "database",
        "carts",
        "workers",
        "req/s",
        "p50",
        "p99",
        "errors",
        "not applied",
        "CPU ms/req",
        *bench_http.BARE_HEADERS,
        f">={TARGET_RPS} & >={TARGET_RATIO:.0%}",
    ]
    return title + "\n" + common.table(headers, rows)
