"""A soak: the exporter at 10,000 clone PVCs under bench_churn's churn for a long while, sampled.

    .venv/bin/python bench/bench_soak.py [--minutes 60] [--every 300] [--pvcs 10000] [--rate 20]

Every `--every` seconds it prints the exporter's RSS, threads and open file descriptors (from
/proc), its asyncio tasks (clonewatch_event_loop_tasks) and its CPU over the interval; at the end,
the RSS growth after warm-up (from the first sample after one churn cycle).
"""

import argparse
import gzip
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_churn import churn_forever, cpu_seconds, seeded, workload_args  # noqa: E402
from bench.bench_inventory import rss_mb  # noqa: E402


def counts(pid: int) -> tuple[int, int]:
    threads = len(os.listdir(f"/proc/{pid}/task"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return threads, fds


def loop_tasks(url: str) -> int | None:
    """clonewatch_event_loop_tasks from a gzip scrape (as Prometheus asks), None if unreadable."""
    req = urllib.request.Request(f"{url}/metrics", headers={"Accept-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = gzip.decompress(resp.read()).decode()
    except OSError:
        return None
    found = re.search(r"^clonewatch_event_loop_tasks (\S+)$", body, re.M)
    return int(float(found.group(1))) if found else None


def main() -> None:
    ap = argparse.ArgumentParser()
    workload_args(ap)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--every", type=float, default=300)
    ap.add_argument("--warmup", type=float, default=None,
                    help="minutes before the growth baseline (default: one churn cycle, 2 x pvcs / rate: by then "
                         "every clone has been resized and flipped in flight once, adding its in-flight series)")
    a = ap.parse_args()
    warmup = a.warmup if a.warmup is not None else 2 * a.pvcs / a.rate / 60
    tmp = Path(tempfile.mkdtemp(prefix="cw-soak-"))
    kube, exp = seeded(ROOT, a, tmp)
    stop = threading.Event()
    updates: list[int] = []
    try:
        worker = threading.Thread(target=churn_forever, args=(kube, stop, a.rate, a.pvcs, a.goldens, updates),
                                  daemon=True)
        worker.start()
        pid = exp.proc.pid
        print(f"soak: {a.pvcs} PVCs, {a.rate:g} updates/s for {a.minutes:g} min; log {exp.log}")
        print(f"{'min':>5} {'RSS MB':>7} {'threads':>7} {'fds':>4} {'tasks':>5} {'CPU %':>6} {'updates':>8}")
        start = time.monotonic()
        first: float | None = None
        first_at = 0.0
        cpu, t = cpu_seconds(pid), time.monotonic()
        while True:
            rss = rss_mb(pid)
            threads, fds = counts(pid)
            now_cpu, now = cpu_seconds(pid), time.monotonic()
            share = 100 * (now_cpu - cpu) / max(now - t, 1e-9)
            cpu, t = now_cpu, now
            tasks = loop_tasks(exp.url)
            if first is None and now - start >= warmup * 60:
                first, first_at = rss, (now - start) / 60
            print(f"{(now - start) / 60:5.1f} {rss:7.0f} {threads:7d} {fds:4d} {tasks if tasks is not None else '?':>5} "
                  f"{share:6.1f} {updates[0] if updates else 0:8d}", flush=True)
            if now - start >= a.minutes * 60:
                break
            time.sleep(a.every)
        if first is not None:
            print(f"RSS growth after warm-up (from {first_at:.1f} min): {rss - first:+.0f} MB ({100 * (rss - first) / first:+.1f}%)")
        else:
            print(f"no sample after the {warmup:.1f} min warm-up: run longer than that")
    finally:
        stop.set()
        exp.stop()
        kube.close()


if __name__ == "__main__":
    main()
