"""A DataSource moved to a newer golden while VMs restored from the old one live on (ODF's default
boot sources: DataImportCron snapshots each imported golden, deletes the golden PVC, points the
DataSource at the newest snapshot and garbage-collects old ones). Real Ceph with ceph-csi's own
sequences; Kubernetes objects as CDI and the snapshot controller leave them; the exporter as a
process. Each clone must stay in the family of the golden it was really restored from."""

import pytest

from tests.e2e import scenario
from tests.support.cephcsi import CephCsi
from tests.support.objects import ODF_RBD, clone_annotations, datavolume, pv_rbd, pvc, storageclass, storageprofile
from tests.support.process import ExporterProcess, one, pick

MiB = 2**20
NS, VMS = "os-images", "vms"
OLD, NEW = ("vm-old-1", "vm-old-2", "vm-old-3"), ("vm-new-1", "vm-new-2")


def datasource(target: str) -> dict:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataSource", "metadata": {"name": "rhel9", "namespace": NS},
            "spec": {"source": {"snapshot": {"namespace": NS, "name": target}}}}


@pytest.fixture(scope="module")
def fleet(kube, pool, tmp_path_factory):
    csi = CephCsi(pool)
    objs = [storageclass(scenario.RBD_SC, ODF_RBD), storageprofile(scenario.RBD_SC, "csi-clone")]
    goldens, images = {}, {}
    for version in ("v1", "v2"):
        golden = csi.create_volume(16)                   # the imported golden PVC's image
        images[version] = golden
        snap = csi.create_snapshot(golden)               # DataImportCron's VolumeSnapshot of it
        csi.delete_volume(golden)                        # ... and the golden PVC deleted: image to the trash
        goldens[version] = snap
        objs += csi.volume_snapshot(NS, f"rhel9-{version}", snap, f"rhel9-{version}-import")
        for vm in (OLD if version == "v1" else NEW):
            image = csi.restore(snap, 4)
            ann = clone_annotations("snapshot")
            objs += [datavolume(VMS, vm, source_ref={"kind": "DataSource", "name": "rhel9", "namespace": NS},
                                annotations=ann),
                     pv_rbd(f"pv-{vm}", pool.name, image),
                     pvc(VMS, vm, scenario.RBD_SC, volume=f"pv-{vm}", owner_dv=vm, annotations=ann)]
    objs.append(datasource("rhel9-v2"))                  # the DataSource now points at the newest golden
    for obj in objs:
        kube.create(obj)
    tmp = tmp_path_factory.mktemp("moved")
    proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}", f"--ceph.conf={pool.conf}",
                            "--rbd.refresh-interval=1", "--kubernetes.read-timeout=5"], tmp / "exporter.log")
    proc.wait_ready()
    proc.wait_for(lambda s: len(pick(s, "clonewatch_pvc_consumed_bytes")) == 5, what="5 measured clones")
    yield proc, csi, goldens, images
    proc.stop()


def families(s):
    return {(dict(ls)["source_namespace"], dict(ls)["source_name"]): v
            for (n, ls), v in s.items() if n == "clonewatch_source_clones"}


def test_old_clones_stay_with_the_old_golden(fleet, pool):
    proc, _, _, images = fleet
    s = proc.samples()
    assert families(s) == {(NS, "rhel9-v1"): 3, (NS, "rhel9-v2"): 2}
    for vm in OLD:
        assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=vm, source_kind="VolumeSnapshot",
                   source_name="rhel9-v1", clone_type="snapshot") == 1
        assert one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim=vm) == 4 * MiB
        assert one(s, "clonewatch_pvc_clone_sharing", persistentvolumeclaim=vm) == 1
    for vm in NEW:
        assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=vm, source_name="rhel9-v2") == 1
    # Each golden's data sits in the RBD trash (its PVC was deleted); read through librbd, it is
    # measured and belongs to the one family it serves: 16 MiB golden + 0 (snapshot image) + drift.
    for version in ("v1", "v2"):
        assert one(s, "clonewatch_volume_info", volume=f"{pool.name}/{images[version]}", state="trash") == 1
    old, new = dict(source_namespace=NS, source_name="rhel9-v1"), dict(source_namespace=NS, source_name="rhel9-v2")
    assert one(s, "clonewatch_source_consumed_bytes", **old) == (16 + 3 * 4) * MiB
    assert one(s, "clonewatch_source_full_copy_bytes", **old) == (16 + 3 * 20) * MiB
    assert one(s, "clonewatch_source_consumed_bytes", **new) == (16 + 2 * 4) * MiB
    assert one(s, "clonewatch_source_full_copy_bytes", **new) == (16 + 2 * 20) * MiB
    assert not pick(s, "clonewatch_volume_chain_broken_info")


def test_a_garbage_collected_snapshot_leaves_a_family_named_after_the_datasource_and_volume(fleet, kube, pool):
    proc, csi, goldens, images = fleet
    csi.delete_snapshot(goldens["v1"])                   # DataImportCron garbage-collects rhel9-v1 ...
    kube.delete("VolumeSnapshot", "rhel9-v1", NS)        # ... while the VMs restored from it live on
    kube.delete("VolumeSnapshotContent", f"snapcontent-{goldens['v1']}")
    old_family = (NS, f"rhel9@{pool.name}/{images['v1']}")     # the old golden, in the trash
    snap_image = f"{pool.name}/csi-snap-{goldens['v1']}"
    s = proc.wait_for(lambda s: old_family in families(s) and pick(s, "clonewatch_volume_info", volume=snap_image,
                                                                    state="trash"),
                      what="the old family, by its volume, and the snapshot image in the trash")
    assert families(s) == {old_family: 3, (NS, "rhel9-v2"): 2}, "the new golden counts only its own clones"
    for vm in OLD:
        assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=vm, source_kind="BackendVolume",
                   source_name=old_family[1]) == 1
        assert one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim=vm) == 4 * MiB
    # ... and keeps its numbers: the golden and the snapshot image, both in the trash now, still hold them.
    fam = dict(source_namespace=NS, source_name=old_family[1])
    assert one(s, "clonewatch_source_consumed_bytes", **fam) == (16 + 3 * 4) * MiB
    assert one(s, "clonewatch_source_full_copy_bytes", **fam) == (16 + 3 * 20) * MiB
