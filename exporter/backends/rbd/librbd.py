"""Ceph RBD through librbd (Ceph's own Python bindings, Debian's python3-rados / python3-rbd):
live images and the RBD trash, read in-process (`--rbd.client librbd`).

Why not only `rbd du` / `rbd ls -l`: neither lists the trash, and ceph-csi moves every deleted
volume and snapshot there (`rbd trash mv`); an image that still has clones stays there with its
data, which is where most golden images of a default ODF cluster live. librbd opens a trashed image
by id, read-only. What one image holds and how it is counted: images.py.

A refresh opens no image it need not: each image is first measured from its header and object maps
with plain RADOS reads, all of a pool's in flight at once (pool_read.py, fast_path.py), or, without
fast-diff and user snapshots, from which of its data objects exist; only what that cannot stand
behind (user snapshots without fast-diff, an object map flagged invalid, an encoding it does not
know, a read error) is opened through librbd. Either way an image whose fingerprint (its header and head object map) is
the same as at the last refresh keeps its last figures (a write that adds or first changes an object
updates the object map before it lands, so whole-object bytes cannot change unseen). Images without
an object map are read in full every time, and every FULL_READ_EVERY-th refresh of a pool reads
everything.

One long-lived connection per cluster; Ceph's own timeouts (`rados_osd_op_timeout`,
`rados_mon_op_timeout`, `client_mount_timeout`) bound every call, so a dead cluster fails a refresh
within the timeout instead of hanging a thread.
"""

import asyncio
import dataclasses
import queue
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import structlog

from ..base import BackendError, Volume
from .images import Image
from .journal import DEFAULT_INSTANCE, Journal
from .naming import is_link, is_temp, split_cluster, split_target, volume_id
from .pool_read import UNCHANGED, read_pool
from .reader import CephCluster

try:        # Ceph's bindings come from the distribution (python3-rbd), not from PyPI
    import rados
    import rbd
except ImportError:     # pragma: no cover - reported by available()
    rados = rbd = None

log = structlog.get_logger("clonewatch.rbd")
T = TypeVar("T")


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
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{prefix}-{i}", daemon=True)
                         for i in range(max(1, count))]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
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


class Reader:
    """Reads pools of one Ceph cluster; safe to call from several threads."""

    def __init__(self, conffile: str, client_id: str, keyring: str, mon_host: str, timeout: float,
                 concurrency: int, instance: str = DEFAULT_INSTANCE) -> None:
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
        self._journal = Journal(instance)
        # Per (pool, namespace): image id -> (fingerprint, Image) of the last read, and how many reads.
        self._known: dict[tuple[str, str], dict[str, tuple[bytes, Image]]] = {}
        self._refreshes: dict[tuple[str, str], int] = {}
        self._methods: dict[tuple[str, str], Counter[str]] = {}
        self.reused = 0
        # (pool, namespace) -> how many images each way (pool_read.METHODS) since start, for the metrics
        self.methods: dict[tuple[str, str], dict[str, int]] = {}

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

    def submit_read(self, pool: str, namespace: str) -> Future[list[Image]]:
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
            scope = (pool, namespace)
            count = self._refreshes[scope] = self._refreshes.get(scope, 0) + 1
            full = count % FULL_READ_EVERY == 1          # every so often read everything (renames, belts and braces)
            images, known, methods = read_pool(cluster, ioctx, scope, self._pool, self._known.get(scope, {}), full,
                                               self._timeout)
            self._known[scope] = known                    # images gone from the pool are forgotten
            # ceph-csi's journal, read after the listing (journal.py says why that order).
            marks = self._journal.marks(cluster, ioctx, namespace, {i.name for i in images}, self._timeout)
            images = [dataclasses.replace(i, made_by=m.made_by if m else "", csi_kind=m.csi_kind if m else "",
                                          request=m.request if m else "")
                      for i in images for m in (marks.get(i.name),)]
            with self._lock:
                self.reused += methods[UNCHANGED]
                total = self._methods.setdefault(scope, Counter())
                total.update(methods)
                self.methods = {s: dict(c) for s, c in self._methods.items()}     # new containers: scrapes read them
            return images
        except (rados.Error, rbd.Error) as exc:
            self._drop()        # reconnect next time: a timed-out or broken session is not reused
            raise BackendError(f"pool {pool!r}: {_short(exc)}") from None
        except UnicodeDecodeError as exc:
            # The bindings decode every image name they list: one that is not UTF-8 (rbd create takes
            # any bytes) stops the listing, and a pool read without it would be a wrong figure.
            raise BackendError(f"pool {pool!r}: a name that is not UTF-8 text, {exc.object[:120]!r}; "
                               "the Ceph bindings cannot list past it (rbd rename it)") from None
        except BackendError:
            self._drop()
            raise
        finally:
            ioctx.close()


FULL_READ_EVERY = 10


class LibrbdClient:
    """The backend's way into librbd: one Reader per cluster, kept; at most one read of a pool at
    a time; a deadline on each read that the read's own thread does not wait for."""

    def __init__(self, timeout_seconds: float, concurrency: int, instance: str = DEFAULT_INSTANCE) -> None:
        self.timeout_seconds = timeout_seconds
        self.concurrency = concurrency
        self.instance = instance
        self._readers: dict[str, Reader] = {}
        self._busy: set[str] = set()
        self._slow_logged: set[str] = set()

    async def read(self, cluster: CephCluster, target: str) -> dict[str, Volume]:
        reader = self._readers.get(cluster.name)
        if reader is None:
            reader = self._readers[cluster.name] = Reader(cluster.conf, cluster.client_id, cluster.keyring,
                                                          cluster.mon_host, self.timeout_seconds, self.concurrency,
                                                          self.instance)
        if target in self._busy:
            # Ceph's timeouts end a stuck call on their own; never two reads of one pool at once.
            raise BackendError("the previous refresh of this pool is still running")
        self._busy.add(target)
        pool, namespace = split_target(target)
        work = asyncio.wrap_future(reader.submit_read(pool, namespace))
        work.add_done_callback(lambda _f: self._busy.discard(target))
        deadline = self.timeout_seconds * 2
        try:
            images = await asyncio.wait_for(asyncio.shield(work), deadline)
        except TimeoutError:
            raise BackendError(f"no answer within {deadline:g}s") from None
        volumes = volumes_from_images(target, images)
        for vid, vol in volumes.items():
            if vol.fast_diff is False and vid not in self._slow_logged:
                self._slow_logged.add(vid)
                log.warning("rbd_image_without_fast_diff", volume=vid,
                            note="measuring it reads every object; enable object-map and fast-diff")
        return volumes

    def images_read(self, cluster: str, target: str) -> dict[str, int]:
        reader = self._readers.get(cluster)
        counts = getattr(reader, "methods", {})         # a stand-in reader (tests) may keep none
        return dict(counts.get(split_target(target), {}))

    async def close(self) -> None:
        readers, self._readers = self._readers, {}
        for reader in readers.values():
            reader.close()


def volumes_from_images(target: str, images: list[Image]) -> dict[str, Volume]:
    """Volumes from librbd's facts; a trashed image keeps its name as its id (children name their
    parent by name) unless a live image took the name since."""
    cluster = split_cluster(target)[0]
    pool, namespace = split_target(target)
    live = {i.name for i in images if not i.trashed}
    volumes: dict[str, Volume] = {}
    for i in images:
        name = i.name if not (i.trashed and i.name in live) else f"{i.name}@trash:{i.image_id}"
        vid = volume_id(pool, namespace, name, cluster)
        parent_id = volume_id(i.parent[0], i.parent[1], i.parent[2], cluster) if i.parent else ""
        volumes[vid] = Volume(volume=vid, target=target, consumed_bytes=i.own_bytes, provisioned_bytes=i.size,
                              parent=parent_id, parent_snapshot=i.parent[3] if i.parent else "",
                              link=is_link(i.name) or i.trashed, trashed=i.trashed, fast_diff=i.fast_diff,
                              made_by=i.made_by, csi_kind=i.csi_kind or ("temp" if is_temp(i.name) else ""),
                              created=i.created, trash_expiry=i.trash_expiry, request=i.request)
    return volumes


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
