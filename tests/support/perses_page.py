"""The page tests/perses/page builds from Perses' own React packages, and a server for it.

build() installs the npm packages tests/perses/package-lock.json pins (npm ci, only when the lock
changed: the stamp scripts/setup.sh keeps) and runs vite once per lock file and page source, cached
under ~/.cache/clonewatch. PageServer serves the built page on 127.0.0.1 with the generated Perses
dashboards (dashboards/perses/) and, same-origin under /prometheus/, a real Prometheus: the page's
default PrometheusDatasource points there, as a Perses server's proxy would."""

import hashlib
import http.server
import json
import mimetypes
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from tests.support.process import ROOT

PERSES = ROOT / "tests/perses"
PAGE = PERSES / "page"
DASHBOARDS = ROOT / "dashboards/perses"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clonewatch"


def npm_ci() -> None:
    stamp, lock = PERSES / "node_modules/.clonewatch-installed", PERSES / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PERSES, check=True,
                   capture_output=True, timeout=600)
    stamp.touch()


def page_hash() -> str:
    h = hashlib.sha256((PERSES / "package-lock.json").read_bytes())
    for f in sorted(p for p in PAGE.rglob("*") if p.is_file()):
        h.update(f.relative_to(PAGE).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def build() -> Path:
    """The built page's directory (index.html, assets/). A miss type-checks the page and bundles it (npm run
    page): ~20-40 s."""
    out = CACHE / f"perses-page-{page_hash()}"
    if (out / "index.html").exists():
        return out
    npm_ci()
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run(["npm", "run", "--silent", "page", "--", "--outDir", str(tmp), "--emptyOutDir"], cwd=PERSES,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"building tests/perses/page failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    tmp.rename(out)
    return out


class PageServer:
    """The page at /d/<dashboard>, the dashboards at /dashboards/<name>.json, the datasource at
    /datasource.json, and /prometheus/* proxied to `upstream` (a Prometheus port; a test may switch it)."""

    def __init__(self, dist: Path, upstream: int, scrape_interval: str) -> None:
        self.dist, self.upstream = dist, upstream
        # The PrometheusDatasource spec: a same-origin directUrl; $__rate_interval spans four scrapes.
        self.datasource = {"directUrl": "/prometheus", "scrapeInterval": scrape_interval}
        self.proxied: list[tuple[str, str, int]] = []       # (method, path, status) of every Prometheus request
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self)

            def do_POST(self) -> None:
                server._serve(self)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="perses-page", daemon=True)
        self._thread.start()

    def url(self, dashboard: str, **params: str) -> str:
        return f"http://127.0.0.1:{self.port}/d/{dashboard}" + (f"?{urlencode(params)}" if params else "")

    def _serve(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if path.startswith("/prometheus/"):
            return self._proxy(h)
        if h.command != "GET":
            return self._send(h, 405, b"", "text/plain")
        if path.startswith("/d/"):
            return self._file(h, self.dist / "index.html")
        if path == "/datasource.json":
            return self._send(h, 200, json.dumps(self.datasource).encode(), "application/json")
        if m := re.fullmatch(r"/dashboards/([a-z0-9-]+)\.json", path):
            return self._file(h, DASHBOARDS / f"{m.group(1)}.json")
        if m := re.fullmatch(r"/assets/([\w.-]+)", path):
            return self._file(h, self.dist / "assets" / m.group(1))
        self._send(h, 404, b"not found", "text/plain")

    def _file(self, h, path: Path) -> None:
        if not path.is_file():
            return self._send(h, 404, b"not found", "text/plain")
        self._send(h, 200, path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    def _proxy(self, h) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if h.command == "POST" else None
        headers = {"Content-Type": h.headers["Content-Type"]} if h.headers.get("Content-Type") else {}
        req = urllib.request.Request(f"http://127.0.0.1:{self.upstream}{h.path.removeprefix('/prometheus')}",
                                     data=body, headers=headers, method=h.command)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, data, kind = r.status, r.read(), r.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as err:
            status, data, kind = err.code, err.read(), err.headers.get("Content-Type", "application/json")
        self.proxied.append((h.command, h.path, status))
        self._send(h, status, data, kind)

    @staticmethod
    def _send(h, status: int, data: bytes, kind: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
