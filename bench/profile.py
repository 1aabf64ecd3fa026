"""Where a hot path spends its time: py-spy on ``tessera serve --workers 1`` under wrk load.

    .venv/bin/python -m bench.run profile --db postgresql [--endpoint issue] [--duration 15] [--quick]

Seeds a database like the HTTP benchmark (smaller), starts one worker, measures the endpoint once
without the profiler, then records the worker with ``py-spy record --pid --gil`` while wrk drives
the endpoint: once as collapsed stacks (analysed here; also loadable in https://www.speedscope.app)
and once as a flame graph (.svg), both under bench/results/. ``--gil`` keeps only samples of the
thread holding the GIL, so the shares below are shares of the worker's Python CPU time; time
spent waiting for the database or inside SQLite's C code (which releases the GIL) is not in them.

SQLAlchemy's asyncio layer runs the ORM inside greenlets, and py-spy shows a greenlet's stack
without the request stack it belongs to: those samples (stacks rooted at ``Session.execute``,
``Session.scalar``, ``commit``...) are reported as "SQLAlchemy ORM in greenlets", which is part of
the handlers' database work.

Install py-spy with ``.venv/bin/pip install py-spy``.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from bench import bench_http, common
from bench.common import log

RATE = 200  # samples per second


def _frame(function: str, path: str) -> re.Pattern[str]:
    """Matches a py-spy frame ``[Qualifier.]function (/full/path.py:line)``."""
    return re.compile(rf"(?:^|\.)(?:{function}) \(.*{path}")


#: Layers of a request, innermost first: a sample goes to the first layer found in its stack.
REQUEST_LAYERS: list[tuple[str, re.Pattern[str]]] = [
    ("JSON response rendering", _frame("render|init_headers", r"(starlette|fastapi)/responses\.py")),
    ("tessera read_params (form parsing)", _frame("read_params", r"tessera/sailplay\.py")),
    (
        "tessera authenticate (cached token)",
        _frame("authenticate", r"tessera/(sailplay|tenancy/service)\.py"),
    ),
    (
        "tessera handler: services, repositories, SQLAlchemy on the loop side",
        re.compile(r"\(.*tessera/(?!sailplay\.py)\w+/\w+\.py"),
    ),
    ("tessera endpoint wrapper (sailplay.py)", _frame("endpoint", r"tessera/sailplay\.py")),
    (
        "FastAPI/Starlette: middleware, routing, request handler",
        re.compile(r"\(.*(starlette|fastapi)/"),
    ),
    ("uvicorn: httptools protocol + ASGI cycle", re.compile(r"\(.*uvicorn/")),
]

#: Stacks that do not start at the program's ``<module>``: by their first frame.
DETACHED: list[tuple[str, re.Pattern[str]]] = [
    ("SQLAlchemy ORM in greenlets (execute, scalar, begin, commit, close)", re.compile(r"\(.*sqlalchemy/")),
    ("driver and executor threads (aiosqlite, to_thread)", re.compile(r"^Thread\._bootstrap ")),
]

#: Self time by where the innermost frame's code lives.
PACKAGES: list[tuple[str, re.Pattern[str]]] = [
    (label, re.compile(pattern))
    for label, pattern in [
        ("tessera", r"tessera/"),
        ("sqlalchemy/orm", r"sqlalchemy/orm/"),
        ("sqlalchemy/sql (statement building, cache keys, compiler)", r"sqlalchemy/sql/"),
        ("sqlalchemy/engine", r"sqlalchemy/engine/"),
        ("sqlalchemy/ext/asyncio", r"sqlalchemy/ext/asyncio/"),
        ("sqlalchemy/dialects + connectors (driver adapters)", r"sqlalchemy/(dialects|connectors)/"),
        ("sqlalchemy/pool", r"sqlalchemy/pool/"),
        ("sqlalchemy/util + event (greenlet bridge, events)", r"sqlalchemy/(util|event)/"),
        ("sqlalchemy (other)", r"sqlalchemy/"),
        ("asyncpg", r"asyncpg/"),
        ("aiosqlite", r"aiosqlite/"),
        ("fastapi", r"fastapi/"),
        ("starlette", r"starlette/"),
        ("python-multipart", r"(multipart|python_multipart)/"),
        ("pydantic", r"pydantic"),
        ("uvicorn", r"uvicorn/"),
        ("asyncio (incl. uvloop's C code under Runner.run)", r"asyncio/"),
        ("json", r"/json/"),
        ("stdlib (other)", r"python3\.\d+/|<frozen"),
    ]
]


def run_profile(db: str, *, endpoint: str = "issue", duration: float = 15.0) -> dict[str, Any]:
    py_spy = shutil.which("py-spy", path=str(common.BIN)) or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    log(f"profile {endpoint} on {db}: seeding")
    seeded = bench_http.seed(db, bench_http.QUICK)
    pool = seeded.activate_numbers if endpoint == "activate" else seeded.certificate_numbers
    slice_size = len(pool) // 3
    stem = f"profile-{endpoint}-{db}"
    raw_path = common.RESULTS_DIR / f"{stem}.txt"
    svg_path = common.RESULTS_DIR / f"{stem}.svg"
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    load: dict[str, Any] = {}
    with bench_http.server("ours", seeded, 1) as (base, process):
        bench_http.prepare_client(base, seeded)
        bench_http.wrk("info", base, 2.0, bench_http.info_env(seeded))
        log(f"profile {endpoint} on {db}: without the profiler for {duration:g}s")
        load["unprofiled"] = bench_http.run_endpoint(
            endpoint, base, seeded, duration, slice_size, process.pid
        )
        for fmt, path in (("raw", raw_path), ("flamegraph", svg_path)):
            log(f"profile {endpoint} on {db}: py-spy record --format {fmt} for {duration:g}s")
            load[fmt] = _record(py_spy, process.pid, fmt, path, duration, endpoint, base, seeded, slice_size)
    analysis = analyse(raw_path)
    return {
        "database": db,
        "endpoint": endpoint,
        "duration_seconds": duration,
        "collapsed_stacks": str(raw_path.relative_to(common.ROOT)),
        "flamegraph": str(svg_path.relative_to(common.ROOT)),
        "unprofiled": {k: v for k, v in load["unprofiled"].items() if k != "wrk_output"},
        "rps_profiled": load["raw"]["rps"],
        **analysis,
    }


def _record(
    py_spy: str,
    pid: int,
    fmt: str,
    path: Path,
    duration: float,
    endpoint: str,
    base: str,
    seeded: bench_http.Seed,
    slice_size: int,
) -> dict[str, Any]:
    command = [
        py_spy, "record", "--pid", str(pid), "--rate", str(RATE), "--duration", str(max(1, round(duration))),
        "--format", fmt, "--output", str(path), "--full-filenames", "--gil",
    ]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    result: dict[str, Any] = {}

    def drive() -> None:
        result.update(bench_http.run_endpoint(endpoint, base, seeded, duration + 1, slice_size))

    load = threading.Thread(target=drive)
    load.start()
    output, _ = recorder.communicate(timeout=duration + 120)
    load.join()
    if recorder.returncode != 0:
        raise RuntimeError(f"py-spy failed ({recorder.returncode}): {output[-2000:]}")
    return result


def _first_match(frames: list[str], layers: list[tuple[str, re.Pattern[str]]]) -> str | None:
    for label, pattern in layers:
        if any(pattern.search(frame) for frame in frames):
            return label
    return None


def analyse(raw_path: Path) -> dict[str, Any]:
    """Shares of samples: by request layer (exclusive), by package and function (self time)."""
    stacks: list[tuple[list[str], int]] = []
    for line in raw_path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([frame for frame in stack.split(";") if frame], int(count)))
    total = sum(count for _, count in stacks) or 1

    layers: collections.Counter[str] = collections.Counter()
    by_package: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    sqlalchemy_inclusive = 0
    for frames, count in stacks:
        root = frames[0] if frames else ""
        if any("Worker.run_forever" in frame for frame in frames):
            layer = "messaging worker (runs inside tessera serve)"
        elif root.startswith("<module>"):
            layer = _first_match(frames, REQUEST_LAYERS) or "event loop (uvloop/asyncio callbacks), other"
        else:
            layer = _first_match([root], DETACHED) or "other detached stacks"
        layers[layer] += count
        if any("sqlalchemy/" in frame for frame in frames):
            sqlalchemy_inclusive += count
        leaf = frames[-1] if frames else "?"
        by_function[_short(leaf)] += count
        by_package[_first_match([leaf], PACKAGES) or "other (C code, unknown)"] += count

    return {
        "samples": total,
        "layers": {label: count / total for label, count in layers.most_common()},
        "sqlalchemy_inclusive": sqlalchemy_inclusive / total,
        "self_by_package": {label: count / total for label, count in by_package.most_common()},
        "self_top_functions": {label: count / total for label, count in by_function.most_common(25)},
    }


def _short(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py:12)``."""
    return re.sub(r"\((?:.*/site-packages/|.*/lib/python3\.\d+/|.*/src/)?", "(", frame, count=1)


def profile_report(result: dict[str, Any]) -> str:
    unprofiled = result["unprofiled"]
    cpu = unprofiled.get("cpu_ms_per_request")
    lines = [
        f"Profile of {result['endpoint']} on {result['database']} (1 worker): "
        f"{unprofiled['rps']:,.0f} req/s without the profiler"
        + (f" ({cpu:.2f} ms server CPU per request)" if cpu else "")
        + f", {result['rps_profiled']:,.0f} req/s under py-spy; {result['samples']:,} GIL-holding samples",
        f"stacks: {result['collapsed_stacks']}  flame graph: {result['flamegraph']}",
        "",
        common.table(
            ["where the worker's Python CPU time goes (exclusive)", "share"],
            [[label, f"{share:.0%}"] for label, share in result["layers"].items()]
            + [["(anything under SQLAlchemy, all layers)", f"{result['sqlalchemy_inclusive']:.0%}"]],
        ),
        "",
        common.table(
            ["self time by package", "share"],
            [[label, f"{share:.0%}"] for label, share in result["self_by_package"].items() if share >= 0.005],
        ),
        "",
        common.table(
            ["self time, top functions", "share"],
            [[label, f"{share:.1%}"] for label, share in list(result["self_top_functions"].items())[:15]],
        ),
    ]
    return "\n".join(lines)
