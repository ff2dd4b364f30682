"""IBM Storage Virtualize / FlashSystem (`block.csi.ibm.com`): volumes are vdisks, clones are
FlashCopy mappings.

The CSI driver clones a PVC by creating a new vdisk and a FlashCopy mapping from the source
with the array's default background copy rate, so a "csi-clone" on FlashSystem starts out
sharing the source's data and ends as a full copy. We report what the array reports: the
target's used capacity, and the mapping's progress, which says how much of the source the
target no longer reads through it.

Per array and refresh, three bulk commands (never one per volume): `lsvdisk` (capacity, UID,
copies), `lssevdiskcopy` (used capacity of thin and compressed copies) and `lsfcmap`. Volumes in
data reduction pools, where the bulk view leaves used capacity blank, get a detailed
`lsvdisk <id>`, only for the volumes Kubernetes uses and those the CSI driver made.

Every vdisk is reported, whether a PV maps to it or not, so space no PVC owns can be told: a vdisk
named as the driver names its objects (`<prefix>_pvc-<uuid>`, `<prefix>_snapshot-<uuid>`, the
prefix a StorageClass's `volume_name_prefix` / a VolumeSnapshotClass's `snapshot_name_prefix`,
`CSI` by default) carries made_by "csi" and its kind; nothing else on the array says who made a
vdisk or when (the concise `lsvdisk` has no creation time), so `created` stays 0. Snapshots made
with `virt_snap_func` are not vdisks (`lsvolumesnapshot`) and are not read.
"""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config.settings import option
from ...kube.objects import get, text
from ..base import BackendSpec, BackgroundCopy, Core, TargetState, Volume, VolumeRef, load_named, record
from ..transport import host_port
from .naming import DEFAULT_NAMING, DEFAULT_PREFIX, CsiNaming, csi_marks, request_name
from .replies import (
    FcMap,
    VDisk,
    digits,
    parse_detail_used,
    parse_fcmaps,
    parse_se_copies,
    parse_vdisks,
)
from .rest import ArrayAccess, SvcClient

NAME = "flashsystem"
DRIVER = "block.csi.ibm.com"


@dataclass(frozen=True)
class FlashSystemSettings:
    arrays: tuple[ArrayAccess, ...] = ()
    timeout_seconds: float = 30.0
    refresh_interval_seconds: float = 60.0
    concurrency: int = 2            # requests in flight per array (the array runs one CLI command at a time)
    naming: CsiNaming = DEFAULT_NAMING  # the name prefixes that say our driver made a vdisk


def load_array(name: str, directory: Path, insecure: bool = False) -> ArrayAccess:
    """An array from a directory holding a mounted Secret: management_address, username,
    password (the keys the IBM block CSI driver's array Secret uses) and optionally ca.crt."""
    addr_file = directory / "management_address"
    try:
        raw = addr_file.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read {addr_file}: {exc.strerror or exc}") from None
    addresses = tuple(a.strip() for a in raw.split(",") if a.strip())
    if not addresses:
        raise ValueError(f"{addr_file} names no address")
    ca = directory / "ca.crt"
    return ArrayAccess(name=name, addresses=addresses, username_file=directory / "username",
                       password_file=directory / "password", ca_file=ca if ca.exists() else None,
                       insecure=insecure)


def parse_volume_handle(handle: str) -> str | None:
    """The vdisk UID from `SVC:<uid>`, `SVC:<id>;<uid>` or `SVC:<system id>:<id>;<uid>`."""
    kind, sep, rest = handle.partition(":")
    if kind != "SVC" or not sep or not rest:
        return None
    object_id = rest.rsplit(":", 1)[-1]
    uid = object_id.rsplit(";", 1)[-1]
    return uid.upper() if uid else None


def volume_id(array: str, uid: str) -> str:
    return f"{array}/{uid.upper()}"


def _host(address: str) -> str:
    return host_port(address.strip().lower(), 0)[0]


def build_volumes(array: str, vdisks: dict[str, VDisk], se: dict[str, list[int | None]],
                  fcmaps: list[FcMap], detail: dict[str, int | None],
                  naming: CsiNaming = DEFAULT_NAMING) -> dict[str, Volume]:
    # The mapping each target hangs from: active ones before finished ones, then by id.
    feeding: dict[str, FcMap] = {}
    for m in sorted(fcmaps, key=lambda m: (m.status == "idle_or_copied", _num(m.id))):
        if not m.restoring and m.target in vdisks:
            feeding.setdefault(m.target, m)
    marks = csi_marks(vdisks, fcmaps, naming)
    volumes = {}
    for vid, vd in vdisks.items():
        used = _used(vd, se.get(vid, []), detail.get(vid))
        if used is None:
            continue        # not measurable (data reduction pool, no detail yet): absent, not invented
        feed = feeding.get(vid)
        parent, problem = "", ""
        if feed and feed.source in vdisks:
            parent = volume_id(array, vdisks[feed.source].uid)
        elif feed:
            # The mapping names a source vdisk the array no longer lists: the target still reads
            # through it for whatever was not copied, but we cannot see or count that.
            parent, problem = f"{array}/vdisk-id:{feed.source}", "flashcopy-source-missing"
        copy = BackgroundCopy(mapping=feed.name or feed.id, status=feed.status, progress_ratio=feed.progress / 100,
                              copy_rate=feed.copy_rate) if feed else None
        vol_id = volume_id(array, vd.uid)
        made_by, kind = marks.get(vid, ("", ""))
        volumes[vol_id] = Volume(volume=vol_id, target=array, consumed_bytes=used,
                                 provisioned_bytes=vd.capacity, parent=parent, copy=copy, parent_problem=problem,
                                 made_by=made_by, csi_kind=kind, request=request_name(vd.name) if made_by else "")
    return volumes


def _used(vd: VDisk, se_used: list[int | None], detail: int | None) -> int | None:
    if any(u is None for u in se_used):
        return detail
    fully_allocated = max(0, vd.copies - len(se_used))
    return sum(u for u in se_used if u is not None) + fully_allocated * vd.capacity


def _num(value: str) -> int:
    return int(value) if digits(value) else 1 << 62


class FlashSystemBackend:
    name = NAME
    unshared_reason = "no-flashcopy-mapping"     # a vdisk no mapping feeds holds all of its data

    def __init__(self, settings: FlashSystemSettings) -> None:
        self.settings = settings
        self.refresh_interval = settings.refresh_interval_seconds
        self._states: dict[str, TargetState] = {a.name: TargetState(a.name) for a in settings.arrays}
        self._clients = {a.name: SvcClient(a, settings.timeout_seconds, settings.concurrency)
                         for a in settings.arrays}
        self._hosts = {a.name: {_host(addr) for addr in a.addresses} for a in settings.arrays}
        self._wanted: set[str] | None = None       # volume ids Kubernetes uses; None: all (native mode)

    # -- mapping Kubernetes objects to vdisks (no I/O) ---------------------------------------
    def _array_for(self, addresses: str) -> str | None:
        hosts = {_host(a) for a in addresses.split(",") if a.strip()}
        for name, known in self._hosts.items():
            if hosts & known:
                return name
        return next(iter(self._hosts)) if len(self._hosts) == 1 else None

    def _holding(self, uid: str) -> str | None:
        """The array whose last refresh saw this vdisk UID (UIDs are unique across arrays)."""
        return next((name for name, st in self._states.items() if volume_id(name, uid) in st.volumes), None)

    def _ref(self, driver: Any, handle: Any, addresses: Any) -> VolumeRef | None:
        if driver != DRIVER:
            return None
        uid = parse_volume_handle(text(handle))
        if not uid:
            return None
        # A VolumeSnapshotContent names no array, and a PV may name it by an address not configured
        # (a DNS name for an IP): with several arrays, the one whose last refresh holds the vdisk, so a
        # vdisk is never taken for one nothing maps to (leaked, orphaned) for want of an address.
        array = self._array_for(text(addresses)) or self._holding(uid)
        if not array:
            return None
        return VolumeRef(NAME, array, volume_id(array, uid))

    def map_pv(self, pv: dict[str, Any]) -> VolumeRef | None:
        csi = get(pv, "spec", "csi")
        return self._ref(get(csi, "driver"), get(csi, "volumeHandle"),
                         get(csi, "volumeAttributes", "array_address"))

    def serves_provisioner(self, provisioner: str) -> bool:
        return provisioner == DRIVER

    def map_snapshot_content(self, content: dict[str, Any]) -> VolumeRef | None:
        # A CSI snapshot is a FlashCopy target vdisk too; its handle has the same form.
        return self._ref(get(content, "spec", "driver"), get(content, "status", "snapshotHandle"), "")

    def want(self, pvs: Iterable[dict[str, Any]]) -> None:
        self._wanted = {r.volume for r in map(self.map_pv, pvs) if r is not None}

    def states(self) -> dict[str, TargetState]:
        return self._states

    # -- refresh ------------------------------------------------------------------------------
    async def refresh(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for name in sorted(self._clients):
                tg.create_task(self._refresh_array(name))

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()

    async def _refresh_array(self, array: str) -> None:
        await record(NAME, self._states[array], self._measure(array, self._clients[array]))

    async def _measure(self, array: str, client: SvcClient) -> dict[str, Volume]:
        # Sequential on purpose: the array serialises CLI commands anyway.
        vdisks = parse_vdisks(await client.command("lsvdisk", {"bytes": True}))
        se = parse_se_copies(await client.command("lssevdiskcopy", {"bytes": True}))
        fcmaps = parse_fcmaps(await client.command("lsfcmap"))
        wanted = self._wanted_ids(array, vdisks, fcmaps)
        blank = [vid for vid, used in se.items() if vid in vdisks and any(u is None for u in used)
                 and (wanted is None or vid in wanted)]
        detail: dict[str, int | None] = {}
        if blank:
            replies = await asyncio.gather(*(client.command("lsvdisk", {"bytes": True}, vid) for vid in blank))
            detail = {vid: parse_detail_used(doc) for vid, doc in zip(blank, replies, strict=True)}
        return build_volumes(array, vdisks, se, fcmaps, detail, self.settings.naming)

    def _wanted_ids(self, array: str, vdisks: dict[str, VDisk], fcmaps: list[FcMap]) -> set[str] | None:
        """vdisk ids worth a detailed call: those Kubernetes uses, those our driver made (space no
        PV may own) and every source they hang from (a clone's logical size needs its whole chain).
        None: all (native mode)."""
        if self._wanted is None:
            return None
        sources: dict[str, list[str]] = {}
        for m in fcmaps:
            if not m.restoring:
                sources.setdefault(m.target, []).append(m.source)
        todo = [vid for vid, vd in vdisks.items() if volume_id(array, vd.uid) in self._wanted]
        todo += list(csi_marks(vdisks, fcmaps, self.settings.naming))
        seen: set[str] = set()
        while todo:
            vid = todo.pop()
            if vid not in seen:
                seen.add(vid)
                todo.extend(sources.get(vid, ()))
        return seen


# -- registration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlashSystemOptions:
    arrays: tuple[str, ...] = option("flashsystem.arrays", (), "IBM FlashSystem / Storage Virtualize arrays as "
                                     "NAME=DIR, DIR holding the array Secret's management_address, username, password "
                                     "(and optionally ca.crt)")
    insecure_skip_verify: bool = option("flashsystem.insecure-skip-verify", False,
                                        "labs only: do not check the arrays' TLS certificates")
    timeout: float = option("flashsystem.timeout", 30.0, "seconds before a REST request to an array is given up",
                            positive=True, unit="seconds")
    refresh_interval: float = option("flashsystem.refresh-interval", 60.0, "seconds between FlashSystem refreshes",
                                     positive=True, unit="seconds")
    concurrency: int = option("flashsystem.concurrency", 2, "REST requests in flight per array", positive=True)
    volume_name_prefixes: tuple[str, ...] = option(
        "flashsystem.volume-name-prefixes", (DEFAULT_PREFIX,), "the IBM block CSI driver's volume_name_prefix values "
        "of this cluster's StorageClasses (the driver's default: CSI): a vdisk named <prefix>_pvc-<uuid> is one this "
        "cluster's driver made; give each cluster sharing an array its own prefix")
    snapshot_name_prefixes: tuple[str, ...] = option(
        "flashsystem.snapshot-name-prefixes", (DEFAULT_PREFIX,), "the driver's snapshot_name_prefix values of this "
        "cluster's VolumeSnapshotClasses (default: CSI): a vdisk named <prefix>_snapshot-<uuid> is a CSI snapshot")


def arrays_from(o: FlashSystemOptions) -> tuple[ArrayAccess, ...]:
    """The configured arrays, each read from its Secret directory (ConfigError naming the key)."""
    return load_named("flashsystem.arrays", o.arrays, "array",
                      lambda name, directory: load_array(name, directory, o.insecure_skip_verify))


def _build(o: FlashSystemOptions, core: Core) -> FlashSystemBackend | None:
    if not o.arrays:
        return None
    return FlashSystemBackend(FlashSystemSettings(
        arrays=arrays_from(o), timeout_seconds=o.timeout,
        refresh_interval_seconds=o.refresh_interval, concurrency=o.concurrency,
        naming=CsiNaming(o.volume_name_prefixes, o.snapshot_name_prefixes)))


SPEC = BackendSpec(NAME, 40, FlashSystemOptions, _build, arrays_from)
