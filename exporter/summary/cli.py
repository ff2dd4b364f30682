"""clonewatch-summary: a running exporter's families, clones and volumes as tables.

    clonewatch-summary [URL]  or  python -m exporter.summary [URL]   (default http://127.0.0.1:9753/metrics)
"""

import sys

from .tables import fetch, render


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    url = argv[0] if argv else "http://127.0.0.1:9753/metrics"
    print(render(fetch(url)))
    return 0

