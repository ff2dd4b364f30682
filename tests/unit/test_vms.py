"""KubeVirt VMs in the inventory. A VirtualMachineClone is acted out step by step with the objects
KubeVirt's controllers write (tests/support/kubevirt.py) over ceph-csi's RBD layout (FakeCsi: the
volumes librbd would report); after every step the long-lived inventory must equal a full rebuild,
view and /metrics text. Then what the steps must show: the clone's phase, restored disks classified
as the snapshot restores they are and put in the families of the disks the snapshots were taken of
(also once every snapshot object is gone), the VM's bytes as its disks' sum, its source and golden.
"""

import copy
import dataclasses

from exporter.backends.base import TargetState
from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.collectors import registry, vm_volume, vmclone
from exporter.collectors import vm as vm_collector
from exporter.inventory.pipeline import Inventory, everything
from exporter.kube.store import Store
from exporter.model.kubevirt import CloneProgress
from exporter.model.rows import VmCloneRow, VmRow, VmVolumeRow
from tests.support.kubevirt import (
    CloneController,
    FakeCsi,
    StoreWorld,
    clone_vm,
    failed_status,
    golden,
    pending_status,
    virtual_machine,
    vm_clone,
    vm_from_golden,
    volume,
)
from tests.support.objects import ODF_RBD, cdi_cr, storageclass, storageprofile

MiB = 2**20
SC = "rbd"
RHEL9 = {"pvc": {"namespace": "os-images", "name": "rhel9"}}
GOLDEN = ("PersistentVolumeClaim", "os-images", "rhel9", "rbd")


class Cluster:
    """A watch cache fed by KubeVirt's and CDI's writes, ceph-csi's volumes, and the exporter's two ways."""

    def __init__(self) -> None:
        self.store = Store()
        self.world = StoreWorld(self.store)
        self.csi = FakeCsi("p")
        self.backend = RbdBackend(RbdSettings())
        self.inv = Inventory([self.backend], True)
        self.collectors = registry.text_collectors(None)
        self.up = True
        self.world.create(storageclass(SC, ODF_RBD))
        self.world.create(storageprofile(SC, "csi-clone"))
        self.controller = CloneController(self.world, self.csi, "p", SC)

    def states(self):
        st = TargetState("p")
        if self.up:
            st.succeeded(dict(self.csi.volumes), 0.1)
        else:
            st.failed("down", 0.1)
        self.backend._states = {"p": st}
        self.backend._by_image = {vid.rsplit("/", 1)[1]: vid for vid in st.volumes}
        return {"rbd": {"p": copy.copy(st)}}

    def check(self) -> Inventory:
        """The long-lived inventory after this change equals a fresh one fed everything."""
        states = self.states()
        dirty = self.inv.update(self.store.take_changes(), states)
        for c in self.collectors:
            c.update(self.inv, dirty)
        fresh = Inventory([self.backend], True)
        fresh_dirty = fresh.update(everything(self.store.objects), states)
        fresh_collectors = registry.text_collectors(None)
        for c in fresh_collectors:
            c.update(fresh, fresh_dirty)
        assert self.inv.view() == fresh.view()
        assert self.text() == b"".join(p for c in fresh_collectors for p, _ in c.parts())
        return self.inv

    def text(self) -> bytes:
        return b"".join(p for c in self.collectors for p, _ in c.parts())

    def source_vm(self, name="src", root_mib=4, data_mib=8):
        """os-images/rhel9 (16 MiB) and a VM cloned from it with a 4 MiB root disk and an 8 MiB data disk."""
        image = golden(self.world, self.csi, "p", SC)
        return vm_from_golden(self.world, self.csi, "p", SC, "vms", name, image, root_mib, data_mib)


def record(inv, name, ns="vms"):
    return inv.pvcs[(ns, name)].record


def test_a_vm_clone_step_by_step():
    c = Cluster()
    vm, disks = c.source_vm()
    c.world.create(cdi_cr("copy"))          # an override that governs CDI's clones, not a restore
    c.check()
    ctl = c.controller
    clone = ctl.requested("vms", "clone-src", "src", "dst")
    inv = c.check()
    assert inv.vm_clones[("vms", "clone-src")].progress == CloneProgress("Pending", "", 1796032800.0)

    ctl.snapshot(clone, vm, disks)
    inv = c.check()
    assert inv.vm_clones[("vms", "clone-src")].progress.phase == "SnapshotInProgress"
    assert inv.vm_clones[("vms", "clone-src")].progress.reason == "Still processing"

    target = ctl.restore(clone, vm, disks, {"rootdisk": 4})
    inv = c.check()
    assert inv.vm_clones[("vms", "clone-src")].progress.phase == "RestoreInProgress"
    root, data = clone.pvcs["rootdisk"], clone.pvcs["data"]
    for name, source in ((root, "src-rootdisk"), (data, "src-data")):
        r = record(inv, name)
        # Restored from its VolumeSnapshot by the CSI driver: a snapshot restore, in the source disk's family.
        assert (r.source_kind, r.source_name) == ("VolumeSnapshot", clone.volume_snapshots[name.rsplit("-", 1)[1]])
        assert (r.family_kind, r.family_namespace, r.family_name) == ("PersistentVolumeClaim", "vms", source)
        assert (r.clone_type, r.expected_clone_type, r.expected_from, r.fallback) == \
            ("snapshot", "snapshot", "source-kind", False)

    ctl.datavolumes(clone, target, disks, RHEL9)
    inv = c.check()
    r = record(inv, root)
    # The pre-populated DataVolume names the golden and says Succeeded: neither is what happened.
    assert (r.source_kind, r.family_name, r.clone_type, r.expected_from) == \
        ("VolumeSnapshot", "src-rootdisk", "snapshot", "source-kind")
    assert r.complete and r.duration_seconds is None, "no DataVolume clone took any time"

    ctl.succeeded(clone, "vms")
    inv = c.check()
    assert inv.vm_clones[("vms", "clone-src")].progress is None
    assert b"clonewatch_vm_clone_status_info{" not in c.text()

    ctl.cleaned_up(clone, "vms")
    inv = c.check()
    assert not c.store.objects["volumesnapshots"] and not c.store.objects["virtualmachinesnapshots"]
    for name, source in ((root, "src-rootdisk"), (data, "src-data")):
        r = record(inv, name)
        assert (r.source_kind, r.source_name, r.family_kind, r.family_name) == \
            ("PersistentVolumeClaim", source, "PersistentVolumeClaim", source)
        assert r.clone_type == "snapshot" and not r.fallback
    assert not [k for k in inv.families if "vmsnapshot-" in k[2]], "no family after a VolumeSnapshot that is gone"
    assert inv.families[("PersistentVolumeClaim", "vms", "src-rootdisk", "rbd")].clones == 1

    dst, src = inv.vms[("vms", "dst")], inv.vms[("vms", "src")]
    assert dst.source == ("VirtualMachine", "vms", "src") and dst.clone_type == "snapshot" and dst.fallback is False
    assert dst.golden == GOLDEN and src.golden == GOLDEN
    assert src.source == ("PersistentVolumeClaim", "os-images", "rhel9") and src.clone_type == "csi-clone"
    for row, names in ((dst, (root, data)), (src, ("src-rootdisk", "src-data"))):
        assert row.disks == 2
        assert row.consumed_bytes == sum(inv.pvcs[("vms", n)].consumed_bytes for n in names)
        assert row.provisioned_bytes == 2 * 64 * MiB
    assert dst.consumed_bytes == 4 * MiB and src.consumed_bytes == 12 * MiB
    assert inv.vm_volumes[("vms", "dst", "rootdisk", root)] == VmVolumeRow("vms", "dst", "rootdisk", "dataVolume", root, True)


def test_a_clone_of_a_clone_names_the_golden_its_chain_ends_in():
    c = Cluster()
    vm, disks = c.source_vm()
    first = clone_vm(c.controller, vm, disks, "c1", "dst", RHEL9)
    c.check()
    dst = c.world.objects[("VirtualMachine", "vms", "dst")]
    dst_disks = [type(d)(d.volume, c.world.objects[("PersistentVolumeClaim", "vms", first.pvcs[d.volume])],
                         first.images[d.volume], d.datavolume) for d in disks]
    second = clone_vm(c.controller, dst, dst_disks, "c2", "dst2", RHEL9)
    inv = c.check()
    r = record(inv, second.pvcs["rootdisk"])
    assert (r.family_kind, r.family_name) == ("PersistentVolumeClaim", first.pvcs["rootdisk"])
    dst2 = inv.vms[("vms", "dst2")]
    assert dst2.source == ("VirtualMachine", "vms", "dst") and dst2.golden == GOLDEN


def test_with_the_source_vm_and_its_disks_gone_the_storage_says():
    """KubeVirt's marks name the source VM; once it is deleted they name nothing that exists, and
    the chain does: the restored disk reads through the trashed snapshot image and the source disk's
    image, which hang below the golden."""
    c = Cluster()
    vm, disks = c.source_vm()
    clone = clone_vm(c.controller, vm, disks, "c1", "dst", RHEL9)
    root, data = clone.pvcs["rootdisk"], clone.pvcs["data"]
    c.world.delete("VirtualMachine", "vms", "src")
    inv = c.check()
    assert record(inv, root).family_name == "src-rootdisk", "the source disk's image is still its PVC's"
    for d in disks:
        c.world.delete("PersistentVolumeClaim", "vms", d.pvc["metadata"]["name"])
        c.csi.volumes[c.csi.vid(d.image)] = dataclasses.replace(c.csi.volumes[c.csi.vid(d.image)], trashed=True)
    inv = c.check()
    r = record(inv, root)
    assert (r.source_kind, r.source_name, r.family_name) == ("PersistentVolumeClaim", "rhel9", "rhel9")
    # The blank data disk's chain ends in its own (trashed) image, which no PVC holds: named after it.
    r = record(inv, data)
    assert (r.family_kind, r.family_name) == ("BackendVolume", c.csi.vid(disks[1].image))
    assert inv.vms[("vms", "dst")].golden == GOLDEN
    assert inv.vms[("vms", "dst")].source == ("VirtualMachine", "vms", "src"), "the restored disks' marks say so"
    c.up = False        # no storage evidence: Kubernetes' word, the source VM's name (never the snapshot's)
    inv = c.check()
    assert (record(inv, root).family_kind, record(inv, root).family_name) == ("VirtualMachine", "src")
    assert inv.vms[("vms", "dst")].consumed_bytes is None and inv.vms[("vms", "dst")].provisioned_bytes == 128 * MiB


def test_a_restore_of_a_vm_snapshot_into_a_new_vm_names_the_snapshots_vm():
    """No VirtualMachineClone: the restore (while it and its snapshot exist), then the PVCs' marks."""
    c = Cluster()
    vm, disks = c.source_vm()
    ctl = c.controller
    clone = ctl.requested("vms", "c1", "src", "dst")
    ctl.snapshot(clone, vm, disks)
    ctl.restore(clone, vm, disks)
    c.world.delete("VirtualMachineClone", "vms", "c1")
    inv = c.check()
    assert inv.vms[("vms", "dst")].source == ("VirtualMachine", "vms", "src")
    c.world.delete("VirtualMachineRestore", "vms", clone.restore)
    c.world.delete("VirtualMachineSnapshot", "vms", clone.snapshot)
    ctl.snapshot_deleted(clone, "vms")
    inv = c.check()
    assert inv.vms[("vms", "dst")].source == ("VirtualMachine", "vms", "src")
    # A VM restored from its own snapshot is no clone of itself: its disks' source speaks.
    c.world.patch("VirtualMachine", "vms", "src", {"metadata": {"annotations": {
        "restore.kubevirt.io/lastRestoreUID": f"{clone.restore}-{clone.restore_uid}"}}})
    for d in disks:
        c.world.patch("PersistentVolumeClaim", "vms", d.pvc["metadata"]["name"], {"metadata": {"labels": {
            "restore.kubevirt.io/source-vm-name": "src", "restore.kubevirt.io/source-vm-namespace": "vms"}}})
    inv = c.check()
    assert inv.vms[("vms", "src")].source == ("PersistentVolumeClaim", "os-images", "rhel9")


def test_bad_input_is_a_series_never_a_crash():
    c = Cluster()
    c.source_vm()
    # A VM whose disk's DataVolume has not made its PVC yet, and one booting from a container disk.
    c.world.create(virtual_machine("vms", "early", [volume("rootdisk", dataVolume={"name": "early-rootdisk"}),
                                                    volume("data", persistentVolumeClaim={"claimName": "src-data"})]))
    c.world.create(virtual_machine("vms", "ephemeral", [
        volume("rootdisk", containerDisk={"image": "quay.io/containerdisks/fedora:41"}),
        volume("cloudinitdisk", cloudInitNoCloud={"userData": "#cloud-config\n"})]))
    # A clone of a VM in another namespace: the source has no namespace field, KubeVirt looks in its own.
    c.world.create(vm_clone("team-b", "cross", "src", "copy-of-src"))
    c.world.patch("VirtualMachineClone", "team-b", "cross",
                  {"status": pending_status("Source doesnt exist: VirtualMachine team-b/src")})
    c.world.create(vm_clone("vms", "tpm", "src", "tpm-copy"))
    c.world.patch("VirtualMachineClone", "vms", "tpm", {"status": failed_status(
        "Clone of source with backendstorage is not supported: VM vms/src")})
    c.world.create({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                    "metadata": {"name": "odd", "namespace": "vms"},
                    "spec": {"template": {"spec": {"volumes": [7, {"name": 3}, {"dataVolume": "x"}]}},
                             "dataVolumeTemplates": "nope"}})
    inv = c.check()
    early = inv.vms[("vms", "early")]
    assert early.disks == 2 and early.consumed_bytes is None and early.provisioned_bytes is None
    assert inv.vm_volumes[("vms", "early", "rootdisk", "early-rootdisk")].found is False
    eph = inv.vms[("vms", "ephemeral")]
    assert eph.disks == 0 and eph.consumed_bytes is None and eph.source is None
    assert [r.kind for k, r in inv.vm_volumes.items() if k[1] == "ephemeral"] == ["containerDisk"]
    text = c.text().decode()
    assert ('clonewatch_vm_volume_uncounted_info{namespace="vms",persistentvolumeclaim="early-rootdisk",'
            'virtualmachine="early",volume_name="rootdisk",reason="pvc-not-found"} 1\n') in text
    assert ('clonewatch_vm_volume_uncounted_info{namespace="vms",persistentvolumeclaim="",virtualmachine="ephemeral",'
            'volume_name="rootdisk",reason="containerDisk"} 1\n') in text
    assert ('clonewatch_vm_clone_status_info{namespace="team-b",virtualmachineclone="cross",phase="Pending",'
            'reason="Source doesnt exist: VirtualMachine team-b/src",source_kind="VirtualMachine",source_name="src",'
            'target="copy-of-src"} 1\n') in text
    assert ('clonewatch_vm_clone_status_info{namespace="vms",virtualmachineclone="tpm",phase="Failed",'
            'reason="Clone of source with backendstorage is not supported: VM vms/src",') in text
    assert inv.vms[("vms", "odd")] == VmRow("vms", "odd", 1, None, None, None, None, "unknown", None)
    # The cross-namespace clone names a target that does not exist, and no VM of the same name elsewhere.
    assert ("team-b", "copy-of-src") not in inv.vms and inv.vms[("vms", "src")].source[0] == "PersistentVolumeClaim"


# -- rows in, exact lines out -------------------------------------------------------------------------
def test_vm_rows_render_their_declared_lines():
    who = 'namespace="vms",virtualmachine="dst"'
    row = VmRow("vms", "dst", 2, 128 * MiB, 4 * MiB, False, ("VirtualMachine", "vms", "src"), "snapshot", GOLDEN)
    assert vm_collector.VM.lines(row) == {
        "clonewatch_vm_disks": f"clonewatch_vm_disks{{{who}}} 2\n",
        "clonewatch_vm_provisioned_bytes": f"clonewatch_vm_provisioned_bytes{{{who}}} 134217728\n",
        "clonewatch_vm_consumed_bytes": f"clonewatch_vm_consumed_bytes{{{who}}} 4194304\n",
        "clonewatch_vm_clone_fallback": f"clonewatch_vm_clone_fallback{{{who}}} 0\n",
        "clonewatch_vm_clone_info": f'clonewatch_vm_clone_info{{{who},source_kind="VirtualMachine",'
                                    f'source_namespace="vms",source_name="src",clone_type="snapshot"}} 1\n',
        "clonewatch_vm_golden_info": f'clonewatch_vm_golden_info{{{who},source_kind="PersistentVolumeClaim",'
                                     f'source_namespace="os-images",source_name="rhel9",backend="rbd"}} 1\n'}
    assert vm_collector.VM.lines(VmRow("vms", "bare", 0, None, None, None, None, "unknown", None)) == {
        "clonewatch_vm_disks": 'clonewatch_vm_disks{namespace="vms",virtualmachine="bare"} 0\n'}
    disk = VmVolumeRow("vms", "dst", "rootdisk", "dataVolume", "restore-1-rootdisk", True)
    assert vm_volume.VOLUME.lines(disk) == {
        "clonewatch_pvc_virtualmachine_info": 'clonewatch_pvc_virtualmachine_info{namespace="vms",persistentvolumeclaim='
                                              '"restore-1-rootdisk",virtualmachine="dst",volume_name="rootdisk"} 1\n'}
    clone = VmCloneRow("vms", "c1", "VirtualMachine", "src", "dst", CloneProgress("RestoreInProgress", "", 1.5e9))
    assert vmclone.CLONE.lines(clone) == {
        "clonewatch_vm_clone_status_info": 'clonewatch_vm_clone_status_info{namespace="vms",virtualmachineclone="c1",'
                                           'phase="RestoreInProgress",reason="",source_kind="VirtualMachine",'
                                           'source_name="src",target="dst"} 1\n',
        "clonewatch_vm_clone_pending_since_timestamp_seconds":
            'clonewatch_vm_clone_pending_since_timestamp_seconds{namespace="vms",virtualmachineclone="c1"} 1500000000\n'}
    assert vmclone.CLONE.lines(VmCloneRow("vms", "c1", "VirtualMachine", "src", "dst", None)) == {}
