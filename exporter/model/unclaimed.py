"""Space that no PV owns: for each volume of a backend that no PV and no VolumeSnapshotContent of this
cluster maps to, one reason, from what the storage says of it (backends/base.Volume's `made_by`,
`csi_kind`, `trashed`, `created`, `unreferenced`) and the clone chains (pure).

The reasons, in the order they are decided (docs/metrics.md and the runbook say what to do with each):
  foreign            another cluster's CSI driver instance made it (RBD: it is journaled, but not in the
                     journal of the instance this exporter is told is ours). Never ours to reclaim.
  held-by-clones     unclaimed or trashed, but an ancestor of a volume that must stay (one a PV or a
                     VolumeSnapshotContent maps to, or one reported foreign, unknown or clone-in-progress):
                     clones still read through it. Not reclaimable; counted apart, never alerted on.
  trash              in the storage's trash (RBD), nothing that must stay below it: reclaimable.
  stale-temp         a driver's temporary clone (ceph-csi `csi-vol-<uuid>-temp`) with no live child, older
                     than the threshold: a PVC-PVC clone that was interrupted.
  clone-in-progress  the same, younger than the threshold, or of any age while the PVC it is made for
                     waits (below): a clone at work. Never called leaked.
  orphan-snapshot    a driver's snapshot image (ceph-csi `csi-snap-<uuid>`) whose VolumeSnapshotContent is gone.
  provisioning       a volume this cluster's driver made for a PVC that exists and is not bound yet (the
                     driver's records name the PV it is made for, pvc-<PVC uid>): the driver makes the
                     volume before the provisioner makes its PV, and ceph-csi holds a clone back until a
                     deep chain is flattened. Never called leaked.
  leaked             a volume this cluster's driver made (RBD: in our instance's journal) whose PV is gone.
  <unreferenced>     what the backend alone can tell (e.g. a disk file that no VM or template names).
  unknown            nothing on the storage says who made it, and no PV maps to it.

A driver's intermediates (ceph-csi's temp and snapshot images, `Volume.link`) above a claimed volume
(or one being provisioned) are claimed through it: they are part of its chain, not space of their own.

Storage-side only (native mode, or while the PV, PVC or VolumeSnapshotContent list cannot be trusted:
not listed yet, or its last list or watch failed): whether a PV maps to a volume is not known, so
only foreign, trash, held-by-clones (a trashed volume with a live one below), stale-temp,
clone-in-progress and a backend's own unreferenced reason are given; every other volume gets none.
Nothing rather than a false leaked.
"""

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass

from ..backends.base import Volume

FOREIGN, HELD, TRASH = "foreign", "held-by-clones", "trash"
STALE_TEMP, IN_PROGRESS, PROVISIONING, ORPHAN_SNAPSHOT, LEAKED, UNKNOWN = (
    "stale-temp", "clone-in-progress", "provisioning", "orphan-snapshot", "leaked", "unknown")
# Reasons whose volumes can be reclaimed once the runbook's check passes: what the alert sums.
RECLAIMABLE = (LEAKED, STALE_TEMP, ORPHAN_SNAPSHOT)
# Volumes that must stay: whatever hangs above them is held by clones.
_KEPT = (FOREIGN, UNKNOWN, IN_PROGRESS, PROVISIONING)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEFAULT_TEMP_AGE = 3600.0
SumKey = tuple[str, str, str]       # (backend, target, reason)


@dataclass(frozen=True)
class UnclaimedSettings:
    temp_age_seconds: float = DEFAULT_TEMP_AGE     # a temporary clone older than this with no child is stale


@dataclass(frozen=True)
class UnclaimedRow:
    """One volume no PV owns, and why."""
    backend: str
    volume: Volume
    reason: str


@dataclass(frozen=True)
class UnclaimedSum:
    """The own bytes of a target's unclaimed volumes of one reason."""
    backend: str
    target: str
    reason: str
    bytes: int
    volumes: int


DEFAULTS = UnclaimedSettings()


def request_uid(request: str) -> str:
    """The PVC uid a CSI request name ends in (the external-provisioner names a PV, and so the request,
    `<prefix>-<PVC uid>`, pvc- by default); "" when it ends in none."""
    tail = request[-36:]
    return tail if len(request) > 36 and request[-37] == "-" and _UUID.fullmatch(tail) else ""


def reasons(volumes: Mapping[str, Volume], claimed: Set[str] | None, now: float,
            settings: UnclaimedSettings = DEFAULTS,
            first_seen: Mapping[str, float] | None = None, waiting: Set[str] = frozenset()) -> dict[str, str]:
    """Volume id -> reason for every unclaimed volume that gets one. `claimed`: the ids a PV or a
    VolumeSnapshotContent maps to; None when that cannot be known (storage-side reasons only).
    `first_seen`: when the exporter first saw a volume, the age of one the storage gives no time for.
    `waiting`: the uids of the PVCs that exist and are not bound to a PV yet."""
    children: dict[str, list[str]] = {}
    for vid, vol in volumes.items():
        if vol.parent in volumes:
            children.setdefault(vol.parent, []).append(vid)
    seen = first_seen or {}

    def age(vid: str) -> float:
        made = volumes[vid].created or seen.get(vid, now)
        return now - made

    def pending(vol: Volume) -> bool:
        # Nothing waits (the usual case): no request is parsed on this pass over every volume.
        return bool(waiting) and claimed is not None and bool(vol.request) and request_uid(vol.request) in waiting

    def temp_reason(vid: str) -> str | None:
        if any(not volumes[c].trashed for c in children.get(vid, ())):
            return None         # a live child reads through it: it is what that child says
        if pending(volumes[vid]) or age(vid) < settings.temp_age_seconds:
            return IN_PROGRESS
        return STALE_TEMP

    own: dict[str, str] = {}
    for vid, vol in volumes.items():
        if claimed is not None and vid in claimed:
            continue
        reason = _own_reason(vol, temp_reason(vid) if vol.csi_kind == "temp" and not vol.trashed else None,
                             claimed is not None, pending(vol))
        if reason is not None:
            own[vid] = reason
    # What must stay: whatever is above it is held by clones (or, for an intermediate above a claimed
    # volume, claimed through it).
    if claimed is None:
        anchors = {vid for vid, vol in volumes.items() if not vol.trashed and not _is_temp(vol)}
        anchors |= {vid for vid, r in own.items() if r in (FOREIGN, IN_PROGRESS)}
    else:
        anchors = set(claimed) | {vid for vid, r in own.items() if r in _KEPT}
    above_claimed = _ancestors(volumes, set(claimed or ()) | {vid for vid, r in own.items() if r == PROVISIONING})
    above_kept = above_claimed | _ancestors(volumes, anchors - set(claimed or ()))
    out: dict[str, str] = {}
    for vid, vol in volumes.items():
        if claimed is not None and vid in claimed:
            continue
        reason = own.get(vid)
        if reason == FOREIGN:
            out[vid] = reason
        elif vid in above_claimed and _is_link(vol) and not vol.trashed:
            continue            # an intermediate of a claimed volume's chain
        elif vid in above_kept and (vol.trashed or claimed is not None):
            out[vid] = HELD
        elif reason is not None:
            out[vid] = reason
    return out


def _is_temp(vol: Volume) -> bool:
    return vol.csi_kind == "temp"


def _is_link(vol: Volume) -> bool:
    """A driver's intermediate: by the backend's naming, or by what the driver's own records say."""
    return vol.link or vol.csi_kind in ("temp", "snapshot")


def _own_reason(vol: Volume, temp: str | None, trusted: bool, pending: bool) -> str | None:
    """A volume's reason from its own facts, as if nothing hung below it."""
    if vol.made_by == "foreign":
        return FOREIGN
    if vol.trashed:
        return TRASH
    if temp is not None:
        return temp
    if not trusted:
        return vol.unreferenced or None
    if vol.csi_kind == "snapshot":
        return ORPHAN_SNAPSHOT
    if vol.made_by == "csi":
        return PROVISIONING if pending else LEAKED
    return vol.unreferenced or UNKNOWN


def _ancestors(volumes: Mapping[str, Volume], below: Set[str]) -> set[str]:
    """Every volume above any of `below` in its chain (a cycle or a missing parent ends a walk)."""
    out: set[str] = set()
    for vid in below:
        parent = volumes[vid].parent if vid in volumes else ""
        while parent and parent in volumes and parent not in out:
            out.add(parent)
            parent = volumes[parent].parent
    return out
