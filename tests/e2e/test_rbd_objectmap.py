"""Every image's own bytes read from its object maps (the fast path), or object by object for an
image without fast-diff, are what `rbd du --format json` prints for the same pool, and every image's
facts (size, parent by name, fast-diff) are what librbd gives: ceph-csi's sequences, snapshots over
generations, flattened clones, images with and without fast-diff, invalidated object maps (librbd must
take those), resizes, clone formats 1 and 2, striping, a data pool, a RADOS namespace, group and mirror
snapshots. Each test builds its own pool, so the counts of how each image was read are exact too."""

import json
import os
from collections import Counter

import pytest

from exporter.backends.rbd.images import _image
from exporter.backends.rbd.librbd import Reader, available
from tests.support.ceph import Pool, ceph_conf
from tests.support.cephcsi import CephCsi, CephCsiDriver

pytestmark = pytest.mark.skipif(not available(), reason="python3-rbd is installed by scripts/setup.sh")
MiB = 2**20
FAST_DIFF = "layering,exclusive-lock,object-map,fast-diff"


@pytest.fixture
def pool():
    p = Pool(ceph_conf(), prefix="om")
    p.ceph("osd", "set-require-min-compat-client", "mimic")
    yield p
    p.remove()


class Writer:
    """librbd in the test process, for writes at any offset (rbd bench writes whole objects from 0)."""

    def __init__(self, pool: Pool, namespace: str = "") -> None:
        import rados
        self.cluster = rados.Rados(conffile=pool.conf)
        self.cluster.connect()
        self.ioctx = self.cluster.open_ioctx(pool.name)
        self.ioctx.set_namespace(namespace)

    def write(self, image: str, *extents: tuple[int, int]) -> None:
        import rbd
        with rbd.Image(self.ioctx, image) as img:
            for offset, length in extents:
                img.write(os.urandom(length), offset)

    def discard(self, image: str, offset: int, length: int) -> None:
        import rbd
        with rbd.Image(self.ioctx, image) as img:
            img.discard(offset, length)

    def close(self) -> None:
        self.ioctx.close()
        self.cluster.shutdown()


@pytest.fixture
def writer(pool):
    w = Writer(pool)
    yield w
    w.close()


def du(pool: Pool, namespace: str = "") -> Counter[str]:
    """image -> the sum of its `rbd du` rows (user snapshots and head)."""
    rows = json.loads(pool.rbd("du", "-p", pool.name, "--format", "json", *(["--namespace", namespace] if namespace else [])))
    out: Counter[str] = Counter()
    for row in rows["images"]:
        out[row["name"]] += row["used_size"]
    return out


def exact(pool: Pool, namespace: str = "") -> tuple[dict[str, int], dict[str, int]]:
    """A fresh reader's read of the pool checked image by image: own bytes against `rbd du` (live
    images; `rbd du` lists no trash), every fact against librbd's own reading. (name -> own bytes,
    how many images were read which way.)"""
    import rados
    reader = Reader(pool.conf, "", "", "", 30, 4)
    try:
        images = reader.read(pool.name, namespace)
        methods = reader.methods[(pool.name, namespace)]
    finally:
        reader.close()
    assert du(pool, namespace) == Counter({i.name: i.own_bytes for i in images if not i.trashed})
    cluster = rados.Rados(conffile=pool.conf)
    cluster.connect()
    try:
        with cluster.open_ioctx(pool.name) as ioctx:
            ioctx.set_namespace(namespace)
            for i in images:
                assert _image(ioctx, i.name, i.image_id, i.trashed) == i, i.name
    finally:
        cluster.shutdown()
    return {i.name: i.own_bytes for i in images}, methods


def test_cephcsi_sequences_as_the_tests_replay_them(pool):
    csi = CephCsi(pool)
    golden = csi.create_volume(32)
    clones = [csi.clone_volume(golden, mib) for mib in (4, 8)]
    snap = csi.create_snapshot(golden)
    restored = csi.restore(snap, 12)
    csi.delete_volume(golden)                   # in the trash, its data held by the clones
    csi.delete_snapshot(snap)
    own, methods = exact(pool)
    assert own[golden] == 32 * MiB and own[clones[1]] == 8 * MiB and own[restored] == 12 * MiB
    assert methods == {"objectmap": 7}          # golden, 2 x (temp + clone), csi-snap, restore: all fast


def test_cephcsi_sequences_with_the_drivers_own_features(pool):
    """Real ceph-csi makes csi-snap and temp images without an object map: the temps (trash-namespace
    snapshots only) are read object by object, the csi-snap (a user snapshot) through librbd."""
    csi = CephCsiDriver(pool)
    golden = csi.create_volume(32)
    clones = [csi.clone_volume(golden, mib) for mib in (4, 8)]
    snap = csi.create_snapshot(clones[0])
    csi.restore(snap, 4)
    csi.delete_volume(golden)
    own, methods = exact(pool)
    assert own[golden] == 32 * MiB and own[clones[0]] == 4 * MiB
    assert methods == {"objectmap": 4, "objects": 2, "librbd": 1}     # golden, 2 clones, restore; 2 temps; csi-snap


def test_user_snapshots_over_generations_with_overwrites_discards_and_other_namespaces(pool, writer):
    pool.rbd("create", "--size", "32M", pool.spec("gen"))
    writer.write("gen", (0, 8 * MiB))
    pool.rbd("snap", "create", pool.spec("gen@s1"))
    writer.write("gen", (4 * MiB, 4096), (12 * MiB, 4096))
    pool.rbd("snap", "create", pool.spec("gen@pin"))                      # becomes a trash snapshot
    pool.rbd("clone", "--rbd-default-clone-format", "2", pool.spec("gen@pin"), pool.spec("pinned"))
    pool.rbd("snap", "rm", pool.spec("gen@pin"))
    writer.write("gen", (16 * MiB, 10))
    pool.rbd("snap", "create", pool.spec("gen@s2"))
    writer.discard("gen", 0, 4 * MiB)
    writer.write("gen", (20 * MiB, 4096))
    pool.rbd("group", "create", pool.spec("grp"))
    pool.rbd("group", "image", "add", pool.spec("grp"), pool.spec("gen"))
    pool.rbd("group", "snap", "create", pool.spec("grp@g1"))               # a group-namespace snapshot
    writer.write("gen", (24 * MiB, 10))
    pool.rbd("snap", "create", pool.spec("gen@s3"))
    writer.write("gen", (12 * MiB, 10), (28 * MiB, 5))
    own, methods = exact(pool)
    assert own["gen"] > 0 and methods == {"objectmap": 2}


def test_mirror_snapshots_between_user_snapshots(pool, writer):
    pool.rbd("mirror", "pool", "enable", pool.name, "image")
    pool.rbd("create", "--size", "16M", pool.spec("m"))
    writer.write("m", (0, 8 * MiB))
    pool.rbd("snap", "create", pool.spec("m@u1"))
    writer.write("m", (4 * MiB, 10))
    pool.rbd("mirror", "image", "enable", pool.spec("m"), "snapshot")      # takes a mirror snapshot, after u1
    writer.write("m", (8 * MiB, 10), (12 * MiB, 10))
    assert "mirror" in pool.rbd("snap", "ls", "--all", pool.spec("m"))
    own, methods = exact(pool)
    assert own["m"] == 8 * MiB + 12 * MiB and methods == {"objectmap": 1}


def test_a_flattened_clone_and_clone_formats_1_and_2(pool, writer):
    pool.golden("gold", 16)
    for fmt in ("1", "2"):
        pool.rbd("clone", "--rbd-default-clone-format", fmt, pool.spec("gold@base"), pool.spec(f"v{fmt}"))
        writer.write(f"v{fmt}", (4 * MiB, 10))
        pool.rbd("snap", "create", pool.spec(f"v{fmt}@u1"))
        writer.write(f"v{fmt}", (8 * MiB, 10), (0, 4096))        # copyups after u1: deep-flatten fills u1's map
    pool.clone("gold", "flat")
    writer.write("flat", (0, 4 * MiB))
    pool.rbd("flatten", "--no-progress", pool.spec("flat"))
    own, methods = exact(pool)
    assert own["flat"] == 16 * MiB and methods == {"objectmap": 4}


def test_with_and_without_fast_diff_and_an_invalidated_object_map(pool, writer):
    pool.rbd("create", "--size", "16M", "--image-feature", "layering", pool.spec("plain"))
    pool.rbd("create", "--size", "16M", "--image-feature", FAST_DIFF, pool.spec("fast"))
    pool.rbd("create", "--size", "16M", "--image-feature", FAST_DIFF, pool.spec("invalid"))
    pool.rbd("create", "--size", "16M", "--image-feature", FAST_DIFF, pool.spec("oldsnap"))
    for image in ("plain", "fast", "invalid", "oldsnap"):
        writer.write(image, (0, 4 * MiB), (9 * MiB, 10))
    pool.rbd("feature", "disable", pool.spec("invalid"), "fast-diff,object-map")
    pool.rbd("feature", "enable", pool.spec("invalid"), "object-map,fast-diff")      # invalid until rebuilt
    pool.rbd("feature", "disable", pool.spec("oldsnap"), "fast-diff,object-map")
    pool.rbd("snap", "create", pool.spec("oldsnap@u1"))
    pool.rbd("feature", "enable", pool.spec("oldsnap"), "object-map,fast-diff")
    pool.rbd("object-map", "rebuild", "--no-progress", pool.spec("oldsnap"))        # the head only: u1 stays invalid
    writer.write("oldsnap", (12 * MiB, 10))
    assert "fast diff invalid" in pool.rbd("info", pool.spec("invalid"))
    own, methods = exact(pool)
    assert own["plain"] == own["fast"] == 8 * MiB and methods == {"objectmap": 1, "objects": 1, "librbd": 2}


@pytest.mark.parametrize("names_per_stat", [0, 10**9], ids=["each-object-looked-up", "namespace-listed"])
def test_images_without_fast_diff_object_by_object(pool, writer, names_per_stat, monkeypatch):
    """What `rbd du` counts without fast-diff: every object the head holds, whole, the last one to the
    end of the image; not one the head dropped (a whole-object discard, a shrink), nor a clone's object
    truncated to nothing (a discard that hides the parent's data) unless a snapshot's clone of it holds
    data (then librbd reads the image); a trash-namespace snapshot is no row. Looked up object by
    object, and from a listing of the pool's objects."""
    from exporter.backends.rbd import fast_path, pool_read
    monkeypatch.setattr(fast_path, "NAMES_PER_STAT", names_per_stat)
    listings = []
    monkeypatch.setattr(pool_read, "data_objects", lambda names, wanted: listings.append(wanted) or
                        fast_path.data_objects(names, wanted))
    pool.rbd("create", "--size", f"{30 * MiB + 5000}B", "--image-feature", "layering", pool.spec("plain"))
    writer.write("plain", (0, 4 * MiB), (4 * MiB, 4096), (8 * MiB, 4 * MiB), (12 * MiB, 4 * MiB), (30 * MiB, 5000))
    writer.discard("plain", 8 * MiB, 4 * MiB)           # the object goes
    writer.discard("plain", 12 * MiB, 2 * MiB)          # half of it zeroed, the object stays
    pool.golden("gold", 16)
    pool.rbd("clone", "--rbd-default-clone-format", "2", "--image-feature", "layering,deep-flatten",
             pool.spec("gold@base"), pool.spec("child"))
    writer.discard("child", 0, 4 * MiB)                 # a zero-length object over the parent's
    writer.write("child", (4 * MiB, 512))               # copyups
    writer.discard("child", 8 * MiB, MiB)
    pool.rbd("snap", "create", pool.spec("child@pin"))
    pool.rbd("clone", "--rbd-default-clone-format", "2", pool.spec("child@pin"), pool.spec("grandchild"))
    pool.rbd("snap", "rm", pool.spec("child@pin"))      # into the trash namespace, as ceph-csi's temp images
    writer.write("child", (4 * MiB, 10), (12 * MiB, 10))
    writer.discard("child", 8 * MiB, 4 * MiB)           # zero-length at the head, data in the trash snapshot
    pool.rbd("clone", "--rbd-default-clone-format", "2", "--image-feature", "layering,deep-flatten",
             pool.spec("gold@base"), pool.spec("hider"))
    writer.discard("hider", 0, 4 * MiB)                 # zero-length, no snapshot: not counted
    writer.write("hider", (4 * MiB, 512))
    pool.rbd("create", "--size", "32M", "--image-feature", "layering,exclusive-lock,object-map", pool.spec("nofd"))
    writer.write("nofd", (0, 4096), (20 * MiB, 4096))   # an object map but no fast-diff: rbd du looks too
    pool.rbd("create", "--size", "32M", "--image-feature", "layering", pool.spec("shrunk"))
    writer.write("shrunk", (0, 32 * MiB))
    pool.rbd("resize", "--allow-shrink", "--no-progress", "--size", "10M", pool.spec("shrunk"))
    pool.rbd("resize", "--no-progress", "--size", "20M", pool.spec("shrunk"))
    pool.rbd("create", "--size", "16M", "--image-feature", "layering", pool.spec("snapped"))
    writer.write("snapped", (0, 4096))
    pool.rbd("snap", "create", pool.spec("snapped@u1"))         # a user snapshot: rows between: librbd
    writer.write("snapped", (8 * MiB, 4096))
    pool.rbd("create", "--size", "16M", "--image-feature", "layering", pool.spec("binned"))
    writer.write("binned", (4 * MiB, 4096))
    pool.rbd("trash", "mv", pool.spec("binned"))
    own, methods = exact(pool)
    assert own["plain"] == 3 * 4 * MiB + 30 * MiB + 5000 - 28 * MiB and own["hider"] == 4 * MiB
    assert own["nofd"] == own["binned"] + 4 * MiB == 8 * MiB and own["shrunk"] == 12 * MiB
    # plain, hider, nofd, shrunk and the trashed one by objects; gold and grandchild (librbd's default
    # features) from their maps; the user-snapshotted image and child (zero-length over a snapshot)
    # through librbd
    assert own["child"] == 3 * 4 * MiB and methods == {"objects": 5, "objectmap": 2, "librbd": 2}
    assert len(listings) == (1 if names_per_stat else 0)


def test_more_snapshots_than_the_osd_returns_in_one_read(pool, writer, monkeypatch):
    """The OSD answers one omap read with at most osd_max_omap_entries_per_request entries (1,024 by
    default; 8 here, so that a test image need not carry a thousand snapshots) and says nothing of
    the rest: an image with that many snapshots goes to librbd, and its clones still name their
    parent snapshot (read by its key) and are read from their maps."""
    from exporter.backends.rbd import rados_reader
    monkeypatch.setattr(rados_reader, "OMAP_MAX", 8)
    pool.ceph("config", "set", "osd", "osd_max_omap_entries_per_request", "8")
    try:
        pool.rbd("create", "--size", "8M", pool.spec("many"))
        writer.write("many", (0, 4096))
        for i in range(10):
            if i == 8:
                writer.write("many", (4 * MiB, 4096))       # in s8's row only: a cut header would miss it
            if i == 9:
                writer.discard("many", 4 * MiB, 4 * MiB)
            pool.rbd("snap", "create", "--no-progress", pool.spec(f"many@s{i}"))
        pool.rbd("snap", "protect", pool.spec("many@s9"))
        pool.rbd("clone", "--rbd-default-clone-format", "2", pool.spec("many@s9"), pool.spec("kid"))
        writer.write("kid", (4 * MiB, 10))
        own, methods = exact(pool)
    finally:
        pool.ceph("config", "rm", "osd", "osd_max_omap_entries_per_request")
    assert own["many"] == 8 * MiB and own["kid"] == 4 * MiB and methods == {"librbd": 1, "objectmap": 1}


def test_a_resized_image_striping_and_small_objects(pool, writer):
    pool.rbd("create", "--size", "32M", pool.spec("resize"))
    writer.write("resize", (0, 32 * MiB))
    pool.rbd("snap", "create", pool.spec("resize@s1"))
    pool.rbd("resize", "--allow-shrink", "--no-progress", "--size", "10M", pool.spec("resize"))
    pool.rbd("snap", "create", pool.spec("resize@s2"))
    pool.rbd("resize", "--no-progress", "--size", "40M", pool.spec("resize"))
    writer.write("resize", (36 * MiB, 4096))
    pool.rbd("create", "--size", f"{20 * MiB + 5000}B", "--object-size", "1M", "--stripe-unit", "64K",
             "--stripe-count", "4", pool.spec("striped"))
    writer.write("striped", (0, 70000), (5 * MiB, 300000))
    pool.rbd("snap", "create", pool.spec("striped@s1"))
    writer.write("striped", (20 * MiB, 5000))
    pool.rbd("create", "--size", f"{10 * MiB + 123456}B", pool.spec("tail"))
    writer.write("tail", (0, 4096), (10 * MiB, 1000))                 # the last object ends with the image
    own, methods = exact(pool)
    assert own["tail"] == 4 * MiB + 2 * MiB + 123456 and methods == {"objectmap": 3}


def test_a_data_pool_and_a_rados_namespace(pool):
    data = Pool(pool.conf, prefix="omdata")
    try:
        pool.rbd("create", "--size", "16M", "--data-pool", data.name, pool.spec("dp"))
        pool.write("dp", 8)
        pool.rbd("namespace", "create", f"{pool.name}/ns1")
        pool.rbd("create", "--size", "16M", f"{pool.name}/ns1/inns")
        pool.rbd("bench", "--io-type", "write", "--io-size", "4M", "--io-total", "4M", f"{pool.name}/ns1/inns")
        pool.rbd("snap", "create", f"{pool.name}/ns1/inns@s1")
        pool.rbd("clone", "--rbd-default-clone-format", "2", f"{pool.name}/ns1/inns@s1", pool.spec("fromns"))
        own, methods = exact(pool)
        assert own["dp"] == 8 * MiB and methods == {"objectmap": 2}
        own, methods = exact(pool, "ns1")
        assert own["inns"] == 4 * MiB and methods == {"objectmap": 1}
    finally:
        data.remove()


def test_the_exporter_counts_how_each_image_was_read(pool, tmp_path):
    from tests.support.process import ExporterProcess, one, pick
    pool.rbd("create", "--size", "16M", "--image-feature", "layering", pool.spec("objects"))
    pool.rbd("create", "--size", "16M", "--image-feature", "layering", pool.spec("slow"))
    pool.rbd("snap", "create", pool.spec("slow@u1"))     # without fast-diff, a user snapshot needs librbd
    pool.rbd("create", "--size", "16M", pool.spec("fast"))
    pool.write("fast", 4)
    pool.write("objects", 8)
    proc = ExporterProcess(["--no-kubernetes.enabled", f"--rbd.pools={pool.name}", f"--ceph.conf={pool.conf}",
                            "--rbd.client=librbd", "--rbd.refresh-interval=0.5"], tmp_path / "exporter.log")
    try:
        proc.wait_ready()

        def count(s, method):
            return sum(pick(s, "clonewatch_rbd_images_read_total", target=pool.name, method=method))
        s = proc.wait_for(lambda s: count(s, "unchanged") >= 2, what="two later refreshes")
        # Each refresh reads the image with an object map from its maps (the first, and each periodic full
        # read) or keeps it unchanged, looks up each object of the one without, and opens the snapshotted
        # one through librbd.
        assert count(s, "objectmap") >= 1
        assert count(s, "objectmap") + count(s, "unchanged") == count(s, "objects") == count(s, "librbd")
        assert one(s, "clonewatch_volume_consumed_bytes", volume=f"{pool.name}/fast") == 4 * MiB
        assert one(s, "clonewatch_volume_consumed_bytes", volume=f"{pool.name}/objects") == 8 * MiB
    finally:
        proc.stop()


def test_a_snapshot_removed_past_one_omap_read_is_seen_by_the_next_refresh(pool, writer, monkeypatch):
    """A later refresh keeps an image's figures while its fingerprint (the header's omap and the head
    map) says the same: that omap is read whole, page by page, so removing a snapshot whose key lies
    past the OSD's per-read limit (8 here, as above) reads the image again."""
    from exporter.backends.rbd import rados_reader
    monkeypatch.setattr(rados_reader, "OMAP_MAX", 8)
    pool.ceph("config", "set", "osd", "osd_max_omap_entries_per_request", "8")
    reader = Reader(pool.conf, "", "", "", 30, 4)
    try:
        pool.rbd("create", "--size", "8M", pool.spec("many"))
        writer.write("many", (0, 4096))
        for i in range(10):
            if i == 8:
                writer.write("many", (4 * MiB, 4096))       # only s8 holds this object
            if i == 9:
                writer.discard("many", 4 * MiB, 4 * MiB)
            pool.rbd("snap", "create", "--no-progress", pool.spec(f"many@s{i}"))
        first = {i.name: i.own_bytes for i in reader.read(pool.name, "")}
        assert first["many"] == du(pool)["many"] == 8 * MiB
        pool.rbd("snap", "rm", "--no-progress", pool.spec("many@s8"))     # the head map stays as it was
        later = {i.name: i.own_bytes for i in reader.read(pool.name, "")}
        assert later["many"] == du(pool)["many"] == 4 * MiB
        assert reader.methods[(pool.name, "")] == {"librbd": 2}           # read again, not kept
    finally:
        reader.close()
        pool.ceph("config", "rm", "osd", "osd_max_omap_entries_per_request")


def test_names_that_are_not_utf8(pool, writer, monkeypatch):
    """RADOS and rbd take any bytes as a name; Ceph's bindings decode names as UTF-8. An object named so
    ends the namespace's listing: its images are then looked up object by object, with the same figures.
    An image named so cannot be listed past: the pool's read fails with that name in its error (never a
    figure without it, never an exception out of the backend)."""
    import asyncio

    from exporter.backends.rbd import fast_path
    from exporter.backends.rbd.backend import RbdBackend, RbdSettings
    from exporter.backends.rbd.reader import CephCluster
    monkeypatch.setattr(fast_path, "NAMES_PER_STAT", 10**9)       # list the namespace rather than stat
    pool.rados("put", "stray\udcfe\udcff", "/dev/null")             # surrogateescape: the bytes fe ff
    pool.rbd("create", "--size", "16M", "--image-feature", "layering", pool.spec("plain"))
    writer.write("plain", (0, 4096), (8 * MiB, 4096))
    own, methods = exact(pool)
    assert own == {"plain": 8 * MiB} and methods == {"objects": 1}

    pool.rbd("create", "--size", "8M", pool.spec("bad\udcffname"))
    backend = RbdBackend(RbdSettings(pools=(pool.name,), timeout_seconds=30, client="librbd",
                                     default=CephCluster(conf=pool.conf), concurrency=2))
    try:
        asyncio.run(backend.refresh())
        state = backend.states()[pool.name]
        assert not state.up and "not UTF-8" in state.error and "bad\\xffname" in state.error
    finally:
        asyncio.run(backend.close())
