"""Per KubeVirt VirtualMachine: its disks' bytes together, whether a disk fell back, where it was
cloned from and the golden its disks' chain ends in."""

from ..exposition.metric import GAUGE, RowMetrics, Value
from ..model.rows import VmRow
from .base import rows

VM: RowMetrics[VmRow] = RowMetrics(("namespace", "virtualmachine"), lambda row: (row.namespace, row.name))


@VM.metric("clonewatch_vm_disks", GAUGE,
           "PVCs among the VM's volumes (dataVolume and persistentVolumeClaim volumes, DataVolume templates).")
def _disks(row: VmRow) -> Value:
    return (), row.disks


@VM.metric("clonewatch_vm_provisioned_bytes", GAUGE,
           "Provisioned bytes of the VM's disks together. Absent while any disk's PVC does not exist or has no "
           "size, and for a VM without disks.")
def _provisioned(row: VmRow) -> Value:
    return None if row.provisioned_bytes is None else ((), row.provisioned_bytes)


@VM.metric("clonewatch_vm_consumed_bytes", GAUGE,
           "Bytes the VM's disks' backend volumes alone occupy together (the sum of clonewatch_pvc_consumed_bytes). "
           "Absent while any disk is missing or not measured: never a partial sum.", volatile=True)
def _consumed(row: VmRow) -> Value:
    return None if row.consumed_bytes is None else ((), row.consumed_bytes)


@VM.metric("clonewatch_vm_clone_fallback", GAUGE,
           "1 when any of the VM's cloned disks fell back to a full copy (clonewatch_pvc_clone_fallback), else 0; "
           "absent when no disk is a clone.")
def _fallback(row: VmRow) -> Value:
    return None if row.fallback is None else ((), 1 if row.fallback else 0)


@VM.metric("clonewatch_vm_clone_info", GAUGE,
           "A VM that was cloned: from a VM (a VirtualMachineClone, or a restore of a VM's snapshot into a new VM: "
           "source_kind VirtualMachine or VirtualMachineSnapshot), else from what its first cloned disk was "
           "cloned from (a golden); clone_type is its cloned disks' (mixed when they differ). Always 1.",
           ("source_kind", "source_namespace", "source_name", "clone_type"))
def _clone(row: VmRow) -> Value:
    return None if row.source is None else ((*row.source, row.clone_type), 1)


@VM.metric("clonewatch_vm_golden_info", GAUGE,
           "The family the VM's first cloned disk's chain ends in, through clones of clones and VM clones: "
           "join with clonewatch_source_* on source_namespace, source_name, backend. Always 1.",
           ("source_kind", "source_namespace", "source_name", "backend"))
def _golden(row: VmRow) -> Value:
    return None if row.golden is None else (row.golden, 1)


SPEC = rows("vm", 70, VM, lambda d: d.vms, lambda inv, k: inv.vms.get(k))
