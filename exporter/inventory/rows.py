"""Stage 3, rows: a PVC's record put in the family the storage says it came from (`_attribute`), with
its bytes, depth and sharing; and which PVCs each family has."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import cast

from ..backends.base import Backend
from ..kube.objects import get, text
from ..kube.packed import PackedBucket
from ..kube.resources import PVC
from ..model.classify import DATASOURCE_KIND, VOLUME_KIND, CloneRecord, Objects, family_of, find_datavolume
from ..model.rows import PvcRow, sharing
from . import tokens
from .claims import Claims
from .dirty import Dirty
from .records import Records
from .tokens import DepIndex, Key, Token, TrackedObjects
from .volumes import VolumeGraph

FamilyKey = tuple[str, str, str, str]       # (kind, namespace, name, backend) of the family's source


class PvcRows:
    def __init__(self, objs: Mapping[str, PackedBucket], backends: Sequence[Backend], graph: VolumeGraph,
                 claims: Claims, records: Records) -> None:
        self._objs = objs
        self.backends = list(backends)
        self._unshared = {b.name: b.unshared_reason for b in self.backends}
        self._graph, self._claims, self._records = graph, claims, records
        self.pvcs: dict[Key, PvcRow] = {}
        self.members: dict[FamilyKey, set[Key]] = {}
        self._family_of: dict[Key, FamilyKey] = {}
        self.deps = DepIndex()

    def update(self, keys: Iterable[Key], dirty: Dirty) -> set[FamilyKey]:
        """Re-derive these PVCs' rows; answer the families whose members or rows may have changed."""
        families: set[FamilyKey] = set()
        for key in keys:
            old_family = self._family_of.pop(key, None)
            if old_family is not None:
                families.add(old_family)
                members = self.members[old_family]
                members.discard(key)
                if not members:
                    del self.members[old_family]
            rec = self._records.records.get(key)
            if rec is None:
                if key in self.pvcs:
                    del self.pvcs[key]
                    self.deps.drop(key)
                    dirty.pvcs.add(key)
                continue
            read: set[Token] = set()
            row = self._row(key, rec, read)
            # Nor its own PVC or record: Inventory.update re-derives the rows of changed PVCs and records.
            read.discard(tokens.obj(PVC.name, key))
            self.deps.note(key, read)
            if self.pvcs.get(key) != row:
                self.pvcs[key] = row
                dirty.pvcs.add(key)
            if row.record.is_clone:
                fkey = self._family_key(row.record)
                self._family_of[key] = fkey
                self.members.setdefault(fkey, set()).add(key)
                families.add(fkey)
        return families

    def _row(self, key: Key, rec: CloneRecord, read: set[Token]) -> PvcRow:
        ref = rec.volume_ref
        chain = self._graph.chain(ref.backend, ref.volume, read) if ref is not None else []
        rec = self._attribute(key, rec, chain, read)
        use = self._graph.use(ref)
        depth = self._graph.depth[ref.backend].get(ref.volume) if ref is not None and use else None
        shares, why = None, ""
        if rec.is_clone and ref is not None and use is not None:
            shares, why = sharing(self._graph.volumes[ref.backend][ref.volume],
                                  self._unshared.get(ref.backend, "no-parent"))
        return PvcRow(rec, use[0] if use else None, depth, shares, why)

    def _attribute(self, key: Key, rec: CloneRecord, chain: list[str], read: set[Token]) -> CloneRecord:
        """Put a clone in the family it was really made from, by the storage's evidence.

        A DataSource (what DataImportCron moves to each new golden) or any source is resolved as it
        is now; a clone made before it moved still descends from the old golden. When the volume the
        family source maps to is not among a clone's ancestors, the clone goes to the nearest
        ancestor that a live PVC or VolumeSnapshot maps to, else to a family named after the source
        and the chain's top volume ("<source>@<volume>", kind BackendVolume). A source that is no
        longer there to map (a deleted VolumeSnapshot: KubeVirt deletes a VM clone's; Records.
        source_gone) is resolved the same way: its snapshot image has no owner, so the clone goes to
        the disk the snapshot was taken of, and a family is never named after what is gone (only the
        volume, or the DataSource asked for). Without backend evidence (not measured, no parent) the
        resolution stays as Kubernetes says. `chain`: the clone's volume and its measured ancestors
        (walk())."""
        ref = rec.volume_ref
        vols = self._graph.volumes.get(ref.backend) if ref is not None else None
        if not rec.is_clone or ref is None or not vols or ref.volume not in vols:
            return rec
        top = vols[chain[-1]].parent
        ancestors = chain[1:] + ([top] if top and top not in chain else [])
        fam = (rec.family_kind, rec.family_namespace, rec.family_name)
        source = self._records.source_volume(*fam, read)
        gone = source is None and self._records.source_gone(*fam, read)
        if not ancestors or (source is None and not gone) \
                or (source is not None and (source.backend != ref.backend or source.volume in ancestors)):
            return rec
        objs = cast(Objects, TrackedObjects(self._objs, read))
        found = None
        for a in ancestors:
            read.add(tokens.owner(ref.backend, a))
            found = self._claims.owner.get((ref.backend, a))
            if found is not None:
                break
        if found is not None:
            fam = family_of(objs, *found)
            return replace(rec, source_kind=found[0], source_namespace=found[1], source_name=found[2],
                           family_kind=fam[0], family_namespace=fam[1], family_name=fam[2])
        asked = _asked_for(objs, key, rec, gone)
        label = f"{asked}@{ancestors[-1]}" if asked else ancestors[-1]
        return replace(rec, source_kind=VOLUME_KIND, source_name=label,
                       family_kind=VOLUME_KIND, family_namespace=rec.source_namespace, family_name=label)

    def family_key(self, key: Key) -> FamilyKey | None:
        """The family a clone's row is in; None for a PVC that is no clone (or not here)."""
        return self._family_of.get(key)

    def _family_key(self, rec: CloneRecord) -> FamilyKey:
        backend = rec.backend
        if rec.volume_ref is None and not rec.volume:
            # A clone not bound yet still belongs with its StorageClass's backend.
            backend = next((b.name for b in self.backends if b.serves_provisioner(rec.provisioner)), backend)
        return (rec.family_kind, rec.family_namespace, rec.family_name, backend)


def _asked_for(objs: Objects, key: Key, rec: CloneRecord, gone: bool) -> str:
    """What the clone was asked to be made from: the DataSource its DataVolume names, else its
    source, unless that is gone ("": the family is named after the volume alone)."""
    pvc = (objs.get(PVC.name) or {}).get(key)
    dv = find_datavolume(objs, pvc, *key) if pvc is not None else None
    ref = get(dv, "spec", "sourceRef")
    if get(ref, "kind") == DATASOURCE_KIND and text(get(ref, "name")):
        return text(get(ref, "name"))
    return "" if gone else rec.source_name
