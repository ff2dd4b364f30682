"""Stage 6, VMs (KubeVirt): which PVCs are each VM's disks, the VM's bytes as its disks' sum, whether
a disk fell back, where the VM was cloned from and the family its disks' chain ends in; and each
VirtualMachineClone with its progress.

Reads the PVC rows (stage 3) as rendered: a VM is re-derived when its own object changes, when the row
of a PVC it reads changes (its disks', and each family source on the way to the golden), or when the
VirtualMachineClone, restore, snapshot or PVC labels it read change.
"""

from collections.abc import Iterable, Mapping
from typing import Any, cast

from ..kube.packed import PackedBucket
from ..kube.resources import PVC, VIRTUALMACHINE, VMCLONE
from ..model.classify import PVC_KIND, Objects
from ..model.kubevirt import (
    DISK_KINDS,
    VM_KIND,
    Source,
    clone_progress,
    clone_source,
    clone_target,
    restore_of,
    restore_source,
    source_vm,
    vm_volumes,
)
from ..model.rows import PvcRow, VmCloneRow, VmRow, VmVolumeRow
from . import tokens
from .dirty import Dirty
from .rows import FamilyKey, PvcRows
from .tokens import DepIndex, Key, Token, TrackedObjects

VolumeKey = tuple[str, str, str, str]      # (namespace, VM, volume name, PVC)


def _total(values: list[int | None]) -> int | None:
    """A sum only of what is all known: never a partial sum presented as the whole."""
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


class VmRows:
    def __init__(self, objs: Mapping[str, PackedBucket], pvc_rows: PvcRows) -> None:
        self._objs = objs
        self._pvc_rows = pvc_rows
        self.vms: dict[Key, VmRow] = {}
        self.volumes: dict[VolumeKey, VmVolumeRow] = {}
        self._volumes_of: dict[Key, tuple[VolumeKey, ...]] = {}
        self.clones: dict[Key, VmCloneRow] = {}
        self._targets: dict[Key, Key] = {}      # VM -> the VirtualMachineClone that made it
        self.deps = DepIndex()

    # -- VirtualMachineClones ---------------------------------------------------------------------
    def update_clones(self, keys: set[Key], dirty: Dirty) -> set[Token]:
        """Re-read these clones; answer the VMs whose clone changed. Each clone's row is its object's
        alone; the index of targets is redone whole from the rows (few objects)."""
        if not keys:
            return set()
        bucket = self._objs.get(VMCLONE.name) or PackedBucket()
        for key in keys:
            clone = bucket.get(key)
            row = None if clone is None else VmCloneRow(key[0], key[1], *clone_source(clone), clone_target(clone),
                                                        clone_progress(clone))
            if self.clones.get(key) == row:
                continue
            if row is None:
                del self.clones[key]
            else:
                self.clones[key] = row
            dirty.vm_clones.add(key)
        fresh: dict[Key, Key] = {}
        # A finished clone wins over one still at work for the same target, then the first by name.
        for key, row in sorted(self.clones.items(), key=lambda kv: (kv[1].progress is not None, kv[0])):
            if row.target:
                fresh.setdefault((key[0], row.target), key)
        touched = {tokens.clone_target(vm) for vm in self._targets.keys() | fresh.keys()
                   if self._targets.get(vm) != fresh.get(vm)}
        self._targets = fresh
        return touched

    # -- VMs --------------------------------------------------------------------------------------
    def update(self, keys: Iterable[Key], dirty: Dirty) -> None:
        vms = self._objs.get(VIRTUALMACHINE.name) or PackedBucket()
        for key in keys:
            vm = vms.get(key)
            old = self._volumes_of.pop(key, ())
            row: VmRow | None = None
            volumes: dict[VolumeKey, VmVolumeRow] = {}
            if vm is None:
                self.deps.drop(key)
            else:
                read: set[Token] = set()
                row, volumes = self._derive(key, vm, read)
                read.discard(tokens.obj(VIRTUALMACHINE.name, key))     # a changed VM is always re-derived
                self.deps.note(key, read)
            for vkey in old:
                if vkey not in volumes:
                    del self.volumes[vkey]
                    dirty.vm_volumes.add(vkey)
            for vkey, vrow in volumes.items():
                if self.volumes.get(vkey) != vrow:
                    self.volumes[vkey] = vrow
                    dirty.vm_volumes.add(vkey)
            if volumes:
                self._volumes_of[key] = tuple(volumes)
            if self.vms.get(key) != row:
                if row is None:
                    del self.vms[key]
                else:
                    self.vms[key] = row
                dirty.vms.add(key)

    def _derive(self, key: Key, vm: Any, read: set[Token]) -> tuple[VmRow, dict[VolumeKey, VmVolumeRow]]:
        ns, name = key
        pvcs = self._pvc_rows.pvcs
        disks: dict[Key, PvcRow | None] = {}       # in the VM's volume order; a PVC named twice counts once
        volumes: dict[VolumeKey, VmVolumeRow] = {}
        for v in vm_volumes(vm):
            found = False
            if v.kind in DISK_KINDS:
                read.add(tokens.row((ns, v.claim)))
                disks[(ns, v.claim)] = pvcs.get((ns, v.claim))
                found = disks[(ns, v.claim)] is not None
            volumes[(ns, name, v.name, v.claim)] = VmVolumeRow(ns, name, v.name, v.kind, v.claim, found)
        rows = [r for r in disks.values() if r is not None]
        whole = bool(disks) and len(rows) == len(disks)
        clones = [(k, r) for k, r in disks.items() if r is not None and r.record.is_clone]
        types = {r.record.clone_type for _, r in clones}
        return VmRow(ns, name, len(disks),
                     _total([r.record.provisioned_bytes for r in rows]) if whole else None,
                     _total([r.consumed_bytes for r in rows]) if whole else None,
                     any(r.record.fallback for _, r in clones) if clones else None,
                     self._source(key, vm, list(disks), clones, read),
                     (types.pop() if len(types) == 1 else "mixed") if types else "unknown",
                     self._golden(clones[0][0], read) if clones else None), volumes

    def _source(self, key: Key, vm: Any, disks: list[Key], clones: list[tuple[Key, PvcRow]],
                read: set[Token]) -> Source | None:
        """What a VM was cloned from: the VirtualMachineClone that made it; else the VM whose snapshot
        was restored into it (the restore and its snapshot while they exist, else the restored PVCs'
        marks); else what its first cloned disk was cloned from (a golden)."""
        ns, name = key
        read.add(tokens.clone_target(key))
        clone = self._targets.get(key)
        if clone is not None:
            read.add(tokens.obj(VMCLONE.name, clone))
            row = self.clones[clone]
            if row.source_kind and row.source_name:
                return row.source_kind, ns, row.source_name
        objs = cast(Objects, TrackedObjects(self._objs, read))
        restore = restore_of(vm)
        if restore:
            found = restore_source(objs, ns, restore)
            for disk in disks if found is None else ():
                vm_ns, vm_name = source_vm((objs.get(PVC.name) or {}).get(disk))
                if vm_name:
                    found = (VM_KIND, vm_ns, vm_name)
                    break
            if found is not None and found != (VM_KIND, ns, name):     # not a VM restored from its own snapshot
                return found
        if clones:
            r = clones[0][1].record
            return r.source_kind, r.source_namespace, r.source_name
        return None

    def _golden(self, disk: Key, read: set[Token]) -> FamilyKey | None:
        """The family a disk's chain of families ends in: from a clone's family source to that
        source's own family while the source is a PVC that is itself a clone."""
        fkey = self._pvc_rows.family_key(disk)
        seen = {disk}
        while fkey is not None and fkey[0] == PVC_KIND and (fkey[1], fkey[2]) not in seen:
            src = (fkey[1], fkey[2])
            seen.add(src)
            read.add(tokens.row(src))
            above = self._pvc_rows.family_key(src)
            if above is None:
                break
            fkey = above
        return fkey
