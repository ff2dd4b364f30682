"""Per backend volume, the backend's own truth (also without Kubernetes)."""

from ..exposition.metric import GAUGE, RowMetrics, Value
from ..model.rows import VolumeRow
from .base import rows

VOLUME: RowMetrics[VolumeRow] = RowMetrics(("backend", "target", "volume"),
                                           lambda row: (row.backend, row.volume.target, row.volume.volume))


@VOLUME.metric("clonewatch_volume_info", GAUGE,
               "A backend volume, its parent volume (parent=\"\" for an independent volume) and its state (live, or "
               "trash: deleted but kept because clones still read from it). Always 1.", ("parent", "state"))
def _info(row: VolumeRow) -> Value:
    v = row.volume
    return (v.parent, "trash" if v.trashed else "live"), 1


@VOLUME.metric("clonewatch_volume_consumed_bytes", GAUGE,
               "Bytes this volume alone occupies in the backend (for RBD: the image head plus its "
               "snapshots, in whole RADOS objects).", volatile=True)
def _consumed(row: VolumeRow) -> Value:
    return (), row.volume.consumed_bytes


@VOLUME.metric("clonewatch_volume_provisioned_bytes", GAUGE, "Provisioned size of the volume.")
def _provisioned(row: VolumeRow) -> Value:
    return (), row.volume.provisioned_bytes


@VOLUME.metric("clonewatch_volume_clone_depth", GAUGE,
               "Parents above this volume in its clone chain (0 for an independent volume).")
def _depth(row: VolumeRow) -> Value:
    return (), row.depth


@VOLUME.metric("clonewatch_volume_origin_info", GAUGE,
               "What an independent volume was made from, as the backend says (IBM Cloud VPC: the snapshot "
               "it was restored from). Always 1; only for volumes whose backend names an origin.", ("origin",))
def _origin(row: VolumeRow) -> Value:
    return ((row.volume.origin,), 1) if row.volume.origin else None


@VOLUME.metric("clonewatch_volume_chain_broken_info", GAUGE,
               "A volume whose parent cannot be followed, and why (backing-file-missing, "
               "flashcopy-source-missing, parent-file-missing, parent-not-measured). Its family's bytes "
               "are absent meanwhile. Always 1; only for such volumes.", ("parent", "reason"))
def _broken(row: VolumeRow) -> Value:
    return ((row.volume.parent, row.broken), 1) if row.broken else None


@VOLUME.metric("clonewatch_volume_fast_diff", GAUGE,
               "RBD: 1 when the image has a valid object map with fast-diff, 0 when measuring it reads "
               "every object (slow on big images). Absent where the backend does not say.")
def _fast_diff(row: VolumeRow) -> Value:
    fast = row.volume.fast_diff
    return None if fast is None else ((), 1 if fast else 0)


SPEC = rows("volume", 40, VOLUME, lambda d: d.volumes, lambda inv, k: inv.volume_rows.get(k))
