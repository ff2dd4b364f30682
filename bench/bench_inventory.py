"""10,000 clone PVCs over 100 goldens (+ PVs and DataVolumes) served by kmock over HTTP, measured
through the exporter process: time to ready, RSS, /metrics latency (plain and gzip) against the
naive baseline (fresh client_python families + generate_latest for the same samples), and the
watch ingest rate of the parsing + store path.

    .venv/bin/python bench/bench_inventory.py [--pvcs 10000] [--goldens 100] [--scrapes 100]

Storage numbers come from bench/fake_rbd.py (same JSON shapes as Ceph), so the body has the
byte series a real pool would give. Prints medians and ratios from one run.
"""

import argparse
import asyncio
import gzip
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from exporter.kube.resources import PVC  # noqa: E402
from exporter.kube.store import Store  # noqa: E402
from exporter.kube.watch import Watcher, WatchSettings  # noqa: E402
from tests.support.kube import KubeAPI  # noqa: E402
from tests.support.objects import ODF_RBD, clone_annotations, datavolume, pv_rbd, pvc, storageclass, storageprofile  # noqa: E402
from tests.support.process import ExporterProcess  # noqa: E402


def seed(kube: KubeAPI, n: int, g: int) -> None:
    async def put():
        o = kube.emu.objects
        sc = storageclass("rbd", ODF_RBD)
        o["storage.k8s.io/v1/storageclasses", None, "rbd"] = sc
        o["cdi.kubevirt.io/v1beta1/storageprofiles", None, "rbd"] = storageprofile("rbd", "csi-clone")
        for i in range(g):
            o["v1/persistentvolumes", None, f"pv-g{i}"] = pv_rbd(f"pv-g{i}", "p", f"g{i}", "20Gi", storageclass_name="rbd")
            o["v1/persistentvolumeclaims", "img", f"g{i}"] = pvc("img", f"g{i}", "rbd", volume=f"pv-g{i}", size="20Gi")
        ann = clone_annotations("csi-clone")
        for i in range(n):
            o["cdi.kubevirt.io/v1beta1/datavolumes", "vms", f"vm-{i}"] = datavolume(
                "vms", f"vm-{i}", source={"pvc": {"namespace": "img", "name": f"g{i % g}"}}, annotations=ann)
            o["v1/persistentvolumes", None, f"pv-{i}"] = pv_rbd(f"pv-{i}", "p", f"vm-{i}", "20Gi",
                                                                 storageclass_name="rbd")
            o["v1/persistentvolumeclaims", "vms", f"vm-{i}"] = pvc("vms", f"vm-{i}", "rbd", volume=f"pv-{i}",
                                                                     size="20Gi", owner_dv=f"vm-{i}", annotations=ann)
    kube._call(put())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_get(url: str, headers: dict) -> tuple[float, bytes]:
    req = urllib.request.Request(url, headers=headers)
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return (time.perf_counter() - t) * 1000, body


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def ingest_rate(n: int) -> float:
    """Events/s through the watch path: parse a 10k-event stream and apply it to the store."""
    lines = [json.dumps({"type": "MODIFIED", "object": pvc("vms", f"vm-{i}", "rbd", volume=f"pv-{i}",
                                                              annotations=clone_annotations("copy"))}).encode()
             for i in range(n)]
    data = b"\n".join(lines) + b"\n"

    class Stream:
        def stream(self, amt, decode_content=True):
            for i in range(0, len(data), 65536):
                yield data[i:i + 65536]

    async def main():
        store = Store()
        w = Watcher(None, PVC, None, store, asyncio.get_running_loop(), WatchSettings(), threading.Event())
        t = time.perf_counter()
        await asyncio.to_thread(w._consume, Stream(), "")
        while len(store.objects[PVC.name]) < n:
            await asyncio.sleep(0.001)
        return n / (time.perf_counter() - t)
    return asyncio.run(main())


def start(kube: KubeAPI, tmp: Path, a: argparse.Namespace, tree: Path, name: str) -> tuple[ExporterProcess, float, float]:
    """An exporter of `tree` (this one, or a --baseline) on the seeded API: (it, seconds to /readyz,
    seconds to every PVC measured in /metrics)."""
    start_t = time.perf_counter()
    exp = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}",
                           "--rbd.client=cli", f"--rbd.binary={ROOT / 'bench' / 'fake_rbd.py'}", "--rbd.refresh-interval=3600",
                           "--kubernetes.read-timeout=600", "--log.level=warning"], tmp / f"{name}.log", python=a.python,
                          cwd=tree)
    exp.wait_ready(timeout=600)
    ready_s = time.perf_counter() - start_t
    # Wait until the body holds every PVC's bytes (the first rebuild after the refresh).
    while b'clonewatch_pvc_consumed_bytes{namespace="vms",persistentvolumeclaim="vm-%d"' % (a.pvcs - 1) \
            not in timed_get(exp.url + "/metrics", {})[1]:
        time.sleep(0.5)
    return exp, ready_s, time.perf_counter() - start_t


def scrapes(exps: list[ExporterProcess], n: int) -> tuple[list[list[float]], list[list[float]], bytes, bytes]:
    """n plain and n gzip scrapes of each exporter, taking turns scrape by scrape."""
    plain: list[list[float]] = [[] for _ in exps]
    gz: list[list[float]] = [[] for _ in exps]
    body = zbody = b""
    for _ in range(n):
        for i, exp in enumerate(exps):
            ms, body = timed_get(exp.url + "/metrics", {})
            plain[i].append(ms)
            ms, zbody = timed_get(exp.url + "/metrics", {"Accept-Encoding": "gzip"})
            gz[i].append(ms)
    return plain, gz, body, zbody


def naive_ms(text: str, repeat: int) -> float:
    """Fresh client_python families + generate_latest for the same samples, median ms."""
    families = [(f.name, f.documentation, [(s.labels, s.value) for s in f.samples])
                for f in text_string_to_metric_families(text)]

    class Naive:
        def collect(self):
            for name, doc, samples in families:
                fam = GaugeMetricFamily(name, doc or "x", labels=list(samples[0][0]) if samples else [])
                for labels, value in samples:
                    fam.add_metric(list(labels.values()), value)
                yield fam
    reg = CollectorRegistry()
    reg.register(Naive())
    naive = []
    for _ in range(repeat):
        t = time.perf_counter()
        generate_latest(reg)
        naive.append((time.perf_counter() - t) * 1000)
    return statistics.median(naive)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pvcs", type=int, default=10000)
    ap.add_argument("--goldens", type=int, default=100)
    ap.add_argument("--scrapes", type=int, default=100)
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter that runs the exporter. The test venv's exporter imports ~20 MB more than "
                         "the image's (kubernetes.dynamic pulls in kubernetes-validate, jsonschema... when they are "
                         "installed); a venv with only `pip install .` measures what the image runs")
    ap.add_argument("--baseline", type=Path, help="an older tree (holding exporter/) whose exporter runs beside this "
                                                  "one on the same API: started one after the other, scraped by turns")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    kube = KubeAPI()
    t = time.perf_counter()
    seed(kube, a.pvcs, a.goldens)
    print(f"seeded {3 * a.pvcs + 2 * a.goldens + 2} objects into kmock in {time.perf_counter() - t:.1f}s")
    import os
    os.environ.update(FAKE_RBD_IMAGES=str(a.pvcs), FAKE_RBD_GOLDENS=str(a.goldens))
    trees = [("this", ROOT)] + ([("baseline", a.baseline.resolve())] if a.baseline else [])
    started = [start(kube, tmp, a, tree, name) for name, tree in trees]
    exps = [exp for exp, _, _ in started]
    rss_ready = [rss_mb(exp.proc.pid) for exp in exps]
    plain, gz, body, zbody = scrapes(exps, a.scrapes)
    text = body.decode()
    assert gzip.decompress(zbody).decode().count("\n") > 0.9 * text.count("\n")
    n_samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    nmed = naive_ms(text, max(5, a.scrapes // 10))
    rss_after = [rss_mb(exp.proc.pid) for exp in exps]
    rate = ingest_rate(a.pvcs)
    for exp in exps:
        exp.stop()
    kube.close()
    print(f"PVCs {a.pvcs}, goldens {a.goldens}: {n_samples} samples, body {len(body) / 1e6:.1f} MB, gzip {len(zbody) / 1e6:.2f} MB")
    for i, (name, _) in enumerate(trees):
        _, ready_s, full_s = started[i]
        p50, p50z = statistics.median(plain[i]), statistics.median(gz[i])
        print(f"[{name}] time to /readyz: {ready_s:.1f}s; to every PVC measured in /metrics: {full_s:.1f}s")
        print(f"[{name}] /metrics plain: p50 {p50:.1f} ms, p99 {pct(plain[i], 99):.1f} ms;  "
              f"gzip: p50 {p50z:.1f} ms, p99 {pct(gz[i], 99):.1f} ms")
        print(f"[{name}] exporter RSS: {rss_ready[i]:.0f} MB when fully measured, {rss_after[i]:.0f} MB after "
              f"{2 * a.scrapes} scrapes")
    p50, p50z = statistics.median(plain[0]), statistics.median(gz[0])
    print(f"naive fresh families + generate_latest, same samples: median {nmed:.0f} ms -> "
          f"{nmed / p50:.0f}x the served plain p50, {nmed / p50z:.0f}x gzip p50")
    print(f"watch ingest (parse + store apply): {rate:,.0f} events/s")


if __name__ == "__main__":
    main()
