"""Hypothesis: malformed objects and backend output never raise anything but a clean error.

The objects have the real shapes with fuzzed values (tests/support/shapes.py), so the parsers get
past their first check; each test also counts how many examples reached a parsed result and fails
when too few did: a fuzz test whose inputs all bounce off the first `if` checks nothing."""

from collections import Counter
from functools import cache

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exporter.backends.base import BackendError
from exporter.backends.flashsystem.backend import FlashSystemBackend, FlashSystemSettings
from exporter.backends.flashsystem.rest import ArrayAccess
from exporter.backends.rbd.backend import CephCluster, RbdBackend, RbdSettings
from exporter.backends.rbd.cli import build_volumes, parse_du, parse_ls
from exporter.backends.vpc.backend import DRIVERS as VPC_TARGETS
from exporter.backends.vpc.backend import VpcBackend
from exporter.inventory.pipeline import build_view
from exporter.kube.objects import get, text
from exporter.kube.quantity import parse_bytes
from exporter.kube.store import Store
from exporter.model.classify import classify_all
from tests.support import shapes
from tests.support.shapes import json_any


def rbd_backend():
    return RbdBackend(RbdSettings(clusters=(CephCluster(name="ceph-b"),)))


def flashsystem_backend():
    return FlashSystemBackend(FlashSystemSettings(arrays=(
        ArrayAccess("fs-a", ("10.0.0.5", "10.0.0.6"), None, None),
        ArrayAccess("fs-b", ("fs-b.example.com:7443",), None, None))))


def backends():
    return [rbd_backend(), flashsystem_backend(), VpcBackend()]


def first_ref(backends):
    """The Inventory's mapper: the first backend that knows the PV."""
    def mapper(pv):
        return next((ref for ref in (b.map_pv(pv) for b in backends) if ref is not None), None)
    return mapper


def named(body, namespace, name):
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    return {**body, "metadata": {**meta, "name": name, "namespace": namespace}}


def share(counts, key, of):
    return counts[key] / max(1, counts[of])


def check_ref(ref, pv):
    """What a mapped PV's reference must say, by backend (all read spec.csi)."""
    csi = pv["spec"]["csi"]
    handle, attrs = csi.get("volumeHandle"), csi.get("volumeAttributes")
    if ref.backend == "rbd":
        image = text(attrs.get("imageName"))
        if not image and attrs.get("staticVolume") == "true":      # a static PV names the image in its handle
            image = handle
        elif not image:                 # ceph-csi 2.x: no imageName, the handle ends in the image's uuid
            assert handle.startswith("0001-") and len(handle) > 36 and handle[-37] == "-", handle
            image = f"csi-vol-{handle[-36:]}"
        assert text(attrs.get("pool")) and image
        assert ref.volume == f"{ref.target}/{image}"
        assert ref.target.startswith("ceph-b:") == (attrs.get("clusterID") == "ceph-b")   # named cluster only
    elif ref.backend == "flashsystem":
        assert ref.target in ("fs-a", "fs-b") and handle.startswith("SVC:")
        uid = ref.volume.removeprefix(f"{ref.target}/")
        assert uid and uid == uid.upper() and handle.upper().endswith(uid)
    else:
        assert ref.backend == "vpc" and (ref.target, ref.volume) == (VPC_TARGETS[csi["driver"]], handle)


MAPPED_BY = {"rbd": "rbd", "rbd-static": "rbd", "flashsystem": "flashsystem", "vpc": "vpc", "other": None}


@pytest.mark.parametrize("kind", sorted(MAPPED_BY))
def test_pv_mappers_map_real_shapes_and_never_raise(kind):
    counts = Counter()
    mappers = backends()

    @given(shapes.pv(shapes.PV_SPECS[kind]))
    def check(pv):
        pv["metadata"] = {"name": "pv"}
        refs = [ref for ref in (b.map_pv(pv) for b in mappers) if ref is not None]
        counts["examples"] += 1
        assert len(refs) <= 1, f"two backends claim one PV: {refs}"      # the drivers are disjoint
        for ref in refs:
            counts[ref.backend] += 1
            check_ref(ref, pv)
            assert next(b for b in mappers if b.name == ref.backend).serves_provisioner(pv["spec"]["csi"]["driver"])
        assert MAPPED_BY[kind] or not refs        # a driver nobody serves: no backend takes the PV

    check()
    if MAPPED_BY[kind]:
        assert share(counts, MAPPED_BY[kind], "examples") > 0.1, counts


def some(resource, least, most):
    """Objects of one kind named from a few names, so that references find what they name."""
    ns = st.just("") if resource in shapes.CLUSTER_SCOPED else shapes.sometimes(st.just(""), st.sampled_from(shapes.NAMESPACES), 8)
    keys = st.lists(st.tuples(ns, st.sampled_from(shapes.NAMES)), min_size=least, max_size=most, unique=True)

    @st.composite
    def objects(draw):
        return [(resource, namespace, name, draw(shapes.OBJECTS[resource])) for namespace, name in draw(keys)]
    return objects()


def cluster_entries():
    sizes = {"persistentvolumeclaims": (1, 4), "persistentvolumes": (2, 4)}
    return st.tuples(*[some(r, *sizes.get(r, (0, 2))) for r in sorted(shapes.OBJECTS)]).map(
        lambda groups: [e for g in groups for e in g])


def test_classification_and_view_never_raise():
    counts = Counter()

    @given(cluster_entries())
    def check(entries):
        store = Store()
        for resource, ns, name, body in entries:
            store.apply(resource, [("ADDED", named(body, ns, name))])
        mappers = backends()
        records = classify_all(store.objects, first_ref(mappers))
        assert set(records) == set(store.objects["persistentvolumeclaims"])
        for key, rec in records.items():
            assert rec.clone_type in ("", "csi-clone", "snapshot", "copy", "unknown")
            assert isinstance(rec.fallback, bool)
            counts["pvcs"] += 1
            counts["clones"] += rec.is_clone
            counts["mapped"] += rec.volume_ref is not None
            counts[rec.clone_type] += 1
            # A PVC's volume is the (cluster-scoped) PV its volumeName names, mapped as that PV maps.
            pv = store.get("persistentvolumes", "", text(get(store.get("persistentvolumeclaims", *key), "spec", "volumeName")))
            assert rec.volume == (pv["metadata"]["name"] if pv else "")
            assert rec.volume_ref == (first_ref(mappers)(pv) if pv else None)
        view = build_view(store.objects, mappers, True, {})
        assert set(view.pvcs) == set(records)
        # Nothing measured: no backend evidence to re-attribute a clone with, so the view keeps each record.
        assert all(view.pvcs[key].record == rec for key, rec in records.items())

    check()
    assert share(counts, "clones", "pvcs") > 0.08, counts
    assert share(counts, "mapped", "pvcs") > 0.08, counts
    assert (counts["csi-clone"] + counts["snapshot"] + counts["copy"]) / max(1, counts["clones"]) > 0.1, counts


def kubevirt_entries():
    """PVCs and their PVs with KubeVirt's objects around them, a few of each kind so that names meet."""
    sizes = {"persistentvolumeclaims": (1, 4), "persistentvolumes": (1, 4), "virtualmachines": (1, 3),
             "virtualmachineclones": (0, 2), "datavolumes": (0, 2), "volumesnapshots": (0, 1)}
    kinds = [*sizes, "virtualmachinesnapshots", "virtualmachinesnapshotcontents", "virtualmachinerestores"]
    return st.tuples(*[some(r, *sizes.get(r, (0, 1))) for r in kinds]).map(lambda groups: [e for g in groups for e in g])


def test_vms_never_raise_and_never_sum_part_of_a_vm():
    counts = Counter()

    @given(kubevirt_entries())
    # Found by this test: a volume named twice (the second time with a source key before its kind) made a
    # disk row overwrite another while the VM still counted both.
    @example([("persistentvolumeclaims", "vms", "vm", {"metadata": {}, "spec": {
                  "storageClassName": "rbd", "resources": {"requests": {"storage": "0"}}, "volumeName": "vm"},
                  "status": {"phase": "Bound"}}),
              ("virtualmachines", "default", "vm", {"metadata": {}, "spec": {"template": {"spec": {"volumes": [
                  {"name": "root", "dataVolume": None}, {"name": "root", "dataVolume": {"name": "vm"}},
                  {"0": None, "name": "root", "dataVolume": {"name": "vm"}}]}}}})])
    # A clone of a VM whose one disk is a PVC with a size: always one whole VM summed and one cloned,
    # whatever the draw (100 random examples can draw neither, and the coverage check below would fail
    # for that alone).
    @example([("persistentvolumeclaims", "vms", "disk", {"metadata": {}, "spec": {
                  "storageClassName": "rbd", "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv-disk"},
                  "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}),
              ("virtualmachines", "vms", "vm", {"metadata": {}, "spec": {"template": {"spec": {"volumes": [
                  {"name": "root", "persistentVolumeClaim": {"claimName": "disk"}}]}}}}),
              ("virtualmachineclones", "vms", "c", {"metadata": {}, "spec": {
                  "source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "golden"},
                  "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "vm"}},
                  "status": {"phase": "Succeeded"}})])
    def check(entries):
        store = Store()
        for resource, ns, name, body in entries:
            store.apply(resource, [("ADDED", named(body, ns, name))])
        view = build_view(store.objects, backends(), True, {})
        disks: dict = {}
        for v in view.vm_volumes:
            disks.setdefault((v.namespace, v.vm), []).append(v)
            assert v.found == (v.kind in ("dataVolume", "persistentVolumeClaim") and (v.namespace, v.claim) in view.pvcs)
        for row in view.vms:
            counts["vms"] += 1
            volumes = [v for v in disks.get((row.namespace, row.name), []) if v.kind in ("dataVolume", "persistentVolumeClaim")]
            claims = {v.claim for v in volumes}
            counts["with a disk"] += any(v.found for v in volumes)
            counts["cloned"] += row.source is not None
            assert row.disks == len(claims)
            if not claims or not all(v.found for v in volumes):
                # Never a partial sum presented as the whole VM.
                assert row.provisioned_bytes is None and row.consumed_bytes is None
                continue
            counts["whole"] += 1
            sizes = [view.pvcs[(row.namespace, c)].record.provisioned_bytes for c in claims]
            assert row.provisioned_bytes == (None if None in sizes else sum(sizes))
        for row in view.vm_clones:
            counts["clones"] += 1
            assert row.progress is None or row.progress.phase

    check()
    assert share(counts, "with a disk", "vms") > 0.03 and counts["whole"] and counts["cloned"], counts
    assert counts["clones"], counts


def test_store_survives_any_watch_event():
    counts = Counter()

    @given(st.sampled_from(["persistentvolumeclaims", "persistentvolumes"]), st.data())
    def check(resource, data):
        events = data.draw(st.lists(st.tuples(st.sampled_from(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR", None]),
                                              shapes.wrong_now_and_then(watched(resource), 8)), max_size=10))
        store = Store()
        bad = store.apply(resource, events)
        kept, expected_bad = {}, 0
        for kind, obj in events:         # what the store must hold: the last word on each key
            meta = get(obj, "metadata")
            if kind not in ("ADDED", "MODIFIED", "DELETED") or not text(get(meta, "name")):
                expected_bad += 1
                continue
            key = (text(meta.get("namespace")), meta["name"])
            if kind == "DELETED":
                kept.pop(key, None)
            else:
                kept[key] = obj
        assert bad == expected_bad
        assert set(store.objects[resource]) == set(kept)
        mappers = backends()
        for (ns, name), obj in store.objects[resource].items():
            assert isinstance(name, str) and name and obj["metadata"]["name"] == name
            counts["kept"] += 1
            if resource == "persistentvolumes":
                # Slimming keeps what the mappers read: a PV maps the same before and after.
                refs = [(b.map_pv(obj), b.map_pv(kept[(ns, name)])) for b in mappers]
                assert all(slim == full for slim, full in refs), refs
                counts["mapped"] += any(slim for slim, _ in refs)
            else:
                for field in ("volumeName", "storageClassName", "dataSource", "dataSourceRef"):
                    assert repr(get(obj, "spec", field)) == repr(get(kept[(ns, name)], "spec", field))

    check()
    assert counts["kept"] > 0 and counts["mapped"] > 0, counts


@cache
def watched(resource):
    """An object as a watch delivers it, its name and namespace fuzzed too."""
    return st.tuples(shapes.OBJECTS[resource], shapes.namespace, shapes.name).map(lambda t: named(*t))


def test_rbd_du_parser_raises_only_backend_error():
    counts = Counter()

    @given(shapes.wrong_now_and_then(shapes.rbd_du, 30))
    def check(doc):
        counts["examples"] += 1
        try:
            out = parse_du(doc)
        except BackendError:
            return
        counts["parsed"] += bool(out)
        for own, prov in out.values():
            assert own >= 0 and prov >= 0
        # An image's own bytes are its head row plus its snapshot rows.
        for name, (own, _prov) in out.items():
            assert own == sum(row["used_size"] for row in doc["images"] if row["name"] == name)

    check()
    assert share(counts, "parsed", "examples") > 0.25, counts


def test_rbd_ls_parser_raises_only_backend_error():
    counts = Counter()

    @given(shapes.rbd_ls)
    def check(doc):
        counts["examples"] += 1
        try:
            parents = parse_ls(doc)
        except BackendError:
            return
        counts["parsed"] += bool(parents)
        counts["parents"] += sum(p is not None for p in parents.values())
        volumes = build_volumes("rbd", {name: (0, 0) for name in parents}, parents)
        for name, parent in parents.items():
            vol = volumes[f"rbd/{name}"]
            assert bool(vol.parent) == (parent is not None)

    check()
    assert share(counts, "parsed", "examples") > 0.15 and counts["parents"] > 0, counts


@given(st.one_of(json_any, st.text(alphabet="0123456789.eEKMGTPikmnu+- ", max_size=12), shapes.quantity))
def test_quantity_parser_never_raises(value):
    out = parse_bytes(value)
    assert out is None or (isinstance(out, int) and out >= 0)


@given(st.integers(0, 2**20), st.sampled_from([("", 1), ("k", 10**3), ("Ki", 2**10), ("M", 10**6), ("Mi", 2**20),
                                                ("G", 10**9), ("Gi", 2**30), ("Ti", 2**40)]))
def test_quantity_parser_reads_whole_quantities(number, suffix):
    assert parse_bytes(f"{number}{suffix[0]}") == number * suffix[1]
