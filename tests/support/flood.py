"""An attacker without credentials: client processes that send made-up credentials to a secured
endpoint as fast as the server answers, each over one kept-alive connection (reopened when the
server closes it), and count the answers by status.

Processes, not threads: the clients' own HTTP and TLS work then takes no GIL from the test, the
Kubernetes emulator or the legitimate scraper. They run at nice 19: on a shared 2-CPU test
machine they would otherwise take the CPU the exporter's bcrypt thread (itself at nice 19) needs;
in a cluster the attacker's clients do not run on the exporter's CPU.

Each client sends from a loopback address of its own (127.0.0.2 and up; the legitimate scraper
is 127.0.0.1), as an attacker elsewhere in the network would. A flood started before its daemon
listens keeps trying (as when the daemon it floods is restarted), and a flood whose test process
died stops by itself.
"""

import base64
import contextlib
import http.client
import json
import multiprocessing
import os
import ssl
import time
from dataclasses import dataclass, field

STATUSES = (200, 401, 403, 429, 503, 0)       # 0: anything else (a dropped connection, a timeout)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_jwt(n: int, kid: str, sub: str) -> str:
    """What an attacker who read the cluster's JWKS can make: a JWT naming a service account, with
    the real key id and a random signature, with no algorithm, with HMAC keyed by nothing it
    knows, or with a key id the cluster never published."""
    claims = {"iss": "https://kubernetes.default.svc", "sub": sub, "aud": ["https://kubernetes.default.svc"],
              "exp": int(time.time()) + 3600, "iat": int(time.time()), "jti": os.urandom(8).hex()}
    header = [{"alg": "RS256", "kid": kid}, {"alg": "none"}, {"alg": "HS256", "kid": kid},
              {"alg": "RS256", "kid": _b64(os.urandom(32))}][n % 4]
    signature = b"" if header["alg"] == "none" else os.urandom(256 if header["alg"] == "RS256" else 32)
    return ".".join((_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)))


def credentials(kind: str, user: str, n: int, kid: str = "") -> str:
    """A made-up Authorization header: random user names and passwords, every other one with the
    real user name (an attacker may know it), or a bearer token: random, or (with the cluster's
    key id `kid`) every other one a forged service-account JWT naming `user`."""
    secret = os.urandom(12).hex()
    if kind == "bearer":
        return f"Bearer {forged_jwt(n // 2, kid, user)}" if kid and n % 2 else f"Bearer {secret}"
    name = user if user and n % 2 else f"guess-{os.urandom(4).hex()}"
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()


def _client(port: int, kind: str, user: str, kid: str, ca: str, source: str, slot: int, counts, stop) -> None:
    with contextlib.suppress(OSError):
        os.nice(19)
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    conn = None
    n = 0
    local = dict.fromkeys(STATUSES, 0)
    parent = os.getppid()
    while not stop.is_set() and os.getppid() == parent:       # a test killed midway leaves no flood behind
        n += 1
        try:
            if conn is None:
                conn = (http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10,
                                                    source_address=(source, 0)) if ctx
                        else http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0)))
            conn.request("GET", "/metrics", headers={"Authorization": credentials(kind, user, n, kid)})
            resp = conn.getresponse()
            resp.read()
            status = resp.status if resp.status in local else 0
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            status = 0
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.05)          # nobody listens (a restart): do not spin on refused connections
        local[status] += 1
        if n % 64 == 0:
            _publish(counts, slot, local)
    _publish(counts, slot, local)


def _publish(counts, slot: int, local: dict) -> None:
    for i, status in enumerate(STATUSES):
        counts[slot * len(STATUSES) + i] = local[status]


@dataclass
class Flood:
    """Four clients (by default) flooding 127.0.0.1:port until stop(); `kind` is basic or bearer;
    client n sends from 127.0.0.(2+n); `kid`: forge JWTs with this key id too (bearer)."""
    port: int
    kind: str
    user: str = ""
    ca: str = ""
    kid: str = ""
    clients: int = 4
    _procs: list = field(default_factory=list)

    def __post_init__(self) -> None:
        mp = multiprocessing.get_context("spawn")     # the test process has threads: no fork
        self._stop = mp.Event()
        self._counts = mp.Array("q", self.clients * len(STATUSES), lock=False)
        self._procs = [mp.Process(target=_client, args=(self.port, self.kind, self.user, self.kid, self.ca,
                                                        f"127.0.0.{2 + slot}", slot, self._counts, self._stop),
                                  daemon=True)
                       for slot in range(self.clients)]
        for p in self._procs:
            p.start()

    def counts(self) -> dict[int, int]:
        """Answers so far, by status (published every 64 requests a client)."""
        out = dict.fromkeys(STATUSES, 0)
        for slot in range(self.clients):
            for i, status in enumerate(STATUSES):
                out[status] += self._counts[slot * len(STATUSES) + i]
        return out

    def stop(self) -> dict[int, int]:
        self._stop.set()
        for p in self._procs:
            p.join(15)
            if p.is_alive():
                p.kill()
                p.join()
        return self.counts()
