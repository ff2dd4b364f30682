"""What KubeVirt writes, read (pure): PVCs its restore made, a VM's volumes, where a VM was cloned
from, and a VirtualMachineClone's progress. Field names and values: docs/field-facts.md (KubeVirt).

A VM clone (`VirtualMachineClone`) is a `VirtualMachineSnapshot` of the source VM (a VolumeSnapshot
per disk), restored into a new VM by a `VirtualMachineRestore` (a PVC per disk, restored from the
VolumeSnapshot), after which both are deleted, and with them the VolumeSnapshots. CDI clones nothing
on the way: the DataVolume the restore makes for a DataVolume disk is marked pre-populated and adopts
the restored PVC, although its spec still names the golden the source disk was cloned from.
"""

import re
from dataclasses import dataclass
from typing import Any

from ..kube.objects import annotations, get, text
from ..kube.resources import PVC, VIRTUALMACHINE, VMRESTORE, VMSNAPSHOT, VMSNAPSHOTCONTENT, VOLUMESNAPSHOT
from .timestamps import timestamp

VM_KIND = "VirtualMachine"
VMSNAPSHOT_KIND = "VirtualMachineSnapshot"
PVC_KIND = "PersistentVolumeClaim"
ANN_RESTORE_NAME = "restore.kubevirt.io/name"                # on a restored PVC (and its DataVolume)
ANN_LAST_RESTORE = "restore.kubevirt.io/lastRestoreUID"      # "<restore name>-<restore UID>", on the PVCs and the VM
ANN_PREPOPULATED = "cdi.kubevirt.io/storage.prePopulated"    # a DataVolume that adopted a PVC populated for it
LABEL_SOURCE_VM = "restore.kubevirt.io/source-vm-name"
LABEL_SOURCE_NAMESPACE = "restore.kubevirt.io/source-vm-namespace"
# The snapshot controller names each VolumeSnapshot after its VirtualMachineSnapshot and the volume,
# and the content after the VirtualMachineSnapshot (pkg/storage/snapshot/snapshot.go).
_VOLUME_SNAPSHOT = re.compile(r"vmsnapshot-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-volume-(.+)")
_RESTORE_UID = re.compile(r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DISK_KINDS = ("dataVolume", "persistentVolumeClaim")
# Volumes that hold no disk data (configuration handed to the guest): not listed as a VM's volumes.
CONFIG_KINDS = frozenset(("cloudInitNoCloud", "cloudInitConfigDrive", "sysprep", "configMap", "secret",
                          "serviceAccount", "downwardAPI", "downwardMetrics"))
_REFERENCES = {"dataVolume": "name", "persistentVolumeClaim": "claimName", "memoryDump": "claimName"}

Source = tuple[str, str, str]       # (kind, namespace, name)


def _lookup(objs: Any, resource: str, namespace: str, name: str) -> Any:
    bucket = objs.get(resource)
    return bucket.get((namespace, name)) if bucket and name else None


# -- PVCs the restore controller made --------------------------------------------------------------
def source_vm(pvc: Any) -> tuple[str, str]:
    """(namespace, name) of the VM a restored PVC's snapshot was taken of; name "" when not marked."""
    labels = get(pvc, "metadata", "labels")
    name = text(get(labels, LABEL_SOURCE_VM))
    return (text(get(labels, LABEL_SOURCE_NAMESPACE)) or text(get(pvc, "metadata", "namespace")), name) if name else ("", "")


def restored(pvc_annotations: dict[str, str], dv_annotations: dict[str, str]) -> bool:
    """KubeVirt restored this PVC from a VolumeSnapshot, or a DataVolume adopted it already populated:
    either way no CDI clone made it, whatever the DataVolume's source says. (The source-vm labels
    alone do not tell: a restore copies the source PVC's labels, and CDI a DataVolume's to its PVC.)"""
    return ANN_RESTORE_NAME in pvc_annotations or ANN_LAST_RESTORE in pvc_annotations \
        or ANN_PREPOPULATED in dv_annotations


def restored_source(objs: Any, pvc: Any, namespace: str, snapshot: str) -> Source | None:
    """Where a restored PVC came from once its VolumeSnapshot is gone, by Kubernetes' word: the PVC
    the snapshot's content backed up, else the source VM's volume of that name, else the source VM
    itself; None while the VolumeSnapshot exists (it names its PVC) or nothing marks the restore."""
    if _lookup(objs, VOLUMESNAPSHOT.name, namespace, snapshot) is not None:
        return None
    match = _VOLUME_SNAPSHOT.fullmatch(snapshot)
    if match:
        content = _lookup(objs, VMSNAPSHOTCONTENT.name, namespace, f"vmsnapshot-content-{match[1]}")
        for backup in _objects(get(content, "spec", "volumeBackups")):
            claim = text(get(backup, "persistentVolumeClaim", "metadata", "name"))
            if text(backup.get("volumeSnapshotName")) == snapshot and _lookup(objs, PVC.name, namespace, claim):
                return PVC_KIND, namespace, claim
    vm_ns, vm_name = source_vm(pvc)
    if not vm_name:
        return None
    volume_name = match[2] if match else None
    for volume in vm_volumes(_lookup(objs, VIRTUALMACHINE.name, vm_ns, vm_name)):
        if volume.name == volume_name and volume.kind in DISK_KINDS and _lookup(objs, PVC.name, vm_ns, volume.claim):
            return PVC_KIND, vm_ns, volume.claim
    return VM_KIND, vm_ns, vm_name


# -- VMs ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VmVolume:
    name: str       # the VM's volume name; "" for a DataVolume template no volume names
    kind: str       # dataVolume | persistentVolumeClaim | containerDisk | emptyDisk | memoryDump | ...
    claim: str      # the PVC it names (dataVolume: the DataVolume's, which is its PVC's); "" for other kinds


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def vm_volumes(vm: Any) -> list[VmVolume]:
    """A VM's volumes in its template's order, then DataVolume templates no volume names (KubeVirt
    still creates and owns their DataVolumes)."""
    out, named = [], set()
    for volume in _objects(get(vm, "spec", "template", "spec", "volumes")):
        kind = ""
        for key in volume:          # its one source; a plain loop, no generator per volume (10k VMs)
            if key != "name" and isinstance(key, str):
                kind = key
                break
        if not kind or kind in CONFIG_KINDS:
            continue
        claim = text(get(volume, kind, _REFERENCES[kind])) if kind in _REFERENCES else ""
        out.append(VmVolume(text(volume.get("name")), kind, claim))
        if kind == "dataVolume":
            named.add(claim)
    for template in _objects(get(vm, "spec", "dataVolumeTemplates")):
        name = text(get(template, "metadata", "name"))
        if name and name not in named:
            named.add(name)
            out.append(VmVolume("", "dataVolume", name))
    return out


def restore_of(vm: Any) -> str:
    """The VirtualMachineRestore that last restored into this VM ("" if none): the annotation holds
    its name and UID."""
    value = annotations(vm).get(ANN_LAST_RESTORE, "")
    return _RESTORE_UID.sub("", value) if _RESTORE_UID.search(value) else ""


def restore_source(objs: Any, namespace: str, restore: str) -> Source | None:
    """The VM a restore's snapshot was taken of, while the restore and its snapshot exist."""
    snapshot_name = text(get(_lookup(objs, VMRESTORE.name, namespace, restore), "spec", "virtualMachineSnapshotName"))
    source = get(_lookup(objs, VMSNAPSHOT.name, namespace, snapshot_name), "spec", "source")
    if text(get(source, "kind")) == VM_KIND and text(get(source, "name")):
        return VM_KIND, namespace, text(get(source, "name"))
    return None


# -- VirtualMachineClones -------------------------------------------------------------------------------
def clone_target(clone: Any) -> str:
    """The VM a clone makes: its status says once it knows, the spec (defaulted on create) before."""
    return text(get(clone, "status", "targetName")) or text(get(clone, "spec", "target", "name"))


def clone_source(clone: Any) -> tuple[str, str]:
    """(kind, name) of what a clone copies: a VirtualMachine or a VirtualMachineSnapshot, in its own namespace."""
    return text(get(clone, "spec", "source", "kind")), text(get(clone, "spec", "source", "name"))


@dataclass(frozen=True)
class CloneProgress:
    phase: str                   # status.phase; "Pending" while KubeVirt set none (its Progressing condition says so)
    reason: str                  # the Ready condition's reason while not ready: why it waits or failed
    pending_since: float | None  # creation time


def clone_progress(clone: Any) -> CloneProgress | None:
    """A clone not Succeeded yet: its phase, why, and since when; None once Succeeded."""
    phase = text(get(clone, "status", "phase"))
    if phase == "Succeeded":
        return None
    ready = next((c for c in _objects(get(clone, "status", "conditions")) if c.get("type") == "Ready"), None)
    reason = text(get(ready, "reason")) if get(ready, "status") != "True" else ""
    return CloneProgress(phase or "Pending", reason, timestamp(get(clone, "metadata", "creationTimestamp")))
