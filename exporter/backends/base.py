"""What every backend hands to the rest of the exporter.

A backend keeps, per target (a Ceph pool, an array, a directory), the result of its last
refresh. The scrape only ever reads these results; refreshing happens in the background.
"""

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import structlog

from ..config.settings import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
OptionsT = TypeVar("OptionsT", bound="DataclassInstance")


@dataclass(frozen=True)
class VolumeRef:
    """Where a backend knows a Kubernetes volume: which backend, which target, which volume."""
    backend: str
    target: str
    volume: str


@dataclass(frozen=True)
class BackgroundCopy:
    """A copy of the parent's data into this volume that the array runs on its own (FlashCopy).

    While it runs, the volume still reads uncopied data from its parent; as `progress_ratio`
    reaches 1 the volume holds a full copy and shares nothing any more.
    """
    mapping: str                # the array's name for it, e.g. the fcmap name
    status: str                 # as the array says, e.g. copying, idle_or_copied, stopped
    progress_ratio: float       # 0..1 of the parent's data copied so far
    copy_rate: int              # the array's background copy rate setting (0 = never copies)


@dataclass(frozen=True)
class Volume:
    volume: str                 # unique within the backend, e.g. "rbd/golden" or "pool/ns/image"
    target: str                 # e.g. the Ceph pool ("pool" or "pool/namespace")
    consumed_bytes: int         # what this volume alone occupies (head + its snapshots for RBD)
    provisioned_bytes: int
    parent: str = ""            # parent volume id, "" for an independent volume
    parent_snapshot: str = ""   # e.g. "base": the parent snapshot a clone hangs from
    copy: BackgroundCopy | None = None
    origin: str = ""            # what an independent volume was made from (a snapshot it was restored from)
    parent_problem: str = ""    # why the backend knows `parent` cannot be found, e.g. backing-file-missing
    link: bool = False          # an intermediate the driver made (a ceph-csi temp clone or snapshot image):
                                # its bytes count in its family, it is no member and no would-be copy
    trashed: bool = False       # deleted but kept by the storage because clones still read from it
    fast_diff: bool | None = None   # RBD: whether measuring it is cheap (object map + fast-diff)
    # What the storage itself says of who made it, so space that no PV owns can be given a reason
    made_by: str = ""           # "csi": this cluster's CSI driver made it (ceph-csi's journal of our instance,
                                # the IBM driver's name prefix, the VPC driver's tags); "foreign": another
                                # cluster's driver instance did; "": nothing on the storage says
    csi_kind: str = ""          # what the driver made it as: "volume", "snapshot" or "temp" (an intermediate)
    created: float = 0.0        # when the storage says it was made (Unix seconds), 0 when it does not say
    request: str = ""           # the CSI request it was made for, as the driver's own records name it (ceph-csi's
                                # journal: the PV name, pvc-<PVC uid>); "" when they do not say
    trash_expiry: float = 0.0   # trashed: when the storage removes it by itself (RBD's deferment), 0 if not
    unreferenced: str = ""      # a reason the storage alone can tell that nothing uses it (e.g. a disk file
                                # no VM or template names), "" when it cannot tell

    @property
    def parent_share(self) -> float:
        """Fraction of the parent's data this volume still reads through the parent."""
        return 1.0 - self.copy.progress_ratio if self.copy else 1.0


@dataclass
class TargetState:
    target: str
    up: bool = False
    attempts: int = 0
    failures: int = 0
    last_attempt: float = 0.0
    last_success: float = 0.0       # wall clock of the last good refresh, 0 if never
    duration_seconds: float = 0.0
    error: str = ""
    volumes: dict[str, Volume] = field(default_factory=dict)   # empty while down: absent, not stale

    def succeeded(self, volumes: dict[str, Volume], duration: float) -> bool:
        """Record a good refresh; True when it ends a run of failures (worth a log line)."""
        recovered = not self.up and self.attempts > 0
        self.attempts += 1
        self.up, self.error, self.volumes = True, "", volumes
        self.last_attempt = self.last_success = time.time()
        self.duration_seconds = duration
        return recovered

    def failed(self, error: str, duration: float) -> bool:
        """Record a failed refresh; True when it is news (first attempt, it was up, or the reason
        changed, e.g. from a timeout to a refused key): log it loudly then, not on every retry."""
        news = self.up or self.attempts == 0 or error != self.error
        self.attempts += 1
        self.failures += 1
        self.up, self.error, self.volumes = False, error, {}
        self.last_attempt = time.time()
        self.duration_seconds = duration
        return news


class BackendError(Exception):
    """A refresh of one target failed; the message is safe to log (no credentials)."""


async def record(backend: str, state: TargetState, work: Awaitable[dict[str, Volume]]) -> None:
    """Run one target's measurement and keep its result in `state`; a failure is logged loudly
    when it is news and quietly on every retry, a recovery once."""
    log = structlog.get_logger(f"clonewatch.{backend}")
    start = time.monotonic()
    try:
        volumes = await work
    except BackendError as exc:
        news = state.failed(str(exc), time.monotonic() - start)
        (log.error if news else log.debug)("backend_refresh_failed", backend=backend, target=state.target,
                                           error=str(exc))
        return
    if state.succeeded(volumes, time.monotonic() - start):
        log.info("backend_recovered", backend=backend, target=state.target)


def read_secret(path: Path, what: str) -> str:
    """One credential from a mounted Secret's file, read at each use so a rotation is picked up;
    errors name the file, never its content."""
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise BackendError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None
    if not value:
        raise BackendError(f"the {what} file {path} is empty")
    return value


class Backend(Protocol):
    name: str
    refresh_interval: float
    unshared_reason: str    # why a volume of this backend with no parent shares nothing, e.g. flattened

    def map_pv(self, pv: dict[str, Any]) -> VolumeRef | None:
        """The backend volume behind a PV, or None when this backend does not serve it."""

    def serves_provisioner(self, provisioner: str) -> bool:
        """Whether PVs of this CSI provisioner are this backend's volumes."""

    def map_snapshot_content(self, content: dict[str, Any]) -> VolumeRef | None:
        """The backend volume behind a VolumeSnapshotContent, if it can tell (no I/O)."""

    def want(self, pvs: Iterable[dict[str, Any]]) -> None:
        """The PVs Kubernetes knows of: refresh what holds the ones this backend serves. Runs in a
        worker thread between refreshes: build new containers and assign them, never edit in place
        what states() or a scrape may be reading."""

    async def refresh(self) -> None:
        """Refresh every target once; never raises (failures land in the target states)."""

    def states(self) -> dict[str, TargetState]:
        """Target -> state of the last refresh."""


@dataclass(frozen=True)
class Core:
    """What a backend may know of the exporter's own options."""
    kubernetes: bool = True     # PVs are watched: a backend that knows its volumes only from PVs needs it


@dataclass(frozen=True)
class BackendSpec(Generic[OptionsT]):
    """What a backend module declares so the exporter can offer and build it without naming it.

    Each backend module holds one `SPEC`; `registry.specs()` finds them. `options` is the backend's
    options group (a dataclass of config.settings.option() fields). `check` validates them (raises
    ConfigError naming the key, so the CLI exits 2 before anything starts); `build` returns the
    backend, or None when the options leave it off.
    """
    name: str
    order: int                                          # where its options appear in --help
    options: type[OptionsT]
    build: Callable[[OptionsT, Core], Backend | None]
    check: Callable[[OptionsT], object] = lambda options: None
    prepare: Callable[[OptionsT], None] = lambda options: None     # once, in the exporter process, before logging


def load_named(key: str, entries: Sequence[str], what: str, load: Callable[[str, Path], T]) -> tuple[T, ...]:
    """Each NAME=DIR entry loaded by `load(name, dir)`; a ValueError becomes a ConfigError naming the key."""
    out = []
    for name, directory in named_dirs(key, entries):
        try:
            out.append(load(name, Path(directory)))
        except ValueError as exc:
            raise ConfigError(key, f"{what} {name!r}: {exc}") from None
    return tuple(out)


def named_dirs(key: str, entries: Sequence[str]) -> list[tuple[str, str]]:
    """NAME=DIR entries of a list option, e.g. arrays or vCenters each in a mounted Secret."""
    out, names = [], set()
    for entry in entries:
        name, sep, directory = entry.partition("=")
        if not sep or not name or not directory:
            raise ConfigError(key, f"expected NAME=DIR, got {entry!r}")
        if name in names:
            raise ConfigError(key, f"{name!r} is configured twice")
        names.add(name)
        out.append((name, directory))
    return out
