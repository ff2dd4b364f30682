"""Which clone type CDI should deliver for a StorageClass, as data.

Order of precedence follows CDI: StorageProfile ``status.cloneStrategy`` (it already folds in the
profile's spec and the StorageClass annotation), else the StorageClass annotation
``cdi.kubevirt.io/clone-strategy``, else CDI's per-provisioner capabilities table
(pkg/storagecapabilities), else CDI's default ``snapshot``.
"""

from collections.abc import Mapping

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


def normalise(value: object) -> str | None:
    """A known clone type, or None."""
    return value if isinstance(value, str) and value in CLONE_TYPES else None


def expected_clone_type(provisioner: str | None, sc_annotations: Mapping[str, str] | None,
                        profile_strategy: object) -> tuple[str, str]:
    """(expected clone type, where the answer came from)."""
    from_profile = normalise(profile_strategy)
    if from_profile:
        return from_profile, "storageprofile"
    from_annotation = normalise((sc_annotations or {}).get(SC_STRATEGY_ANNOTATION))
    if from_annotation:
        return from_annotation, "storageclass"
    if provisioner and provisioner in PROVISIONER_DEFAULTS:
        return PROVISIONER_DEFAULTS[provisioner], "provisioner"
    return CDI_DEFAULT, "cdi-default"
