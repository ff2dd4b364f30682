"""Is a PVC a clone, of what, how was it cloned, and how should it have been? (pure)

Input: the watch cache's objects (plain dicts, any field may be missing or of the wrong type).
Output: one CloneRecord per PVC. Nothing here raises on odd input: what cannot be read is
`unknown` or empty.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..backends.base import VolumeRef
from ..kube.objects import annotations, get, text
from ..kube.quantity import parse_bytes
from ..kube.resources import CDI, DATASOURCE, DATAVOLUME, PV, PVC, STORAGECLASS, STORAGEPROFILE, VOLUMECLONESOURCE, VOLUMESNAPSHOT
from . import kubevirt
from .strategies import CLONE_TYPES, cdi_override, expected_clone_type
from .timestamps import timestamp

ANN_CLONE_TYPE = "cdi.kubevirt.io/cloneType"
ANN_FALLBACK_REASON = "cdi.kubevirt.io/cloneFallbackReason"
ANN_CLONE_REQUEST = "k8s.io/CloneRequest"   # "namespace/name" of the source PVC (host-assisted)
ANN_CLONE_OF = "k8s.io/CloneOf"             # "true" once a host-assisted clone completed
ANN_CLONE_PHASE = "cdi.kubevirt.io/clonePhase"   # the clone populator's phase on the target PVC
ANN_RUNNING_REASON = "cdi.kubevirt.io/storage.condition.running.reason"

PVC_KIND = "PersistentVolumeClaim"
SNAPSHOT_KIND = "VolumeSnapshot"
CLONE_SOURCE_KIND = "VolumeCloneSource"
DATASOURCE_KIND = "DataSource"
VOLUME_KIND = "BackendVolume"    # a source known only from the storage (its PVC and snapshot are gone)

Objects = Mapping[str, Mapping[tuple[str, str], dict[str, Any]]]


VolumeMapper = Callable[[dict[str, Any]], VolumeRef | None]


@dataclass(frozen=True)
class CloneRecord:
    namespace: str
    name: str
    storageclass: str
    provisioner: str
    volume: str                      # PV name, "" when unbound
    volume_ref: VolumeRef | None     # where the backend knows this volume
    provisioned_bytes: int | None
    is_clone: bool
    source_kind: str = ""
    source_namespace: str = ""
    source_name: str = ""
    family_kind: str = ""            # the source the family is keyed on, after resolving
    family_namespace: str = ""       # snapshots / clone sources / DataSources to their PVC
    family_name: str = ""
    clone_type: str = ""             # csi-clone | snapshot | copy | unknown (clones only)
    expected_clone_type: str = ""
    expected_from: str = ""
    fallback_reason: str = ""
    fallback: bool = False
    complete: bool = True            # clones: CDI (or the binder) finished; False while in flight or stuck
    phase: str = ""                  # clones in flight: DataVolume phase, else clonePhase, else PVC phase
    phase_reason: str = ""           # the Running condition's reason (CDI's running-reason annotation)
    pending_since: float | None = None   # in flight: Unix time the DataVolume (else PVC) was created
    duration_seconds: float | None = None  # done DataVolumes: creation -> Ready turned True

    @property
    def backend(self) -> str:
        return self.volume_ref.backend if self.volume_ref else "none"


def _lookup(objs: Objects, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
    bucket = objs.get(resource)
    return bucket.get((namespace, name)) if bucket and name else None


def find_datavolume(objs: Objects, pvc: dict[str, Any], namespace: str, name: str) -> dict[str, Any] | None:
    """CDI names a DataVolume's PVC after it and makes the DataVolume its owner."""
    owners = get(pvc, "metadata", "ownerReferences")
    if isinstance(owners, list):
        for ref in owners:
            if get(ref, "kind") == "DataVolume" and text(get(ref, "name")):
                dv = _lookup(objs, DATAVOLUME.name, namespace, ref["name"])
                if dv is not None:
                    return dv
    return _lookup(objs, DATAVOLUME.name, namespace, name)


def _condition(obj: Any, kind: str) -> dict[str, Any] | None:
    conditions = get(obj, "status", "conditions")
    if isinstance(conditions, list):
        for c in conditions:
            if isinstance(c, dict) and c.get("type") == kind:
                return c
    return None


def clone_progress(pvc: dict[str, Any], dv: dict[str, Any] | None) -> dict[str, Any]:
    """Whether a clone is done, and if not, in which phase, why and since when; how long a done
    DataVolume took. CDI stamps the Ready condition's lastTransitionTime when the DataVolume turns
    Succeeded (pkg/controller/datavolume/conditions.go), which makes creation -> Ready the clone's
    duration. Without a DataVolume, a Bound PVC whose clonePhase (if any) is Succeeded is done."""
    if dv is not None:
        phase = text(get(dv, "status", "phase")) or "Unknown"
        running, ready = _condition(dv, "Running"), _condition(dv, "Ready")
        reason = text(get(running, "reason")) or text(get(ready, "reason"))
        created = timestamp(get(dv, "metadata", "creationTimestamp"))
        if phase != "Succeeded":
            return {"complete": False, "phase": phase, "phase_reason": reason, "pending_since": created}
        done = timestamp(get(ready, "lastTransitionTime")) if get(ready, "status") == "True" else None
        took = done - created if done is not None and created is not None and done >= created else None
        return {"duration_seconds": took}
    ann = annotations(pvc)
    clone_phase = ann.get(ANN_CLONE_PHASE, "")
    pvc_phase = text(get(pvc, "status", "phase")) or "Pending"
    if pvc_phase == "Bound" and clone_phase in ("", "Succeeded"):
        return {}
    return {"complete": False, "phase": clone_phase or pvc_phase, "phase_reason": ann.get(ANN_RUNNING_REASON, ""),
            "pending_since": timestamp(get(pvc, "metadata", "creationTimestamp"))}


def _source_from_ref(objs: Objects, ref: Any, namespace: str) -> tuple[str, str, str] | None:
    """(kind, namespace, name) from a PVC dataSource / dataSourceRef."""
    kind, name = text(get(ref, "kind")), text(get(ref, "name"))
    if not kind or not name:
        return None
    ns = text(get(ref, "namespace")) or namespace
    if kind in (PVC_KIND, SNAPSHOT_KIND):
        return kind, ns, name
    if kind == CLONE_SOURCE_KIND:
        vcs = _lookup(objs, VOLUMECLONESOURCE.name, ns, name)
        inner = get(vcs, "spec", "source")
        inner_kind, inner_name = text(get(inner, "kind")), text(get(inner, "name"))
        if inner_kind in (PVC_KIND, SNAPSHOT_KIND) and inner_name:
            return inner_kind, ns, inner_name
        return CLONE_SOURCE_KIND, ns, name
    return None     # populators of other kinds (e.g. CDI import sources) are not clones


def _source_from_datavolume(objs: Objects, dv: dict[str, Any], namespace: str) -> tuple[str, str, str] | None:
    src = get(dv, "spec", "source")
    for field, kind in (("pvc", PVC_KIND), ("snapshot", SNAPSHOT_KIND)):
        ref = get(src, field)
        if isinstance(ref, dict) and text(ref.get("name")):
            return kind, text(ref.get("namespace")) or namespace, ref["name"]
    ref = get(dv, "spec", "sourceRef")
    if text(get(ref, "kind")) == DATASOURCE_KIND and text(get(ref, "name")):
        ds_ns = text(get(ref, "namespace")) or namespace
        ds = _lookup(objs, DATASOURCE.name, ds_ns, ref["name"])
        for field, kind in (("pvc", PVC_KIND), ("snapshot", SNAPSHOT_KIND)):
            inner = get(ds, "spec", "source", field)
            if isinstance(inner, dict) and text(inner.get("name")):
                return kind, text(inner.get("namespace")) or ds_ns, inner["name"]
        return DATASOURCE_KIND, ds_ns, ref["name"]
    return None


def declared_source(objs: Objects, pvc: dict[str, Any], dv: dict[str, Any] | None, namespace: str) -> tuple[str, str, str] | None:
    if dv is not None:
        found = _source_from_datavolume(objs, dv, namespace)
        if found:
            return found
    for field in ("dataSourceRef", "dataSource"):
        found = _source_from_ref(objs, get(pvc, "spec", field), namespace)
        if found:
            return found
    request = annotations(pvc).get(ANN_CLONE_REQUEST, "")
    if "/" in request:
        ns, _, name = request.partition("/")
        if ns and name:
            return PVC_KIND, ns, name
    return None


def family_of(objs: Objects, kind: str, namespace: str, name: str) -> tuple[str, str, str]:
    """A snapshot belongs to the family of the PVC it was taken from, while that PVC exists."""
    if kind == SNAPSHOT_KIND:
        snap = _lookup(objs, VOLUMESNAPSHOT.name, namespace, name)
        pvc_name = text(get(snap, "spec", "source", "persistentVolumeClaimName"))
        if pvc_name and _lookup(objs, PVC.name, namespace, pvc_name) is not None:
            return PVC_KIND, namespace, pvc_name
    return kind, namespace, name


def provisioned_bytes(pvc: dict[str, Any], pv: dict[str, Any] | None) -> int | None:
    for value in (get(pv, "spec", "capacity", "storage"), get(pvc, "status", "capacity", "storage"),
                  get(pvc, "spec", "resources", "requests", "storage")):
        parsed = parse_bytes(value)
        if parsed is not None:
            return parsed
    return None


def _clone_type(pvc: dict[str, Any], pvc_ann: dict[str, str], dv_ann: dict[str, str], kind: str,
                cdi_involved: bool) -> str:
    raw_type = pvc_ann.get(ANN_CLONE_TYPE) or dv_ann.get(ANN_CLONE_TYPE)
    if raw_type is None and not cdi_involved and get(pvc, "status", "phase") == "Bound":
        # A plain PVC with a dataSource is cloned by the CSI driver itself (no CDI in between).
        return {PVC_KIND: "csi-clone", SNAPSHOT_KIND: "snapshot"}.get(kind, "unknown")
    return raw_type if raw_type in CLONE_TYPES else "unknown"


def classify(objs: Objects, pvc: dict[str, Any], mapper: VolumeMapper) -> CloneRecord:
    namespace = text(get(pvc, "metadata", "namespace"))
    name = text(get(pvc, "metadata", "name"))
    pv_name = text(get(pvc, "spec", "volumeName"))
    pv = _lookup(objs, PV.name, "", pv_name)
    sc_name = text(get(pvc, "spec", "storageClassName")) or text(get(pv, "spec", "storageClassName"))
    sc = _lookup(objs, STORAGECLASS.name, "", sc_name)
    provisioner = (text(get(sc, "provisioner")) or text(get(pv, "spec", "csi", "driver"))
                   or annotations(pvc).get("volume.kubernetes.io/storage-provisioner", ""))
    volume_ref = None
    if pv is not None:
        try:
            volume_ref = mapper(pv)
        except Exception:     # a mapper must never take the whole inventory down
            volume_ref = None
    volume = pv_name if pv is not None else ""
    size = provisioned_bytes(pvc, pv)

    dv = find_datavolume(objs, pvc, namespace, name)
    pvc_ann, dv_ann = annotations(pvc), annotations(dv)
    # KubeVirt restored this PVC from a VolumeSnapshot (a VM clone): the DataVolume that adopted it
    # cloned nothing, whatever its source names, so the PVC speaks for itself.
    restored = kubevirt.restored(pvc_ann, dv_ann)
    if restored:
        dv, dv_ann = None, {}
    source = declared_source(objs, pvc, dv, namespace)
    if source is None:
        return CloneRecord(namespace=namespace, name=name, storageclass=sc_name, provisioner=provisioner,
                           volume=volume, volume_ref=volume_ref, provisioned_bytes=size, is_clone=False)
    kind = source[0]
    if restored and kind == SNAPSHOT_KIND:
        # Its VolumeSnapshot goes with the VM snapshot: then name what the snapshot was taken of.
        source = kubevirt.restored_source(objs, pvc, source[1], source[2]) or source
    _, src_ns, src_name = source
    fam_kind, fam_ns, fam_name = family_of(objs, *source)

    cdi_involved = not restored and (dv is not None or any(k.startswith("cdi.kubevirt.io/") for k in pvc_ann)
                                     or kind == CLONE_SOURCE_KIND)
    clone_type = _clone_type(pvc, pvc_ann, dv_ann, kind, cdi_involved)
    reason = pvc_ann.get(ANN_FALLBACK_REASON) or dv_ann.get(ANN_FALLBACK_REASON) or ""

    if kind == SNAPSHOT_KIND:
        # Restoring a snapshot is what CDI does for snapshot sources on the same driver.
        expected, expected_from = "snapshot", "source-kind"
    else:
        profile = _lookup(objs, STORAGEPROFILE.name, "", sc_name)
        # The CDI override governs CDI's clones only; a CSI clone without CDI is the driver's own.
        override = cdi_override((objs.get(CDI.name) or {}).values()) if cdi_involved else None
        expected, expected_from = expected_clone_type(
            provisioner, annotations(sc), get(profile, "status", "cloneStrategy"), override)
    fallback = bool(reason) or (clone_type == "copy" and expected in ("csi-clone", "snapshot"))
    # Built in one call: dataclasses.replace costs a third of the classification at 10k PVCs.
    return CloneRecord(namespace=namespace, name=name, storageclass=sc_name, provisioner=provisioner,
                       volume=volume, volume_ref=volume_ref, provisioned_bytes=size, is_clone=True,
                       source_kind=source[0], source_namespace=src_ns, source_name=src_name,
                       family_kind=fam_kind, family_namespace=fam_ns, family_name=fam_name,
                       clone_type=clone_type, expected_clone_type=expected, expected_from=expected_from,
                       fallback_reason=reason, fallback=fallback, **clone_progress(pvc, dv))


def classify_all(objs: Objects, mapper: VolumeMapper) -> dict[tuple[str, str], CloneRecord]:
    out: dict[tuple[str, str], CloneRecord] = {}
    for key, pvc in (objs.get(PVC.name) or {}).items():
        out[key] = classify(objs, pvc, mapper)
    return out
