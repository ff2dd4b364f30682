"""Scrape latency of a secured exporter, quiet and under a flood, side by side in one run.

The exporter runs as a process with TLS and basic auth (--web.config.file) over a qcow2 directory
of 200 images. A scraper like Prometheus's (one kept-alive TLS connection, right credentials) takes
--scrapes scrapes quiet, then again while 200 idle connections are held open and --rejected requests
with made-up passwords (each a new TLS connection) hammer the port from 4 other processes.
--auth kubernetes: TLS and --web.authorization=kubernetes against the Kubernetes emulator
(tests/support/kube.py) instead, the scraper with a bound service-account token the emulator
signed, the flood's requests carrying random bearer tokens and forged service-account JWTs; it
also prints how many reviews the emulator received during the flood, and the review budget's bound.
The flood's processes send from 127.0.0.2-5, the scraper from 127.0.0.1. Once the flood is under
way, credentials never checked before (a second user's password from 127.0.0.9; a rotated token)
are tried once: their first check's status and time are printed.

By default (--pin) the exporter gets CPU 0 and this scraper and the flood's clients CPU 1, as in a
cluster where the exporter's pod has its CPU and the clients run elsewhere; the exporter still does
every handshake and bcrypt the flood asks for. --no-pin lets them all share every CPU (on a 2-CPU
machine the flood's own processes then take most of the exporter's CPU).

    .venv/bin/python bench/bench_web_flood.py [--scrapes 300 --rejected 1000] [--auth kubernetes] [--no-pin]
"""

import argparse
import base64
import http.client
import multiprocessing
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bcrypt
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.http.kube_authz import REVIEWS_PER_SECOND
from tests.support.flood import forged_jwt
from tests.support.kube import KubeAPI
from tests.support.pki import Pki
from tests.support.process import ExporterProcess


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def scrape_times(port: int, ctx: ssl.SSLContext, auth: str, n: int, more=lambda: False) -> list[float]:
    """n scrapes, and more while more() says so."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    out: list[float] = []
    while len(out) < n or more():
        t = time.perf_counter()
        conn.request("GET", "/metrics", headers={"Authorization": auth, "Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        out.append(time.perf_counter() - t)
        time.sleep(0.01)
    conn.close()
    return out


def first_check(port: int, ctx: ssl.SSLContext, auth: str, source: str) -> tuple[int, float]:
    """One request with credentials never checked before, from `source`: (status, seconds)."""
    t = time.perf_counter()
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30, source_address=(source, 0))
    conn.request("GET", "/metrics", headers={"Authorization": auth, "Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, time.perf_counter() - t


def reject(port: int, ca: str, share: int, seed: int, counts, auth: str = "basic", kid: str = "") -> None:
    ctx = ssl.create_default_context(cafile=ca)
    for i in range(share):
        if auth == "kubernetes":
            bad = "Bearer " + (forged_jwt(i, kid, "prometheus") if i % 2 else os.urandom(16).hex())
        else:
            bad = "Basic " + base64.b64encode(f"prometheus:guess-{seed}-{i}-{os.urandom(4).hex()}".encode()).decode()
        try:
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30,
                                             source_address=(f"127.0.0.{2 + seed}", 0))
            c.request("GET", "/metrics", headers={"Authorization": bad})
            status = c.getresponse().status
            c.close()
        except OSError:
            status = 0
        with counts.get_lock():
            counts[{401: 0, 429: 1}.get(status, 2)] += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scrapes", type=int, default=300)
    ap.add_argument("--rejected", type=int, default=1000)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--ecdsa", action="store_true", help="a P-256 server key instead of RSA 2048 (cheaper handshakes)")
    ap.add_argument("--auth", choices=["basic", "kubernetes"], default="basic",
                    help="basic auth, or Kubernetes authorization against the emulator (random bearer tokens)")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                    help="exporter on CPU 0, scraper and flood clients on CPU 1 (needs 2 CPUs)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cw-flood."))
    pki = Pki(tmp / "pki")
    cert, key = pki.issue("server", "127.0.0.1", "IP:127.0.0.1", ecdsa=a.ecdsa)
    images = tmp / "images"
    images.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(images / "golden.qcow2"), "64M"], check=True)
    for i in range(200):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(images / "golden.qcow2"),
                        str(images / f"vm-{i:03d}.qcow2")], check=True)
    web = {"tls_server_config": {"cert_file": str(cert), "key_file": str(key)}}
    kube = None
    if a.auth == "kubernetes":
        kube = KubeAPI()
        user = "system:serviceaccount:openshift-monitoring:prometheus-k8s"
        kube.emu.allowed.add((user, "/metrics", "get"))
        extra = ["--web.authorization=kubernetes", f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}"]
        auth = f"Bearer {kube.emu.issue(user, 'u-1')}"
        new_auth = f"Bearer {kube.emu.issue(user, 'u-1')}"          # the kubelet's next one
    else:
        web["basic_auth_users"] = {name: bcrypt.hashpw(b"right-password", bcrypt.gensalt(rounds=10)).decode()
                                   for name in ("prometheus", "prometheus-2")}
        extra = []
        auth = "Basic " + base64.b64encode(b"prometheus:right-password").decode()
        new_auth = "Basic " + base64.b64encode(b"prometheus-2:right-password").decode()
    (tmp / "web.yml").write_text(yaml.safe_dump(web))
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    proc = ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled", f"--qcow2.dirs={images}",
                            f"--web.config.file={tmp / 'web.yml'}", *extra], tmp / "exporter.log", tls=ctx)
    try:
        proc.wait_ready()
        pinned = a.pin and len(os.sched_getaffinity(0)) >= 2
        if pinned:
            cpus = sorted(os.sched_getaffinity(0))
            for tid in os.listdir(f"/proc/{proc.proc.pid}/task"):      # every thread; later ones inherit
                os.sched_setaffinity(int(tid), {cpus[0]})
            for tid in os.listdir("/proc/self/task"):                  # this scraper (and the emulator), the flood's
                os.sched_setaffinity(int(tid), {cpus[1]})              # processes
        scrape_times(proc.port, ctx, auth, 20)                    # warm-up (bcrypt or the reviews once)
        quiet = scrape_times(proc.port, ctx, auth, a.scrapes)
        idle = [socket.create_connection(("127.0.0.1", proc.port)) for _ in range(a.idle)]
        # Spawned, not forked, beside the emulator's thread.
        mp = multiprocessing.get_context("spawn" if kube else None)
        counts = mp.Array("i", 3)      # [401s, 429s, anything else]
        # Other processes, so the flood's own TLS work does not share this scraper's GIL.
        flood = [mp.Process(target=reject, args=(proc.port, str(pki.ca_cert), a.rejected // 4, n, counts, a.auth,
                                                 kube.emu.kid if kube else ""))
                 for n in range(4)]
        reviews = dict(kube.emu.reviews) if kube else {}
        t = time.perf_counter()
        for f in flood:
            f.start()
        while counts[1] < 100 and any(f.is_alive() for f in flood):       # the budgets are spent
            time.sleep(0.01)
        spent = counts[1]
        first = first_check(proc.port, ctx, new_auth, "127.0.0.9")
        loud = scrape_times(proc.port, ctx, auth, a.scrapes, lambda: any(f.is_alive() for f in flood))
        for f in flood:
            f.join()
        flood_s = time.perf_counter() - t
        for s in idle:
            s.close()
        q50, q99 = statistics.median(quiet), percentile(quiet, 0.99)
        l50, l99 = statistics.median(loud), percentile(loud, 0.99)
        checked, budget = ("a review", "review") if kube else ("bcrypt", "bcrypt")
        print(f"scrape (gzip, TLS with an {'ECDSA P-256' if a.ecdsa else 'RSA 2048'} key, "
              f"{'Kubernetes authorization' if kube else 'basic auth'}, 201 volumes), same run, "
              f"{'exporter on its own CPU' if pinned else 'all processes sharing every CPU'}:")
        print(f"  quiet:  p50 {q50 * 1000:.1f} ms  p99 {q99 * 1000:.1f} ms  ({len(quiet)} scrapes)")
        print(f"  flood:  p50 {l50 * 1000:.1f} ms  p99 {l99 * 1000:.1f} ms  ({len(loud)} scrapes during {a.idle} idle connections + "
              f"{counts[0] + counts[1]} rejected: {counts[0]} 401 after {checked}, {counts[1]} 429 over the {budget} budget, "
              f"{counts[2]} other, in {flood_s:.1f}s)")
        print(f"  p99 ratio flood/quiet: {l99 / q99:.2f}x")
        print(f"  credentials never checked before ({'a rotated token' if kube else 'another user, from 127.0.0.9'}), "
              f"once the flood had {spent} answers 429: {first[0]} in {first[1] * 1000:.1f} ms")
        if kube:
            got = kube.emu.reviews["tokenreviews"] - reviews["tokenreviews"]
            print(f"  TokenReviews the API server received during the flood: {got} (bound {REVIEWS_PER_SECOND} a second "
                  f"and a burst of {REVIEWS_PER_SECOND}: {REVIEWS_PER_SECOND * flood_s + REVIEWS_PER_SECOND:.0f})")
    finally:
        proc.stop()
        if kube:
            kube.close()


if __name__ == "__main__":
    main()
