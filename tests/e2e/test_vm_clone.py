"""A VM cloned by KubeVirt's VirtualMachineClone, end to end: real Ceph with ceph-csi's own sequences
(CreateSnapshot with its layering,deep-flatten snapshot image, CreateVolume from it, DeleteSnapshot into
the trash), the Kubernetes objects as KubeVirt, CDI and the snapshotter write them, in their order
(tests/support/kubevirt.py), and the exporter as a process watching each step.

  os-images/rhel9      golden, 16 MiB
  vms/src              VM: rootdisk (DataVolume template, CDI csi-clone of rhel9, 4 MiB drift),
                       data (a blank PVC, 8 MiB), cloud-init
  vms/dst              made by VirtualMachineClone clone-src: the restore of src's snapshot, rootdisk with
                       4 MiB written since; every VolumeSnapshot, the snapshot and the restore deleted after
  bad input            a VM whose disk PVC is not there yet, a VM booting a containerDisk, a clone of a
                       VM in another namespace (KubeVirt leaves it pending, saying the source does not exist)
"""

import pytest

from tests.e2e import scenario
from tests.support.cephcsi import CephCsi
from tests.support.kubevirt import (
    ApiWorld,
    CloneController,
    golden,
    pending_status,
    virtual_machine,
    vm_clone,
    vm_from_golden,
    volume,
)
from tests.support.objects import ODF_RBD, storageclass, storageprofile
from tests.support.process import ExporterProcess, one, pick

MiB = 2**20
SC = scenario.RBD_SC
RHEL9 = {"pvc": {"namespace": "os-images", "name": "rhel9"}}
cluster_state: dict = {}        # what the first test made, for the last


@pytest.fixture(scope="module")
def cluster(kube, pool, tmp_path_factory):
    csi = CephCsi(pool)
    world = ApiWorld(kube)
    world.create(storageclass(SC, ODF_RBD))
    world.create(storageprofile(SC, "csi-clone"))
    image = golden(world, csi, pool.name, SC)
    vm, disks = vm_from_golden(world, csi, pool.name, SC, "vms", "src", image, 4, 8)
    world.create(virtual_machine("vms", "early", [volume("rootdisk", dataVolume={"name": "early-rootdisk"})]))
    world.create(virtual_machine("vms", "ephemeral", [
        volume("rootdisk", containerDisk={"image": "quay.io/containerdisks/fedora:41"})]))
    world.create(vm_clone("team-b", "cross", "src", "copy-of-src"))
    world.patch("VirtualMachineClone", "team-b", "cross", {"status": pending_status(
        "Source doesnt exist: VirtualMachine team-b/src")})
    tmp = tmp_path_factory.mktemp("vmclone")
    proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}", f"--ceph.conf={pool.conf}",
                            "--rbd.refresh-interval=1", "--kubernetes.read-timeout=5"], tmp / "exporter.log")
    proc.wait_ready()
    proc.wait_for(lambda s: pick(s, "clonewatch_vm_consumed_bytes", virtualmachine="src"), what="src measured")
    yield proc, csi, world, vm, disks
    proc.stop()


def du(pool) -> dict[str, int]:
    """Own bytes per image as `rbd du` counts them (head and snapshot rows): the storage's word."""
    out: dict[str, int] = {}
    for row in pool.du()["images"]:
        out[row["name"]] = out.get(row["name"], 0) + row["used_size"]
    return out


def disks_of(s, vm: str) -> dict[str, str]:
    return {dict(ls)["volume_name"]: dict(ls)["persistentvolumeclaim"] for (n, ls), _ in s.items()
            if n == "clonewatch_pvc_virtualmachine_info" and dict(ls)["virtualmachine"] == vm}


def check_vm_bytes(s, pool, vm: str, images: dict[str, str]) -> None:
    """The VM's bytes are its disks' together, and each disk's are its image's as the storage counts them."""
    truth = du(pool)
    disks = disks_of(s, vm)
    assert set(disks) == set(images), (disks, images)
    for volume_name, claim in disks.items():
        assert one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim=claim) == truth[images[volume_name]]
    assert one(s, "clonewatch_vm_consumed_bytes", virtualmachine=vm) == sum(truth[i] for i in images.values())
    assert one(s, "clonewatch_vm_provisioned_bytes", virtualmachine=vm) == len(images) * 64 * MiB


def test_a_vm_clone_from_request_to_cleanup(cluster, pool, kube):
    proc, csi, world, vm, disks = cluster
    s = proc.samples()
    check_vm_bytes(s, pool, "src", {d.volume: d.image for d in disks})
    assert one(s, "clonewatch_vm_clone_info", virtualmachine="src", source_kind="PersistentVolumeClaim",
               source_namespace="os-images", source_name="rhel9", clone_type="csi-clone") == 1

    ctl = CloneController(world, csi, pool.name, SC)
    clone = ctl.requested("vms", "clone-src", "src", "dst")
    ctl.snapshot(clone, vm, disks)
    proc.wait_for(lambda s: pick(s, "clonewatch_vm_clone_status_info", virtualmachineclone="clone-src",
                                 phase="SnapshotInProgress"), what="the clone snapshotting")
    target = ctl.restore(clone, vm, disks, {"rootdisk": 4})
    ctl.datavolumes(clone, target, disks, RHEL9)
    root, data = clone.pvcs["rootdisk"], clone.pvcs["data"]
    s = proc.wait_for(lambda s: pick(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim=root)
                      and pick(s, "clonewatch_vm_clone_status_info", phase="RestoreInProgress"),
                      what="the restored disks measured, the clone restoring")
    for name, volume_name in ((root, "rootdisk"), (data, "data")):
        assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=name, source_kind="VolumeSnapshot",
                   source_name=clone.volume_snapshots[volume_name], clone_type="snapshot",
                   expected_clone_type="snapshot", expected_from="source-kind") == 1
        assert one(s, "clonewatch_pvc_clone_fallback", persistentvolumeclaim=name) == 0

    ctl.succeeded(clone, "vms")
    s = proc.wait_for(lambda s: not pick(s, "clonewatch_vm_clone_status_info", virtualmachineclone="clone-src"),
                      what="the clone done")
    assert one(s, "clonewatch_vm_clone_info", virtualmachine="dst", source_kind="VirtualMachine",
               source_namespace="vms", source_name="src", clone_type="snapshot") == 1

    ctl.cleaned_up(clone, "vms")
    snap_images = [f"{pool.name}/csi-snap-{u}" for u in clone.snapshot_ids.values()]
    s = proc.wait_for(lambda s: all(pick(s, "clonewatch_volume_info", volume=v, state="trash") for v in snap_images)
                      and not pick(s, "clonewatch_kubernetes_objects", resource="volumesnapshots")[0],
                      what="every VolumeSnapshot deleted, its image in the trash")
    # Each restored disk reads through its trashed snapshot image into the disk it was taken of: that
    # disk's family, never one named after a VolumeSnapshot that no longer exists.
    for name, source in ((root, "src-rootdisk"), (data, "src-data")):
        assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=name, source_kind="PersistentVolumeClaim",
                   source_name=source, clone_type="snapshot") == 1
        assert one(s, "clonewatch_source_clones", source_namespace="vms", source_name=source) == 1
        assert one(s, "clonewatch_pvc_clone_sharing", persistentvolumeclaim=name) == 1
    assert not [ls for (n, ls), _ in s.items() if n.startswith("clonewatch_source_")
                and dict(ls)["source_name"].startswith("vmsnapshot-")]
    for name in ("src", "dst"):
        assert one(s, "clonewatch_vm_golden_info", virtualmachine=name, source_kind="PersistentVolumeClaim",
                   source_namespace="os-images", source_name="rhel9", backend="rbd") == 1
    check_vm_bytes(s, pool, "dst", clone.images)
    check_vm_bytes(s, pool, "src", {d.volume: d.image for d in disks})
    assert one(s, "clonewatch_vm_consumed_bytes", virtualmachine="dst") == 4 * MiB
    cluster_state["clone"] = clone


def test_bad_input_shows_as_series(cluster):
    proc = cluster[0]
    s = proc.samples()
    assert one(s, "clonewatch_vm_volume_uncounted_info", virtualmachine="early", persistentvolumeclaim="early-rootdisk",
               reason="pvc-not-found") == 1
    assert one(s, "clonewatch_pvc_virtualmachine_info", virtualmachine="early", persistentvolumeclaim="early-rootdisk") == 1
    assert not pick(s, "clonewatch_vm_consumed_bytes", virtualmachine="early")
    assert one(s, "clonewatch_vm_volume_uncounted_info", virtualmachine="ephemeral", volume_name="rootdisk",
               reason="containerDisk") == 1
    assert one(s, "clonewatch_vm_disks", virtualmachine="ephemeral") == 0
    assert one(s, "clonewatch_vm_clone_status_info", namespace="team-b", virtualmachineclone="cross", phase="Pending",
               reason="Source doesnt exist: VirtualMachine team-b/src", source_name="src", target="copy-of-src") == 1
    assert pick(s, "clonewatch_vm_clone_pending_since_timestamp_seconds", virtualmachineclone="cross")
    assert one(s, "clonewatch_rebuild_failures_total") == 0


def test_with_the_source_vm_and_its_disks_deleted_the_chain_ends_in_the_golden(cluster, pool, kube):
    """The source VM deleted, then its PVCs (ceph-csi moves their images to the trash): the clone's
    disks still read through them, and the storage says where they belong."""
    proc, csi, world, _vm, disks = cluster
    clone = cluster_state["clone"]
    root, data = clone.pvcs["rootdisk"], clone.pvcs["data"]
    world.delete("VirtualMachine", "vms", "src")
    for d in disks:
        kube.delete("PersistentVolumeClaim", d.pvc["metadata"]["name"], "vms")
        kube.delete("PersistentVolume", d.pvc["spec"]["volumeName"])
        csi.delete_volume(d.image)
    data_image = f"{pool.name}/{disks[1].image}"
    s = proc.wait_for(lambda s: pick(s, "clonewatch_volume_info", volume=data_image, state="trash")
                      and pick(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=root, source_name="rhel9"),
                      what="the source disks in the trash, the restored root disk in the golden's family")
    assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=root, source_kind="PersistentVolumeClaim",
               source_namespace="os-images", source_name="rhel9", clone_type="snapshot") == 1
    # The blank data disk's chain ends in its source's trashed image, which no PVC holds: named after it.
    assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=data, source_kind="BackendVolume",
               source_name=data_image) == 1
    assert not [ls for (n, ls), _ in s.items() if n.startswith(("clonewatch_source_", "clonewatch_pvc_clone_info"))
                and dict(ls).get("source_name", "").startswith("vmsnapshot-")]
    assert one(s, "clonewatch_vm_golden_info", virtualmachine="dst", source_name="rhel9") == 1
    assert one(s, "clonewatch_vm_clone_info", virtualmachine="dst", source_kind="VirtualMachine",
               source_name="src") == 1, "the restored disks' marks still name the VM it was cloned from"
    check_vm_bytes(s, pool, "dst", clone.images)
