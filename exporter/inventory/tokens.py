"""Who read what: the dependency bookkeeping that lets the inventory re-derive only what a change touches.

A derivation (one PVC's record, one family's numbers) runs with a token set; every input it reads
adds a token, built by the constructors below: `obj` for a watched object, `resource` for a whole
resource, and the inventory's own `volume`, `ref` (a PVC's volume reference), `owner` (who claims a
volume), `snapshot` (a VolumeSnapshot's volume), `serving` (how many families a volume serves),
`row` (a PVC's row, which its VMs read) and `clone_target` (the VirtualMachineClone that made a VM).
A change names the tokens it touches; the index answers which derivations read any of them. A lookup
of an absent key is a read too: its later arrival must reach whoever looked.

A token is a plain tuple that starts with its Kind (an IntEnum: hashed and compared in C, as the
tuples it replaced), so two kinds never collide and a reader can tell them apart.
"""

from collections.abc import Hashable, Iterable, Iterator, Mapping
from enum import IntEnum
from typing import Any

Key = tuple[str, str]       # (namespace or "", name)


class Kind(IntEnum):
    OBJECT = 1
    RESOURCE = 2
    VOLUME = 3
    REF = 4
    OWNER = 5
    SNAPSHOT = 6
    SERVING = 7
    ROW = 8
    CLONE_TARGET = 9


Token = tuple[Kind, *tuple[Hashable, ...]]
_EMPTY: Mapping[Any, Any] = {}
_NONE = object()


def obj(resource: str, key: Hashable) -> Token:
    """A watched object, present or not."""
    return (Kind.OBJECT, resource, key)


def resource(name: str) -> Token:
    """Every object of a resource (a reader that iterated it)."""
    return (Kind.RESOURCE, name)


def volume(backend: str, vid: str) -> Token:
    """A backend volume as measured."""
    return (Kind.VOLUME, backend, vid)


def ref(pvc: Key) -> Token:
    """Which backend volume a PVC's record maps to."""
    return (Kind.REF, pvc)


def owner(backend: str, vid: str) -> Token:
    """Which PVC (else VolumeSnapshot) owns a backend volume."""
    return (Kind.OWNER, backend, vid)


def snapshot(key: Key) -> Token:
    """Which backend volume a VolumeSnapshot maps to."""
    return (Kind.SNAPSHOT, key)


def serving(backend: str, vid: str) -> Token:
    """How many families a volume above their sources serves."""
    return (Kind.SERVING, backend, vid)


def row(pvc: Key) -> Token:
    """A PVC's row as rendered (record after attribution, bytes, family): what a VM reads of its disks."""
    return (Kind.ROW, pvc)


def clone_target(vm: Key) -> Token:
    """Which VirtualMachineClone names a VM as its target."""
    return (Kind.CLONE_TARGET, vm)


class DepIndex:
    """Derivation key -> the tokens it read; token -> the derivation keys that read it.

    Most tokens have one reader (a PVC's own PV, DataVolume and volume): those map to the key
    itself rather than to a one-element set, which halves the index at 10,000 PVCs. A token many
    read (the StorageClass, the golden's PVC and volume) is built afresh by each reader: the index
    keeps one instance of it for all of them (`_shared`)."""

    __slots__ = ("_by", "_of", "_shared")

    def __init__(self) -> None:
        self._of: dict[Hashable, tuple[Token, ...]] = {}
        self._by: dict[Token, Any] = {}      # token -> a key, or a set of keys when several read it
        self._shared: dict[Token, Token] = {}   # tokens with several readers -> the instance kept

    def note(self, key: Hashable, tokens: Iterable[Token]) -> None:
        new = set(tokens)
        old = self._of.get(key, ())
        by = self._by
        for t in old:
            if t not in new:
                readers = by[t]
                if isinstance(readers, set):
                    readers.discard(key)
                    if len(readers) == 1:
                        by[t] = next(iter(readers))
                        self._shared.pop(t, None)
                else:
                    del by[t]
        shared = self._shared
        kept = []
        for t in new:
            readers = by.get(t, _NONE)
            if readers is _NONE:
                by[t] = key
            elif isinstance(readers, set):
                readers.add(key)
                t = shared.setdefault(t, t)
            elif readers != key:
                by[t] = {readers, key}
                t = shared.setdefault(t, t)
            kept.append(t)
        if kept:
            self._of[key] = tuple(kept)
        else:
            self._of.pop(key, None)

    def drop(self, key: Hashable) -> None:
        self.note(key, ())

    def readers(self, tokens: Iterable[Token]) -> set[Any]:
        out: set[Any] = set()
        by = self._by
        for t in tokens:
            readers = by.get(t, _NONE)
            if readers is _NONE:
                continue
            if isinstance(readers, set):
                out |= readers
            else:
                out.add(readers)
        return out

    def __len__(self) -> int:
        return len(self._of)


class TrackedObjects:
    """The watch cache's objects, read-only, noting each read in `tokens` (classification's `objs`)."""

    __slots__ = ("_objs", "tokens")

    def __init__(self, objs: Mapping[str, Mapping[Any, Any]], tokens: set[Token]) -> None:
        self._objs = objs
        self.tokens = tokens

    def get(self, resource: str, default: Any = None) -> "TrackedBucket":
        return TrackedBucket(self._objs.get(resource, _EMPTY), resource, self.tokens)


class TrackedBucket:
    __slots__ = ("_bucket", "_resource", "_tokens")

    def __init__(self, bucket: Mapping[Any, Any], resource: str, tokens: set[Token]) -> None:
        self._bucket, self._resource, self._tokens = bucket, resource, tokens

    def __bool__(self) -> bool:
        return True         # "is there a bucket" must not skip the lookup a later object would answer

    def get(self, key: Any, default: Any = None) -> Any:
        self._tokens.add((Kind.OBJECT, self._resource, key))      # obj(), inlined: the hottest read
        return self._bucket.get(key, default)

    def __contains__(self, key: Any) -> bool:
        self._tokens.add(obj(self._resource, key))
        return key in self._bucket

    def _all(self) -> Mapping[Any, Any]:
        self._tokens.add(resource(self._resource))
        return self._bucket

    def values(self) -> Iterable[Any]:
        return self._all().values()

    def items(self) -> Iterable[tuple[Any, Any]]:
        return self._all().items()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
