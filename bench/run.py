"""Runs the benchmarks and prints one table per benchmark; JSON results go to bench/results/.

    .venv/bin/python -m bench.run [import|xlsx|http|messaging|events|purchases|profile|all]
        [--db sqlite|postgresql|both] [--quick]

``all`` (the default) is import, xlsx, http, messaging and purchases; ``events`` (the events part
of messaging alone) and ``profile`` (py-spy on one hot path) run only when asked for.
PostgreSQL: $TESSERA_BENCH_POSTGRES_URL, default in bench/common.py. Its ``public`` schema is
dropped and rebuilt, so never point it at a database that holds anything you want to keep.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import Any

from bench import common
from bench.common import log

BENCHMARKS = ("import", "xlsx", "http", "messaging", "events", "purchases", "profile", "all")
ALL = ("import", "xlsx", "http", "messaging", "purchases")
USE_WRK = ("http", "messaging", "events", "purchases", "profile")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", nargs="?", default="all", choices=BENCHMARKS)
    parser.add_argument("--db", default="both", choices=("sqlite", "postgresql", "both"))
    parser.add_argument("--quick", action="store_true", help="wrk runs of 3 s and smaller seeds")
    parser.add_argument(
        "--repeat", type=int, default=1, help="import rounds per database; the fastest counts"
    )
    parser.add_argument(
        "--workers", default="1,2", help="server worker counts for http, events, purchases (default 1,2)"
    )
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10, --quick 3)")
    parser.add_argument(
        "--endpoints", default="info,issue,activate,use", help="http endpoints (default: all four)"
    )
    parser.add_argument("--endpoint", default="issue", help="profile: the endpoint to profile")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dbs = list(common.DATABASES) if args.db == "both" else [args.db]
    wanted = ALL if args.benchmark == "all" else (args.benchmark,)
    workers = tuple(int(w) for w in args.workers.split(","))
    if any(name in wanted for name in USE_WRK):
        missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
        if missing:
            print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
            return 2

    results: dict[str, Any] = {"machine": common.machine_info(), "arguments": vars(args)}
    tables: list[str] = []
    started = time.perf_counter()
    if "import" in wanted:
        from bench import bench_import

        results["import"] = bench_import.run_import(dbs, repeat=args.repeat)
        tables.append(bench_import.import_table(results["import"]))
    if "xlsx" in wanted:
        from bench import bench_import

        results["xlsx"] = bench_import.run_xlsx(dbs, repeat=args.repeat)
        tables.append(bench_import.xlsx_table(results["xlsx"]))
    if "http" in wanted:
        from bench import bench_http

        results["http"] = bench_http.run_http(
            dbs,
            quick=args.quick,
            workers=workers,
            duration=args.duration,
            endpoints=tuple(e.strip() for e in args.endpoints.split(",") if e.strip()),
        )
        tables.append(bench_http.http_table(results["http"]))
    if "messaging" in wanted:
        from bench import bench_messaging

        results["messaging"] = bench_messaging.run_messaging(
            dbs, quick=args.quick, workers=workers, duration=args.duration
        )
        tables.append(bench_messaging.smartsend_table(results["messaging"]))
        tables.append(bench_messaging.events_table(results["messaging"]))
    if "events" in wanted:
        from bench import bench_messaging

        results["events"] = bench_messaging.run_messaging(
            dbs, quick=args.quick, workers=workers, duration=args.duration, smartsend=False
        )
        tables.append(bench_messaging.events_table(results["events"]))
    if "purchases" in wanted:
        from bench import bench_purchases

        results["purchases"] = bench_purchases.run_purchases(
            dbs, quick=args.quick, workers=workers, duration=args.duration
        )
        tables.append(bench_purchases.purchases_table(results["purchases"]))
    if "profile" in wanted:
        from bench import profile

        results["profile"] = profile.run_profile(
            dbs[-1], endpoint=args.endpoint, duration=args.duration or (5.0 if args.quick else 15.0)
        )
        tables.append(profile.profile_report(results["profile"]))

    after = common.machine_info()
    results["machine"]["load_average_after"] = after["load_average"]
    results["machine"]["git_commit_after"] = after["git_commit"]
    results["machine"]["src_state_after"] = after["src_state"]
    results["machine"]["src_changed_during_run"] = after["src_state"] != results["machine"]["src_state"]
    results["total_seconds"] = time.perf_counter() - started
    path = common.save_results(args.benchmark, results)
    machine = results["machine"]
    print()
    print(
        f"Tessera benchmarks, {machine['when']}, {machine['cpus']} CPUs, load average "
        f"{machine['load_average'][0]:.1f} before / {machine['load_average_after'][0]:.1f} after, "
        f"commit {machine['git_commit']} (+{machine['git_dirty_files']} changed files in src/)"
    )
    if machine["src_changed_during_run"]:
        print(
            f"WARNING: src/ changed during the run (now commit {machine['git_commit_after']}): servers "
            "started after the change ran other code, so these figures mix two versions"
        )
    for text in tables:
        print()
        print(text)
    print()
    log(f"results written to {path.relative_to(common.ROOT)} in {results['total_seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
