"""Stage 5, StorageClasses: the clone type CDI should deliver on each, redone whole when any
StorageClass, StorageProfile or the CDI CR changed (few objects)."""

from collections.abc import Mapping

from ..kube.objects import annotations, get, text
from ..kube.packed import PackedBucket
from ..kube.resources import CDI, STORAGECLASS, STORAGEPROFILE
from ..model.rows import StorageClassRow
from ..model.strategies import cdi_override, expected_clone_type
from . import tokens
from .dirty import Dirty

INPUTS = (tokens.resource(STORAGECLASS.name), tokens.resource(STORAGEPROFILE.name), tokens.resource(CDI.name))


def storageclass_rows(objs: Mapping[str, PackedBucket], before: Mapping[str, StorageClassRow],
                      dirty: Dirty) -> dict[str, StorageClassRow]:
    profiles = objs.get(STORAGEPROFILE.name) or PackedBucket()
    override = cdi_override((objs.get(CDI.name) or PackedBucket()).values())
    fresh = {}
    for (_, sc_name), sc in objs.get(STORAGECLASS.name, {}).items():
        provisioner = text(get(sc, "provisioner"))
        expected, _ = expected_clone_type(provisioner, annotations(sc),
                                          get(profiles.get(("", sc_name)), "status", "cloneStrategy"), override)
        fresh[sc_name] = StorageClassRow(sc_name, provisioner, expected)
    for name in before.keys() | fresh.keys():
        if before.get(name) != fresh.get(name):
            dirty.storageclasses.add(name)
    return fresh
