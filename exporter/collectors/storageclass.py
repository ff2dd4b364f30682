"""Per StorageClass: which clone type CDI should deliver on it."""

from ..exposition.metric import GAUGE, RowMetrics, Value
from ..model.rows import StorageClassRow
from .base import rows

STORAGECLASS: RowMetrics[StorageClassRow] = RowMetrics(("storageclass",), lambda row: (row.storageclass,))


@STORAGECLASS.metric("clonewatch_storageclass_clone_strategy_info", GAUGE,
                     "The clone type CDI should deliver on a StorageClass (the CDI CR's cloneStrategyOverride, "
                     "else StorageProfile cloneStrategy, else the clone-strategy annotation, else CDI's default "
                     "for the provisioner). Always 1.", ("provisioner", "expected_clone_type"))
def _strategy(row: StorageClassRow) -> Value:
    return (row.provisioner, row.expected_clone_type), 1


SPEC = rows("storageclass", 30, STORAGECLASS, lambda d: d.storageclasses, lambda inv, k: inv.storageclasses.get(k))
