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
`lsvdisk <id>`, only for the volumes Kubernetes uses.
"""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config.settings import option
from ...kube.objects import get, text
from ..base import BackendError, BackendSpec, BackgroundCopy, Core, TargetState, Volume, VolumeRef, load_named, record
from ..transport import host_port
from .rest import ArrayAccess, SvcClient

NAME = "flashsystem"
DRIVER = "block.csi.ibm.com"
_RESTORE = "yes"       # lsfcmap `restoring`: the mapping copies back onto its source, not a clone


@dataclass(frozen=True)
class FlashSystemSettings:
    arrays: tuple[ArrayAccess, ...] = ()
    timeout_seconds: float = 30.0
    refresh_interval_seconds: float = 60.0
    concurrency: int = 2            # requests in flight per array (the array runs one CLI command at a time)


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


def _rows(doc: Any, command: str) -> list[dict[str, Any]]:
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise BackendError(f"{command}: reply is not a list of objects")
    return doc


def _count_or_blank(row: dict[str, Any], key: str, command: str) -> int | None:
    """A count the array may leave blank (used capacity in data reduction pools)."""
    return None if row.get(key) in ("", None) else _count(row, key, command)


def _count(row: dict[str, Any], key: str, command: str) -> int:
    value = row.get(key)
    if not isinstance(value, str) or not _digits(value):
        raise BackendError(f"{command}: field {key}={value!r} is not a byte count / number "
                           f"(row id {str(row.get('id', row.get('vdisk_id')))[:40]!r})")
    return int(value)


def _field(row: dict[str, Any], key: str, command: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise BackendError(f"{command}: row without {key}: {str(row)[:200]}")
    return value


@dataclass(frozen=True)
class VDisk:
    id: str
    name: str
    uid: str
    capacity: int
    copies: int


@dataclass(frozen=True)
class FcMap:
    id: str
    name: str
    source: str        # vdisk id
    target: str
    status: str
    progress: int      # percent
    copy_rate: int
    restoring: bool


def parse_vdisks(doc: Any) -> dict[str, VDisk]:
    out = {}
    for row in _rows(doc, "lsvdisk"):
        vid = _field(row, "id", "lsvdisk")
        copies = row.get("copy_count", "1")
        out[vid] = VDisk(id=vid, name=text(row.get("name")), uid=_field(row, "vdisk_UID", "lsvdisk").upper(),
                         capacity=_count(row, "capacity", "lsvdisk"),
                         copies=int(copies) if isinstance(copies, str) and _digits(copies) else 1)
    return out


def parse_se_copies(doc: Any) -> dict[str, list[int | None]]:
    """vdisk id -> used capacity of each thin/compressed copy (None: blank, a data reduction pool)."""
    out: dict[str, list[int | None]] = {}
    for row in _rows(doc, "lssevdiskcopy"):
        out.setdefault(_field(row, "vdisk_id", "lssevdiskcopy"), []).append(
            _count_or_blank(row, "used_capacity", "lssevdiskcopy"))
    return out


def parse_fcmaps(doc: Any) -> list[FcMap]:
    out = []
    for row in _rows(doc, "lsfcmap"):
        progress = _count(row, "progress", "lsfcmap")
        if progress > 100:
            raise BackendError(f"lsfcmap: progress {progress} is above 100 (mapping {row.get('id')!r})")
        out.append(FcMap(id=_field(row, "id", "lsfcmap"), name=text(row.get("name")),
                         source=_field(row, "source_vdisk_id", "lsfcmap"),
                         target=_field(row, "target_vdisk_id", "lsfcmap"),
                         status=_field(row, "status", "lsfcmap"), progress=progress,
                         copy_rate=_count(row, "copy_rate", "lsfcmap"),
                         restoring=row.get("restoring") == _RESTORE))
    return out


def parse_detail_used(doc: Any) -> int | None:
    """Used bytes of all copies from a detailed `lsvdisk <id>` ([vdisk, copy, copy, ...]).
    In a data reduction pool the array leaves used_capacity blank and gives the data written
    before deduplication and compression: we take that, the volume's own share of the pool."""
    rows = _rows(doc, "lsvdisk <id>")
    copies = [r for r in rows if "copy_id" in r]
    if not copies:
        raise BackendError("lsvdisk <id>: detailed view without copies")
    total = 0
    for row in copies:
        used = _count_or_blank(row, "used_capacity", "lsvdisk <id>")
        if used is None:
            used = _count_or_blank(row, "used_capacity_before_reduction", "lsvdisk <id>")
        if used is None:
            return None
        total += used
    return total


def build_volumes(array: str, vdisks: dict[str, VDisk], se: dict[str, list[int | None]],
                  fcmaps: list[FcMap], detail: dict[str, int | None]) -> dict[str, Volume]:
    # The mapping each target hangs from: active ones before finished ones, then by id.
    feeding: dict[str, FcMap] = {}
    for m in sorted(fcmaps, key=lambda m: (m.status == "idle_or_copied", _num(m.id))):
        if not m.restoring and m.target in vdisks:
            feeding.setdefault(m.target, m)
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
        volumes[vol_id] = Volume(volume=vol_id, target=array, consumed_bytes=used,
                                 provisioned_bytes=vd.capacity, parent=parent, copy=copy, parent_problem=problem)
    return volumes


def _used(vd: VDisk, se_used: list[int | None], detail: int | None) -> int | None:
    if any(u is None for u in se_used):
        return detail
    fully_allocated = max(0, vd.copies - len(se_used))
    return sum(u for u in se_used if u is not None) + fully_allocated * vd.capacity


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()      # "²".isdigit() is True, int("²") is not


def _num(value: str) -> int:
    return int(value) if _digits(value) else 1 << 62


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

    def _ref(self, driver: Any, handle: Any, addresses: Any) -> VolumeRef | None:
        if driver != DRIVER:
            return None
        uid = parse_volume_handle(text(handle))
        array = self._array_for(text(addresses))
        if not uid or not array:
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
        return build_volumes(array, vdisks, se, fcmaps, detail)

    def _wanted_ids(self, array: str, vdisks: dict[str, VDisk], fcmaps: list[FcMap]) -> set[str] | None:
        """vdisk ids worth a detailed call: those Kubernetes uses and every source they hang from
        (a clone's logical size needs its whole chain). None: all (native mode)."""
        if self._wanted is None:
            return None
        sources: dict[str, list[str]] = {}
        for m in fcmaps:
            if not m.restoring:
                sources.setdefault(m.target, []).append(m.source)
        todo = [vid for vid, vd in vdisks.items() if volume_id(array, vd.uid) in self._wanted]
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


def arrays_from(o: FlashSystemOptions) -> tuple[ArrayAccess, ...]:
    """The configured arrays, each read from its Secret directory (ConfigError naming the key)."""
    return load_named("flashsystem.arrays", o.arrays, "array",
                      lambda name, directory: load_array(name, directory, o.insecure_skip_verify))


def _build(o: FlashSystemOptions, core: Core) -> FlashSystemBackend | None:
    if not o.arrays:
        return None
    return FlashSystemBackend(FlashSystemSettings(
        arrays=arrays_from(o), timeout_seconds=o.timeout,
        refresh_interval_seconds=o.refresh_interval, concurrency=o.concurrency))


SPEC = BackendSpec(NAME, 40, FlashSystemOptions, _build, arrays_from)
