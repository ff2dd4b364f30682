"""Stage 2a, claims and owners: which PVC (else VolumeSnapshot) owns each backend volume, and which
volume each VolumeSnapshot maps to.

Several objects may claim one volume (rare); the first by kind (PVC before VolumeSnapshot),
namespace and name owns it. Rows use owners to find the family a clone really descends from.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from ..backends.base import Backend, VolumeRef
from ..kube.objects import get, text
from ..kube.packed import PackedBucket
from ..kube.resources import VOLUMESNAPSHOT, VOLUMESNAPSHOTCONTENT
from ..model.classify import SNAPSHOT_KIND
from . import tokens
from .tokens import Key, Token, TrackedObjects

Claim = tuple[int, str, str, str]      # (0 for a PVC else 1 for a VolumeSnapshot, kind, namespace, name)
Owner = tuple[str, str, str]           # (kind, namespace, name)
PVC_CLAIM, SNAPSHOT_CLAIM = 0, 1


class Claims:
    def __init__(self, backends: Sequence[Backend]) -> None:
        self.backends = list(backends)
        # volume -> its claim, or a set of them when several claim it (a set per volume costs 2 MB at 10k)
        self._claims: dict[tuple[str, str], Claim | set[Claim]] = {}
        self.owner: dict[tuple[str, str], Owner] = {}
        self.snapshots: dict[Key, VolumeRef | None] = {}

    def reclaim(self, claim: Claim, old: VolumeRef | None, new: VolumeRef | None) -> set[Token]:
        """An object's claim moves from one volume to another (None: none)."""
        touched: set[Token] = set()
        if old is not None:
            touched |= self._claim((old.backend, old.volume), claim, False)
        if new is not None:
            touched |= self._claim((new.backend, new.volume), claim, True)
        return touched

    def _claim(self, vol: tuple[str, str], claim: Claim, add: bool) -> set[Token]:
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
        return {tokens.owner(*vol)}

    def update_snapshots(self, objs: Mapping[str, PackedBucket]) -> set[Token]:
        """Which volume each VolumeSnapshot maps to (RBD finds it by image name, so this follows
        refreshes too): few objects, redone whole when any snapshot, content or volume changed."""
        touched: set[Token] = set()
        tracked = TrackedObjects(objs, set())
        fresh = {key: self._snapshot_ref(tracked, *key) for key in objs.get(VOLUMESNAPSHOT.name, {})}
        for key in self.snapshots.keys() | fresh.keys():
            old, new = self.snapshots.get(key), fresh.get(key)
            if key in self.snapshots and key in fresh and old == new:
                continue
            touched.add(tokens.snapshot(key))
            touched |= self.reclaim((SNAPSHOT_CLAIM, SNAPSHOT_KIND, key[0], key[1]), old, new)
        self.snapshots = fresh
        return touched

    def _snapshot_ref(self, objs: Any, ns: str, name: str) -> VolumeRef | None:
        snap = objs.get(VOLUMESNAPSHOT.name).get((ns, name))
        content_name = text(get(snap, "status", "boundVolumeSnapshotContentName"))
        content = objs.get(VOLUMESNAPSHOTCONTENT.name).get(("", content_name))
        if content is None:
            return None
        for backend in self.backends:
            ref = backend.map_snapshot_content(content)
            if ref is not None:
                return ref
        return None
