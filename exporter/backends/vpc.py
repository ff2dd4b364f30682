"""IBM Cloud VPC block and file storage (`vpc.block.csi.ibm.io`, `vpc.file.csi.ibm.io`).

The VPC CSI drivers cannot clone: a "clone" is a restore from a VolumeSnapshot, a new volume
that holds a full, independent copy and is billed for its whole provisioned capacity. So each
volume consumes its provisioned capacity and has no parent; families of such clones come out
at efficiency 0, which is the point. (Confirming the restore relationship through the VPC API
— `source_snapshot` of each volume — is a later step; the numbers do not depend on it.)
"""

import time
from typing import Iterable

from ..classify import VolumeRef, get, text
from ..quantity import parse_bytes
from .base import TargetState, Volume

NAME = "vpc"
DRIVERS = {"vpc.block.csi.ibm.io": "vpc-block", "vpc.file.csi.ibm.io": "vpc-file"}


class VpcBackend:
    name = NAME
    refresh_interval = 10.0      # no I/O: it only reads what the PVs say

    def __init__(self) -> None:
        self._states: dict[str, TargetState] = {}
        self._capacity: dict[tuple[str, str], int] = {}

    def map_pv(self, pv: dict) -> VolumeRef | None:
        target = DRIVERS.get(text(get(pv, "spec", "csi", "driver")))
        handle = text(get(pv, "spec", "csi", "volumeHandle"))
        if not target or not handle:
            return None
        return VolumeRef(NAME, target, handle)

    def serves_provisioner(self, provisioner: str) -> bool:
        return provisioner in DRIVERS

    def map_snapshot_content(self, content: dict) -> VolumeRef | None:
        return None

    def want(self, pvs: Iterable[dict]) -> None:
        capacity = {}
        for pv in pvs:
            ref = self.map_pv(pv)
            size = parse_bytes(get(pv, "spec", "capacity", "storage"))
            if ref is not None and size is not None:
                capacity[(ref.target, ref.volume)] = size
        self._capacity = capacity

    def states(self) -> dict[str, TargetState]:
        return self._states

    async def refresh(self) -> None:
        start = time.monotonic()
        by_target: dict[str, dict[str, Volume]] = {t: {} for t in DRIVERS.values()}
        for (target, volume), size in self._capacity.items():
            by_target[target][volume] = Volume(volume=volume, target=target, consumed_bytes=size,
                                               provisioned_bytes=size)
        for target, volumes in by_target.items():
            if volumes or target in self._states:
                self._states.setdefault(target, TargetState(target)).succeeded(volumes, time.monotonic() - start)
