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
