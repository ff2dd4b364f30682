"""Per StorageClass: which clone type CDI should deliver on it."""

from ..exposition.section import Lines, MetricDef, sample
from ..model.rows import StorageClassRow
from . import RowCollector

STRATEGY = MetricDef("clonewatch_storageclass_clone_strategy_info", "gauge",
                     "The clone type CDI should deliver on a StorageClass (the CDI CR's cloneStrategyOverride, "
                     "else StorageProfile cloneStrategy, else the clone-strategy annotation, else CDI's default "
                     "for the provisioner). Always 1.")
DEFS = (STRATEGY,)


def render(row: StorageClassRow) -> Lines:
    return {STRATEGY.name: [sample(STRATEGY.name, (
        ("storageclass", row.storageclass), ("provisioner", row.provisioner),
        ("expected_clone_type", row.expected_clone_type)), 1)]}


class StorageClassCollector(RowCollector[StorageClassRow]):
    def __init__(self) -> None:
        super().__init__(DEFS, render, lambda d: d.storageclasses, lambda inv, k: inv.storageclasses.get(k))
