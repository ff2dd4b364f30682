"""How RBD volumes and targets are named, and which images ceph-csi made as intermediates.

A target is a pool, optionally a RADOS namespace (`pool` or `pool/namespace`); a volume is
`pool[/namespace]/image`. A named cluster's targets and volumes carry its ID in front
(`ID:pool[/namespace]`, `ID:pool/image`); the default cluster's do not, so one cluster reads as before.
"""

import re
from typing import Any

# ceph-csi's intermediates (docs/design/proposals/rbd-snap-clone.md): the temporary clone a PVC-PVC
# clone goes through, and the image that holds a VolumeSnapshot.
_UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_LINK = re.compile(rf"csi-vol-{_UUID_TEXT}-temp|csi-snap-{_UUID_TEXT}")
_UUID = re.compile(rf"({_UUID_TEXT})$")
_TEMP = re.compile(rf"csi-vol-{_UUID_TEXT}-temp")
# A volume handle as ceph-csi composes it (internal/util/volid.go): encoding version 0001, the
# clusterID's length (4 hex) and the clusterID, the pool id (16 hex), then the image's uuid.
_HANDLE = re.compile(rf"0001-([0-9a-f]{{4}})-(.+)-[0-9a-f]{{16}}-({_UUID_TEXT})")


def volume_id(pool: str, namespace: str, image: str, cluster: str = "") -> str:
    vid = f"{pool}/{namespace}/{image}" if namespace else f"{pool}/{image}"
    return f"{cluster}:{vid}" if cluster else vid


def make_target(cluster: str, pool: str, namespace: str) -> str:
    target = f"{pool}/{namespace}" if namespace else pool
    return f"{cluster}:{target}" if cluster else target


def split_target(target: str) -> tuple[str, str]:
    """(pool, namespace) of a target, whatever its cluster."""
    pool, _, namespace = split_cluster(target)[1].partition("/")
    return pool, namespace


def split_cluster(target: str) -> tuple[str, str]:
    """(cluster, the rest) of a target or volume id; cluster "" is the default one."""
    cluster, sep, rest = target.partition(":")
    # A trashed image's id holds a ':' too (pool/name@trash:ID); cluster IDs never hold a '/'.
    return (cluster, rest) if sep and "/" not in cluster else ("", target)


def is_rbd_driver(driver: Any) -> bool:
    return isinstance(driver, str) and driver.endswith("rbd.csi.ceph.com")


def is_link(image: str) -> bool:
    """Whether ceph-csi made this image on the way (a temporary clone, a snapshot's image)."""
    return bool(_LINK.fullmatch(image))


def is_temp(image: str) -> bool:
    """Whether the name is ceph-csi's temporary clone of a PVC-PVC clone (clone.go generateTempClone)."""
    return bool(_TEMP.fullmatch(image))


def handle_image(handle: str) -> str | None:
    """The image a dynamically provisioned volume's handle names: `csi-vol-<its uuid>`, the name
    ceph-csi gives an image unless a StorageClass sets volumeNamePrefix. For PVs that do not carry
    `imageName` in their volumeAttributes (ceph-csi before v3 did not); None for a handle not composed
    so (a static PV's is the image name itself)."""
    match = _HANDLE.fullmatch(handle)
    if match is None or len(match.group(2)) != int(match.group(1), 16):
        return None
    return f"csi-vol-{match.group(3)}"


def snapshot_image(handle: str) -> str | None:
    """The image ceph-csi keeps a snapshot in, from the snapshot's handle (it ends in the image's uuid)."""
    match = _UUID.search(handle)
    return f"csi-snap-{match.group(1)}" if match else None
