"""The vmclone method's reading of KubeVirt's objects, on objects shaped as KubeVirt writes them
(tests/support/kubevirt.py): when a clone is done or failed and why, a VM's disks, and the marks
that prove a VM and a disk are a clone's work."""

from loadgen.cloners.kube_vm import disk_claims, made_by, restored_by, status_reason, verdict
from tests.support.kubevirt import (
    clone_conditions,
    failed_status,
    pending_status,
    pvc_object,
    virtual_machine,
    vm_clone,
    volume,
)

UID = "6d1f0c39-5b0e-4a8f-9c1b-2f3a4b5c6d7e"


def with_status(status: dict) -> dict:
    return {**vm_clone("lg", "c", "src", "dst", UID), "status": status}


def test_a_clone_is_done_at_succeeded_broken_at_failed_and_says_why_it_waits():
    assert verdict(with_status({"phase": "Succeeded",
                                "conditions": clone_conditions(("False", "Ready"), ("True", "Ready"))})) is True
    assert verdict(with_status(failed_status("Clone of source with backendstorage is not supported: VM lg/x"))) \
        == "phase Failed: Clone of source with backendstorage is not supported: VM lg/x"
    pending = with_status(pending_status("Source doesnt exist: VirtualMachine lg/src"))
    assert verdict(pending) is None and status_reason(pending) == "Source doesnt exist: VirtualMachine lg/src"
    working = with_status({"phase": "RestoreInProgress", "conditions": clone_conditions(
        ("True", "Still processing"), ("False", "Still processing"))})
    assert verdict(working) is None and status_reason(working) == "Still processing"
    assert verdict(vm_clone("lg", "c", "src", "dst")) is None and status_reason({}) == "no reason given"


def test_a_vms_disks_are_its_pvc_and_datavolume_volumes():
    vm = virtual_machine("lg", "dst", [volume("rootdisk", dataVolume={"name": "restore-1-rootdisk"}),
                                       volume("data", persistentVolumeClaim={"claimName": "restore-1-data"}),
                                       volume("boot", containerDisk={"image": "quay.io/containerdisks/fedora:41"}),
                                       volume("cloudinitdisk", cloudInitNoCloud={"userData": "#cloud-config\n"})])
    assert disk_claims(vm) == {"rootdisk": "restore-1-rootdisk", "data": "restore-1-data"}
    assert disk_claims({"kind": "VirtualMachine"}) == {}


def test_only_the_clones_own_restore_proves_a_vm_or_disk_its_work():
    vm = virtual_machine("lg", "dst", [], annotations={
        "restore.kubevirt.io/lastRestoreUID": f"tmp-restore-{UID}-0b6c8f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"})
    assert made_by(vm, UID)
    assert not made_by(vm, UID[:-1]) and not made_by(vm, "") and not made_by(None, UID)
    assert not made_by(virtual_machine("lg", "dst", []), UID), "a VM without the mark is nobody's clone"
    disk = pvc_object("lg", "restore-1-rootdisk", "sc", "pv", {"restore.kubevirt.io/name": f"tmp-restore-{UID}"})
    assert restored_by(disk, UID)
    assert not restored_by(disk, "other") and not restored_by(pvc_object("lg", "x", "sc", "pv"), UID)
    assert not restored_by(pvc_object("lg", "x", "sc", "pv", {"restore.kubevirt.io/name": "tmp-restore-"}), "")
