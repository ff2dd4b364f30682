"""ceph-csi's journal in a pool: which images this cluster's ceph-csi instance made, and which another
instance did (ceph-csi internal/journal/voljournal.go, omap.go; docs/field-facts.md).

Objects of omap only, in the pool and RADOS namespace of the images, the journal pool. Values are a Go
string's bytes, nothing more:
  csi.volumes.<instance>  directory: `csi.volume.<request name>` -> `<uuid>`, or `<image pool id %016x>/<uuid>`
  csi.snaps.<instance>    directory: `csi.snap.<request name>` -> the same
  csi.volume.<uuid>       per volume: csi.volname (the request name, the PV's), csi.imagename, csi.imageid,
                          csi.journalpool (the journal pool's id, %016x, when it is not the image pool)
  csi.snap.<uuid>         per snapshot: csi.snapname, csi.imagename, csi.source, csi.imageid, csi.journalpool
A volume's journal pool is another pool when ceph-csi 3.0 to 3.10 made it through a topology-constrained
StorageClass (the journal in its `pool`, the image in the topology's), or RegenerateJournal re-journaled
a PV whose `journalPool` is another: the directory key and the per-uuid object's keys are then in the
journal pool, and the image pool holds that object bare, with only the csi.imageid a call by volume
handle stores there (ceph-csi 2.x wrote the keys into the image pool's object instead).

ceph-csi creates the per-uuid object (empty, exclusively), then writes the directory key, then the
object's keys, and only then makes the image; it deletes the image, then the object, then the key.
So, reading the pool's listing first, then the directories, then the objects:
- ours: our instance's directory holds the request, and its per-uuid object names that request and an
  image: that image (a volume or a snapshot) and, for a volume, its temporary clone `<image>-temp`;
- foreign: an image whose name ends in a UUID, whose per-uuid object is complete, but whose request our
  instance's directory does not hold: another instance made it (two clusters sharing a pool);
- no mark: everything else; an object with missing keys or values that are not what ceph-csi writes is
  logged once, and its image has no mark (so it is `unknown`, never `leaked`).

Other instances' directories are not looked for: that would list every object of the pool, data
objects included. The per-uuid objects say as much for the images there are, at one small read
each; a complete one changes only by going away (just before its directory key does): it is read again
when our directory no longer says what it said then. A bare one is looked for in every other pool (the
image pool does not say which is the journal pool), until found; then it is kept like the others.
"""

import errno
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from ..base import BackendError
from .rados_reader import AioBatch, fatal, omap_pages

try:        # Ceph's bindings come from the distribution (python3-rados), not from PyPI
    import rados
except ImportError:     # pragma: no cover - librbd.available() reports it
    rados = None

log = structlog.get_logger("clonewatch.rbd")

DEFAULT_INSTANCE = "default"        # cephcsi's --instanceid default (cmd/cephcsi.go); Rook and ODF keep it
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_NAMED = re.compile(rf".*?({_UUID})(-temp)?")
_VALUE = re.compile(rf"(?:([0-9a-f]{{16}})/)?({_UUID})")
_POOL_ID = re.compile(r"[0-9a-f]{16}")
_IMAGE_NAME = re.compile(r"[^/@\x00]+")
IN_FLIGHT = 128


@dataclass(frozen=True)
class Kind:
    directory: str      # + instance
    key: str            # directory keys: + request name
    object: str         # + uuid
    name_key: str       # the per-uuid object's request name
    csi_kind: str


VOLUMES = Kind("csi.volumes.", "csi.volume.", "csi.volume.", "csi.volname", "volume")
SNAPSHOTS = Kind("csi.snaps.", "csi.snap.", "csi.snap.", "csi.snapname", "snapshot")


@dataclass(frozen=True)
class Mark:
    made_by: str        # "csi" (our instance) or "foreign"
    csi_kind: str       # volume, snapshot, temp
    request: str = ""   # the CSI request name (a volume's PV name: pvc-<PVC uid>)


@dataclass(frozen=True)
class Entry:
    """A complete per-uuid object."""
    request: str
    image: str
    journal_pool: int | None    # the directory's pool when it is not the image's


class Journal:
    """One Reader's view of the journals it reads: complete per-uuid objects by (pool, namespace, object),
    and the problems already logged."""

    def __init__(self, instance: str = DEFAULT_INSTANCE) -> None:
        self.instance = instance
        # (pool id, namespace, object) -> (entry, None when there is no such object; whether our directory
        # held it when it was read)
        self._entries: dict[tuple[int, str, str], tuple[Entry | None, bool]] = {}
        self._logged: set[tuple[str, str, str]] = set()

    def marks(self, cluster: Any, ioctx: Any, namespace: str, names: Iterable[str], timeout: float) -> dict[str, Mark]:
        """Image name -> its mark, for the images of one pool (namespace) just listed."""
        pool_id = ioctx.get_pool_id()
        pool = f"{ioctx.get_pool_name()}{'/' + namespace if namespace else ''}"
        try:
            ours = {kind: self._directory(ioctx, kind, pool_id, pool) for kind in (VOLUMES, SNAPSHOTS)}
        except UnicodeDecodeError:
            # A key the bindings cannot decode ends the listing there: without all of our directory
            # nothing here can be told ours or another's, so nothing is marked.
            self._once(f"{VOLUMES.directory}{self.instance}", pool, "a key that is not UTF-8 text: "
                       "the directory cannot be read past it")
            return {}
        uuids = {m.group(1) for m in map(_NAMED.fullmatch, names) if m}
        mine = {kind: set(ours[kind].values()) for kind in ours}
        # Ours: the object of its kind; any other: both kinds' (a custom prefix does not say which).
        wanted = [(kind, u) for u in sorted(uuids) for kind in (VOLUMES, SNAPSHOTS)
                  if u in mine[kind] or not (u in mine[VOLUMES] or u in mine[SNAPSHOTS])]
        entries = self._objects(cluster, ioctx, pool_id, namespace, pool, wanted, mine, timeout)
        requests = {kind: {u: r for r, u in ours[kind].items()} for kind in ours}
        others: dict[int, dict[Kind, dict[str, str]]] = {}
        out: dict[str, Mark] = {}
        for (kind, u), entry in entries.items():
            request = requests[kind].get(u)
            if request is None and entry.journal_pool is not None and entry.journal_pool != pool_id:
                # Our directory may be in the journal pool rather than here.
                theirs = others.get(entry.journal_pool)
                if theirs is None:
                    theirs = others[entry.journal_pool] = self._elsewhere(cluster, entry.journal_pool, namespace,
                                                                          pool_id)
                request = {v: r for r, v in theirs.get(kind, {}).items()}.get(u)
            if request is not None and request != entry.request:
                self._once(f"{kind.object}{u}", pool, f"{kind.name_key} is {entry.request!r}, the directory says "
                                                      f"{request!r}")
                continue
            made_by = "csi" if request is not None else "foreign"
            out[entry.image] = Mark(made_by, kind.csi_kind, entry.request)
            if kind is VOLUMES:
                out.setdefault(f"{entry.image}-temp", Mark(made_by, "temp", entry.request))
        if out and not any(m.made_by == "csi" for m in out.values()) and not any(ours.values()):
            # Nothing here is ours: right for a pool another cluster fills, a wrong instance ID otherwise
            # (then nothing is called leaked, and this says why).
            self._once(f"{VOLUMES.directory}{self.instance}", pool, "absent: every journaled image here is "
                       "another instance's (is --rbd.cephcsi-instance-id ceph-csi's instanceid?)",
                       "rbd_cephcsi_instance_not_found")
        return out

    # -- reads ------------------------------------------------------------------------------
    def _directory(self, ioctx: Any, kind: Kind, image_pool: int, pool: str, here: bool = True) -> dict[str, str]:
        """Our instance's directory in this ioctx: request name -> uuid, of the images in image_pool (a value
        without a pool id names an image of the directory's own pool: `here`)."""
        oid = f"{kind.directory}{self.instance}"
        out: dict[str, str] = {}
        for key, raw in _omap(ioctx, oid, kind.key):
            value = _text(raw)
            m = _VALUE.fullmatch(value or "")
            if m is None:
                if here and (value is None or not value.startswith("0001-")):   # 0001-: a mirroring failover's
                    self._once(oid, pool, f"key {key!r} holds {raw[:80]!r}, not a uuid")     # handle -> handle
                continue
            if (int(m.group(1), 16) == image_pool) if m.group(1) else here:
                out[key[len(kind.key):]] = m.group(2)
        return out

    def _objects(self, cluster: Any, ioctx: Any, pool_id: int, namespace: str, pool: str,
                 wanted: list[tuple[Kind, str]], mine: dict[Kind, set[str]],
                 timeout: float) -> dict[tuple[Kind, str], Entry]:
        """The complete per-uuid objects among those wanted, read all at once (from the journal pool
        for those that hold nothing here but the reservation). One read before is as good while our
        directory says the same of it: ceph-csi removes the object before the directory key, so an
        entry that left our directory is read again (it is gone, or was reserved anew)."""
        out: dict[tuple[Kind, str], Entry] = {}
        batch = AioBatch(ioctx, IN_FLIGHT, timeout)
        fresh: set[tuple[int, str, str]] = set()
        bare: list[tuple[Kind, str]] = []
        for kind, u in wanted:
            oid = f"{kind.object}{u}"
            cached = self._entries.get((pool_id, namespace, oid))
            if cached is not None and cached[1] == (u in mine[kind]):
                if cached[0] is not None:
                    out[(kind, u)] = cached[0]
                fresh.add((pool_id, namespace, oid))
                continue

            def done(rv: int, omap: dict[str, bytes] | None, kind: Kind = kind, u: str = u, oid: str = oid) -> None:
                if rv == -errno.ENOENT:
                    # Made before its image, removed after it: absent now, absent for as long as the image is.
                    self._entries[(pool_id, namespace, oid)] = (None, u in mine[kind])
                    fresh.add((pool_id, namespace, oid))
                    return
                if fatal(rv):
                    batch.fail(BackendError(f"ceph-csi journal object {oid}: {errno.errorcode.get(-rv, rv)}"))
                    return
                if rv < 0 or omap is None:
                    self._once(oid, pool, f"cannot be read: {errno.errorcode.get(-rv, rv) if rv < 0 else 'its keys'}")
                    return
                if _bare(kind, omap):
                    bare.append((kind, u))
                    return
                entry = self._entry(oid, pool, kind, omap)
                if entry is not None:
                    out[(kind, u)] = entry
                    self._entries[(pool_id, namespace, oid)] = (entry, u in mine[kind])
                    fresh.add((pool_id, namespace, oid))
            batch.omap(oid, (kind.name_key, "csi.imagename"), "csi.", done)
        batch.run()
        # An image exists, so its reservation is complete: a bare object here means ceph-csi (3.0 on)
        # wrote the keys into another pool, the journal pool. Found there, it is kept under this key.
        found = self._journaled_elsewhere(cluster, pool_id, namespace, bare, timeout) if bare else {}
        for kind, u in bare:
            oid = f"{kind.object}{u}"
            if (kind, u) not in found:
                self._once(oid, pool, "only a reservation, and no other pool this client can read holds its keys")
                continue
            out[(kind, u)] = found[(kind, u)]
            self._entries[(pool_id, namespace, oid)] = (found[(kind, u)], u in mine[kind])
            fresh.add((pool_id, namespace, oid))
        # Forget the objects of images that are gone (their uuid is no longer wanted).
        self._entries = {k: v for k, v in self._entries.items() if (k[0], k[1]) != (pool_id, namespace) or k in fresh}
        return out

    def _entry(self, oid: str, pool: str, kind: Kind, omap: dict[str, bytes]) -> Entry | None:
        """A per-uuid object's request and image; None (logged once) when it is not what ceph-csi writes."""
        request, image = _text(omap.get(kind.name_key)), _text(omap.get("csi.imagename"))
        journal_pool = _text(omap.get("csi.journalpool", b""))
        problem = ""
        if not request:
            problem = f"{kind.name_key} is missing or not text"
        elif image is None or not _IMAGE_NAME.fullmatch(image):
            problem = "csi.imagename is missing or not an image name"
        elif journal_pool and not _POOL_ID.fullmatch(journal_pool):
            problem = f"csi.journalpool is {journal_pool[:40]!r}, not a pool id"
        if problem:
            self._once(oid, pool, problem)
            return None
        assert request is not None and image is not None
        return Entry(request, image, int(journal_pool, 16) if journal_pool else None)

    def _journaled_elsewhere(self, cluster: Any, image_pool: int, namespace: str, bare: list[tuple[Kind, str]],
                             timeout: float) -> dict[tuple[Kind, str], Entry]:
        """The per-uuid objects of the bare ones in the other pools, where each names the pool it is in
        as its journal pool (ceph-csi writes the journal pool's id into the journal pool's object). The
        image pool's object does not say which pool that is, so every pool is asked; one this client
        cannot read holds none."""
        out: dict[tuple[Kind, str], Entry] = {}
        for name in cluster.list_pools():
            if len(out) == len(bare):
                break
            try:
                with cluster.open_ioctx(name) as ioctx:
                    if ioctx.get_pool_id() != image_pool:
                        ioctx.set_namespace(namespace)
                        self._read_elsewhere(ioctx, name, [b for b in bare if b not in out], out, timeout)
            except (rados.Error, BackendError):
                continue
        return out

    def _read_elsewhere(self, ioctx: Any, pool: str, bare: list[tuple[Kind, str]],
                        out: dict[tuple[Kind, str], Entry], timeout: float) -> None:
        journal_pool = ioctx.get_pool_id()
        batch = AioBatch(ioctx, IN_FLIGHT, timeout)
        for kind, u in bare:
            def done(rv: int, omap: dict[str, bytes] | None, kind: Kind = kind, u: str = u) -> None:
                if rv < 0 or not omap or _bare(kind, omap):
                    return      # absent here, unreadable, or another image pool's reservation
                entry = self._entry(f"{kind.object}{u}", pool, kind, omap)
                if entry is not None and entry.journal_pool == journal_pool:
                    out[(kind, u)] = entry
            batch.omap(f"{kind.object}{u}", (kind.name_key, "csi.imagename"), "csi.", done)
        batch.run()

    def _elsewhere(self, cluster: Any, pool_id: int, namespace: str, image_pool: int) -> dict[Kind, dict[str, str]]:
        """Our directories in another pool (the journal pool), for the images of image_pool."""
        try:
            with cluster.open_ioctx2(pool_id) as ioctx:
                ioctx.set_namespace(namespace)
                pool = ioctx.get_pool_name()
                return {kind: self._directory(ioctx, kind, image_pool, pool, here=False) for kind in (VOLUMES, SNAPSHOTS)}
        except (rados.Error, UnicodeDecodeError):
            return {}

    def _once(self, oid: str, pool: str, problem: str, event: str = "rbd_cephcsi_journal_unreadable") -> None:
        if (pool, oid, problem) not in self._logged:
            self._logged.add((pool, oid, problem))
            log.warning(event, pool=pool, object=oid, problem=problem, note="its images are never reported leaked")


def _omap(ioctx: Any, oid: str, prefix: str) -> list[tuple[str, bytes]]:
    """Every key of an object starting with prefix; none when the object does not exist (ceph-csi
    makes a directory with its first entry)."""
    try:
        return omap_pages(ioctx, oid, prefix)
    except rados.ObjectNotFound:
        return []


def _bare(kind: Kind, omap: dict[str, bytes]) -> bool:
    """A per-uuid object with neither request nor image name: only the reservation (and perhaps the
    csi.imageid a call by volume handle stores wherever it read the object)."""
    return kind.name_key not in omap and "csi.imagename" not in omap


def _text(raw: bytes | None) -> str | None:
    """A Go string's bytes as ceph-csi wrote them; None when absent or not UTF-8 text."""
    if raw is None:
        return None
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return value if value.isprintable() else None
