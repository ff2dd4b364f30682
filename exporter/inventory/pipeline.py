"""The derived inventory, kept up to date change by change: a watch event or a backend refresh
re-derives only the PVC rows, families, volumes and StorageClasses it touches.

Each derivation notes what it read (inventory.tokens); a change names what it touched; the index
says which derivations to run again. The stages, each reading only what the ones before settled:
  volumes      (VolumeGraph) per backend: merged targets, logical bytes and depth per volume
  claims       (Claims) which PVC, else VolumeSnapshot, owns each volume; each snapshot's volume
  records      (Records) each PVC classified; its volume reference claims its volume
  rows         (PvcRows) a PVC's record put in the family the storage says it came from, with its bytes
  families     (FamilyRows) which volumes a family is made of, then its numbers
  vms          (VmRows) each KubeVirt VM's disks, bytes, clone source and golden; VirtualMachineClones
  storageclasses  the clone type expected on each StorageClass
  unclaimed    (Unclaimed) each volume no PV or VolumeSnapshotContent maps to, with its reason; bytes per reason
A fresh Inventory fed every object is the full rebuild; tests hold the two byte-identical.
"""

from collections.abc import Hashable, Mapping, Sequence
from itertools import chain

from ..backends.base import Backend, TargetState
from ..kube.packed import Packed, PackedBucket, packed_buckets
from ..kube.resources import PV, PVC, VIRTUALMACHINE, VMCLONE, VOLUMESNAPSHOT, VOLUMESNAPSHOTCONTENT
from ..model.classify import Objects
from ..model.rows import FamilyRow, PvcRow, StorageClassRow, View, VmCloneRow, VmRow, VmVolumeRow, VolumeRow
from ..model.unclaimed import DEFAULTS, SumKey, UnclaimedRow, UnclaimedSettings, UnclaimedSum
from . import storageclasses, tokens
from .claims import Claims
from .dirty import Dirty
from .families import FamilyRows
from .records import Records
from .rows import PvcRows
from .tokens import Key, Token
from .unclaimed import Unclaimed
from .vms import VmRows
from .vms import VolumeKey as VmVolumeKey
from .volumes import VolumeGraph, VolumeKey

Changes = Mapping[tuple[str, Key], Packed | None]      # (resource, key) -> the object now, None when deleted
_CLAIMS = (PV.name, PVC.name, VOLUMESNAPSHOTCONTENT.name)     # what the unclaimed stage reads
_SNAPSHOT_INPUTS = (tokens.resource(VOLUMESNAPSHOT.name), tokens.resource(VOLUMESNAPSHOTCONTENT.name))


def everything(objs: Objects) -> dict[tuple[str, Key], Packed | None]:
    """Every object as a change (packed): what a fresh Inventory is fed for a full rebuild."""
    return {(resource, key): raw for resource, bucket in packed_buckets(objs).items()
            for key, raw in bucket.raw.items()}


class Inventory:
    def __init__(self, backends: Sequence[Backend], kubernetes: bool,
                 unclaimed: UnclaimedSettings = DEFAULTS) -> None:
        self.backends = list(backends)
        self.kubernetes = kubernetes
        self.objs: dict[str, PackedBucket] = {}
        self.graph = VolumeGraph(self.backends)
        self.claims = Claims(self.backends)
        self.records = Records(self.objs, self.backends, self.claims)
        self.pvc_rows = PvcRows(self.objs, self.backends, self.graph, self.claims, self.records)
        self.family_rows = FamilyRows(self.graph, self.records, self.pvc_rows)
        self.vm_rows = VmRows(self.objs, self.pvc_rows)
        self.storageclasses: dict[str, StorageClassRow] = {}
        self.unclaimed = Unclaimed(self.backends, self.graph, unclaimed)

    # What the collectors and the runtime read: each stage's rows.
    @property
    def states(self) -> dict[tuple[str, str], TargetState]:
        return self.graph.states

    @property
    def volume_rows(self) -> dict[VolumeKey, VolumeRow]:
        return self.graph.rows

    @property
    def pvcs(self) -> dict[Key, PvcRow]:
        return self.pvc_rows.pvcs

    @property
    def families(self) -> dict[Hashable, FamilyRow]:
        return self.family_rows.rows

    @property
    def vms(self) -> dict[Key, VmRow]:
        return self.vm_rows.vms

    @property
    def vm_volumes(self) -> dict[VmVolumeKey, VmVolumeRow]:
        return self.vm_rows.volumes

    @property
    def vm_clones(self) -> dict[Key, VmCloneRow]:
        return self.vm_rows.clones

    @property
    def unclaimed_rows(self) -> dict[VolumeKey, UnclaimedRow]:
        return self.unclaimed.rows

    @property
    def unclaimed_sums(self) -> dict[SumKey, UnclaimedSum]:
        return self.unclaimed.sums

    def update(self, changes: Changes, states: Mapping[str, Mapping[str, TargetState]],
               claims_complete: bool = True) -> Dirty:
        """changes: (resource, key) -> the object now (packed), None when deleted. states: backend name ->
        target -> a copy of its last refresh state (volumes dicts are replaced, never mutated).
        claims_complete: the PV and VolumeSnapshotContent lists are listed and their watches healthy
        (else no reason that needs to know no PV maps to a volume is given)."""
        dirty = Dirty()
        touched = self._take(changes)
        volumes_changed = self.graph.update(states, dirty)
        touched |= volumes_changed
        if not self.kubernetes:
            if volumes_changed:
                self.family_rows.native(dirty)
            self.unclaimed.update(self.objs, (), volumes_changed, False, dirty)
            return dirty
        self.unclaimed.update(self.objs, (k for k in changes if k[0] in _CLAIMS), volumes_changed,
                              claims_complete, dirty)
        changed_pvcs = {key for resource, key in changes if resource == PVC.name}
        more, changed_records = self.records.update(changed_pvcs | self.records.deps.readers(touched))
        touched |= more
        if volumes_changed or any(t in touched for t in _SNAPSHOT_INPUTS):
            touched |= self.claims.update_snapshots(self.objs)
        families = self.pvc_rows.update(changed_pvcs | changed_records | self.pvc_rows.deps.readers(touched), dirty)
        self.family_rows.update(families | self.family_rows.plan_deps.readers(touched), dirty)
        touched |= self.vm_rows.update_clones({key for resource, key in changes if resource == VMCLONE.name}, dirty)
        vms = {key for resource, key in changes if resource == VIRTUALMACHINE.name}
        if vms or len(self.vm_rows.deps):       # a cluster without VMs pays nothing more
            rows = (tokens.row(k) for k in dirty.pvcs)
            self.vm_rows.update(vms | self.vm_rows.deps.readers(chain(touched, rows)), dirty)
        if any(t in touched for t in storageclasses.INPUTS):
            self.storageclasses = storageclasses.storageclass_rows(self.objs, self.storageclasses, dirty)
        return dirty

    def _take(self, changes: Changes) -> set[Token]:
        """The changed objects into the inventory's copy of them; the tokens they touch."""
        touched: set[Token] = set()
        for (resource, key), obj in changes.items():
            bucket = self.objs.setdefault(resource, PackedBucket()).raw
            if obj is None:
                bucket.pop(key, None)
            else:
                bucket[key] = obj
            touched.add(tokens.obj(resource, key))
            touched.add(tokens.resource(resource))
        return touched

    def view(self) -> View:
        """The whole view, ordered (tests, the summary)."""
        return View(pvcs={k: self.pvcs[k] for k in sorted(self.pvcs)},
                    families=[self.families[k] for k in sorted(self.families)],     # type: ignore[type-var]
                    storageclasses=[self.storageclasses[k] for k in sorted(self.storageclasses)],
                    volumes=[self.volume_rows[k] for k in sorted(self.volume_rows)],
                    states=dict(self.states),
                    vms=[self.vms[k] for k in sorted(self.vms)],
                    vm_volumes=[self.vm_volumes[k] for k in sorted(self.vm_volumes)],
                    vm_clones=[self.vm_clones[k] for k in sorted(self.vm_clones)],
                    unclaimed=[self.unclaimed_rows[k] for k in sorted(self.unclaimed_rows)],
                    unclaimed_sums=[self.unclaimed_sums[k] for k in sorted(self.unclaimed_sums)])


def build_view(objs: Objects, backends: Sequence[Backend], kubernetes: bool,
               states: Mapping[str, Mapping[str, TargetState]]) -> View:
    """The full derivation at once: a fresh Inventory fed every object."""
    inv = Inventory(backends, kubernetes)
    inv.update(everything(objs), states)
    return inv.view()
