"""A real Prometheus scrapes secured endpoints from generated web.config.yml files: the exporter over
TLS with a client certificate, the exporter again with basic auth, and the loadgen daemon with TLS
and basic auth. Each target must be `up`, and a job without credentials must be down with 401."""

import subprocess
import sys
import time

import bcrypt
import yaml

from tests.support.pki import Pki
from tests.support.process import ROOT, ExporterProcess, free_port
from tests.support.prometheus import Prometheus

PASSWORD = "scrape-pass-7f3a"


def web_config(path, tls=None, users=None, ca=None):
    doc = {}
    if tls:
        doc["tls_server_config"] = {"cert_file": str(tls[0]), "key_file": str(tls[1])}
        if ca:
            doc["tls_server_config"] |= {"client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(ca)}
    if users:
        doc["basic_auth_users"] = users
    path.write_text(yaml.safe_dump(doc))
    return path


def targets(prom, job):
    data = prom.api("targets")["data"]["activeTargets"]
    return [t for t in data if t["labels"]["job"] == job]


def wait_health(prom, want: dict[str, str], timeout=30):
    deadline = time.monotonic() + timeout
    seen = {}
    while time.monotonic() < deadline:
        seen = {job: (targets(prom, job) or [{}])[0].get("health", "") for job in want}
        if seen == want:
            return {job: targets(prom, job)[0] for job in want}
        time.sleep(0.5)
    raise AssertionError(f"target health {seen}, wanted {want}; {prom.api('targets')}")


def test_prometheus_scrapes_over_tls_client_certs_and_basic_auth(tmp_path):
    pki = Pki(tmp_path / "pki")
    server = pki.issue("server", "127.0.0.1", "IP:127.0.0.1")
    client = pki.issue("prometheus", "prometheus", "DNS:prometheus", client=True)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    (tmp_path / "password").write_text(PASSWORD)
    (tmp_path / "qcow2").mkdir()
    native = ["--no-kubernetes.enabled", "--no-rbd.enabled", f"--qcow2.dirs={tmp_path / 'qcow2'}"]
    mtls = ExporterProcess([*native, f"--web.config.file={web_config(tmp_path / 'mtls.yml', server, ca=pki.ca_cert)}"],
                           tmp_path / "mtls.log")
    basic = ExporterProcess([*native, f"--web.config.file={web_config(tmp_path / 'basic.yml', server, {'prometheus': hashed})}"],
                            tmp_path / "basic.log")
    lg_port = free_port()
    scenario = tmp_path / "lg.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "sec", "backend": "qcow2", "qcow2": {"dir": str(tmp_path / "lg")}, "golden": {"size": "8MiB"},
        "groups": [{"name": "cow", "method": "clone", "count": 1}], "schedule": {"interval": "1h"}}))
    lg_log = open(tmp_path / "loadgen.log", "wb")
    loadgen = subprocess.Popen([sys.executable, "-m", "loadgen", "--log.format=json", "run", "--scenario", str(scenario),
                                f"--web.listen-address=127.0.0.1:{lg_port}",
                                f"--web.config.file={web_config(tmp_path / 'lg.yml', server, {'prometheus': hashed})}"],
                               cwd=ROOT, stdout=lg_log, stderr=subprocess.STDOUT)
    tls = {"ca_file": str(pki.ca_cert), "server_name": "127.0.0.1"}
    basic_auth = {"username": "prometheus", "password_file": str(tmp_path / "password")}
    prom = None
    try:
        prom = Prometheus(tmp_path / "prom", {}, [], scrape_configs=[
            {"job_name": "mtls", "scheme": "https", "static_configs": [{"targets": [f"127.0.0.1:{mtls.port}"]}],
             "tls_config": {**tls, "cert_file": str(client[0]), "key_file": str(client[1])}},
            {"job_name": "basic", "scheme": "https", "static_configs": [{"targets": [f"127.0.0.1:{basic.port}"]}],
             "tls_config": tls, "basic_auth": basic_auth},
            {"job_name": "loadgen", "scheme": "https", "static_configs": [{"targets": [f"127.0.0.1:{lg_port}"]}],
             "tls_config": tls, "basic_auth": basic_auth},
            {"job_name": "no-credentials", "scheme": "https", "static_configs": [{"targets": [f"127.0.0.1:{basic.port}"]}],
             "tls_config": tls},
            {"job_name": "no-client-cert", "scheme": "https", "static_configs": [{"targets": [f"127.0.0.1:{mtls.port}"]}],
             "tls_config": tls}])
        seen = wait_health(prom, {"mtls": "up", "basic": "up", "loadgen": "up", "no-credentials": "down",
                                  "no-client-cert": "down"})
        # Match Prometheus's whole phrase: a bare "401" also matches a random port such as 34015.
        assert "HTTP status 401" in seen["no-credentials"]["lastError"]
        # TLS 1.3: the server judges the client certificate after the client's handshake, so Go sees EOF.
        assert seen["no-client-cert"]["lastError"] and "HTTP status" not in seen["no-client-cert"]["lastError"]
        result = prom.query('clonewatch_build_info{job=~"mtls|basic"}')["data"]["result"]
        assert {r["metric"]["job"] for r in result} == {"mtls", "basic"}
        # The refused scrapes are counted where they were refused, and Prometheus sees the count.
        deadline = time.monotonic() + 20
        while not prom.query('clonewatch_web_requests_refused_total{job="basic",code="401"} > 0')["data"]["result"]:
            assert time.monotonic() < deadline, "the no-credentials job's 401s never showed in the basic exporter's counter"
            time.sleep(0.5)
        # The alert's own expression finds that exporter (the no-credentials job is refused once a second).
        rules = yaml.safe_load((ROOT / "deploy/rules/clonewatch.rules.yml").read_text())
        expr = next(r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == "CloneWatchMetricsRequestsRefused")
        deadline = time.monotonic() + 20
        while not (firing := prom.query(expr)["data"]["result"]):
            assert time.monotonic() < deadline, "CloneWatchMetricsRequestsRefused's expression found nothing"
            time.sleep(0.5)
        assert [(r["metric"]["job"], r["metric"]["instance"]) for r in firing] == [("basic", f"127.0.0.1:{basic.port}")]
        codes = prom.query('clonewatch_loadgen_web_requests_refused_total{job="loadgen"}')["data"]["result"]
        assert sorted(r["metric"]["code"] for r in codes) == ["401", "403", "429", "503"]
        assert all(r["value"][1] == "0" for r in codes), codes
        for job, t in seen.items():
            print(f"\n{job}: {t['health']} {t['lastError'] or ''} (scrape {t['lastScrapeDuration'] * 1000:.1f} ms)")
        for log in ("basic.log", "loadgen.log"):
            assert PASSWORD not in (tmp_path / log).read_text() and hashed not in (tmp_path / log).read_text()
    finally:
        if prom:
            prom.stop()
        mtls.stop()
        basic.stop()
        loadgen.terminate()
        loadgen.wait(10)
        lg_log.close()
