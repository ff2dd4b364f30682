"""Which clone type CDI should deliver for a StorageClass, as data.

Order of precedence follows CDI's clone planner (pkg/controller/clone/planner.go,
computeStrategyForSourcePVC): the CDI CR's ``spec.cloneStrategyOverride``, else the target's
StorageProfile ``status.cloneStrategy`` (it already folds in the profile's spec, the StorageClass
annotation ``cdi.kubevirt.io/clone-strategy`` and CDI's per-provisioner capabilities table), else
``snapshot``. Where no StorageProfile was seen we fall back to the annotation and the table
ourselves. A snapshot source is always restored from the snapshot, whatever the override says.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from ..kube.objects import get

CLONE_TYPES = ("csi-clone", "snapshot", "copy")
SC_STRATEGY_ANNOTATION = "cdi.kubevirt.io/clone-strategy"

# CDI's CloneStrategyByProvisionerKey; "copy" is CDI's CloneStrategyHostAssisted.
PROVISIONER_DEFAULTS: Mapping[str, str] = {
    "rbd.csi.ceph.com": "csi-clone",
    "rook-ceph.rbd.csi.ceph.com": "csi-clone",
    "openshift-storage.rbd.csi.ceph.com": "csi-clone",
    "cephfs.csi.ceph.com": "csi-clone",
    "rook-ceph.cephfs.csi.ceph.com": "csi-clone",
    "openshift-storage.cephfs.csi.ceph.com": "csi-clone",
    "block.csi.ibm.com": "csi-clone",
    "vpc.block.csi.ibm.io": "copy",
    "csi.trident.netapp.io": "snapshot",
    "pd.csi.storage.gke.io": "snapshot",
    "topolvm.cybozu.com": "copy",
    "topolvm.io": "copy",
}

# Where no table entry, no profile and no annotation speak, CDI tries a snapshot clone.
CDI_DEFAULT = "snapshot"


def cdi_override(cdis: Iterable[Any]) -> str | None:
    """CDI CR `spec.cloneStrategyOverride`, read from the active CDI CR as CDI does
    (pkg/controller/common/util.go GetActiveCDI): the only one, else the only one whose
    status.phase is not Error; with none or several active, CDI plans no clone and neither do we."""
    crs = list(cdis)
    if len(crs) > 1:
        crs = [cr for cr in crs if get(cr, "status", "phase") != "Error"]
    if len(crs) != 1:
        return None
    # get(): a CR whose spec or status is not an object (the API's schema forbids it, a lying one
    # does not) has no override, rather than stopping classification.
    return normalise(get(crs[0], "spec", "cloneStrategyOverride"))


def normalise(value: object) -> str | None:
    """A known clone type, or None."""
    return value if isinstance(value, str) and value in CLONE_TYPES else None


def expected_clone_type(provisioner: str | None, sc_annotations: Mapping[str, str] | None,
                        profile_strategy: object, override: str | None = None) -> tuple[str, str]:
    """(expected clone type, where the answer came from)."""
    if override:
        return override, "cdi-override"
    from_profile = normalise(profile_strategy)
    if from_profile:
        return from_profile, "storageprofile"
    from_annotation = normalise((sc_annotations or {}).get(SC_STRATEGY_ANNOTATION))
    if from_annotation:
        return from_annotation, "storageclass"
    if provisioner and provisioner in PROVISIONER_DEFAULTS:
        return PROVISIONER_DEFAULTS[provisioner], "provisioner"
    return CDI_DEFAULT, "cdi-default"
