"""KubeVirt's VM clone acted out: the objects its clone, snapshot and restore controllers write, shaped
as they write them, in their order (kubevirt/kubevirt pkg/virt-controller/watch/clone/clone.go,
pkg/storage/snapshot/{snapshot,restore}.go; docs/field-facts.md, KubeVirt), with the CSI driver's
sequences under them (ceph-csi's on a real pool, tests/support/cephcsi.py, or `FakeCsi`'s volumes).

`CloneController(world, csi, pool)` writes through a `world`: the Kubernetes emulator (`ApiWorld`, the
exporter watching it) or a watch cache (`StoreWorld`, unit tests). One VirtualMachineClone goes:
  requested    the clone as the user made it (the webhook filled in the target's name)
  snapshot     phase SnapshotInProgress; tmp-snapshot-<clone UID>; per disk a VolumeSnapshot
               vmsnapshot-<snapshot UID>-volume-<volume> (CSI CreateSnapshot); the content; ready
  restore      phase RestoreInProgress; tmp-restore-<clone UID>; per disk a PVC restore-<restore UID>-<volume>
               from its VolumeSnapshot (CSI CreateVolume), bound; the target VM (annotated with the
               restore); the restore complete
  datavolumes  per DataVolume template a pre-populated DataVolume naming the golden, adopted by CDI
  succeeded    phase CreatingTargetVM, then Succeeded
  cleaned_up   the restore and the snapshot deleted, the content with the snapshot, each VolumeSnapshot
               by garbage collection (CSI DeleteSnapshot: the snapshot image goes to the trash)
"""

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from exporter.backends.base import Volume
from tests.support.inventory import RESOURCE_OF_KIND as RESOURCE
from tests.support.objects import CDI, ODF_RBD, pv_rbd

KUBEVIRT = "kubevirt.io/v1"
CLONE = "clone.kubevirt.io/v1beta1"
SNAPSHOT = "snapshot.kubevirt.io/v1beta1"
SNAPSHOT_CLASS = "ocs-storagecluster-rbdplugin-snapclass"
NOW = "2026-11-30T10:00:00Z"
# restore.go restoreAnnotationsToDelete: what a restored PVC does not inherit (contentType excepted)
STRIPPED = ("pv.kubernetes.io", "volume.beta.kubernetes.io", "cdi.kubevirt.io", "volume.kubernetes.io",
            "k8s.io/CloneRequest", "k8s.io/CloneOf")
CONTENT_TYPE = "cdi.kubevirt.io/storage.contentType"


# -- objects ----------------------------------------------------------------------------------------
def volume(name: str, **source: Any) -> dict:
    """A VM volume: volume("rootdisk", dataVolume={"name": "vm-rootdisk"})."""
    return {"name": name, **source}


def virtual_machine(namespace: str, name: str, volumes: list[dict], templates: list[dict] | None = None,
                    annotations: dict | None = None, uid: str | None = None) -> dict:
    """A VM as its owner writes it and virt-controller's status shows it (stopped, every PVC/DV volume
    snapshot-able: the clone controller's precondition)."""
    disks = [{"name": v["name"], "disk": {"bus": "virtio"}} for v in volumes]
    meta = {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4()), "creationTimestamp": NOW,
            "annotations": annotations or {}, "labels": {"app": name}}
    return {"apiVersion": KUBEVIRT, "kind": "VirtualMachine", "metadata": meta,
            "spec": {"runStrategy": "Halted", "dataVolumeTemplates": templates or [],
                     "template": {"metadata": {"labels": {"kubevirt.io/vm": name}},
                                  "spec": {"domain": {"cpu": {"cores": 1}, "memory": {"guest": "1Gi"},
                                                      "firmware": {"uuid": str(uuid.uuid4()), "serial": str(uuid.uuid4())},
                                                      "devices": {"disks": disks, "interfaces": [
                                                          {"name": "default", "masquerade": {},
                                                           "macAddress": "02:a1:b2:c3:d4:e5"}]}},
                                           "networks": [{"name": "default", "pod": {}}], "volumes": volumes}}},
            "status": {"printableStatus": "Stopped", "created": False, "ready": False,
                       "volumeSnapshotStatuses": [{"name": v["name"], "enabled": True} for v in volumes
                                                  if "dataVolume" in v or "persistentVolumeClaim" in v]}}


def template(name: str, source: dict, storageclass: str, size: str = "64Mi") -> dict:
    """A VM's dataVolumeTemplates entry: source {"sourceRef": {...}} or {"source": {"pvc": {...}}}."""
    return {"metadata": {"name": name},
            "spec": {**source, "storage": {"resources": {"requests": {"storage": size}}, "storageClassName": storageclass}}}


def vm_clone(namespace: str, name: str, source: str, target: str, uid: str | None = None,
             source_kind: str = "VirtualMachine") -> dict:
    """A VirtualMachineClone as created (the mutating webhook filled spec.target)."""
    group = "kubevirt.io" if source_kind == "VirtualMachine" else "snapshot.kubevirt.io"
    return {"apiVersion": CLONE, "kind": "VirtualMachineClone",
            "metadata": {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4()), "creationTimestamp": NOW},
            "spec": {"source": {"apiGroup": group, "kind": source_kind, "name": source},
                     "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": target}}}


def clone_conditions(progressing: tuple[str, str], ready: tuple[str, str], at: str = NOW) -> list[dict]:
    return [{"type": "Progressing", "status": progressing[0], "reason": progressing[1], "lastTransitionTime": at,
             "lastProbeTime": None},
            {"type": "Ready", "status": ready[0], "reason": ready[1], "lastTransitionTime": at, "lastProbeTime": None}]


def pending_status(reason: str) -> dict:
    """What updateStatus writes for a clone it cannot start (isClonePending): no phase."""
    return {"conditions": clone_conditions(("False", "Pending"), ("False", reason))}


def failed_status(reason: str) -> dict:
    return {"phase": "Failed", "conditions": clone_conditions(("False", "Failed"), ("False", reason))}


def owner(api_version: str, kind: str, name: str, uid: str) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True,
            "blockOwnerDeletion": True}


# -- the worlds the controller writes to ------------------------------------------------------------
class World(Protocol):
    def create(self, obj: dict) -> None: ...
    def patch(self, kind: str, namespace: str, name: str, patch: dict) -> None: ...
    def delete(self, kind: str, namespace: str, name: str, finalized: bool = False) -> None:
        """finalized: the object holds its controller's finalizer, which the controller then removes."""


def merged(obj: dict, patch: dict) -> dict:
    """A JSON merge patch (RFC 7386), as the API server applies one: None deletes."""
    out = copy.deepcopy(obj)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class StoreWorld:
    """Straight into a watch cache (exporter.kube.store.Store), as its watches would deliver it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.objects: dict[tuple[str, str, str], dict] = {}

    def create(self, obj: dict) -> None:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self.objects[key] = copy.deepcopy(obj)
        self.store.apply(RESOURCE[obj["kind"]], [("ADDED", obj)])

    def patch(self, kind: str, namespace: str, name: str, patch: dict) -> None:
        obj = self.objects[(kind, namespace, name)] = merged(self.objects[(kind, namespace, name)], patch)
        self.store.apply(RESOURCE[kind], [("MODIFIED", obj)])

    def delete(self, kind: str, namespace: str, name: str, finalized: bool = False) -> None:
        obj = self.objects.pop((kind, namespace, name))
        self.store.apply(RESOURCE[kind], [("DELETED", obj)])


class ApiWorld:
    """Through the Kubernetes emulator (tests/support/kube.py KubeAPI), finalizers and all: a delete
    marks the object, the controller that holds the finalizer lets it go."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube

    def create(self, obj: dict) -> None:
        self.kube.create(obj)

    def patch(self, kind: str, namespace: str, name: str, patch: dict) -> None:
        self.kube.patch(kind, name, namespace, patch)

    def delete(self, kind: str, namespace: str, name: str, finalized: bool = False) -> None:
        self.kube.delete(kind, name, namespace or None)
        if finalized:       # marked for deletion; its controller lets go
            self.kube.patch(kind, name, namespace, {"metadata": {"finalizers": None}})


# -- storage ------------------------------------------------------------------------------------------
class FakeCsi:
    """ceph-csi's RBD layout as volumes (what librbd would report), without Ceph: a snapshot is an
    image csi-snap-<uuid> cloned from the source (a chain link), a restore a clone of it, a deleted
    snapshot's image goes to the trash while restores read through it."""

    def __init__(self, pool: str = "p") -> None:
        self.pool = pool
        self.volumes: dict[str, Volume] = {}

    def vid(self, image: str) -> str:
        return f"{self.pool}/{image}"

    def add(self, image: str, mib: int, parent: str = "", link: bool = False) -> str:
        self.volumes[self.vid(image)] = Volume(self.vid(image), self.pool, mib << 20, 64 << 20,
                                               self.vid(parent) if parent else "", "snap" if parent else "", link=link)
        return image

    def create_volume(self, mib_written: int) -> str:
        return self.add(f"csi-vol-{uuid.uuid4()}", mib_written)

    def clone_volume(self, source_image: str, mib_written: int) -> str:
        uid = uuid.uuid4()
        temp = self.add(f"csi-vol-{uid}-temp", 0, source_image, link=True)
        return self.add(f"csi-vol-{uid}", mib_written, temp)

    def snapshot(self, source_image: str) -> str:
        uid = str(uuid.uuid4())
        self.add(f"csi-snap-{uid}", 0, source_image, link=True)
        return uid

    def restore(self, snapshot_uid: str, mib_written: int = 0) -> str:
        return self.add(f"csi-vol-{uuid.uuid4()}", mib_written, f"csi-snap-{snapshot_uid}")

    def delete_snapshot(self, snapshot_uid: str) -> None:
        vid = self.vid(f"csi-snap-{snapshot_uid}")
        old = self.volumes[vid]
        self.volumes[vid] = Volume(old.volume, old.target, old.consumed_bytes, old.provisioned_bytes, old.parent,
                                   old.parent_snapshot, link=True, trashed=True)

    def handle(self, uid: str) -> str:
        return f"0001-0011-openshift-storage-0000000000000001-{uid}"


# -- the controller --------------------------------------------------------------------------------
@dataclass
class Disk:
    """A source VM's disk: its volume, PVC (an object as the cluster holds it) and image."""
    volume: str
    pvc: dict
    image: str
    datavolume: bool = False        # a dataVolume volume with a template (else a persistentVolumeClaim one)


@dataclass
class Clone:
    """What one VirtualMachineClone made, for the tests to look at."""
    name: str
    uid: str
    target: str
    snapshot: str = ""
    snapshot_uid: str = ""
    restore: str = ""
    restore_uid: str = ""
    snapshot_ids: dict[str, str] = field(default_factory=dict)     # volume -> CSI snapshot uuid
    volume_snapshots: dict[str, str] = field(default_factory=dict)  # volume -> VolumeSnapshot name
    contents: dict[str, str] = field(default_factory=dict)         # volume -> its VolumeSnapshotContent
    pvcs: dict[str, str] = field(default_factory=dict)             # volume -> restored PVC name
    images: dict[str, str] = field(default_factory=dict)           # volume -> restored image


class CloneController:
    def __init__(self, world: World, csi: Any, pool: str, storageclass: str) -> None:
        self.world, self.csi, self.pool, self.storageclass = world, csi, pool, storageclass

    def requested(self, namespace: str, name: str, source: str, target: str) -> Clone:
        clone = Clone(name, str(uuid.uuid4()), target)
        self.world.create(vm_clone(namespace, name, source, target, clone.uid))
        return clone

    def snapshot(self, clone: Clone, vm: dict, disks: list[Disk]) -> None:
        """The clone's first sync, then the snapshot controller's work, until the snapshot is ready."""
        ns, src = vm["metadata"]["namespace"], vm["metadata"]["name"]
        clone.snapshot, clone.snapshot_uid = f"tmp-snapshot-{clone.uid}", str(uuid.uuid4())
        cloned_by = owner(CLONE, "VirtualMachineClone", clone.name, clone.uid)
        self.world.create({"apiVersion": SNAPSHOT, "kind": "VirtualMachineSnapshot",
                           "metadata": {"name": clone.snapshot, "namespace": ns, "uid": clone.snapshot_uid,
                                        "ownerReferences": [cloned_by],
                                        "finalizers": ["snapshot.kubevirt.io/vmsnapshot-protection"]},
                           "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": src}}})
        self.world.patch("VirtualMachineClone", ns, clone.name, {"status": {
            "phase": "SnapshotInProgress", "snapshotName": clone.snapshot,
            "conditions": clone_conditions(("True", "Still processing"), ("False", "Still processing"))}})
        content = f"vmsnapshot-content-{clone.snapshot_uid}"
        content_uid = str(uuid.uuid4())
        backups = []
        for disk in disks:
            name = f"vmsnapshot-{clone.snapshot_uid}-volume-{disk.volume}"
            clone.volume_snapshots[disk.volume] = name
            meta = {k: v for k, v in disk.pvc["metadata"].items() if k != "managedFields"}
            backups.append({"volumeName": disk.volume, "volumeSnapshotName": name,
                            "persistentVolumeClaim": {"metadata": meta, "spec": disk.pvc["spec"]}})
        self.world.create({"apiVersion": SNAPSHOT, "kind": "VirtualMachineSnapshotContent",
                           "metadata": {"name": content, "namespace": ns, "uid": content_uid,
                                        "finalizers": ["snapshot.kubevirt.io/vmsnapshotcontent-protection"]},
                           "spec": {"virtualMachineSnapshotName": clone.snapshot,
                                    "source": {"virtualMachine": {"metadata": {k: vm["metadata"][k] for k in (
                                        "name", "namespace", "uid", "labels", "annotations")},
                                        "spec": vm["spec"], "status": {}}},
                                    "volumeBackups": backups}})
        for disk in disks:
            uid = clone.snapshot_ids[disk.volume] = self.csi.snapshot(disk.image)
            clone.contents[disk.volume] = self._volume_snapshot(ns, clone.volume_snapshots[disk.volume], disk, content,
                                                                content_uid, src, uid)
        self.world.patch("VirtualMachineSnapshotContent", ns, content, {"status": {
            "creationTime": NOW, "readyToUse": True,
            "volumeSnapshotStatus": [{"volumeSnapshotName": n, "creationTime": NOW, "readyToUse": True}
                                     for n in clone.volume_snapshots.values()]}})
        self.world.patch("VirtualMachineSnapshot", ns, clone.snapshot, {"status": {
            "sourceUID": vm["metadata"]["uid"], "virtualMachineSnapshotContentName": content, "creationTime": NOW,
            "phase": "Succeeded", "readyToUse": True,
            "snapshotVolumes": {"includedVolumes": [d.volume for d in disks]},
            "conditions": [{"type": "Progressing", "status": "False", "reason": "Operation complete"},
                           {"type": "Ready", "status": "True", "reason": "Operation complete"}]}})

    def _volume_snapshot(self, ns: str, name: str, disk: Disk, content: str, content_uid: str, src: str,
                         csi_uid: str) -> str:
        vs_uid = str(uuid.uuid4())
        bound = f"snapcontent-{vs_uid}"
        self.world.create({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                           "metadata": {"name": name, "namespace": ns, "uid": vs_uid,
                                        "labels": {"snapshot.kubevirt.io/source-vm-name": src,
                                                   "snapshot.kubevirt.io/source-vm-namespace": ns},
                                        "ownerReferences": [owner(SNAPSHOT, "VirtualMachineSnapshotContent", content,
                                                                  content_uid)]},
                           "spec": {"source": {"persistentVolumeClaimName": disk.pvc["metadata"]["name"]},
                                    "volumeSnapshotClassName": SNAPSHOT_CLASS}})
        self.world.create({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
                           "metadata": {"name": bound},
                           "spec": {"driver": ODF_RBD, "deletionPolicy": "Delete",
                                    "source": {"volumeHandle": self.csi.handle(str(uuid.uuid4()))},
                                    "volumeSnapshotClassName": SNAPSHOT_CLASS,
                                    "volumeSnapshotRef": {"kind": "VolumeSnapshot", "name": name, "namespace": ns,
                                                          "uid": vs_uid}},
                           "status": {"snapshotHandle": self.csi.handle(csi_uid), "readyToUse": True,
                                      "restoreSize": 64 * 2**20}})
        self.world.patch("VolumeSnapshot", ns, name, {"status": {
            "boundVolumeSnapshotContentName": bound, "readyToUse": True, "restoreSize": "64Mi", "creationTime": NOW}})
        return bound

    def restore(self, clone: Clone, vm: dict, disks: list[Disk], mib_written: dict[str, int] | None = None) -> dict:
        """Phase RestoreInProgress, then the restore controller's work; answers the target VM."""
        ns, src = vm["metadata"]["namespace"], vm["metadata"]["name"]
        clone.restore, clone.restore_uid = f"tmp-restore-{clone.uid}", str(uuid.uuid4())
        self.world.patch("VirtualMachineClone", ns, clone.name, {"status": {"phase": "RestoreInProgress"}})
        self.world.create({"apiVersion": SNAPSHOT, "kind": "VirtualMachineRestore",
                           "metadata": {"name": clone.restore, "namespace": ns, "uid": clone.restore_uid,
                                        "ownerReferences": [owner(CLONE, "VirtualMachineClone", clone.name, clone.uid)],
                                        "finalizers": ["snapshot.kubevirt.io/vmrestore-protection"]},
                           "spec": {"target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": clone.target},
                                    "virtualMachineSnapshotName": clone.snapshot,
                                    "patches": ['{"op": "replace", "path": "/spec/template/spec/domain/devices/'
                                                'interfaces/0/macAddress", "value": ""}']}})
        self.world.patch("VirtualMachineClone", ns, clone.name, {"status": {"restoreName": clone.restore}})
        last = f"{clone.restore}-{clone.restore_uid}"
        restores = []
        for disk in disks:
            name = clone.pvcs[disk.volume] = f"restore-{clone.restore_uid}-{disk.volume}"
            image = clone.images[disk.volume] = self.csi.restore(clone.snapshot_ids[disk.volume],
                                                                  (mib_written or {}).get(disk.volume, 0))
            self._restored_pvc(ns, name, disk, clone.volume_snapshots[disk.volume], clone.restore, last, src, image)
            restores.append({"volumeName": disk.volume, "persistentVolumeClaim": name,
                             "volumeSnapshotName": clone.volume_snapshots[disk.volume],
                             **({"dataVolumeName": name} if disk.datavolume else {})})
        target = self._target_vm(vm, clone, last)
        self.world.create(target)
        self.world.patch("VirtualMachineRestore", ns, clone.restore, {"status": {
            "restores": restores, "complete": True, "restoreTime": NOW,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "Operation complete"},
                           {"type": "Ready", "status": "True", "reason": "Operation complete"}]}})
        return target

    def _restored_pvc(self, ns: str, name: str, disk: Disk, snapshot: str, restore: str, last: str, src: str,
                      image: str) -> None:
        source = disk.pvc
        ann = {k: v for k, v in source["metadata"].get("annotations", {}).items()
               if k == CONTENT_TYPE or not k.startswith(STRIPPED)}
        ann.update({"restore.kubevirt.io/name": restore, "restore.kubevirt.io/lastRestoreUID": last})
        if disk.datavolume:
            ann["cdi.kubevirt.io/storage.populatedFor"] = name
        ref = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": snapshot}
        spec = {k: copy.deepcopy(source["spec"][k]) for k in ("accessModes", "resources", "storageClassName", "volumeMode")
                if k in source["spec"]}
        pv = f"pvc-{uuid.uuid4()}"
        self.world.create(pv_rbd(pv, self.pool, image, storageclass_name=spec.get("storageClassName", self.storageclass)))
        self.world.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "metadata": {"name": name, "namespace": ns, "creationTimestamp": NOW, "annotations": ann,
                                        "labels": {**source["metadata"].get("labels", {}),
                                                   "restore.kubevirt.io/source-vm-name": src,
                                                   "restore.kubevirt.io/source-vm-namespace": ns}},
                           "spec": {**spec, "dataSource": ref, "dataSourceRef": ref, "volumeName": pv},
                           "status": {"phase": "Bound", "capacity": {"storage": "64Mi"}}})

    def _target_vm(self, vm: dict, clone: Clone, last: str) -> dict:
        """generateRestoredVMSpec: the snapshot's VM, renamed volumes, the restore's mark, halted, new MACs."""
        target = copy.deepcopy(vm)
        renamed = {d: clone.pvcs[d] for d in clone.pvcs}
        by_old = {}
        for v in target["spec"]["template"]["spec"]["volumes"]:
            if v["name"] in renamed:
                kind = "dataVolume" if "dataVolume" in v else "persistentVolumeClaim"
                field_ = "name" if kind == "dataVolume" else "claimName"
                by_old[v[kind][field_]] = renamed[v["name"]]
                v[kind][field_] = renamed[v["name"]]
        for t in target["spec"].get("dataVolumeTemplates", []):
            t["metadata"]["name"] = by_old.get(t["metadata"]["name"], t["metadata"]["name"])
        target["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][0]["macAddress"] = ""
        target["spec"]["template"]["spec"]["domain"]["firmware"] = {"uuid": "", "serial": ""}
        target["metadata"] = {"name": clone.target, "namespace": vm["metadata"]["namespace"], "uid": str(uuid.uuid4()),
                              "creationTimestamp": NOW, "labels": dict(vm["metadata"].get("labels", {})),
                              "annotations": {**vm["metadata"].get("annotations", {}),
                                              "restore.kubevirt.io/lastRestoreUID": last}}
        target["status"] = {"printableStatus": "Stopped", "created": False, "ready": False}
        return target

    def datavolumes(self, clone: Clone, target: dict, disks: list[Disk], resolved: dict) -> None:
        """The restore controller's DataVolume per template (pre-populated, its source the template's,
        a DataSource resolved to `resolved`, e.g. {"pvc": {"namespace": ..., "name": ...}}), adopted by
        CDI: Succeeded at once, the PVC owned by it."""
        ns = target["metadata"]["namespace"]
        templates = {t["metadata"]["name"]: t for t in target["spec"].get("dataVolumeTemplates", [])}
        for disk in disks:
            name = clone.pvcs[disk.volume]
            if not disk.datavolume or name not in templates:
                continue
            spec = copy.deepcopy(templates[name]["spec"])
            if spec.pop("sourceRef", None) is not None:
                spec["source"] = copy.deepcopy(resolved)       # GetResolvedCloneSource
            at = NOW
            self.world.create({"apiVersion": CDI, "kind": "DataVolume",
                               "metadata": {"name": name, "namespace": ns, "creationTimestamp": at,
                                            "annotations": {"cdi.kubevirt.io/allowClaimAdoption": "true",
                                                            "restore.kubevirt.io/name": clone.restore,
                                                            "cdi.kubevirt.io/storage.prePopulated": "true"}},
                               "spec": spec,
                               "status": {"phase": "Succeeded", "progress": "100.0%", "claimName": name, "conditions": [
                                   {"type": "Bound", "status": "True", "reason": "Bound", "lastTransitionTime": at},
                                   {"type": "Ready", "status": "True", "lastTransitionTime": at}]}})
            self.world.patch("PersistentVolumeClaim", ns, name, {"metadata": {"ownerReferences": [
                owner(CDI, "DataVolume", name, "00000000-0000-0000-0000-000000000001")]}})

    def succeeded(self, clone: Clone, namespace: str) -> None:
        self.world.patch("VirtualMachineClone", namespace, clone.name, {"status": {
            "phase": "CreatingTargetVM", "targetName": clone.target}})
        self.world.patch("VirtualMachineClone", namespace, clone.name, {"status": {
            "phase": "Succeeded", "conditions": clone_conditions(("False", "Ready"), ("True", "Ready"))}})

    def cleaned_up(self, clone: Clone, namespace: str) -> None:
        """Every restored PVC is Bound: the clone deletes its restore and snapshot; the snapshot
        controller deletes the content; garbage collection the VolumeSnapshots; the snapshotter their
        contents, by CSI DeleteSnapshot."""
        ns = namespace
        self.world.delete("VirtualMachineRestore", ns, clone.restore, finalized=True)
        self.world.delete("VirtualMachineSnapshot", ns, clone.snapshot, finalized=True)
        self.world.patch("VirtualMachineClone", ns, clone.name, {"status": {"snapshotName": None, "restoreName": None}})
        self.snapshot_deleted(clone, ns)

    def snapshot_deleted(self, clone: Clone, ns: str) -> None:
        """What deleting a VirtualMachineSnapshot sets off: its content, each VolumeSnapshot, each CSI snapshot."""
        self.world.delete("VirtualMachineSnapshotContent", ns, f"vmsnapshot-content-{clone.snapshot_uid}", finalized=True)
        for volume, name in clone.volume_snapshots.items():
            self.world.delete("VolumeSnapshot", ns, name)
            self.csi.delete_snapshot(clone.snapshot_ids[volume])
            self.world.delete("VolumeSnapshotContent", "", clone.contents[volume])


# -- a golden and a VM cloned from it, as a cluster holds them -------------------------------------
def golden(world: World, csi: Any, pool: str, storageclass: str, mib: int = 16, namespace: str = "os-images",
           name: str = "rhel9") -> str:
    """An imported golden PVC (a plain image) and the DataSource naming it; answers its image."""
    image = csi.create_volume(mib)
    world.create(pv_rbd(f"pv-{name}", pool, image, storageclass_name=storageclass))
    world.create(pvc_object(namespace, name, storageclass, f"pv-{name}"))
    world.create({"apiVersion": CDI, "kind": "DataSource", "metadata": {"name": name, "namespace": namespace},
                  "spec": {"source": {"pvc": {"namespace": namespace, "name": name}}}})
    return image


def pvc_object(namespace: str, name: str, storageclass: str, pv: str, annotations: dict | None = None,
               owner_dv: str | None = None, labels: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": namespace, "creationTimestamp": NOW, "annotations": annotations or {},
                  "labels": labels or {}}
    if owner_dv:
        meta["ownerReferences"] = [owner(CDI, "DataVolume", owner_dv, "00000000-0000-0000-0000-000000000002")]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
            "spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Block", "storageClassName": storageclass,
                     "resources": {"requests": {"storage": "64Mi"}}, "volumeName": pv},
            "status": {"phase": "Bound", "capacity": {"storage": "64Mi"}}}


def vm_from_golden(world: World, csi: Any, pool: str, storageclass: str, namespace: str, name: str, golden_image: str,
                   root_mib: int, data_mib: int, golden_ref: tuple[str, str] = ("os-images", "rhel9")) -> tuple[dict, list[Disk]]:
    """A VM as OpenShift's template makes one: a root disk from a DataVolume template cloned from the
    golden by CDI (ceph-csi's PVC clone), a blank data disk, a cloud-init volume; answers it and its disks."""
    root, data = f"{name}-rootdisk", f"{name}-data"
    clone_ann = {"cdi.kubevirt.io/cloneType": "csi-clone", "cdi.kubevirt.io/storage.contentType": "kubevirt",
                 "cdi.kubevirt.io/storage.condition.running.reason": "Completed"}
    root_image = csi.clone_volume(golden_image, root_mib)
    data_image = csi.create_volume(data_mib)
    ref = {"sourceRef": {"kind": "DataSource", "name": golden_ref[1], "namespace": golden_ref[0]}}
    world.create({"apiVersion": CDI, "kind": "DataVolume",
                  "metadata": {"name": root, "namespace": namespace, "creationTimestamp": NOW,
                               "annotations": {"cdi.kubevirt.io/cloneType": "csi-clone"},
                               "ownerReferences": [owner(KUBEVIRT, "VirtualMachine", name, "00000000-0000-0000-0000-000000000003")]},
                  "spec": {**ref, "storage": {"resources": {"requests": {"storage": "64Mi"}}}},
                  "status": {"phase": "Succeeded", "progress": "100.0%", "claimName": root, "conditions": [
                      {"type": "Bound", "status": "True", "reason": "Bound", "lastTransitionTime": NOW},
                      {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T10:00:05Z"}]}})
    pvcs = {}
    for disk, image, ann, dv in ((root, root_image, clone_ann, root), (data, data_image, {}, None)):
        world.create(pv_rbd(f"pv-{disk}", pool, image, storageclass_name=storageclass))
        pvcs[disk] = pvc_object(namespace, disk, storageclass, f"pv-{disk}", ann, dv, {"app": name})
        world.create(pvcs[disk])
    vm = virtual_machine(namespace, name, [volume("rootdisk", dataVolume={"name": root}),
                                           volume("data", persistentVolumeClaim={"claimName": data}),
                                           volume("cloudinitdisk", cloudInitNoCloud={"userData": "#cloud-config\n"})],
                         [template(root, ref, storageclass)])
    world.create(vm)
    return vm, [Disk("rootdisk", pvcs[root], root_image, datavolume=True), Disk("data", pvcs[data], data_image)]


def clone_vm(controller: CloneController, vm: dict, disks: list[Disk], clone_name: str, target: str,
             resolved: dict, mib_written: dict[str, int] | None = None) -> Clone:
    """The whole sequence, start to cleanup."""
    ns = vm["metadata"]["namespace"]
    clone = controller.requested(ns, clone_name, vm["metadata"]["name"], target)
    controller.snapshot(clone, vm, disks)
    made = controller.restore(clone, vm, disks, mib_written)
    controller.datavolumes(clone, made, disks, resolved)
    controller.succeeded(clone, ns)
    controller.cleaned_up(clone, ns)
    return clone
