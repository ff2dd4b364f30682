"""clonewatch-summary: a running exporter's families, clones and volumes as tables.

    clonewatch-summary [URL]  or  python -m exporter.summary [URL]   (default http://127.0.0.1:9753/metrics)
"""

import argparse
import sys

from .tables import fetch, render


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="clonewatch-summary",
                                 description="Print what a running clonewatch exporter serves, as tables.")
    ap.add_argument("url", nargs="?", default="http://127.0.0.1:9753/metrics", help="the exporter's /metrics URL")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        print(render(fetch(args.url)))
    except OSError as exc:
        print(f"clonewatch-summary: cannot read {args.url}: {exc}", file=sys.stderr)
        return 1
    return 0
