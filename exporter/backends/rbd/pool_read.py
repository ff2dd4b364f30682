"""One read of one pool (namespace) through librados: every live and trashed image, each measured
from its object maps or its data objects (fast_path.py) where that can be trusted, else opened
through librbd (images.py) on the Reader's threads while the rest are still in flight.

Each image counts once per read under the way it was read (`METHODS`), so an operator can see how
many images the fast path hands to librbd and why that costs what it costs.
"""

import calendar
import dataclasses
from collections import Counter
from concurrent.futures import Future, wait
from typing import Any, Protocol, TypeVar

import structlog

from .fast_path import Job, Listing, Measured, PoolScan, data_objects
from .header import NO_OBJECT_MAP
from .images import Image, image_unless_unchanged, opened
from .parents import ParentNames
from .rados_reader import AioBatch

try:        # Ceph's bindings come from the distribution (python3-rbd), not from PyPI
    import rados
    import rbd
except ImportError:     # pragma: no cover - librbd.available() reports it
    rados = rbd = None

log = structlog.get_logger("clonewatch.rbd")
T = TypeVar("T")
IN_FLIGHT = 128         # RADOS operations at once per pool read (librados allows 1,024 per client)
OBJECT_MAP, OBJECTS, LIBRBD, UNCHANGED = "objectmap", "objects", "librbd", "unchanged"
METHODS = (OBJECT_MAP, OBJECTS, LIBRBD, UNCHANGED)
Known = dict[str, tuple[bytes, Image]]      # image id -> (fingerprint, figures) of the last read


class Submit(Protocol):
    def submit(self, fn: Any, *args: Any) -> Future[Any]: ...


def read_pool(cluster: Any, ioctx: Any, scope: tuple[str, str], workers: Submit, old: Known, full: bool,
              timeout: float) -> tuple[list[Image], Known, Counter[str]]:
    """(the images, what to remember for the next read, how many were read which way)."""
    api = rbd.RBD()
    jobs = [Job(e["name"], e["id"], False) for e in api.list2(ioctx)]
    trash = list(api.trash_list(ioctx))
    jobs += [Job(t["name"], t["id"], True) for t in trash]
    expiry = {t["id"]: _seconds(t.get("deferment_end_time")) for t in trash}
    slow: dict[str, Future[tuple[Image | None, bytes | None, bool]]] = {}

    def fallback(job: Job, reason: str) -> None:
        log.debug("rbd_image_read_through_librbd", pool="/".join(filter(None, scope)), image=job.name, reason=reason)
        if reason == NO_OBJECT_MAP:     # nothing to fingerprint (the header just said so): open it
            slow[job.image_id] = workers.submit(opened, ioctx, job.name, job.image_id, job.trashed)
            return
        slow[job.image_id] = workers.submit(image_unless_unchanged, ioctx, job.name, job.image_id, job.trashed,
                                            None if full else old.get(job.image_id))

    def listed(wanted: dict[str, int]) -> dict[str, list[int]] | None:
        try:
            return data_objects((o.key for o in ioctx.list_objects()), wanted)
        except (rados.TimedOut, rados.ConnectionShutdown):
            raise               # the stats would wait as long again on the same OSDs: the read fails
        except (rados.Error, UnicodeDecodeError) as exc:
            # A name the bindings cannot decode (any bytes make a RADOS object name) ends the listing:
            # the objects are looked up one by one instead.
            log.debug("rbd_objects_not_listed", pool="/".join(filter(None, scope)), error=str(exc))
            return None

    scan = PoolScan(AioBatch(ioctx, IN_FLIGHT, timeout), {i: (s, im.own_bytes) for i, (s, im) in old.items()},
                    full, fallback, Listing(lambda: int(ioctx.get_stats()["num_objects"]), listed))
    try:
        scan.run(jobs)
        fast = _name_parents(cluster, scope, jobs, scan, fallback)
    except BaseException:
        wait(slow.values())         # librbd calls still use the ioctx the caller is about to close
        raise
    images, known, methods = _gather(fast, slow)
    return [dataclasses.replace(i, trash_expiry=expiry.get(i.image_id, 0.0)) if i.trashed else i
            for i in images], known, methods


def _seconds(when: Any) -> float:
    """A trash entry's time (the bindings give a naive datetime in UTC) as Unix seconds; 0 if none."""
    return float(calendar.timegm(when.utctimetuple())) if hasattr(when, "utctimetuple") else 0.0


def _name_parents(cluster: Any, scope: tuple[str, str], jobs: list[Job], scan: PoolScan,
                  fallback: Any) -> list[tuple[Image, Measured]]:
    names = {j.image_id: j.name for j in jobs if j.trashed} | {j.image_id: j.name for j in jobs if not j.trashed}
    snapshots = {i: {s.snap_id: s.name for s in h.snapshots} for i, h in scan.headers.items()}
    parents = ParentNames(cluster, scope[0], scope[1], names, snapshots)
    out = []
    for job in jobs:
        m = scan.measured.get(job.image_id)
        if m is None:
            continue
        parent = parents.of(m.header.parent) if m.header.parent is not None else None
        if m.header.parent is not None and parent is None:
            fallback(job, "its parent was not found")
            continue
        out.append((Image(job.name, job.image_id, job.trashed, m.header.size, m.own_bytes, parent, not m.by_objects,
                          created=m.header.created), m))
    return out


def _gather(fast: list[tuple[Image, Measured]],
            slow: dict[str, Future[tuple[Image | None, bytes | None, bool]]]) -> tuple[list[Image], Known, Counter[str]]:
    images: list[Image] = []
    known: Known = {}
    methods: Counter[str] = Counter()
    for image, m in fast:
        images.append(image)
        known[image.image_id] = (m.stamp, image)
        methods[UNCHANGED if m.reused else OBJECTS if m.by_objects else OBJECT_MAP] += 1
    wait(slow.values())             # every librbd call done before the first error is raised
    for future in slow.values():
        opened, stamp, reused = future.result()
        if opened is None:
            continue                # removed since the listing
        images.append(opened)
        methods[UNCHANGED if reused else LIBRBD] += 1
        if stamp is not None:
            known[opened.image_id] = (stamp, opened)
    return images, known, methods
