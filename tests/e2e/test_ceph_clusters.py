"""Two real Ceph clusters under one exporter, routed by each PV's clusterID as ceph-csi's config.json
maps clusterID to monitors. The second cluster runs with cephx on, and the exporter reads it with its
own read-only client (`mon 'profile rbd' osd 'profile rbd-read-only'`): everything is measured with
that key (live images, the trash, diffs), a write with it is refused, the key never reaches a log.
Then faults on that second cluster, which this module owns: a wrong key, an OSD paused, a pool
deleted. Each must show as backend_up 0 with no stale bytes within the timeout and recover without a
restart, while the first cluster keeps being measured."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e import scenario
from tests.support.ceph import Pool, ceph_conf
from tests.support.cephcsi import CephCsi
from tests.support.objects import ODF_RBD, pv_rbd, pvc, rbd_clone, storageclass, storageprofile
from tests.support.process import ExporterProcess, one, pick
from tests.support.sockets import unread

MiB = 2**20
ROOT = Path(__file__).resolve().parents[2]
B = "ceph-b"                 # the second cluster's clusterID; the first is "openshift-storage" (not configured)
TIMEOUT = 3                  # --rbd.timeout for this module


@pytest.fixture(scope="module")
def second_cluster():
    top = tempfile.mkdtemp(prefix="/tmp/cw2.")
    up = subprocess.run([str(ROOT / "scripts/ceph-cluster.sh"), "up", f"{top}/c", "rbd"], capture_output=True, text=True,
                        env=dict(os.environ, CEPH_AUTH="cephx"), timeout=300)
    assert up.returncode == 0, up.stderr[-2000:]
    yield up.stdout.strip()
    subprocess.run([str(ROOT / "scripts/ceph-cluster.sh"), "down", f"{top}/c"], capture_output=True, timeout=120)
    shutil.rmtree(top, ignore_errors=True)


def readonly_client(pool_b: Pool, directory: Path) -> str:
    """DIR for --ceph.clusters: a ceph.conf with only the monitors and cephx, and the read-only key."""
    conf = Path(pool_b.conf).read_text()
    mon_host = re.search(r"^mon host = (.+)$", conf, re.MULTILINE).group(1)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ceph.conf").write_text(f"[global]\nmon host = {mon_host}\nauth client required = cephx\n")
    keyring = pool_b.ceph("auth", "get-or-create", "client.clonewatch", "mon", "profile rbd",
                          "osd", "profile rbd-read-only")
    (directory / "keyring").write_text(keyring)
    return re.search(r"key = (\S+)", keyring).group(1)


@pytest.fixture(scope="module")
def estate(kube, second_cluster, tmp_path_factory):
    """The same pool name on both clusters; a golden with two PVC clones on each, different drift."""
    name = f"mc-{uuid.uuid4().hex[:8]}"
    pools = {"a": Pool(ceph_conf(), name=name), "b": Pool(second_cluster, name=name)}
    drift = {"a": (16, (4, 4)), "b": (32, (8, 12))}
    images: dict[str, dict[str, str]] = {}
    kube.create(storageclass(scenario.RBD_SC, ODF_RBD))
    kube.create(storageprofile(scenario.RBD_SC, "csi-clone"))
    for side, pool in pools.items():
        csi = CephCsi(pool)
        golden_mib, clone_mibs = drift[side]
        cluster_id = B if side == "b" else "openshift-storage"
        golden = csi.create_volume(golden_mib)
        images[side] = {"golden": golden}
        kube.create(pv_rbd(f"pv-golden-{side}", pool.name, golden, cluster_id=cluster_id))
        kube.create(pvc("os-images", f"golden-{side}", scenario.RBD_SC, volume=f"pv-golden-{side}"))
        for i, mib in enumerate(clone_mibs):
            vm = f"vm-{side}{i}"
            images[side][vm] = csi.clone_volume(golden, mib)
            for obj in rbd_clone("vms", vm, pool.name, images[side][vm], "os-images", f"golden-{side}", scenario.RBD_SC,
                                 cluster_id=cluster_id):
                kube.create(obj)
    tmp = tmp_path_factory.mktemp("clusters")
    key = readonly_client(pools["b"], tmp / "b")
    yield pools, images, tmp, key
    for pool in pools.values():
        pool.remove()


def start(kube, estate, name: str) -> ExporterProcess:
    pools, _images, tmp, _key = estate
    proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / f'{name}.kubeconfig')}",
                            f"--ceph.conf={pools['a'].conf}", f"--ceph.clusters={B}={tmp / 'b'}",
                            f"--rbd.timeout={TIMEOUT}", "--rbd.refresh-interval=0.5", "--rbd.client=librbd",
                            "--kubernetes.read-timeout=5"], tmp / f"{name}.log")
    proc.wait_ready()
    return proc


def measured(s, pool: str) -> bool:
    return len(pick(s, "clonewatch_pvc_consumed_bytes", namespace="vms")) == 4 \
        and pick(s, "clonewatch_backend_up", target=f"{B}:{pool}") == [1]


def test_each_pv_is_measured_on_its_own_cluster_with_a_read_only_key(kube, estate):
    pools, images, tmp, key = estate
    name = pools["a"].name
    proc = start(kube, estate, "routing")
    try:
        s = proc.wait_for(lambda s: measured(s, name), timeout=60, what="both clusters measured")
        assert one(s, "clonewatch_backend_up", target=name) == 1          # the default cluster keeps today's names
        assert one(s, "clonewatch_pvc_consumed_bytes", namespace="vms", persistentvolumeclaim="vm-a0") == 4 * MiB
        assert one(s, "clonewatch_pvc_consumed_bytes", namespace="vms", persistentvolumeclaim="vm-b0") == 8 * MiB
        assert one(s, "clonewatch_pvc_consumed_bytes", namespace="vms", persistentvolumeclaim="vm-b1") == 12 * MiB
        assert one(s, "clonewatch_volume_consumed_bytes", volume=f"{B}:{name}/{images['b']['golden']}") == 32 * MiB
        assert one(s, "clonewatch_volume_consumed_bytes", volume=f"{name}/{images['a']['golden']}") == 16 * MiB
        fam_a = dict(source_namespace="os-images", source_name="golden-a")
        fam_b = dict(source_namespace="os-images", source_name="golden-b")
        assert one(s, "clonewatch_source_consumed_bytes", **fam_a) == (16 + 4 + 4) * MiB
        assert one(s, "clonewatch_source_consumed_bytes", **fam_b) == (32 + 8 + 12) * MiB
        assert one(s, "clonewatch_source_full_copy_bytes", **fam_b) == (32 + 40 + 44) * MiB
        # Every live image of the second cluster as its own `rbd du` (admin key) counts it.
        du: dict[str, int] = {}
        for row in pools["b"].du()["images"]:
            du[row["name"]] = du.get(row["name"], 0) + row["used_size"]
        assert {n: one(s, "clonewatch_volume_consumed_bytes", volume=f"{B}:{name}/{n}") for n in du} == du
        # The exporter's key reads but cannot write.
        env = dict(os.environ, CEPH_CONF=str(tmp / "b" / "ceph.conf"))
        write = subprocess.run(["rbd", "--id", "clonewatch", "--keyring", str(tmp / "b" / "keyring"), "create",
                                "--size", "4M", f"{name}/intruder"], env=env, capture_output=True, text=True, timeout=60)
        assert write.returncode != 0 and "Operation not permitted" in write.stderr
        assert key not in proc.logs()
    finally:
        proc.stop()


def test_sigterm_while_a_ceph_call_hangs_ends_the_exporter_at_once(estate, second_cluster):
    """A stalled OSD holds a librbd call until Ceph's op timeout (60 s here); SIGTERM must not wait for it."""
    pools, _images, tmp, _key = estate
    proc = ExporterProcess(["--no-kubernetes.enabled", f"--ceph.clusters={B}={tmp / 'b'}",
                            f"--rbd.pools={B}:{pools['b'].name}", "--rbd.timeout=60", "--rbd.refresh-interval=0.5",
                            "--rbd.client=librbd"], tmp / "hang.log")
    proc.wait_ready()
    osd = int((Path(second_cluster).parent / "run" / "osd.0.pid").read_text())
    os.kill(osd, signal.SIGSTOP)
    try:
        wait_stuck(proc, osd)
        took = proc.stop(timeout=10)
    finally:
        os.kill(osd, signal.SIGCONT)
    assert took < 5, f"took {took:.1f}s"
    assert proc.proc.returncode == 0 and '"stopped"' in proc.logs()
    print(f"\nSIGTERM with a librbd call stuck on a paused OSD: exited in {took:.2f}s")


def wait_stuck(proc, osd: int, timeout: float = 30) -> None:
    """Until a request of the exporter sits unread at the paused OSD: a refresh is stuck on it."""
    deadline = time.monotonic() + timeout
    while not unread(osd, proc.proc.pid):
        assert time.monotonic() < deadline, f"no request of the exporter reached the paused OSD in {timeout}s"
        time.sleep(0.1)


def wait_down(proc, target: str, what: str) -> tuple[dict, float]:
    t0 = time.monotonic()
    proc.wait_for(lambda s: pick(s, "clonewatch_backend_up", target=target) == [0], timeout=TIMEOUT * 10, what=what)
    shown = time.monotonic() - t0
    # `up` is read at scrape time, the bytes by the next rebuild (debounced): a scrape between the two
    # may show both, on a loaded machine for a while. Its bytes must be gone soon after, and stay gone.
    s = proc.wait_for(lambda s: pick(s, "clonewatch_backend_up", target=target) == [0]
                      and not pick(s, "clonewatch_volume_consumed_bytes", target=target), timeout=10,
                      what=f"{what}: its bytes dropped by the next rebuild")
    return s, shown


def wait_up(proc, target: str, what: str) -> tuple[dict, float]:
    t0 = time.monotonic()
    s = proc.wait_for(lambda s: pick(s, "clonewatch_backend_up", target=target) == [1]
                      and pick(s, "clonewatch_volume_consumed_bytes", target=target), timeout=120, what=what)
    return s, time.monotonic() - t0


def resources(proc) -> tuple[int, int]:
    """(threads, sockets) of the exporter process."""
    pid = proc.proc.pid
    threads = len(os.listdir(f"/proc/{pid}/task"))
    sockets = sum(1 for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"))
    return threads, sockets


def steady_resources(proc, refreshes: int = 4, timeout: float = 60) -> tuple[int, int]:
    """resources() once they stayed the same over `refreshes` refresh intervals in a row (the
    connections and thread pools a refresh makes are all there)."""
    deadline = time.monotonic() + timeout
    seen = [resources(proc)]
    while len(seen) <= refreshes or len(set(seen[-refreshes - 1:])) > 1:
        assert time.monotonic() < deadline, f"threads and sockets never settled: {seen[-8:]}"
        time.sleep(0.5)                          # --rbd.refresh-interval
        seen.append(resources(proc))
    return seen[-1]


def failures(s, target: str) -> float:
    return one(s, "clonewatch_backend_refresh_failures_total", target=target)


def test_faults_on_the_second_cluster_show_fast_and_heal_without_a_restart(kube, estate, second_cluster):
    pools, _images, tmp, key = estate
    name = pools["a"].name
    target = f"{B}:{name}"
    proc = start(kube, estate, "faults")
    report = []
    try:
        proc.wait_for(lambda s: measured(s, name), timeout=60, what="both clusters measured")
        baseline = steady_resources(proc)

        # 1. A wrong key (the Secret rotated badly): down, clear error, the key never logged; put the
        #    right one back and it recovers on the next connection.
        good = (tmp / "b" / "keyring").read_text()
        wrong = subprocess.run(["ceph-authtool", "--gen-print-key"], capture_output=True, text=True).stdout.strip()
        (tmp / "b" / "keyring").write_text(good.replace(key, wrong))
        # A kept connection stays authenticated: the wrong key matters when it reconnects, which a
        # paused OSD forces below; here, force it by stopping the OSD briefly.
        osd = int((Path(second_cluster).parent / "run" / "osd.0.pid").read_text())
        os.kill(osd, signal.SIGSTOP)
        try:
            s, shown = wait_down(proc, target, "down while the OSD is paused")
        finally:
            os.kill(osd, signal.SIGCONT)
        report.append(f"OSD paused: down after {shown:.1f}s")
        assert not pick(s, "clonewatch_volume_consumed_bytes", target=target), "no stale bytes"
        assert one(s, "clonewatch_backend_up", target=name) == 1, "the other cluster is unaffected"
        proc.wait_for(lambda _s: "permission denied" in proc.logs(), timeout=TIMEOUT * 10, what="the auth error logged")
        assert wrong not in proc.logs() and key not in proc.logs()
        assert one(proc.samples(), "clonewatch_backend_up", target=target) == 0, "the wrong key keeps it down"
        (tmp / "b" / "keyring").write_text(good)
        _s, healed = wait_up(proc, target, "back with the right key")
        report.append(f"wrong key: back {healed:.1f}s after the right key")

        # 2. An OSD paused mid-refresh, then resumed: down within the timeout, back without a restart.
        os.kill(osd, signal.SIGSTOP)
        try:
            s, shown = wait_down(proc, target, "down while the OSD is paused")
            assert not pick(s, "clonewatch_volume_consumed_bytes", target=target)
        finally:
            os.kill(osd, signal.SIGCONT)
        _s, healed = wait_up(proc, target, "back after SIGCONT")
        report.append(f"OSD paused: down after {shown:.1f}s, back {healed:.1f}s after SIGCONT")

        # 3. The pool deleted under the exporter: down with the reason, the first cluster's same-named
        #    pool still measured.
        pools["b"].remove()
        s, shown = wait_down(proc, target, "down once its pool is gone")
        assert not pick(s, "clonewatch_volume_consumed_bytes", target=target)
        assert pick(s, "clonewatch_volume_consumed_bytes", target=name)
        proc.wait_for(lambda _s: "does not exist" in proc.logs(), what="the reason logged")
        report.append(f"pool deleted: down after {shown:.1f}s")

        # Leaks show over refreshes: count after a few more of them have failed on the missing pool.
        gone = failures(s, target)
        proc.wait_for(lambda s: failures(s, target) >= gone + 4, what="four more failed refreshes")
        threads, sockets = resources(proc)
        assert threads <= baseline[0] + 2, f"threads {baseline[0]} -> {threads}"
        assert sockets <= baseline[1] + 4, f"sockets {baseline[1]} -> {sockets}"
        assert proc.proc.poll() is None
        report.append(f"threads {baseline[0]} -> {threads}, sockets {baseline[1]} -> {sockets}")
    finally:
        proc.stop()
        print("\n" + "\n".join(report))
