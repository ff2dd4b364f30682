"""A soak: the exporter at 10,000 clone PVCs under bench_churn's churn for a long while, sampled.

    .venv/bin/python bench/bench_soak.py [--minutes 60] [--every 300] [--pvcs 10000] [--rate 20]
        [--scrape-every 30] [--probe] [--trace-after MIN]

Every `--every` seconds it prints the exporter's RSS, threads and open file descriptors (from
/proc), its asyncio tasks (clonewatch_event_loop_tasks) and its CPU over the interval; at the end,
the RSS growth after warm-up (from the first sample after one churn cycle). Meanwhile a scraper
asks for gzip /metrics every --scrape-every seconds, as Prometheus would.
--probe runs the exporter under bench/heap_probe.py and adds where its memory is: Python's
allocated blocks and pymalloc arenas, malloc's in-use and free bytes, gc's freeze count;
--trace-after also starts tracemalloc then and writes the sites that grew (path printed).
"""

import argparse
import gzip
import json
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


def probed(path: Path) -> dict | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    return json.loads(lines[-1]) if lines else None


def scrape_forever(url: str, stop: threading.Event, every: float, failures: list[int]) -> None:
    while not stop.wait(every):
        if loop_tasks(url) is None:
            failures[0] += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    workload_args(ap)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--every", type=float, default=300)
    ap.add_argument("--warmup", type=float, default=None,
                    help="minutes before the growth baseline (default: one churn cycle, 2 x pvcs / rate: by then "
                         "every clone has been resized and flipped in flight once, adding its in-flight series)")
    ap.add_argument("--scrape-every", type=float, default=30, help="seconds between gzip scrapes (0: none)")
    ap.add_argument("--refresh-interval", type=float, default=60,
                    help="seconds between the exporter's RBD refreshes (its default; a refresh of 10,000 unchanged images)")
    ap.add_argument("--probe", action="store_true", help="run the exporter under bench/heap_probe.py")
    ap.add_argument("--trace-after", type=float, default=None, help="with --probe: start tracemalloc after MIN minutes")
    a = ap.parse_args()
    warmup = a.warmup if a.warmup is not None else 2 * a.pvcs / a.rate / 60
    tmp = Path(tempfile.mkdtemp(prefix="cw-soak-"))
    probe, traces = tmp / "probe.jsonl", tmp / "tracemalloc.txt"
    wrap = None
    if a.probe:
        wrap = [str(ROOT / "bench" / "heap_probe.py"), str(probe), "--every", "60"]
        if a.trace_after is not None:
            wrap += ["--trace-after", str(a.trace_after * 60), "--trace-out", str(traces)]
        wrap.append("--")
    kube, exp = seeded(ROOT, a, tmp, wrap, a.refresh_interval)
    stop = threading.Event()
    updates: list[int] = []
    failures = [0]
    try:
        worker = threading.Thread(target=churn_forever, args=(kube, stop, a.rate, a.pvcs, a.goldens, updates),
                                  daemon=True)
        worker.start()
        if a.scrape_every > 0:
            threading.Thread(target=scrape_forever, args=(exp.url, stop, a.scrape_every, failures), daemon=True).start()
        pid = exp.proc.pid
        print(f"soak: {a.pvcs} PVCs, {a.rate:g} updates/s for {a.minutes:g} min, a gzip scrape every "
              f"{a.scrape_every:g} s, an RBD refresh every {a.refresh_interval:g} s; log {exp.log}" + (f"; probe {probe}" if a.probe else "")
              + (f"; tracemalloc {traces}" if a.trace_after is not None else ""))
        print(f"{'min':>5} {'RSS MB':>7} {'threads':>7} {'fds':>4} {'tasks':>5} {'CPU %':>6} {'updates':>8}"
              + (f" {'py MB':>6} {'arenas':>6} {'mall.used':>9} {'mall.free':>9} {'frozen':>7}" if a.probe else ""))
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
                  f"{share:6.1f} {updates[0] if updates else 0:8d}" + (heap_columns(probed(probe)) if a.probe else ""),
                  flush=True)
            if now - start >= a.minutes * 60:
                break
            time.sleep(a.every)
        if first is not None:
            print(f"RSS growth after warm-up (from {first_at:.1f} min): {rss - first:+.0f} MB ({100 * (rss - first) / first:+.1f}%)")
        else:
            print(f"no sample after the {warmup:.1f} min warm-up: run longer than that")
        if failures[0]:
            print(f"{failures[0]} scrapes failed")
    finally:
        stop.set()
        exp.stop()
        kube.close()


def heap_columns(p: dict | None) -> str:
    """The probe's latest sample: Python's blocks (pymalloc bytes in use), pymalloc arenas (MB),
    malloc in use and free (MB), gc's freeze count."""
    if not p:
        return "      ?"
    mb = 1024 * 1024
    return (f" {p.get('pymalloc_used', 0) / mb:6.1f} {p.get('pymalloc_arenas', 0):6d} {p.get('malloc_used', 0) / mb:9.1f} "
            f"{p.get('malloc_free', 0) / mb:9.1f} {p['gc_frozen']:7d}")


if __name__ == "__main__":
    main()
