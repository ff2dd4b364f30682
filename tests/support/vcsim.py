"""The govmomi vCenter simulator (vcsim), built from Debian's golang-github-vmware-govmomi-dev by
tests/support/vcsim/main.go, started per test on 127.0.0.1 with our certificate and a real login check.

What vcsim (govmomi 0.24) does and does not model: the inventory, logins, TLS, the
PropertyCollector, snapshots and CloneVM_Task work; file sizes are all 0 and a linked clone's disk
chain is not kept (tests/fixtures/vmware has the recorded shape for byte accounting)."""

import hashlib
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

SOURCE = Path(__file__).parent / "vcsim"
GOPATH = "/usr/share/gocode"


def binary() -> Path:
    """Build once per source version; cached under ~/.cache/clonewatch."""
    digest = hashlib.sha256((SOURCE / "main.go").read_bytes()).hexdigest()[:12]
    out = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clonewatch" / f"vcsim-{digest}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOPATH": GOPATH, "GO111MODULE": "off", "GOCACHE": str(out.parent / "go-build")}
        tmp = out.with_suffix(".tmp")
        subprocess.run(["go", "build", "-o", str(tmp), "."], cwd=SOURCE, env=env, check=True,
                       capture_output=True, timeout=600)
        tmp.rename(out)
    return out


class VCSim:
    def __init__(self, cert: Path, key: Path, username: str, password: str, retrieve_delay_ms: int = 0) -> None:
        self.username, self.password = username, password
        self.proc = subprocess.Popen([str(binary()), "-cert", str(cert), "-key", str(key),
                                      "-username", username, "-password", password,
                                      "-retrieve-delay-ms", str(retrieve_delay_ms)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = urlparse(self.proc.stdout.readline().strip())
        if not url.port:
            self.stop()
            raise RuntimeError("vcsim did not start")
        self.address = f"127.0.0.1:{url.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def write_secret_dir(self, directory: Path, ca: Path | None, password: str | None = None) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "address").write_text(self.address)
        (directory / "username").write_text(self.username)
        (directory / "password").write_text(password if password is not None else self.password)
        if ca is not None:
            (directory / "ca.crt").write_bytes(ca.read_bytes())
        else:
            (directory / "ca.crt").unlink(missing_ok=True)
        return directory

    def connect(self, ca: Path):
        import ssl

        from pyVim.connect import SmartConnect
        host, port = self.address.split(":")
        return SmartConnect(host=host, port=int(port), user=self.username, pwd=self.password,
                            sslContext=ssl.create_default_context(cafile=str(ca)))
