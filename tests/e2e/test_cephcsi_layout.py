"""The layout ceph-csi really builds, measured natively (no Kubernetes): PVC clones through temporary
images, a VolumeSnapshot image with a restore, and a full copy. The temporary and snapshot images are
chain links, not clones: the family's full-copy yardstick counts only real volumes."""

import pytest

from tests.support.cephcsi import CephCsi
from tests.support.process import ExporterProcess, one, pick

MiB = 2**20


@pytest.fixture(scope="module")
def layout(pool, tmp_path_factory):
    csi = CephCsi(pool)
    golden = csi.create_volume(64)
    clones = [csi.clone_volume(golden, mib) for mib in (4, 8, 16)]
    snap = csi.create_snapshot(golden)
    restored = csi.restore(snap, 8)
    copy = csi.create_volume(64)            # an independent volume of the same size: no family
    tmp = tmp_path_factory.mktemp("layout")
    proc = ExporterProcess(["--no-kubernetes.enabled", f"--rbd.pools={pool.name}", f"--ceph.conf={pool.conf}",
                            "--rbd.refresh-interval=1"], tmp / "exporter.log")
    proc.wait_ready()
    yield proc, pool, golden, clones, restored, copy
    proc.stop()


def test_temporary_and_snapshot_images_are_links_not_clones(layout):
    proc, pool, golden, clones, _restored, _copy = layout
    s = proc.wait_for(lambda s: pick(s, "clonewatch_source_efficiency_ratio"), what="the family")
    fam = dict(source_name=f"{pool.name}/{golden}", backend="rbd")
    assert one(s, "clonewatch_source_clones", **fam) == 4                     # 3 PVC clones + 1 restore
    assert one(s, "clonewatch_source_consumed_bytes", **fam) == (64 + 4 + 8 + 16 + 8) * MiB
    # As independent copies: the golden, each clone with the golden under it, the restore too.
    assert one(s, "clonewatch_source_full_copy_bytes", **fam) == (64 + 68 + 72 + 80 + 72) * MiB
    assert one(s, "clonewatch_source_efficiency_ratio", **fam) == pytest.approx(1 - 100 / 356, abs=1e-6)
    for image in clones:
        assert one(s, "clonewatch_volume_clone_depth", volume=f"{pool.name}/{image}") == 2, "two hops per PVC clone"
    # Every live image as `rbd du` counts it (head + snapshot rows), against what librbd gave the exporter.
    du: dict[str, int] = {}
    for row in pool.du()["images"]:
        du[row["name"]] = du.get(row["name"], 0) + row["used_size"]
    assert {name: one(s, "clonewatch_volume_consumed_bytes", volume=f"{pool.name}/{name}") for name in du} == du
    assert len(pick(s, "clonewatch_source_clones")) == 1, "the full copy heads no family"


def test_a_deleted_golden_stays_measured_in_the_trash_and_the_totals_add_up(layout):
    proc, pool, golden, _clones, _restored, _copy = layout
    csi = CephCsi(pool)
    csi.delete_volume(golden)                       # its PVC deleted: ceph-csi moves the image to the trash
    vid = f"{pool.name}/{golden}"
    s = proc.wait_for(lambda s: pick(s, "clonewatch_volume_info", volume=vid, state="trash"), what="golden in the trash")
    fam = dict(source_name=vid, backend="rbd")
    assert one(s, "clonewatch_source_consumed_bytes", **fam) == (64 + 4 + 8 + 16 + 8) * MiB, "the family keeps its numbers"
    assert one(s, "clonewatch_source_clones", **fam) == 4
    assert one(s, "clonewatch_volume_consumed_bytes", volume=vid) == 64 * MiB
    # Every volume, live and trashed, against the pool's own objects (4 MiB each, nothing overwritten
    # after a snapshot here, so each object is one generation).
    objects = [line for line in pool.rados("ls").splitlines() if line.startswith("rbd_data.")]
    assert sum(pick(s, "clonewatch_volume_consumed_bytes")) == len(objects) * 4 * MiB
    print(f"\nfamily from the trashed golden: consumed {one(s, 'clonewatch_source_consumed_bytes', **fam) / MiB:.0f} MiB, "
          f"as full copies {one(s, 'clonewatch_source_full_copy_bytes', **fam) / MiB:.0f} MiB, efficiency "
          f"{one(s, 'clonewatch_source_efficiency_ratio', **fam):.4f}; volumes (live + trash) "
          f"{sum(pick(s, 'clonewatch_volume_consumed_bytes')) / MiB:.0f} MiB = pool objects {len(objects)} x 4 MiB")
    assert all(v == 1 for v in pick(s, "clonewatch_volume_fast_diff")), "ceph-csi's default features include fast-diff"
