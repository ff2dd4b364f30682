"""Stage 2b, records: each PVC classified (model.classify) from the watched objects it reads, and the
claim its volume reference makes."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from ..backends.base import Backend, VolumeRef
from ..kube.packed import PackedBucket
from ..kube.resources import PVC
from ..model.classify import PVC_KIND, SNAPSHOT_KIND, CloneRecord, Objects, classify
from ..model.kubevirt import VM_KIND
from . import tokens
from .claims import PVC_CLAIM, Claims
from .tokens import DepIndex, Key, Token, TrackedObjects


class Records:
    def __init__(self, objs: Mapping[str, PackedBucket], backends: Sequence[Backend], claims: Claims) -> None:
        self._objs = objs
        self.backends = list(backends)
        self._claims = claims
        self.records: dict[Key, CloneRecord] = {}       # as classified, before attribution
        self.deps = DepIndex()

    def update(self, keys: Iterable[Key]) -> tuple[set[Token], set[Key]]:
        """Reclassify these PVCs: the tokens their changes touch, and the PVCs whose record changed."""
        touched: set[Token] = set()
        changed: set[Key] = set()
        pvcs = self._objs.get(PVC.name) or PackedBucket()
        for key in keys:
            old = self.records.get(key)
            obj = pvcs.get(key)
            if obj is None:
                if old is None:
                    continue
                del self.records[key]
                self.deps.drop(key)
                new = None
            else:
                read: set[Token] = set()
                new = classify(cast(Objects, TrackedObjects(self._objs, read)), obj, self._map_pv)
                # A PVC's own object is not noted: a changed PVC is always re-derived (Inventory.update).
                read.discard(tokens.obj(PVC.name, key))
                self.deps.note(key, read)
                if new == old:
                    continue
                self.records[key] = new
            changed.add(key)
            old_ref = old.volume_ref if old else None
            new_ref = new.volume_ref if new else None
            if old is None or new is None or old_ref != new_ref:
                touched.add(tokens.ref(key))
                touched |= self._claims.reclaim((PVC_CLAIM, PVC_KIND, key[0], key[1]), old_ref, new_ref)
        return touched, changed

    def _map_pv(self, pv: dict[str, Any]) -> VolumeRef | None:
        for backend in self.backends:
            ref = backend.map_pv(pv)
            if ref is not None:
                return ref
        return None

    def source_volume(self, kind: str, ns: str, name: str, read: set[Token]) -> VolumeRef | None:
        """The backend volume a family's source maps to, if Kubernetes can tell."""
        if kind == PVC_KIND:
            read.add(tokens.ref((ns, name)))
            rec = self.records.get((ns, name))
            return rec.volume_ref if rec is not None else None
        if kind == SNAPSHOT_KIND:
            read.add(tokens.snapshot((ns, name)))
            return self._claims.snapshots.get((ns, name))
        return None

    def source_gone(self, kind: str, ns: str, name: str, read: set[Token]) -> bool:
        """Whether a family's source is no volume Kubernetes can name any more: a VolumeSnapshot that
        was deleted (KubeVirt deletes a VM clone's), or the VM a restored disk's snapshot was taken of.
        Only the storage can then say where the clone belongs. (A deleted golden PVC keeps its name.)"""
        if kind == SNAPSHOT_KIND:
            read.add(tokens.snapshot((ns, name)))
            return (ns, name) not in self._claims.snapshots
        return kind == VM_KIND
