"""Many librados operations in flight from one thread, through the asynchronous calls of Ceph's
Python bindings (python3-rados): an omap read of an image header, cls_rbd's `object_map_load`, the
stat of a data object.

librados runs completions on its own finisher thread; they only queue what came back, and the thread
that called `run()` handles it there: decoding and the next operation of the same image happen on that
thread, never on librados' (a slow callback would hold every other completion up).
"""

import errno
import queue
from collections.abc import Callable
from typing import Any

from ..base import BackendError

try:        # Ceph's bindings come from the distribution (python3-rados), not from PyPI
    import rados
except ImportError:     # pragma: no cover - librbd.available() reports it
    rados = None

Done = Callable[[int, Any], None]       # (return value, what came back: omap dict or bytes, None on error)
# Snapshot records read at once; an image with as many goes to librbd. No more than the OSD answers
# to one read (osd_max_omap_entries_per_request, 1,024 by default): it cuts a longer answer short,
# and these bindings do not pass on that it did. A ceph-csi golden cloned through more than ~1,000
# temporary images carries that many trash-namespace snapshots.
OMAP_MAX = 1024


def omap_pages(ioctx: Any, oid: str, prefix: str = "") -> list[tuple[str, bytes]]:
    """Every key of an object starting with prefix, with its value, read OMAP_MAX at a time until a
    page comes back short (a read asking for more would be cut at OMAP_MAX without a word, and taken
    for the whole). Raises rados.ObjectNotFound when the object does not exist."""
    out: list[tuple[str, bytes]] = []
    while True:
        with rados.ReadOpCtx() as op:
            values, _ = ioctx.get_omap_vals(op, out[-1][0] if out else "", prefix, OMAP_MAX)
            ioctx.operate_read_op(op, oid)
            page = [(k, v or b"") for k, v in values]
        out += page
        if len(page) < OMAP_MAX:
            return out


class AioBatch:
    """Operations against one ioctx, at most `limit` in flight; each one's `done` runs in `run()`."""

    def __init__(self, ioctx: Any, limit: int, timeout: float) -> None:
        self._ioctx, self._limit, self._timeout = ioctx, max(1, limit), timeout
        self._results: queue.SimpleQueue[tuple[Done, int, Any, Any]] = queue.SimpleQueue()
        self._waiting: list[Callable[[], None]] = []
        self._in_flight = 0
        self._failure: Exception | None = None

    def omap(self, oid: str, keys: tuple[str, ...], prefix: str, done: Done) -> None:
        """The values of `keys` and of every key starting with `prefix`, as one read op."""
        self._queue(lambda: self._omap(oid, keys, prefix, done))

    def call(self, oid: str, cls: str, method: str, length: int, done: Done) -> None:
        """A cls method's output. The binding hands back `length` bytes however long the output is,
        and says how long it was: a longer one is asked for again with room for all of it."""
        def again(rv: int, data: Any) -> None:
            if rv > length:
                self.call(oid, cls, method, rv, done)
            else:
                done(rv, data[:rv] if rv >= 0 else None)
        self._queue(lambda: self._ioctx.aio_execute(
            oid, cls, method, b"", length=length,
            oncomplete=lambda c, data: self._results.put((again, c.get_return_value(), data, None))))

    def stat(self, oid: str, done: Done) -> None:
        """An object's size (its head's; -ENOENT when the head does not exist)."""
        self._queue(lambda: self._ioctx.aio_stat(
            oid, lambda c, size, _mtime: self._results.put((done, c.get_return_value(), size, None))))

    def fail(self, error: Exception) -> None:
        """Stop: nothing more is started, what is in flight is waited for (librados must not outlive
        the ioctx it runs on), then run() raises the first failure."""
        self._failure = self._failure or error
        self._waiting.clear()

    def run(self) -> None:
        """Until nothing is in flight or waiting. A silence longer than Ceph's own op timeout (which
        ends every operation with ETIMEDOUT) means librados lost track: the read fails."""
        self._issue()
        while self._in_flight:
            try:
                done, rv, data, op = self._results.get(timeout=self._timeout * 2 + 5)
            except queue.Empty:
                raise BackendError(f"no answer from the OSDs within {self._timeout * 2 + 5:g}s") from None
            self._in_flight -= 1
            if op is not None:
                data = self._collect(op, data, rv)
            if self._failure is None:
                try:
                    done(rv, data)
                except Exception as exc:        # raised once what is in flight came back
                    self.fail(exc)
                self._issue()
        if self._failure is not None:
            raise self._failure

    def _queue(self, start: Callable[[], None]) -> None:
        self._waiting.append(start)

    def _issue(self) -> None:
        while self._waiting and self._in_flight < self._limit:
            start = self._waiting.pop()
            self._in_flight += 1
            try:
                start()
            except Exception:
                self._in_flight -= 1
                raise

    def _omap(self, oid: str, keys: tuple[str, ...], prefix: str, done: Done) -> None:
        op = self._ioctx.create_read_op()
        fixed, _ = self._ioctx.get_omap_vals_by_keys(op, keys)
        listed, _ = self._ioctx.get_omap_vals(op, "", prefix, OMAP_MAX)
        self._ioctx.operate_aio_read_op(
            op, oid, oncomplete=lambda c: self._results.put((done, c.get_return_value(), (fixed, listed), op)))

    def _collect(self, op: Any, iterators: tuple[Any, Any], rv: int) -> dict[str, bytes] | None:
        """An omap read's values (the iterators are filled once it completed), then the op let go;
        None on an error, or with rv >= 0 when the prefix had more keys than one read returns or a key
        that is not UTF-8 (the bindings decode keys and cannot go past one)."""
        try:
            if rv < 0:
                return None
            fixed, listed = ({k: v or b"" for k, v in it} for it in iterators)
            return None if len(listed) >= OMAP_MAX else fixed | listed
        except UnicodeDecodeError:
            return None
        finally:
            del iterators
            self._ioctx.release_read_op(op)


def fatal(rv: int) -> bool:
    """An error that no other way of reading would get past: the whole pool's read fails, as
    librbd's would (it waits the same op timeout on the same OSDs)."""
    return rv in (-errno.ETIMEDOUT, -errno.ESHUTDOWN, -errno.ENOTCONN)
