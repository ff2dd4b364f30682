"""clonewatch-loadgen: `harness` (one shot, with a report), `run` (daemon), `cleanup`."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter.public import HintingParser, configure_logging

from .scenario import ScenarioError, load

SCENARIO_HELP = "scenario YAML: what to clone, how, how much drift (examples/*.yaml; docs/loadgen.md)"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = HintingParser(prog="clonewatch-loadgen",
                 description="Create clones of a golden image, drift them, measure, clean up.")
    ap.add_argument("--log.level", dest="log_level", default="info", choices=["debug", "info", "warning", "error"],
                    help="log level (default info)")
    ap.add_argument("--log.format", dest="log_format", default="console", choices=["json", "console"],
                    help="log format (default console)")
    sub = ap.add_subparsers(dest="command", metavar="{harness,run,cleanup}", parser_class=HintingParser)
    h = sub.add_parser("harness", help="baseline, clone, drift levels, measure each, write a report")
    h.add_argument("--scenario", required=True, metavar="FILE", help=SCENARIO_HELP)
    h.add_argument("--out", required=True, metavar="DIR", help="directory for summary.csv, points/*.json, report.html")
    h.add_argument("--keep", action="store_true", help="leave the clones (and golden) in place afterwards")
    r = sub.add_parser("run", help="daemon: the cycle on the scenario's schedule, with /metrics and /healthz")
    r.add_argument("--scenario", required=True, metavar="FILE", help=SCENARIO_HELP)
    r.add_argument("--web.listen-address", dest="listen", default=":9754", metavar="[HOST]:PORT",
                   help="address to serve /metrics and /healthz on (default :9754)")
    r.add_argument("--web.config.file", dest="web_config", default="", metavar="FILE",
                   help="TLS and basic auth for /metrics, exporter-toolkit format (README: Securing /metrics)")
    c = sub.add_parser("cleanup", help="delete every clone this scenario created (nothing else)")
    c.add_argument("--scenario", required=True, metavar="FILE", help=SCENARIO_HELP)
    c.add_argument("--golden", action="store_true", help="also remove the golden if this scenario created it")
    # Unknown options first, then the missing command: `--bogus` alone is about --bogus.
    args, extra = ap.parse_known_args(argv)
    if extra:
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        ap.error("a command is needed: harness, run or cleanup")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        scenario = load(args.scenario)
    except ScenarioError as exc:
        print(f"clonewatch-loadgen: bad scenario: {exc}", file=sys.stderr)
        return 2
    from .cloners.base import CloneFailed
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

            from exporter.public import ConfigError, parse_listen_address, security

            from .daemon import serve
            try:
                host, port = parse_listen_address(args.listen)
                sec = security(args.web_config, "none")
                return asyncio.run(serve(scenario, host, port, sec, args.listen))
            except ConfigError as exc:
                print(f"clonewatch-loadgen: configuration error: {exc}", file=sys.stderr)
                return 2
        if args.command == "cleanup":
            from .harness import Harness
            harness = Harness(scenario, Path("."))
            removed = harness.remove_owned("cleanup command")
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
