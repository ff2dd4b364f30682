"""Space no PV owns (inventory.unclaimed): per volume its reason and, in the trash, when the storage may
remove it; per target and reason, the volumes' own bytes."""

from ..exposition.metric import GAUGE, RowMetrics, Value
from ..model.unclaimed import UnclaimedRow, UnclaimedSum
from .base import CollectorSpec, RowCollector

VOLUME: RowMetrics[UnclaimedRow] = RowMetrics(("backend", "target", "volume"),
                                              lambda row: (row.backend, row.volume.target, row.volume.volume))
BYTES: RowMetrics[UnclaimedSum] = RowMetrics(("backend", "target", "reason"),
                                             lambda row: (row.backend, row.target, row.reason))


@BYTES.metric("clonewatch_unclaimed_bytes", GAUGE,
              "Bytes that volumes no PV or VolumeSnapshotContent of this cluster maps to occupy on their own, by "
              "reason (leaked, stale-temp, orphan-snapshot and trash are reclaimable; clone-in-progress, provisioning, "
              "held-by-clones, foreign and unknown are not, or not yet: docs/metrics.md). Absent for a reason no "
              "volume has, and for every reason that needs the PV list while it is incomplete.", volatile=True)
def _bytes(row: UnclaimedSum) -> Value:
    return (), row.bytes


@VOLUME.metric("clonewatch_volume_unclaimed_info", GAUGE,
               "A volume no PV or VolumeSnapshotContent of this cluster maps to, and why (the reasons of "
               "clonewatch_unclaimed_bytes). Always 1.", ("reason",))
def _info(row: UnclaimedRow) -> Value:
    return (row.reason,), 1


@VOLUME.metric("clonewatch_volume_trash_expiry_timestamp_seconds", GAUGE,
               "An unclaimed volume in the storage's trash: Unix time its deferment ends (RBD: from then on "
               "`rbd trash purge` and a trash purge schedule may remove it; before, only `rbd trash rm --force`). "
               "Absent where the storage keeps no such time.")
def _expiry(row: UnclaimedRow) -> Value:
    expiry = row.volume.trash_expiry
    return ((), expiry) if row.volume.trashed and expiry else None


SPEC = CollectorSpec("unclaimed", 75, "rebuild", BYTES.metrics + VOLUME.metrics,
                     lambda ctx: [RowCollector(BYTES, lambda d: d.unclaimed_sums, lambda inv, k: inv.unclaimed_sums.get(k)),
                                  RowCollector(VOLUME, lambda d: d.unclaimed, lambda inv, k: inv.unclaimed_rows.get(k))])
