"""Per backend volume, the backend's own truth (also without Kubernetes)."""

from ..exposition.section import Lines, MetricDef, label_text, sample
from ..model.rows import VolumeRow
from . import RowCollector

INFO = MetricDef("clonewatch_volume_info", "gauge",
                 "A backend volume, its parent volume (parent=\"\" for an independent volume) and its state (live, or "
                 "trash: deleted but kept because clones still read from it). Always 1.")
FAST_DIFF = MetricDef("clonewatch_volume_fast_diff", "gauge",
                      "RBD: 1 when the image has a valid object map with fast-diff, 0 when measuring it reads "
                      "every object (slow on big images). Absent where the backend does not say.")
CONSUMED = MetricDef("clonewatch_volume_consumed_bytes", "gauge",
                     "Bytes this volume alone occupies in the backend (for RBD: the image head plus its "
                     "snapshots, in whole RADOS objects).", volatile=True)
PROVISIONED = MetricDef("clonewatch_volume_provisioned_bytes", "gauge", "Provisioned size of the volume.")
DEPTH = MetricDef("clonewatch_volume_clone_depth", "gauge",
                  "Parents above this volume in its clone chain (0 for an independent volume).")
ORIGIN = MetricDef("clonewatch_volume_origin_info", "gauge",
                   "What an independent volume was made from, as the backend says (IBM Cloud VPC: the snapshot "
                   "it was restored from). Always 1; only for volumes whose backend names an origin.")
BROKEN = MetricDef("clonewatch_volume_chain_broken_info", "gauge",
                   "A volume whose parent cannot be followed, and why (backing-file-missing, "
                   "flashcopy-source-missing, parent-file-missing, parent-not-measured). Its family's bytes "
                   "are absent meanwhile. Always 1; only for such volumes.")
DEFS = (INFO, CONSUMED, PROVISIONED, DEPTH, ORIGIN, BROKEN, FAST_DIFF)


def render(row: VolumeRow) -> Lines:
    v = row.volume
    who = label_text((("backend", row.backend), ("target", v.target), ("volume", v.volume)))
    return {
        INFO.name: [sample(INFO.name, label_text((("parent", v.parent), ("state", "trash" if v.trashed else "live")),
                                                 who), 1)],
        CONSUMED.name: [sample(CONSUMED.name, who, v.consumed_bytes)],
        PROVISIONED.name: [sample(PROVISIONED.name, who, v.provisioned_bytes)],
        DEPTH.name: [sample(DEPTH.name, who, row.depth)],
        ORIGIN.name: [sample(ORIGIN.name, label_text((("origin", v.origin),), who), 1)] if v.origin else [],
        BROKEN.name: ([sample(BROKEN.name, label_text((("parent", v.parent), ("reason", row.broken)), who), 1)]
                      if row.broken else []),
        FAST_DIFF.name: [sample(FAST_DIFF.name, who, 1 if v.fast_diff else 0)] if v.fast_diff is not None else [],
    }


class VolumeCollector(RowCollector[VolumeRow]):
    def __init__(self) -> None:
        super().__init__(DEFS, render, lambda d: d.volumes, lambda inv, k: inv.volume_rows.get(k))
