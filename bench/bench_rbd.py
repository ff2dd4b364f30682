"""On a real local Ceph pool of 1,000 images (clones of a few goldens), side by side in one run:

1. refresh: the exporter's RBD backend refresh vs a bare `rbd du` + `rbd ls -l` of the same pool
   (both run sequentially and concurrently, as the backend does);
2. loadgen native clone throughput: RbdCloner.create over a batch (ownership manifest written
   once per batch) vs a bare `rbd clone` loop.

    CEPH_CONF=/path/ceph.conf .venv/bin/python bench/bench_rbd.py [--images 1000] [--clones 100]
    (scripts/ceph-cluster.sh up /tmp/cwb gives a cluster; this creates and removes its own pool)
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds
from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.backends.rbd.reader import CephCluster
from loadgen.cloners.native import RbdCloner
from loadgen.scenario import parse


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--goldens", type=int, default=4)
    ap.add_argument("--clones", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    pool = f"bench-{uuid.uuid4().hex[:6]}"
    sh("ceph", "osd", "pool", "create", pool, "16", "16")
    sh("rbd", "pool", "init", pool)
    try:
        t = time.perf_counter()
        for g in range(a.goldens):
            sh("rbd", "create", "--size", "64M", f"{pool}/g{g}")
            sh("rbd", "bench", "--io-type", "write", "--io-size", "4M", "--io-total", "16M", "--io-pattern", "seq",
               "--io-threads", "1", f"{pool}/g{g}")
            sh("rbd", "snap", "create", "--no-progress", f"{pool}/g{g}@base")
            sh("rbd", "snap", "protect", f"{pool}/g{g}@base")

        def clone(i):
            sh("rbd", "clone", f"{pool}/g{i % a.goldens}@base", f"{pool}/c{i:05d}")
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(clone, range(a.images - a.goldens)))
        print(f"pool {pool}: {a.images} images made in {time.perf_counter() - t:.0f}s")

        backend = RbdBackend(RbdSettings(pools=(pool,), timeout_seconds=600))
        ours = median_seconds(lambda: asyncio.run(backend.refresh()), a.repeat)
        assert backend.states()[pool].up and len(backend.states()[pool].volumes) == a.images
        conf = os.environ.get("CEPH_CONF", "")
        for threads in (4, 8):
            lib = RbdBackend(RbdSettings(pools=(pool,), timeout_seconds=600, client="librbd", default=CephCluster(conf=conf),
                                         concurrency=threads))

            async def lib_refresh(b=lib):
                await b.refresh()
            librbd_s = median_seconds(lambda: asyncio.run(lib_refresh()), a.repeat)
            assert lib.states()[pool].up and len(lib.states()[pool].volumes) == a.images, lib.states()[pool].error
            print(f"librbd refresh, {threads} threads: {librbd_s:.2f}s")
        bare_seq = median_seconds(lambda: (sh("rbd", "du", "-p", pool, "--format", "json"),
                                  sh("rbd", "ls", "-l", "-p", pool, "--format", "json")), a.repeat)

        def bare_parallel():
            with ThreadPoolExecutor(2) as ex:
                list(ex.map(lambda argv: sh(*argv), [["rbd", "du", "-p", pool, "--format", "json"],
                                                     ["rbd", "ls", "-l", "-p", pool, "--format", "json"]]))
        bare_par = median_seconds(bare_parallel, a.repeat)
        print(f"refresh of {a.images} images (median of {a.repeat}): exporter {ours:.2f}s; bare du+ls sequential "
              f"{bare_seq:.2f}s, concurrent {bare_par:.2f}s -> ratio {ours / bare_par:.2f} (vs concurrent), "
              f"{ours / bare_seq:.2f} (vs sequential)")

        sc = parse({"name": "bench", "backend": "rbd", "rbd": {"pool": pool}, "golden": {"name": "g0", "size": "64MiB"},
                    "groups": [{"name": "cow", "method": "clone", "count": a.clones}], "batch_size": a.clones})
        cloner = RbdCloner(sc, "bench")
        names = [f"cwlg-bench-cow-{i:05d}" for i in range(1, a.clones + 1)]
        t = time.perf_counter()
        cloner.reserve([(n, "cow", "clone") for n in names])
        for n in names:
            cloner.create(n, "cow", "clone")
        ours_clone = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(a.clones):
            sh("rbd", "clone", f"{pool}/g0@base", f"{pool}/bare{i:05d}")
        bare_clone = time.perf_counter() - t
        print(f"{a.clones} clones, one at a time: loadgen {ours_clone:.2f}s ({a.clones / ours_clone:.1f}/s), bare rbd clone "
              f"{bare_clone:.2f}s ({a.clones / bare_clone:.1f}/s) -> overhead {100 * (ours_clone / bare_clone - 1):+.1f}%")
    finally:
        subprocess.run(["ceph", "osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it"], capture_output=True)


if __name__ == "__main__":
    if not os.environ.get("CEPH_CONF"):
        sys.exit("set CEPH_CONF to a cluster's ceph.conf (scripts/ceph-cluster.sh up DIR prints one)")
    main()
