"""Ceph RBD: volumes are images, live and in the RBD trash.

Two ways to read a target (pool, optionally a RADOS namespace), `--rbd.client`, both a PoolReader
(reader.py) that the backend picks once:
- librbd (librbd.py, the default where Debian's python3-rbd imports): in-process, one kept
  connection, the trash included, bounded parallelism across images;
- cli (cli.py): per refresh exactly one `rbd du` and one `rbd ls -l`, both JSON, run concurrently
  (never one process per image); neither command sees the trash.

Many Ceph clusters (`--ceph.clusters ID=DIR`): a PV goes to the cluster its
`volumeAttributes.clusterID` names, as ceph-csi's config.json maps clusterID to monitors; PVs of
any other clusterID, and every PV when no clusters are named, go to the default cluster (the
single-cluster `--ceph.*` flags). A named cluster's targets and volumes carry its ID (naming.py).
"""

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config.logs import keep_c_libraries_off_stderr
from ...config.settings import ConfigError, option
from ...kube.objects import get, text
from ..base import BackendError, BackendSpec, Core, TargetState, Volume, VolumeRef, load_named, named_dirs, record
from .cli import CliClient
from .journal import DEFAULT_INSTANCE
from .librbd import LibrbdClient, available
from .naming import handle_image, is_rbd_driver, make_target, snapshot_image, split_cluster, volume_id
from .reader import CephCluster, PoolReader
from .state import RbdTargetState

NAME = "rbd"


@dataclass(frozen=True)
class RbdSettings:
    binary: str = "rbd"
    default: CephCluster = field(default_factory=CephCluster)   # the --ceph.* flags: PVs of any clusterID not named below
    clusters: tuple[CephCluster, ...] = ()     # named clusters, routed to by a PV's clusterID
    pools: tuple[str, ...] = ()        # always refreshed, Kubernetes or not ("pool" or "pool/ns")
    timeout_seconds: float = 60.0
    refresh_interval_seconds: float = 60.0
    concurrency: int = 4
    client: str = "cli"                # cli: `rbd du` + `rbd ls -l`; librbd: in-process, the trash included
    cephcsi_instance: str = DEFAULT_INSTANCE     # whose ceph-csi journal entries are this cluster's (librbd only)


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
        self.reader: PoolReader = LibrbdClient(settings.timeout_seconds, settings.concurrency, settings.cephcsi_instance) \
            if settings.client == "librbd" else CliClient(settings.binary, settings.timeout_seconds)

    # -- mapping Kubernetes objects to images (no I/O) --------------------------------------
    def map_pv(self, pv: dict[str, Any]) -> VolumeRef | None:
        csi = get(pv, "spec", "csi")
        if not is_rbd_driver(get(csi, "driver")):
            return None
        attrs = get(csi, "volumeAttributes")
        pool = text(get(attrs, "pool"))
        image = text(get(attrs, "imageName"))
        if not image and text(get(attrs, "staticVolume")) == "true":
            image = text(get(csi, "volumeHandle"))     # static PVs name the image in the handle
        elif not image:
            image = handle_image(text(get(csi, "volumeHandle"))) or ""      # ceph-csi < v3: no imageName
        if not pool or not image:
            return None
        namespace = text(get(attrs, "radosNamespace"))
        cluster = text(get(attrs, "clusterID"))
        cluster = cluster if cluster and cluster in self._clusters else ""
        return VolumeRef(NAME, make_target(cluster, pool, namespace), volume_id(pool, namespace, image, cluster))

    def serves_provisioner(self, provisioner: str) -> bool:
        return is_rbd_driver(provisioner)

    def map_snapshot_content(self, content: dict[str, Any]) -> VolumeRef | None:
        """ceph-csi keeps a snapshot as image csi-snap-<uuid of the handle>; find it by name."""
        if not is_rbd_driver(get(content, "spec", "driver")):
            return None
        image = snapshot_image(text(get(content, "status", "snapshotHandle")))
        vid = self._by_image.get(image) if image else None
        if not vid:
            return None
        return VolumeRef(NAME, vid.rsplit("/", 1)[0], vid)

    def want(self, pvs: Iterable[dict[str, Any]]) -> None:
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
        state = self._states.setdefault(target, RbdTargetState(target))
        async with sem:
            await record(NAME, state, self._measure(target))
        if isinstance(state, RbdTargetState):
            state.images_read = self.reader.images_read(split_cluster(target)[0], target)

    def _cluster(self, target: str) -> CephCluster:
        name = split_cluster(target)[0]
        if name not in self._clusters:
            raise BackendError(f"no Ceph cluster {name!r} is configured (ceph.clusters)")
        return self._clusters[name]

    async def _measure(self, target: str) -> dict[str, Volume]:
        return await self.reader.read(self._cluster(target), target)

    async def close(self) -> None:
        await self.reader.close()


# -- registration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RbdOptions:
    enabled: bool = option("rbd.enabled", True, "measure Ceph RBD images")
    pools: tuple[str, ...] = option("rbd.pools", (), "pools (pool, pool/namespace, or ID:pool for a named cluster) "
                                    "to measure even without PVs in them")
    client: str = option("rbd.client", "auto", "how to read Ceph: librbd (in-process, sees the RBD trash), cli (the "
                         "rbd command), auto (librbd when Debian's python3-rbd is importable, else cli)")
    binary: str = option("rbd.binary", "rbd", "the rbd command (with rbd.client cli)")
    timeout: float = option("rbd.timeout", 60.0, "seconds before a hanging rbd command is killed",
                            positive=True, unit="seconds")
    refresh_interval: float = option("rbd.refresh-interval", 60.0, "seconds between RBD refreshes",
                                     positive=True, unit="seconds")
    concurrency: int = option("rbd.concurrency", 4, "targets refreshed at once", positive=True)
    cephcsi_instance_id: str = option("rbd.cephcsi-instance-id", DEFAULT_INSTANCE, "ceph-csi's --instanceid: the "
                                      "journal (csi.volumes.ID) whose images this cluster's PVs own; images in "
                                      "another instance's journal are reported foreign (librbd client only)")
    ceph_conf: str = option("ceph.conf", "", "ceph.conf for rbd (else $CEPH_CONF / rbd's default)")
    ceph_id: str = option("ceph.id", "", "Ceph client id, e.g. admin (as the Rook toolbox uses)")
    ceph_keyring: str = option("ceph.keyring", "", "keyring file for that client")
    ceph_mon_host: str = option("ceph.mon-host", "", "monitor addresses, when there is no ceph.conf (as Rook's "
                                "toolbox env gives)")
    ceph_clusters: tuple[str, ...] = option("ceph.clusters", (), "more Ceph clusters as ID=DIR (ID: ceph-csi's "
                                            "clusterID; DIR: ceph.conf, keyring, optional client-id); PVs of other "
                                            "clusterIDs use the ceph.* flags above")


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


def _client(o: RbdOptions) -> str:
    if o.client not in ("auto", "librbd", "cli"):
        raise ConfigError("rbd.client", f"expected auto, librbd or cli, got {o.client!r}")
    if o.client == "librbd" and not available():
        raise ConfigError("rbd.client", "librbd is not importable here (install Debian's python3-rbd and "
                                        "python3-rados, see README)")
    return o.client if o.client != "auto" else ("librbd" if available() else "cli")


def _build(o: RbdOptions, core: Core) -> RbdBackend | None:
    if not o.enabled:
        return None
    return RbdBackend(RbdSettings(client=_client(o),
        binary=o.binary, default=CephCluster("", o.ceph_conf, o.ceph_id, o.ceph_keyring, o.ceph_mon_host),
        pools=_pools(o), timeout_seconds=o.timeout, clusters=_clusters(o),
        refresh_interval_seconds=o.refresh_interval, concurrency=o.concurrency,
        cephcsi_instance=o.cephcsi_instance_id))


def _check(o: RbdOptions) -> None:
    _client(o)
    if not o.cephcsi_instance_id or any(ch in o.cephcsi_instance_id for ch in "/\0"):
        raise ConfigError("rbd.cephcsi-instance-id", f"expected ceph-csi's --instanceid, got {o.cephcsi_instance_id!r}")
    if o.enabled:
        _clusters(o)
        _pools(o)


def _clusters(o: RbdOptions) -> tuple[CephCluster, ...]:
    return load_named("ceph.clusters", o.ceph_clusters, "cluster", load_cluster)


def _pools(o: RbdOptions) -> tuple[str, ...]:
    names = {name for name, _ in named_dirs("ceph.clusters", o.ceph_clusters)}
    for entry in o.pools:
        cluster = split_cluster(entry)[0]
        if cluster and cluster not in names:
            raise ConfigError("rbd.pools", f"{entry!r} names cluster {cluster!r}, which ceph.clusters does not configure")
    return o.pools


def _prepare(o: RbdOptions) -> None:
    if o.enabled and _client(o) == "librbd":
        keep_c_libraries_off_stderr()


SPEC = BackendSpec(NAME, 10, RbdOptions, _build, _check, _prepare)
