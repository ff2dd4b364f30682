"""An RBD image's header as cls_rbd keeps it: the omap of the object `rbd_header.<image id>`
(src/cls/rbd/cls_rbd.cc, cls_rbd.h, cls_rbd_types.cc). Raw u64 values for size, features and flags;
`cls_rbd_parent` for a clone's parent; one `cls_rbd_snap` per snapshot of any namespace under
`snapshot_<id as %016x>`. The layouts are the same from Nautilus to Squid (docs/field-facts.md).
"""

from dataclasses import dataclass

from .encoding import CEPH_NOSNAP, DecodeError, Decoder, u64_value

# The keys read in one omap op together with every `snapshot_` key (see rados_reader.py).
KEYS = ("size", "order", "features", "flags", "snap_seq", "op_features", "parent", "stripe_unit", "stripe_count",
        "object_prefix", "create_timestamp")
SNAPSHOT_PREFIX = "snapshot_"

# RBD_FEATURE_* (include/rbd/features.h) and RBD_FLAG_* (include/rbd/librbd.h).
STRIPINGV2, OBJECT_MAP, FAST_DIFF, DATA_POOL = 1 << 1, 1 << 3, 1 << 4, 1 << 7
MIGRATING, NON_PRIMARY = 1 << 9, 1 << 10
KNOWN_FEATURES = (1 << 11) - 1         # layering .. non-primary: what Pacific to Squid define
OBJECT_MAP_INVALID, FAST_DIFF_INVALID = 1 << 0, 1 << 1
OP_MIGRATION = 1 << 4                  # RBD_OPERATION_FEATURE_MIGRATION

USER, GROUP, TRASH, MIRROR = 0, 1, 2, 3     # cls::rbd::SnapshotNamespaceType
NO_OBJECT_MAP = "no object map"


@dataclass(frozen=True)
class Parent:
    """cls_rbd_parent: where a clone reads what it has not written."""
    pool_id: int
    namespace: str
    image_id: str
    snap_id: int


@dataclass(frozen=True)
class Snapshot:
    snap_id: int
    name: str              # a trash-namespace snapshot's name is a UUID; librbd reports that name too
    size: int
    flags: int             # the header's flags when it was taken (an invalid object map stays invalid)
    namespace: int


@dataclass(frozen=True)
class Header:
    size: int
    order: int
    features: int
    flags: int
    op_features: int
    stripe_unit: int
    stripe_count: int
    parent: Parent | None
    snapshots: tuple[Snapshot, ...]      # every namespace, by id
    object_prefix: str = ""              # its data objects are `<prefix>.<object number as %016x>`
    created: float = 0.0                 # create_timestamp (utime_t), Unix seconds; 0 when the header has none

    @property
    def object_size(self) -> int:
        return 1 << self.order

    def version(self, snap_id: int) -> tuple[int, int]:
        """(size, flags) of the head (CEPH_NOSNAP) or of one snapshot."""
        if snap_id == CEPH_NOSNAP:
            return self.size, self.flags
        snap = next(s for s in self.snapshots if s.snap_id == snap_id)
        return snap.size, snap.flags


def decode_header(omap: dict[str, bytes]) -> Header:
    """The header from its omap values (the KEYS present, and the `snapshot_` keys)."""
    try:
        order = omap["order"]
        size, features = u64_value(omap["size"]), u64_value(omap["features"])
    except KeyError as missing:
        raise DecodeError(f"the header has no {missing}") from None
    if len(order) != 1 or not 12 <= order[0] <= 26:
        raise DecodeError(f"object order {order.hex()}")
    unit = u64_value(omap["stripe_unit"]) if "stripe_unit" in omap else 1 << order[0]
    count = u64_value(omap["stripe_count"]) if "stripe_count" in omap else 1
    if unit <= 0 or count <= 0 or (1 << order[0]) % unit:
        raise DecodeError(f"striping {unit} x {count}")
    snaps = sorted((decode_snapshot(v) for k, v in omap.items() if k.startswith(SNAPSHOT_PREFIX)),
                   key=lambda s: s.snap_id)
    return Header(size=size, order=order[0], features=features,
                  flags=u64_value(omap["flags"]) if "flags" in omap else 0,
                  op_features=u64_value(omap["op_features"]) if "op_features" in omap else 0,
                  stripe_unit=unit, stripe_count=count,
                  parent=decode_parent(Decoder(omap["parent"])) if "parent" in omap else None,
                  snapshots=tuple(snaps),
                  object_prefix=Decoder(omap["object_prefix"]).string() if "object_prefix" in omap else "",
                  created=_utime(omap.get("create_timestamp", b"")))


def _utime(raw: bytes) -> float:
    """utime_t as encoded (u32 seconds, u32 nanoseconds) in whole seconds, as librbd's create_timestamp
    gives it. Only informative: anything else is 0."""
    return float(Decoder(raw).u32()) if len(raw) == 8 else 0.0


def decode_parent(d: Decoder) -> Parent | None:
    """cls_rbd_parent v1 (pool, id, snapid, overlap) or v2 (pool, namespace, id, snapid,
    optional head overlap); None when it names no parent (a flattened clone may keep an empty one)."""
    version, end = d.begin(2)
    pool_id = d.s64()
    namespace = d.string() if version >= 2 else ""
    image_id, snap_id = d.string(), d.u64()
    if version == 1:
        d.u64()                     # overlap
    else:
        d.optional_u64()            # head overlap
    d.finish(end)
    if pool_id < 0 or not image_id or snap_id == CEPH_NOSNAP:
        return None
    return Parent(pool_id, namespace, image_id, snap_id)


def decode_snapshot(value: bytes) -> Snapshot:
    """cls_rbd_snap, written ENCODE_START(8, 8) by Nautilus and later (compat 1 before)."""
    d = Decoder(value)
    version, end = d.begin(8)
    snap_id, name, size = d.u64(), d.string(), d.u64()
    if version < 8:
        raise DecodeError(f"a snapshot record of version {version} (before Nautilus)")
    d.u8()                          # protection status
    flags = d.u64()
    namespace = decode_namespace(d)
    d.finish(end)                   # timestamp, child count, parent overlap: not needed
    return Snapshot(snap_id, name, size, flags, namespace)


def decode_namespace(d: Decoder) -> int:
    """cls::rbd::SnapshotNamespace: ENCODE_START(1, 1), u32 type, the type's fields (skipped)."""
    _version, end = d.begin(1)
    kind = d.u32()
    if kind not in (USER, GROUP, TRASH, MIRROR):
        raise DecodeError(f"snapshot namespace type {kind}")
    d.finish(end)
    return kind


def why_not_fast(h: Header) -> str | None:
    """Why the object maps cannot give this image's bytes as `rbd du` would (None: they can). librbd
    itself leaves fast-diff when the feature is off or a map is flagged invalid; the rest is caution."""
    if h.features & ~KNOWN_FEATURES:
        return "unknown features"
    if not h.features & OBJECT_MAP or not h.features & FAST_DIFF:
        return NO_OBJECT_MAP
    if h.features & (MIGRATING | NON_PRIMARY) or h.op_features & OP_MIGRATION:
        return "migrating or mirrored non-primary"
    if not h.features & STRIPINGV2 and (h.stripe_unit, h.stripe_count) != (h.object_size, 1):
        return "striping without the feature"
    if invalid(h.flags):
        return "object map invalid"
    return None


def why_not_by_objects(h: Header) -> str | None:
    """Why an image without fast-diff cannot be measured by looking up each of its data objects as
    `rbd du` does then (None: it can). Without user snapshots its one row is every object the head
    holds; a row between snapshots needs each object's clones (list-snaps), which librbd reads."""
    if h.features & ~KNOWN_FEATURES:
        return "unknown features"
    if h.features & (MIGRATING | NON_PRIMARY | DATA_POOL) or h.op_features & OP_MIGRATION:
        return "migrating, mirrored non-primary or in a data pool"
    if h.stripe_count != 1 or h.stripe_unit != h.object_size:
        return "striped"
    if not h.object_prefix:
        return "no object prefix"
    if any(s.namespace == USER for s in h.snapshots):
        return "user snapshots without fast-diff"
    return None


def invalid(flags: int) -> bool:
    """Whether a version's object map is flagged invalid (invalidation sets both flags)."""
    return bool(flags & (OBJECT_MAP_INVALID | FAST_DIFF_INVALID))
