"""Faults around the exporter process: a lying, failing, hanging or aborting rbd, no rbd at all, an
unreachable Kubernetes API, SIGTERM in the middle of a refresh. Never a crash, never stale bytes."""

import asyncio
import time
from pathlib import Path

import pytest

from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.backends.rbd.reader import CephCluster
from tests.support.objects import ODF_RBD, clone_annotations, datavolume, pv_rbd, pvc, storageclass
from tests.support.process import ExporterProcess, free_port, one, pick, running

FAULTY_RBD = Path(__file__).parent.parent / "support" / "rbd-faulty"
MiB = 2**20


@pytest.fixture(scope="module")
def small_scenario(kube, pool):
    pool.golden("gold", 16)
    pool.clone("gold", "vm-1-img")
    pool.write("vm-1-img", 4)
    ann = clone_annotations("csi-clone")
    for obj in (storageclass("rbd-sc", ODF_RBD), pv_rbd("pv-gold", pool.name, "gold", "16Mi", storageclass_name="rbd-sc"),
                pvc("img", "gold", "rbd-sc", volume="pv-gold", size="16Mi"),
                datavolume("vms", "vm-1", source={"pvc": {"namespace": "img", "name": "gold"}}, annotations=ann),
                pv_rbd("pv-vm-1", pool.name, "vm-1-img", "16Mi", storageclass_name="rbd-sc"),
                pvc("vms", "vm-1", "rbd-sc", volume="pv-vm-1", size="16Mi", owner_dv="vm-1", annotations=ann)):
        kube.create(obj)
    return pool


def start(kube, pool, tmp_path, *extra, fault="ok"):
    fault_file = tmp_path / "fault"
    fault_file.write_text(fault)
    proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp_path / 'kubeconfig')}",
                            f"--ceph.conf={pool.conf}", "--rbd.client=cli", f"--rbd.binary={FAULTY_RBD}", "--rbd.timeout=1",
                            "--rbd.refresh-interval=0.5", "--kubernetes.read-timeout=5", *extra],
                           tmp_path / "exporter.log", env={"CLONEWATCH_FAULT_FILE": str(fault_file)})
    return proc, fault_file


def measured(s):
    return bool(pick(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim="vm-1"))


def test_lying_failing_hanging_rbd_marks_backend_down_and_drops_bytes(small_scenario, kube, tmp_path):
    pool = small_scenario
    proc, fault = start(kube, pool, tmp_path)
    try:
        proc.wait_ready()
        s = proc.wait_for(measured, what="vm-1 measured")
        assert one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim="vm-1") == 4 * MiB
        for mode, log_words in (("garbage", "not JSON"), ("fail", "couldn't connect"),
                                ("hang", "no answer within 1s")):
            fault.write_text(mode)
            s = proc.wait_for(lambda s: one(s, "clonewatch_backend_up", target=pool.name) == 0,
                              what=f"backend down on {mode}")
            # Never stale, never invented: the byte series of that backend are gone.
            assert not measured(s)
            assert not pick(s, "clonewatch_volume_consumed_bytes", target=pool.name)
            assert not pick(s, "clonewatch_source_efficiency_ratio", source_name="gold")
            # Inventory and classification stay.
            assert one(s, "clonewatch_pvc_clone_fallback", persistentvolumeclaim="vm-1") == 0
            assert log_words in proc.logs()
            fault.write_text("ok")
            s = proc.wait_for(measured, what=f"recovery after {mode}")
            assert one(s, "clonewatch_backend_up", target=pool.name) == 1
        assert one(s, "clonewatch_backend_refresh_failures_total", target=pool.name) >= 3
        assert proc.proc.poll() is None
    finally:
        proc.stop()


def test_rbd_that_aborts_is_run_once_more_and_reported_by_its_assertion(small_scenario, tmp_path, monkeypatch):
    """The CLI aborted once in CI (exit -6, its last stderr line the end of Ceph's event dump). A
    crash is run again once; twice in a row, the error names the signal and the assertion."""
    pool = small_scenario
    fault = tmp_path / "fault"
    monkeypatch.setenv("CLONEWATCH_FAULT_FILE", str(fault))
    b = RbdBackend(RbdSettings(binary=str(FAULTY_RBD), pools=(pool.name,), default=CephCluster(conf=pool.conf)))
    state = lambda: b.states()[pool.name]  # noqa: E731

    fault.write_text("abort-once")
    asyncio.run(b.refresh())
    assert fault.read_text().strip() == "ok", "the double did not crash"
    assert state().up, state().error
    assert state().volumes[f"{pool.name}/vm-1-img"].consumed_bytes == 4 * MiB

    fault.write_text("abort")
    asyncio.run(b.refresh())
    assert not state().up and not state().volumes
    assert state().error.startswith(("rbd du: killed by SIGABRT: ", "rbd ls -l: killed by SIGABRT: "))
    assert state().error.endswith("FAILED ceph_assert(!image_watcher)")


def hanging(fault: Path, timeout: float = 30) -> list[int]:
    """Once rbd-faulty hangs: the pids of the rbd commands that do."""
    marker = fault.with_name(fault.name + ".hanging")
    deadline = time.monotonic() + timeout
    while not marker.exists() or not marker.read_text().strip():
        assert time.monotonic() < deadline, f"no rbd hung in {timeout}s"
        time.sleep(0.05)
    return [int(pid) for pid in marker.read_text().split()]


def test_sigterm_during_a_hanging_refresh_stops_quickly(small_scenario, kube, tmp_path):
    proc, fault = start(kube, small_scenario, tmp_path, "--rbd.timeout=30", fault="ok")
    try:
        proc.wait_ready()
        fault.write_text("hang")
        hanging(fault)                # a refresh is now waiting on the hanging rbd
    finally:
        took = proc.stop(timeout=5)
    assert proc.proc.returncode == 0 and took < 5
    assert '"stopped"' in proc.logs()
    assert not [pid for pid in hanging(fault) if running(pid)], "the hanging rbd was killed, not left behind"


def test_missing_rbd_binary(small_scenario, kube, tmp_path):
    proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp_path / 'kubeconfig')}",
                            "--rbd.client=cli", "--rbd.binary=/nonexistent/rbd", "--rbd.refresh-interval=1"], tmp_path / "log")
    try:
        proc.wait_ready()
        s = proc.wait_for(lambda s: pick(s, "clonewatch_backend_up", target=small_scenario.name), what="up metric")
        assert one(s, "clonewatch_backend_up", target=small_scenario.name) == 0
        assert not measured(s)
        assert "cannot start" in proc.logs()
    finally:
        proc.stop()


def test_unreachable_kubernetes_is_not_ready_but_serves(tmp_path):
    port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
current-context: c
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
""")
    proc = ExporterProcess([f"--kubeconfig={kubeconfig}", "--no-rbd.enabled", "--kubernetes.backoff-max=0.5"],
                           tmp_path / "log")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                status, body, _ = proc.get("/readyz")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 503 and b"not listed yet" in body
        s = proc.wait_for(lambda s: one(s, "clonewatch_kubernetes_watch_errors_total",
                                        resource="persistentvolumeclaims") >= 2, what="errors counted")
        assert one(s, "clonewatch_kubernetes_watch_healthy", resource="persistentvolumeclaims") == 0
        assert proc.proc.poll() is None
    finally:
        proc.stop()


def test_no_kubeconfig_at_all_exits_2_with_a_clear_message(tmp_path):
    env = {"KUBECONFIG": str(tmp_path / "missing"), "KUBERNETES_SERVICE_HOST": ""}
    proc = ExporterProcess([], tmp_path / "log", env=env)
    assert proc.proc.wait(20) == 2
    assert "kubeconfig" in proc.logs()


def test_native_mode_families_from_parent_chains(small_scenario, tmp_path):
    pool = small_scenario
    proc = ExporterProcess(["--no-kubernetes.enabled", f"--rbd.pools={pool.name}", f"--ceph.conf={pool.conf}"],
                           tmp_path / "log")
    try:
        proc.wait_ready()
        s = proc.samples()
        fam = dict(source_namespace="", source_name=f"{pool.name}/gold", backend="rbd")
        assert one(s, "clonewatch_source_clones", **fam) == 1
        assert one(s, "clonewatch_source_consumed_bytes", **fam) == 20 * MiB
        assert one(s, "clonewatch_source_full_copy_bytes", **fam) == 36 * MiB
        assert not pick(s, "clonewatch_pvc_info")
        assert not pick(s, "clonewatch_kubernetes_objects")
    finally:
        proc.stop()
