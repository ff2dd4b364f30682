"""Per StorageClass: which clone type CDI should deliver on it."""

from ..exposition import Lines, MetricDef, Part, Section, sample
from ..inventory import Dirty, Inventory
from ..view import StorageClassRow

STRATEGY = MetricDef("clonewatch_storageclass_clone_strategy_info", "gauge",
                     "The clone type CDI should deliver on a StorageClass (the CDI CR's cloneStrategyOverride, "
                     "else StorageProfile cloneStrategy, else the clone-strategy annotation, else CDI's default "
                     "for the provisioner). Always 1.")
DEFS = (STRATEGY,)


def render(row: StorageClassRow) -> Lines:
    return {STRATEGY.name: [sample(STRATEGY.name, (
        ("storageclass", row.storageclass), ("provisioner", row.provisioner),
        ("expected_clone_type", row.expected_clone_type)), 1)]}


class StorageClassCollector:
    def __init__(self) -> None:
        self.section: Section[StorageClassRow] = Section(DEFS, render)

    def update(self, inv: Inventory, dirty: Dirty) -> None:
        for key in dirty.storageclasses:
            self.section.put(key, inv.storageclasses.get(key))

    def parts(self) -> list[Part]:
        return self.section.parts()
