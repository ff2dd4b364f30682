"""Where the memory of a 10,000-PVC inventory goes, by part (tracemalloc, in-process).

    .venv/bin/python bench/bench_memory.py [--pvcs 10000] [--goldens 100]

Builds the watch cache the way the store keeps it (slimmed and packed objects), then a fresh Inventory fed
everything, then the collectors' text; prints what each step added, and the inventory's own parts
(records, rows, the two dependency indexes, volumes) measured by building each on its own.
"""

import argparse
import copy
import gc
import itertools
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.backends.base import TargetState, Volume
from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.collectors.registry import text_collectors
from exporter.inventory.pipeline import Inventory, everything
from exporter.kube.store import Store
from tests.support.objects import ODF_RBD, clone_annotations, datavolume, pv_rbd, pvc, storageclass, storageprofile

MiB = 2**20


def used() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pvcs", type=int, default=10000)
    ap.add_argument("--goldens", type=int, default=100)
    ap.add_argument("--churn", type=int, default=2000, help="updates for the gc.freeze() check")
    a = ap.parse_args()
    tracemalloc.start()
    base = used()
    store = Store()
    store.replace("storageclasses", None, [storageclass("rbd", ODF_RBD)])
    store.replace("storageprofiles", None, [storageprofile("rbd", "csi-clone")])
    ann = clone_annotations("csi-clone")
    pvs, pvcs, dvs = [], [], []
    for g in range(a.goldens):
        pvs.append(pv_rbd(f"pv-g{g}", "p", f"g{g}", storageclass_name="rbd"))
        pvcs.append(pvc("img", f"g{g}", "rbd", volume=f"pv-g{g}"))
    for i in range(a.pvcs):
        dvs.append(datavolume("vms", f"vm-{i}", source={"pvc": {"namespace": "img", "name": f"g{i % a.goldens}"}},
                              annotations=ann))
        pvs.append(pv_rbd(f"pv-{i}", "p", f"vm-{i}", storageclass_name="rbd"))
        pvcs.append(pvc("vms", f"vm-{i}", "rbd", volume=f"pv-{i}", owner_dv=f"vm-{i}", annotations=ann))
    for name, items in (("persistentvolumes", pvs), ("persistentvolumeclaims", pvcs), ("datavolumes", dvs)):
        store.replace(name, None, items)
    del pvs, pvcs, dvs, items     # the loop variable holds the last list too
    after_store = used()
    vols = {f"p/g{g}": Volume(f"p/g{g}", "p", 20 << 30, 20 << 30) for g in range(a.goldens)}
    vols.update({f"p/vm-{i}": Volume(f"p/vm-{i}", "p", (i % 50) * 4 * MiB, 20 << 30, f"p/g{i % a.goldens}", "base")
                 for i in range(a.pvcs)})
    st = TargetState("p")
    st.succeeded(vols, 1.0)
    states = {"rbd": {"p": copy.copy(st)}}
    after_volumes = used()
    backend = RbdBackend(RbdSettings())
    inv = Inventory([backend], True)
    dirty = inv.update(everything(store.objects), states)
    after_inventory = used()
    cs = text_collectors(None)
    for c in cs:
        c.update(inv, dirty)
    parts = [p for c in cs for p in c.parts()]
    after_text = used()
    parts_bytes = sum(len(p) + len(g) for p, g in parts)

    # The inventory's parts, each measured alone by dropping it from a second copy.
    def weigh(stage: str, attr: str) -> int:
        before = used()
        setattr(getattr(inv, stage), attr, None)
        return before - used()
    parts_of = {}
    for stage, attr in (("records", "deps"), ("pvc_rows", "deps"), ("records", "records"), ("pvc_rows", "pvcs"),
                        ("pvc_rows", "_family_of"), ("pvc_rows", "members"), ("family_rows", "plan_deps"),
                        ("family_rows", "_serving_deps"), ("family_rows", "rows"), ("graph", "rows"),
                        ("graph", "logical"), ("graph", "depth"), ("graph", "_children"), ("claims", "owner"),
                        ("claims", "_claims")):
        parts_of[f"{stage}.{attr}"] = weigh(stage, attr)
    mb = 1e6
    print(f"{a.pvcs} PVCs over {a.goldens} goldens (tracemalloc, MB):")
    print(f"  watch cache (packed PVCs, PVs, DataVolumes):    {(after_store - base) / mb:7.1f}")
    print(f"  backend volumes (one refresh):                  {(after_volumes - after_store) / mb:7.1f}")
    print(f"  inventory (derived, indexes):                   {(after_inventory - after_volumes) / mb:7.1f}")
    print(f"  collectors' text + gzip members:                {(after_text - after_inventory) / mb:7.1f}  "
          f"(the bytes themselves: {parts_bytes / mb:.1f})")
    print("  inventory parts:")
    for attr, size in sorted(parts_of.items(), key=lambda kv: -kv[1]):
        print(f"    {attr:26} {size / mb:7.1f}")
    inv = cs = parts = dirty = None     # that inventory holds every object the store will replace
    stranded(store, backend, states, a.churn)


def stranded(store: Store, backend: RbdBackend, states: dict, n: int) -> None:
    """Does gc.freeze() after every rebuild (what the exporter does) strand garbage? Run 3 x n PVC
    updates through store -> inventory -> collectors with a freeze after each; print the traced
    memory after each n (the first n replace objects allocated before tracing began, so they read
    as growth: warm-up), then unfreeze and count what a full collection finds unreachable."""
    tracemalloc.stop()
    inv = Inventory([backend], True)
    cs = text_collectors(None)
    dirty = inv.update(everything(store.objects), states)
    for c in cs:
        c.update(inv, dirty)
    store.take_changes()
    gc.collect()
    gc.freeze()
    pvcs = store.objects["persistentvolumeclaims"]
    keys = [k for k in pvcs if k[0] == "vms"][:500]      # all replaced in the warm-up: later ones are traced
    tracemalloc.start()
    marks = []
    for i in range(3 * n + 1):
        if i % n == 0:
            marks.append(tracemalloc.get_traced_memory()[0])
        key = keys[i % len(keys)]
        obj = copy.deepcopy(pvcs[key])
        obj["metadata"]["annotations"]["cdi.kubevirt.io/cloneFallbackReason"] = f"r{i}"
        store.apply("persistentvolumeclaims", [("MODIFIED", obj)])
        dirty = inv.update(store.take_changes(), states)
        for c in cs:
            c.update(inv, dirty)
        for c in cs:
            c.parts()
        gc.freeze()
    gc.unfreeze()
    found = gc.collect()
    steps = ", ".join(f"{(b - a) / 1e3:+.1f} kB" for a, b in itertools.pairwise(marks))
    print(f"gc.freeze() after each update: traced memory per {n} updates {steps} (the first is warm-up); "
          f"unfrozen, a full collection found {found} unreachable objects")


if __name__ == "__main__":
    main()
