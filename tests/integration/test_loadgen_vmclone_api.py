"""loadgen's vmclone method against kmock over real HTTP, where the cluster's KubeVirt is older (clones
served as clone.kubevirt.io/v1alpha1 only, before KubeVirt 1.5) or absent; no storage is involved: the
clone never gets as far as a VM. The whole sequence on Ceph is tests/e2e/test_loadgen_vmclone.py."""

import threading
import uuid

import pytest

from loadgen.cloners.base import CloneFailed
from loadgen.cloners.kube import KubeCloner
from loadgen.scenario import parse
from tests.support.kube import KubeAPI
from tests.support.kubevirt import failed_status

REASON = "Clone of source with backendstorage is not supported: VM lg/tpm"


def scenario(kube, tmp_path):
    return parse({
        "name": "kv", "backend": "kubernetes", "golden": {"size": "64MiB"},
        "kubernetes": {"namespace": "lg", "golden": {"namespace": "img", "name": "gold"},
                       "source_vm": {"name": "tpm"}, "exporter_url": "http://127.0.0.1:1/metrics",
                       "kubeconfig": str(kube.write_kubeconfig(tmp_path / "kubeconfig")), "timeout": "20s",
                       "poll": "0.05s"},
        "groups": [{"name": "vm", "method": "vmclone", "count": 1}]})


def test_an_older_kubevirt_gets_its_v1alpha1_clone_and_the_failure_reason(tmp_path):
    kube = KubeAPI(declare={"clone.kubevirt.io/v1beta1/virtualmachineclones": None,
                            "clone.kubevirt.io/v1alpha1/virtualmachineclones": True})
    seen: list[dict] = []
    stop = threading.Event()

    def kubevirt() -> None:
        """KubeVirt 1.4's clone controller on a source with a persistent TPM: Failed, with the reason."""
        while not stop.is_set() and not seen:
            items = kube.custom.list_namespaced_custom_object("clone.kubevirt.io", "v1alpha1", "lg",
                                                              "virtualmachineclones")["items"]
            for obj in items:
                seen.append(obj)
                kube.custom.patch_namespaced_custom_object(
                    "clone.kubevirt.io", "v1alpha1", "lg", "virtualmachineclones", obj["metadata"]["name"],
                    {"metadata": {"uid": str(uuid.uuid4())}, "status": failed_status(REASON)})
            stop.wait(0.05)

    worker = threading.Thread(target=kubevirt, daemon=True)
    worker.start()
    try:
        cloner = KubeCloner(scenario(kube, tmp_path), "run")
        with pytest.raises(CloneFailed, match=f"cwlg-kv-vm-00001: phase Failed: {REASON}$"):
            cloner.create("cwlg-kv-vm-00001", "vm", "vmclone")
        assert cloner.vms.version() == "v1alpha1"
        assert [o["apiVersion"] for o in seen] == ["clone.kubevirt.io/v1alpha1"]
        assert seen[0]["spec"] == {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "tpm"},
                                   "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine",
                                              "name": "cwlg-kv-vm-00001"}}
        assert seen[0]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "clonewatch-loadgen"
        assert kube.custom.list_namespaced_custom_object("clone.kubevirt.io", "v1alpha1", "lg",
                                                         "virtualmachineclones")["items"] == [], "the failed clone is deleted"
    finally:
        stop.set()
        worker.join(5)
        kube.close()


def test_without_kubevirt_a_vmclone_fails_clearly_and_nothing_is_owned(tmp_path):
    kube = KubeAPI(crds=False)
    try:
        cloner = KubeCloner(scenario(kube, tmp_path), "run")
        with pytest.raises(CloneFailed, match="serves no VirtualMachineClone API"):
            cloner.create("cwlg-kv-vm-00001", "vm", "vmclone")
        assert cloner.owned() == []
    finally:
        kube.close()


def test_what_was_made_again_under_a_name_since_it_was_found_ours_is_left_alone(tmp_path):
    """Cleanup reads an object, proves it ours, then deletes it: each delete names the uid it proved
    (DeleteOptions.preconditions), so an object someone made under that name in between (here: just
    before the delete goes out) is refused by the API server (409) and stays."""
    from loadgen.cloners.kube_objects import clone, our_labels, storage
    kube = KubeAPI()
    try:
        sc = parse({
            "name": "kv", "backend": "kubernetes", "golden": {"size": "64MiB"},
            "kubernetes": {"namespace": "lg", "golden": {"namespace": "img", "name": "gold"},
                           "exporter_url": "http://127.0.0.1:1/metrics",
                           "kubeconfig": str(kube.write_kubeconfig(tmp_path / "kubeconfig")), "timeout": "20s"},
            "groups": [{"name": "pvc", "method": "pvc", "count": 1}]})
        cloner = KubeCloner(sc, "run")
        name = "cwlg-kv-pvc-00001"
        golden = {"spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Block",
                           "resources": {"requests": {"storage": "64Mi"}}}}
        ours_pvc = clone(name, "pvc", sc.kube, our_labels("kv", "run", "pvc", "clone"), storage(golden, sc.kube, ""), 0.0)
        kube.create(ours_pvc)
        theirs = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                  "metadata": {"name": name, "namespace": "lg", "labels": {"app": "theirs"}},
                  "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
        sent = cloner._req

        def racing(method, path, *args, **kwargs):
            if method == "DELETE" and path.endswith(f"/persistentvolumeclaims/{name}"):
                kube.delete("PersistentVolumeClaim", name, "lg")       # ours goes, theirs comes
                kube.create(theirs)
            return sent(method, path, *args, **kwargs)
        cloner._req = racing
        cloner.delete(name)
        left = kube.core.read_namespaced_persistent_volume_claim(name, "lg")
        assert left.metadata.labels == {"app": "theirs"} and kube.emu.preconditions_failed == 1
    finally:
        kube.close()
