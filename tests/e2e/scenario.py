"""One scenario, two views of it: RBD images in a real Ceph pool, and the Kubernetes objects that
ODF/CDI (and, for comparison, the IBM VPC driver) would have created for them.

  os-images/rhel9   golden, 64 MiB written, snapshot base      <- CoW family
    vms/vm-1        DataVolume csi-clone, 8 MiB drift
    vms/vm-2        DataVolume csi-clone, 16 MiB drift
    vms/vm-3        plain PVC dataSource (no CDI), no drift
  os-images/win     golden, 64 MiB written                      <- full-copy family
    vms/win-1       DataVolume copy + NoVolumeSnapshotClass: a fallback
    vms/win-2       DataVolume copy, no reason: a fallback all the same (csi-clone expected)
  vms/vpc-1         DataVolume copy on a VPC block StorageClass: configured copy, not a fallback
  vms/pending-1     DataVolume csi-clone not bound yet (CSICloneInProgress, Running reason Pending)

virtual_machines(), for the views that list VMs (the dashboards), VMs whose disks are those PVCs:
  vms/fedora-1      vm-1 (rootdisk) and vm-3 (data): csi-clones of rhel9
  vms/fedora-2      vm-2
  vms/windows       win-1 and win-2: full copies that fell back
  vms/vpc           vpc-1: a configured copy
"""

from tests.support.kubevirt import virtual_machine, volume
from tests.support.objects import (
    ODF_RBD,
    VPC_BLOCK,
    clone_annotations,
    datavolume,
    pv_rbd,
    pv_vpc,
    pvc,
    storageclass,
    storageprofile,
)

RBD_SC = "ocs-storagecluster-ceph-rbd"
VPC_SC = "ibmc-vpc-block-10iops-tier"
GOLDEN_MIB = 64
DRIFT_MIB = {"vm-1": 8, "vm-2": 16, "vm-3": 0}
FULL = ("win-1", "win-2")
CREATED = "2026-11-30T10:00:00Z"    # DataVolumes' creationTimestamp (done ones: Ready 4 s, 9 s, 250 s later)


def build_pool(pool) -> None:
    pool.golden("rhel9-img", GOLDEN_MIB)
    for vm, mib in DRIFT_MIB.items():
        pool.clone("rhel9-img", f"{vm}-img")
        pool.write(f"{vm}-img", mib)
    pool.golden("win-img", GOLDEN_MIB)
    for vm in FULL:
        pool.full_copy("win-img", f"{vm}-img")


def kubernetes_objects(pool_name: str) -> list[dict]:
    objs = [storageclass(RBD_SC, ODF_RBD), storageclass(VPC_SC, VPC_BLOCK), storageprofile(RBD_SC, "csi-clone"),
            storageprofile(VPC_SC, "copy")]
    for golden in ("rhel9", "win"):
        objs += [pv_rbd(f"pv-{golden}", pool_name, f"{golden}-img"),
                 pvc("os-images", golden, RBD_SC, volume=f"pv-{golden}")]
    for vm, took in (("vm-1", 4), ("vm-2", 9)):
        ann = clone_annotations("csi-clone")
        objs += [datavolume("vms", vm, source={"pvc": {"namespace": "os-images", "name": "rhel9"}}, annotations=ann,
                            created=CREATED, ready_at=f"2026-11-30T10:00:{took:02d}Z"),
                 pv_rbd(f"pv-{vm}", pool_name, f"{vm}-img"),
                 pvc("vms", vm, RBD_SC, volume=f"pv-{vm}", owner_dv=vm, annotations=ann)]
    objs += [pv_rbd("pv-vm-3", pool_name, "vm-3-img"),
             pvc("vms", "vm-3", RBD_SC, volume="pv-vm-3",
                 data_source_ref={"kind": "PersistentVolumeClaim", "name": "rhel9", "namespace": "os-images"})]
    for vm, reason in (("win-1", "NoVolumeSnapshotClass"), ("win-2", None)):
        ann = clone_annotations("copy", reason)
        objs += [datavolume("vms", vm, source={"pvc": {"namespace": "os-images", "name": "win"}}, annotations=ann,
                            created=CREATED, ready_at="2026-11-30T10:04:10Z"),
                 pv_rbd(f"pv-{vm}", pool_name, f"{vm}-img"),
                 pvc("vms", vm, RBD_SC, volume=f"pv-{vm}", owner_dv=vm, annotations=ann)]
    ann = clone_annotations("copy")
    objs += [datavolume("vms", "vpc-1", source={"pvc": {"namespace": "os-images", "name": "rhel9"}}, annotations=ann),
             pv_vpc("pv-vpc-1"), pvc("vms", "vpc-1", VPC_SC, volume="pv-vpc-1", size="10Gi", owner_dv="vpc-1",
                                     annotations=ann)]
    objs += [datavolume("vms", "pending-1", source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                        phase="CSICloneInProgress", created=CREATED, running_reason="Pending"),
             pvc("vms", "pending-1", RBD_SC, owner_dv="pending-1")]
    return objs


def virtual_machines() -> list[dict]:
    """The VMs of the module docstring (KubeVirt's VirtualMachine, stopped), over the scenario's PVCs."""
    def dv(name: str, claim: str) -> dict:
        return volume(name, dataVolume={"name": claim})
    disks = {"fedora-1": [dv("rootdisk", "vm-1"), volume("data", persistentVolumeClaim={"claimName": "vm-3"})],
             "fedora-2": [dv("rootdisk", "vm-2")],
             "windows": [dv("rootdisk", "win-1"), dv("data", "win-2")],
             "vpc": [dv("rootdisk", "vpc-1")]}
    return [virtual_machine("vms", name, volumes) for name, volumes in disks.items()]
