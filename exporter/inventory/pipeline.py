"""The derived inventory, kept up to date change by change: a watch event or a backend refresh
re-derives only the PVC rows, families, volumes and StorageClasses it touches.

Each derivation notes what it read (exporter.inventory.tokens); a change names what it touched; the index
says which derivations to run again. Stages, each reading only what the ones before settled:
  volumes      per backend: merged targets, logical bytes and depth per volume (a change reaches
               the volume's descendants)
  records      classification of each PVC (exporter.model.classify), reading watched objects
  owners       which PVC (else VolumeSnapshot) maps to each backend volume
  rows         a PVC's record put in the family the storage says it came from (see `_attribute`),
               its bytes, depth and sharing
  families     which volumes a family is made of (`_plan`), then its numbers: bytes above a
               family's source that serve only it are charged to it (a count shared by families)
A fresh Inventory fed every object is the full rebuild; tests hold the two byte-identical.
"""

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from ..backends.base import Backend, TargetState, Volume, VolumeRef
from ..kube.objects import annotations, get, text
from ..kube.packed import Packed, PackedBucket, packed_buckets
from ..model.classify import DATASOURCE_KIND, PVC_KIND, SNAPSHOT_KIND, VOLUME_KIND, CloneRecord, Objects, classify, family_of, find_datavolume
from ..model.efficiency import chain_numbers, walk
from ..model.rows import FamilyRow, PvcRow, StorageClassRow, Usage, View, VolumeRow, broken_reason, measured, native_families, sharing
from ..model.strategies import cdi_override, expected_clone_type
from .tokens import DepIndex, Token, TrackedObjects

Key = tuple[str, str]
FamilyKey = tuple[str, str, str, str]       # (kind, namespace, name, backend) of the family's source
Plan = tuple[VolumeRef | None, list[VolumeRef]] | None
PVCS = "persistentvolumeclaims"
_SC_INPUTS = (("all", "storageclasses"), ("all", "storageprofiles"), ("all", "cdis"))
_SNAP_INPUTS = (("all", "volumesnapshots"), ("all", "volumesnapshotcontents"))


@dataclass
class Dirty:
    """What an update changed, by section key: the collectors re-render these and nothing else."""
    pvcs: set[Key] = field(default_factory=set)
    families: set[Hashable] = field(default_factory=set)
    storageclasses: set[str] = field(default_factory=set)
    volumes: set[tuple[int, str]] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.pvcs or self.families or self.storageclasses or self.volumes)


def everything(objs: Objects) -> dict[tuple[str, Key], Packed | None]:
    """Every object as a change (packed): what a fresh Inventory is fed for a full rebuild."""
    return {(resource, key): raw for resource, bucket in packed_buckets(objs).items()
            for key, raw in bucket.raw.items()}


Claim = tuple[int, str, str, str]      # (0 for a PVC else 1 for a VolumeSnapshot, kind, namespace, name)


class Inventory:
    def __init__(self, backends: Sequence[Backend], kubernetes: bool) -> None:
        self.backends = list(backends)
        self.kubernetes = kubernetes
        self._position = {b.name: i for i, b in enumerate(self.backends)}
        self._unshared = {b.name: b.unshared_reason for b in self.backends}
        self.objs: dict[str, PackedBucket] = {}
        self.states: dict[tuple[str, str], TargetState] = {}
        # volumes, per backend
        self._targets: dict[str, dict[str, dict[str, Volume]]] = {b.name: {} for b in self.backends}
        self.volumes: dict[str, dict[str, Volume]] = {b.name: {} for b in self.backends}
        self._children: dict[str, dict[str, set[str]]] = {b.name: {} for b in self.backends}
        self.logical: dict[str, dict[str, int | None]] = {b.name: {} for b in self.backends}
        self.depth: dict[str, dict[str, int]] = {b.name: {} for b in self.backends}
        self.volume_rows: dict[tuple[int, str], VolumeRow] = {}
        # PVCs
        self.records: dict[Key, CloneRecord] = {}       # as classified, before attribution
        self._record_deps = DepIndex()
        self.pvcs: dict[Key, PvcRow] = {}
        self._family_of: dict[Key, FamilyKey] = {}
        self._row_deps = DepIndex()
        # volume -> its claim, or a set of them when several claim it (rare: a set per volume costs 2 MB at 10k)
        self._claims: dict[tuple[str, str], Claim | set[Claim]] = {}
        self.owner: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._snap_refs: dict[Key, VolumeRef | None] = {}
        # families
        self.members: dict[FamilyKey, set[Key]] = {}
        self._plans: dict[FamilyKey, Plan] = {}
        self._above: dict[FamilyKey, list[str]] = {}
        self._serving: Counter[tuple[str, str]] = Counter()
        self._plan_deps = DepIndex()
        self._serving_deps = DepIndex()
        self.families: dict[Hashable, FamilyRow] = {}
        self.storageclasses: dict[str, StorageClassRow] = {}

    # -- the update ---------------------------------------------------------------------------
    def update(self, changes: Mapping[tuple[str, Key], Packed | None],
               states: Mapping[str, Mapping[str, TargetState]]) -> Dirty:
        """changes: (resource, key) -> the object now (packed), None when deleted. states: backend name ->
        target -> a copy of its last refresh state (volumes dicts are replaced, never mutated)."""
        dirty = Dirty()
        touched: set[Token] = set()
        for (resource, key), obj in changes.items():
            bucket = self.objs.setdefault(resource, PackedBucket()).raw
            if obj is None:
                bucket.pop(key, None)
            else:
                bucket[key] = obj
            touched.add(("obj", resource, key))
            touched.add(("all", resource))
        volumes_changed = self._update_volumes(states, dirty)
        touched |= volumes_changed
        if not self.kubernetes:
            if volumes_changed:
                self._native(dirty)
            return dirty
        changed_pvcs: set[Any] = {key for resource, key in changes if resource == PVCS}
        touched |= self._update_records(changed_pvcs | self._record_deps.readers(touched))
        if volumes_changed or any(t in touched for t in _SNAP_INPUTS):
            touched |= self._update_snapshots()
        changed_records: set[Any] = {t[1] for t in touched if t[0] == "rec"}
        families = self._update_rows(changed_pvcs | changed_records | self._row_deps.readers(touched), dirty)
        self._update_families(families | self._plan_deps.readers(touched), dirty)
        if any(t in touched for t in _SC_INPUTS):
            self._update_storageclasses(dirty)
        return dirty

    # -- volumes ------------------------------------------------------------------------------
    def _update_volumes(self, states: Mapping[str, Mapping[str, TargetState]], dirty: Dirty) -> set[Token]:
        touched: set[Token] = set()
        # Replaced whole, not filled in place: a scrape reads it while this runs.
        self.states = {(b.name, t): st for b in self.backends for t, st in states.get(b.name, {}).items()}
        for backend in self.backends:
            b = backend.name
            now = {t: st.volumes for t, st in states.get(b, {}).items()}
            before = self._targets[b]
            changed: set[str] = set()
            for t in before.keys() | now.keys():
                old, new = before.get(t, {}), now.get(t, {})
                if old is new:
                    continue
                # The common refresh lists the same images in the same order, most Volume objects
                # reused or equal: walking both in step costs a fraction of a lookup per id.
                pairs = zip(old, old.values(), new.values(), strict=True) if list(old) == list(new) \
                    else ((vid, old.get(vid), new.get(vid)) for vid in old.keys() | new.keys())
                changed.update(vid for vid, a, c in pairs if a is not c and a != c)
            self._targets[b] = now
            if not changed:
                continue
            vols, kids = self.volumes[b], self._children[b]
            moved: set[str] = set()
            for vid in changed:
                # The last target that holds an id wins, as when the targets are merged in order.
                fresh = next((tv[vid] for tv in reversed(list(now.values())) if vid in tv), None)
                old_vol = vols.get(vid)
                if fresh is old_vol or fresh == old_vol:
                    continue
                moved.add(vid)
                if old_vol is not None and old_vol.parent:
                    siblings = kids.get(old_vol.parent)
                    if siblings is not None:
                        siblings.discard(vid)
                        if not siblings:
                            del kids[old_vol.parent]
                if fresh is None:
                    del vols[vid]
                else:
                    vols[vid] = fresh
                    if fresh.parent:
                        kids.setdefault(fresh.parent, set()).add(vid)
            # A volume's logical bytes, depth and broken chain follow its ancestors: redo descendants.
            affected, todo = set(moved), list(moved)
            while todo:
                for child in kids.get(todo.pop(), ()):
                    if child not in affected:
                        affected.add(child)
                        todo.append(child)
            pos = self._position[b]
            for vid in affected:
                vol = vols.get(vid)
                if vol is None:
                    self.logical[b].pop(vid, None)
                    self.depth[b].pop(vid, None)
                    self.volume_rows.pop((pos, vid), None)
                else:
                    self.logical[b][vid], self.depth[b][vid] = chain_numbers(vols, vid)
                    self.volume_rows[(pos, vid)] = VolumeRow(b, vol, self.depth[b][vid], broken_reason(vols, vol))
                dirty.volumes.add((pos, vid))
            touched |= {("vol", b, vid) for vid in moved}
        return touched

    def _chain(self, b: str, vid: str, tokens: set[Token]) -> list[str]:
        """walk() that notes each volume read, and the missing parent the chain stops at."""
        vols = self.volumes.get(b, {})
        chain = walk(vols, vid)
        tokens.update(("vol", b, v) for v in chain)
        last = vols[chain[-1]].parent if chain else vid
        if last:
            tokens.add(("vol", b, last))
        return chain

    def _use(self, ref: VolumeRef | None) -> Usage:
        if ref is None:
            return None
        vol = self.volumes.get(ref.backend, {}).get(ref.volume)
        return (vol.consumed_bytes, self.logical[ref.backend][ref.volume]) if vol else None

    # -- records and owners -------------------------------------------------------------------
    def _update_records(self, keys: Iterable[Key]) -> set[Token]:
        touched: set[Token] = set()
        pvcs = self.objs.get(PVCS) or PackedBucket()
        mapper = self._map_pv
        for key in keys:
            old = self.records.get(key)
            obj = pvcs.get(key)
            if obj is None:
                if old is None:
                    continue
                del self.records[key]
                self._record_deps.drop(key)
                new = None
            else:
                tokens: set[Token] = set()
                new = classify(cast(Objects, TrackedObjects(self.objs, tokens)), obj, mapper)
                # A PVC's own object is not noted: a changed PVC is always re-derived (update()).
                tokens.discard(("obj", PVCS, key))
                self._record_deps.note(key, tokens)
                if new == old:
                    continue
                self.records[key] = new
            touched.add(("rec", key))
            old_ref = old.volume_ref if old else None
            new_ref = new.volume_ref if new else None
            if old is None or new is None or old_ref != new_ref:
                touched.add(("ref", key))
                touched |= self._reclaim((0, PVC_KIND, key[0], key[1]), old_ref, new_ref)
        return touched

    def _map_pv(self, pv: dict[str, Any]) -> VolumeRef | None:
        for backend in self.backends:
            ref = backend.map_pv(pv)
            if ref is not None:
                return ref
        return None

    def _reclaim(self, claim: Claim, old: VolumeRef | None, new: VolumeRef | None) -> set[Token]:
        touched: set[Token] = set()
        if old is not None:
            touched |= self._claim((old.backend, old.volume), claim, False)
        if new is not None:
            touched |= self._claim((new.backend, new.volume), claim, True)
        return touched

    def _claim(self, vol: tuple[str, str], claim: Claim, add: bool) -> set[Token]:
        """A PVC (else a VolumeSnapshot) claims a volume; the first by kind, namespace and name owns it."""
        held = self._claims.get(vol)
        claims = set() if held is None else {held} if isinstance(held, tuple) else held
        if add:
            claims.add(claim)
        else:
            claims.discard(claim)
        owner = min(claims)[1:] if claims else None
        if not claims:
            self._claims.pop(vol, None)
        else:
            self._claims[vol] = next(iter(claims)) if len(claims) == 1 else claims
        if owner == self.owner.get(vol):
            return set()
        if owner is None:
            del self.owner[vol]
        else:
            self.owner[vol] = owner
        return {("own", *vol)}

    def _snapshot_ref(self, objs: Any, ns: str, name: str) -> VolumeRef | None:
        snap = objs.get("volumesnapshots").get((ns, name))
        content_name = text(get(snap, "status", "boundVolumeSnapshotContentName"))
        content = objs.get("volumesnapshotcontents").get(("", content_name))
        if content is None:
            return None
        for backend in self.backends:
            ref = backend.map_snapshot_content(content)
            if ref is not None:
                return ref
        return None

    def _update_snapshots(self) -> set[Token]:
        """Which volume each VolumeSnapshot maps to (RBD finds it by image name, so this follows
        refreshes too): few objects, redone whole when any snapshot, content or volume changed."""
        touched: set[Token] = set()
        objs = TrackedObjects(self.objs, set())
        fresh = {key: self._snapshot_ref(objs, *key) for key in self.objs.get("volumesnapshots", {})}
        for key in self._snap_refs.keys() | fresh.keys():
            old, new = self._snap_refs.get(key), fresh.get(key)
            if key in self._snap_refs and key in fresh and old == new:
                continue
            touched.add(("snap", key))
            touched |= self._reclaim((1, SNAPSHOT_KIND, key[0], key[1]), old, new)
        self._snap_refs = fresh
        return touched

    def _source_volume(self, kind: str, ns: str, name: str, tokens: set[Token]) -> VolumeRef | None:
        """The backend volume a family's source maps to, if Kubernetes can tell."""
        if kind == PVC_KIND:
            tokens.add(("ref", (ns, name)))
            rec = self.records.get((ns, name))
            return rec.volume_ref if rec is not None else None
        if kind == SNAPSHOT_KIND:
            tokens.add(("snap", (ns, name)))
            return self._snap_refs.get((ns, name))
        return None

    # -- rows ---------------------------------------------------------------------------------
    def _update_rows(self, keys: Iterable[Key], dirty: Dirty) -> set[FamilyKey]:
        families: set[FamilyKey] = set()
        for key in keys:
            rec = self.records.get(key)
            old_family = self._family_of.pop(key, None)
            if old_family is not None:
                families.add(old_family)
                members = self.members[old_family]
                members.discard(key)
                if not members:
                    del self.members[old_family]
            if rec is None:
                if key in self.pvcs:
                    del self.pvcs[key]
                    self._row_deps.drop(key)
                    dirty.pvcs.add(key)
                continue
            tokens: set[Token] = set()
            row = self._row(key, rec, tokens)
            # Nor its own PVC or record: update() re-derives the rows of changed PVCs and records.
            tokens.discard(("obj", PVCS, key))
            self._row_deps.note(key, tokens)
            if self.pvcs.get(key) != row:
                self.pvcs[key] = row
                dirty.pvcs.add(key)
            if row.record.is_clone:
                fkey = self._family_key(row.record)
                self._family_of[key] = fkey
                self.members.setdefault(fkey, set()).add(key)
                families.add(fkey)
        return families

    def _row(self, key: Key, rec: CloneRecord, tokens: set[Token]) -> PvcRow:
        ref = rec.volume_ref
        chain = self._chain(ref.backend, ref.volume, tokens) if ref is not None else []
        rec = self._attribute(key, rec, chain, tokens)
        use = self._use(ref)
        depth = self.depth[ref.backend].get(ref.volume) if ref is not None and use else None
        shares, why = None, ""
        if rec.is_clone and ref is not None and use is not None:
            shares, why = sharing(self.volumes[ref.backend][ref.volume], self._unshared.get(ref.backend, "no-parent"))
        return PvcRow(rec, use[0] if use else None, depth, shares, why)

    def _attribute(self, key: Key, rec: CloneRecord, chain: list[str], tokens: set[Token]) -> CloneRecord:
        """Put a clone in the family it was really made from, by the storage's evidence.

        A DataSource (what DataImportCron moves to each new golden) or any source is resolved as it
        is now; a clone made before it moved still descends from the old golden. When the volume the
        family source maps to is not among a clone's ancestors, the clone goes to the nearest
        ancestor that a live PVC or VolumeSnapshot maps to, else to a family named after the source
        and the chain's top volume ("<source>@<volume>", kind BackendVolume). Without backend
        evidence (not measured, no parent) the resolution stays as Kubernetes says. `chain`: the
        clone's volume and its measured ancestors (walk())."""
        ref = rec.volume_ref
        vols = self.volumes.get(ref.backend) if ref is not None else None
        if not rec.is_clone or ref is None or not vols or ref.volume not in vols:
            return rec
        top = vols[chain[-1]].parent
        ancestors = chain[1:] + ([top] if top and top not in chain else [])
        source = self._source_volume(rec.family_kind, rec.family_namespace, rec.family_name, tokens)
        if not ancestors or source is None or source.backend != ref.backend or source.volume in ancestors:
            return rec
        objs = cast(Objects, TrackedObjects(self.objs, tokens))
        found = None
        for a in ancestors:
            tokens.add(("own", ref.backend, a))
            found = self.owner.get((ref.backend, a))
            if found is not None:
                break
        if found is not None:
            fam = family_of(objs, *found)
            return replace(rec, source_kind=found[0], source_namespace=found[1], source_name=found[2],
                           family_kind=fam[0], family_namespace=fam[1], family_name=fam[2])
        label = f"{_asked_for(objs, key, rec)}@{ancestors[-1]}"
        return replace(rec, source_kind=VOLUME_KIND, source_name=label,
                       family_kind=VOLUME_KIND, family_namespace=rec.source_namespace, family_name=label)

    def _family_key(self, rec: CloneRecord) -> FamilyKey:
        backend = rec.backend
        if rec.volume_ref is None and not rec.volume:
            # A clone not bound yet still belongs with its StorageClass's backend.
            backend = next((b.name for b in self.backends if b.serves_provisioner(rec.provisioner)), backend)
        return (rec.family_kind, rec.family_namespace, rec.family_name, backend)

    # -- families -----------------------------------------------------------------------------
    def _update_families(self, fkeys: set[Hashable], dirty: Dirty) -> None:
        touched: set[Token] = set()
        for fkey in cast(set[FamilyKey], fkeys):
            before = set(self._above.pop(fkey, ()))
            self._plans.pop(fkey, None)
            after: set[str] = set()
            if fkey not in self.members:
                self._plan_deps.drop(fkey)
                self._serving_deps.drop(fkey)
            else:
                tokens: set[Token] = set()
                plan = self._plan(fkey, tokens)
                self._plan_deps.note(fkey, tokens)
                self._plans[fkey] = plan
                if plan is not None and plan[0] is not None:
                    top = plan[0]
                    self._above[fkey] = walk(self.volumes[top.backend], top.volume)[1:]
                after = set(self._above.get(fkey, ()))
            b = fkey[3]
            for a in before - after:
                self._serving[(b, a)] -= 1
                if not self._serving[(b, a)]:
                    del self._serving[(b, a)]
                touched.add(("srv", b, a))
            for a in after - before:
                self._serving[(b, a)] += 1
                touched.add(("srv", b, a))
        for fkey in cast(set[FamilyKey], fkeys | self._serving_deps.readers(touched)):
            row = self._numbers(fkey)
            if row is None:
                if self.families.pop(fkey, None) is not None:
                    dirty.families.add(fkey)
            elif self.families.get(fkey) != row:
                self.families[fkey] = row
                dirty.families.add(fkey)

    def _plan(self, fkey: FamilyKey, tokens: set[Token]) -> Plan:
        """Which volumes a family's numbers are made of; None when that cannot be told."""
        kind, ns, name, backend = fkey
        if backend not in self.volumes:
            return None
        vols = self.volumes[backend]
        refs = [r for r in (self.pvcs[k].record.volume_ref for k in sorted(self.members[fkey])) if r is not None]
        source_ref = self._source_volume(kind, ns, name, tokens)
        if kind == VOLUME_KIND:     # "<source>@<volume>": the chain's top volume is the source
            source_ref = VolumeRef(backend, "", name.partition("@")[2])
        if source_ref is not None and source_ref.backend == backend:
            self._chain(backend, source_ref.volume, tokens)
            return source_ref, refs
        # The source is not measurable through Kubernetes (deleted golden PVC, unmapped snapshot):
        # the clones' common backend ancestor is the data they share.
        roots = {walk(vols, r.volume)[-1] if r.volume in vols else r.volume for r in refs}
        own_ids = {r.volume for r in refs}
        if refs and roots == own_ids:
            # Every clone is an independent volume (a restore or a copy onto other storage): the
            # family is just those copies, and saves nothing.
            return None, refs
        if len(roots) != 1:
            return None
        root = roots.pop()
        if root in own_ids:
            return None
        self._chain(backend, root, tokens)
        return VolumeRef(backend, "", root), refs

    def _numbers(self, fkey: FamilyKey) -> FamilyRow | None:
        members = self.members.get(fkey)
        if not members:
            return None
        _, ns, name, backend = fkey
        plan = self._plans.get(fkey)
        numbers = None
        tokens: set[Token] = set()
        if plan is not None:
            src, refs = plan
            uses = ([self._use(src)] if src else []) + [self._use(r) for r in refs if src is None or r.volume != src.volume]
            held = 0
            for a in self._above.get(fkey, ()):
                tokens.add(("srv", backend, a))
                if self._serving[(backend, a)] == 1:
                    held += self.volumes[backend][a].consumed_bytes
            numbers = measured(uses, held)
        self._serving_deps.note(fkey, tokens)
        return FamilyRow(ns, name, backend, len(members), numbers)

    # -- StorageClasses and native mode ---------------------------------------------------------
    def _update_storageclasses(self, dirty: Dirty) -> None:
        profiles = self.objs.get("storageprofiles") or PackedBucket()
        override = cdi_override((self.objs.get("cdis") or PackedBucket()).values())
        fresh = {}
        for (_, sc_name), sc in self.objs.get("storageclasses", {}).items():
            provisioner = text(get(sc, "provisioner"))
            expected, _ = expected_clone_type(provisioner, annotations(sc),
                                              get(profiles.get(("", sc_name)), "status", "cloneStrategy"), override)
            fresh[sc_name] = StorageClassRow(sc_name, provisioner, expected)
        for name in self.storageclasses.keys() | fresh.keys():
            if self.storageclasses.get(name) != fresh.get(name):
                dirty.storageclasses.add(name)
        self.storageclasses = fresh

    def _native(self, dirty: Dirty) -> None:
        fresh: dict[Hashable, FamilyRow] = {(r.backend, r.source_name): r
                                            for r in native_families(self.volumes, self.logical)}
        for key in self.families.keys() | fresh.keys():
            if self.families.get(key) != fresh.get(key):
                dirty.families.add(key)
        self.families = fresh

    # -- the whole view, ordered (tests, the summary) ---------------------------------------------
    def view(self) -> View:
        return View(pvcs={k: self.pvcs[k] for k in sorted(self.pvcs)},
                    families=[self.families[k] for k in sorted(self.families)],     # type: ignore[type-var]
                    storageclasses=[self.storageclasses[k] for k in sorted(self.storageclasses)],
                    volumes=[self.volume_rows[k] for k in sorted(self.volume_rows)],
                    states=dict(self.states))


def _asked_for(objs: Objects, key: Key, rec: CloneRecord) -> str:
    """What the clone was asked to be made from: the DataSource its DataVolume names, else its source."""
    pvc = (objs.get(PVCS) or {}).get(key)
    dv = find_datavolume(objs, pvc, *key) if pvc is not None else None
    ref = get(dv, "spec", "sourceRef")
    if get(ref, "kind") == DATASOURCE_KIND and text(get(ref, "name")):
        return text(get(ref, "name"))
    return rec.source_name


def build_view(objs: Objects, backends: Sequence[Backend], kubernetes: bool,
               states: Mapping[str, Mapping[str, TargetState]]) -> View:
    """The full derivation at once: a fresh Inventory fed every object."""
    inv = Inventory(backends, kubernetes)
    inv.update(everything(objs), states)
    return inv.view()
