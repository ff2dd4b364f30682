"""Scrape cost at scale: N clone PVCs over G goldens, measured side by side in one run.

    .venv/bin/python bench/bench_scrape.py [--pvcs 10000] [--goldens 100] [--repeat 15] [--baseline DIR]

Prints medians of: the incremental update the exporter runs (one PVC changed, one backend refresh
with 1% of volumes changed, nothing changed: inventory update, re-render, re-compress and the new
gzip body), next to a full rebuild of the same state (a fresh inventory, every row rendered, the
whole body compressed); serving /metrics (the cached body + the small dynamic part, plain and
gzip); and the naive baseline: fresh prometheus_client families for the same samples +
generate_latest. Where the time of an update goes is printed per stage.

--baseline DIR (an older tree, e.g. a `git worktree`) loads that tree's exporter package next to
this one, builds the same state in both and times the updates alternately, one of each in turn:
on a machine whose speed drifts for tens of seconds at a time, separate runs disagree by more than
the change being measured, alternating calls do not.
"""

import argparse
import copy
import dataclasses
import gc
import gzip
import importlib
import importlib.util
import resource
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from bench.timing import median_seconds
from tests.support.objects import ODF_RBD, clone_annotations, datavolume, pv_rbd, pvc, storageclass, storageprofile

MiB = 2**20
COLLECTORS = ("pvc.PvcCollector", "source.SourceCollector", "storageclass.StorageClassCollector",
              "volume.VolumeCollector", "flashcopy.FlashCopyCollector", "duration.DurationCollector")


def exporter_package(root: Path | None) -> SimpleNamespace:
    """What the benchmark uses of the exporter package: this tree's, or the one under root/exporter
    imported as `baseline_exporter` (its imports are relative, so it stays apart from this one)."""
    name = "exporter"
    if root is not None:
        name = "baseline_exporter"
        spec = importlib.util.spec_from_file_location(name, root / "exporter" / "__init__.py",
                                                      submodule_search_locations=[str(root / "exporter")])
        assert spec is not None and spec.loader is not None
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)

    def part(path: str):
        module, _, attr = path.rpartition(".")
        return getattr(importlib.import_module(f"{name}.{module}"), attr)
    return SimpleNamespace(
        TargetState=part("backends.base.TargetState"), Volume=part("backends.base.Volume"),
        RbdBackend=part("backends.rbd.backend.RbdBackend"), RbdSettings=part("backends.rbd.backend.RbdSettings"),
        Inventory=part("inventory.Inventory"), everything=part("inventory.everything"), Store=part("kube.store.Store"),
        collectors=lambda: [part(f"collectors.{c}")() for c in COLLECTORS])


def median_ms(fn, repeat):
    return median_seconds(fn, repeat) * 1000


class Fleet:
    """pvcs clones over goldens in one exporter package's store, inventory and collectors."""

    def __init__(self, pkg: SimpleNamespace, pvcs: int, goldens: int) -> None:
        self.pkg = pkg
        store = self.store = pkg.Store()
        store.replace("storageclasses", None, [storageclass("rbd", ODF_RBD)])
        store.replace("storageprofiles", None, [storageprofile("rbd", "csi-clone")])
        pv_list, pvc_list, dvs, vols = [], [], [], {}
        for g in range(goldens):
            pv_list.append(pv_rbd(f"pv-g{g}", "p", f"g{g}", storageclass_name="rbd"))
            pvc_list.append(pvc("img", f"g{g}", "rbd", volume=f"pv-g{g}"))
            vols[f"p/g{g}"] = pkg.Volume(f"p/g{g}", "p", 20 * 1024 * MiB, 20 * 1024 * MiB)
        ann = clone_annotations("csi-clone")
        for i in range(pvcs):
            g = i % goldens
            dvs.append(datavolume("vms", f"vm-{i}", source={"pvc": {"namespace": "img", "name": f"g{g}"}}, annotations=ann))
            pv_list.append(pv_rbd(f"pv-{i}", "p", f"vm-{i}", storageclass_name="rbd"))
            pvc_list.append(pvc("vms", f"vm-{i}", "rbd", volume=f"pv-{i}", owner_dv=f"vm-{i}", annotations=ann))
            vols[f"p/vm-{i}"] = pkg.Volume(f"p/vm-{i}", "p", (i % 50) * 4 * MiB, 20 * 1024 * MiB, f"p/g{g}", "base")
        store.replace("persistentvolumes", None, pv_list)
        store.replace("persistentvolumeclaims", None, pvc_list)
        store.replace("datavolumes", None, dvs)
        self.backend = pkg.RbdBackend(pkg.RbdSettings())
        st = pkg.TargetState("p")
        st.succeeded(vols, 1.0)
        self.states = {"rbd": {"p": copy.copy(st)}}
        self.changed = pvc_list[goldens]          # the first clone
        self.clones = [vid for vid in vols if "vm-" in vid]
        self.counter = 0
        self.stages: dict[str, list[float]] = {"inventory": [], "render": [], "gzip body": []}
        t = time.perf_counter()
        self.inv, self.cs, self.body, _ = self.full()
        self.first_ms = (time.perf_counter() - t) * 1000
        store.take_changes()
        gc.freeze()

    def full(self):
        inv = self.pkg.Inventory([self.backend], True)
        cs = self.pkg.collectors()
        dirty = inv.update(self.pkg.everything(self.store.objects), self.states)
        for c in cs:
            c.update(inv, dirty)
        parts = [p for c in cs for p in c.parts()]
        return inv, cs, b"".join(p for p, _ in parts), gzip.compress(b"".join(p for p, _ in parts), 6)

    def update(self, changes):
        t0 = time.perf_counter()
        dirty = self.inv.update(changes, self.states)
        t1 = time.perf_counter()
        for c in self.cs:
            c.update(self.inv, dirty)
        parts = [p for c in self.cs for p in c.parts()]
        t2 = time.perf_counter()
        gz = b"".join(g for _, g in parts)
        t3 = time.perf_counter()
        for name, took in zip(self.stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            self.stages[name].append(took * 1000)
        gc.freeze()            # as the exporter does after each update: full collections skip what it keeps
        return parts, gz

    def one_pvc_changed(self):
        self.counter += 1
        self.changed["metadata"]["annotations"] = clone_annotations("copy", f"NoVolumeSnapshotClass{self.counter}")
        self.store.apply("persistentvolumeclaims", [("MODIFIED", self.changed)])
        self.update(self.store.take_changes())

    def refresh_one_percent(self):
        self.counter += 1
        fresh = dict(self.states["rbd"]["p"].volumes)
        for vid in self.clones[self.counter % 100::100]:
            fresh[vid] = dataclasses.replace(fresh[vid], consumed_bytes=fresh[vid].consumed_bytes + 4 * MiB)
        self.states["rbd"]["p"].volumes = fresh
        self.update({})

    def stage_medians(self) -> str:
        out = ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in self.stages.items())
        for v in self.stages.values():
            v.clear()
        return out


def alternately(fleets: list[Fleet], op: str, repeat: int) -> list[float]:
    """Median ms of `repeat` calls of op on each fleet, the fleets taking turns call by call."""
    times: list[list[float]] = [[] for _ in fleets]
    for _ in range(repeat):
        for fleet, out in zip(fleets, times, strict=True):
            t = time.perf_counter()
            getattr(fleet, op)()
            out.append((time.perf_counter() - t) * 1000)
    return [statistics.median(t) for t in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pvcs", type=int, default=10000)
    ap.add_argument("--goldens", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--baseline", type=Path, help="an older tree whose exporter package is timed alternately with this one")
    a = ap.parse_args()

    fleet = Fleet(exporter_package(None), a.pvcs, a.goldens)
    base = Fleet(exporter_package(a.baseline), a.pvcs, a.goldens) if a.baseline else None
    body, first_ms = fleet.body, fleet.first_ms
    samples = [(f.name, f.type, f.documentation, [(s.name, s.labels, s.value) for s in f.samples])
               for f in text_string_to_metric_families(body.decode())]
    n_samples = sum(len(x[3]) for x in samples)
    full = fleet.full
    full_ms = median_ms(full, 5)
    fleets = [fleet] + ([base] if base else [])
    one_changed = alternately(fleets, "one_pvc_changed", a.repeat)
    pvc_stages = [f.stage_medians() for f in fleets]
    refresh = alternately(fleets, "refresh_one_percent", a.repeat)
    refresh_stages = [f.stage_medians() for f in fleets]
    unchanged_ms = median_ms(lambda: fleet.update({}), a.repeat)
    parts, gz = fleet.update({})
    assert gzip.decompress(gz) == b"".join(p for p, _ in parts), "the gzip members are one stream of the body"
    assert b"".join(p for p, _ in parts) == full()[2], "the incremental body equals a full rebuild"
    if base:
        assert b"".join(p for p, _ in base.update({})[0]) == b"".join(p for p, _ in parts), "both trees render the same body"
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
    print(f"first build (fresh inventory, all rendered, gzip): {first_ms:8.1f} ms"
          + (f"  (baseline {base.first_ms:.1f} ms)" if base else ""))
    print(f"full rebuild of the same state (median):      {full_ms:8.1f} ms")
    print(f"update, one PVC changed (median):             {one_changed[0]:8.2f} ms  "
          f"-> full/update {full_ms / one_changed[0]:.0f}x  ({pvc_stages[0]})")
    if base:
        print(f"  baseline, alternating call by call:         {one_changed[1]:8.2f} ms  ({pvc_stages[1]}); "
              f"baseline/this {one_changed[1] / one_changed[0]:.2f}x")
    print(f"update, refresh with 1% of volumes changed:   {refresh[0]:8.2f} ms  "
          f"-> full/update {full_ms / refresh[0]:.0f}x  ({refresh_stages[0]})")
    if base:
        print(f"  baseline, alternating call by call:         {refresh[1]:8.2f} ms  ({refresh_stages[1]}); "
              f"baseline/this {refresh[1] / refresh[0]:.2f}x")
    print(f"update, nothing changed (median):             {unchanged_ms:8.2f} ms")
    print(f"plain body joined on the first plain scrape:  {join_ms:8.2f} ms")
    print(f"serve cached body (median):                   {serve_ms:8.2f} ms")
    print(f"serve cached gzip body (median):              {serve_gz_ms:8.2f} ms")
    print(f"naive: fresh families + generate_latest:      {naive_ms:8.1f} ms  -> ratio naive/served "
          f"{naive_ms / max(serve_ms, 1e-3):.0f}x")
    print(f"max RSS of this process:                      {rss_mb:8.0f} MB")


if __name__ == "__main__":
    main()
