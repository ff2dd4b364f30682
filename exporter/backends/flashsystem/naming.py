"""What the IBM block CSI driver's names say: which vdisks this cluster's driver made, and as what.

The driver names a vdisk `<prefix>_<request name>` (controllers/servers/utils.py
`get_object_final_name`): the prefix a StorageClass's `volume_name_prefix` or a
VolumeSnapshotClass's `snapshot_name_prefix`, `CSI` on Storage Virtualize when none is given; a
name too long for the array is `<prefix>_` + base58(sha256(request name)). Nothing else on the
array says who made a vdisk.
"""

import re
from dataclasses import dataclass

from .replies import FcMap, VDisk

DEFAULT_PREFIX = "CSI"  # the driver's name prefix on Storage Virtualize when a class gives none
# The names the external provisioner and snapshotter give a CSI request by default (pvc-<PVC uid>,
# snapshot-<VolumeSnapshot uid>), which the driver puts after its prefix and "_".
_REQUEST = re.compile(r"(pvc|snapshot)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A name too long for the array (63 characters) is `<prefix>_` + base58(sha256(request name)).
_HASHED = re.compile(r"[1-9A-HJ-NP-Za-km-z]{43,44}")


@dataclass(frozen=True)
class CsiNaming:
    """The name prefixes this cluster's IBM block CSI driver puts on what it makes."""
    volume_prefixes: tuple[str, ...] = (DEFAULT_PREFIX,)
    snapshot_prefixes: tuple[str, ...] = (DEFAULT_PREFIX,)

    def mark(self, name: str, copy_on_write_target: bool) -> tuple[str, str]:
        """(made_by, csi_kind) from a vdisk's name: ("csi", "volume"|"snapshot") when it is named as
        the driver names its objects with one of our prefixes, ("", "") when the name proves nothing.
        A hashed name says no kind: a target of a copy-rate-0 mapping is a snapshot (the driver's
        own test), anything else a volume, each only where that kind's prefixes allow it."""
        prefix, sep, rest = name.rpartition("_")
        if not sep or not prefix:
            return "", ""
        request = _REQUEST.fullmatch(rest)
        if request:
            kind = "volume" if request.group(1) == "pvc" else "snapshot"
        elif _HASHED.fullmatch(rest):
            kind = "snapshot" if copy_on_write_target else "volume"
        else:
            return "", ""
        prefixes = self.volume_prefixes if kind == "volume" else self.snapshot_prefixes
        return ("csi", kind) if prefix in prefixes else ("", "")


DEFAULT_NAMING = CsiNaming()


def request_name(name: str) -> str:
    """The CSI request a vdisk of ours is named after (`pvc-<PVC uid>`, the PV it is made for, or
    `snapshot-<VolumeSnapshot uid>`); "" for a hashed name, which no longer says."""
    rest = name.rpartition("_")[2]
    return rest if _REQUEST.fullmatch(rest) else ""


def csi_marks(vdisks: dict[str, VDisk], fcmaps: list[FcMap], naming: CsiNaming) -> dict[str, tuple[str, str]]:
    """vdisk id -> (made_by, csi_kind) for the vdisks our driver's naming proves it made."""
    cow_targets = {m.target for m in fcmaps if m.copy_rate == 0 and not m.restoring}
    marks = {vid: naming.mark(vd.name, vid in cow_targets) for vid, vd in vdisks.items()}
    return {vid: mark for vid, mark in marks.items() if mark[0]}
