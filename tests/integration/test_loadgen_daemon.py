"""`clonewatch-loadgen run` as a process: cycles on a schedule, metrics, retention, SIGTERM, adoption."""

import signal
import subprocess
import sys
import time
import urllib.request

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.process import ROOT, free_port


def start(tmp_path, images, port, interval="0.5s", max_age="0"):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "d", "backend": "qcow2", "qcow2": {"dir": str(images)}, "golden": {"size": "16MiB"},
        "groups": [{"name": "cow", "method": "clone", "count": 3}, {"name": "full", "method": "full-copy", "count": 1}],
        "drift": {"levels": ["1MiB"]}, "schedule": {"interval": interval},
        "retention": {"max_clones": 4, "max_age": max_age}}))
    log = open(tmp_path / f"loadgen-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "loadgen", "--log.format=json", "run", "--scenario", str(scenario),
                             f"--web.listen-address=127.0.0.1:{port}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    return proc


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def wait_for(port, pred, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            m = scrape(port)
            if pred(m):
                return m
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met")


def stop(proc):
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    return time.monotonic() - t


def test_daemon_cycles_retires_stops_and_adopts(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    foreign = images / "cwlg-d-cow-00500.qcow2"
    foreign.write_bytes(b"someone else's")
    port = free_port()
    proc = start(tmp_path, images, port, max_age="1s")
    try:
        m = wait_for(port, lambda m: m.get(("clonewatch_loadgen_clones_deleted_total", ()), 0) >= 2)
        assert m[("clonewatch_loadgen_clones_created_total", (("clone_type", "clone"),))] >= 3
        assert m[("clonewatch_loadgen_clone_duration_seconds_count", (("clone_type", "clone"),))] >= 3
        assert m[("clonewatch_loadgen_drift_bytes_written_total", ())] >= 3 * 2**20
        assert m[("clonewatch_loadgen_cycles_total", ())] >= 1
        assert 0.5 < m[("clonewatch_loadgen_efficiency_ratio", (("group", "cow"),))] < 1
        assert m[("clonewatch_loadgen_efficiency_ratio", (("group", "full"),))] < 0.01
        assert m[("clonewatch_loadgen_clone_failures_total", ())] == 0
    finally:
        took = stop(proc)
    assert proc.returncode == 0 and took < 5
    ours = sorted(p.name for p in images.glob("cwlg-*") if p != foreign)
    assert len(ours) <= 4

    # A restart (no age limit now) adopts what is there: no duplicates, numbering goes on.
    port2 = free_port()
    proc = start(tmp_path, images, port2, interval="0.3s")
    try:
        m = wait_for(port2, lambda m: m.get(("clonewatch_loadgen_cycles_total", ()), 0) >= 3)
        assert m[("clonewatch_loadgen_clones_alive", (("group", "cow"),))] == 3
        assert m[("clonewatch_loadgen_clones_alive", (("group", "full"),))] == 1
        created = sum(v for (n, _), v in m.items() if n == "clonewatch_loadgen_clones_created_total")
        assert created == 4 - len(ours), "only the missing clones are created"
    finally:
        stop(proc)
    assert foreign.read_bytes() == b"someone else's"
    assert len([p for p in images.glob("cwlg-*") if p != foreign]) == 4


def test_daemon_bad_scenario_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: d\nbackend: qcow2\nqcow2: {dir: /tmp/x}\ngroups: [{name: a, method: clone}]\n"
                   "retention: {max_clones: lots}\n")
    proc = subprocess.run([sys.executable, "-m", "loadgen", "run", "--scenario", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "retention.max_clones" in proc.stderr


def test_sigterm_in_the_middle_of_a_cycle(tmp_path):
    import json
    images = tmp_path / "images"
    scenario = tmp_path / "big.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "mid", "backend": "qcow2", "qcow2": {"dir": str(images)}, "golden": {"size": "256MiB"},
        "groups": [{"name": "cow", "method": "clone", "count": 6}], "drift": {"levels": ["200MiB"]},
        "schedule": {"interval": "1s"}, "concurrency": 1}))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "loadgen", "run", "--scenario", str(scenario),
                             f"--web.listen-address=127.0.0.1:{port}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    def drifting():                     # a clone has some of its 200 MiB of drift on disk
        return any(allocated(p) > 4 * 2**20 for p in images.glob("cwlg-mid-cow-*.qcow2"))
    deadline = time.monotonic() + 60
    while not drifting():               # creating and drifting: 6 clones x 200 MiB takes seconds
        assert time.monotonic() < deadline, "no clone was drifted"
        time.sleep(0.05)
    took = stop(proc)
    assert proc.returncode == 0 and took < 5
    manifest = json.loads((images / ".clonewatch-loadgen.json").read_text())["volumes"]
    on_disk = {p.name for p in images.glob("*.qcow2")}
    assert on_disk <= set(manifest), "nothing of ours is left without its ownership record"
    # The next start adopts them: the group is completed, not duplicated.
    port2 = free_port()
    proc = start_plain(scenario, port2)
    try:
        m = wait_for(port2, lambda m: m.get(("clonewatch_loadgen_cycles_total", ()), 0) >= 1, timeout=60)
        assert m[("clonewatch_loadgen_clones_alive", (("group", "cow"),))] == 6
    finally:
        stop(proc)
    assert len(list(images.glob("cwlg-mid-cow-*.qcow2"))) == 6


def allocated(path) -> int:
    try:
        return path.stat().st_blocks * 512
    except FileNotFoundError:           # retired meanwhile
        return 0


def start_plain(scenario, port):
    return subprocess.Popen([sys.executable, "-m", "loadgen", "run", "--scenario", str(scenario),
                             f"--web.listen-address=127.0.0.1:{port}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
