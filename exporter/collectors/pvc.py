"""Per-PVC metrics: what it is, whether and how it was cloned, and what it consumes."""

from ..exposition.section import Lines, MetricDef, label_text, sample
from ..model.rows import PvcRow
from . import RowCollector

INFO = MetricDef("clonewatch_pvc_info", "gauge",
                 "PVC inventory: StorageClass, provisioner, bound PV and the backend that measures it "
                 "(backend=\"none\" when no backend does). Always 1.")
CLONE_INFO = MetricDef("clonewatch_pvc_clone_info", "gauge",
                       "A PVC that was cloned: its source, the clone type CDI recorded "
                       "(csi-clone|snapshot|copy|unknown), the type the storage should have delivered and what "
                       "decided it (cdi-override|storageprofile|storageclass|provisioner|cdi-default|source-kind), "
                       "and CDI's fallback reason if any. Always 1.")
FALLBACK = MetricDef("clonewatch_pvc_clone_fallback", "gauge",
                     "1 when a clone fell back to a full copy although a smart clone was expected, or CDI "
                     "recorded a fallback reason; 0 otherwise (a configured copy is 0).")
PROVISIONED = MetricDef("clonewatch_pvc_provisioned_bytes", "gauge",
                        "Capacity of the PVC: its PV's capacity, else the PVC's status or request.")
CONSUMED = MetricDef("clonewatch_pvc_consumed_bytes", "gauge",
                     "Bytes the PVC's backend volume alone occupies, as the backend last reported it. "
                     "Absent when the backend could not tell.", volatile=True)
VOLUME = MetricDef("clonewatch_pvc_volume_info", "gauge",
                   "The backend volume behind a PVC (backend_volume as in clonewatch_volume_info's volume "
                   "label), to join PVCs with the backend's volume metrics. Always 1.")
DEPTH = MetricDef("clonewatch_pvc_clone_depth", "gauge",
                  "How many parents the PVC's backend volume hangs below (0 for an independent volume).")

PENDING_SINCE = MetricDef("clonewatch_pvc_clone_pending_since_timestamp_seconds", "gauge",
                          "A clone not finished yet: Unix time its DataVolume (else its PVC) was created. "
                          "time() minus this is how long it has been waiting. Absent once done.")
STATUS = MetricDef("clonewatch_pvc_clone_status_info", "gauge",
                   "A clone not finished yet: the DataVolume phase (else the clone populator's clonePhase, else the "
                   "PVC phase) and the reason CDI gives on its Running condition. Always 1; absent once done.")
SHARING = MetricDef("clonewatch_pvc_clone_sharing", "gauge",
                    "1 while a clone's backend volume still reads unchanged blocks through its parent, 0 when it "
                    "shares nothing any more (whatever CDI recorded); absent while the volume is not measured.")
UNSHARED = MetricDef("clonewatch_pvc_clone_unshared_info", "gauge",
                     "Why a clone shares nothing with its source: flattened (RBD), background-copy-complete "
                     "(FlashCopy at 100%), no-flashcopy-mapping, no-backing-file (qcow2), full-clone (vSphere), "
                     "independent-copy (IBM Cloud VPC). Always 1; only for clones with sharing 0.")
DEFS = (INFO, CLONE_INFO, FALLBACK, PROVISIONED, CONSUMED, VOLUME, DEPTH, PENDING_SINCE, STATUS, SHARING, UNSHARED)


def render(row: PvcRow) -> Lines:
    r = row.record
    who = label_text((("namespace", r.namespace), ("persistentvolumeclaim", r.name)))
    out: Lines = {INFO.name: [sample(INFO.name, label_text((
        ("storageclass", r.storageclass), ("provisioner", r.provisioner),
        ("volume", r.volume), ("backend", r.backend)), who), 1)]}
    if r.is_clone:
        out[CLONE_INFO.name] = [sample(CLONE_INFO.name, label_text((
            ("source_kind", r.source_kind), ("source_namespace", r.source_namespace),
            ("source_name", r.source_name), ("clone_type", r.clone_type),
            ("expected_clone_type", r.expected_clone_type), ("expected_from", r.expected_from),
            ("fallback_reason", r.fallback_reason)), who), 1)]
        out[FALLBACK.name] = [sample(FALLBACK.name, who, 1 if r.fallback else 0)]
    if r.provisioned_bytes is not None:
        out[PROVISIONED.name] = [sample(PROVISIONED.name, who, r.provisioned_bytes)]
    if row.consumed_bytes is not None:
        out[CONSUMED.name] = [sample(CONSUMED.name, label_text((("backend", r.backend),), who), row.consumed_bytes)]
    if r.volume_ref is not None:
        ref = r.volume_ref
        out[VOLUME.name] = [sample(VOLUME.name, label_text((
            ("backend", ref.backend), ("target", ref.target), ("backend_volume", ref.volume)), who), 1)]
    if row.depth is not None:
        out[DEPTH.name] = [sample(DEPTH.name, who, row.depth)]
    if row.sharing is not None:
        out[SHARING.name] = [sample(SHARING.name, who, 1 if row.sharing else 0)]
        if not row.sharing:
            out[UNSHARED.name] = [sample(UNSHARED.name, label_text((("reason", row.unshared_reason),), who), 1)]
    if r.is_clone and not r.complete:
        out[STATUS.name] = [sample(STATUS.name, label_text((("phase", r.phase), ("reason", r.phase_reason)), who), 1)]
        if r.pending_since is not None:
            out[PENDING_SINCE.name] = [sample(PENDING_SINCE.name, who, r.pending_since)]
    return out


class PvcCollector(RowCollector[PvcRow]):
    def __init__(self) -> None:
        super().__init__(DEFS, render, lambda d: d.pvcs, lambda inv, k: inv.pvcs.get(k))
