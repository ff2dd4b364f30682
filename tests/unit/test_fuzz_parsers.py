"""Hypothesis: malformed objects and backend output never raise anything but a clean error."""

from hypothesis import given
from hypothesis import strategies as st

from exporter.backends.base import BackendError
from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.backends.rbd.cli import build_volumes, parse_du, parse_ls
from exporter.inventory.pipeline import build_view
from exporter.kube.quantity import parse_bytes
from exporter.kube.store import Store
from exporter.model.classify import classify_all

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                      st.text(max_size=12))
json_any = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=25)

KEYS = ["metadata", "spec", "status", "name", "namespace", "annotations", "ownerReferences", "kind",
        "dataSource", "dataSourceRef", "source", "sourceRef", "pvc", "snapshot", "volumeName", "storageClassName",
        "csi", "driver", "volumeAttributes", "pool", "imageName", "capacity", "storage", "provisioner",
        "cloneStrategy", "persistentVolumeClaimName", "boundVolumeSnapshotContentName", "snapshotHandle",
        "cdi.kubevirt.io/cloneType", "cdi.kubevirt.io/cloneFallbackReason", "k8s.io/CloneRequest", "phase"]
VALUES = ["PersistentVolumeClaim", "VolumeSnapshot", "VolumeCloneSource", "DataSource", "DataVolume",
          "copy", "csi-clone", "snapshot", "ns/name", "rbd.csi.ceph.com", "rbd", "vms", "golden", "Bound", "1Gi"]
# Objects shaped like Kubernetes objects, with the right keys in the wrong places and wrong types.
k8s_like = st.recursive(
    st.one_of(json_leaf, st.sampled_from(VALUES)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)),
    max_leaves=40)


def named(ns, name):
    return st.builds(lambda body, meta_extra: {**(body if isinstance(body, dict) else {}),
                                               "metadata": {**(meta_extra if isinstance(meta_extra, dict) else {}),
                                                            "name": name, "namespace": ns}},
                     k8s_like, k8s_like)


RESOURCES = ["persistentvolumeclaims", "persistentvolumes", "storageclasses", "datavolumes", "storageprofiles",
             "datasources", "volumeclonesources", "volumesnapshots", "volumesnapshotcontents"]


@given(st.lists(st.tuples(st.sampled_from(RESOURCES), st.sampled_from(["", "vms"]),
                          st.sampled_from(["vm", "golden", "pv", "x"]), k8s_like), max_size=12))
def test_classification_and_view_never_raise(entries):
    store = Store()
    for resource, ns, name, body in entries:
        obj = {**(body if isinstance(body, dict) else {}), "metadata": {
            **(body.get("metadata") if isinstance(body, dict) and isinstance(body.get("metadata"), dict) else {}),
            "name": name, "namespace": ns}}
        store.apply(resource, [("ADDED", obj)])
    backend = RbdBackend(RbdSettings())
    records = classify_all(store.objects, backend.map_pv)
    assert set(records) == set(store.objects["persistentvolumeclaims"])
    for rec in records.values():
        assert rec.clone_type in ("", "csi-clone", "snapshot", "copy", "unknown")
        assert isinstance(rec.fallback, bool)
    view = build_view(store.objects, [backend], True, {})
    assert set(view.pvcs) == set(records)


@given(st.lists(st.tuples(st.sampled_from(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR", None]),
                          json_any), max_size=10))
def test_store_survives_any_watch_event(events):
    store = Store()
    bad = store.apply("persistentvolumeclaims", events)
    assert 0 <= bad <= len(events)
    for (_ns, name), obj in store.objects["persistentvolumeclaims"].items():
        assert isinstance(name, str) and name and obj["metadata"]["name"] == name


@given(json_any)
def test_rbd_du_parser_raises_only_backend_error(doc):
    try:
        out = parse_du(doc)
    except BackendError:
        return
    for own, prov in out.values():
        assert own >= 0 and prov >= 0


@given(json_any)
def test_rbd_ls_parser_raises_only_backend_error(doc):
    try:
        parents = parse_ls(doc)
    except BackendError:
        return
    build_volumes("rbd", {name: (0, 0) for name in parents}, parents)


@given(st.one_of(json_any, st.text(alphabet="0123456789.eEKMGTPikmnu+- ", max_size=12)))
def test_quantity_parser_never_raises(value):
    out = parse_bytes(value)
    assert out is None or (isinstance(out, int) and out >= 0)


@given(st.dictionaries(st.text(max_size=8), k8s_like, max_size=4))
def test_rbd_pv_mapper_never_raises(spec):
    RbdBackend(RbdSettings()).map_pv({"metadata": {"name": "pv"}, "spec": spec})
