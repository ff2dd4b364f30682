"""An attacker without credentials must never lock Prometheus out. Each daemon runs as a process;
a legitimate client scrapes every 60 s, as the shipped ServiceMonitor does, through three scrapes
while four clients (tests/support/flood.py) send made-up credentials as fast as it answers:

- the exporter with TLS and bcrypt basic auth: random user names and passwords (every other one
  with the real user name). After the first scrape under the flood the daemon is started again
  (a new process, as after a restart or a password change) with the flood moving to it as it comes
  up, and Prometheus's first scrape of it, credentials never checked there, is 200 at once;
- the loadgen daemon, the same way: it serves through the same guard;
- the exporter with --web.authorization=kubernetes against the emulator's TokenReview,
  SubjectAccessReview and service-account keys: random bearer tokens and forged service-account
  JWTs. The reviews the API server receives stay within the review budget, Prometheus's token
  keeps its 200 across its 60 s allowance, and after the first scrape under the flood it is
  rotated (a new bound token, as the kubelet gets one) and the next scrape with it is 200.

Real time matters here (the 60 s interval, the 60 s allowance; a verdict cache shared with the
refusals was pushed out after ~51 s of the bcrypt budget), so one module fixture runs every
selected scenario at once and each test waits for its own: about 3.5 minutes in all.
"""

import base64
import ssl
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import pytest
import yaml

from exporter.http.kube_authz import ALLOWED_TTL, KEYS_RETRY, REVIEWS_PER_SECOND
from exporter.http.serve import BCRYPT_PER_SECOND
from tests.support.flood import STATUSES, Flood
from tests.support.kube import KubeAPI
from tests.support.pki import Pki
from tests.support.process import ROOT, ExporterProcess, free_port

INTERVAL = 60.0                 # the ServiceMonitor's (deploy/overlays/openshift/exporter-odf/metrics-tls.yaml)
SCRAPES = 3                     # legitimate scrapes under the flood
QUIET = 5                       # legitimate scrapes before it, once the credentials are known
TOGETHER = 180.0                # seconds a scenario waits for the others to be ready (a loadgen makes its golden)
PASSWORD = "right-password-5e1d"
# bcrypt's cost does not decide anything here (the budget does, 5 a second): a cheap hash keeps
# the budget, not the shared test machine's CPU, the limit on the flood's checks.
ROUNDS = 4
PROM_USER = "system:serviceaccount:openshift-monitoring:prometheus-k8s"


class LoadgenProcess(ExporterProcess):
    """`clonewatch-loadgen run` with ExporterProcess's requests, logs and stop; ready on /healthz."""

    def __init__(self, scenario: Path, web_config: Path, log_path: Path, tls) -> None:
        self.tls, self.headers = tls, {}
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loadgen", "--log.format=json", "run", "--scenario", str(scenario),
             f"--web.listen-address=127.0.0.1:{self.port}", f"--web.config.file={web_config}"],
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        ExporterProcess.started.add(self)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"loadgen exited with {self.proc.returncode}:\n{self.logs()}"
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"loadgen not serving after {timeout}s:\n{self.logs()}")


@dataclass
class Outcome:
    quiet: list[float] = field(default_factory=list)               # seconds, credentials known
    scrapes: list[tuple[int, float]] = field(default_factory=list)  # (status, seconds) under the flood
    flood: dict[int, int] = field(default_factory=dict)            # the flood's answers by status
    seconds: float = 0.0                                           # how long the flood ran
    refused: dict[str, float] = field(default_factory=dict)        # the daemon's refused counter by code
    reviews: dict[str, int] = field(default_factory=dict)          # API requests received during the flood
    prometheus_reviews: int = 0                                    # of which for Prometheus's tokens
    renewals: int = 0                          # of which for its first token, allowed before the flood
    first: tuple[int, float] | None = None     # Prometheus's first scrape of the daemon started during the flood
    flood_before_first: dict[int, int] = field(default_factory=dict)   # the new daemon's answers to the flood by then
    keys_fetched: int = 0                      # GETs of the service-account keys during the flood

    def figures(self, what: str) -> str:
        loud = [t for _, t in self.scrapes]
        return (f"\n{what}: scrape quiet median {statistics.median(self.quiet) * 1000:.1f} ms, max "
                f"{max(self.quiet) * 1000:.1f} ms; under the flood median {statistics.median(loud) * 1000:.1f} ms, "
                f"max {max(loud) * 1000:.1f} ms ({len(loud)} scrapes {INTERVAL:.0f} s apart); the flood: "
                f"{sum(self.flood.values())} requests in {self.seconds:.0f} s, "
                + ", ".join(f"{n} {code or 'other'}" for code, n in self.flood.items() if n)
                + (f"; first scrape of the daemon started during the flood: {self.first[0]} in "
                   f"{self.first[1] * 1000:.1f} ms, after it had answered the flood "
                   + ", ".join(f"{n} {code or 'other'}" for code, n in self.flood_before_first.items() if n)
                   if self.first else ""))


def timed(proc: ExporterProcess, headers: dict) -> tuple[int, float]:
    t = time.perf_counter()
    status = proc.get("/metrics", headers)[0]
    return status, time.perf_counter() - t


def refused(proc: ExporterProcess, headers: dict, prefix: str) -> dict[str, float]:
    samples = {}
    for line in proc.get("/metrics", headers)[1].decode().splitlines():
        if line.startswith(f"{prefix}_web_requests_refused_total{{"):
            samples[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    return samples


def under_flood(proc: ExporterProcess, headers: dict, flood_kind: str, together: threading.Barrier, ca: str = "",
                user: str = "", kid: str = "", before=None, after=None, restart=None, rotate=None) -> Outcome:
    """One scrape that pays for the credentials, QUIET more, then SCRAPES more INTERVAL apart while
    the flood runs. Every scenario takes its quiet figures at once, and starts its flood only when
    all have (`together`), so nothing floods while any quiet figure is taken. before() is called
    just before this flood starts, after(outcome) once it has stopped. After the first scrape under
    the flood, restart(proc, flood, outcome) starts the daemon again and returns the new one (and
    the flood that now floods it); rotate() returns Prometheus's headers with a new token."""
    out = Outcome()
    first = timed(proc, headers)
    assert first[0] == 200, f"the first scrape, before any flood: {first[0]}"
    together.wait(TOGETHER)
    for _ in range(QUIET):
        status, took = timed(proc, headers)
        assert status == 200
        out.quiet.append(took)
    together.wait(TOGETHER)
    if before:
        before()
    floods = [Flood(proc.port, flood_kind, user=user, ca=ca, kid=kid)]
    start = time.monotonic()
    try:
        while sum(floods[0].counts().values()) < 100:            # the flood is under way
            assert time.monotonic() - start < 60, f"the flood did not start: {floods[0].counts()}"
            time.sleep(0.1)
        for n in range(1, SCRAPES + 1):
            time.sleep(max(0.0, start + n * INTERVAL - time.monotonic()))
            out.scrapes.append(timed(proc, headers))
            if n == 1 and restart is not None:
                proc, flood = restart(proc, floods[-1], out)
                floods.append(flood)
            if n == 1 and rotate is not None:
                headers = rotate()
    finally:
        out.flood = dict.fromkeys(STATUSES, 0)
        for flood in floods:
            for code, count in flood.stop().items():
                out.flood[code] += count
        out.seconds = time.monotonic() - start
    if after:
        after(out)
    return out


def first_scrape_under_flood(proc: ExporterProcess, old: ExporterProcess, old_flood: Flood, headers: dict,
                             prefix: str, kind: str, user: str, ca: str, out: Outcome) -> Flood:
    """The attacker floods `proc` from the moment it listens (its own flood, so its answers are its
    own), the old daemon is stopped once its flood is, and Prometheus's first scrape comes when
    the new daemon is ready and has refused the flood many times over."""
    flood = Flood(proc.port, kind, user=user, ca=ca)
    old_flood.stop()
    for code, count in refused(old, headers, prefix).items():   # a pair it verified: a look-up
        out.refused[code] = out.refused.get(code, 0) + count
    old.stop()
    proc.wait_ready()
    t = time.monotonic()
    while flood.counts()[429] < 200:
        assert time.monotonic() - t < 60, f"the flood did not reach the new daemon: {flood.counts()}"
        time.sleep(0.05)
    out.flood_before_first = flood.counts()
    out.first = timed(proc, headers)
    return flood


def _basic(daemon, tmp_path: Path, together: threading.Barrier) -> Outcome:
    pki = Pki(tmp_path / "pki")
    cert, key = pki.issue("server", "127.0.0.1", "IP:127.0.0.1")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=ROUNDS)).decode()
    config = tmp_path / "web.yml"
    config.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                                      "basic_auth_users": {"prometheus": hashed}}))
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    procs = [daemon(tmp_path, config, ctx)]
    auth = {"Authorization": "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()}
    prefix = "clonewatch_loadgen" if isinstance(procs[0], LoadgenProcess) else "clonewatch"

    def restart(old: ExporterProcess, old_flood: Flood, out: Outcome) -> tuple[ExporterProcess, Flood]:
        (tmp_path / "restarted").mkdir()
        procs.append(daemon(tmp_path / "restarted", config, ctx))
        flood = first_scrape_under_flood(procs[-1], old, old_flood, auth, prefix, "basic", "prometheus",
                                         str(pki.ca_cert), out)
        return procs[-1], flood

    try:
        procs[0].wait_ready()
        out = under_flood(procs[0], auth, "basic", together, ca=str(pki.ca_cert), user="prometheus", restart=restart)
        for code, count in refused(procs[-1], auth, prefix).items():
            out.refused[code] = out.refused.get(code, 0) + count
        for proc in procs:
            assert PASSWORD not in proc.logs() and hashed not in proc.logs()
        return out
    finally:
        for proc in procs:
            proc.stop()


def exporter_basic(tmp_path: Path, together: threading.Barrier) -> Outcome:
    def start(tmp: Path, config: Path, ctx) -> ExporterProcess:
        (tmp / "qcow2").mkdir()
        return ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled", f"--qcow2.dirs={tmp / 'qcow2'}",
                                f"--web.config.file={config}"], tmp / "exporter.log", tls=ctx)
    return _basic(start, tmp_path, together)


def loadgen_basic(tmp_path: Path, together: threading.Barrier) -> Outcome:
    def start(tmp: Path, config: Path, ctx) -> LoadgenProcess:
        scenario = tmp / "scenario.yaml"
        scenario.write_text(yaml.safe_dump({
            "name": "flood", "backend": "qcow2", "qcow2": {"dir": str(tmp / "images")}, "golden": {"size": "8MiB"},
            "groups": [{"name": "cow", "method": "clone", "count": 1}], "schedule": {"interval": "1h"}}))
        return LoadgenProcess(scenario, config, tmp / "loadgen.log", ctx)
    return _basic(start, tmp_path, together)


def exporter_kubernetes(tmp_path: Path, together: threading.Barrier) -> Outcome:
    kube = KubeAPI()
    try:
        # Bound service-account tokens, signed with the emulator's key, as the kubelet mounts them.
        tokens = [kube.emu.issue(PROM_USER, "u-1")]
        kube.emu.allowed.add((PROM_USER, "/metrics", "get"))
        (tmp_path / "qcow2").mkdir()
        proc = ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled", f"--qcow2.dirs={tmp_path / 'qcow2'}",
                                "--web.authorization=kubernetes",
                                f"--kubeconfig={kube.write_kubeconfig(tmp_path / 'kubeconfig')}"], tmp_path / "e.log")
        bearer = {"Authorization": f"Bearer {tokens[0]}"}
        try:
            proc.wait_ready()
            seen: dict = {}

            def before() -> None:
                seen.update(reviews=dict(kube.emu.reviews), keys=kube.emu.keys_served,
                            prometheus=sum(kube.emu.reviewed_tokens[t] for t in tokens),
                            first=kube.emu.reviewed_tokens[tokens[0]])

            def rotate() -> dict:
                # The kubelet replaces the token before it expires (bound tokens; hourly for prometheus-k8s).
                tokens.append(kube.emu.issue(PROM_USER, "u-1"))
                return {"Authorization": f"Bearer {tokens[-1]}"}

            def after(out: Outcome) -> None:
                out.reviews = {k: v - seen["reviews"][k] for k, v in kube.emu.reviews.items()}
                out.prometheus_reviews = sum(kube.emu.reviewed_tokens[t] for t in tokens) - seen["prometheus"]
                out.renewals = kube.emu.reviewed_tokens[tokens[0]] - seen["first"]
                out.keys_fetched = kube.emu.keys_served - seen["keys"]

            out = under_flood(proc, bearer, "bearer", together, user=PROM_USER, kid=kube.emu.kid, before=before,
                              after=after, rotate=rotate)
            out.refused = refused(proc, {"Authorization": f"Bearer {tokens[-1]}"}, "clonewatch")
            assert not any(t in proc.logs() for t in tokens)
            return out
        finally:
            proc.stop()
    finally:
        kube.close()


SCENARIOS = {"exporter_basic": exporter_basic, "loadgen_basic": loadgen_basic, "exporter_kubernetes": exporter_kubernetes}
# Which scenarios each test reads.
NEEDS = {"test_basic_auth_flood_never_locks_out_the_exporter_scrape": ["exporter_basic"],
         "test_basic_auth_flood_never_locks_out_the_loadgen_scrape": ["loadgen_basic"],
         "test_token_flood_stays_within_the_review_budget_and_prometheus_keeps_its_200": ["exporter_kubernetes"],
         "test_daemons_started_during_a_basic_auth_flood_answer_prometheus_first_scrape": ["exporter_basic",
                                                                                            "loadgen_basic"],
         "test_a_rotated_token_gets_its_200_on_the_next_scrape_during_a_token_flood": ["exporter_kubernetes"]}


@pytest.fixture(scope="module")
def running(request, tmp_path_factory):
    """Every scenario a selected test reads, started at once; the tests wait for their own."""
    selected = {item.originalname for item in request.session.items if item.module is request.module}
    wanted = [name for name in SCENARIOS if any(name in NEEDS[test] for test in selected if test in NEEDS)]
    together = threading.Barrier(len(wanted))
    tmp = {name: tmp_path_factory.mktemp(name) for name in wanted}     # here: the factory is not thread-safe

    def run(name: str) -> Outcome:
        try:
            return SCENARIOS[name](tmp[name], together)
        except BaseException:
            together.abort()          # the others stop waiting for this one
            raise

    pool = ThreadPoolExecutor(len(SCENARIOS), thread_name_prefix="flood")
    futures: dict[str, Future] = {name: pool.submit(run, name) for name in wanted}
    yield futures
    pool.shutdown(wait=True)


def check_basic(out: Outcome, what: str) -> None:
    print(out.figures(what))
    assert [s for s, _ in out.scrapes] == [200] * SCRAPES, f"a legitimate scrape was refused: {out.scrapes}"
    # The flood was a flood: it spent the whole bcrypt budget (each a cached refusal), and far more
    # of its requests were turned away unchecked.
    assert out.flood[401] >= 0.8 * BCRYPT_PER_SECOND * out.seconds, out.flood
    assert out.flood[429] >= 20 * out.flood[401], out.flood
    assert out.refused["429"] >= out.flood[429] and out.refused["401"] >= out.flood[401], out.refused


def test_basic_auth_flood_never_locks_out_the_exporter_scrape(running):
    check_basic(running["exporter_basic"].result(600), "exporter, basic auth")


def test_basic_auth_flood_never_locks_out_the_loadgen_scrape(running):
    check_basic(running["loadgen_basic"].result(600), "loadgen, basic auth")


def test_token_flood_stays_within_the_review_budget_and_prometheus_keeps_its_200(running):
    out = running["exporter_kubernetes"].result(600)
    print(out.figures("exporter, Kubernetes authorization"))
    flood_reviews = out.reviews["tokenreviews"] - out.prometheus_reviews
    bound = REVIEWS_PER_SECOND * out.seconds + REVIEWS_PER_SECOND       # the budget's rate and its burst
    print(f"TokenReviews during the flood: {out.reviews['tokenreviews']} ({flood_reviews} for the flood's tokens, bound "
          f"{bound:.0f}; {out.prometheus_reviews} for Prometheus's, {out.renewals} of them renewals of its first token), "
          "SubjectAccessReviews: "
          f"{out.reviews['subjectaccessreviews']}")
    assert [s for s, _ in out.scrapes] == [200] * SCRAPES, f"Prometheus's token was refused: {out.scrapes}"
    assert out.renewals >= 1, "the scrapes crossed the 60 s allowance, so Prometheus's token was reviewed again"
    assert out.prometheus_reviews <= out.seconds / ALLOWED_TTL + 1, "Prometheus's token is reviewed once an allowance"
    assert flood_reviews <= bound, f"the API server received {flood_reviews} reviews of the flood's tokens, bound {bound:.0f}"
    assert out.reviews["subjectaccessreviews"] == out.prometheus_reviews, "random tokens never reach RBAC"
    # The flood was a flood: it spent the review budget, and far more of it was turned away unreviewed.
    assert flood_reviews >= 0.8 * REVIEWS_PER_SECOND * out.seconds, out
    assert out.flood[429] >= 20 * flood_reviews and out.refused["429"] >= out.flood[429], out


def test_daemons_started_during_a_basic_auth_flood_answer_prometheus_first_scrape(running):
    # Credentials never checked by the new daemon, the flood already spending its bcrypt budget
    # (half of it naming Prometheus's user): the first scrape is 200, not a 429 to retry in 60 s.
    for name in ("exporter_basic", "loadgen_basic"):
        out = running[name].result(600)
        assert out.first is not None and out.flood_before_first[429] >= 200, out.flood_before_first
        print(f"\n{name}: first scrape of the daemon started during the flood: {out.first[0]} in "
              f"{out.first[1] * 1000:.1f} ms")
        assert out.first[0] == 200, f"{name}: Prometheus's first scrape of the restarted daemon: {out.first[0]}"


def test_a_rotated_token_gets_its_200_on_the_next_scrape_during_a_token_flood(running):
    out = running["exporter_kubernetes"].result(600)
    print(f"\nscrapes under the token flood: {out.scrapes} (a new token from the second on); service-account "
          f"keys fetched during the flood: {out.keys_fetched}")
    assert out.scrapes[1][0] == 200, f"the first scrape with the rotated token: {out.scrapes[1][0]}"
    # Forged JWTs with unknown key ids ask for the keys again, at most once per KEYS_RETRY.
    assert out.keys_fetched <= out.seconds / KEYS_RETRY + 2, out.keys_fetched
