"""ceph-csi's own RBD command sequences, replayed on a test pool exactly as the driver runs them
(ceph-csi docs/design/proposals/rbd-snap-clone.md; clone format 2):

- a volume is an image `csi-vol-<uuid>`; deleting its PVC moves it to the RBD trash (`rbd trash mv`),
  where an image that still has clones stays with its data;
- a VolumeSnapshot of SRC is `snap create SRC@tmp`, `clone SRC@tmp csi-snap-<uuid>`, `snap rm SRC@tmp`
  (the snapshot has a child, so it goes to the trash namespace), `snap create csi-snap-<uuid>@csi-snap-<uuid>`;
- a PVC restored from it is `clone csi-snap-<uuid>@csi-snap-<uuid> csi-vol-<uuid>`;
- a PVC cloned from a PVC goes through a temporary image: `snap create SRC@x`, `clone SRC@x
  csi-vol-<uuid>-temp`, `snap rm SRC@x`, `snap create TEMP@y`, `clone TEMP@y csi-vol-<uuid>`, `snap rm TEMP@y`;
- deleting a VolumeSnapshot removes that snapshot (to the trash namespace while restores hang from
  it) and moves the csi-snap image to the trash.

`snapshot` replays CreateSnapshot exactly as ceph-csi runs it (internal/rbd/controllerserver.go
CreateSnapshot, doSnapshotClone): the temporary snapshot on the source is named like the new image and
the csi-snap image gets only the features ceph-csi gives it, layering and deep-flatten (no object map,
so measuring it reads every object); `create_snapshot` keeps the older replay for the tests built on it.
"""

import uuid

from tests.support.ceph import Pool

CLUSTER_ID = "rook-ceph"


class CephCsi:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        pool.ceph("osd", "set-require-min-compat-client", "mimic")     # clone v2 needs it

    def rbd(self, *args: str) -> str:
        return self.pool.rbd("--rbd-default-clone-format", "2", *args)

    def handle(self, uid: str) -> str:
        """A volume or snapshot handle as ceph-csi writes it: 0001-<len>-<clusterID>-<pool id>-<uuid>."""
        return f"0001-{len(CLUSTER_ID):04x}-{CLUSTER_ID}-0000000000000002-{uid}"

    def create_volume(self, mib_written: int, size_mib: int = 64) -> str:
        image = f"csi-vol-{uuid.uuid4()}"
        self.pool.create(image, size_mib)
        self.pool.write(image, mib_written)
        return image

    def create_snapshot(self, source_image: str) -> str:
        uid = str(uuid.uuid4())
        snap = f"csi-snap-{uid}"
        src = self.pool.spec(source_image)
        self.rbd("snap", "create", "--no-progress", f"{src}@{uid}")
        self.rbd("clone", f"{src}@{uid}", self.pool.spec(snap))
        self.rbd("snap", "rm", "--no-progress", f"{src}@{uid}")
        self.rbd("snap", "create", "--no-progress", f"{self.pool.spec(snap)}@{snap}")
        return uid

    def snapshot(self, source_image: str) -> str:
        """CreateSnapshot as ceph-csi runs it; answers the snapshot's uuid (its image is csi-snap-<uuid>)."""
        uid = str(uuid.uuid4())
        snap = f"csi-snap-{uid}"
        src = self.pool.spec(source_image)
        self.rbd("snap", "ls", "--all", src)                         # flattenTemporaryClonedImages' count
        self.rbd("snap", "create", "--no-progress", f"{src}@{snap}")
        self.rbd("clone", "--image-feature", "layering,deep-flatten", f"{src}@{snap}", self.pool.spec(snap))
        self.rbd("snap", "rm", "--no-progress", f"{src}@{snap}")     # has a child: to the trash namespace
        self.rbd("snap", "create", "--no-progress", f"{self.pool.spec(snap)}@{snap}")
        return uid

    def restore(self, snapshot_uid: str, mib_written: int = 0) -> str:
        snap = f"csi-snap-{snapshot_uid}"
        image = f"csi-vol-{uuid.uuid4()}"
        self.rbd("clone", f"{self.pool.spec(snap)}@{snap}", self.pool.spec(image))
        self.pool.write(image, mib_written)
        return image

    def clone_volume(self, source_image: str, mib_written: int) -> str:
        """A PVC cloned from a PVC: through a temporary clone, so the chain grows by two."""
        uid = str(uuid.uuid4())
        temp, image = f"csi-vol-{uid}-temp", f"csi-vol-{uid}"
        src = self.pool.spec(source_image)
        self.rbd("snap", "create", "--no-progress", f"{src}@{uid}")
        self.rbd("clone", f"{src}@{uid}", self.pool.spec(temp))
        self.rbd("snap", "rm", "--no-progress", f"{src}@{uid}")
        self.rbd("snap", "create", "--no-progress", f"{self.pool.spec(temp)}@{uid}-2")
        self.rbd("clone", f"{self.pool.spec(temp)}@{uid}-2", self.pool.spec(image))
        self.rbd("snap", "rm", "--no-progress", f"{self.pool.spec(temp)}@{uid}-2")
        self.pool.write(image, mib_written)
        return image

    def delete_volume(self, image: str) -> None:
        self.rbd("trash", "mv", self.pool.spec(image))

    def delete_snapshot(self, snapshot_uid: str) -> None:
        snap = f"csi-snap-{snapshot_uid}"
        self.rbd("snap", "rm", "--no-progress", f"{self.pool.spec(snap)}@{snap}")
        self.rbd("trash", "mv", self.pool.spec(snap))

    def volume_snapshot(self, namespace: str, name: str, snapshot_uid: str, source_pvc: str) -> list[dict]:
        """The VolumeSnapshot and its VolumeSnapshotContent as the snapshot controller leaves them."""
        content = f"snapcontent-{snapshot_uid}"
        return [{"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                 "metadata": {"name": name, "namespace": namespace},
                 "spec": {"source": {"persistentVolumeClaimName": source_pvc},
                          "volumeSnapshotClassName": "ocs-storagecluster-rbdplugin-snapclass"},
                 "status": {"boundVolumeSnapshotContentName": content, "readyToUse": True,
                            "restoreSize": "64Mi"}},
                {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
                 "metadata": {"name": content},
                 "spec": {"driver": "openshift-storage.rbd.csi.ceph.com", "deletionPolicy": "Delete",
                          "source": {"volumeHandle": self.handle(str(uuid.uuid4()))},
                          "volumeSnapshotRef": {"name": name, "namespace": namespace}},
                 "status": {"snapshotHandle": self.handle(snapshot_uid), "readyToUse": True,
                            "restoreSize": 64 * 2**20}}]


# What ceph-csi gives the images it makes on the way (internal/rbd/snapshot.go, clone.go): only
# layering and deep-flatten, so no object map; volumes get the StorageClass's imageFeatures (ODF's
# default below), set explicitly: a clone would otherwise inherit its parent's.
DRIVER_INTERMEDIATE_FEATURES = "layering,deep-flatten"
STORAGECLASS_FEATURES = "layering,deep-flatten,exclusive-lock,object-map,fast-diff"


class CephCsiDriver(CephCsi):
    """The same sequences with what the driver really does beyond the command order: the snapshot and
    temporary images without an object map, and the source snapshots named after the image they make
    (`SRC@csi-snap-<uuid>`, `SRC@csi-vol-<uuid>-temp`, `TEMP@csi-vol-<uuid>`), which survive as the
    original names of the trash-namespace snapshots."""

    def create_snapshot(self, source_image: str) -> str:
        uid = str(uuid.uuid4())
        snap = f"csi-snap-{uid}"
        src = self.pool.spec(source_image)
        self.rbd("snap", "create", "--no-progress", f"{src}@{snap}")
        self.rbd("clone", "--image-feature", DRIVER_INTERMEDIATE_FEATURES, f"{src}@{snap}", self.pool.spec(snap))
        self.rbd("snap", "rm", "--no-progress", f"{src}@{snap}")
        self.rbd("snap", "create", "--no-progress", f"{self.pool.spec(snap)}@{snap}")
        return uid

    def clone_volume(self, source_image: str, mib_written: int) -> str:
        uid = str(uuid.uuid4())
        temp, image = f"csi-vol-{uid}-temp", f"csi-vol-{uid}"
        src = self.pool.spec(source_image)
        self.rbd("snap", "create", "--no-progress", f"{src}@{temp}")
        self.rbd("clone", "--image-feature", DRIVER_INTERMEDIATE_FEATURES, f"{src}@{temp}", self.pool.spec(temp))
        self.rbd("snap", "rm", "--no-progress", f"{src}@{temp}")
        self.rbd("snap", "create", "--no-progress", f"{self.pool.spec(temp)}@{image}")
        self.rbd("clone", "--image-feature", STORAGECLASS_FEATURES, f"{self.pool.spec(temp)}@{image}",
                 self.pool.spec(image))
        self.rbd("snap", "rm", "--no-progress", f"{self.pool.spec(temp)}@{image}")
        self.pool.write(image, mib_written)
        return image

    def restore(self, snapshot_uid: str, mib_written: int) -> str:
        snap = f"csi-snap-{snapshot_uid}"
        image = f"csi-vol-{uuid.uuid4()}"
        self.rbd("clone", "--image-feature", STORAGECLASS_FEATURES, f"{self.pool.spec(snap)}@{snap}",
                 self.pool.spec(image))
        self.pool.write(image, mib_written)
        return image
