"""Per KubeVirt VirtualMachineClone not done yet: its phase, why it waits, and since when."""

from ..exposition.metric import GAUGE, RowMetrics, Value
from ..model.rows import VmCloneRow
from .base import rows

CLONE: RowMetrics[VmCloneRow] = RowMetrics(("namespace", "virtualmachineclone"), lambda row: (row.namespace, row.name))


@CLONE.metric("clonewatch_vm_clone_status_info", GAUGE,
              "A VirtualMachineClone not Succeeded: its phase (Pending while KubeVirt set none, SnapshotInProgress, "
              "RestoreInProgress, CreatingTargetVM, Failed, Unknown), the reason on its Ready condition (why it "
              "waits, or failed), what it clones and the VM it makes. Always 1; absent once Succeeded.",
              ("phase", "reason", "source_kind", "source_name", "target"))
def _status(row: VmCloneRow) -> Value:
    p = row.progress
    return None if p is None else ((p.phase, p.reason, row.source_kind, row.source_name, row.target), 1)


@CLONE.metric("clonewatch_vm_clone_pending_since_timestamp_seconds", GAUGE,
              "A VirtualMachineClone not Succeeded: Unix time it was created. time() minus this is how long it has "
              "been at work. Absent once Succeeded.")
def _pending_since(row: VmCloneRow) -> Value:
    p = row.progress
    return None if p is None or p.pending_since is None else ((), p.pending_since)


SPEC = rows("vmclone", 72, CLONE, lambda d: d.vm_clones, lambda inv, k: inv.vm_clones.get(k))
