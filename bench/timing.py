"""The one timing helper the benchmarks share."""

import statistics
import time


def median_seconds(fn, repeat: int) -> float:
    """Median wall time of `repeat` calls of fn()."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
