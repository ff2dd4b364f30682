"""The exporter process: start-up (API client, web security, the exporter, the server) and graceful shutdown."""

import asyncio
import signal
from typing import Any

import structlog

from ..config.core import CoreOptions
from ..config.settings import ConfigError, Settings, parse_listen_address
from ..http.routes import make_app
from ..http.serve import security, serve
from .exporter import Exporter
from .heap import MMAP_THRESHOLD

log = structlog.get_logger("clonewatch")
STREAM_CHUNK = MMAP_THRESHOLD - 8 * 1024    # pieces joined per write: under heap.py's threshold, so from the heap


def _api_client(core: CoreOptions) -> Any:
    from ..kube.client import load_api_client
    try:
        return load_api_client(core.kubeconfig or None, core.kubernetes_context or None)
    except Exception as exc:
        raise ConfigError("kubeconfig", f"no usable kubeconfig and not running in a cluster ({exc}); "
                                        "pass --kubeconfig, set KUBECONFIG, or --no-kubernetes.enabled") from None


async def run(settings: Settings) -> int:
    core = settings.of(CoreOptions)
    host, port = parse_listen_address(core.web_listen_address)
    needs_api = core.kubernetes_enabled or core.web_authorization == "kubernetes"
    api = _api_client(core) if needs_api else None
    sec = security(core.web_config_file, core.web_authorization, api)
    exporter = Exporter(settings, sec)
    served = await serve(make_app(exporter, STREAM_CHUNK), host, port, sec, core.web_listen_address)
    await exporter.start(api if core.kubernetes_enabled else None)
    log.info("listening", address=core.web_listen_address)
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
