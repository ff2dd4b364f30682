"""scripts/live.sh as a user runs it, on a fast schedule: the exporter, the loadgen daemon and a real
Prometheus for about two minutes. Efficiency falls as drift accrues and steps back up when old clones
are replaced; clones alive stay within retention; every byte written is accounted for; Ctrl-C and
SIGTERM stop all three cleanly and leave only owned files, which the next start adopts."""

import json
import os
import signal
import subprocess
import threading
import time
from itertools import pairwise
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = yaml.safe_load((ROOT / "examples" / "live-qcow2.yaml").read_text())


def _run(run_dir: Path, seconds: float, sig: int) -> dict:
    """live.sh until it says it is running (all three up, Prometheus holding a first data point), then
    `seconds` of the fleet's life, then `sig`."""
    env = {**os.environ, "LIVE_DIR": str(run_dir), "LIVE_SECONDS": "3600", "LIVE_PROMETHEUS_PORT": "0"}
    proc = subprocess.Popen(["scripts/live.sh"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while not any(line.startswith("live: running") for line in list(lines)):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
        time.sleep(0.2)
    time.sleep(seconds)
    proc.send_signal(sig)                 # what Ctrl-C (SIGINT) or a service manager (SIGTERM) does
    proc.wait(timeout=60)
    reader.join(10)
    out = "".join(lines)
    assert proc.returncode == 0, out
    return {"out": out, **json.loads((run_dir / "live.json").read_text())}


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_a_living_fleet_over_two_minutes_then_a_restart(tmp_path):
    run = tmp_path / "live"
    first = _run(run, 90, signal.SIGINT)
    assert first["exit_codes"] == {"exporter": 0, "loadgen": 0, "prometheus": 0}
    assert first["first_data_seconds"] is not None and first["first_data_seconds"] < 30
    [family] = first["families"].values()
    falls = [b - a for a, b in pairwise(family) if b < a]
    rises = [b - a for a, b in pairwise(family) if b > a]
    assert len(falls) >= 10, "efficiency falls as drift keeps coming"
    assert max(rises, default=0) > 0.05, "and steps back up when old clones are replaced"
    assert min(family) < family[0] - 0.1
    limit = SCENARIO["retention"]["max_clones"]
    assert first["alive_over_time"] and max(first["alive_over_time"]) <= limit
    assert "family efficiency (exporter)" in first["out"] and "▁" in first["out"]
    # Every byte the daemon wrote: the clones alive at the end (their ownership record) plus the retired ones.
    log = _log(run / "loadgen.log")
    [stopped] = [e for e in log if e.get("event") == "loadgen_stopped"]
    retired = sum(e["drift_bytes"] for e in log if e.get("event") == "clone_retired")
    manifest = json.loads((run / "images" / ".clonewatch-loadgen.json").read_text())
    alive = sum(r.get("drift_bytes", 0) for r in manifest["volumes"].values() if r.get("role") == "clone")
    assert stopped["drift_bytes_written"] == retired + alive > 0
    assert first["drift_bytes_written"] <= stopped["drift_bytes_written"], "Prometheus saw the counter grow"
    assert first["clones_deleted"] >= 6, "old clones were retired"
    # Only our files are left, and every one of them carries our mark ...
    on_disk = {p.name for p in (run / "images").iterdir() if not p.name.startswith(".")}
    marked = {Path(k).name for k in manifest["volumes"]}
    assert on_disk and on_disk <= marked
    # ... so the next start adopts them; this time stopped with SIGTERM.
    second = _run(run, 0, signal.SIGTERM)
    assert second["exit_codes"] == {"exporter": 0, "loadgen": 0, "prometheus": 0}
    adopted = [e for e in _log(run / "loadgen.log") if e.get("event") == "adopted"]
    assert adopted and adopted[-1]["clones"] == stopped["clones_alive"]
