"""Scrape cost at scale: N clone PVCs over G goldens, measured side by side in one run.

    .venv/bin/python bench/bench_scrape.py [--pvcs 10000] [--goldens 100] [--repeat 15]

Prints medians of: a full rebuild (classify + join + render), a rebuild with one PVC changed,
serving /metrics (the cached body + the small dynamic part, plain and gzip), and the naive
baseline: fresh prometheus_client families for the same samples + generate_latest.
"""

import argparse
import gzip
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from bench.timing import median_seconds
from exporter.backends.base import TargetState, Volume
from exporter.backends.rbd import RbdBackend, RbdSettings
from exporter.collectors.pvc import PvcCollector
from exporter.collectors.source import SourceCollector
from exporter.collectors.storageclass import StorageClassCollector
from exporter.collectors.volume import VolumeCollector
from exporter.kube.store import Store
from exporter.view import build_view
from tests.support.objects import ODF_RBD, clone_annotations, datavolume, pv_rbd, pvc, storageclass, storageprofile

MiB = 2**20


def median_ms(fn, repeat):
    return median_seconds(fn, repeat) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pvcs", type=int, default=10000)
    ap.add_argument("--goldens", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=15)
    a = ap.parse_args()

    store = Store()
    store.replace("storageclasses", None, [storageclass("rbd", ODF_RBD)])
    store.replace("storageprofiles", None, [storageprofile("rbd", "csi-clone")])
    pvs, pvcs, dvs, vols = [], [], [], {}
    for g in range(a.goldens):
        pvs.append(pv_rbd(f"pv-g{g}", "p", f"g{g}", storageclass_name="rbd"))
        pvcs.append(pvc("img", f"g{g}", "rbd", volume=f"pv-g{g}"))
        vols[f"p/g{g}"] = Volume(f"p/g{g}", "p", 20 * 1024 * MiB, 20 * 1024 * MiB)
    ann = clone_annotations("csi-clone")
    for i in range(a.pvcs):
        g = i % a.goldens
        dvs.append(datavolume("vms", f"vm-{i}", source={"pvc": {"namespace": "img", "name": f"g{g}"}}, annotations=ann))
        pvs.append(pv_rbd(f"pv-{i}", "p", f"vm-{i}", storageclass_name="rbd"))
        pvcs.append(pvc("vms", f"vm-{i}", "rbd", volume=f"pv-{i}", owner_dv=f"vm-{i}", annotations=ann))
        vols[f"p/vm-{i}"] = Volume(f"p/vm-{i}", "p", (i % 50) * 4 * MiB, 20 * 1024 * MiB, f"p/g{g}", "base")
    store.replace("persistentvolumes", None, pvs)
    store.replace("persistentvolumeclaims", None, pvcs)
    store.replace("datavolumes", None, dvs)
    backend = RbdBackend(RbdSettings())
    st = TargetState("p")
    st.succeeded(vols, 1.0)
    backend._states = {"p": st}
    states = {"rbd": backend._states}
    collectors = [PvcCollector(), SourceCollector(), StorageClassCollector(), VolumeCollector()]

    def rebuild():
        view = build_view(store.objects, [backend], True, states)
        return "".join(c.text(view) for c in collectors).encode()

    t = time.perf_counter()
    body = rebuild()
    first_ms = (time.perf_counter() - t) * 1000
    samples = [(f.name, f.type, f.documentation, [(s.name, s.labels, s.value) for s in f.samples])
               for f in text_string_to_metric_families(body.decode())]
    n_samples = sum(len(x[3]) for x in samples)
    unchanged_ms = median_ms(rebuild, 5)
    changed = pvcs[a.goldens]      # the first clone
    changed["metadata"]["annotations"] = clone_annotations("copy", "NoVolumeSnapshotClass")
    store.apply("persistentvolumeclaims", [("MODIFIED", changed)])
    rebuild()
    rendered = collectors[0].cache.rendered
    def rebuild_one_changed():
        changed["metadata"]["annotations"]["cdi.kubevirt.io/cloneFallbackReason"] += "x"
        store.apply("persistentvolumeclaims", [("MODIFIED", changed)])
        rebuild()
    one_changed_ms = median_ms(rebuild_one_changed, 5)

    serve_ms = median_ms(lambda: body + b"", a.repeat)
    gz = gzip.compress(body, 6)
    serve_gz_ms = median_ms(lambda: gz + gzip.compress(b"# small dynamic part\n" * 40, 6), a.repeat)

    class Naive:
        def collect(self):
            for name, _typ, doc, ss in samples:
                fam = GaugeMetricFamily(name, doc, labels=list(ss[0][1]) if ss else [])
                for _, labels, value in ss:
                    fam.add_metric(list(labels.values()), value)
                yield fam
    reg = CollectorRegistry()
    reg.register(Naive())
    naive_ms = median_ms(lambda: generate_latest(reg), max(3, a.repeat // 3))
    gz_full_ms = median_ms(lambda: gzip.compress(body, 6), 5)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pvcs={a.pvcs} goldens={a.goldens} samples={n_samples} body={len(body)/1e6:.1f} MB gzip={len(gz)/1e6:.2f} MB")
    print(f"rebuild, first (all rows rendered):      {first_ms:8.1f} ms")
    print(f"rebuild, nothing changed (median):        {unchanged_ms:8.1f} ms")
    print(f"rebuild, one PVC changed (median):        {one_changed_ms:8.1f} ms  (rows re-rendered: {rendered})")
    print(f"serve cached body (median):               {serve_ms:8.2f} ms")
    print(f"serve cached gzip body (median):          {serve_gz_ms:8.2f} ms  (gzip of the body once per change: {gz_full_ms:.0f} ms)")
    print(f"naive: fresh families + generate_latest:  {naive_ms:8.1f} ms  -> ratio naive/served {naive_ms / max(serve_ms, 1e-3):.0f}x")
    print(f"max RSS of this process:                  {rss_mb:8.0f} MB")


if __name__ == "__main__":
    main()
