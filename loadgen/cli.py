"""clonewatch-loadgen: `harness` (one shot, with a report), `run` (daemon), `cleanup`."""

import argparse
import sys
from pathlib import Path
from typing import Sequence

from exporter.logging import configure

from .scenario import ScenarioError, load


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="clonewatch-loadgen",
                                 description="Create clones of a golden image, drift them, measure, clean up.")
    ap.add_argument("--log.level", dest="log_level", default="info", choices=["debug", "info", "warning", "error"])
    ap.add_argument("--log.format", dest="log_format", default="console", choices=["json", "console"])
    sub = ap.add_subparsers(dest="command", required=True)
    h = sub.add_parser("harness", help="baseline, clone, drift levels, measure each, write a report")
    h.add_argument("--scenario", required=True)
    h.add_argument("--out", required=True, help="directory for summary.csv, points/*.json, report.html")
    h.add_argument("--keep", action="store_true", help="leave the clones (and golden) in place afterwards")
    r = sub.add_parser("run", help="daemon: the cycle on the scenario's schedule, with /metrics and /healthz")
    r.add_argument("--scenario", required=True)
    r.add_argument("--web.listen-address", dest="listen", default=":9754")
    c = sub.add_parser("cleanup", help="delete every clone this scenario created (nothing else)")
    c.add_argument("--scenario", required=True)
    c.add_argument("--golden", action="store_true", help="also remove the golden if this scenario created it")
    args = ap.parse_args(argv)
    configure(args.log_level, args.log_format)
    try:
        scenario = load(args.scenario)
    except ScenarioError as exc:
        print(f"clonewatch-loadgen: bad scenario: {exc}", file=sys.stderr)
        return 2
    from .cloners import CloneFailed
    try:
        if args.command == "harness":
            from .harness import Harness
            from .report import table
            points = Harness(scenario, Path(args.out), keep=args.keep).run_all()
            print(table(points))
            print(f"\nreport: {Path(args.out).resolve() / 'report.html'}")
            return 0
        if args.command == "run":
            import asyncio

            from exporter.cli import parse_listen_address
            from exporter.settings import ConfigError

            from .daemon import serve
            try:
                host, port = parse_listen_address(args.listen)
            except ConfigError as exc:
                print(f"clonewatch-loadgen: {exc}", file=sys.stderr)
                return 2
            return asyncio.run(serve(scenario, host, port))
        if args.command == "cleanup":
            from .harness import Harness
            harness = Harness(scenario, Path("."))
            removed = harness.adopt_leftovers()
            if args.golden:
                harness.cleanup(golden_created=True)
            print(f"removed {removed} clones of scenario {scenario.name}")
            return 0
    except ScenarioError as exc:
        print(f"clonewatch-loadgen: bad scenario: {exc}", file=sys.stderr)
        return 2
    except CloneFailed as exc:
        print(f"clonewatch-loadgen: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
