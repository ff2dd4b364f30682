"""Each image's own bytes from RADOS reads, without opening it: its header's omap, then the object
maps `rbd du` would diff (usage.py), then the header once more. Every image of a pool is in flight
at once (rados_reader.AioBatch); librbd opens an image and its parents in tens of round trips where
this takes two plus one per object map.

An image without fast-diff and without user snapshots (ceph-csi's temporary images have only
trash-namespace ones; its csi-snap images have a user snapshot of their own) has one `rbd du` row, every object its head holds: each data object
is looked up with a stat, as librbd looks each one up with list-snaps, STATS_PER_IMAGE at a time.
Such images wait until every header is in: when their objects outnumber the pool's own objects
(divided by NAMES_PER_STAT), listing the namespace's objects once is cheaper, and only the data
objects it names are looked up (ceph-csi's temporary images are mostly empty clones of
gigabytes). A listing includes an object whose head is gone but a snapshot keeps; its stat says so.
A head object of size zero (a clone's discarded object, kept to hide the parent's data) is counted
by `rbd du` only if a snapshot's clone of it holds data, which a stat cannot see: with no snapshot it
is not counted, with one the image goes to librbd.

Whatever cannot be trusted goes to librbd, image by image (`fallback(job, reason)`): no object map,
one flagged invalid, too small or missing, an encoding this code does not know, a read error, a
header that changed while the maps were read (a snapshot taken in between pairs old maps with a new
header) three times running. A timeout fails the whole read instead: librbd would wait as long again
on the same OSDs.

An image whose header and head object map read the same as last time keeps its last figure (a write
that adds or first changes an object updates the head map before it lands; everything else that
changes the figure changes the header), as librbd.py's fingerprint does.
"""

import errno
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..base import BackendError
from .encoding import CEPH_NOSNAP, DecodeError
from .header import KEYS, NO_OBJECT_MAP, SNAPSHOT_PREFIX, Header, decode_header, invalid, why_not_by_objects, why_not_fast
from .objectmap import decode_bit_vector, encoded_length, object_map_name, states
from .rados_reader import AioBatch, fatal
from .usage import head_bytes, object_count, own_bytes, versions

ATTEMPTS = 3            # header reads that must agree with the one before the maps
STATS_PER_IMAGE = 8     # an image's object stats in flight at once (a big image must not take every slot)
NAMES_PER_STAT = 20     # object names listed in the time of one stat (a page of ~1,000 names per round trip)
DATA_PREFIX = "rbd_data."


@dataclass(frozen=True)
class Job:
    """An image as the pool's listing gave it."""
    name: str
    image_id: str
    trashed: bool


@dataclass(frozen=True)
class Measured:
    header: Header
    own_bytes: int
    stamp: bytes            # header values and head map: unchanged means the figure is too
    reused: bool
    by_objects: bool = False    # no fast-diff: each data object looked up (never reused: nothing says it is unchanged)


@dataclass
class _Image:
    job: Job
    attempt: int = 0
    raw: dict[str, bytes] = field(default_factory=dict)
    header: Header | None = None
    head_map: bytes = b""
    maps: dict[int, bytes] = field(default_factory=dict)
    found: bytearray | None = None      # without an object map: per data object, whether it holds data
    todo: list[int] | range = range(0)  # the object numbers to look up
    next_object: int = 0
    pending: int = 0
    over: bool = False


class PoolScan:
    """One read of one pool (namespace): measured images, every header it could decode (parents'
    snapshot names come from them), and the images that are gone since the listing."""

    def __init__(self, batch: AioBatch, last: dict[str, tuple[bytes, int]], full: bool,
                 fallback: Callable[[Job, str], None], listing: "Listing | None" = None) -> None:
        self._batch, self._last, self._full, self._fallback = batch, last, full, fallback
        self._listing = listing
        self._parked: list[_Image] = []         # without an object map: looked up once every header is in
        self.listed = False                     # whether this read listed the namespace's objects
        self.headers: dict[str, Header] = {}
        self.measured: dict[str, Measured] = {}
        self.gone: set[str] = set()

    def run(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._read_header(_Image(job), self._first_header)
        self._batch.run()
        while self._parked:                     # again for one whose header changed meanwhile
            parked, self._parked = self._parked, []
            listed = self._list(parked)
            for im in parked:
                self._stat_objects(im, listed)
            self._batch.run()

    def _list(self, parked: list["_Image"]) -> dict[str, list[int]] | None:
        """Object prefix -> the object numbers the listing names, or None: look every object up."""
        wanted = {im.header.object_prefix: object_count(im.header, CEPH_NOSNAP) for im in parked if im.header}
        if self._listing is None or sum(wanted.values()) * NAMES_PER_STAT <= self._listing.objects():
            return None
        out = self._listing.data_objects(wanted)
        self.listed = out is not None
        return out

    # -- each image's steps, in order --------------------------------------------------------
    def _read_header(self, im: _Image, then: Callable[[_Image, dict[str, bytes]], None]) -> None:
        def done(rv: int, omap: dict[str, bytes] | None) -> None:
            if rv == -errno.ENOENT:
                im.over = True
                self.gone.add(im.job.image_id)      # removed since the listing
            elif self._ok(im, rv, omap, "header"):
                assert omap is not None
                then(im, omap)
        self._batch.omap(f"rbd_header.{im.job.image_id}", KEYS, SNAPSHOT_PREFIX, done)

    def _first_header(self, im: _Image, omap: dict[str, bytes]) -> None:
        try:
            h = decode_header(omap)
        except DecodeError as exc:
            return self._give_up(im, f"header: {exc}")
        im.raw, im.header, im.maps, im.found = omap, h, {}, None
        self.headers[im.job.image_id] = h
        reason = why_not_fast(h)
        if reason == NO_OBJECT_MAP and why_not_by_objects(h) is None:
            self._parked.append(im)
            return None
        if reason:
            return self._give_up(im, reason)
        self._load_map(im, CEPH_NOSNAP, self._head_loaded)

    def _head_loaded(self, im: _Image) -> None:
        stamp = _stamp(im)
        last = self._last.get(im.job.image_id)
        assert im.header is not None
        if last is not None and last[0] == stamp and not self._full:
            im.over = True
            self.measured[im.job.image_id] = Measured(im.header, last[1], stamp, True)
            return
        snaps = versions(im.header) - {CEPH_NOSNAP}
        if any(invalid(im.header.version(v)[1]) for v in snaps):
            return self._give_up(im, "a snapshot's object map is invalid")
        im.pending = len(snaps)
        for v in sorted(snaps):
            self._load_map(im, v, self._snap_loaded)
        if not snaps:
            self._read_header(im, self._check_header)

    def _stat_objects(self, im: _Image, listed: dict[str, list[int]] | None) -> None:
        assert im.header is not None
        count = object_count(im.header, CEPH_NOSNAP)
        im.found, im.next_object = bytearray(count), 0
        im.todo = range(count) if listed is None else sorted(listed[im.header.object_prefix])
        im.pending = len(im.todo)
        if not im.todo:
            return self._read_header(im, self._check_header)
        for _ in range(min(STATS_PER_IMAGE, len(im.todo))):
            self._stat_next(im)

    def _stat_next(self, im: _Image) -> None:
        assert im.header is not None and im.found is not None
        found, index = im.found, im.todo[im.next_object]
        im.next_object += 1

        def done(rv: int, size: int | None) -> None:
            if im.over or (rv != -errno.ENOENT and not self._ok(im, rv, size, "data object")):
                return
            if rv == 0 and not size and im.header and im.header.snapshots:
                return self._give_up(im, "a zero-length object over a snapshot")
            found[index] = rv == 0 and bool(size)
            im.pending -= 1
            if im.next_object < len(im.todo):
                self._stat_next(im)
            elif im.pending == 0:
                self._read_header(im, self._check_header)
        self._batch.stat(f"{im.header.object_prefix}.{index:016x}", done)

    def _snap_loaded(self, im: _Image) -> None:
        im.pending -= 1
        if im.pending == 0:
            self._read_header(im, self._check_header)

    def _check_header(self, im: _Image, omap: dict[str, bytes]) -> None:
        """The header again: the maps belong to it only if it did not change meanwhile."""
        assert im.header is not None
        if omap != im.raw:
            if im.attempt + 1 >= ATTEMPTS:
                return self._give_up(im, "the header kept changing")
            im.attempt += 1
            return self._first_header(im, omap)
        try:
            own = own_bytes(im.header, im.maps) if im.found is None else head_bytes(im.header, im.found)
        except DecodeError as exc:
            return self._give_up(im, str(exc))
        im.over = True
        self.measured[im.job.image_id] = Measured(im.header, own, _stamp(im), False, im.found is not None)

    # -- helpers --------------------------------------------------------------------------------
    def _load_map(self, im: _Image, snap_id: int, then: Callable[[_Image], None]) -> None:
        assert im.header is not None
        need = object_count(im.header, snap_id)

        def done(rv: int, raw: bytes | None) -> None:
            if rv == -errno.ENOENT:
                return self._give_up(im, NO_OBJECT_MAP if snap_id == CEPH_NOSNAP else "a snapshot's map is missing")
            if not self._ok(im, rv, raw, "object map"):
                return None
            assert raw is not None
            try:
                count, data = decode_bit_vector(raw)
                if count < need:
                    raise DecodeError(f"an object map of {count} objects for {need}")
                found = states(data, need)
            except DecodeError as exc:
                return self._give_up(im, str(exc))
            im.maps[snap_id] = found
            if snap_id == CEPH_NOSNAP:
                im.head_map = raw
            then(im)
        self._batch.call(object_map_name(im.job.image_id, snap_id), "rbd", "object_map_load",
                         encoded_length(need) + 64, done)

    def _ok(self, im: _Image, rv: int, data: object, what: str) -> bool:
        """Whether an answer can be used; else the image goes to librbd, or the read fails."""
        if im.over:
            return False
        if fatal(rv):
            self._batch.fail(BackendError(f"{what} of image {im.job.image_id}: {errno.errorcode.get(-rv, rv)}"))
            return False
        if rv < 0:
            self._give_up(im, f"{what} read: {errno.errorcode.get(-rv, rv)}")
            return False
        if data is None:
            self._give_up(im, f"{what}: more snapshots than one read returns")
            return False
        return True

    def _give_up(self, im: _Image, reason: str) -> None:
        if not im.over:
            im.over = True
            self._fallback(im.job, reason)


class Listing:
    """The namespace's objects: how many the pool holds (a listing costs that many names), and
    data_objects(wanted) as below, None when the listing failed (then each object is looked up)."""

    def __init__(self, objects: Callable[[], int],
                 data_objects: Callable[[dict[str, int]], dict[str, list[int]] | None]) -> None:
        self.objects, self.data_objects = objects, data_objects


def data_objects(names: Iterable[str], wanted: dict[str, int]) -> dict[str, list[int]]:
    """Object prefix -> the numbers of its data objects among `names`, below its count in `wanted`."""
    out: dict[str, list[int]] = {prefix: [] for prefix in wanted}
    for name in names:
        if name.startswith(DATA_PREFIX):
            prefix, _, number = name.rpartition(".")
            if prefix in out:
                try:
                    index = int(number, 16)
                except ValueError:
                    continue
                if index < wanted[prefix]:
                    out[prefix].append(index)
    return out


def _stamp(im: _Image) -> bytes:
    """The header values and the head map as read: the same again means the same figure."""
    digest = hashlib.sha256(b"objectmap\0")
    for key in sorted(im.raw):
        digest.update(key.encode() + b"\0" + im.raw[key] + b"\0")
    digest.update(im.head_map)
    return digest.digest()
