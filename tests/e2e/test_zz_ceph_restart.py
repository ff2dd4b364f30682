"""Ceph restarted under a running exporter (the real local cluster): backend_up drops, the byte
series vanish instead of going stale, and both come back when the monitor does. Runs last among
the e2e modules; it leaves the cluster as healthy as it found it."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.process import ExporterProcess, one, pick

MiB = 2**20


def probe(pool) -> bool:
    env = dict(os.environ, CEPH_CONF=pool.conf)
    put = subprocess.run(["timeout", "10", "rados", "-p", pool.name, "put", "cw-probe", "-"], input=b"x", env=env,
                         capture_output=True)
    return put.returncode == 0


@pytest.fixture
def mon(pool):
    run_dir = Path(pool.conf).parent / "run"
    pid = int((run_dir / "mon.a.pid").read_text())
    yield pid
    # Whatever happened, leave a monitor running and the cluster answering.
    alive = subprocess.run(["pgrep", "-f", f"ceph-mon -c {pool.conf}"], capture_output=True).returncode == 0
    if not alive:
        subprocess.run(["ceph-mon", "-c", pool.conf, "-i", "a"], check=True, capture_output=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not probe(pool):
        time.sleep(1)
    assert probe(pool), "the cluster did not come back"


def test_monitor_restart_under_the_exporter(pool, mon, tmp_path):
    """With the rbd command every refresh connects anew and needs the monitor: the backend goes
    down, its bytes vanish, and both come back. Through librbd the connection is kept and the data
    path is the OSDs: the monitor's absence does not stop the measuring, and the numbers stay right."""
    pool.golden("rg", 16)
    pool.clone("rg", "rc")
    pool.write("rc", 4)
    args = ["--no-kubernetes.enabled", f"--rbd.pools={pool.name}", f"--ceph.conf={pool.conf}", "--rbd.timeout=3",
            "--rbd.refresh-interval=0.5"]
    cli = ExporterProcess([*args, "--rbd.client=cli"], tmp_path / "cli.log")
    lib = ExporterProcess([*args, "--rbd.client=librbd"], tmp_path / "librbd.log")
    try:
        vol = f"{pool.name}/rc"
        for proc in (cli, lib):
            proc.wait_ready()
            before = proc.wait_for(lambda s: pick(s, "clonewatch_volume_consumed_bytes", volume=vol), what="measured")
            assert one(before, "clonewatch_volume_consumed_bytes", volume=vol) == 4 * MiB
        refreshes = sum(pick(lib.samples(), "clonewatch_backend_volumes", target=pool.name))
        os.kill(mon, signal.SIGTERM)
        down = cli.wait_for(lambda s: one(s, "clonewatch_backend_up", target=pool.name) == 0, timeout=30,
                            what="backend down while the monitor is gone")
        assert not pick(down, "clonewatch_volume_consumed_bytes", target=pool.name), "no stale bytes"
        assert not pick(down, "clonewatch_source_consumed_bytes", source_name=f"{pool.name}/rg")
        still = lib.samples()
        assert one(still, "clonewatch_backend_up", target=pool.name) == 1 and refreshes
        assert one(still, "clonewatch_volume_consumed_bytes", volume=vol) == 4 * MiB
        subprocess.run(["ceph-mon", "-c", pool.conf, "-i", "a"], check=True, capture_output=True)
        up = cli.wait_for(lambda s: one(s, "clonewatch_backend_up", target=pool.name) == 1, timeout=120,
                          what="backend back with the monitor")
        assert one(up, "clonewatch_volume_consumed_bytes", volume=vol) == 4 * MiB
        assert cli.proc.poll() is None and lib.proc.poll() is None
        assert "no answer within 3s" in cli.logs() or "exit" in cli.logs()
        assert "backend_recovered" in cli.logs()
        assert one(lib.samples(), "clonewatch_volume_consumed_bytes", volume=vol) == 4 * MiB
    finally:
        cli.stop()
        lib.stop()
