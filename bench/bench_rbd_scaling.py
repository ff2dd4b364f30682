"""The RBD refresh on ceph-csi's own layout, grown to 100 / 1,000 / 5,000 images, side by side with a
bare `rbd du` + `rbd ls -l` of the same pool at each size (medians of --repeat, same run).

The pool is built as ceph-csi builds it (clone format 2): goldens with data, each PVC clone through a
temporary image (`snap create SRC@x; clone SRC@x TEMP; snap rm SRC@x` -> the snapshot moves to the
trash namespace; `snap create TEMP@y; clone TEMP@y VOL; snap rm TEMP@y`), 10% of the volumes drifted
by one 4 MiB object, 5% deleted (`rbd trash mv`, as ceph-csi deletes; they sit in the trash until
its purge task runs). Images are counted live + trash; the bare commands see only the live ones.

Each size is measured in a child process, so its peak RSS is the backend's own (librbd included):
the first (cold) refresh opens every image, as bare `rbd du` + `rbd ls -l` always do; then the median
of --repeat refreshes with nothing changed (each image's fingerprint only).

    CEPH_CONF=/path/ceph.conf .venv/bin/python bench/bench_rbd_scaling.py [--sizes 100,1000,5000]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import median_seconds

MiB = 2**20
CHILD_LOG = "/tmp/clonewatch-bench-rbd-scaling.jsonl"      # every child's figures, also when a run is cut short


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


class Layout:
    """A pool grown in ceph-csi's command sequence through librbd (in-process: thousands of images in minutes)."""

    def __init__(self, pool: str, goldens: int) -> None:
        import rados
        import rbd
        self.rbd = rbd
        self.cluster = rados.Rados(conffile=os.environ["CEPH_CONF"])
        self.cluster.conf_set("rbd_default_clone_format", "2")
        self.cluster.connect()
        self.ioctx = self.cluster.open_ioctx(pool)
        self.api = rbd.RBD()
        self.goldens = [f"csi-vol-{uuid.uuid4()}" for _ in range(goldens)]
        self.images = 0
        self.volumes = 0
        for name in self.goldens:
            self.api.create(self.ioctx, name, 64 * MiB)
            with rbd.Image(self.ioctx, name) as img:
                for off in range(0, 16 * MiB, 4 * MiB):
                    img.write(b"g" * 4 * MiB, off)
            self.images += 1

    def _clone(self, i: int) -> None:
        rbd, uid = self.rbd, str(uuid.uuid4())
        src, temp, vol = self.goldens[i % len(self.goldens)], f"csi-vol-{uid}-temp", f"csi-vol-{uid}"
        with rbd.Image(self.ioctx, src) as img:
            img.create_snap(uid)
        self.api.clone(self.ioctx, src, uid, self.ioctx, temp)
        with rbd.Image(self.ioctx, src) as img:
            img.remove_snap(uid)                    # has a child: into the trash namespace
        with rbd.Image(self.ioctx, temp) as img:
            img.create_snap(f"{uid}-2")
        self.api.clone(self.ioctx, temp, f"{uid}-2", self.ioctx, vol)
        with rbd.Image(self.ioctx, temp) as img:
            img.remove_snap(f"{uid}-2")
        if i % 10 == 0:
            with rbd.Image(self.ioctx, vol) as img:
                img.write(b"d" * 4 * MiB, 0)
        if i % 20 == 7:
            self.api.trash_move(self.ioctx, vol, 0)

    def grow(self, images: int) -> None:
        todo = max(0, (images - self.images) // 2)         # two images (temp + volume) per PVC clone
        clones = range(self.volumes, self.volumes + todo)
        n = len(self.goldens)

        def one_golden(g: int) -> None:
            # Snapshots of one golden one at a time, as one ceph-csi provisioner would take them
            # (librbd aborts on concurrent snapshot changes of one image from several handles).
            for i in clones:
                if i % n == g:
                    self._clone(i)
        with ThreadPoolExecutor(n) as ex:
            list(ex.map(one_golden, range(n)))
        self.volumes += todo
        self.images += 2 * todo

    def close(self) -> None:
        self.ioctx.close()
        self.cluster.shutdown()


def child(pool: str, repeat: int) -> None:
    """One backend, `repeat` refreshes; prints the median, the image count and the peak RSS."""
    import asyncio

    from exporter.backends.rbd.backend import RbdBackend, RbdSettings
    from exporter.backends.rbd.reader import CephCluster
    backend = RbdBackend(RbdSettings(pools=(pool,), timeout_seconds=600, client="librbd",
                                     default=CephCluster(conf=os.environ["CEPH_CONF"]), concurrency=8))

    async def refresh() -> None:
        await backend.refresh()
    loop = asyncio.new_event_loop()
    t = time.perf_counter()
    loop.run_until_complete(refresh())          # cold: every image opened (what bare du + ls always pays)
    cold = time.perf_counter() - t
    warm = median_seconds(lambda: loop.run_until_complete(refresh()), repeat)   # nothing changed: fingerprints only
    state = backend.states()[pool]
    assert state.up, state.error
    loop.run_until_complete(backend.close())
    out = {"seconds": cold, "warm": warm, "images": len(state.volumes),
           "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    with open(CHILD_LOG, "a") as f:
        f.write(json.dumps({"pool": pool, **out}) + "\n")
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--goldens", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.repeat)
        return
    pool = f"bench-{uuid.uuid4().hex[:6]}"
    sh("ceph", "osd", "set-require-min-compat-client", "mimic")
    sh("ceph", "osd", "pool", "create", pool, "32", "32")
    sh("rbd", "pool", "init", pool)
    layout = Layout(pool, a.goldens)
    rows = []
    try:
        for size in (int(s) for s in a.sizes.split(",")):
            t = time.perf_counter()
            layout.grow(size)
            made = time.perf_counter() - t
            out = subprocess.run([sys.executable, __file__, "--child", pool, "--repeat", str(a.repeat)],
                                 check=True, capture_output=True, text=True).stdout
            ours = json.loads(out.strip().splitlines()[-1])

            def bare():
                with ThreadPoolExecutor(2) as ex:
                    list(ex.map(lambda argv: sh(*argv), [["rbd", "du", "-p", pool, "--format", "json"],
                                                         ["rbd", "ls", "-l", "-p", pool, "--format", "json"]]))
            bare_s = median_seconds(bare, a.repeat)
            live = len(json.loads(sh("rbd", "ls", "-p", pool, "--format", "json")))
            rows.append((ours["images"], live, ours["seconds"], ours["warm"], ours["rss_mib"], bare_s))
            print(f"grew to {ours['images']} images in {made:.0f}s", file=sys.stderr)
    finally:
        layout.close()
        subprocess.run(["ceph", "osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it"], capture_output=True)
    print(f"{'images (live+trash)':>20} {'live':>6} {'cold refresh':>13} {'per image':>10} {'unchanged':>10} "
          f"{'peak RSS':>9} {'bare du+ls':>11} {'cold ratio':>10} {'unchanged ratio':>15}")
    for images, live, cold, warm, rss, bare_s in rows:
        print(f"{images:>20} {live:>6} {cold:>12.2f}s {1000 * cold / images:>8.2f}ms {warm:>9.2f}s {rss:>7.0f}MB "
              f"{bare_s:>10.2f}s {bare_s / cold:>9.1f}x {bare_s / warm:>14.1f}x")


if __name__ == "__main__":
    if not os.environ.get("CEPH_CONF"):
        sys.exit("set CEPH_CONF to a cluster's ceph.conf (scripts/ceph-cluster.sh up DIR prints one)")
    main()
