"""The RBD refresh on ceph-csi's own layout, grown to 100 / 1,000 / 5,000 images, side by side with a
bare `rbd du` + `rbd ls -l` of the same pool at each size (medians, same run).

The pool is built as ceph-csi builds it (clone format 2): goldens with data, each PVC clone through a
temporary image (`snap create SRC@TEMP; clone SRC@TEMP TEMP; snap rm SRC@TEMP` -> the snapshot moves to
the trash namespace; `snap create TEMP@VOL; clone TEMP@VOL VOL; snap rm TEMP@VOL`), 10% of the volumes
drifted by one 4 MiB object, 5% deleted (`rbd trash mv`, as ceph-csi deletes; they sit in the trash
until its purge task runs). Images are counted live + trash; the bare commands see only the live ones.
`--layout driver` (the default) gives the temporary images the driver's own features, layering and
deep-flatten only (no object map, so `rbd du` and the exporter read them object by object), and the
volumes the StorageClass's (ODF: with object map and fast-diff); `--layout replay` gives every image
librbd's defaults (object map everywhere), as this benchmark did before.

Each measurement is a child process, so its peak RSS is the backend's own (librbd included): the
first refresh after a start (the median of --rounds children), then the median of --repeat refreshes
with nothing changed. `--baseline DIR` measures an older tree's backend (DIR holds its exporter/) on
the same pool in the same run, its children taking turns with this tree's (`--baseline-at` sizes
only, if given). `--readyz-at N`: at that
size also the exporter as a process in native mode, the seconds from its start to /readyz and to every
image's byte series in /metrics. Growing 10,000 images takes about an hour here: `--keep` leaves the
pool in place (its name is printed) and `--reuse POOL` measures such a pool again as it is, e.g. after
a change to the backend; `--bare-repeat 0` leaves the bare commands out at a size (at 10,000 images
one `rbd du` takes half an hour).

    CEPH_CONF=/path/ceph.conf .venv/bin/python bench/bench_rbd_scaling.py [--sizes 100,1000,5000]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import median_seconds  # noqa: E402

MiB = 2**20
CHILD_LOG = "/tmp/clonewatch-bench-rbd-scaling.jsonl"      # every child's figures, also when a run is cut short


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


class Layout:
    """A pool grown in ceph-csi's command sequence through librbd (in-process: thousands of images in minutes)."""

    def __init__(self, pool: str, goldens: int, driver: bool) -> None:
        import rados
        import rbd
        self.rbd = rbd
        # ceph-csi: temporary images layering,deep-flatten only; volumes the StorageClass's features
        # (set explicitly: a clone would inherit its parent's). None: librbd's defaults / the parent's.
        self.temp_features = rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_DEEP_FLATTEN if driver else None
        self.volume_features = (rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_DEEP_FLATTEN | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
                                | rbd.RBD_FEATURE_OBJECT_MAP | rbd.RBD_FEATURE_FAST_DIFF) if driver else None
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
            img.create_snap(temp)
        self.api.clone(self.ioctx, src, temp, self.ioctx, temp, features=self.temp_features)
        with rbd.Image(self.ioctx, src) as img:
            img.remove_snap(temp)                   # has a child: into the trash namespace
        with rbd.Image(self.ioctx, temp) as img:
            img.create_snap(vol)
        self.api.clone(self.ioctx, temp, vol, self.ioctx, vol, features=self.volume_features)
        with rbd.Image(self.ioctx, temp) as img:
            img.remove_snap(vol)
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
    """One backend: its first refresh, then the median of `repeat` with nothing changed; prints those,
    the image count, the peak RSS and (where the tree counts them) how the images were read."""
    import asyncio

    from exporter.backends.rbd.backend import RbdBackend, RbdSettings
    from exporter.backends.rbd.reader import CephCluster
    backend = RbdBackend(RbdSettings(pools=(pool,), timeout_seconds=600, client="librbd",
                                     default=CephCluster(conf=os.environ["CEPH_CONF"]), concurrency=8))

    async def refresh() -> None:
        await backend.refresh()
    loop = asyncio.new_event_loop()
    t = time.perf_counter()
    loop.run_until_complete(refresh())          # the first refresh after a start
    cold = time.perf_counter() - t
    methods = dict(getattr(backend.reader._readers[""], "methods", {}).get((pool, ""), {}))
    warm = median_seconds(lambda: loop.run_until_complete(refresh()), repeat)   # nothing changed
    state = backend.states()[pool]
    assert state.up, state.error
    loop.run_until_complete(backend.close())
    out = {"seconds": cold, "warm": warm, "images": len(state.volumes), "first_methods": methods,
           "rss_mib": peak_rss_mib(os.getpid())}
    with open(CHILD_LOG, "a") as f:
        f.write(json.dumps({"pool": pool, "tree": str(sys.path[0]), **out}) + "\n")
    print(json.dumps(out))


def peak_rss_mib(pid: int) -> float:
    """The process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that over an
    exec from the process's image before it, so a child started from this (large) parent would
    report the parent's peak."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def run_child(pool: str, repeat: int, tree: Path) -> dict:
    """A child of this file that imports `exporter` from `tree`."""
    out = subprocess.run([sys.executable, __file__, "--child", pool, "--repeat", str(repeat), "--tree", str(tree)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bare(pool: str) -> None:
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda argv: sh(*argv), [["rbd", "du", "-p", pool, "--format", "json"],
                                             ["rbd", "ls", "-l", "-p", pool, "--format", "json"]]))


def readyz(pool: str, images: int) -> tuple[float, float, float]:
    """The exporter as a process in native mode: (seconds to /readyz, to every image's bytes in /metrics,
    its peak RSS in MB by then)."""
    from tests.support.process import ExporterProcess
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        exp = ExporterProcess(["--no-kubernetes.enabled", f"--rbd.pools={pool}", f"--ceph.conf={os.environ['CEPH_CONF']}",
                               "--rbd.client=librbd", "--rbd.timeout=600", "--rbd.refresh-interval=3600",
                               "--log.level=warning"], Path(tmp) / "exporter.log")
        try:
            exp.wait_ready(timeout=900)
            ready = time.perf_counter() - t
            while exp.metrics_text().count("\nclonewatch_volume_consumed_bytes{") < images:
                if exp.proc.poll() is not None or time.perf_counter() - t > 900:
                    raise AssertionError(f"not every byte series after {time.perf_counter() - t:.0f}s:\n{exp.logs()[-2000:]}")
                time.sleep(0.2)
            return ready, time.perf_counter() - t, peak_rss_mib(exp.proc.pid)
        finally:
            exp.stop()


def measure(pool: str, a: argparse.Namespace, trees: list[tuple[str, Path]], bare_repeat: int) -> dict:
    """Every tree's children (taking turns, --rounds of them; a baseline's once: it is the slow one),
    and the bare commands, on the pool as it is now."""
    runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
    for r in range(a.rounds):
        for name, tree in trees:
            if name == "this" or r == 0:
                runs[name].append(run_child(pool, a.repeat, tree))
    out = {"bare": median_seconds(lambda: bare(pool), bare_repeat) if bare_repeat else None,
           "live": len(json.loads(sh("rbd", "ls", "-p", pool, "--format", "json")))}
    for name, rs in runs.items():
        out[name] = {"images": rs[0]["images"], "cold": statistics.median(r["seconds"] for r in rs),
                     "warm": statistics.median(r["warm"] for r in rs), "rss": max(r["rss_mib"] for r in rs),
                     "methods": rs[0]["first_methods"]}
    return out


def report(rows: list[tuple[int, dict, tuple[float, float, float] | None]], trees: list[tuple[str, Path]]) -> None:
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f} (1/5/15 min), "
          f"{os.cpu_count()} CPUs")
    print(f"{'tree':>8} {'images':>7} {'live':>6} {'first refresh':>14} {'per image':>10} {'later':>8} {'peak RSS':>9} "
          f"{'bare du+ls':>11} {'first ratio':>11} {'later ratio':>11}  read how (first refresh)")
    for _size, m, ready in rows:
        for name, _ in trees:
            if name not in m:
                continue            # a baseline measured at other sizes only (--baseline-at)
            t = m[name]
            b = m["bare"]
            vs = (f"{b:>10.2f}s {b / t['cold']:>10.1f}x {b / t['warm']:>10.1f}x" if b is not None
                  else f"{'-':>11} {'-':>11} {'-':>11}")
            print(f"{name:>8} {t['images']:>7} {m['live']:>6} {t['cold']:>13.2f}s {1000 * t['cold'] / t['images']:>8.2f}ms "
                  f"{t['warm']:>7.2f}s {t['rss']:>7.0f}MB {vs}  {t['methods']}")
        if ready:
            print(f"{'':>8} native exporter at {m['this']['images']} images: /readyz {ready[0]:.1f}s, "
                  f"every byte series {ready[1]:.1f}s, peak RSS {ready[2]:.0f}MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--goldens", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="children of this tree per size (first-refresh median)")
    ap.add_argument("--bare-repeat", default="", help="bare du + ls runs per size, e.g. 3,1 (default --repeat each): "
                                                       "at 5,000 images one takes minutes")
    ap.add_argument("--layout", choices=("driver", "replay"), default="driver")
    ap.add_argument("--baseline", type=Path, help="an older tree (holding exporter/) measured beside this one")
    ap.add_argument("--baseline-at", default="", help="sizes at which to measure the baseline (default: every size; "
                                                       "its refreshes of 10,000 images take many minutes)")
    ap.add_argument("--readyz-at", default="", help="sizes at which to time the exporter process to /readyz")
    ap.add_argument("--keep", action="store_true", help="leave the pool in place at the end (its name is printed)")
    ap.add_argument("--reuse", metavar="POOL", help="measure a pool an earlier --keep run left, as it is (no growing)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--tree", type=Path, default=ROOT, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        sys.path.insert(0, str(a.tree.resolve()))
        child(a.child, a.repeat)
        return
    trees = [("this", ROOT)] + ([("baseline", a.baseline.resolve())] if a.baseline else [])
    ready_at = {int(s) for s in a.readyz_at.split(",") if s}
    baseline_at = {int(s) for s in a.baseline_at.split(",") if s}
    rows = []
    sizes = [int(s) for s in a.sizes.split(",")]
    bare_repeats = [int(r) for r in a.bare_repeat.split(",")] if a.bare_repeat else [a.repeat] * len(sizes)
    if a.reuse:
        pool, layout = a.reuse, None
        sizes = sizes[-1:]                  # one measurement of the pool as it stands
        bare_repeats = bare_repeats[-1:]
    else:
        pool = f"bench-{uuid.uuid4().hex[:6]}"
        sh("ceph", "osd", "set-require-min-compat-client", "mimic")
        sh("ceph", "osd", "pool", "create", pool, "32", "32")
        sh("rbd", "pool", "init", pool)
        layout = Layout(pool, a.goldens, a.layout == "driver")
    try:
        for size, bare_repeat in zip(sizes, bare_repeats, strict=True):
            if layout is not None:
                t = time.perf_counter()
                layout.grow(size)
                print(f"grew {pool} to ~{size} images in {time.perf_counter() - t:.0f}s", file=sys.stderr)
            here = [t for t in trees if t[0] == "this" or not baseline_at or size in baseline_at]
            m = measure(pool, a, here, bare_repeat)
            rows.append((size, m, readyz(pool, m["this"]["images"]) if size in ready_at else None))
            report(rows[-1:], trees)
    finally:
        if layout is not None:
            layout.close()
        if a.keep or a.reuse:
            print(f"kept pool {pool}: measure it again with --reuse {pool}", file=sys.stderr)
        else:
            subprocess.run(["ceph", "osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it"], capture_output=True)
    print(f"\n{pool} ({a.layout} layout), all sizes:")
    report(rows, trees)


if __name__ == "__main__":
    if not os.environ.get("CEPH_CONF"):
        sys.exit("set CEPH_CONF to a cluster's ceph.conf (scripts/ceph-cluster.sh up DIR prints one)")
    main()
