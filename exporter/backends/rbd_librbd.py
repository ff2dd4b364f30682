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

One long-lived connection per cluster; Ceph's own timeouts (`rados_osd_op_timeout`,
`rados_mon_op_timeout`, `client_mount_timeout`) bound every call, so a dead cluster fails a refresh
within the timeout instead of hanging a thread.
"""

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .base import BackendError

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
            jobs: list[tuple[str, str, bool]] = [(name, "", False) for name in api.list(ioctx)]
            jobs += [(t["name"], t["id"], True) for t in api.trash_list(ioctx)]
            futures = [self._pool.submit(_image, ioctx, name, image_id, trashed) for name, image_id, trashed in jobs]
            images = []
            for f in futures:
                image = f.result()
                if image is not None:
                    images.append(image)
            return images
        except (rados.Error, rbd.Error) as exc:
            self._drop()        # reconnect next time: a timed-out or broken session is not reused
            raise BackendError(f"pool {pool!r}: {_short(exc)}") from None
        finally:
            ioctx.close()


def _image(ioctx: Any, name: str, image_id: str, trashed: bool) -> Image | None:
    """One image's facts; None when it vanished between listing and opening."""
    try:
        img = rbd.Image(ioctx, image_id=image_id, read_only=True) if image_id else \
            rbd.Image(ioctx, name, read_only=True)
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
        return Image(name, image_id or img.id(), trashed, size, own, parent, fast)
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
