"""The watch cache: slimmed objects by resource and (namespace, name), kept packed (`packed`).

Mutated only on the event loop thread (watch threads hand batches over with
call_soon_threadsafe), read by the rebuild task. Every change bumps `generation`
so the rebuild knows whether there is anything new to render, and is noted by key so
the rebuild re-derives only what it touches (`take_changes`). Objects are replaced, never
mutated in place: the rebuild thread may hold on to the ones it was handed.
"""

import asyncio
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .objects import get
from .packed import Packed, PackedBucket, pack, same
from .resources import (
    ALL,
    CDI,
    DATASOURCE,
    DATAVOLUME,
    PV,
    PVC,
    STORAGECLASS,
    STORAGEPROFILE,
    VIRTUALMACHINE,
    VMCLONE,
    VMRESTORE,
    VMSNAPSHOT,
    VMSNAPSHOTCONTENT,
    VOLUMECLONESOURCE,
    VOLUMESNAPSHOT,
    VOLUMESNAPSHOTCONTENT,
    Resource,
)

Key = tuple[str, str]   # (namespace or "", name)
Scope = tuple[str, str]     # a watch: (resource name, namespace or "" for cluster-wide or all namespaces)

# What classification and the backends read, per resource: top-level key -> kept sub-keys (None =
# all of it). Everything else (managedFields, labels, most of status) is dropped on arrival, which
# keeps 10k PVCs, PVs and DataVolumes small in memory.
Keep = tuple[str, ...] | dict[str, Any] | None   # what `_kept` keeps of a value
KEEP: dict[str, dict[str, Keep]] = {
    PVC.name: {"spec": ("volumeName", "storageClassName", "dataSource", "dataSourceRef", "resources", "volumeMode"),
               "status": ("phase", "capacity")},
    PV.name: {"spec": ("capacity", "storageClassName", "csi"), "status": ("phase",)},
    STORAGECLASS.name: {"provisioner": None, "parameters": None},
    DATAVOLUME.name: {"spec": ("source", "sourceRef"), "status": ("phase", "conditions")},
    STORAGEPROFILE.name: {"status": ("cloneStrategy",)},
    DATASOURCE.name: {"spec": ("source",)},
    VOLUMECLONESOURCE.name: {"spec": ("source",)},
    VOLUMESNAPSHOT.name: {"spec": ("source",), "status": ("boundVolumeSnapshotContentName", "readyToUse")},
    VOLUMESNAPSHOTCONTENT.name: {"spec": ("driver", "source"), "status": ("snapshotHandle",)},
    CDI.name: {"spec": ("cloneStrategyOverride",), "status": ("phase",)},
    # KubeVirt: of a VM its volumes and DataVolume templates by name (of a volume of another kind,
    # containerDisk, cloudInitNoCloud..., only its kind); of a content its backups by name.
    VIRTUALMACHINE.name: {"spec": {"template": {"spec": {"volumes": {
        "name": None, "dataVolume": ("name",), "persistentVolumeClaim": ("claimName",), "memoryDump": ("claimName",),
        "*": ()}}}, "dataVolumeTemplates": {"metadata": ("name",)}}},
    VMCLONE.name: {"spec": ("source", "target"), "status": ("phase", "conditions", "targetName")},
    VMSNAPSHOT.name: {"spec": ("source",)},
    VMSNAPSHOTCONTENT.name: {"spec": {"volumeBackups": {"volumeName": None, "volumeSnapshotName": None,
                                                        "persistentVolumeClaim": {"metadata": ("name",)}}}},
    VMRESTORE.name: {"spec": ("target", "virtualMachineSnapshotName")},
}
ANNOTATIONS_READ = ("cdi.kubevirt.io/cloneType", "cdi.kubevirt.io/cloneFallbackReason", "cdi.kubevirt.io/clone-strategy",
                    "cdi.kubevirt.io/clonePhase", "cdi.kubevirt.io/storage.condition.running.reason",
                    "k8s.io/CloneRequest", "k8s.io/CloneOf", "volume.kubernetes.io/storage-provisioner",
                    "cdi.kubevirt.io/storage.prePopulated", "restore.kubevirt.io/name", "restore.kubevirt.io/lastRestoreUID")
# Labels are dropped but for these: KubeVirt's restore marks a restored PVC with the VM it came from.
LABELS_READ = ("restore.kubevirt.io/source-vm-name", "restore.kubevirt.io/source-vm-namespace")
CONDITION_KEYS = ("type", "status", "reason", "lastTransitionTime")     # messages and heartbeats are dropped
# What the backends read of a PV's spec.csi (rbd.map_pv, flashsystem.map_pv, vpc.map_pv): ceph-csi
# alone writes a dozen volumeAttributes per PV, most of which nothing here reads.
CSI_KEYS = ("driver", "volumeHandle")
VOLUME_ATTRIBUTES = ("pool", "imageName", "radosNamespace", "clusterID", "staticVolume", "array_address")
CDI_PREFIX = "cdi.kubevirt.io/"


def _slim_annotations(ann: Any) -> dict[str, Any] | None:
    if not isinstance(ann, dict):
        return ann      # type: ignore[no-any-return]  # odd types stay odd: classification copes
    out = {k: ann[k] for k in ANNOTATIONS_READ if k in ann}
    if not any(k.startswith(CDI_PREFIX) for k in out):
        # Whether CDI touched the object matters, not which of its many annotations it wrote.
        first = next((k for k in ann if isinstance(k, str) and k.startswith(CDI_PREFIX)), None)
        if first is not None:
            out[first] = ann[first]
    return out


def _kept(value: Any, keep: Keep) -> Any:
    """`value` trimmed to `keep`: None keeps all of it; a tuple those keys of an object; a dict those
    keys each trimmed by its own (any other key kept as {} under "*"), of an object or of each object
    of a list. Odd types stay odd (classification copes)."""
    if isinstance(keep, dict) and isinstance(value, list):
        return [_kept(v, keep) for v in value if isinstance(v, dict)]
    if keep is None or not isinstance(value, dict):
        return value
    if isinstance(keep, tuple):
        return {k: value[k] for k in keep if k in value} if keep else value
    return {k: _kept(v, keep[k]) if k in keep else {} for k, v in value.items() if k in keep or "*" in keep}


def slim(obj: Any, resource: str | None = None) -> dict[str, Any] | None:
    """The parts of an object classification reads; None for something that is not an object."""
    if not isinstance(obj, dict):
        return None
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return None
    keep = KEEP.get(resource or "")
    if keep is None:
        out = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    else:
        out = {top: _kept(obj[top], subs) for top, subs in keep.items() if top in obj}
    csi = get(out, "spec", "csi")
    if isinstance(csi, dict):
        slim_csi = {k: csi[k] for k in CSI_KEYS if k in csi}
        attrs = csi.get("volumeAttributes")
        if "volumeAttributes" in csi:
            slim_csi["volumeAttributes"] = {k: attrs[k] for k in VOLUME_ATTRIBUTES if k in attrs} \
                if isinstance(attrs, dict) else attrs
        out["spec"] = {**out["spec"], "csi": slim_csi}
    status = out.get("status")
    if isinstance(status, dict) and isinstance(status.get("conditions"), list):
        out["status"] = {**status, "conditions": [{k: c[k] for k in CONDITION_KEYS if k in c} if isinstance(c, dict)
                                                  else c for c in status["conditions"]]}
    slim_meta = {"name": meta["name"]}
    for kept in ("namespace", "creationTimestamp"):
        if kept in meta:
            slim_meta[kept] = meta[kept]
    if resource == PVC.name and "uid" in meta:
        # A CSI driver's records name a volume after the PV it is made for, pvc-<PVC uid>: how a volume
        # whose PV is not there yet is told from a leaked one (inventory/unclaimed.py).
        slim_meta["uid"] = meta["uid"]
    if "annotations" in meta:
        slim_meta["annotations"] = _slim_annotations(meta["annotations"])
    labels = meta.get("labels")
    if isinstance(labels, dict) and any(k in labels for k in LABELS_READ):
        slim_meta["labels"] = {k: labels[k] for k in LABELS_READ if k in labels}
    owners = meta.get("ownerReferences")
    if isinstance(owners, list):
        slim_meta["ownerReferences"] = [{"kind": o.get("kind"), "name": o.get("name")} if isinstance(o, dict) else o
                                        for o in owners]
    elif owners is not None:
        slim_meta["ownerReferences"] = owners
    out["metadata"] = slim_meta
    shared: dict[str, Any] = _shared(out)
    return shared


def _shared(value: Any) -> Any:
    """The same value with its strings interned: each parsed object brings its own copy of every key
    and of "Bound", "True", "vms"...; shared, 10,000 PVCs + PVs + DataVolumes take a third less."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        return {sys.intern(k) if isinstance(k, str) else k: _shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shared(v) for v in value]
    return value


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return (ns if isinstance(ns, str) else "", meta["name"])


def pack_items(resource: str, items: Iterable[Any]) -> tuple[dict[Key, Packed], int]:
    """A list's items slimmed and packed by key, and how many were not objects. Pure: any thread."""
    fresh: dict[Key, Packed] = {}
    dropped = 0
    for item in items:
        obj = slim(item, resource)
        if obj is None:
            dropped += 1
            continue
        fresh[key_of(obj)] = pack(obj)
    return fresh, dropped


def pack_events(resource: str, events: Iterable[tuple[str, Any]]) -> tuple[list[tuple[str, Key, Packed]], int]:
    """Watch events as (type, key, packed object), and how many were malformed. Pure: any thread."""
    out: list[tuple[str, Key, Packed]] = []
    bad = 0
    for kind, raw in events:
        obj = slim(raw, resource)
        if obj is None or kind not in ("ADDED", "MODIFIED", "DELETED"):
            bad += 1
            continue
        out.append((kind, key_of(obj), pack(obj)))
    return out, bad


@dataclass
class WatchState:
    """One watch's health: a resource in one namespace, or cluster-wide (namespace "")."""
    listed: bool = False        # its first full list is in the store (readiness waits for every one)
    healthy: bool = False       # its last list or watch worked
    restarts: int = 0
    errors: int = 0


class Store:
    def __init__(self, resources: Iterable[Resource] = ALL, namespaces: Sequence[str] = ()) -> None:
        """namespaces: the ones namespaced resources are watched in; none = all, in one watch each."""
        self.resources = tuple(resources)
        self.objects: dict[str, PackedBucket] = {r.name: PackedBucket() for r in self.resources}
        self.present: dict[str, bool] = {r.name: False for r in self.resources}
        # One watch per (resource, namespace): the scopes the watchers are started for.
        self.watches: dict[Scope, WatchState] = {
            (r.name, ns): WatchState() for r in self.resources for ns in (namespaces if r.namespaced and namespaces else ("",))}
        self.generation = 0
        self.changed = asyncio.Event()
        self._changes: dict[str, set[Key]] = {r.name: set() for r in self.resources}

    def scopes(self, resource: str) -> list[Scope]:
        return [scope for scope in self.watches if scope[0] == resource]

    def watch(self, resource: str, namespace: str | None = None) -> WatchState:
        """A watch's state; without a namespace, every watch of the resource summed up (listed and
        healthy only when all are)."""
        if namespace is not None:
            return self.watches[(resource, namespace)]
        states = [self.watches[scope] for scope in self.scopes(resource)]
        return WatchState(all(w.listed for w in states), all(w.healthy for w in states),
                          sum(w.restarts for w in states), sum(w.errors for w in states))

    def take_changes(self) -> dict[tuple[str, Key], Packed | None]:
        """What changed since the last call: (resource, key) -> the object now (packed), None if gone."""
        out: dict[tuple[str, Key], Packed | None] = {}
        for resource, keys in self._changes.items():
            bucket = self.objects[resource].raw
            for key in keys:
                out[(resource, key)] = bucket.get(key)
            keys.clear()
        return out

    def _bump(self) -> None:
        self.generation += 1
        self.changed.set()

    def _listed(self, resource: str, namespace: str | None) -> bool:
        """Mark a watch listed; True the first time, which is a change to what the metrics cover
        (readiness) even when the list changed no object."""
        state = self.watches[(resource, namespace or "")]
        first, state.listed = not state.listed, True
        return first

    def replace(self, resource: str, namespace: str | None, items: Iterable[Any]) -> int:
        """A full list result: the truth for that resource (and namespace, if filtered).

        Returns how many items were not objects and were dropped.
        """
        fresh, dropped = pack_items(resource, items)
        self.replace_packed(resource, namespace, fresh)
        return dropped

    def replace_packed(self, resource: str, namespace: str | None, fresh: dict[Key, Packed]) -> None:
        """`replace` of items already packed by `pack_items` (the watch thread packs each page as it
        arrives, so a 10k-object list never sits in memory as parsed JSON)."""
        bucket = self.objects[resource].raw
        old = bucket if namespace is None else {k: v for k, v in bucket.items() if k[0] == namespace}
        first = self._listed(resource, namespace) or not self.present[resource]
        if fresh != old:
            gone = old.keys() - fresh.keys()
            changed = gone | {k for k, v in fresh.items() if not same(old.get(k), v)}
            if changed:
                for k in gone:
                    del bucket[k]
                bucket.update((k, fresh[k]) for k in changed - gone)
                self._changes[resource].update(changed)
                first = True
        self.present[resource] = True
        if first:
            self._bump()

    def apply(self, resource: str, events: Iterable[tuple[str, Any]]) -> int:
        """Watch events (type, object). Returns how many could not be applied."""
        packed, bad = pack_events(resource, events)
        self.apply_packed(resource, packed)
        return bad

    def apply_packed(self, resource: str, events: Iterable[tuple[str, Key, Packed]]) -> None:
        """Events packed by `pack_events`. Only a change to what we keep counts as a change: a status
        heartbeat or a replayed ADDED of an object we already hold does not trigger a rebuild."""
        bucket = self.objects[resource].raw
        changed = False
        for kind, key, raw in events:
            if kind == "DELETED":
                if bucket.pop(key, None) is not None:
                    self._changes[resource].add(key)
                    changed = True
            elif not same(bucket.get(key), raw):
                bucket[key] = raw
                self._changes[resource].add(key)
                changed = True
        if changed:
            self._bump()

    def mark_absent(self, resource: str, namespace: str | None = None) -> None:
        """An optional CRD is not installed: nothing of it exists, and that is a complete answer."""
        had = bool(self.objects[resource]) or self.present[resource]
        self._changes[resource].update(self.objects[resource])
        self.objects[resource].raw.clear()
        self.present[resource] = False
        if self._listed(resource, namespace) or had:
            self._bump()

    def set_healthy(self, resource: str, namespace: str | None, ok: bool) -> None:
        self.watches[(resource, namespace or "")].healthy = ok

    def count_restart(self, resource: str, namespace: str | None = None) -> None:
        self.watches[(resource, namespace or "")].restarts += 1

    def count_error(self, resource: str, namespace: str | None = None) -> None:
        self.watches[(resource, namespace or "")].errors += 1

    @property
    def ready(self) -> bool:
        """Every watch has listed."""
        return all(w.listed for w in self.watches.values())

    def unlisted(self) -> list[Scope]:
        return [scope for scope, w in self.watches.items() if not w.listed]

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj: dict[str, Any] | None = self.objects[resource].get((namespace, name))
        return obj

    def items(self, resource: str) -> PackedBucket:
        """key -> object; each read unpacks a fresh copy."""
        return self.objects[resource]
