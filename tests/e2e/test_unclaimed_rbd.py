"""Space no PV owns, end to end on real Ceph: ceph-csi's own sequences with its journal written as the
driver writes it (tests/support/cephcsi.py CephCsiJournal), the PVs and snapshot objects in the Kubernetes
emulator, and the exporter as a process watching each step.

  golden      csi-vol of PVC os/golden, cloned by PVC vms/clone (through its -temp image), then deleted:
              DeleteVolume moves it to the trash, where it stays while the clone reads through it
  retained    a PV with Retain, then the PV removed by hand: the image and its journal entry stay
  snapshot    a VolumeSnapshot of vms/clone; its content deleted by hand, the csi-snap image stays
  interrupted a PVC-PVC clone that stopped after the temporary image
  theirs      a volume of another ceph-csi instance (csi.volumes.other-cluster) in the same pool
  handmade    an image nobody's journal names
  expiring    an image someone moved to the trash with a deferment
  bad input   journal entries with a missing key and with garbage values
Every byte figure is the image's as `rbd du` counts it (taken before an image goes to the trash).
"""

import json
import time
import uuid
from calendar import timegm
from contextlib import contextmanager

import pytest

from tests.support.cephcsi import CephCsiJournal
from tests.support.objects import ODF_RBD, pv_rbd, pvc
from tests.support.process import ExporterProcess, one, pick

MiB = 2**20
TEMP_AGE = 20
ODF_RBD_CLASS = "ocs-storagecluster-ceph-rbd"


def du(pool) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in pool.du()["images"]:
        out[row["name"]] = out.get(row["name"], 0) + row["used_size"]
    return out


def reasons(s) -> dict[str, str]:
    """volume (image name) -> reason, as served."""
    return {dict(ls)["volume"].rsplit("/", 1)[1]: dict(ls)["reason"] for (n, ls), _ in s.items()
            if n == "clonewatch_volume_unclaimed_info"}


def trash_times(pool, image: str) -> tuple[int, int]:
    """(when it was moved, when its deferment ends) as `rbd trash ls --long` says (UTC, whole seconds)."""
    (entry,) = [t for t in json.loads(pool.rbd("trash", "ls", "--long", "--format", "json", pool.name))
                if t["name"] == image]
    stamp = lambda text: timegm(time.strptime(text, "%a %b %d %H:%M:%S %Y"))   # noqa: E731
    return stamp(entry["deleted_at"]), stamp(entry["status"].split(" ", 2)[2])


def wait_reasons(proc, want: dict[str, str], what: str, timeout: float = 30):
    """Until the served reasons are exactly `want`; the failure says what was served instead."""
    seen: list[dict[str, str]] = [{}]

    def done(s) -> bool:
        seen[0] = reasons(s)
        return seen[0] == want
    try:
        return proc.wait_for(done, timeout=timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{what}: served {seen[0]}, wanted {want}") from exc


def snapshot_objects(csi: CephCsiJournal, request: str, uid: str, source_pvc: str) -> list[dict]:
    vs, vsc = csi.volume_snapshot("vms", request, uid, source_pvc)
    vsc["spec"]["driver"] = ODF_RBD
    return [vs, vsc]


@pytest.fixture(scope="module")
def world(kube, pool, tmp_path_factory):
    csi, theirs = CephCsiJournal(pool), CephCsiJournal(pool, instance="other-cluster")
    images: dict[str, str] = {}
    images["golden"] = csi.new_volume("pvc-golden", 16)
    images["clone"] = csi.new_clone("pvc-clone", images["golden"], 4)
    images["retained"] = csi.new_volume("pvc-retained", 8)
    snap_uid = csi.new_snapshot("snapshot-1", images["clone"])
    images["snapshot"] = f"csi-snap-{snap_uid}"
    images["theirs"] = theirs.new_volume("pvc-theirs", 4)
    pool.create("handmade", 64)
    pool.write("handmade", 4)
    for name, image in (("pvc-golden", "golden"), ("pvc-clone", "clone"), ("pvc-retained", "retained")):
        kube.create(pv_rbd(name, pool.name, images[image]))
    for obj in snapshot_objects(csi, "snapshot-1", snap_uid, "clone"):
        kube.create(obj)
    tmp = tmp_path_factory.mktemp("unclaimed")
    proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}", f"--ceph.conf={pool.conf}",
                            f"--rbd.pools={pool.name}", "--rbd.refresh-interval=1", "--kubernetes.read-timeout=5",
                            f"--unclaimed.temp-age={TEMP_AGE}"], tmp / "exporter.log")
    proc.wait_ready()
    yield proc, csi, images
    proc.stop()


def test_each_reason_as_ceph_csi_leaves_it(world, pool, kube):
    proc, csi, images = world
    s = proc.wait_for(lambda s: reasons(s).get("handmade") == "unknown" and reasons(s).get(images["theirs"]),
                      what="the first reasons")
    # What the PVs and the snapshot's content own is nobody's leak; another instance's is foreign.
    assert reasons(s) == {images["theirs"]: "foreign", "handmade": "unknown"}
    before = du(pool)

    # The golden's PVC deleted: DeleteVolume moves it to the trash, where the clone's chain holds it.
    kube.delete("PersistentVolume", "pvc-golden")
    csi.remove_volume("pvc-golden", images["golden"])
    # A Retain PV removed by hand: the image and its journal entry stay.
    kube.delete("PersistentVolume", "pvc-retained")
    # The snapshot's objects deleted by hand (a Retain content): its csi-snap image stays.
    kube.delete("VolumeSnapshotContent", f"snapcontent-{images['snapshot'].removeprefix('csi-snap-')}")
    kube.delete("VolumeSnapshot", "snapshot-1", "vms")
    # A clone interrupted after its temporary image.
    interrupted = csi.new_clone("pvc-interrupted", images["clone"], 0, interrupted=True)
    expected = {images["theirs"]: "foreign", "handmade": "unknown", images["golden"]: "held-by-clones",
                images["retained"]: "leaked", images["snapshot"]: "orphan-snapshot"}
    wait_reasons(proc, {**expected, interrupted: "clone-in-progress"}, "a PV, a snapshot content and a golden gone")
    s = wait_reasons(proc, {**expected, interrupted: "stale-temp"}, "the interrupted clone turning stale",
                     timeout=TEMP_AGE + 30)

    # Every figure is the storage's: each volume's own bytes as rbd du counts them, summed per reason.
    now = du(pool)
    own = {image: now.get(image, before.get(image)) for image in reasons(s)}
    assert own[images["golden"]] == 16 * MiB and own[images["retained"]] == 8 * MiB
    for image in reasons(s):
        assert one(s, "clonewatch_volume_consumed_bytes", volume=f"{pool.name}/{image}") == own[image], image
    for reason in set(reasons(s).values()):
        assert one(s, "clonewatch_unclaimed_bytes", backend="rbd", target=pool.name, reason=reason) == \
            sum(own[i] for i, r in reasons(s).items() if r == reason), reason
    # The golden is in the trash: its deferment ended when ceph-csi moved it (it gives none).
    moved, expired = trash_times(pool, images["golden"])
    assert one(s, "clonewatch_volume_trash_expiry_timestamp_seconds", volume=f"{pool.name}/{images['golden']}") == \
        expired == moved
    # The retained image's PV comes back (a static PV re-created for it): no longer leaked.
    kube.create(pv_rbd("pvc-retained", pool.name, images["retained"]))
    proc.wait_for(lambda s: images["retained"] not in reasons(s), what="the retained image claimed again")


def test_a_clone_made_before_its_pv_is_provisioning(world, pool, kube):
    """ceph-csi makes a clone's images before the provisioner makes the PV (and holds a deep clone back
    until it is flattened): while the PVC named in its journal entry (pvc-<PVC uid>) waits, it is
    provisioning, its temporary image part of it; bound, it is claimed; its PVC and PV deleted with the
    image left behind, it is leaked."""
    proc, csi, images = world
    uid = str(uuid.uuid4())
    claim = pvc("vms", "waiting", ODF_RBD_CLASS)
    claim["metadata"]["uid"] = uid
    kube.create(claim)
    image = csi.new_clone(f"pvc-{uid}", images["clone"], 4)
    # Seen once its data is written (the image shows before: ceph-csi writes nothing, this test does).
    s = proc.wait_for(lambda s: image in reasons(s) and pick(s, "clonewatch_volume_consumed_bytes",
                                                            volume=f"{pool.name}/{image}") == [4 * MiB],
                      what="the clone made before its PV")
    assert reasons(s)[image] == "provisioning" and f"{image}-temp" not in reasons(s), reasons(s)
    assert one(s, "clonewatch_unclaimed_bytes", backend="rbd", target=pool.name, reason="provisioning") == \
        du(pool)[image] == 4 * MiB
    kube.create(pv_rbd(f"pvc-{uid}", pool.name, image))
    kube.patch_pvc("vms", "waiting", {"spec": {"volumeName": f"pvc-{uid}"}, "status": {"phase": "Bound"}})
    proc.wait_for(lambda s: image not in reasons(s) and f"{image}-temp" not in reasons(s), what="the clone bound")
    kube.delete("PersistentVolumeClaim", "waiting", "vms")
    kube.delete("PersistentVolume", f"pvc-{uid}")
    wait_reasons(proc, {**reasons(proc.samples()), image: "leaked", f"{image}-temp": "leaked"}, "its PVC and PV gone")
    csi.remove_volume(f"pvc-{uid}", image)
    proc.wait_for(lambda s: image not in reasons(s) and f"{image}-temp" not in reasons(s), what="the clone removed")


def test_an_image_in_the_trash_keeps_its_deferment(world, pool):
    proc, _csi, _images = world
    pool.create("expiring", 64)
    pool.write("expiring", 4)
    pool.rbd("trash", "mv", "--expires-at", "2030-01-02 03:04:05", pool.spec("expiring"))
    s = proc.wait_for(lambda s: reasons(s).get("expiring") == "trash", what="the trashed image")
    _moved, until = trash_times(pool, "expiring")
    assert until - timegm((2030, 1, 2, 3, 4, 5)) in (-1, 0)     # rbd turns the date into a delay from now
    assert one(s, "clonewatch_volume_trash_expiry_timestamp_seconds", volume=f"{pool.name}/expiring") == until
    assert one(s, "clonewatch_volume_consumed_bytes", volume=f"{pool.name}/expiring") == 4 * MiB


def test_bad_journal_entries_are_logged_once_and_their_images_are_unknown(world, pool, tmp_path):
    proc, csi, _images = world
    missing, garbage = (str(uuid.uuid4()) for _ in range(2))
    # Ours by the directory, but the per-uuid object lacks csi.imagename.
    pool.rados("create", f"csi.volume.{missing}")
    csi.setomap("csi.volumes.default", "csi.volume.pvc-missing", missing)
    csi.setomap(f"csi.volume.{missing}", "csi.volname", "pvc-missing")
    pool.create(f"csi-vol-{missing}", 64)
    # Ours by the directory, but values that are no text ceph-csi writes.
    bad = tmp_path / "bad"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    pool.rados("create", f"csi.volume.{garbage}")
    csi.setomap("csi.volumes.default", "csi.volume.pvc-garbage", garbage)
    pool.rados("setomapval", f"csi.volume.{garbage}", "csi.volname", "--input-file", str(bad))
    pool.rados("setomapval", f"csi.volume.{garbage}", "csi.imagename", "--input-file", str(bad))
    pool.rados("setomapval", "csi.volumes.default", "csi.volume.pvc-bogus", "--input-file", str(bad))
    pool.create(f"csi-vol-{garbage}", 64)
    s = proc.wait_for(lambda s: reasons(s).get(f"csi-vol-{missing}") and reasons(s).get(f"csi-vol-{garbage}"),
                      what="the images of bad entries")
    assert reasons(s)[f"csi-vol-{missing}"] == reasons(s)[f"csi-vol-{garbage}"] == "unknown"
    last = one(s, "clonewatch_backend_last_success_timestamp_seconds", backend="rbd", target=pool.name)
    s = proc.wait_for(lambda s2: one(s2, "clonewatch_backend_last_success_timestamp_seconds", backend="rbd",
                                     target=pool.name) >= last + 3, what="more refreshes (one a second)")
    assert reasons(s)[f"csi-vol-{missing}"] == reasons(s)[f"csi-vol-{garbage}"] == "unknown"
    logged = [json.loads(line) for line in proc.logs().splitlines()
              if line.startswith("{") and "rbd_cephcsi_journal_unreadable" in line]
    assert sorted((e["object"], e["problem"]) for e in logged) == sorted([
        (f"csi.volume.{missing}", "csi.imagename is missing or not an image name"),
        (f"csi.volume.{garbage}", "csi.volname is missing or not text"),
        ("csi.volumes.default", "key 'csi.volume.pvc-bogus' holds b'\\xff\\xfe\\x00garbage', not a uuid")]), logged
    assert proc.proc.poll() is None


def test_while_the_pv_watch_fails_only_what_the_storage_says_is_told(world, kube):
    """The API server goes away: a volume no PV maps to cannot be told from one whose PV the exporter
    missed, so leaked, orphan-snapshot and unknown go; the trash, what it holds and foreign stay."""
    proc, _csi, images = world
    s = proc.wait_for(lambda s: "orphan-snapshot" in reasons(s).values(), what="the snapshot image reported")
    storage_side = {v: r for v, r in reasons(s).items()
                    if r in ("held-by-clones", "trash", "stale-temp", "clone-in-progress", "foreign")}
    assert images["golden"] in storage_side and images["theirs"] in storage_side
    kube.stop_server()
    try:
        wait_reasons(proc, storage_side, "only storage-side reasons while the watch fails")
    finally:
        kube.start_server()
    proc.wait_for(lambda s: reasons(s).get(images["snapshot"]) == "orphan-snapshot", what="all reasons back")


def test_keys_that_are_not_text_mark_nothing_and_crash_nothing(world, pool, tmp_path):
    """Keys the bindings cannot decode: in a per-uuid object its image is unknown; in our directory
    nothing of the pool can be told ours or another's, so nothing is leaked, orphaned or foreign."""
    proc, csi, images = world
    key = tmp_path / "key"
    key.write_bytes(b"csi.\xff\xfe")
    odd = str(uuid.uuid4())
    csi.reserve("volume", "pvc-odd", f"csi-vol-{odd}", odd)
    pool.rados("setomapval", f"csi.volume.{odd}", "--omap-key-file", str(key), "x")
    pool.create(f"csi-vol-{odd}", 64)
    s = proc.wait_for(lambda s: reasons(s).get(f"csi-vol-{odd}"), what="the image of an odd entry")
    assert reasons(s)[f"csi-vol-{odd}"] == "unknown"
    key.write_bytes(b"csi.volume.\xff\xfe")     # one the directory's listing returns
    pool.rados("setomapval", "csi.volumes.default", "--omap-key-file", str(key), "x")
    s = proc.wait_for(lambda s: images["theirs"] in reasons(s) and reasons(s)[images["theirs"]] == "unknown",
                      what="nothing marked")
    assert not {"leaked", "orphan-snapshot", "foreign"} & set(reasons(s).values()), reasons(s)
    assert reasons(s)[images["golden"]] == "held-by-clones"
    logged = [json.loads(line)["problem"] for line in proc.logs().splitlines()
              if line.startswith("{") and "rbd_cephcsi_journal_unreadable" in line]
    assert logged.count("a key that is not UTF-8 text: the directory cannot be read past it") == 1, logged
    assert logged.count("cannot be read: its keys") == 1, logged
    assert proc.proc.poll() is None


def test_a_directory_longer_than_one_omap_read(monkeypatch):
    """Our instance's directory is read page by page past the OSD's per-read limit (lowered to 8 here,
    1,024 by default: a cluster with more PVCs than that has a longer directory): every one of twelve
    journaled volumes is ours, none falls to `unknown` for being past the first page."""
    import rados

    from exporter.backends.rbd import rados_reader
    from exporter.backends.rbd.journal import Journal
    from tests.support.ceph import Pool, ceph_conf
    monkeypatch.setattr(rados_reader, "OMAP_MAX", 8)
    p = Pool(ceph_conf(), prefix="dir")
    p.ceph("config", "set", "osd", "osd_max_omap_entries_per_request", "8")
    cluster = rados.Rados(conffile=p.conf)
    try:
        csi = CephCsiJournal(p)
        names = []
        for i in range(12):
            uid = str(uuid.uuid4())
            names.append(f"csi-vol-{uid}")
            csi.reserve("volume", f"pvc-{i:02d}", names[-1], uid, **{"csi.imageid": f"{i:012x}"})
        cluster.connect()
        with cluster.open_ioctx(p.name) as ioctx:
            marks = Journal().marks(cluster, ioctx, "", names, 30)
        assert {n: (marks[n].made_by, marks[n].csi_kind) for n in names if n in marks} == \
            {n: ("csi", "volume") for n in names}
    finally:
        cluster.shutdown()
        p.ceph("config", "rm", "osd", "osd_max_omap_entries_per_request")
        p.remove()


def test_a_journal_pool_other_than_the_image_pool(tmp_path):
    """ceph-csi 3.0 to 3.10 kept a topology-constrained StorageClass's journal in its `pool` and made the
    images in the topology's pool: the directory key (`<image pool id>/<uuid>`) and the per-uuid object's
    keys went to the journal pool, the image pool kept only the empty object the uuid was reserved with
    (which NodeStageVolume's GenVolFromVolID later gives a csi.imageid). Ours with a PV is claimed, ours
    without one leaked, another instance's journaled in the same pool foreign: by the journal read alone
    (twice, the second from what the first kept) and by the exporter, which is told of the image pool only."""
    from tests.support.ceph import Pool, ceph_conf
    image_pool, journal_pool = Pool(ceph_conf(), prefix="img"), None
    try:
        journal_pool = Pool(ceph_conf(), prefix="jnl")
        csi = CephCsiJournal(image_pool, journal=journal_pool)
        theirs = CephCsiJournal(image_pool, instance="other-cluster", journal=journal_pool)
        requests = {"claimed": f"pvc-{uuid.uuid4()}", "leaked": f"pvc-{uuid.uuid4()}", "foreign": f"pvc-{uuid.uuid4()}"}
        images = {"claimed": csi.new_volume(requests["claimed"], 4), "leaked": csi.new_volume(requests["leaked"], 4),
                  "foreign": theirs.new_volume(requests["foreign"], 4)}
        csi.by_handle(images["claimed"])        # staged on a node once
        # The layout as ceph-csi leaves it: nothing of the journal in the image pool but the reservations.
        leaked_uid = images["leaked"].removeprefix("csi-vol-")
        assert not [o for o in image_pool.rados("ls").split() if o.startswith("csi.volumes.")]
        assert image_pool.rados("listomapkeys", f"csi.volume.{leaked_uid}") == ""
        journal_pool.rados("getomapval", "csi.volumes.default", f"csi.volume.{requests['leaked']}", str(tmp_path / "v"))
        assert (tmp_path / "v").read_text() == f"{image_pool.id():016x}/{leaked_uid}"

        expected = {images["claimed"]: ("csi", "volume", requests["claimed"]),
                    images["leaked"]: ("csi", "volume", requests["leaked"]),
                    images["foreign"]: ("foreign", "volume", requests["foreign"])}
        for read, marks in enumerate(read_marks(image_pool, list(images.values()), reads=2)):
            assert {n: (m.made_by, m.csi_kind, m.request) for n, m in marks.items() if n in expected} == expected, read

        pv = pv_rbd(requests["claimed"], image_pool.name, images["claimed"])
        pv["spec"]["csi"]["volumeAttributes"]["journalPool"] = journal_pool.name
        with exporter_of(image_pool, [pv], tmp_path) as proc:
            wait_reasons(proc, {images["leaked"]: "leaked", images["foreign"]: "foreign"}, "the journal pool's volumes")
            events = [json.loads(line)["event"] for line in proc.logs().splitlines() if line.startswith("{")]
            assert not [e for e in events if e.startswith("rbd_cephcsi")], events     # nothing taken for damage
    finally:
        image_pool.remove()
        if journal_pool is not None:
            journal_pool.remove()


def read_marks(pool, names: list[str], reads: int) -> list[dict]:
    """Journal.marks for the images of a pool, `reads` times with one Journal."""
    import rados

    from exporter.backends.rbd.journal import Journal
    cluster = rados.Rados(conffile=pool.conf)
    cluster.connect()
    try:
        journal = Journal()
        with cluster.open_ioctx(pool.name) as ioctx:
            return [journal.marks(cluster, ioctx, "", names, 30) for _ in range(reads)]
    finally:
        cluster.shutdown()


@contextmanager
def exporter_of(pool, pvs: list[dict], tmp_path):
    """The exporter told of one pool, with an API server of its own holding only these PVs (the exporter
    reads every pool a PV names, and the module's server holds PVs of another pool)."""
    from tests.support.kube import KubeAPI
    kube = KubeAPI()
    try:
        for pv in pvs:
            kube.create(pv)
        proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp_path / 'kubeconfig')}",
                                f"--ceph.conf={pool.conf}", f"--rbd.pools={pool.name}", "--rbd.refresh-interval=1",
                                "--kubernetes.read-timeout=5"], tmp_path / "exporter.log")
        try:
            proc.wait_ready()
            yield proc
        finally:
            proc.stop()
    finally:
        kube.close()
