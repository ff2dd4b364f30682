"""Per-PVC metrics: what it is, whether and how it was cloned, and what it consumes."""

from ..exposition.metric import GAUGE, RowMetrics, Value
from ..model.rows import PvcRow
from .base import rows

PVC: RowMetrics[PvcRow] = RowMetrics(("namespace", "persistentvolumeclaim"),
                                     lambda row: (row.record.namespace, row.record.name))


@PVC.metric("clonewatch_pvc_info", GAUGE,
            "PVC inventory: StorageClass, provisioner, bound PV and the backend that measures it "
            "(backend=\"none\" when no backend does). Always 1.",
            ("storageclass", "provisioner", "volume", "backend"))
def _info(row: PvcRow) -> Value:
    r = row.record
    return (r.storageclass, r.provisioner, r.volume, r.backend), 1


@PVC.metric("clonewatch_pvc_clone_info", GAUGE,
            "A PVC that was cloned: its source, the clone type CDI recorded "
            "(csi-clone|snapshot|copy|unknown), the type the storage should have delivered and what "
            "decided it (cdi-override|storageprofile|storageclass|provisioner|cdi-default|source-kind), "
            "and CDI's fallback reason if any. Always 1.",
            ("source_kind", "source_namespace", "source_name", "clone_type", "expected_clone_type",
             "expected_from", "fallback_reason"))
def _clone_info(row: PvcRow) -> Value:
    r = row.record
    if not r.is_clone:
        return None
    return (r.source_kind, r.source_namespace, r.source_name, r.clone_type, r.expected_clone_type,
            r.expected_from, r.fallback_reason), 1


@PVC.metric("clonewatch_pvc_clone_fallback", GAUGE,
            "1 when a clone fell back to a full copy although a smart clone was expected, or CDI "
            "recorded a fallback reason; 0 otherwise (a configured copy is 0).")
def _fallback(row: PvcRow) -> Value:
    return ((), 1 if row.record.fallback else 0) if row.record.is_clone else None


@PVC.metric("clonewatch_pvc_provisioned_bytes", GAUGE,
            "Capacity of the PVC: its PV's capacity, else the PVC's status or request.")
def _provisioned(row: PvcRow) -> Value:
    size = row.record.provisioned_bytes
    return None if size is None else ((), size)


@PVC.metric("clonewatch_pvc_consumed_bytes", GAUGE,
            "Bytes the PVC's backend volume alone occupies, as the backend last reported it. "
            "Absent when the backend could not tell.", ("backend",), volatile=True)
def _consumed(row: PvcRow) -> Value:
    return None if row.consumed_bytes is None else ((row.record.backend,), row.consumed_bytes)


@PVC.metric("clonewatch_pvc_volume_info", GAUGE,
            "The backend volume behind a PVC (backend_volume as in clonewatch_volume_info's volume "
            "label), to join PVCs with the backend's volume metrics. Always 1.",
            ("backend", "target", "backend_volume"))
def _volume(row: PvcRow) -> Value:
    ref = row.record.volume_ref
    return None if ref is None else ((ref.backend, ref.target, ref.volume), 1)


@PVC.metric("clonewatch_pvc_clone_depth", GAUGE,
            "How many parents the PVC's backend volume hangs below (0 for an independent volume).")
def _depth(row: PvcRow) -> Value:
    return None if row.depth is None else ((), row.depth)


@PVC.metric("clonewatch_pvc_clone_pending_since_timestamp_seconds", GAUGE,
            "A clone not finished yet: Unix time its DataVolume (else its PVC) was created. "
            "time() minus this is how long it has been waiting. Absent once done.")
def _pending_since(row: PvcRow) -> Value:
    r = row.record
    if not r.is_clone or r.complete or r.pending_since is None:
        return None
    return (), r.pending_since


@PVC.metric("clonewatch_pvc_clone_status_info", GAUGE,
            "A clone not finished yet: the DataVolume phase (else the clone populator's clonePhase, else the "
            "PVC phase) and the reason CDI gives on its Running condition. Always 1; absent once done.",
            ("phase", "reason"))
def _status(row: PvcRow) -> Value:
    r = row.record
    return ((r.phase, r.phase_reason), 1) if r.is_clone and not r.complete else None


@PVC.metric("clonewatch_pvc_clone_sharing", GAUGE,
            "1 while a clone's backend volume still reads unchanged blocks through its parent, 0 when it "
            "shares nothing any more (whatever CDI recorded); absent while the volume is not measured.")
def _sharing(row: PvcRow) -> Value:
    return None if row.sharing is None else ((), 1 if row.sharing else 0)


@PVC.metric("clonewatch_pvc_clone_unshared_info", GAUGE,
            "Why a clone shares nothing with its source: flattened (RBD), background-copy-complete "
            "(FlashCopy at 100%), no-flashcopy-mapping, no-backing-file (qcow2), full-clone (vSphere), "
            "independent-copy (IBM Cloud VPC). Always 1; only for clones with sharing 0.", ("reason",))
def _unshared(row: PvcRow) -> Value:
    return ((row.unshared_reason,), 1) if row.sharing is False else None


SPEC = rows("pvc", 10, PVC, lambda d: d.pvcs, lambda inv, k: inv.pvcs.get(k))
