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

import json
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

    # What `rbd clone` is told besides the names: nothing here (the images inherit their parent's
    # features); CephCsiDriver gives the driver's own.
    INTERMEDIATE: tuple[str, ...] = ()     # the snapshot and temporary images
    VOLUME: tuple[str, ...] = ()           # volumes (clones, restores)

    def source_snapshots(self, uid: str) -> tuple[str, str, str]:
        """The names of the short-lived snapshots a snapshot image, a temporary clone and the clone of
        the temporary clone are made from."""
        return uid, uid, f"{uid}-2"

    def create_snapshot(self, source_image: str, uid: str = "") -> str:
        uid = uid or str(uuid.uuid4())
        snap, (from_source, _, _) = f"csi-snap-{uid}", self.source_snapshots(uid)
        src = self.pool.spec(source_image)
        self.rbd("snap", "create", "--no-progress", f"{src}@{from_source}")
        self.rbd("clone", *self.INTERMEDIATE, f"{src}@{from_source}", self.pool.spec(snap))
        self.rbd("snap", "rm", "--no-progress", f"{src}@{from_source}")
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
        self.rbd("clone", *self.VOLUME, f"{self.pool.spec(snap)}@{snap}", self.pool.spec(image))
        self.pool.write(image, mib_written)
        return image

    def clone_volume(self, source_image: str, mib_written: int, uid: str = "", interrupted: bool = False) -> str:
        """A PVC cloned from a PVC: through a temporary clone, so the chain grows by two. interrupted:
        stop after the temporary clone (the provisioner gave up, the PVC was deleted)."""
        uid = uid or str(uuid.uuid4())
        temp, image = f"csi-vol-{uid}-temp", f"csi-vol-{uid}"
        _, from_source, from_temp = self.source_snapshots(uid)
        src = self.pool.spec(source_image)
        self.rbd("snap", "create", "--no-progress", f"{src}@{from_source}")
        self.rbd("clone", *self.INTERMEDIATE, f"{src}@{from_source}", self.pool.spec(temp))
        self.rbd("snap", "rm", "--no-progress", f"{src}@{from_source}")
        if interrupted:
            return temp
        self.rbd("snap", "create", "--no-progress", f"{self.pool.spec(temp)}@{from_temp}")
        self.rbd("clone", *self.VOLUME, f"{self.pool.spec(temp)}@{from_temp}", self.pool.spec(image))
        self.rbd("snap", "rm", "--no-progress", f"{self.pool.spec(temp)}@{from_temp}")
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

    INTERMEDIATE = ("--image-feature", DRIVER_INTERMEDIATE_FEATURES)
    VOLUME = ("--image-feature", STORAGECLASS_FEATURES)

    def source_snapshots(self, uid: str) -> tuple[str, str, str]:
        return f"csi-snap-{uid}", f"csi-vol-{uid}-temp", f"csi-vol-{uid}"


class CephCsiJournal(CephCsiDriver):
    """The same sequences with ceph-csi's journal written as the driver writes it (internal/journal/
    voljournal.go, omap.go; docs/field-facts.md), `rados setomapval` on the same objects and keys, values
    the Go strings' bytes: the per-uuid object created exclusively, the directory key, the object's keys,
    then the image and its id; on delete the image to the trash (removed at once unless clones hang from
    it, as the mgr's `trash remove` task does), then the object, then the key.

    journal: the journal pool when it is not the image pool (ceph-csi before 3.11 kept a topology-
    constrained StorageClass's journal in its `pool`). ReserveName then creates the per-uuid object in
    the image pool but writes the directory key (`<image pool id %016x>/<uuid>`) and the object's keys,
    `csi.journalpool` (the journal pool's own id) among them, into the journal pool: the image pool's
    object stays empty, and DeleteVolume, finding no journal pool there, cleans up the image pool only.
    A snapshot is journaled in the journal pool its source's image-pool object names, none, so in the
    image pool (internal/rbd/rbd_util.go generateVolumeFromVolumeID, genSnapFromOptions)."""

    def __init__(self, pool: Pool, instance: str = "default", journal: Pool | None = None) -> None:
        super().__init__(pool)
        self.instance = instance
        self.journal = journal or pool

    def journal_of(self, kind: str) -> Pool:
        return self.journal if kind == "volume" else self.pool

    def elsewhere(self, kind: str) -> bool:
        return self.journal_of(kind).name != self.pool.name

    def setomap(self, obj: str, key: str, value: str, kind: str = "volume") -> None:
        """A key of the journal pool's object (setOMapKeys with the journal pool)."""
        self.journal_of(kind).rados("setomapval", obj, key, value)

    def reserve(self, kind: str, request: str, image: str, uid: str, **extra: str) -> None:
        """kind "volume" or "snap": csi.<kind>.<uuid>, then csi.<kind>s.<instance>'s key, then the keys."""
        self.pool.rados("create", f"csi.{kind}.{uid}")
        value = f"{self.pool.id():016x}/{uid}" if self.elsewhere(kind) else uid
        self.setomap(f"csi.{kind}s.{self.instance}", f"csi.{kind}.{request}", value, kind)
        keys = {"csi.volname" if kind == "volume" else "csi.snapname": request, "csi.imagename": image, **extra}
        if self.elsewhere(kind):
            keys["csi.journalpool"] = f"{self.journal.id():016x}"
        for key, value in keys.items():
            self.setomap(f"csi.{kind}.{uid}", key, value, kind)

    def image_id(self, image: str) -> str:
        return json.loads(self.rbd("info", "--format", "json", self.pool.spec(image)))["id"]

    def store_image_id(self, kind: str, uid: str, image: str) -> None:
        self.setomap(f"csi.{kind}.{uid}", "csi.imageid", self.image_id(image), kind)

    def by_handle(self, image: str) -> None:
        """What every call naming a volume by its handle does first (GenVolFromVolID: NodeStageVolume,
        expand, snapshot, delete): it reads the image pool's object, and, finding no csi.imageid there,
        stores the image's id into that object; with the journal elsewhere, the first key it ever gets."""
        obj = f"csi.volume.{image.removeprefix('csi-vol-')}"
        if "csi.imageid" not in self.pool.rados("listomapkeys", obj).split():
            self.pool.rados("setomapval", obj, "csi.imageid", self.image_id(image))

    def undo(self, kind: str, request: str, uid: str) -> None:
        """UndoReservation with the image pool's object's journal pool: none written there when it is
        elsewhere, so the image pool, whose directory may not exist (not an error to ceph-csi); the
        journal pool's key and object stay (ceph-csi PR #3115, the omap leak of topology provisioning)."""
        self.pool.rados("rm", f"csi.{kind}.{uid}")
        try:
            self.pool.rados("rmomapkey", f"csi.{kind}s.{self.instance}", f"csi.{kind}.{request}")
        except RuntimeError as exc:
            if not self.elsewhere(kind) or "No such file" not in str(exc):
                raise

    def new_volume(self, request: str, mib_written: int, size_mib: int = 64) -> str:
        uid = str(uuid.uuid4())
        image = f"csi-vol-{uid}"
        self.reserve("volume", request, image, uid, **{"csi.volume.owner": "vms"})
        self.rbd("create", "--size", f"{size_mib}M", "--image-feature", STORAGECLASS_FEATURES, self.pool.spec(image))
        self.store_image_id("volume", uid, image)
        self.pool.write(image, mib_written)
        return image

    def new_clone(self, request: str, source_image: str, mib_written: int, interrupted: bool = False) -> str:
        uid = str(uuid.uuid4())
        image = f"csi-vol-{uid}"
        self.reserve("volume", request, image, uid, **{"csi.volume.owner": "vms"})
        made = self.clone_volume(source_image, mib_written, uid, interrupted)
        if not interrupted:
            self.store_image_id("volume", uid, image)
        return made

    def new_snapshot(self, request: str, source_image: str) -> str:
        uid = str(uuid.uuid4())
        self.reserve("snap", request, f"csi-snap-{uid}", uid, **{"csi.source": source_image})
        self.create_snapshot(source_image, uid)
        self.store_image_id("snap", uid, f"csi-snap-{uid}")
        return uid

    def remove_volume(self, request: str, image: str) -> None:
        """DeleteVolume: its temporary clone, the image to the trash and its removal queued (done at once
        here when nothing hangs from it, as the mgr task would), then the journal."""
        uid = image.removeprefix("csi-vol-")
        left = [self.trash(name) for name in (f"{image}-temp", image) if name in self.pool.rbd("ls", self.pool.name).split()]
        for image_id in filter(None, left):         # the mgr's next try
            self.trash_remove(image_id)
        self.undo("volume", request, uid)

    def remove_snapshot(self, request: str, uid: str) -> None:
        snap = f"csi-snap-{uid}"
        self.rbd("snap", "rm", "--no-progress", f"{self.pool.spec(snap)}@{snap}")
        self.trash(snap)
        self.undo("snap", request, uid)

    def trash(self, image: str) -> str:
        """`trash mv`, then the removal ceph-csi queues; the image id when it stays (clones read from it)."""
        image_id = self.image_id(image)
        self.rbd("trash", "mv", self.pool.spec(image))
        return "" if self.trash_remove(image_id) else image_id

    def trash_remove(self, image_id: str) -> bool:
        try:
            self.rbd("trash", "rm", "--no-progress", f"{self.pool.name}/{image_id}")
        except RuntimeError as exc:     # ENOTEMPTY: the mgr retries until the last clone is gone
            if "snapshots" not in str(exc) and "children" not in str(exc):
                raise
            return False
        return True
