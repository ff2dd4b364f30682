"""Ceph RBD: volumes are images, live and in the RBD trash.

Two ways to read a target (pool, optionally a RADOS namespace), `--rbd.client`:
- librbd (rbd_librbd.py, the default where Debian's python3-rbd imports): in-process, one kept
  connection, the trash included, bounded parallelism across images;
- cli: per refresh exactly one `rbd du` and one `rbd ls -l`, both JSON, run concurrently (never
  one process per image); neither command sees the trash.

Many Ceph clusters (`--ceph.clusters ID=DIR`): a PV goes to the cluster its
`volumeAttributes.clusterID` names, as ceph-csi's config.json maps clusterID to monitors; PVs of
any other clusterID, and every PV when no clusters are named, go to the default cluster (the
single-cluster `--ceph.*` flags). A named cluster's targets and volumes carry its ID:
`ID:pool[/namespace]`, `ID:pool/image`; the default cluster's do not, so one cluster reads as before.

`rbd du` charges a golden image's data to its snapshot row (`golden@base`) and shows the head
at 0, so an image's own bytes are its head row plus all of its snapshot rows. Sizes are whole
RADOS objects (4 MiB by default) that the image itself holds: a CoW clone's unwritten objects
stay in its parent and are not counted.
"""

import asyncio
import itertools
import json
import os
import re
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import structlog

from ...config.logs import keep_c_libraries_off_stderr
from ...config.settings import ConfigError, Option
from ...kube.objects import get, text
from ..base import BackendError, BackendSpec, TargetState, Volume, VolumeRef, load_named, named_dirs, record
from .librbd import Image, Reader, available

log = structlog.get_logger("clonewatch.rbd")

NAME = "rbd"
# ceph-csi's intermediates (docs/design/proposals/rbd-snap-clone.md): the temporary clone a PVC-PVC
# clone goes through, and the image that holds a VolumeSnapshot.
_UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_LINK = re.compile(rf"csi-vol-{_UUID_TEXT}-temp|csi-snap-{_UUID_TEXT}")
_UUID = re.compile(rf"({_UUID_TEXT})$")


@dataclass(frozen=True)
class CephCluster:
    """How to reach one Ceph cluster; name "" is the default cluster."""
    name: str = ""
    conf: str = ""
    client_id: str = ""
    keyring: str = ""
    mon_host: str = ""


@dataclass(frozen=True)
class RbdSettings:
    binary: str = "rbd"
    default: CephCluster = CephCluster()        # the --ceph.* flags: PVs of any clusterID not named below
    clusters: tuple[CephCluster, ...] = ()     # named clusters, routed to by a PV's clusterID
    pools: tuple[str, ...] = ()        # always refreshed, Kubernetes or not ("pool" or "pool/ns")
    timeout_seconds: float = 60.0
    refresh_interval_seconds: float = 60.0
    concurrency: int = 4
    client: str = "cli"                # cli: `rbd du` + `rbd ls -l`; librbd: in-process, the trash included


def volume_id(pool: str, namespace: str, image: str, cluster: str = "") -> str:
    vid = f"{pool}/{namespace}/{image}" if namespace else f"{pool}/{image}"
    return f"{cluster}:{vid}" if cluster else vid


def make_target(cluster: str, pool: str, namespace: str) -> str:
    target = f"{pool}/{namespace}" if namespace else pool
    return f"{cluster}:{target}" if cluster else target


def split_target(target: str) -> tuple[str, str]:
    """(pool, namespace) of a target, whatever its cluster."""
    pool, _, namespace = split_cluster(target)[1].partition("/")
    return pool, namespace


def split_cluster(target: str) -> tuple[str, str]:
    """(cluster, the rest) of a target or volume id; cluster "" is the default one."""
    cluster, sep, rest = target.partition(":")
    # A trashed image's id holds a ':' too (pool/name@trash:ID); cluster IDs never hold a '/'.
    return (cluster, rest) if sep and "/" not in cluster else ("", target)


def is_rbd_driver(driver: Any) -> bool:
    return isinstance(driver, str) and driver.endswith("rbd.csi.ceph.com")


def parse_du(doc: Any) -> dict[str, tuple[int, int]]:
    """image -> (own bytes: head + snapshots, provisioned bytes of the head)."""
    rows = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise BackendError("rbd du: no 'images' list in its output")
    out: dict[str, list[int]] = {}
    for row in rows:
        name = row.get("name") if isinstance(row, dict) else None
        used, prov = (row.get("used_size"), row.get("provisioned_size")) if isinstance(row, dict) else (None, None)
        if not isinstance(name, str) or not name or not _is_count(used) or not _is_count(prov):
            raise BackendError(f"rbd du: malformed row {str(row)[:200]}")
        entry = out.setdefault(name, [0, 0])
        entry[0] += used
        if "snapshot" not in row:
            entry[1] = prov
    return {name: (own, prov) for name, (own, prov) in out.items()}


def parse_ls(doc: Any) -> dict[str, dict | None]:
    """image -> its parent {pool, pool_namespace, image, snapshot} or None."""
    if not isinstance(doc, list):
        raise BackendError("rbd ls -l: output is not a list")
    out: dict[str, dict | None] = {}
    for row in doc:
        name = row.get("image") if isinstance(row, dict) else None
        if not isinstance(name, str) or not name:
            raise BackendError(f"rbd ls -l: malformed row {str(row)[:200]}")
        if "snapshot" in row:
            continue
        parent = row.get("parent")
        if parent is not None and not (isinstance(parent, dict) and text(parent.get("pool"))
                                       and text(parent.get("image"))):
            raise BackendError(f"rbd ls -l: malformed parent {str(parent)[:200]}")
        out[name] = parent
    return out


def build_volumes(target: str, du: dict[str, tuple[int, int]], ls: dict[str, dict | None]) -> dict[str, Volume]:
    cluster = split_cluster(target)[0]
    pool, namespace = split_target(target)
    volumes: dict[str, Volume] = {}
    for image, (own, prov) in du.items():
        if image not in ls:
            continue        # created or removed between the two commands: next refresh sees it
        parent = ls[image]
        parent_id = volume_id(parent["pool"], text(parent.get("pool_namespace")), parent["image"], cluster) \
            if parent else ""
        vid = volume_id(pool, namespace, image, cluster)
        volumes[vid] = Volume(volume=vid, target=target, consumed_bytes=own, provisioned_bytes=prov,
                              parent=parent_id, parent_snapshot=text(parent.get("snapshot")) if parent else "",
                              link=bool(_LINK.fullmatch(image)))
    return volumes


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
                              link=bool(_LINK.fullmatch(i.name)) or i.trashed, trashed=i.trashed,
                              fast_diff=i.fast_diff)
    return volumes


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class RbdBackend:
    name = NAME
    unshared_reason = "flattened"     # an image without a parent was flattened (or never was a clone)

    def __init__(self, settings: RbdSettings) -> None:
        self.settings = settings
        self.refresh_interval = settings.refresh_interval_seconds
        self._states: dict[str, TargetState] = {}
        self._wanted: set[str] = set()
        self._by_image: dict[str, str] = {}
        self._clusters = {c.name: c for c in settings.clusters}
        self._clusters[""] = settings.default
        self._readers: dict[str, Reader] = {}
        self._busy: set[str] = set()
        self._slow_logged: set[str] = set()

    # -- mapping Kubernetes objects to images (no I/O) --------------------------------------
    def map_pv(self, pv: dict) -> VolumeRef | None:
        csi = get(pv, "spec", "csi")
        if not is_rbd_driver(get(csi, "driver")):
            return None
        attrs = get(csi, "volumeAttributes")
        pool = text(get(attrs, "pool"))
        image = text(get(attrs, "imageName"))
        if not image and text(get(attrs, "staticVolume")) == "true":
            image = text(get(csi, "volumeHandle"))     # static PVs name the image in the handle
        if not pool or not image:
            return None
        namespace = text(get(attrs, "radosNamespace"))
        cluster = text(get(attrs, "clusterID"))
        cluster = cluster if cluster and cluster in self._clusters else ""
        return VolumeRef(NAME, make_target(cluster, pool, namespace), volume_id(pool, namespace, image, cluster))

    def serves_provisioner(self, provisioner: str) -> bool:
        return is_rbd_driver(provisioner)

    def map_snapshot_content(self, content: dict) -> VolumeRef | None:
        """ceph-csi keeps a snapshot as image csi-snap-<uuid of the handle>; find it by name."""
        if not is_rbd_driver(get(content, "spec", "driver")):
            return None
        match = _UUID.search(text(get(content, "status", "snapshotHandle")))
        vid = self._by_image.get(f"csi-snap-{match.group(1)}") if match else None
        if not vid:
            return None
        return VolumeRef(NAME, vid.rsplit("/", 1)[0], vid)

    def want(self, pvs: Iterable[dict]) -> None:
        self._wanted = {r.target for r in map(self.map_pv, pvs) if r is not None}

    def states(self) -> dict[str, TargetState]:
        return self._states

    # -- refresh ------------------------------------------------------------------------------
    def _targets(self) -> set[str]:
        return set(self.settings.pools) | self._wanted

    async def refresh(self) -> None:
        targets = self._targets()
        for gone in set(self._states) - targets:
            del self._states[gone]
        sem = asyncio.Semaphore(max(1, self.settings.concurrency))
        # TaskGroups, not gather: on cancellation (shutdown) they wait until every rbd is killed.
        async with asyncio.TaskGroup() as tg:
            for t in sorted(targets):
                tg.create_task(self._refresh_target(t, sem))
        # Parents in pools nobody asked for (a golden in another pool): fetch them too, once.
        extra = self._parent_targets() - set(self._states)
        if extra:
            self._wanted |= extra
            async with asyncio.TaskGroup() as tg:
                for t in sorted(extra):
                    tg.create_task(self._refresh_target(t, sem))
        self._by_image = {vid.rsplit("/", 1)[1]: vid
                          for st in self._states.values() for vid in st.volumes}

    def _parent_targets(self) -> set[str]:
        out = set()
        for st in self._states.values():
            for vol in st.volumes.values():
                if vol.parent:
                    out.add(vol.parent.rsplit("/", 1)[0])
        return out

    async def _refresh_target(self, target: str, sem: asyncio.Semaphore) -> None:
        state = self._states.setdefault(target, TargetState(target))
        async with sem:
            await record(NAME, state, self._measure(target))

    def _cluster(self, target: str) -> CephCluster:
        name = split_cluster(target)[0]
        if name not in self._clusters:
            raise BackendError(f"no Ceph cluster {name!r} is configured (ceph.clusters)")
        return self._clusters[name]

    async def _measure(self, target: str) -> dict[str, Volume]:
        cluster = self._cluster(target)
        if self.settings.client == "librbd":
            return await self._measure_librbd(target, cluster)
        pool, namespace = split_target(target)
        scope = ["--pool", pool] + (["--namespace", namespace] if namespace else [])
        du_doc, ls_doc = await self._du_and_ls(cluster, scope)
        return build_volumes(target, parse_du(du_doc), parse_ls(ls_doc))

    async def _du_and_ls(self, cluster: CephCluster, scope: list[str]) -> tuple[Any, Any]:
        """Both commands at once; the first failure is the one reported."""
        try:
            async with asyncio.TaskGroup() as tg:
                du = tg.create_task(self._run_json(cluster, ["du", *scope, "--format", "json"]))
                ls = tg.create_task(self._run_json(cluster, ["ls", "-l", *scope, "--format", "json"]))
        except BaseExceptionGroup as group:
            failures = [e for e in group.exceptions if isinstance(e, BackendError)]
            if failures and len(failures) == len(group.exceptions):
                raise failures[0] from None
            raise
        return du.result(), ls.result()

    async def _measure_librbd(self, target: str, cluster: CephCluster) -> dict[str, Volume]:
        s = self.settings
        reader = self._readers.get(cluster.name)
        if reader is None:
            reader = self._readers[cluster.name] = Reader(cluster.conf, cluster.client_id, cluster.keyring,
                                                          cluster.mon_host, s.timeout_seconds, s.concurrency)
        if target in self._busy:
            # Ceph's timeouts end a stuck call on their own; never two reads of one pool at once.
            raise BackendError("the previous refresh of this pool is still running")
        self._busy.add(target)
        pool, namespace = split_target(target)
        work = asyncio.wrap_future(reader.submit_read(pool, namespace))
        work.add_done_callback(lambda _f: self._busy.discard(target))
        try:
            images = await asyncio.wait_for(asyncio.shield(work), s.timeout_seconds * 2)
        except TimeoutError:
            raise BackendError(f"no answer within {s.timeout_seconds * 2:g}s") from None
        volumes = volumes_from_images(target, images)
        for vid, vol in volumes.items():
            if vol.fast_diff is False and vid not in self._slow_logged:
                self._slow_logged.add(vid)
                log.warning("rbd_image_without_fast_diff", volume=vid,
                            note="measuring it reads every object; enable object-map and fast-diff")
        return volumes

    async def close(self) -> None:
        readers, self._readers = self._readers, {}
        for reader in readers.values():
            reader.close()

    def _base_args(self, c: CephCluster) -> list[str]:
        args = [self.settings.binary]
        if c.conf:
            args += ["--conf", c.conf]
        if c.client_id:
            args += ["--id", c.client_id]
        if c.keyring:
            args += ["--keyring", c.keyring]
        if c.mon_host:
            args += ["--mon-host", c.mon_host]
        return args

    async def _run_json(self, cluster: CephCluster, args: list[str]) -> Any:
        """One rbd command's JSON. A command that dies of a signal (an assertion in librbd aborts
        the CLI now and then) is run once more before the refresh is called failed."""
        what = " ".join(["rbd", *itertools.takewhile(lambda a: not a.startswith("--"), args)])   # rbd ls -l
        for attempt in range(1, CRASH_ATTEMPTS + 1):
            code, out, err = await self._run(cluster, args, what)
            if code >= 0 or attempt == CRASH_ATTEMPTS:
                break
            log.warning("rbd_cli_crashed", command=what, signal=signal_name(code), attempt=attempt,
                        reason=crash_reason(err), note="running it again")
        if code < 0:
            raise BackendError(f"{what}: killed by {signal_name(code)}: {crash_reason(err)}")
        if code != 0:
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise BackendError(f"{what}: exit {code}: {last[0][:300]}")
        try:
            return json.loads(out)
        except ValueError as exc:
            raise BackendError(f"{what}: output is not JSON ({exc})") from None

    async def _run(self, cluster: CephCluster, args: list[str], what: str) -> tuple[int, bytes, bytes]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._base_args(cluster), *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=os.environ.copy())
        except OSError as exc:
            raise BackendError(f"{what}: cannot start {self.settings.binary!r}: {exc.strerror or exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.settings.timeout_seconds)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BackendError(f"{what}: no answer within {self.settings.timeout_seconds:g}s, killed") from None
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out, err


CRASH_ATTEMPTS = 2
# What Ceph prints when it aborts: the assertion, then a dump of its recent log events that can run
# to thousands of lines and always ends with the same marker; the assertion is the news.
_CRASH_LINE = re.compile(r"FAILED ceph_assert|ceph_abort|Caught signal|terminate called|what\(\)")
_DUMP_BEGIN, _DUMP_END = "--- begin dump of recent events ---", "--- end dump of recent events ---"


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def crash_reason(stderr: bytes) -> str:
    """The line that says why a Ceph command aborted, not the last line of its event dump."""
    lines, in_dump = [], False
    for line in stderr.decode("utf-8", "replace").splitlines():
        if _DUMP_BEGIN in line:
            in_dump = True
        elif _DUMP_END in line:
            in_dump = False
        elif not in_dump and line.strip():
            lines.append(line.strip())
    marked = [line for line in lines if _CRASH_LINE.search(line)]
    return (marked or lines[-1:] or ["no message"])[0][:300]


# -- registration -------------------------------------------------------------------------------
OPTIONS = (
    Option("rbd.enabled", "bool", True, "measure Ceph RBD images"),
    Option("rbd.pools", "list", (), "pools (pool, pool/namespace, or ID:pool for a named cluster) to measure "
           "even without PVs in them"),
    Option("rbd.client", "str", "auto", "how to read Ceph: librbd (in-process, sees the RBD trash), cli (the rbd "
           "command), auto (librbd when Debian's python3-rbd is importable, else cli)"),
    Option("rbd.binary", "str", "rbd", "the rbd command (with rbd.client cli)"),
    Option("rbd.timeout", "float", 60.0, "seconds before a hanging rbd command is killed",
           positive=True, unit="seconds"),
    Option("rbd.refresh-interval", "float", 60.0, "seconds between RBD refreshes", positive=True, unit="seconds"),
    Option("rbd.concurrency", "int", 4, "targets refreshed at once", positive=True),
    Option("ceph.conf", "str", "", "ceph.conf for rbd (else $CEPH_CONF / rbd's default)"),
    Option("ceph.id", "str", "", "Ceph client id, e.g. admin (as the Rook toolbox uses)"),
    Option("ceph.keyring", "str", "", "keyring file for that client"),
    Option("ceph.mon-host", "str", "", "monitor addresses, when there is no ceph.conf (as Rook's toolbox env gives)"),
    Option("ceph.clusters", "list", (), "more Ceph clusters as ID=DIR (ID: ceph-csi's clusterID; DIR: ceph.conf, "
           "keyring, optional client-id); PVs of other clusterIDs use the ceph.* flags above"),
)


def load_cluster(name: str, directory: Path) -> CephCluster:
    """A cluster from a mounted directory: ceph.conf (required), keyring, client-id (else the keyring's
    one client, else Ceph's default)."""
    if any(ch in name for ch in ":/ "):
        raise ValueError("an ID must not contain ':', '/' or spaces")
    conf = directory / "ceph.conf"
    if not conf.is_file():
        raise ValueError(f"{conf} is missing")
    keyring = directory / "keyring"
    client_id = ""
    if (directory / "client-id").is_file():
        client_id = (directory / "client-id").read_text().strip()
    elif keyring.is_file():
        clients = re.findall(r"^\s*\[client\.([^\]]+)\]", keyring.read_text(), re.MULTILINE)
        client_id = clients[0] if len(clients) == 1 else ""
    return CephCluster(name, str(conf), client_id, str(keyring) if keyring.is_file() else "", "")


def _client(s) -> str:
    if s.rbd_client not in ("auto", "librbd", "cli"):
        raise ConfigError("rbd.client", f"expected auto, librbd or cli, got {s.rbd_client!r}")
    if s.rbd_client == "librbd" and not available():
        raise ConfigError("rbd.client", "librbd is not importable here (install Debian's python3-rbd and "
                                        "python3-rados, see README)")
    return s.rbd_client if s.rbd_client != "auto" else ("librbd" if available() else "cli")


def _build(s) -> RbdBackend | None:
    if not s.rbd_enabled:
        return None
    return RbdBackend(RbdSettings(client=_client(s),
        binary=s.rbd_binary, default=CephCluster("", s.ceph_conf, s.ceph_id, s.ceph_keyring, s.ceph_mon_host),
        pools=_pools(s), timeout_seconds=s.rbd_timeout,
        clusters=load_named("ceph.clusters", s.ceph_clusters, "cluster", load_cluster),
        refresh_interval_seconds=s.rbd_refresh_interval, concurrency=s.rbd_concurrency))


def _check(s) -> None:
    _client(s)
    if s.rbd_enabled:
        load_named("ceph.clusters", s.ceph_clusters, "cluster", load_cluster)
        _pools(s)


def _pools(s) -> tuple[str, ...]:
    names = {name for name, _ in named_dirs("ceph.clusters", s.ceph_clusters)}
    for entry in s.rbd_pools:
        cluster = split_cluster(entry)[0]
        if cluster and cluster not in names:
            raise ConfigError("rbd.pools", f"{entry!r} names cluster {cluster!r}, which ceph.clusters does not configure")
    return tuple(s.rbd_pools)


def _prepare(s) -> None:
    if s.rbd_enabled and _client(s) == "librbd":
        keep_c_libraries_off_stderr()


SPEC = BackendSpec(NAME, 10, OPTIONS, _build, _check, _prepare)
