"""The exporter in-process: start, serve, stop cleanly (no tasks, no threads left) — also in the
middle of a refresh that hangs — and never put credentials in its logs or metrics."""

import asyncio
import subprocess
import threading
import time

import yaml

from exporter.cli import load
from exporter.runtime.exporter import Exporter
from tests.support.process import ROOT, ExporterProcess, free_port, running

FAULTY_RBD = ROOT / "tests" / "support" / "rbd-faulty"


async def test_start_and_stop_leave_nothing_running(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(d / "g.qcow2"), "8M"], check=True)
    exp = Exporter(load(["--no-kubernetes.enabled", "--no-rbd.enabled", f"--qcow2.dirs={d}",
                         "--qcow2.refresh-interval=0.1"]))
    threads = set(threading.enumerate())
    await exp.start()
    deadline = time.monotonic() + 10
    while exp.not_ready() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not exp.not_ready()
    assert b'clonewatch_volume_consumed_bytes{backend="qcow2"' in exp.scrape(False)
    await exp.stop()

    def left():        # threads the exporter started and that still run (the loop's executor's may stay)
        return set(threading.enumerate()) - threads - {t for t in threading.enumerate() if t.name.startswith("asyncio_")}
    deadline = time.monotonic() + 5
    while left() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not left()


async def test_stop_during_a_hanging_refresh_is_prompt(tmp_path, monkeypatch):
    fault, hanging = tmp_path / "fault", tmp_path / "fault.hanging"
    fault.write_text("hang")
    monkeypatch.setenv("CLONEWATCH_FAULT_FILE", str(fault))
    exp = Exporter(load(["--no-kubernetes.enabled", "--rbd.client=cli", f"--rbd.binary={FAULTY_RBD}", "--rbd.pools=p",
                         "--rbd.timeout=300"]))
    await exp.start()
    deadline = time.monotonic() + 10
    while not hanging.exists():          # until the refresh is reading from the hanging rbd
        assert time.monotonic() < deadline, "the refresh never waited on rbd"
        await asyncio.sleep(0.02)
    t = time.monotonic()
    await exp.stop()
    assert time.monotonic() - t < 5
    # By the pids it wrote: once it exec'd sleep, its command line no longer names the script.
    assert not [pid for pid in map(int, hanging.read_text().split()) if running(pid)], \
        "the hanging rbd was killed, not left behind"


def test_credentials_never_reach_logs_or_metrics(tmp_path):
    token = "sekret-bearer-token-8d1f0c"
    key = "AQBsekretCephKeyZZZZ=="
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    keyring = tmp_path / "keyring"
    keyring.write_text(f"[client.admin]\nkey = {key}\n")
    proc = ExporterProcess([f"--kubeconfig={kubeconfig}", f"--ceph.keyring={keyring}", "--ceph.id=admin",
                            "--rbd.pools=nopool", "--ceph.mon-host=127.0.0.1:1", "--rbd.timeout=2",
                            "--rbd.refresh-interval=0.5", "--kubernetes.backoff-max=0.5", "--log.level=debug"],
                           tmp_path / "log", env={"CEPH_ARGS": f"--key={key}"})
    try:
        proc.wait_for(lambda s: any(n == "clonewatch_kubernetes_watch_errors_total" and v >= 2 for (n, _), v in s.items())
                      and any(n == "clonewatch_backend_refresh_failures_total" and v >= 1 for (n, _), v in s.items()),
                      what="errors logged", timeout=40)
        metrics = proc.metrics_text()
    finally:
        proc.stop()
    logs = proc.logs()
    assert "kubernetes_watch_error" in logs and "backend_refresh_failed" in logs
    assert '"mmap_threshold_held": true' in logs          # main() holds glibc's threshold (tests/unit/test_heap.py)
    for secret in (token, key):
        assert secret not in logs and secret not in metrics
