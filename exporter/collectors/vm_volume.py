"""Per volume of a KubeVirt VM: which PVC a disk is, and which volumes the VM's bytes leave out."""

from ..exposition.metric import GAUGE, RowMetrics, Value
from ..model.kubevirt import DISK_KINDS
from ..model.rows import VmVolumeRow
from .base import rows

VOLUME: RowMetrics[VmVolumeRow] = RowMetrics(
    ("namespace", "persistentvolumeclaim", "virtualmachine", "volume_name"),
    lambda row: (row.namespace, row.claim, row.vm, row.volume_name))


@VOLUME.metric("clonewatch_pvc_virtualmachine_info", GAUGE,
               "A PVC that is a VM's disk (a dataVolume or persistentVolumeClaim volume; volume_name \"\" for a "
               "DataVolume template no volume names), whether the PVC exists yet or not. Always 1.")
def _disk(row: VmVolumeRow) -> Value:
    return ((), 1) if row.kind in DISK_KINDS else None


@VOLUME.metric("clonewatch_vm_volume_uncounted_info", GAUGE,
               "A VM volume the VM's byte metrics do not count, and why: pvc-not-found (a disk whose PVC does not "
               "exist yet: the VM's bytes are absent meanwhile), or the volume's kind when it is no PVC of its own "
               "(containerDisk, emptyDisk, ephemeral, hostDisk, memoryDump, ...). Always 1.", ("reason",))
def _uncounted(row: VmVolumeRow) -> Value:
    if row.kind in DISK_KINDS:
        return None if row.found else (("pvc-not-found",), 1)
    return (row.kind,), 1


SPEC = rows("vm_volume", 71, VOLUME, lambda d: d.vm_volumes, lambda inv, k: inv.vm_volumes.get(k))
