"""Stage 1, the volume graph: per backend, its targets' volumes merged, who hangs below whom, and each
volume's logical bytes, depth and row. A changed volume re-derives its descendants too, whose
numbers follow their ancestors."""

from collections.abc import Mapping, Sequence

from ..backends.base import Backend, TargetState, Volume, VolumeRef
from ..model.efficiency import chain_numbers, walk
from ..model.rows import Usage, VolumeRow, broken_reason
from . import tokens
from .dirty import Dirty
from .tokens import Token

VolumeKey = tuple[int, str]     # (the backend's position, volume id): the volume collectors' row key


class VolumeGraph:
    def __init__(self, backends: Sequence[Backend]) -> None:
        self.backends = list(backends)
        self._position = {b.name: i for i, b in enumerate(self.backends)}
        self.states: dict[tuple[str, str], TargetState] = {}
        self._targets: dict[str, dict[str, dict[str, Volume]]] = {b.name: {} for b in self.backends}
        self.volumes: dict[str, dict[str, Volume]] = {b.name: {} for b in self.backends}
        self._children: dict[str, dict[str, set[str]]] = {b.name: {} for b in self.backends}
        self.logical: dict[str, dict[str, int | None]] = {b.name: {} for b in self.backends}
        self.depth: dict[str, dict[str, int]] = {b.name: {} for b in self.backends}
        self.rows: dict[VolumeKey, VolumeRow] = {}

    def update(self, states: Mapping[str, Mapping[str, TargetState]], dirty: Dirty) -> set[Token]:
        """Take each backend's refresh states; answer the tokens of the volumes that changed."""
        touched: set[Token] = set()
        # Replaced whole, not filled in place: a scrape reads it while this runs.
        self.states = {(b.name, t): st for b in self.backends for t, st in states.get(b.name, {}).items()}
        for backend in self.backends:
            b = backend.name
            now = {t: st.volumes for t, st in states.get(b, {}).items()}
            changed = _changed_ids(self._targets[b], now)
            self._targets[b] = now
            if changed:
                moved = self._merge(b, now, changed)
                self._redo(b, self._descendants(b, moved), dirty)
                touched |= {tokens.volume(b, vid) for vid in moved}
        return touched

    def _merge(self, b: str, now: dict[str, dict[str, Volume]], changed: set[str]) -> set[str]:
        """Put the changed ids' volumes in the merged view; answer those that really moved."""
        vols, kids = self.volumes[b], self._children[b]
        moved: set[str] = set()
        for vid in changed:
            # The last target that holds an id wins, as when the targets are merged in order.
            fresh = next((tv[vid] for tv in reversed(list(now.values())) if vid in tv), None)
            old = vols.get(vid)
            if fresh is old or fresh == old:
                continue
            moved.add(vid)
            if old is not None and old.parent:
                siblings = kids.get(old.parent)
                if siblings is not None:
                    siblings.discard(vid)
                    if not siblings:
                        del kids[old.parent]
            if fresh is None:
                del vols[vid]
            else:
                vols[vid] = fresh
                if fresh.parent:
                    kids.setdefault(fresh.parent, set()).add(vid)
        return moved

    def _descendants(self, b: str, moved: set[str]) -> set[str]:
        kids = self._children[b]
        affected, todo = set(moved), list(moved)
        while todo:
            for child in kids.get(todo.pop(), ()):
                if child not in affected:
                    affected.add(child)
                    todo.append(child)
        return affected

    def _redo(self, b: str, affected: set[str], dirty: Dirty) -> None:
        """A volume's logical bytes, depth and broken chain follow its ancestors."""
        vols, pos = self.volumes[b], self._position[b]
        for vid in affected:
            vol = vols.get(vid)
            if vol is None:
                self.logical[b].pop(vid, None)
                self.depth[b].pop(vid, None)
                self.rows.pop((pos, vid), None)
            else:
                self.logical[b][vid], self.depth[b][vid] = chain_numbers(vols, vid)
                self.rows[(pos, vid)] = VolumeRow(b, vol, self.depth[b][vid], broken_reason(vols, vol))
            dirty.volumes.add((pos, vid))

    def chain(self, b: str, vid: str, read: set[Token]) -> list[str]:
        """walk() that notes each volume read, and the missing parent the chain stops at."""
        vols = self.volumes.get(b, {})
        chain = walk(vols, vid)
        read.update(tokens.volume(b, v) for v in chain)
        last = vols[chain[-1]].parent if chain else vid
        if last:
            read.add(tokens.volume(b, last))
        return chain

    def use(self, ref: VolumeRef | None) -> Usage:
        """(own bytes, full-copy bytes) of a measured volume, None when it is not measured."""
        if ref is None:
            return None
        vol = self.volumes.get(ref.backend, {}).get(ref.volume)
        return (vol.consumed_bytes, self.logical[ref.backend][ref.volume]) if vol else None


def _changed_ids(before: Mapping[str, Mapping[str, Volume]], now: Mapping[str, Mapping[str, Volume]]) -> set[str]:
    """The ids whose volume differs between two refreshes of a backend's targets."""
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
    return changed
