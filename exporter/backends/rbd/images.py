"""One RBD image's facts read through librbd: its own bytes, counted like `rbd du` counts them, and
the fingerprint that says whether they can have changed since the last read.

Own bytes are whole RADOS objects: for each user snapshot in id order the objects that changed
since the one before, then the head against the last one; with the parent excluded, so a clone's
unwritten objects stay its parent's (see _own_bytes for what a trash-namespace snapshot pins).
Without fast-diff (or with an invalid object map) librbd has to look at every object, which is
slow on big images: `fast_diff` says so per image.
"""

import calendar
import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

try:        # Ceph's bindings come from the distribution (python3-rbd), not from PyPI
    import rados
    import rbd
except ImportError:     # pragma: no cover - librbd.available() reports it
    rados = rbd = None

from .rados_reader import omap_pages

USER = 0     # rbd.RBD_SNAP_NAMESPACE_TYPE_USER: snapshots someone made by name (not trash, not group)


@dataclass(frozen=True)
class Image:
    name: str
    image_id: str
    trashed: bool
    size: int
    own_bytes: int
    parent: tuple[str, str, str, str] | None     # (pool, namespace, image name, snapshot name)
    fast_diff: bool
    created: float = 0.0        # Unix seconds (whole, as librbd gives them), 0 when unknown
    # Not the image's own facts but the pool's about it (the trash listing, ceph-csi's journal): an image
    # read the fast way equals one opened through librbd whatever these say.
    trash_expiry: float = field(default=0.0, compare=False)    # trashed: when its deferment ends
    made_by: str = field(default="", compare=False)    # journal.py: "csi" (our instance), "foreign", ""
    csi_kind: str = field(default="", compare=False)   # volume, snapshot, temp: what ceph-csi made it as
    request: str = field(default="", compare=False)    # the CSI request it was made for (journal.py)


def fingerprint(ioctx: Any, image_id: str) -> bytes | None:
    """What an image's own bytes, snapshots, parent, size and flags depend on, in two small reads:
    its header's omap (size, features, flags, parent, snapshots with their namespaces; all of it,
    page by page past the OSD's per-read limit, or a snapshot removed beyond it would go unseen) and
    its head object map (which objects exist, and which changed since the last snapshot: librbd
    persists a state change before the write it records). None without an object map: such an
    image is read in full every time."""
    digest = hashlib.sha256()
    for key, value in omap_pages(ioctx, f"rbd_header.{image_id}"):
        digest.update(key.encode() + b"\0" + value + b"\0")
    try:
        digest.update(ioctx.read(f"rbd_object_map.{image_id}", 1 << 26))
    except rados.ObjectNotFound:
        return None
    return digest.digest()


def image_unless_unchanged(ioctx: Any, name: str, image_id: str, trashed: bool,
                           last: tuple[bytes, Image] | None) -> tuple[Image | None, bytes | None, bool]:
    """(image, its fingerprint, whether the last read was reused). An image whose fingerprint has
    not changed since the last refresh is not opened again: opening one (and its parents) and
    diffing it costs tens of round trips, the fingerprint two."""
    try:
        stamp = fingerprint(ioctx, image_id)
    except rados.ObjectNotFound:
        return None, None, False            # removed since the listing
    if stamp is not None and last is not None and last[0] == stamp:
        return dataclasses.replace(last[1], name=name, trashed=trashed), stamp, True
    image = _image(ioctx, name, image_id, trashed)
    return image, (stamp if image is not None and image.fast_diff else None), False


def opened(ioctx: Any, name: str, image_id: str, trashed: bool) -> tuple[Image | None, None, bool]:
    """An image without an object map, as image_unless_unchanged answers: opened, never reused."""
    return _image(ioctx, name, image_id, trashed), None, False


def _image(ioctx: Any, name: str, image_id: str, trashed: bool) -> Image | None:
    """One image's facts; None when it vanished between listing and opening."""
    try:
        img = rbd.Image(ioctx, image_id=image_id, read_only=True)      # the listings give every image's id
    except rbd.ImageNotFound:
        return None
    try:
        size = img.size()
        try:
            spec = img.get_parent_image_spec()
            parent = (spec["pool_name"], spec.get("pool_namespace", ""), spec["image_name"], spec["snap_name"])
        except rbd.ImageNotFound:
            parent = None
        fast = bool(img.features() & rbd.RBD_FEATURE_FAST_DIFF) and not img.flags() & rbd.RBD_FLAG_FAST_DIFF_INVALID
        own = _own_bytes(img, size)
        return Image(name, image_id, trashed, size, own, parent, fast, created=_created(img))
    finally:
        img.close()


def _created(img: Any) -> float:
    """The image's create_timestamp (the bindings give a naive datetime in UTC)."""
    try:
        return calendar.timegm(img.create_timestamp().utctimetuple())
    except (AttributeError, rbd.Error):
        return 0.0


def _own_bytes(img: Any, size: int) -> int:
    """Like `rbd du`: each user snapshot's objects changed since the one before, then the head's
    since the last one. Objects pinned only by a trash-namespace snapshot after a later overwrite
    are not counted (librbd diffs start at user snapshots); ceph-csi's goldens are written once
    before they are snapshotted, so that costs nothing there."""
    total = 0

    def count(_offset: int, length: int, exists: bool) -> None:
        nonlocal total
        if exists:
            total += length

    previous: str | None = None
    user = sorted((s for s in img.list_snaps() if s.get("namespace", USER) == USER), key=lambda s: s["id"])
    for snap in user:
        img.set_snap(snap["name"])
        img.diff_iterate(0, img.size(), previous, count, include_parent=False, whole_object=True)
        previous = snap["name"]
    img.set_snap(None)
    img.diff_iterate(0, size, previous, count, include_parent=False, whole_object=True)
    return total
