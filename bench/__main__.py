"""``python -m bench ingest|forward|export|memory|scaling|all [--size quick|full] [--smoke]``
[--profile] [--clients N]; ``python -m bench crash [--kills N] [--slow]`` (SIGKILL under load);
``python -m bench soak [--minutes M]`` (RSS and outbox over time);
``python -m bench plan-cost [--rounds N]`` (the tracking-plan checks' cost on event ingest);
``python -m bench dashboard [--size smoke|quick|full]`` (server time of every /ui/ page);
``python -m bench scale_out [--size quick|full] [--smoke] [--processes 1,2]`` (ingest with N relay
processes on one PostgreSQL database; needs a PostgreSQL server, so not part of ``all``);
``python -m bench export_pg [--size quick|full] [--keep]`` (segment exports on PostgreSQL)."""

from __future__ import annotations

import argparse
import sys
import time

from bench.common import data_dir, machine

BENCHMARKS = ("ingest", "forward", "export", "memory", "scaling")
NEEDS_POSTGRES = ("scale_out", "export_pg")  # run by name only: `all` needs no PostgreSQL server


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["crash"]:
        from bench import crash

        return crash.main(argv[1:])
    if argv[:1] == ["plan-cost"]:
        from bench import plan_cost

        return plan_cost.main(argv[1:])
    if argv[:1] == ["dashboard"]:
        from bench import dashboard

        return dashboard.main(argv[1:])
    if argv[:1] == ["soak"]:
        from bench import soak

        return soak.main(argv[1:])
    if argv[:1] == ["generate"]:
        from bench import generate

        generate.main(argv[1:])
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="relay's benchmarks; each prints its figures, baseline ratios and targets."
        " `python -m bench generate OUT.db --profiles N --metrics M` writes a dataset.",
    )
    parser.add_argument("benchmark", choices=(*BENCHMARKS, *NEEDS_POSTGRES, "all"))
    parser.add_argument("--size", choices=("quick", "full"), default="quick")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds each")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="ingest, forward: sample relay with py-spy while it works",
    )
    parser.add_argument(
        "--clients",
        type=int,
        help="ingest: concurrent load-generator clients (default: the size's, 16 at quick/full)",
    )
    parser.add_argument(
        "--processes",
        default="1,2",
        help="scale_out: relay process counts to measure, comma-separated (default 1,2)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="export_pg: keep the copied database, and use it again when it is there",
    )
    args = parser.parse_args(argv)
    size = "smoke" if args.smoke else args.size
    print("machine:", ", ".join(f"{k} {v}" for k, v in machine().items()))
    print(f"data directory: {data_dir()} (RELAY_BENCH_DATA)")
    names = BENCHMARKS if args.benchmark == "all" else (args.benchmark,)
    failed = []
    for name in names:
        started = time.monotonic()
        module = __import__(f"bench.{name}", fromlist=["run"])
        options: dict[str, object] = {}
        if name in ("ingest", "forward"):
            options["profile"] = args.profile
        if name == "ingest" and args.clients:
            options["clients"] = args.clients
        if name == "scale_out":
            options["processes"] = args.processes
        if name == "export_pg":
            options["keep"] = args.keep
        report = module.run(size, **options)
        saved = report.save(size if "clients" not in options else f"{size}-c{args.clients}")
        print(f"  ({name} took {time.monotonic() - started:.0f}s; results in {saved})")
        failed += [f"{name}: {what}" for what, ok, _ in report.targets if not ok]
    print("\ntargets not met:" if failed else "\nall targets met")
    for line in failed:
        print("  -", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
