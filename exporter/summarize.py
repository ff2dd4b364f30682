"""clonewatch-summary: a running exporter's families, clones and volumes as tables.

    python -m exporter.summarize [URL]      (default http://127.0.0.1:9753/metrics)
"""

import sys

from .summary import fetch, render


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    url = argv[0] if argv else "http://127.0.0.1:9753/metrics"
    print(render(fetch(url)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
