"""End to end on IBM FlashSystem: the array double over HTTPS, CDI/IBM CSI objects in kmock, the
exporter as a process. A csi-clone there is a FlashCopy mapping with a background copy: its
family's efficiency must be seen falling as the copy completes."""

import subprocess
import sys

import pytest

from tests.support.flashsystem import FlashSystemDouble, copy_rate_bytes_per_second
from tests.support.objects import IBM_BLOCK, clone_annotations, datavolume, pv_flashsystem, pvc, storageclass
from tests.support.process import ROOT, ExporterProcess, one, pick

MiB = 2**20
SC = "ibm-flashsystem-thin"


@pytest.fixture(scope="module")
def array(tmp_path_factory):
    fs = FlashSystemDouble(tmp_path_factory.mktemp("array"))
    yield fs
    fs.close()


@pytest.fixture(scope="module")
def exporter(kube, array, tmp_path_factory):
    golden = array.create_vdisk("pvc-golden", 64 * MiB)
    array.write("pvc-golden", 40 * MiB)
    objs = [storageclass(SC, IBM_BLOCK),
            pv_flashsystem("pv-fs-golden", array.handle(golden), "127.0.0.1"),
            pvc("fs-images", "rhel9", SC, volume="pv-fs-golden")]
    for vm, drift in (("fs-vm-1", 4), ("fs-vm-2", 8)):
        vd = array.clone_like_csi("pvc-golden", f"pvc-{vm}", copy_rate=50)
        array.write(f"pvc-{vm}", drift * MiB)
        ann = clone_annotations("csi-clone")
        objs += [datavolume("fs-vms", vm, source={"pvc": {"namespace": "fs-images", "name": "rhel9"}},
                            annotations=ann),
                 pv_flashsystem(f"pv-{vm}", array.handle(vd), "127.0.0.1"),
                 pvc("fs-vms", vm, SC, volume=f"pv-{vm}", owner_dv=vm, annotations=ann)]
    # A CSI snapshot of the golden (a mapping at copy rate 0) and a PVC restored from it (a clone of
    # the snapshot vdisk, background copy at rate 50), as the IBM block CSI driver makes them.
    snap = array.snapshot_like_csi("pvc-golden", "snapshot-rhel9")
    restored = array.clone_like_csi("snapshot-rhel9", "pvc-fs-restored", copy_rate=50)
    objs += [{"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
              "metadata": {"name": "rhel9-snap", "namespace": "fs-images"},
              "spec": {"source": {"persistentVolumeClaimName": "rhel9"}, "volumeSnapshotClassName": "ibm-snap"},
              "status": {"boundVolumeSnapshotContentName": "snapcontent-fs-1", "readyToUse": True}},
             {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
              "metadata": {"name": "snapcontent-fs-1"},
              "spec": {"driver": IBM_BLOCK, "deletionPolicy": "Delete", "source": {"volumeHandle": array.handle(golden)},
                       "volumeSnapshotRef": {"name": "rhel9-snap", "namespace": "fs-images"}},
              "status": {"snapshotHandle": array.handle(snap), "readyToUse": True}},
             pv_flashsystem("pv-fs-restored", array.handle(restored), "127.0.0.1"),
             pvc("fs-images", "fs-restored", SC, volume="pv-fs-restored",
                 data_source={"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "rhel9-snap"})]
    for obj in objs:
        kube.create(obj)
    tmp = tmp_path_factory.mktemp("exporter")
    secret = array.write_secret_dir(tmp / "fs1")
    proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}", "--no-rbd.enabled",
                            f"--flashsystem.arrays=fs1={secret}", "--flashsystem.refresh-interval=0.5",
                            "--kubernetes.namespaces=fs-images,fs-vms", "--log.level=debug"], tmp / "exporter.log")
    proc.wait_ready()
    proc.wait_for(lambda s: len(pick(s, "clonewatch_pvc_consumed_bytes", backend="flashsystem")) == 4,
                  what="4 measured FlashSystem PVCs")
    yield proc
    proc.stop()


def volume_of(samples, pvc_name):
    """The backend volume behind a PVC, from the join metric the exporter publishes."""
    [labels] = [dict(ls) for (n, ls), _ in samples.items()
                if n == "clonewatch_pvc_volume_info" and dict(ls)["persistentvolumeclaim"] == pvc_name]
    return labels["backend_volume"]


FAMILY = dict(source_namespace="fs-images", source_name="rhel9", backend="flashsystem")


def test_clones_are_flashcopy_mappings_sharing_the_golden_at_first(exporter, array):
    s = exporter.samples()
    assert one(s, "clonewatch_backend_up", backend="flashsystem", target="fs1") == 1
    for vm, drift in (("fs-vm-1", 4), ("fs-vm-2", 8)):
        assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=vm, clone_type="csi-clone",
                   expected_clone_type="csi-clone") == 1
        assert one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim=vm) == drift * MiB
        vol = volume_of(s, vm)
        assert one(s, "clonewatch_flashcopy_progress_ratio", volume=vol) == 0
        assert one(s, "clonewatch_flashcopy_copy_rate", volume=vol) == 50
        assert one(s, "clonewatch_flashcopy_info", volume=vol, status="copying", mapping=f"fcmap_pvc-{vm}") == 1
    assert one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim="rhel9") == 40 * MiB
    assert one(s, "clonewatch_source_clones", **FAMILY) == 3
    # 40 + 4 + 8 + 0 MiB stored, against 40 + 44 + 48 + 40 MiB as full copies.
    assert one(s, "clonewatch_source_consumed_bytes", **FAMILY) == 52 * MiB
    assert one(s, "clonewatch_source_full_copy_bytes", **FAMILY) == 172 * MiB
    assert one(s, "clonewatch_source_efficiency_ratio", **FAMILY) == pytest.approx(1 - 52 / 172, abs=1e-6)
    # The restore hangs from the snapshot vdisk, which hangs from the golden (copy-on-write, rate 0);
    # a snapshot's restores belong to the family of the PVC it was taken from.
    assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim="fs-restored", clone_type="snapshot",
               source_name="rhel9-snap") == 1
    assert one(s, "clonewatch_pvc_clone_depth", persistentvolumeclaim="fs-restored") == 2
    assert one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim="fs-restored") == 0
    assert sorted(pick(s, "clonewatch_flashcopy_copy_rate")) == [0, 50, 50, 50]
    for vm in ("fs-vm-1", "fs-vm-2", "fs-restored"):
        assert one(s, "clonewatch_pvc_clone_sharing", persistentvolumeclaim=vm) == 1
    check = subprocess.run(["promtool", "check", "metrics"], input=exporter.metrics_text(), capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_efficiency_decays_as_background_copies_complete(exporter, array):
    seconds_for_all = 64 * MiB / copy_rate_bytes_per_second(50)
    array.advance(seconds_for_all / 2)
    s = exporter.wait_for(lambda s: sorted(pick(s, "clonewatch_flashcopy_progress_ratio")) == [0, 0.5, 0.5, 0.5],
                          what="copies half done (the snapshot mapping, rate 0, stays at 0)")
    half = one(s, "clonewatch_source_efficiency_ratio", **FAMILY)
    # Each copy holds half of its source's 40 MiB now (the restore copies from the snapshot).
    assert one(s, "clonewatch_source_consumed_bytes", **FAMILY) == (40 + 24 + 28 + 20) * MiB
    assert half == pytest.approx(1 - 112 / 172, abs=1e-6)
    array.advance(seconds_for_all)
    s = exporter.wait_for(lambda s: sorted(pick(s, "clonewatch_flashcopy_progress_ratio")) == [0, 1, 1, 1],
                          what="copies done")
    assert one(s, "clonewatch_source_efficiency_ratio", **FAMILY) == 0
    assert one(s, "clonewatch_source_consumed_bytes", **FAMILY) == 172 * MiB
    # CDI still says csi-clone; the array says the clones share nothing any more.
    for vm in ("fs-vm-1", "fs-vm-2", "fs-restored"):
        assert one(s, "clonewatch_pvc_clone_sharing", persistentvolumeclaim=vm) == 0
        assert one(s, "clonewatch_pvc_clone_unshared_info", persistentvolumeclaim=vm,
                   reason="background-copy-complete") == 1
    assert len(pick(s, "clonewatch_flashcopy_info", status="idle_or_copied")) == 3
    # The text summary for humans shows the same.
    out = subprocess.run([sys.executable, "-m", "exporter.summary", exporter.url + "/metrics"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "fs-images/rhel9" in out and "0.000" in out
    copies = [line.split() for line in out.splitlines() if "idle_or_copied" in line]
    assert len(copies) == 3 and all(c[3] == "100%" and c[4] == "50" for c in copies)


def test_array_outage_takes_bytes_away_not_inventory(exporter, array):
    array.faults.errors += [(500, "CMMVC5700E The parameter list is not valid.")] * 1000
    s = exporter.wait_for(lambda s: one(s, "clonewatch_backend_up", backend="flashsystem", target="fs1") == 0,
                          what="array down")
    assert not pick(s, "clonewatch_pvc_consumed_bytes", backend="flashsystem")
    assert not pick(s, "clonewatch_flashcopy_progress_ratio")
    assert len(pick(s, "clonewatch_pvc_clone_info", persistentvolumeclaim="fs-vm-1")) == 1
    array.faults.errors.clear()
    exporter.wait_for(lambda s: len(pick(s, "clonewatch_pvc_consumed_bytes", backend="flashsystem")) == 4,
                      what="array back")
    assert "HTTP 500" in exporter.logs() and array.password not in exporter.logs()
