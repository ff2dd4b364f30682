"""An attacker without credentials: client processes that send made-up credentials to a secured
endpoint as fast as the server answers, each over one kept-alive connection (reopened when the
server closes it), and count the answers by status.

Processes, not threads: the clients' own HTTP and TLS work then takes no GIL from the test, the
Kubernetes emulator or the legitimate scraper. They run at nice 19: on a shared 2-CPU test
machine they would otherwise take the CPU the exporter's bcrypt thread (itself at nice 19) needs;
in a cluster the attacker's clients do not run on the exporter's CPU.
"""

import base64
import contextlib
import http.client
import multiprocessing
import os
import ssl
from dataclasses import dataclass, field

STATUSES = (200, 401, 403, 429, 503, 0)       # 0: anything else (a dropped connection, a timeout)


def credentials(kind: str, user: str, n: int) -> str:
    """A made-up Authorization header: random user names and passwords, every other one with the
    real user name (an attacker may know it), or a random bearer token."""
    secret = os.urandom(12).hex()
    if kind == "bearer":
        return f"Bearer {secret}"
    name = user if user and n % 2 else f"guess-{os.urandom(4).hex()}"
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()


def _client(port: int, kind: str, user: str, ca: str, slot: int, counts, stop) -> None:
    with contextlib.suppress(OSError):
        os.nice(19)
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    conn = None
    n = 0
    local = dict.fromkeys(STATUSES, 0)
    while not stop.is_set():
        n += 1
        try:
            if conn is None:
                conn = (http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10) if ctx
                        else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
            conn.request("GET", "/metrics", headers={"Authorization": credentials(kind, user, n)})
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
        local[status] += 1
        if n % 64 == 0:
            _publish(counts, slot, local)
    _publish(counts, slot, local)


def _publish(counts, slot: int, local: dict) -> None:
    for i, status in enumerate(STATUSES):
        counts[slot * len(STATUSES) + i] = local[status]


@dataclass
class Flood:
    """Four clients (by default) flooding 127.0.0.1:port until stop(); `kind` is basic or bearer."""
    port: int
    kind: str
    user: str = ""
    ca: str = ""
    clients: int = 4
    _procs: list = field(default_factory=list)

    def __post_init__(self) -> None:
        mp = multiprocessing.get_context("spawn")     # the test process has threads: no fork
        self._stop = mp.Event()
        self._counts = mp.Array("q", self.clients * len(STATUSES), lock=False)
        self._procs = [mp.Process(target=_client, args=(self.port, self.kind, self.user, self.ca, slot,
                                                        self._counts, self._stop), daemon=True)
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
