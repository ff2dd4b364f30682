"""Kubernetes objects kept packed: one marshal blob per object instead of a tree of dicts.

A slimmed PVC, PV or DataVolume is a dozen small dicts, ~1.5-2 KB; its marshal form is ~300-400
bytes. The watch cache and the inventory keep objects packed and unpack one when it is read,
which only the derivations touching it do (~2 us). Strings are interned before packing, so the
unpacked ones are shared too: what a record keeps of an object costs nothing extra.
"""

import marshal
from collections.abc import Iterator, Mapping
from typing import Any

Packed = bytes
# Format 4 writes interned strings as interned and marshal.loads interns them again.
_FORMAT = 4


def pack(obj: Any) -> Packed:
    return marshal.dumps(obj, _FORMAT)


def unpack(raw: Packed) -> Any:
    return marshal.loads(raw)


def same(raw: Packed | None, obj_raw: Packed) -> bool:
    """Whether two packed objects hold the same object. Equal bytes are; unequal bytes can still be
    (marshal marks a value shared depending on its reference count at packing time), so compare
    unpacked before calling it a change."""
    if raw is None:
        return False
    return raw == obj_raw or unpack(raw) == unpack(obj_raw)


class PackedBucket(Mapping[Any, Any]):
    """key -> object, kept packed. Reads unpack a fresh copy (mutating it changes nothing here)."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[Any, Packed] | None = None) -> None:
        self.raw: dict[Any, Packed] = raw if raw is not None else {}

    def __getitem__(self, key: Any) -> Any:
        return marshal.loads(self.raw[key])

    def get(self, key: Any, default: Any = None) -> Any:
        raw = self.raw.get(key)
        return default if raw is None else marshal.loads(raw)

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def __iter__(self) -> Iterator[Any]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedBucket):
            return self.raw.keys() == other.raw.keys() and all(same(self.raw[k], other.raw[k]) for k in self.raw)
        return Mapping.__eq__(self, other)

    __hash__ = None     # type: ignore[assignment]  # mutable, like dict

    def __repr__(self) -> str:
        return f"PackedBucket({len(self.raw)} objects)"


def packed_buckets(objs: Mapping[str, Mapping[Any, Any]]) -> dict[str, PackedBucket]:
    """Plain {resource: {key: obj}} (tests, benchmarks) as packed buckets; packed ones pass through."""
    return {r: b if isinstance(b, PackedBucket) else PackedBucket({k: pack(o) for k, o in b.items()})
            for r, b in objs.items()}
