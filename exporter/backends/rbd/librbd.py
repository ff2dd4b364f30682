"""Ceph RBD through librbd (Ceph's own Python bindings, Debian's python3-rados / python3-rbd):
live images and the RBD trash, read in-process.

Why not only `rbd du` / `rbd ls -l`: neither lists the trash, and ceph-csi moves every deleted
volume and snapshot there (`rbd trash mv`); an image that still has clones stays there with its
data, which is where most golden images of a default ODF cluster live. librbd opens a trashed image
by id, read-only.

Own bytes are counted like `rbd du` counts them, in whole RADOS objects: for each user snapshot in
id order the objects that changed since the one before, then the head against the last one; with
the parent excluded, so a clone's unwritten objects stay its parent's (see _own_bytes for what a
trash-namespace snapshot pins). Without fast-diff (or with an invalid object map) librbd has to look at every object,
which is slow on big images: `fast_diff` says so per volume.

A refresh opens only what changed: each image's fingerprint (its header's omap and its object map,
two small reads) is compared with the one of the last refresh, and an image whose fingerprint is the
same keeps its last figures (a write that adds or first changes an object updates the object map
before it lands, so whole-object bytes cannot change unseen). Images without an object map are read
in full every time, and every FULL_READ_EVERY-th refresh of a pool reads everything.

One long-lived connection per cluster; Ceph's own timeouts (`rados_osd_op_timeout`,
`rados_mon_op_timeout`, `client_mount_timeout`) bound every call, so a dead cluster fails a refresh
within the timeout instead of hanging a thread.
"""

import dataclasses
import hashlib
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..base import BackendError

try:        # Ceph's bindings come from the distribution (python3-rbd), not from PyPI
    import rados
    import rbd
except ImportError:     # pragma: no cover - reported by available()
    rados = rbd = None


USER = 0     # rbd.RBD_SNAP_NAMESPACE_TYPE_USER: snapshots someone made by name (not trash, not group)


def available() -> bool:
    return rbd is not None and rados is not None


_abandoned = threading.Event()


def calls_abandoned() -> bool:
    """Whether a Reader was closed with a Ceph call still running: the process should then end
    with os._exit, not by unwinding librados under that call."""
    return _abandoned.is_set()


class Workers:
    """A few daemon threads. Not concurrent.futures: its threads are joined at interpreter exit, so
    one librbd call stuck until Ceph's op timeout would hold a SIGTERM'd exporter that long."""

    def __init__(self, count: int, prefix: str) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{prefix}-{i}", daemon=True)
                         for i in range(max(1, count))]
        for t in self._threads:
            t.start()

    def submit(self, fn: Any, *args: Any) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:        # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


@dataclass(frozen=True)
class Image:
    name: str
    image_id: str
    trashed: bool
    size: int
    own_bytes: int
    parent: tuple[str, str, str, str] | None     # (pool, namespace, image name, snapshot name)
    fast_diff: bool


class Reader:
    """Reads pools of one Ceph cluster; safe to call from several threads."""

    def __init__(self, conffile: str, client_id: str, keyring: str, mon_host: str, timeout: float,
                 concurrency: int) -> None:
        if not available():
            raise BackendError("librbd is not importable: install Debian's python3-rbd and python3-rados")
        self._conf = {"rados_osd_op_timeout": f"{timeout:g}", "rados_mon_op_timeout": f"{timeout:g}",
                      "client_mount_timeout": f"{timeout:g}",
                      # No Ceph log files (the pod's root is read-only) and as little on stderr as Ceph
                      # allows; it still prints some config errors (a malformed key, verbatim) before
                      # these apply, which is why the exporter keeps fd 2 off (logs.keep_c_libraries_off_stderr).
                      "log_to_stderr": "false", "err_to_stderr": "false", "log_file": "",
                      "log_to_file": "false"}
        if keyring:
            self._conf["keyring"] = keyring
        if mon_host:
            self._conf["mon_host"] = mon_host
        self._conffile, self._id, self._timeout = conffile or None, client_id or None, timeout
        self._cluster: Any = None
        self._lock = threading.Lock()
        self._pool = Workers(concurrency, "librbd")            # images of one pool, in parallel
        self._reads = Workers(concurrency, "librbd-read")      # whole-pool reads, one per target
        self._in_flight = 0
        # Per (pool, namespace): image id -> (fingerprint, Image) of the last read, and how many reads.
        self._known: dict[tuple[str, str], dict[str, tuple[bytes, Image]]] = {}
        self._refreshes: dict[tuple[str, str], int] = {}
        self.reused = 0

    def _connect(self) -> Any:
        with self._lock:
            if self._cluster is None:
                cluster = rados.Rados(conffile=self._conffile, rados_id=self._id, conf=self._conf)
                try:
                    cluster.connect(timeout=int(max(1, self._timeout)))
                except rados.Error as exc:
                    cluster.shutdown()
                    raise BackendError(f"cannot connect to the Ceph cluster: {_short(exc)}") from None
                self._cluster = cluster
            return self._cluster

    def _drop(self) -> None:
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            try:
                cluster.shutdown()
            except Exception:       # a broken connection may fail to close; it is gone either way
                pass

    def close(self) -> None:
        with self._lock:
            busy = self._in_flight > 0
        if busy:
            # Shutting a cluster down under a running call is a use-after-free in librados;
            # leave both to the end of the process.
            _abandoned.set()
        else:
            self._drop()
        self._pool.shutdown()
        self._reads.shutdown()

    def submit_read(self, pool: str, namespace: str) -> Future:
        """read() on one of the Reader's own daemon threads."""
        return self._reads.submit(self.read, pool, namespace)

    def read(self, pool: str, namespace: str) -> list[Image]:
        """Every live and trashed image of a pool (namespace); BackendError on any failure."""
        with self._lock:
            self._in_flight += 1
        try:
            return self._read(pool, namespace)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _read(self, pool: str, namespace: str) -> list[Image]:
        cluster = self._connect()
        try:
            ioctx = cluster.open_ioctx(pool)
        except rados.ObjectNotFound:
            raise BackendError(f"pool {pool!r} does not exist") from None
        except rados.Error as exc:
            self._drop()
            raise BackendError(f"cannot open pool {pool!r}: {_short(exc)}") from None
        try:
            if namespace:
                ioctx.set_namespace(namespace)
            api = rbd.RBD()
            jobs: list[tuple[str, str, bool]] = [(e["name"], e["id"], False) for e in api.list2(ioctx)]
            jobs += [(t["name"], t["id"], True) for t in api.trash_list(ioctx)]
            scope = (pool, namespace)
            count = self._refreshes[scope] = self._refreshes.get(scope, 0) + 1
            full = count % FULL_READ_EVERY == 1          # every so often read everything (renames, belts and braces)
            old = self._known.get(scope, {})
            futures = [self._pool.submit(_image_unless_unchanged, ioctx, name, image_id, trashed,
                                         None if full else old.get(image_id)) for name, image_id, trashed in jobs]
            images, known = [], {}
            for f in futures:
                image, stamp, reused = f.result()
                if image is not None:
                    images.append(image)
                    self.reused += reused
                    if stamp is not None:
                        known[image.image_id] = (stamp, image)
            self._known[scope] = known                    # images gone from the pool are forgotten
            return images
        except (rados.Error, rbd.Error) as exc:
            self._drop()        # reconnect next time: a timed-out or broken session is not reused
            raise BackendError(f"pool {pool!r}: {_short(exc)}") from None
        finally:
            ioctx.close()


FULL_READ_EVERY = 10


def fingerprint(ioctx: Any, image_id: str) -> bytes | None:
    """What an image's own bytes, snapshots, parent, size and flags depend on, in two small reads:
    its header's omap (size, features, flags, parent, snapshots with their namespaces) and its head
    object map (which objects exist, and which changed since the last snapshot: librbd persists a
    state change before the write it records). None without an object map: such an image is read
    in full every time."""
    digest = hashlib.sha256()
    with rados.ReadOpCtx() as op:
        values, _ret = ioctx.get_omap_vals(op, "", "", 100000)
        ioctx.operate_read_op(op, f"rbd_header.{image_id}")
        for key, value in values:
            digest.update(key.encode() + b"\0" + (value or b"") + b"\0")
    try:
        digest.update(ioctx.read(f"rbd_object_map.{image_id}", 1 << 26))
    except rados.ObjectNotFound:
        return None
    return digest.digest()


def _image_unless_unchanged(ioctx: Any, name: str, image_id: str, trashed: bool,
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
        return Image(name, image_id, trashed, size, own, parent, fast)
    finally:
        img.close()


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


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
