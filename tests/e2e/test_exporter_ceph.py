"""End to end: real Ceph RBD images, Kubernetes objects in kmock, the exporter as a process, /metrics.

Byte expectations come from what the test wrote (whole 4 MiB objects), not from the exporter's
own arithmetic; allowed error ±2%.
"""

import gzip
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e import scenario
from tests.support.objects import rbd_clone
from tests.support.process import ExporterProcess, one, pick

MiB = 2**20
GOLDEN_FILE = Path(__file__).parent.parent / "fixtures" / "metrics.golden.prom"
# Samples whose values change from run to run or machine to machine.
VOLATILE = re.compile(r"^(process_|python_|clonewatch_(rebuild_duration_seconds|last_rebuild_timestamp_seconds|"
                      r"backend_refresh_duration_seconds|backend_last_success_timestamp_seconds|"
                      r"backend_cache_age_seconds|build_info|event_loop_tasks|rbd_images_read_total)\b)")


@pytest.fixture(scope="module")
def exporter(kube, pool, tmp_path_factory):
    scenario.build_pool(pool)
    for obj in scenario.kubernetes_objects(pool.name):
        kube.create(obj)
    tmp = tmp_path_factory.mktemp("exporter")
    proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}",
                            f"--ceph.conf={pool.conf}", "--rbd.refresh-interval=2",
                            "--kubernetes.read-timeout=5", "--kubernetes.backoff-max=1",
                            "--kubernetes.absent-recheck=3", "--log.level=debug"], tmp / "exporter.log")
    proc.wait_ready()
    proc.wait_for(lambda s: len(pick(s, "clonewatch_pvc_consumed_bytes")) == 8, what="8 measured PVCs")
    proc.wait_for(lambda s: len(pick(s, "clonewatch_source_efficiency_ratio")) == 3, what="3 measured families")
    yield proc
    proc.stop()


def test_clone_types_and_fallbacks(exporter):
    s = exporter.samples()
    info = {dict(ls)["persistentvolumeclaim"]: dict(ls)
            for (n, ls), _ in s.items() if n == "clonewatch_pvc_clone_info"}
    assert set(info) == {"vm-1", "vm-2", "vm-3", "win-1", "win-2", "vpc-1", "pending-1"}
    assert {k: v["clone_type"] for k, v in info.items()} == {
        "vm-1": "csi-clone", "vm-2": "csi-clone", "vm-3": "csi-clone", "win-1": "copy", "win-2": "copy",
        "vpc-1": "copy", "pending-1": "unknown"}
    assert info["vpc-1"]["expected_clone_type"] == "copy"
    assert info["win-1"]["expected_clone_type"] == "csi-clone"
    assert info["win-1"]["fallback_reason"] == "NoVolumeSnapshotClass"
    assert (info["vm-1"]["source_namespace"], info["vm-1"]["source_name"]) == ("os-images", "rhel9")
    fallback = {dict(ls)["persistentvolumeclaim"]: v for (n, ls), v in s.items()
                if n == "clonewatch_pvc_clone_fallback"}
    assert fallback == {"vm-1": 0, "vm-2": 0, "vm-3": 0, "win-1": 1, "win-2": 1, "vpc-1": 0, "pending-1": 0}
    sc = {dict(ls)["storageclass"]: dict(ls)["expected_clone_type"] for (n, ls), _ in s.items()
          if n == "clonewatch_storageclass_clone_strategy_info"}
    assert sc == {scenario.RBD_SC: "csi-clone", scenario.VPC_SC: "copy"}
    assert one(s, "clonewatch_pvc_info", persistentvolumeclaim="vpc-1")  == 1
    # IBM Cloud VPC block: a restore is a full copy billed at its provisioned size.
    assert pick(s, "clonewatch_pvc_info", persistentvolumeclaim="vpc-1", backend="vpc")
    assert one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim="vpc-1", backend="vpc") == 10 * 2**30
    assert not pick(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim="pending-1")


def test_consumed_bytes_match_what_was_written(exporter):
    s = exporter.samples()
    expected = {**{vm: mib * MiB for vm, mib in scenario.DRIFT_MIB.items()},
                **{vm: scenario.GOLDEN_MIB * MiB for vm in scenario.FULL},
                "rhel9": scenario.GOLDEN_MIB * MiB, "win": scenario.GOLDEN_MIB * MiB}
    for pvc, want in expected.items():
        got = one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim=pvc, backend="rbd")
        assert abs(got - want) <= 0.02 * max(want, 4 * MiB), (pvc, got, want)
        assert one(s, "clonewatch_pvc_provisioned_bytes", persistentvolumeclaim=pvc) == 64 * MiB
    for vm in scenario.DRIFT_MIB:
        assert one(s, "clonewatch_pvc_clone_depth", persistentvolumeclaim=vm) == 1
    for name in ("win-1", "win-2", "rhel9"):
        assert one(s, "clonewatch_pvc_clone_depth", persistentvolumeclaim=name) == 0


def test_family_efficiency(exporter):
    s = exporter.samples()
    g = scenario.GOLDEN_MIB * MiB
    drift = [m * MiB for m in scenario.DRIFT_MIB.values()]
    cow_actual = g + sum(drift)
    cow_full = g + sum(g + d for d in drift)
    cow = dict(source_namespace="os-images", source_name="rhel9", backend="rbd")
    assert one(s, "clonewatch_source_consumed_bytes", **cow) == pytest.approx(cow_actual, rel=0.02)
    assert one(s, "clonewatch_source_full_copy_bytes", **cow) == pytest.approx(cow_full, rel=0.02)
    assert one(s, "clonewatch_source_efficiency_ratio", **cow) == pytest.approx(1 - cow_actual / cow_full, abs=0.02)
    assert one(s, "clonewatch_source_efficiency_ratio", **cow) > 0.6
    # vm-1..3 and the not yet bound pending-1 on RBD; the copy onto VPC storage is a family of its own there,
    # and saves nothing: the seed's "0% gain on VPC", measured.
    assert one(s, "clonewatch_source_clones", **cow) == 4
    vpc = dict(source_namespace="os-images", source_name="rhel9", backend="vpc")
    assert one(s, "clonewatch_source_clones", **vpc) == 1
    assert one(s, "clonewatch_source_efficiency_ratio", **vpc) == 0
    assert one(s, "clonewatch_source_consumed_bytes", **vpc) == 10 * 2**30
    full = dict(source_namespace="os-images", source_name="win", backend="rbd")
    assert one(s, "clonewatch_source_efficiency_ratio", **full) == pytest.approx(0, abs=0.02)
    assert one(s, "clonewatch_source_consumed_bytes", **full) == pytest.approx(3 * g, rel=0.02)
    assert one(s, "clonewatch_source_clones", **full) == 2


def test_volume_metrics_are_the_backends_truth(exporter, pool):
    s = exporter.samples()
    du = pool.du()
    total_used = sum(r["used_size"] for r in du["images"])
    assert sum(pick(s, "clonewatch_volume_consumed_bytes", target=pool.name)) == total_used
    assert one(s, "clonewatch_volume_info", volume=f"{pool.name}/vm-1-img", parent=f"{pool.name}/rhel9-img") == 1
    assert one(s, "clonewatch_backend_up", backend="rbd", target=pool.name) == 1
    assert one(s, "clonewatch_kubernetes_resource_present", resource="volumeclonesources") == 0
    assert one(s, "clonewatch_kubernetes_objects", resource="persistentvolumeclaims") == 9


def test_gzip_scrape_decodes_to_the_same_samples(exporter):
    status, body, headers = exporter.get("/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    text = gzip.decompress(body).decode()
    assert "clonewatch_source_efficiency_ratio{" in text
    assert text.count("# TYPE clonewatch_pvc_info gauge") == 1


def stable_lines(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines()
                   if (line.startswith("#") and not VOLATILE.match(line.split(" ", 3)[2]))
                   or (not line.startswith("#") and not VOLATILE.match(line)))


def test_golden_file_and_promtool(exporter, pool, request, tmp_path):
    text = exporter.metrics_text()
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    got = stable_lines(text).replace(pool.name, "POOL")
    if request.config.getoption("--update-golden"):
        GOLDEN_FILE.write_text(got)
    assert got == GOLDEN_FILE.read_text(), "regenerate with: scripts/test.sh --update-golden (then review the diff)"
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    assert series > 100


def test_new_clone_appears_and_deleted_pvc_vanishes(exporter, kube, pool):
    pool.clone("rhel9-img", "vm-4-img")
    pool.write("vm-4-img", 4)
    for obj in rbd_clone("vms", "vm-4", pool.name, "vm-4-img", "os-images", "rhel9", scenario.RBD_SC):
        kube.create(obj)
    # As below: wait for the bytes written, which a refresh between clone and write has not seen yet.
    exporter.wait_for(lambda s: pick(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim="vm-4") == [4 * MiB],
                      what="vm-4 measured with its drift")
    kube.delete("PersistentVolumeClaim", "vm-4", "vms")
    exporter.wait_for(lambda s: not pick(s, "clonewatch_pvc_info", persistentvolumeclaim="vm-4"),
                      what="vm-4 gone")


def test_a_flattened_clone_no_longer_shares(exporter, kube, pool):
    """ceph-csi flattens a clone past its depth limit with `rbd flatten`: CDI still says csi-clone,
    the storage says it shares nothing any more, and the family pays its full size."""
    pool.clone("rhel9-img", "vm-5-img")
    pool.write("vm-5-img", 4)
    for obj in rbd_clone("vms", "vm-5", pool.name, "vm-5-img", "os-images", "rhel9", scenario.RBD_SC):
        kube.create(obj)
    # A refresh can read the clone between `rbd clone` and the write: wait for the bytes written,
    # not for the first figure.
    s = exporter.wait_for(lambda s: pick(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim="vm-5") == [4 * MiB],
                          what="vm-5 measured with its drift")
    assert one(s, "clonewatch_pvc_clone_sharing", persistentvolumeclaim="vm-5") == 1
    pool.rbd("flatten", "--no-progress", pool.spec("vm-5-img"))
    s = exporter.wait_for(lambda s: one(s, "clonewatch_pvc_clone_sharing", persistentvolumeclaim="vm-5") == 0,
                          what="vm-5 no longer sharing")
    assert one(s, "clonewatch_pvc_clone_unshared_info", persistentvolumeclaim="vm-5", reason="flattened") == 1
    assert one(s, "clonewatch_pvc_clone_depth", persistentvolumeclaim="vm-5") == 0
    got = one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim="vm-5")
    assert abs(got - scenario.GOLDEN_MIB * MiB) <= 0.02 * scenario.GOLDEN_MIB * MiB, got     # its full size now
    assert pick(s, "clonewatch_pvc_clone_info", persistentvolumeclaim="vm-5", clone_type="csi-clone") == [1], \
        "CDI's record is unchanged"
    for vm in scenario.DRIFT_MIB:
        assert one(s, "clonewatch_pvc_clone_sharing", persistentvolumeclaim=vm) == 1
    for vm in scenario.FULL:
        assert one(s, "clonewatch_pvc_clone_unshared_info", persistentvolumeclaim=vm, reason="flattened") == 1
    kube.delete("PersistentVolumeClaim", "vm-5", "vms")
    exporter.wait_for(lambda s: not pick(s, "clonewatch_pvc_info", persistentvolumeclaim="vm-5"), what="vm-5 gone")


def test_the_cdi_override_changes_what_is_expected(exporter, kube):
    """An admin forcing `copy` through the CDI CR: CDI's copies are then what was asked for, not fallbacks
    (a recorded fallback reason still counts); removing the override restores the StorageProfile's word."""
    from tests.support.objects import cdi_cr

    def state(s, vm):
        [labels] = [dict(ls) for (n, ls), _ in s.items()
                    if n == "clonewatch_pvc_clone_info" and dict(ls)["persistentvolumeclaim"] == vm]
        return (labels["expected_clone_type"], labels["expected_from"],
                one(s, "clonewatch_pvc_clone_fallback", persistentvolumeclaim=vm))

    s = exporter.samples()
    assert state(s, "win-2") == ("csi-clone", "storageprofile", 1)
    kube.create(cdi_cr("copy"))
    s = exporter.wait_for(lambda s: state(s, "win-2")[1] == "cdi-override", what="the override applied")
    assert state(s, "win-2") == ("copy", "cdi-override", 0)
    assert state(s, "win-1") == ("copy", "cdi-override", 1), "CDI recorded NoVolumeSnapshotClass: still a fallback"
    assert state(s, "vm-1") == ("copy", "cdi-override", 0)
    assert state(s, "vm-3")[1] == "storageprofile", "a CSI clone made without CDI is not CDI's to override"
    assert one(s, "clonewatch_storageclass_clone_strategy_info", storageclass=scenario.RBD_SC,
               expected_clone_type="copy") == 1
    kube.delete("CDI", "cdi")
    s = exporter.wait_for(lambda s: state(s, "win-2")[1] == "storageprofile", what="the override removed")
    assert state(s, "win-2") == ("csi-clone", "storageprofile", 1)
