"""Run a module (the exporter) with a thread that writes where its memory is, for soaks.

    python bench/heap_probe.py OUT.jsonl [--every S] [--trace-after S --trace-out F] -- -m exporter ARGS...

Every `--every` seconds a JSON line: RSS, Python's allocated blocks and pymalloc arenas (from
sys._debugmallocstats), glibc malloc's in-use and free bytes (mallinfo2, all arenas), and
gc's freeze count. RSS that grows while all of these stay flat is neither Python objects nor the
malloc heap; free bytes that grow while in-use stays flat are fragmentation, not a leak.
With --trace-after, tracemalloc starts then (after warm-up: only allocations from there on are
traced, so its cost is only paid for them) and every sample appends to --trace-out the
allocation sites that grew most since it started, with their tracebacks.
"""

import argparse
import gc
import json
import os
import re
import runpy
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.malloc import mallinfo


def _mallinfo() -> dict[str, int]:
    m = mallinfo()
    if m is None:
        return {}
    return {"malloc_arena": m.arena, "malloc_mmap": m.hblkhd, "malloc_used": m.uordblks, "malloc_free": m.fordblks}


def _pymalloc() -> dict[str, int]:
    """pymalloc's arenas and blocks; _debugmallocstats writes to the C stderr, so borrow fd 2."""
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        try:
            os.dup2(f.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    out = {}
    for key, pattern in (("pymalloc_arenas", r"# arenas allocated current\s*=\s*([\d,]+)"),
                         ("pymalloc_used", r"# bytes in allocated blocks\s*=\s*([\d,]+)"),
                         ("pymalloc_free", r"# bytes in available blocks\s*=\s*([\d,]+)"),
                         ("pymalloc_unused_pools", r"(\d+) unused pools \*")):
        m = re.search(pattern, text)
        if m:
            out[key] = int(m.group(1).replace(",", ""))
    return out


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _probe(out: str, every: float, trace_after: float | None, trace_out: str | None) -> None:
    start = time.monotonic()
    first = None
    while True:
        time.sleep(every)
        now = time.monotonic() - start
        if trace_after is not None and first is None and now >= trace_after:
            tracemalloc.start(6)
            first = tracemalloc.take_snapshot()
        sample = {"t": round(now, 1), "rss_kb": _rss_kb(), "py_blocks": sys.getallocatedblocks(),
                  "gc_frozen": gc.get_freeze_count(), "threads": threading.active_count(),
                  **_pymalloc(), **_mallinfo()}
        with open(out, "a") as f:
            f.write(json.dumps(sample) + "\n")
        if first is not None and trace_out:
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            top = snap.compare_to(first, "traceback")[:12]
            with open(trace_out, "a") as f:
                f.write(f"=== t={now / 60:.1f} min, traced now {tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB\n")
                for stat in top:
                    f.write(f"{stat.size_diff / 1e3:+9.1f} kB {stat.count_diff:+7d} blocks\n")
                    for line in stat.traceback.format()[-8:]:
                        f.write(f"      {line}\n")


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--")
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--every", type=float, default=60)
    ap.add_argument("--trace-after", type=float, default=None)
    ap.add_argument("--trace-out", default=None)
    a = ap.parse_args(argv[:split])
    rest = argv[split + 1:]
    if rest[:1] != ["-m"] or len(rest) < 2:
        ap.error("after -- give -m MODULE [ARGS]")
    threading.Thread(target=_probe, args=(a.out, a.every, a.trace_after, a.trace_out), daemon=True,
                     name="heap-probe").start()
    sys.argv = [rest[1], *rest[2:]]
    runpy.run_module(rest[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
