"""qcow2 image files in a directory: volumes are files, parents come from the backing file.

No process per image and no qemu at all: the qcow2 header (big-endian, documented in QEMU's
docs/interop/qcow2.txt) gives the virtual size and the backing file name, and the file's
allocated blocks (st_blocks * 512, what `qemu-img info` calls actual-size) are what the image
alone occupies on disk. A linked clone (`qemu-img create -b golden.qcow2 -F qcow2`) holds only
the clusters written into it; a full copy (`qemu-img convert`) holds everything.
"""

import asyncio
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from ..config.settings import option
from .base import BackendError, BackendSpec, Core, TargetState, Volume, VolumeRef, record

log = structlog.get_logger("clonewatch.qcow2")

NAME = "qcow2"
MAGIC = b"QFI\xfb"
_HEADER = struct.Struct(">4sIQIIQ")     # magic, version, backing_file_offset, backing_file_size, cluster_bits, size
MAX_BACKING_NAME = 4096


@dataclass(frozen=True)
class Qcow2Settings:
    dirs: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = (".qcow2", ".qcow", ".img")
    refresh_interval_seconds: float = 30.0


def read_header(path: str) -> tuple[int, str]:
    """(virtual size, backing file name or "") of a qcow2 file; BackendError if it is not one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER.size)
            if len(head) < _HEADER.size:
                raise BackendError(f"{path}: too short for a qcow2 header")
            magic, version, b_off, b_size, _cluster_bits, size = _HEADER.unpack(head)
            if magic != MAGIC or version not in (2, 3):
                raise BackendError(f"{path}: not a qcow2 image")
            backing = ""
            if b_off and b_size:
                if b_size > MAX_BACKING_NAME:
                    raise BackendError(f"{path}: backing file name of {b_size} bytes")
                fh.seek(b_off)
                raw = fh.read(b_size)
                if len(raw) != b_size:
                    raise BackendError(f"{path}: backing file name cut short")
                backing = raw.decode("utf-8", "replace")
            return size, backing
    except OSError as exc:
        raise BackendError(f"{path}: {exc.strerror or exc}") from None


def scan_dir(directory: str, suffixes: Iterable[str]) -> dict[str, Volume]:
    """Every qcow2 file in the directory (not below it). Files that vanish mid-scan are skipped;
    a file with the right suffix that is not qcow2 is skipped with a log line."""
    directory = os.path.abspath(directory)
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise BackendError(f"{directory}: {exc.strerror or exc}") from None
    suffixes = tuple(suffixes)
    volumes: dict[str, Volume] = {}
    for name in names:
        path = os.path.join(directory, name)
        if not name.endswith(suffixes) or name.startswith("."):
            continue
        try:
            st = os.stat(path)
            if not os.path.isfile(path):
                continue
            size, backing = read_header(path)
        except FileNotFoundError:
            continue
        except BackendError as exc:
            log.debug("qcow2_skipped", path=path, reason=str(exc))
            continue
        parent, problem = "", ""
        if backing:
            parent = backing if os.path.isabs(backing) else os.path.normpath(os.path.join(directory, backing))
            # qemu resolves a relative backing name against the overlay's directory, as we do.
            problem = "" if os.path.exists(parent) else "backing-file-missing"
        volumes[path] = Volume(volume=path, target=directory, consumed_bytes=st.st_blocks * 512,
                               provisioned_bytes=size, parent=parent, parent_problem=problem)
    return volumes


class Qcow2Backend:
    name = NAME
    unshared_reason = "no-backing-file"     # an overlay rebased away from its backing file (or a full copy)
    owns_volumes = False    # no PV or driver owns an image file: none is ever "unclaimed" (inventory.unclaimed)

    def __init__(self, settings: Qcow2Settings) -> None:
        self.settings = settings
        self.refresh_interval = settings.refresh_interval_seconds
        self._states: dict[str, TargetState] = {}
        self._targets = [os.path.abspath(d) for d in settings.dirs]

    def map_pv(self, pv: dict[str, Any]) -> VolumeRef | None:
        return None          # qcow2 directories are measured natively, not through PVs

    def serves_provisioner(self, provisioner: str) -> bool:
        return False

    def map_snapshot_content(self, content: dict[str, Any]) -> VolumeRef | None:
        return None

    def want(self, pvs: Iterable[dict[str, Any]]) -> None:
        """Targets are the configured directories only: nothing to learn from Kubernetes."""

    def states(self) -> dict[str, TargetState]:
        return self._states

    async def refresh(self) -> None:
        for target in self._targets:
            state = self._states.setdefault(target, TargetState(target))
            await record(NAME, state, asyncio.to_thread(scan_dir, target, self.settings.suffixes))


# -- registration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Qcow2Options:
    dirs: tuple[str, ...] = option("qcow2.dirs", (), "directories of qcow2 images to measure (linked clones via "
                                   "backing files)")
    refresh_interval: float = option("qcow2.refresh-interval", 30.0, "seconds between scans of those directories",
                                     positive=True, unit="seconds")


def _build(o: Qcow2Options, core: Core) -> Qcow2Backend | None:
    if not o.dirs:
        return None
    return Qcow2Backend(Qcow2Settings(dirs=o.dirs, refresh_interval_seconds=o.refresh_interval))


SPEC = BackendSpec(NAME, 20, Qcow2Options, _build)
