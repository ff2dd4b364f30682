"""A real Prometheus server (Debian's `prometheus`) on 127.0.0.1 for end-to-end tests."""

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from tests.support.process import free_port


class Prometheus:
    def __init__(self, workdir: Path, jobs: dict[str, list[str]], rule_files: list[str],
                 external_labels: dict[str, str] | None = None, scrape_configs: list[dict] | None = None) -> None:
        binary = shutil.which("prometheus")
        assert binary, "Debian's prometheus is installed by scripts/setup.sh"
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s",
                             "external_labels": external_labels or {}},
                  "rule_files": rule_files,
                  "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}
                                     for job, targets in jobs.items()] + (scrape_configs or [])}
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen([binary, f"--config.file={workdir / 'prometheus.yml'}",
                                      f"--storage.tsdb.path={workdir / 'tsdb'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.workdir = workdir
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("prometheus did not become ready:\n" + (workdir / "prometheus.log").read_text()[-2000:])

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as err:
            return json.loads(err.read())

    def query(self, expr: str) -> dict:
        return self.api("query", query=expr)

    def alerts(self, state: str = "firing") -> list[dict]:
        """The alerts in `state` (firing or pending), each as the API gives it (labels, annotations, value)."""
        return [a for a in self.api("alerts")["data"]["alerts"] if a["state"] == state]

    def rule_health(self, timeout: float = 30) -> dict[str, tuple[str, str]]:
        """rule -> (health, last error) once every rule has been evaluated: "err" for a rule whose
        evaluation failed (a many-to-many join, say)."""
        deadline = time.monotonic() + timeout
        while True:
            health = {r["name"]: (r.get("health", "unknown"), r.get("lastError", ""))
                      for g in self.api("rules")["data"]["groups"] for r in g["rules"]}
            if all(h != "unknown" for h, _ in health.values()) or time.monotonic() > deadline:
                return health
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def rules_firing_after(source: Path, dest: Path, wait: str) -> Path:
    """A copy of the alert rules file `source` in which every alert's `for:` is `wait`, nothing else
    changed: a test sees the shipped expressions fire in seconds, not after their 1 to 30 minutes."""
    doc = yaml.safe_load(source.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = wait
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest
