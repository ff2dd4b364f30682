"""Cost under churn: 10,000 clone PVCs in the Kubernetes emulator while PVCs and DataVolumes change
20 times a second, measured through the exporter process.

    .venv/bin/python bench/bench_churn.py [--pvcs 10000] [--rate 20] [--seconds 120] [--baseline DIR]

Half the updates resize a clone PVC (its provisioned bytes change), half flip a DataVolume between
Succeeded and in flight (its status series come and go): what CDI and a busy fleet do. Prints, for a
quiet spell and for the churn: the exporter's CPU (its own user+system seconds over wall seconds),
the /metrics latency of a gzip scrape every second (what Prometheus asks for), and the
event-to-metric latency: every 2 s a probe PVC (namespace "aaa", so its line is at the top of the
body) gets a new StorageClass name through the API, and /metrics is polled every 25 ms until the
new value is served. --baseline DIR runs the same against the exporter in another source tree
first (e.g. a git worktree of an older commit), so both sets of figures come from one run.
"""

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_inventory import pct, seed  # noqa: E402
from tests.support.kube import KubeAPI  # noqa: E402
from tests.support.objects import clone_annotations, datavolume, pvc  # noqa: E402
from tests.support.process import free_port  # noqa: E402

PVCS, DVS = "v1/persistentvolumeclaims", "cdi.kubevirt.io/v1beta1/datavolumes"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(url: str, gz: bool = True) -> bytes:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gz else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def head_of(body: bytes, limit: int = 1 << 16) -> bytes:
    """The first `limit` bytes of a gzip body, one member or many: the probe's line is near the top."""
    out = b""
    while body and len(out) < limit:
        d = zlib.decompressobj(wbits=31)
        out += d.decompress(body, limit - len(out))
        body = d.unused_data if d.eof else b""
    return out


class Exporter:
    def __init__(self, root: Path, kubeconfig: Path, log: Path, wrap: list[str] | None = None,
                 refresh: float = 3600) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log = open(log, "wb")
        env = {**os.environ, "FAKE_RBD_IMAGES": os.environ["FAKE_RBD_IMAGES"], "PYTHONPATH": str(root)}
        self.proc = subprocess.Popen(
            [sys.executable, *(wrap or []), "-m", "exporter", f"--web.listen-address=127.0.0.1:{self.port}",
             f"--kubeconfig={kubeconfig}", "--rbd.client=cli", f"--rbd.binary={ROOT / 'bench' / 'fake_rbd.py'}",
             f"--rbd.refresh-interval={refresh:g}", "--kubernetes.read-timeout=600", "--log.level=warning"],
            cwd=root, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_measured(self, last: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if last.encode() in gzip.decompress(get(self.url + "/metrics")):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError("the exporter never served every PVC")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def churn_forever(kube: KubeAPI, stop: threading.Event, rate: float, n: int, goldens: int, updates: list[int]) -> None:
    """Until `stop`: at `rate` a second, resize a clone PVC or flip a DataVolume between done and in
    flight, in turn; updates[0] counts them as it goes."""
    i = 0
    updates[:] = [0]
    ann = clone_annotations("csi-clone")
    while not stop.is_set() and rate > 0:
        t = time.perf_counter()
        j = (i // 2) % n
        if i % 2 == 0:
            size = "21Gi" if (i // (2 * n)) % 2 == 0 else "20Gi"
            kube.burst(PVCS, [pvc("vms", f"vm-{j}", "rbd", volume=f"pv-{j}", size=size, owner_dv=f"vm-{j}",
                                  annotations=ann)])
        else:
            flip = "CSICloneInProgress" if (i // (2 * n)) % 2 == 0 else "Succeeded"
            kube.burst(DVS, [datavolume("vms", f"vm-{j}", source={"pvc": {"namespace": "img", "name": f"g{j % goldens}"}},
                                        annotations=ann, phase=flip)])
        i += 1
        updates[0] = i
        stop.wait(max(0.0, 1 / rate - (time.perf_counter() - t)))


def phase(kube: KubeAPI, exp: Exporter, seconds: float, rate: float, n: int, goldens: int) -> dict:
    """Scrape every second, probe every 2 s, and (rate > 0) churn; returns the figures."""
    stop = threading.Event()
    scrapes: list[float] = []
    latencies: list[float] = []
    errors: list[str] = []

    def scraper():
        while not stop.is_set():
            t = time.perf_counter()
            try:
                get(exp.url + "/metrics")
                scrapes.append((time.perf_counter() - t) * 1000)
            except OSError as e:
                errors.append(str(e))
            stop.wait(max(0.0, 1 - (time.perf_counter() - t)))

    def prober():
        k = 0
        while not stop.wait(2.0):
            k += 1
            sc = f"probe-{os.getpid()}-{time.monotonic_ns()}"
            written = time.perf_counter()
            kube.burst(PVCS, [pvc("aaa", "probe", sc)])
            want = f'storageclass="{sc}"'.encode()
            while time.perf_counter() - written < 10:
                t = time.perf_counter()
                if want in head_of(get(exp.url + "/metrics")):
                    latencies.append((t - written) * 1000)
                    break
                time.sleep(0.025)
            else:
                errors.append("probe not seen within 10 s")

    def churner():
        churn_forever(kube, stop, rate, n, goldens, updates)

    updates: list[int] = []
    threads = [threading.Thread(target=f, daemon=True) for f in (scraper, prober, churner)]
    cpu0, t0 = cpu_seconds(exp.proc.pid), time.perf_counter()
    for th in threads:
        th.start()
    time.sleep(seconds)
    stop.set()
    for th in threads:
        th.join(30)
    wall = time.perf_counter() - t0
    return {"cpu": (cpu_seconds(exp.proc.pid) - cpu0) / wall, "scrapes": scrapes, "latencies": latencies,
            "updates": (updates[0] if updates else 0) / wall, "errors": errors}


def seeded(root: Path, a, tmp: Path, wrap: list[str] | None = None, refresh: float = 3600) -> tuple[KubeAPI, Exporter]:
    """The emulator seeded with a.pvcs clones over a.goldens and the probe PVC, and the exporter of
    `root` (run through `wrap`, a script before `-m exporter`, if given) serving every PVC's bytes."""
    os.environ.update(FAKE_RBD_IMAGES=str(a.pvcs), FAKE_RBD_GOLDENS=str(a.goldens))
    kube = KubeAPI()
    seed(kube, a.pvcs, a.goldens)
    kube.burst(PVCS, [pvc("aaa", "probe", "probe-0")])
    exp = Exporter(root, kube.write_kubeconfig(tmp / "kubeconfig"), tmp / f"exporter-{root.name}.log", wrap, refresh)
    try:
        exp.wait_measured(f'clonewatch_pvc_consumed_bytes{{namespace="vms",persistentvolumeclaim="vm-{a.pvcs - 1}"')
    except BaseException:
        exp.stop()
        kube.close()
        raise
    return kube, exp


def workload_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--pvcs", type=int, default=10000)
    ap.add_argument("--goldens", type=int, default=100)
    ap.add_argument("--rate", type=float, default=20, help="PVC/DataVolume updates a second")


def run(root: Path, a, tmp: Path) -> tuple[dict, dict]:
    kube, exp = seeded(root, a, tmp)
    try:
        quiet = phase(kube, exp, a.quiet, 0, a.pvcs, a.goldens)
        churn = phase(kube, exp, a.seconds, a.rate, a.pvcs, a.goldens)
    finally:
        exp.stop()
        kube.close()
    return quiet, churn


def line(label: str, f: dict) -> str:
    s, lat = f["scrapes"], f["latencies"]
    return (f"{label:26} CPU {100 * f['cpu']:5.1f}% of a core | gzip scrape p50 {statistics.median(s):6.1f} ms "
            f"p99 {pct(s, 99):6.1f} ms ({len(s)}) | event->metric p50 {statistics.median(lat):6.0f} ms "
            f"p99 {pct(lat, 99):6.0f} ms ({len(lat)}) | {f['updates']:.1f} updates/s"
            + (f" | {len(f['errors'])} errors: {f['errors'][:2]}" if f["errors"] else ""))


def main() -> None:
    ap = argparse.ArgumentParser()
    workload_args(ap)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--quiet", type=float, default=30)
    ap.add_argument("--baseline", type=Path, help="another source tree to run first, e.g. a worktree of an older commit")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cw-churn-"))
    results = []
    for root in ([a.baseline.resolve()] if a.baseline else []) + [ROOT]:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        results.append((f"{rev or root.name}", run(root, a, tmp)))
    print(f"{a.pvcs} PVCs over {a.goldens} goldens; churn {a.rate:g} PVC/DataVolume updates/s for {a.seconds:g} s "
          f"(quiet spell {a.quiet:g} s); logs in {tmp}")
    for rev, (quiet, churn) in results:
        print(line(f"{rev} quiet", quiet))
        print(line(f"{rev} churn", churn))


if __name__ == "__main__":
    main()
