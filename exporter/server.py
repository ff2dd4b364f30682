"""HTTP: /metrics, /healthz, /readyz and a landing page; process start-up and graceful shutdown."""

import asyncio
import signal

import structlog
from aiohttp import web

from . import __version__
from .app import Exporter
from .heap import MMAP_THRESHOLD
from .settings import ConfigError, parse_listen_address
from .webserve import application, security, serve

log = structlog.get_logger("clonewatch")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STREAM_CHUNK = MMAP_THRESHOLD - 8 * 1024    # pieces joined per write: under heap.py's threshold, so from the heap

LANDING = """<!doctype html><html><head><title>clonewatch exporter</title></head><body>
<h1>clonewatch exporter {version}</h1>
<p>Are your clones really copy-on-write? Per-PVC clone types, consumed bytes and per-golden-image efficiency.</p>
<ul><li><a href="/metrics">/metrics</a></li><li><a href="/healthz">/healthz</a></li>
<li><a href="/readyz">/readyz</a></li></ul></body></html>"""


def make_app(exporter: Exporter) -> web.Application:
    async def metrics(request: web.Request) -> web.StreamResponse:
        # Written from the pieces the body is kept in: plain, the blocks' text; gzip, the body's
        # members and the dynamic part's. Joining them first would allocate the whole body per
        # scrape (69 MB plain at 50k PVCs), and asyncio copy it again.
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers = {"Content-Type": CONTENT_TYPE, "Content-Encoding": "gzip"}
            pieces = exporter.gzip_pieces()
        else:
            headers, pieces = {"Content-Type": CONTENT_TYPE}, exporter.plain_pieces()
        resp = web.StreamResponse(headers=headers)
        resp.content_length = sum(map(len, pieces))
        await resp.prepare(request)
        # Small pieces are joined into writes that stay under the mmap threshold (mapped 1 MB
        # chunks, fresh pages faulted in each time, made a plain scrape at 10k PVCs take 21 ms
        # instead of 11-13); a piece bigger than that goes out alone, as it is.
        chunk: list[bytes] = []
        size = 0
        for piece in pieces:
            if chunk and size + len(piece) > STREAM_CHUNK:
                await resp.write(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(piece)
            size += len(piece)
        if chunk:
            await resp.write(b"".join(chunk))
        await resp.write_eof()
        return resp

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        reasons = exporter.not_ready()
        if reasons:
            return web.Response(status=503, text="not ready: " + "; ".join(reasons) + "\n")
        return web.Response(text="ready\n")

    async def landing(request: web.Request) -> web.Response:
        return web.Response(text=LANDING.format(version=__version__), content_type="text/html")

    app = application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", landing)
    return app


def _api_client(settings):
    from .kube.client import load_api_client
    try:
        return load_api_client(settings.kubeconfig or None, settings.kubernetes_context or None)
    except Exception as exc:
        raise ConfigError("kubeconfig", f"no usable kubeconfig and not running in a cluster ({exc}); "
                                        "pass --kubeconfig, set KUBECONFIG, or --no-kubernetes.enabled") from None


async def run(settings) -> int:
    host, port = parse_listen_address(settings.web_listen_address)
    needs_api = settings.kubernetes_enabled or settings.web_authorization == "kubernetes"
    api = _api_client(settings) if needs_api else None
    sec = security(settings.web_config_file, settings.web_authorization, api)
    exporter = Exporter(settings, sec)
    served = await serve(make_app(exporter), host, port, sec, settings.web_listen_address)
    await exporter.start(api if settings.kubernetes_enabled else None)
    log.info("listening", address=settings.web_listen_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await exporter.stop()
    await served.close()
    if api is not None:
        api.close()
    log.info("stopped")
    return 0
