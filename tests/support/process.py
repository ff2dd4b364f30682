"""The exporter as a real process: start, wait for /readyz, scrape, stop with SIGTERM."""

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import ClassVar

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now and that this test run has not handed out before. The kernel
    can give the same port to two picks in a row when the first one's process has not bound it
    yet: an exporter and a loadgen started one after the other once shared one (and Prometheus
    scraped the wrong one)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class ExporterProcess:
    # Every one started, so a fixture whose set-up fails cannot leave one running (conftest).
    started: ClassVar["weakref.WeakSet[ExporterProcess]"] = weakref.WeakSet()

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None, tls: ssl.SSLContext | None = None,
                 headers: dict | None = None, python: str = sys.executable, cwd: Path = ROOT) -> None:
        """cwd: the tree whose `exporter` package runs (benchmarks run an older one beside this one)."""
        self.tls, self.headers = tls, headers or {}      # how this test's requests reach a secured exporter
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [python, "-m", "exporter", f"--web.listen-address=127.0.0.1:{self.port}", *args],
            cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        ExporterProcess.started.add(self)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
        req = urllib.request.Request(self.url + path, headers={**self.headers, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.tls) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"exporter not ready after {timeout}s:\n{self.logs()}")

    def metrics_text(self) -> str:
        status, body, _ = self.get("/metrics")
        assert status == 200
        return body.decode()

    def samples(self) -> dict[tuple[str, frozenset], float]:
        out = {}
        for family in text_string_to_metric_families(self.metrics_text()):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def wait_for(self, predicate, timeout: float = 30, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.samples()
            except OSError:          # not listening yet
                time.sleep(0.2)
                continue
            if predicate(last):
                return last
            time.sleep(0.2)
        raise AssertionError(f"{what} not met in {timeout}s; logs:\n{self.logs()[-3000:]}")

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 5) -> float:
        """SIGTERM; returns how long the process took to exit."""
        if self.proc.poll() is not None:
            return 0.0
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"exporter did not stop within {timeout}s of SIGTERM") from None
        finally:
            self._log.close()
        return time.monotonic() - start


def running(pid: int) -> bool:
    """The process exists and is not merely a zombie nobody has reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def pick(samples: dict, name: str, **labels) -> list[float]:
    """Values of every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]


def one(samples: dict, name: str, **labels) -> float:
    found = pick(samples, name, **labels)
    assert len(found) == 1, f"expected one {name}{labels}, found {found}"
    return found[0]
