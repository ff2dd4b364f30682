"""Per source (golden) family metrics: a source volume and every PVC cloned from it."""

from ..exposition.section import Lines, MetricDef, sample
from ..model.rows import FamilyRow
from . import RowCollector

_LABELS = "{source_namespace,source_name,backend}"
CONSUMED = MetricDef("clonewatch_source_consumed_bytes", "gauge",
                     "Bytes the family really occupies: the source's own bytes plus each clone's own bytes.")
FULL_COPY = MetricDef("clonewatch_source_full_copy_bytes", "gauge",
                      "Bytes the family would occupy if every clone were an independent full copy.")
SAVED = MetricDef("clonewatch_source_saved_bytes", "gauge",
                  "full_copy_bytes - consumed_bytes: what copy-on-write saves for this family.")
RATIO = MetricDef("clonewatch_source_efficiency_ratio", "gauge",
                  "saved_bytes / full_copy_bytes (0-1): near 1 for CoW clones, near 0 for full copies.")
CLONES = MetricDef("clonewatch_source_clones", "gauge",
                   "Number of clones in the family (PVCs in Kubernetes mode, child volumes in native mode). "
                   "The byte metrics are absent while any member cannot be measured.")

DEFS = (CONSUMED, FULL_COPY, SAVED, RATIO, CLONES)


def render(row: FamilyRow) -> Lines:
    who = (("source_namespace", row.source_namespace), ("source_name", row.source_name),
           ("backend", row.backend))
    out: Lines = {CLONES.name: [sample(CLONES.name, who, row.clones)]}
    n = row.numbers
    if n is not None:
        out[CONSUMED.name] = [sample(CONSUMED.name, who, n.consumed_bytes)]
        out[FULL_COPY.name] = [sample(FULL_COPY.name, who, n.full_copy_bytes)]
        out[SAVED.name] = [sample(SAVED.name, who, n.saved_bytes)]
        out[RATIO.name] = [sample(RATIO.name, who, n.efficiency_ratio)]
    return out


class SourceCollector(RowCollector[FamilyRow]):
    def __init__(self) -> None:
        super().__init__(DEFS, render, lambda d: d.families, lambda inv, k: inv.families.get(k))
