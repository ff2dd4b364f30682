from exporter.kube.store import Store, slim
from tests.support.objects import clone_annotations, pv_rbd, pvc


def test_only_changes_to_kept_fields_bump_the_generation():
    s = Store()
    s.replace("persistentvolumeclaims", None, [pvc("vms", "a", "sc")])
    g = s.generation
    same = pvc("vms", "a", "sc")
    same["metadata"]["resourceVersion"] = "999"
    same["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    same["metadata"]["labels"] = {"x": "y"}
    s.apply("persistentvolumeclaims", [("ADDED", same), ("MODIFIED", same)])
    assert s.generation == g, "a replayed or heartbeat-only event is not a change"
    s.replace("persistentvolumeclaims", None, [same])
    assert s.generation == g
    changed = pvc("vms", "a", "sc", annotations=clone_annotations("copy"))
    s.apply("persistentvolumeclaims", [("MODIFIED", changed)])
    assert s.generation == g + 1
    s.apply("persistentvolumeclaims", [("DELETED", changed)])
    assert s.generation == g + 2 and not s.items("persistentvolumeclaims")
    s.apply("persistentvolumeclaims", [("DELETED", changed)])
    assert s.generation == g + 2


def test_slim_keeps_what_classification_reads_and_drops_the_rest():
    obj = pvc("vms", "a", "sc", volume="pv-a", owner_dv="a",
              annotations={"cdi.kubevirt.io/cloneType": "copy", "cdi.kubevirt.io/storage.pod.phase": "Succeeded",
                           "cdi.kubevirt.io/storage.pod.restarts": "0", "unrelated/x": "y"})
    obj["metadata"]["managedFields"] = [{"big": "x" * 1000}]
    obj["status"]["conditions"] = [{"type": "Resizing"}]
    out = slim(obj, "persistentvolumeclaims")
    assert set(out["metadata"]) == {"name", "namespace", "annotations", "ownerReferences"}
    assert out["metadata"]["annotations"] == {"cdi.kubevirt.io/cloneType": "copy"}
    assert out["metadata"]["ownerReferences"] == [{"kind": "DataVolume", "name": "a"}]
    assert out["spec"]["volumeName"] == "pv-a" and "accessModes" not in out["spec"]
    assert out["status"] == {"phase": "Bound", "capacity": {"storage": "64Mi"}}
    # A CDI-only annotation still shows that CDI handled the object.
    only_cdi = pvc("vms", "b", "sc", annotations={"cdi.kubevirt.io/storage.pod.phase": "Running", "a/b": "c"})
    assert list(slim(only_cdi, "persistentvolumeclaims")["metadata"]["annotations"]) == ["cdi.kubevirt.io/storage.pod.phase"]


def test_slim_keeps_of_a_pv_only_what_the_backends_map_it_by():
    from exporter.backends.rbd.backend import RbdBackend, RbdSettings
    obj = pv_rbd("pv-1", "ocs-pool", "csi-vol-1", rados_namespace="ns1")
    obj["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": "vms", "name": "a", "uid": "u"}
    obj["spec"]["csi"]["volumeAttributes"].update({"csi.storage.k8s.io/pvc/name": "a", "mounter": "rbd",
                                                   "csi.storage.k8s.io/pv/name": "pv-1"})
    out = slim(obj, "persistentvolumes")
    assert "claimRef" not in out["spec"]
    assert set(out["spec"]["csi"]) == {"driver", "volumeHandle", "volumeAttributes"}
    assert set(out["spec"]["csi"]["volumeAttributes"]) == {"pool", "imageName", "radosNamespace", "clusterID"}
    backend = RbdBackend(RbdSettings())
    assert backend.map_pv(out) == backend.map_pv(obj) is not None
    odd = pv_rbd("pv-2", "p", "i")
    odd["spec"]["csi"]["volumeAttributes"] = "not a map"
    assert slim(odd, "persistentvolumes")["spec"]["csi"]["volumeAttributes"] == "not a map"
