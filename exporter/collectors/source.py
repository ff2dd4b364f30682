"""Per source (golden) family metrics: a source volume and every PVC cloned from it."""

from ..exposition.metric import GAUGE, RowMetrics, Value
from ..model.rows import FamilyRow
from .base import rows

FAMILY: RowMetrics[FamilyRow] = RowMetrics(("source_namespace", "source_name", "backend"),
                                           lambda row: (row.source_namespace, row.source_name, row.backend))


@FAMILY.metric("clonewatch_source_consumed_bytes", GAUGE,
               "Bytes the family really occupies: the source's own bytes plus each clone's own bytes.")
def _consumed(row: FamilyRow) -> Value:
    return None if row.numbers is None else ((), row.numbers.consumed_bytes)


@FAMILY.metric("clonewatch_source_full_copy_bytes", GAUGE,
               "Bytes the family would occupy if every clone were an independent full copy.")
def _full_copy(row: FamilyRow) -> Value:
    return None if row.numbers is None else ((), row.numbers.full_copy_bytes)


@FAMILY.metric("clonewatch_source_saved_bytes", GAUGE,
               "full_copy_bytes - consumed_bytes: what copy-on-write saves for this family.")
def _saved(row: FamilyRow) -> Value:
    return None if row.numbers is None else ((), row.numbers.saved_bytes)


@FAMILY.metric("clonewatch_source_efficiency_ratio", GAUGE,
               "saved_bytes / full_copy_bytes (0-1): near 1 for CoW clones, near 0 for full copies.")
def _ratio(row: FamilyRow) -> Value:
    return None if row.numbers is None else ((), row.numbers.efficiency_ratio)


@FAMILY.metric("clonewatch_source_clones", GAUGE,
               "Number of clones in the family (PVCs in Kubernetes mode, child volumes in native mode). "
               "The byte metrics are absent while any member cannot be measured.")
def _clones(row: FamilyRow) -> Value:
    return (), row.clones


SPEC = rows("source", 20, FAMILY, lambda d: d.families, lambda inv, k: inv.families.get(k))
