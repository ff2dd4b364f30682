"""The exporter as a process behind --web.config.file (exporter-toolkit format) and
--web.authorization=kubernetes: TLS with client certificates, TLS versions, plain HTTP refused,
basic auth, certificates rotated on disk without a restart, TokenReview + SubjectAccessReview served
by the Kubernetes emulator, and no secret in any log."""

import base64
import http.client
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import pytest
import yaml

from tests.support.kube import KubeAPI
from tests.support.pki import Pki
from tests.support.process import ROOT, ExporterProcess

NATIVE = ["--no-kubernetes.enabled", "--no-rbd.enabled"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.server = p.issue("server", "127.0.0.1", "IP:127.0.0.1,DNS:localhost")
    p.client = p.issue("prometheus", "prometheus", "DNS:prometheus", client=True)
    p.stranger = Pki(p.dir / "other", "other-ca").issue("stranger", "stranger", "DNS:stranger", client=True)
    return p


def client_ctx(pki, cert=None, **versions) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert:
        ctx.load_cert_chain(*cert)
    for k, v in versions.items():
        setattr(ctx, k, v)
    return ctx


def web_config(tmp_path, doc: dict):
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def start(tmp_path, config, tls, headers=None, extra=()) -> ExporterProcess:
    (tmp_path / "qcow2").mkdir(exist_ok=True)
    proc = ExporterProcess([*NATIVE, f"--qcow2.dirs={tmp_path / 'qcow2'}", f"--web.config.file={config}", *extra],
                           tmp_path / "exporter.log", tls=tls, headers=headers)
    proc.wait_ready()
    return proc


def handshake(port: int, ctx: ssl.SSLContext) -> bytes:
    """The server's certificate (DER) after a full handshake and one request; raises on refusal."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 200")
        return tls.getpeercert(binary_form=True)


def served(port: int, ctx: ssl.SSLContext) -> bool:
    """Whether a request over this TLS client gets an answer. With TLS 1.3 the server judges the
    client's certificate after the client thinks the handshake is done: a refusal is then an alert
    or a closed connection on the first read."""
    try:
        handshake(port, ctx)
        return True
    except (ssl.SSLError, OSError, AssertionError):
        return False


def test_client_certificates_versions_and_plain_http(pki, tmp_path):
    cert, key = pki.server
    config = web_config(tmp_path, {"tls_server_config": {
        "cert_file": str(cert), "key_file": str(key), "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(pki.ca_cert), "min_version": "TLS13"},
        "http_server_config": {"headers": {"X-Frame-Options": "deny"}}})
    proc = start(tmp_path, config, client_ctx(pki, pki.client))
    try:
        status, body, headers = proc.get("/metrics")
        assert status == 200 and b"clonewatch_build_info" in body and headers["X-Frame-Options"] == "deny"
        assert int(headers["Content-Length"]) == len(body), "the plain body is streamed with its length"
        status, _, headers = proc.get("/metrics", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip" and headers["X-Frame-Options"] == "deny"
        status, _, headers = proc.get("/nowhere")
        assert status == 404 and headers["X-Frame-Options"] == "deny", "aiohttp's own pages carry them too"
        assert served(proc.port, client_ctx(pki, pki.client))
        assert not served(proc.port, client_ctx(pki)), "no client certificate"
        assert not served(proc.port, client_ctx(pki, pki.stranger)), "a certificate from another CA"
        with pytest.raises(ssl.SSLError):                                           # below min_version
            handshake(proc.port, client_ctx(pki, pki.client, maximum_version=ssl.TLSVersion.TLSv1_2))
        plain = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=5)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine)):
            plain.request("GET", "/metrics")
            plain.getresponse()
    finally:
        proc.stop()


def test_basic_auth_with_health_open_and_no_password_in_the_logs(pki, tmp_path):
    password = "s3cret-" + base64.b16encode(bytes(range(4))).decode()
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    cert, key = pki.server
    config = web_config(tmp_path, {"tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                                   "basic_auth_users": {"prometheus": hashed}})

    def auth(user, pw):
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}
    proc = start(tmp_path, config, client_ctx(pki))
    try:
        status, _, headers = proc.get("/metrics")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert proc.get("/metrics", auth("prometheus", "wrong"))[0] == 401
        assert proc.get("/metrics", auth("nobody", password))[0] == 401
        # The checks ran on a thread of its own at nice 19, so a flood of guesses cannot take the
        # event loop's CPU (field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value).
        tasks = Path(f"/proc/{proc.proc.pid}/task")
        nices = {t.name: int((t / "stat").read_text().rsplit(")", 1)[1].split()[16]) for t in tasks.iterdir()}
        main = nices.pop(str(proc.proc.pid))
        assert sorted(nices.values()) == sorted([main] * (len(nices) - 1) + [19]), (main, nices)
        assert proc.get("/", auth("prometheus", password))[0] == 200
        t = time.monotonic()
        for _ in range(20):
            assert proc.get("/metrics", auth("prometheus", password))[0] == 200
        per_scrape = (time.monotonic() - t) / 20
        body = proc.get("/metrics", auth("prometheus", password))[1].decode()
        assert 'clonewatch_web_requests_refused_total{code="401"} 3.0\n' in body, "every refusal is counted"
        assert 'clonewatch_web_requests_refused_total{code="429"} 0.0\n' in body
        assert proc.get("/healthz")[0] == 200 and proc.get("/readyz")[0] == 200, "probes carry no credentials"
        assert password not in proc.logs() and hashed not in proc.logs()
        print(f"\nbasic auth: 20 authorized scrapes, {per_scrape * 1000:.1f} ms each (bcrypt once, then cached)")
    finally:
        proc.stop()


def test_a_rotated_certificate_is_served_on_the_next_connection(pki, tmp_path):
    live = tmp_path / "live"
    cert, key = pki.issue("rot", "127.0.0.1", "IP:127.0.0.1", out=live)
    config = web_config(tmp_path, {"tls_server_config": {"cert_file": str(cert), "key_file": str(key)}})
    proc = start(tmp_path, config, client_ctx(pki))
    try:
        first = handshake(proc.port, client_ctx(pki))
        staged = tmp_path / "staged"
        # An ECDSA P-256 pair, as deploy/components/cert-manager issues: a rotation may change the key type.
        new_cert, new_key = pki.issue("rot", "127.0.0.1", "IP:127.0.0.1", out=staged, ecdsa=True)
        # As cert-manager and kubelet do: the new pair appears at once (rename), not byte by byte.
        new_key.replace(key)
        new_cert.replace(cert)
        deadline = time.monotonic() + 10
        while handshake(proc.port, client_ctx(pki)) == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert handshake(proc.port, client_ctx(pki)) == ssl.PEM_cert_to_DER_cert(cert.read_text()), \
            "still the old certificate"
        assert proc.proc.poll() is None and "web_tls_reloaded" in proc.logs()
    finally:
        proc.stop()


@pytest.mark.parametrize("doc,key", [
    ({"tls_server_config": {"cert_file": "/nonexistent.crt", "key_file": "/nonexistent.key"}},
     "tls_server_config.cert_file"),
    ({"tls_server_config": {"cert_file": "CERT", "key_file": "KEY", "client_auth_type": "RequireAnyClientCert"}},
     "tls_server_config.client_auth_type"),
    ({"tls_server_config": {"cert_file": "CERT", "key_file": "KEY", "min_version": "TLS14"}},
     "tls_server_config.min_version"),
    ({"basic_auth_users": {"prometheus": "plaintext"}}, "basic_auth_users.prometheus"),
    ({"tls_config": {}}, "tls_config"),
])
def test_a_bad_web_config_exits_2_naming_the_key(pki, tmp_path, doc, key):
    text = yaml.safe_dump(doc).replace("CERT", str(pki.server[0])).replace("KEY", str(pki.server[1]))
    (tmp_path / "web.yml").write_text(text)
    run = subprocess.run([sys.executable, "-m", "exporter", *NATIVE, f"--web.config.file={tmp_path / 'web.yml'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and f"web.config.file: {key}" in run.stderr, run.stderr


def test_kubernetes_authorization_allows_denies_and_fails_closed(tmp_path):
    kube = KubeAPI()
    try:
        kube.emu.tokens["prom-token"] = {"username": "system:serviceaccount:openshift-monitoring:prometheus-k8s",
                                         "uid": "u-1", "groups": ["system:serviceaccounts"]}
        kube.emu.tokens["other-token"] = {"username": "system:serviceaccount:default:default", "groups": []}
        kube.emu.allowed.add(("system:serviceaccount:openshift-monitoring:prometheus-k8s", "/metrics", "get"))
        (tmp_path / "qcow2").mkdir()
        proc = ExporterProcess([*NATIVE, f"--qcow2.dirs={tmp_path / 'qcow2'}", "--web.authorization=kubernetes",
                                f"--kubeconfig={kube.write_kubeconfig(tmp_path / 'kubeconfig')}"], tmp_path / "e.log")
        try:
            proc.wait_ready()
            assert proc.get("/metrics")[0] == 401
            assert proc.get("/metrics", {"Authorization": "Bearer forged"})[0] == 401
            assert proc.get("/metrics", {"Authorization": "Bearer other-token"})[0] == 403
            assert proc.get("/metrics", {"Authorization": "Bearer prom-token"})[0] == 200
            reviews = dict(kube.emu.reviews)
            for _ in range(5):
                assert proc.get("/metrics", {"Authorization": "Bearer prom-token"})[0] == 200
            assert kube.emu.reviews == reviews, "verdicts are cached"
            kube.stop_server()
            assert proc.get("/metrics", {"Authorization": "Bearer prom-token"})[0] == 200, "cached while it lasts"
            assert proc.get("/metrics", {"Authorization": "Bearer new-token"})[0] == 503, "fails closed"
            kube.start_server()
            kube.emu.tokens["new-token"] = kube.emu.tokens["prom-token"]
            assert proc.get("/metrics", {"Authorization": "Bearer new-token"})[0] == 200, "an outage is not cached"
            body = proc.get("/metrics", {"Authorization": "Bearer prom-token"})[1].decode()
            for code, count in (("401", 2), ("403", 1), ("429", 0), ("503", 1)):
                assert f'clonewatch_web_requests_refused_total{{code="{code}"}} {count}.0\n' in body, code
            logs = proc.logs()
            assert "prom-token" not in logs and "other-token" not in logs and "web_authz_denied" in logs
        finally:
            proc.stop()
    finally:
        kube.close()


def test_a_flood_of_idle_connections_does_not_lock_out_the_scrape(tmp_path):
    """More idle connections than the ceiling: the oldest silent ones make room, /metrics answers."""
    from exporter.http.serve import MAX_CONNECTIONS
    (tmp_path / "qcow2").mkdir()
    proc = ExporterProcess([*NATIVE, f"--qcow2.dirs={tmp_path / 'qcow2'}"], tmp_path / "e.log")
    idle = []
    try:
        proc.wait_ready()
        for _ in range(MAX_CONNECTIONS + 50):
            idle.append(socket.create_connection(("127.0.0.1", proc.port), timeout=5))
        # Connections beyond the kernel's accept queue are accepted as the client retransmits (1 s, 2 s, ...).
        closed: set[int] = set()
        deadline = time.monotonic() + 20          # well before the 30 s idle timeout closes them all
        while len(closed) < 50 and time.monotonic() < deadline:
            for i, s in enumerate(idle):
                if i in closed:
                    continue
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        closed.add(i)
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    closed.add(i)
            time.sleep(0.2)
        fds = len(list(Path(f"/proc/{proc.proc.pid}/fd").iterdir()))
        # 50 over the ceiling, less the few the kernel has not handed over yet.
        assert len(closed) >= 45, f"only {len(closed)} silent connections were closed ({fds} fds)"
        assert max(closed) < 100, "the oldest silent connections make room"
        t = time.monotonic()
        status, body, _ = proc.get("/metrics")
        assert status == 200 and b"clonewatch_build_info" in body
        evicted = re.search(rb'^clonewatch_web_connections_dropped_total\{reason="evicted"\} (\S+)', body, re.M)
        assert evicted and float(evicted.group(1)) >= len(closed), "the evictions are counted"
        took = time.monotonic() - t
        fds = len(list(Path(f"/proc/{proc.proc.pid}/fd").iterdir()))
        assert fds < MAX_CONNECTIONS + 60
        print(f"\n{len(idle)} idle connections: /metrics in {took * 1000:.1f} ms, {len(closed)} silent ones closed, {fds} fds")
    finally:
        for s in idle:
            s.close()
        proc.stop()
