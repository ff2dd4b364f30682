"""Join the classified PVCs with what the backends measured: the rows the collectors render (pure)."""

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .backends.base import Backend, TargetState, Volume, VolumeRef
from .classify import (
    DATASOURCE_KIND,
    PVC_KIND,
    SNAPSHOT_KIND,
    VOLUME_KIND,
    CloneRecord,
    Objects,
    VolumeMapper,
    classify_all,
    family_of,
    find_datavolume,
)
from .efficiency import FamilyNumbers, chain_depth, family_numbers, logical_bytes, root_of, walk
from .objects import annotations, get, text
from .strategies import cdi_override, expected_clone_type

Usage = tuple[int, int | None] | None     # (own bytes, full-copy bytes) of a measured volume


@dataclass(frozen=True)
class PvcRow:
    record: CloneRecord
    consumed_bytes: int | None      # None: the backend could not tell (down, image not found)
    depth: int | None
    sharing: bool | None = None     # a measured clone: does its volume still read through a parent?
    unshared_reason: str = ""       # when it does not: flattened, background-copy-complete, ...


@dataclass(frozen=True)
class FamilyRow:
    source_namespace: str
    source_name: str
    backend: str
    clones: int
    numbers: FamilyNumbers | None   # None: some member could not be measured


@dataclass(frozen=True)
class StorageClassRow:
    storageclass: str
    provisioner: str
    expected_clone_type: str


@dataclass(frozen=True)
class VolumeRow:
    backend: str
    volume: Volume
    depth: int
    broken: str = ""        # why the volume's parent chain cannot be followed; "" when it can


@dataclass
class View:
    pvcs: dict[tuple[str, str], PvcRow] = field(default_factory=dict)
    families: list[FamilyRow] = field(default_factory=list)
    storageclasses: list[StorageClassRow] = field(default_factory=list)
    volumes: list[VolumeRow] = field(default_factory=list)
    states: dict[tuple[str, str], TargetState] = field(default_factory=dict)


def _mapper(backends: Sequence[Backend]) -> VolumeMapper:
    def mapper(pv: dict[str, Any]) -> VolumeRef | None:
        for backend in backends:
            ref = backend.map_pv(pv)
            if ref is not None:
                return ref
        return None
    return mapper


def _snapshot_volume(objs: Objects, backends: Sequence[Backend], ns: str, name: str) -> VolumeRef | None:
    snap = (objs.get("volumesnapshots") or {}).get((ns, name))
    content_name = text(get(snap, "status", "boundVolumeSnapshotContentName"))
    content = (objs.get("volumesnapshotcontents") or {}).get(("", content_name))
    if content is None:
        return None
    for backend in backends:
        ref = backend.map_snapshot_content(content)
        if ref is not None:
            return ref
    return None


def build_view(objs: Objects, backends: Sequence[Backend], kubernetes: bool,
               states: Mapping[str, Mapping[str, TargetState]]) -> View:
    """states: backend name -> target -> a copy of its last refresh state."""
    view = View()
    volumes: dict[str, dict[str, Volume]] = {}
    for backend in backends:
        merged: dict[str, Volume] = {}
        for target, state in states.get(backend.name, {}).items():
            view.states[(backend.name, target)] = state
            merged.update(state.volumes)
        volumes[backend.name] = merged
    logical = {b: logical_bytes(v) for b, v in volumes.items()}
    depth = {b: chain_depth(v) for b, v in volumes.items()}
    for b, vols in volumes.items():
        view.volumes.extend(VolumeRow(b, vols[vid], depth[b][vid], _broken(vols, vols[vid])) for vid in sorted(vols))

    def usage(ref: VolumeRef | None) -> Usage:
        if ref is None:
            return None
        vol = volumes.get(ref.backend, {}).get(ref.volume)
        return (vol.consumed_bytes, logical[ref.backend][ref.volume]) if vol else None

    if not kubernetes:
        view.families = _native_families(volumes, logical)
        return view

    records = _attribute(objs, backends, classify_all(objs, _mapper(backends)), volumes)
    unshared = {b.name: b.unshared_reason for b in backends}
    for key in sorted(records):
        rec = records[key]
        use = usage(rec.volume_ref)
        d = depth[rec.volume_ref.backend].get(rec.volume_ref.volume) if rec.volume_ref and use else None
        sharing, why = None, ""
        if rec.is_clone and rec.volume_ref is not None and use is not None:
            sharing, why = _sharing(volumes[rec.volume_ref.backend][rec.volume_ref.volume],
                                    unshared.get(rec.volume_ref.backend, "no-parent"))
        view.pvcs[key] = PvcRow(rec, use[0] if use else None, d, sharing, why)

    def family_backend(rec: CloneRecord) -> str:
        # A clone not bound yet still belongs with its StorageClass's backend.
        if rec.volume_ref is None and not rec.volume:
            for backend in backends:
                if backend.serves_provisioner(rec.provisioner):
                    return backend.name
        return rec.backend

    groups: dict[tuple[str, str, str, str], list[CloneRecord]] = defaultdict(list)
    for rec in records.values():
        if rec.is_clone:
            groups[(rec.family_kind, rec.family_namespace, rec.family_name, family_backend(rec))].append(rec)
    plans = {fkey: _family(objs, backends, records, volumes, *fkey, clones) for fkey, clones in groups.items()}
    # Bytes above a family's source (a golden kept in the RBD trash under its snapshot image) belong
    # to the family when it is the only one they serve; serving several, they are charged to none.
    above: dict[tuple[str, str, str, str], list[str]] = {}
    serving: Counter[tuple[str, str]] = Counter()
    for fkey, plan in plans.items():
        if plan is not None and plan[0] is not None:
            top = plan[0]
            above[fkey] = walk(volumes[top.backend], top.volume)[1:]
            serving.update((top.backend, a) for a in set(above[fkey]))
    for fkey, clones in sorted(groups.items()):
        _, ns, name, backend_name = fkey
        numbers = None
        plan = plans[fkey]
        if plan is not None:
            src, refs = plan
            members = ([usage(src)] if src else []) + [usage(r) for r in refs if src is None or r.volume != src.volume]
            held = sum(volumes[backend_name][a].consumed_bytes for a in above.get(fkey, [])
                       if serving[(backend_name, a)] == 1)
            numbers = _measured(members, held)
        view.families.append(FamilyRow(ns, name, backend_name, len(clones), numbers))

    profiles = objs.get("storageprofiles") or {}
    override = cdi_override((objs.get("cdis") or {}).values())
    for (_, sc_name), sc in sorted((objs.get("storageclasses") or {}).items()):
        provisioner = text(get(sc, "provisioner"))
        expected, _ = expected_clone_type(provisioner, annotations(sc),
                                          get(profiles.get(("", sc_name)), "status", "cloneStrategy"), override)
        view.storageclasses.append(StorageClassRow(sc_name, provisioner, expected))
    return view


Plan = tuple[VolumeRef | None, list[VolumeRef]] | None    # (source volume or None: independent copies, clones)


def _family(objs: Objects, backends: Sequence[Backend], records: Mapping[tuple[str, str], CloneRecord],
            volumes: Mapping[str, Mapping[str, Volume]],
            kind: str, ns: str, name: str, backend: str, clones: list[CloneRecord]) -> Plan:
    """Which volumes a family's numbers are made of; None when that cannot be told."""
    if backend not in volumes:
        return None
    refs = [c.volume_ref for c in clones if c.volume_ref is not None]
    source_ref = _source_volume(objs, backends, records, kind, ns, name)
    if kind == VOLUME_KIND:     # "<source>@<volume>": the chain's top volume is the source
        source_ref = VolumeRef(backend, "", name.partition("@")[2])
    if source_ref is None or source_ref.backend != backend:
        # The source is not measurable through Kubernetes (deleted golden PVC, unmapped snapshot):
        # the clones' common backend ancestor is the data they share.
        roots = {root_of(volumes[backend], r.volume) for r in refs}
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
        source_ref = VolumeRef(backend, "", root)
    return source_ref, refs


def _ancestors(vols: Mapping[str, Volume], vid: str) -> list[str]:
    """A volume's parents, nearest first, by id: the measured chain, then the first parent that is
    not measured (a trashed RBD image still names its parent, a FlashCopy source, a backing file)."""
    chain = walk(vols, vid)
    top = vols[chain[-1]].parent if chain else ""
    return chain[1:] + ([top] if top and top not in chain else [])


def _attribute(objs: Objects, backends: Sequence[Backend], records: dict[tuple[str, str], CloneRecord],
               volumes: Mapping[str, Mapping[str, Volume]]) -> dict[tuple[str, str], CloneRecord]:
    """Put each clone in the family it was really made from, by the storage's evidence.

    A DataSource (what DataImportCron moves to each new golden) or any source is resolved as it is
    now; a clone made before it moved still descends from the old golden. When the volume the
    family source maps to is not among a clone's ancestors, the clone goes to the nearest ancestor
    that a live PVC or VolumeSnapshot maps to, else to a family named after the source and the
    chain's top volume ("<source>@<volume>", kind BackendVolume). Without backend evidence (not
    measured, no parent) the resolution stays as Kubernetes says."""
    owner: dict[tuple[str, str], tuple[str, str, str]] = {}
    for (ns, name), rec in records.items():
        if rec.volume_ref is not None:
            owner[(rec.volume_ref.backend, rec.volume_ref.volume)] = (PVC_KIND, ns, name)
    for ns, name in (objs.get("volumesnapshots") or {}):
        ref = _snapshot_volume(objs, backends, ns, name)
        if ref is not None:
            owner.setdefault((ref.backend, ref.volume), (SNAPSHOT_KIND, ns, name))
    out = dict(records)
    sources: dict[tuple[str, str, str], VolumeRef | None] = {}      # per family: thousands of clones share one
    for key, rec in records.items():
        ref = rec.volume_ref
        vols = volumes.get(ref.backend) if ref is not None else None
        if not rec.is_clone or ref is None or not vols or ref.volume not in vols:
            continue
        ancestors = _ancestors(vols, ref.volume)
        fam_key = (rec.family_kind, rec.family_namespace, rec.family_name)
        if fam_key not in sources:
            sources[fam_key] = _source_volume(objs, backends, records, *fam_key)
        source = sources[fam_key]
        if not ancestors or source is None or source.backend != ref.backend or source.volume in ancestors:
            continue
        found = next((owner[(ref.backend, a)] for a in ancestors if (ref.backend, a) in owner), None)
        if found is not None:
            fam = family_of(objs, *found)
            out[key] = replace(rec, source_kind=found[0], source_namespace=found[1], source_name=found[2],
                               family_kind=fam[0], family_namespace=fam[1], family_name=fam[2])
        else:
            label = f"{_asked_for(objs, key, rec)}@{ancestors[-1]}"
            out[key] = replace(rec, source_kind=VOLUME_KIND, source_name=label,
                               family_kind=VOLUME_KIND, family_namespace=rec.source_namespace, family_name=label)
    return out


def _asked_for(objs: Objects, key: tuple[str, str], rec: CloneRecord) -> str:
    """What the clone was asked to be made from: the DataSource its DataVolume names, else its source."""
    pvc = (objs.get("persistentvolumeclaims") or {}).get(key)
    dv = find_datavolume(objs, pvc, *key) if pvc is not None else None
    ref = get(dv, "spec", "sourceRef")
    if get(ref, "kind") == DATASOURCE_KIND and text(get(ref, "name")):
        return text(get(ref, "name"))
    return rec.source_name


def _source_volume(objs: Objects, backends: Sequence[Backend], records: Mapping[tuple[str, str], CloneRecord],
                   kind: str, ns: str, name: str) -> VolumeRef | None:
    """The backend volume a family's source maps to, if Kubernetes can tell."""
    if kind == PVC_KIND and (ns, name) in records:
        return records[(ns, name)].volume_ref
    if kind == SNAPSHOT_KIND:
        return _snapshot_volume(objs, backends, ns, name)
    return None


def _sharing(vol: Volume, no_parent: str) -> tuple[bool, str]:
    """Whether a clone's volume still shares its parent's blocks, as the storage sees it now
    (whatever CDI recorded when it cloned): no parent any more (ceph-csi flattened it, the overlay
    was rebased, a full clone) or a finished background copy (FlashCopy at 100%) share nothing."""
    if not vol.parent:
        return False, no_parent
    if vol.parent_share <= 0:
        return False, "background-copy-complete"
    return True, ""


def _broken(vols: Mapping[str, Volume], vol: Volume) -> str:
    """Why this volume's parent cannot be followed: the backend's own reason (a backing file that
    does not exist, a FlashCopy source the array no longer lists), else that the parent is not
    among what was measured (another pool, a target that is down)."""
    if not vol.parent or vol.parent in vols:
        return ""
    return vol.parent_problem or "parent-not-measured"


def _measured(members: list[Usage], held: int = 0) -> FamilyNumbers | None:
    """Family numbers, or None when any member could not be measured: absent, not invented.
    `held`: bytes of volumes that hold the family's data without being members."""
    known = [(own, full) for own, full in (m or (0, None) for m in members) if full is not None]
    if len(known) != len(members):
        return None
    return family_numbers(known, held)


def _native_families(volumes: Mapping[str, Mapping[str, Volume]],
                     logical: Mapping[str, Mapping[str, int | None]]) -> list[FamilyRow]:
    rows = []
    for backend, vols in sorted(volumes.items()):
        members: dict[str, list[str]] = defaultdict(list)
        for vid, vol in vols.items():
            if vol.parent:
                members[root_of(vols, vid)].append(vid)
        for root, descendants in sorted(members.items()):
            if root not in vols or vols[root].parent:
                continue    # the root's own parent is not visible: no complete family to show
            # A driver's intermediates (ceph-csi temp clones, snapshot images) add their bytes to the
            # family but are neither clones nor would-be copies.
            clones = [v for v in descendants if not vols[v].link]
            links = [v for v in descendants if vols[v].link]
            if not clones:
                continue
            member_ids = [root] + clones
            fulls = [logical[backend].get(v) for v in member_ids]
            numbers = None
            if all(f is not None for f in fulls):
                pairs = [(vols[v].consumed_bytes, f or 0) for v, f in zip(member_ids, fulls, strict=True)]
                numbers = family_numbers(pairs, held=sum(vols[v].consumed_bytes for v in links))
            rows.append(FamilyRow("", root, backend, len(clones), numbers))
    return rows
