"""Stage 3, space no PV owns: which volumes of each backend no PV and no VolumeSnapshotContent of this
cluster maps to, each with its reason (model.unclaimed), and their own bytes summed per target and
reason.

The claims are kept change by change (a PV maps to its volume once, when it changes), and so are the
PVCs that wait for a PV (a volume the driver made for one is being provisioned, not leaked); a
backend's reasons are redone whole when the facts they are drawn from changed (a volume came or went,
or its parent, trash state, marks, request or age), when the claims on its volumes changed, when a PVC
began or stopped waiting (for a backend whose volumes name their requests), when whether the claims can
be trusted changed, or when a clone in progress is due to turn stale: a pass over its volumes, as the
volume graph's own. A refresh that changed only bytes (most of them) costs a look at the volumes
that moved, and the sums.
"""

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

from ..backends.base import Backend, Volume, VolumeRef
from ..kube.objects import get, text
from ..kube.packed import PackedBucket
from ..kube.resources import PV, PVC, VOLUMESNAPSHOTCONTENT
from ..model.unclaimed import IN_PROGRESS, SumKey, UnclaimedRow, UnclaimedSettings, UnclaimedSum, reasons
from .dirty import Dirty
from .tokens import Key, Kind, Token
from .volumes import VolumeGraph, VolumeKey


class Unclaimed:
    def __init__(self, backends: Sequence[Backend], graph: VolumeGraph, settings: UnclaimedSettings) -> None:
        self.backends = list(backends)
        # A backend whose volumes nothing owns (qcow2 files: `owns_volumes = False`) has none unclaimed.
        self._position = {b.name: i for i, b in enumerate(self.backends) if getattr(b, "owns_volumes", True)}
        # A backend whose volumes no PV ever maps to (VMware's VM disk layers: `map_pv` is always None)
        # gives only what its storage says: without a claim to miss, every VM's disk would read unknown.
        self._pv_owned = {b.name for b in self.backends if getattr(b, "pv_owned", True)}
        self._graph, self._settings = graph, settings
        self._pvs: dict[Key, VolumeRef] = {}
        self._contents: dict[Key, VolumeRef] = {}
        self._waiting: dict[Key, str] = {}          # PVC -> its uid, while it is not bound to a PV
        # PVs of a driver a backend serves that map to nothing yet: a backend may find the volume only
        # once it has read it (FlashSystem: the array holding a vdisk UID), so they are tried again.
        self._unmapped: set[Key] = set()
        self._requests: set[str] = set()            # backends with volumes that name their requests
        self._claimed: dict[str, dict[str, int]] = {b.name: {} for b in self.backends}   # backend -> vid -> claims
        self._trusted: bool | None = None
        self._due = float("inf")            # when a clone in progress turns stale
        self._first_seen: dict[str, dict[str, float]] = {b.name: {} for b in self.backends}
        self._facts: dict[str, dict[str, tuple[Any, ...]]] = {b.name: {} for b in self.backends}   # as last redone
        self.rows: dict[VolumeKey, UnclaimedRow] = {}
        self.sums: dict[SumKey, UnclaimedSum] = {}

    def update(self, objs: Mapping[str, PackedBucket], changed: Iterable[tuple[str, Key]], volumes_changed: Set[Token],
               trusted: bool, dirty: Dirty, now: float | None = None) -> None:
        """changed: the (resource, key) of watched objects that changed (PVs, PVCs, VolumeSnapshotContents);
        volumes_changed: the volume graph's tokens of the volumes that moved; trusted: whether the PV,
        PVC and VolumeSnapshotContent lists are complete (else only storage-side reasons are given)."""
        now = time.time() if now is None else now
        changed = list(changed)
        redo: set[str] = set()
        pvs = objs.get(PV.name) or PackedBucket()
        pvcs = objs.get(PVC.name) or PackedBucket()
        for resource, key in changed:
            if resource == PV.name:
                redo |= self._map_pv(key, pvs.get(key))
            elif resource == PVC.name:
                uid = _waiting_uid(pvcs.get(key))
                if uid == self._waiting.get(key):
                    continue
                if uid:
                    self._waiting[key] = uid
                else:
                    del self._waiting[key]
                redo |= self._requests
        contents = objs.get(VOLUMESNAPSHOTCONTENT.name) or PackedBucket()
        moved: dict[str, list[str]] = {}
        for token in volumes_changed:
            if token[0] is Kind.VOLUME:
                backend, vid = token[1:]
                moved.setdefault(str(backend), []).append(str(vid))
        if moved:
            for key in list(self._unmapped):
                redo |= self._map_pv(key, pvs.get(key))
        if moved or any(resource == VOLUMESNAPSHOTCONTENT.name for resource, _ in changed):
            # A backend may find a snapshot's volume by what it measured (RBD: by image name): redone
            # whole, contents are few.
            for key in set(self._contents) | set(contents):
                redo |= self._move(self._contents, key,
                                   self._map(lambda b, o: b.map_snapshot_content(o), contents.get(key)))
        if trusted != self._trusted or now >= self._due:
            redo = set(self._position)
        redo |= {b for b, vids in moved.items() if b in self._position and self._reshaped(b, vids)}
        self._trusted = trusted
        if redo:
            self._redo(redo, trusted, now, dirty)
        rest = {b: vids for b, vids in moved.items() if b not in redo}
        if rest:
            self._rebytes(rest, dirty)

    def _map_pv(self, key: Key, pv: dict[str, Any] | None) -> set[str]:
        ref = self._map(lambda b, o: b.map_pv(o), pv)
        driver = text(get(pv, "spec", "csi", "driver"))
        if ref is None and driver and any(b.serves_provisioner(driver) for b in self.backends):
            self._unmapped.add(key)
        else:
            self._unmapped.discard(key)
        return self._move(self._pvs, key, ref)

    def _map(self, how: Any, obj: dict[str, Any] | None) -> VolumeRef | None:
        if obj is None:
            return None
        for backend in self.backends:
            ref = how(backend, obj)
            if ref is not None:
                return ref          # type: ignore[no-any-return]
        return None

    def _move(self, refs: dict[Key, VolumeRef], key: Key, new: VolumeRef | None) -> set[str]:
        """An object's claim moves; the backends whose claims changed."""
        old = refs.get(key)
        if old == new:
            return set()
        touched = set()
        if old is not None:
            del refs[key]
            counts = self._claimed.setdefault(old.backend, {})
            counts[old.volume] -= 1
            if not counts[old.volume]:
                del counts[old.volume]
            touched.add(old.backend)
        if new is not None:
            refs[key] = new
            counts = self._claimed.setdefault(new.backend, {})
            counts[new.volume] = counts.get(new.volume, 0) + 1
            touched.add(new.backend)
        return touched

    def _reshaped(self, b: str, vids: Iterable[str]) -> bool:
        """Whether any of these volumes changed in what a reason is drawn from (not its bytes)."""
        vols, facts = self._graph.volumes.get(b, {}), self._facts[b]
        return any(facts.get(vid) != (_facts(vols[vid]) if vid in vols else None) for vid in vids)

    def _rebytes(self, moved: Mapping[str, Iterable[str]], dirty: Dirty) -> None:
        """Only bytes moved: the unclaimed rows take their volumes' new figures, the sums follow."""
        rows = self.rows
        for b, vids in moved.items():
            if b not in self._position:
                continue
            vols, pos = self._graph.volumes.get(b, {}), self._position[b]
            for vid in vids:
                row = rows.get((pos, vid))
                if row is not None and row.volume != vols[vid]:
                    if rows is self.rows:
                        rows = dict(rows)       # replaced whole, never edited in place: a scrape reads it
                    rows[(pos, vid)] = dataclasses.replace(row, volume=vols[vid])
                    dirty.unclaimed.add((pos, vid))
        if rows is not self.rows:
            self.rows = rows
            self._sum(dirty)

    def _redo(self, backends: set[str], trusted: bool, now: float, dirty: Dirty) -> None:
        rows: dict[VolumeKey, UnclaimedRow] = {k: r for k, r in self.rows.items() if r.backend not in backends}
        for b in sorted(backends & set(self._position)):
            vols = self._graph.volumes.get(b, {})
            self._facts[b] = {vid: _facts(v) for vid, v in vols.items()}
            seen = self._first_seen[b] = {vid: self._first_seen[b].get(vid, now) for vid, v in vols.items()
                                          if v.csi_kind == "temp" and not v.created}
            claims = self._claimed.get(b, {}).keys() if trusted and b in self._pv_owned else None
            if any(v.request for v in vols.values()):
                self._requests.add(b)
            else:
                self._requests.discard(b)
            found = reasons(vols, claims, now, self._settings, seen, set(self._waiting.values()))
            pos = self._position[b]
            for vid, reason in found.items():
                rows[(pos, vid)] = UnclaimedRow(b, vols[vid], reason)
        self._due = min((r.volume.created or self._first_seen[r.backend].get(r.volume.volume, now))
                        + self._settings.temp_age_seconds for r in rows.values() if r.reason == IN_PROGRESS) \
            if any(r.reason == IN_PROGRESS for r in rows.values()) else float("inf")
        for key in self.rows.keys() | rows.keys():
            if self.rows.get(key) != rows.get(key):
                dirty.unclaimed.add(key)
        self.rows = rows
        self._sum(dirty)

    def _sum(self, dirty: Dirty) -> None:
        sums: dict[SumKey, UnclaimedSum] = {}
        for row in self.rows.values():
            k = (row.backend, row.volume.target, row.reason)
            s = sums.get(k)
            sums[k] = UnclaimedSum(*k, (s.bytes if s else 0) + row.volume.consumed_bytes, (s.volumes if s else 0) + 1)
        for sum_key in self.sums.keys() | sums.keys():
            if self.sums.get(sum_key) != sums.get(sum_key):
                dirty.unclaimed_sums.add(sum_key)
        self.sums = sums


def _facts(vol: Volume) -> tuple[Any, ...]:
    """What model.unclaimed.reasons draws a volume's reason from: all of it but the bytes."""
    return (vol.target, vol.parent, vol.trashed, vol.link, vol.made_by, vol.csi_kind, vol.created, vol.unreferenced,
            vol.request)


def _waiting_uid(pvc: dict[str, Any] | None) -> str | None:
    """A PVC's uid while it waits for a PV (none named in its spec yet); None otherwise."""
    if pvc is None or text(get(pvc, "spec", "volumeName")):
        return None
    return text(get(pvc, "metadata", "uid")) or None
