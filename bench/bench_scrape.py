"""Scrape cost at scale: N clone PVCs over G goldens, measured side by side in one run.

    .venv/bin/python bench/bench_scrape.py [--pvcs 10000] [--goldens 100] [--repeat 15]

Prints medians of: the incremental update the exporter runs (one PVC changed, one backend refresh
with 1% of volumes changed, nothing changed: inventory update, re-render, re-compress and the new
gzip body), next to a full rebuild of the same state (a fresh inventory, every row rendered, the
whole body compressed); serving /metrics (the cached body + the small dynamic part, plain and
gzip); and the naive baseline: fresh prometheus_client families for the same samples +
generate_latest. Where the time of an update goes is printed per stage.
"""

import argparse
import copy
import dataclasses
import gzip
import resource
import statistics
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
from exporter.collectors.duration import DurationCollector
from exporter.collectors.flashcopy import FlashCopyCollector
from exporter.collectors.pvc import PvcCollector
from exporter.collectors.source import SourceCollector
from exporter.collectors.storageclass import StorageClassCollector
from exporter.collectors.volume import VolumeCollector
from exporter.inventory import Inventory, everything
from exporter.kube.store import Store
from tests.support.objects import ODF_RBD, clone_annotations, datavolume, pv_rbd, pvc, storageclass, storageprofile

MiB = 2**20


def collectors():
    return [PvcCollector(), SourceCollector(), StorageClassCollector(), VolumeCollector(), FlashCopyCollector(),
            DurationCollector()]


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

    def states_of(volumes):
        st = TargetState("p")
        st.succeeded(volumes, 1.0)
        return {"rbd": {"p": copy.copy(st)}}
    states = states_of(vols)

    def full():
        inv = Inventory([backend], True)
        cs = collectors()
        dirty = inv.update(everything(store.objects), states)
        for c in cs:
            c.update(inv, dirty)
        parts = [p for c in cs for p in c.parts()]
        return inv, cs, b"".join(p for p, _ in parts), gzip.compress(b"".join(p for p, _ in parts), 6)

    t = time.perf_counter()
    inv, cs, body, _ = full()
    first_ms = (time.perf_counter() - t) * 1000
    samples = [(f.name, f.type, f.documentation, [(s.name, s.labels, s.value) for s in f.samples])
               for f in text_string_to_metric_families(body.decode())]
    n_samples = sum(len(x[3]) for x in samples)
    store.take_changes()
    full_ms = median_ms(full, 5)
    stages = {"inventory": [], "render": [], "gzip body": []}

    def update(changes, st):
        t0 = time.perf_counter()
        dirty = inv.update(changes, st)
        t1 = time.perf_counter()
        for c in cs:
            c.update(inv, dirty)
        parts = [p for c in cs for p in c.parts()]
        t2 = time.perf_counter()
        gz = b"".join(g for _, g in parts)
        t3 = time.perf_counter()
        for name, took in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            stages[name].append(took * 1000)
        return parts, gz

    changed = pvcs[a.goldens]      # the first clone
    counter = [0]

    def one_pvc_changed():
        counter[0] += 1
        changed["metadata"]["annotations"] = clone_annotations("copy", f"NoVolumeSnapshotClass{counter[0]}")
        store.apply("persistentvolumeclaims", [("MODIFIED", changed)])
        update(store.take_changes(), states)
    one_changed_ms = median_ms(one_pvc_changed, a.repeat)
    pvc_stages = {k: statistics.median(v) for k, v in stages.items()}
    for v in stages.values():
        v.clear()

    clones = [vid for vid in vols if "vm-" in vid]

    def refresh_one_percent():
        counter[0] += 1
        fresh = dict(states["rbd"]["p"].volumes)
        for vid in clones[counter[0] % 100::100]:
            fresh[vid] = dataclasses.replace(fresh[vid], consumed_bytes=fresh[vid].consumed_bytes + 4 * MiB)
        states["rbd"]["p"].volumes = fresh
        update({}, states)
    refresh_ms = median_ms(refresh_one_percent, a.repeat)
    refresh_stages = {k: statistics.median(v) for k, v in stages.items()}
    unchanged_ms = median_ms(lambda: update({}, states), a.repeat)
    parts, gz = update({}, states)
    assert gzip.decompress(gz) == b"".join(p for p, _ in parts), "the gzip members are one stream of the body"
    assert b"".join(p for p, _ in parts) == full()[2], "the incremental body equals a full rebuild"
    join_ms = median_ms(lambda: b"".join(p for p, _ in parts), a.repeat)

    serve_ms = median_ms(lambda: body + b"", a.repeat)
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

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pvcs={a.pvcs} goldens={a.goldens} samples={n_samples} body={len(body)/1e6:.1f} MB "
          f"gzip={len(gz)/1e6:.2f} MB in {len(parts)} members (one stream: {len(gzip.compress(body, 6))/1e6:.2f} MB)")
    print(f"first build (fresh inventory, all rendered, gzip): {first_ms:8.1f} ms")
    print(f"full rebuild of the same state (median):      {full_ms:8.1f} ms")
    print(f"update, one PVC changed (median):             {one_changed_ms:8.2f} ms  "
          f"-> full/update {full_ms / one_changed_ms:.0f}x  ({_stages(pvc_stages)})")
    print(f"update, refresh with 1% of volumes changed:   {refresh_ms:8.2f} ms  "
          f"-> full/update {full_ms / refresh_ms:.0f}x  ({_stages(refresh_stages)})")
    print(f"update, nothing changed (median):             {unchanged_ms:8.2f} ms")
    print(f"plain body joined on the first plain scrape:  {join_ms:8.2f} ms")
    print(f"serve cached body (median):                   {serve_ms:8.2f} ms")
    print(f"serve cached gzip body (median):              {serve_gz_ms:8.2f} ms")
    print(f"naive: fresh families + generate_latest:      {naive_ms:8.1f} ms  -> ratio naive/served "
          f"{naive_ms / max(serve_ms, 1e-3):.0f}x")
    print(f"max RSS of this process:                      {rss_mb:8.0f} MB")


def _stages(medians):
    return ", ".join(f"{k} {v:.2f} ms" for k, v in medians.items())


if __name__ == "__main__":
    main()
