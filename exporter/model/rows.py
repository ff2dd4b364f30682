"""The rows the collectors render (PVCs, families, StorageClasses, volumes) and the pure helpers that
derive them from what the backends measured; exporter.inventory.pipeline keeps them up to date."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..backends.base import TargetState, Volume
from .classify import CloneRecord
from .efficiency import FamilyNumbers, family_numbers, root_of
from .kubevirt import CloneProgress
from .unclaimed import UnclaimedRow, UnclaimedSum

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


@dataclass(frozen=True)
class VmVolumeRow:
    namespace: str
    vm: str
    volume_name: str    # "" for a DataVolume template no volume names
    kind: str           # dataVolume | persistentVolumeClaim (a disk), containerDisk, emptyDisk, memoryDump, ...
    claim: str          # the PVC of a disk; "" for other kinds
    found: bool         # a disk: its PVC exists


@dataclass(frozen=True)
class VmRow:
    namespace: str
    name: str
    disks: int                       # PVCs among its volumes
    provisioned_bytes: int | None    # of its disks together; None while any is missing or unknown, or none
    consumed_bytes: int | None
    fallback: bool | None            # any disk a clone that fell back; None when no disk is a clone
    source: tuple[str, str, str] | None      # (kind, namespace, name) it was cloned from; None: not a clone
    clone_type: str                  # its cloned disks' type, "mixed" when they differ
    golden: tuple[str, str, str, str] | None     # (kind, namespace, name, backend): the family its chain ends in


@dataclass(frozen=True)
class VmCloneRow:
    namespace: str
    name: str
    source_kind: str
    source_name: str
    target: str
    progress: CloneProgress | None   # None once Succeeded


@dataclass
class View:
    pvcs: dict[tuple[str, str], PvcRow] = field(default_factory=dict)
    families: list[FamilyRow] = field(default_factory=list)
    storageclasses: list[StorageClassRow] = field(default_factory=list)
    volumes: list[VolumeRow] = field(default_factory=list)
    states: dict[tuple[str, str], TargetState] = field(default_factory=dict)
    vms: list[VmRow] = field(default_factory=list)
    vm_volumes: list[VmVolumeRow] = field(default_factory=list)
    vm_clones: list[VmCloneRow] = field(default_factory=list)
    unclaimed: list[UnclaimedRow] = field(default_factory=list)
    unclaimed_sums: list[UnclaimedSum] = field(default_factory=list)


def sharing(vol: Volume, no_parent: str) -> tuple[bool, str]:
    """Whether a clone's volume still shares its parent's blocks, as the storage sees it now
    (whatever CDI recorded when it cloned): no parent any more (ceph-csi flattened it, the overlay
    was rebased, a full clone) or a finished background copy (FlashCopy at 100%) share nothing."""
    if not vol.parent:
        return False, no_parent
    if vol.parent_share <= 0:
        return False, "background-copy-complete"
    return True, ""


def broken_reason(vols: Mapping[str, Volume], vol: Volume) -> str:
    """Why this volume's parent cannot be followed: the backend's own reason (a backing file that
    does not exist, a FlashCopy source the array no longer lists), else that the parent is not
    among what was measured (another pool, a target that is down)."""
    if not vol.parent or vol.parent in vols:
        return ""
    return vol.parent_problem or "parent-not-measured"


def measured(members: list[Usage], held: int = 0) -> FamilyNumbers | None:
    """Family numbers, or None when any member could not be measured: absent, not invented.
    `held`: bytes of volumes that hold the family's data without being members."""
    known = [(own, full) for own, full in (m or (0, None) for m in members) if full is not None]
    if len(known) != len(members):
        return None
    return family_numbers(known, held)


def native_families(volumes: Mapping[str, Mapping[str, Volume]],
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
