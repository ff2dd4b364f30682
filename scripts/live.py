#!/usr/bin/env python3
"""The continuous half of clonewatch on this machine, no cluster needed: the exporter on a directory
of qcow2 images, the loadgen daemon cloning, drifting and retiring in it (examples/live-qcow2.yaml),
and a real Prometheus (Debian's) with the project's alerts and recording rules scraping both.

On a terminal it runs until Ctrl-C; otherwise (or with LIVE_SECONDS) for that long. Either way it
then prints, from Prometheus's HTTP API, each family's efficiency over time (start, min, max, end
and a sparkline), writes the same as live.json in the run directory, and stops all three processes.
Usage: scripts/live.sh [SCENARIO]   (env: LIVE_SECONDS, LIVE_PROMETHEUS_PORT, LIVE_DIR)
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BARS = "▁▂▃▄▅▆▇█"
LINKS = {
    "family efficiency": "clonewatch_source_efficiency_ratio",
    "consumed vs as full copies": "clonewatch_source_consumed_bytes or clonewatch_source_full_copy_bytes",
    "clone latency p90 by type": "histogram_quantile(0.9, sum by (le, clone_type) "
                                 "(rate(clonewatch_loadgen_clone_duration_seconds_bucket[1m])))",
    "drift written per second": "rate(clonewatch_loadgen_drift_bytes_written_total[1m])",
}


def free_port(preferred: int = 0) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def get(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    step = max(1, len(values) // 40)        # at most ~40 characters
    picked = values[::step]
    return "".join(BARS[0 if hi == lo else round((v - lo) / (hi - lo) * (len(BARS) - 1))] for v in picked)


class Live:
    def __init__(self, scenario: Path) -> None:
        # LIVE_DIR reuses a run directory: the daemon then adopts the clones the last run left.
        self.run = Path(os.environ["LIVE_DIR"]) if os.environ.get("LIVE_DIR") else \
            Path(tempfile.mkdtemp(prefix="clonewatch-live."))
        self.run.mkdir(parents=True, exist_ok=True)
        doc = yaml.safe_load(scenario.read_text())
        doc.setdefault("qcow2", {})["dir"] = str(self.run / "images")     # each run its own images
        self.scenario = self.run / "scenario.yaml"
        self.scenario.write_text(yaml.safe_dump(doc))
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports = {"exporter": free_port(), "loadgen": free_port(),
                      "prometheus": free_port(int(os.environ.get("LIVE_PROMETHEUS_PORT", "9090")))}

    def start(self) -> None:
        e, lg, p = self.ports["exporter"], self.ports["loadgen"], self.ports["prometheus"]
        (self.run / "images").mkdir(exist_ok=True)
        self._spawn("exporter", [PY, "-m", "exporter", "--no-kubernetes.enabled", "--no-rbd.enabled",
                                 f"--qcow2.dirs={self.run / 'images'}", "--qcow2.refresh-interval=1",
                                 f"--web.listen-address=127.0.0.1:{e}"])
        self._spawn("loadgen", [PY, "-m", "loadgen", "--log.format=json", "run", "--scenario", str(self.scenario),
                                f"--web.listen-address=127.0.0.1:{lg}"])
        config = {"global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
                  "rule_files": [str(ROOT / "deploy/rules/clonewatch.rules.yml"),
                                 str(ROOT / "deploy/rules/clonewatch.fleet.rules.yml")],
                  "scrape_configs": [{"job_name": "clonewatch-exporter", "static_configs": [{"targets": [f"127.0.0.1:{e}"]}]},
                                     {"job_name": "clonewatch-loadgen", "static_configs": [{"targets": [f"127.0.0.1:{lg}"]}]}]}
        (self.run / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = shutil.which("prometheus")
        if not prometheus:
            raise SystemExit("live: Debian's prometheus is missing (scripts/setup.sh installs it)")
        self._spawn("prometheus", [prometheus, f"--config.file={self.run / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={self.run / 'tsdb'}", f"--web.listen-address=127.0.0.1:{p}"])
        self._wait_ready(f"http://127.0.0.1:{p}/-/ready")
        self._wait_ready(f"http://127.0.0.1:{e}/readyz")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.run / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)     # our Ctrl-C is handled here, once

    def _wait_ready(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise SystemExit(f"live: {name} exited early; see {self.run / (name + '.log')}")
            try:
                urllib.request.urlopen(url, timeout=1).close()
                return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"live: {url} not ready in {timeout:.0f}s")

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params)
        return get(f"http://127.0.0.1:{self.ports['prometheus']}/api/v1/{path}?{query}")

    def links(self) -> list[str]:
        base = f"http://127.0.0.1:{self.ports['prometheus']}"
        out = [f"Prometheus: {base}"]
        for title, expr in LINKS.items():
            q = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": "15m"})
            out.append(f"  {title}: {base}/graph?{q}")
        return out

    def first_data(self, started: float, deadline: float) -> float | None:
        while time.monotonic() < deadline:
            if self.api("query", query="clonewatch_source_efficiency_ratio")["data"]["result"]:
                return time.monotonic() - started
            time.sleep(0.5)
        return None

    def report(self, since: float) -> dict:
        end = time.time()
        def series(expr: str, label: str) -> dict[str, list[float]]:
            res = self.api("query_range", query=expr, start=since, end=end, step=2)["data"]["result"]
            return {r["metric"].get(label, expr): [float(v) for _, v in r["values"]] for r in res}
        fams = series("clonewatch_source_efficiency_ratio", "source_name")
        groups = series("clonewatch_loadgen_efficiency_ratio", "group")
        scalars = {name: self.api("query", query=expr)["data"]["result"] for name, expr in (
            ("drift_bytes_written", "clonewatch_loadgen_drift_bytes_written_total"),
            ("clones_deleted", "clonewatch_loadgen_clones_deleted_total"),
            ("clones_alive", "sum(clonewatch_loadgen_clones_alive)"))}
        alive = next(iter(series("sum(clonewatch_loadgen_clones_alive)", "").values()), [])
        return {"run": str(self.run), "families": fams, "groups": groups, "alive_over_time": alive,
                **{k: float(v[0]["value"][1]) if v else None for k, v in scalars.items()}}

    def stop(self, sig: int = signal.SIGTERM) -> dict[str, int | None]:
        for name in ("loadgen", "exporter", "prometheus"):
            proc = self.procs.get(name)
            if proc and proc.poll() is None:
                proc.send_signal(sig)
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes


def table(rows: dict[str, list[float]], title: str) -> list[str]:
    out = [f"{title:<44} start  min    max    end    over time"]
    for name, vals in sorted(rows.items()):
        if vals:
            short = name if len(name) <= 44 else "…" + name[-43:]
            out.append(f"{short:<44} {vals[0]:.3f}  {min(vals):.3f}  {max(vals):.3f}  {vals[-1]:.3f}  {sparkline(vals)}")
    return out


def main() -> int:
    scenario = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "live-qcow2.yaml"
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and "LIVE_SECONDS" not in os.environ
    seconds = float(os.environ.get("LIVE_SECONDS", "120"))
    live = Live(scenario)
    stop = {"signal": 0}
    def on_signal(signum, _frame):
        stop["signal"] = signum
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    since = time.time()
    try:
        live.start()
        print(f"live: run directory {live.run}", flush=True)
        print("\n".join(live.links()), flush=True)
        first = live.first_data(started, started + 120)
        print(f"live: first data point after {first:.1f}s" if first is not None else "live: no data yet", flush=True)
        print("live: running until Ctrl-C" if interactive else f"live: running for {seconds:.0f}s", flush=True)
        while not stop["signal"] and (interactive or time.monotonic() - started < seconds):
            if any(p.poll() is not None for p in live.procs.values()):
                print("live: a process exited; see the logs in the run directory", file=sys.stderr)
                break
            time.sleep(0.5)
        summary = live.report(since)
        summary["first_data_seconds"] = first
        summary["wall_seconds"] = round(time.monotonic() - started, 1)
    finally:
        codes = live.stop()
    summary["exit_codes"] = codes
    (live.run / "live.json").write_text(json.dumps(summary, indent=1))
    print()
    print("\n".join(table(summary["families"], "family efficiency (exporter)")))
    print("\n".join(table(summary["groups"], "group efficiency (loadgen)")))
    print(f"\ndrift written: {(summary['drift_bytes_written'] or 0) / 2**20:.0f} MiB, clones retired: "
          f"{summary['clones_deleted'] or 0:.0f}; stopped: {codes}; details: {live.run / 'live.json'}")
    return 0 if all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
