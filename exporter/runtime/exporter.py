"""The running exporter: watches and backend refreshes feed the inventory; a rebuild re-derives and
re-renders what they changed (runtime.rebuild); readiness follows what was rendered (runtime.readiness).

Nothing in the scrape path waits on Kubernetes or storage: /metrics serves the last rendered
body plus a few status metrics built fresh.
"""

import asyncio
import gzip
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from ..backends import registry as backend_registry
from ..backends.base import TargetState
from ..collectors import registry as collector_registry
from ..collectors.base import Context
from ..config.core import CoreOptions
from ..config.settings import Settings
from ..http.serve import Security
from ..inventory.pipeline import Inventory
from ..kube.resources import ALL
from ..kube.store import Store
from ..kube.watch import Watcher, WatchSettings
from ..model.rows import View
from ..model.unclaimed import UnclaimedSettings
from .readiness import Readiness
from .rebuild import Rebuilder
from .refresh import refresh_forever


class Exporter:
    def __init__(self, settings: Settings, web: Security | None = None) -> None:
        self.settings = settings
        self.core = core = settings.of(CoreOptions)
        self.kubernetes = core.kubernetes_enabled
        self.store = Store(ALL, core.kubernetes_namespaces)
        self.backends = backend_registry.build(settings)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.readiness = Readiness(self.store, [b.name for b in self.backends], self.kubernetes)
        context = Context(self.kubernetes, self.store, self._backend_states, web or Security(), self)
        self.rebuilder = Rebuilder(self.store, self.backends, self.kubernetes, self.readiness,
                                   lambda: collector_registry.text_collectors(context), core.rebuild_debounce,
                                   UnclaimedSettings(core.unclaimed_temp_age))
        # The scrape-time collectors, in exposition order; the object ones come with each fresh inventory.
        self.metrics = CollectorRegistry(auto_describe=False)
        for c in collector_registry.scrape_collectors(context):
            self.metrics.register(c)
        self._stopping = threading.Event()
        self._watchers: list[Watcher] = []
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, api_client: Any = None) -> None:
        loop = self.loop = asyncio.get_running_loop()
        if self.kubernetes:
            s = self.core
            ws = WatchSettings(watch_timeout_seconds=s.kubernetes_watch_timeout,
                               read_timeout_seconds=s.kubernetes_read_timeout,
                               backoff_max_seconds=s.kubernetes_backoff_max,
                               absent_recheck_seconds=s.kubernetes_absent_recheck)
            by_name = {r.name: r for r in self.store.resources}
            for resource, namespace in self.store.watches:       # one watcher per (resource, namespace)
                w = Watcher(api_client, by_name[resource], namespace or None, self.store, loop, ws, self._stopping)
                self._watchers.append(w)
                w.start()
        for backend in self.backends:
            refresh = refresh_forever(backend, self.store, self.kubernetes, self.readiness, self.rebuilder.dirty)
            self._tasks.append(asyncio.create_task(refresh, name=f"refresh-{backend.name}"))
        self._tasks.append(asyncio.create_task(self.rebuilder.run(), name="rebuild"))

    async def stop(self) -> None:
        self._stopping.set()
        for w in self._watchers:
            w.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for backend in self.backends:
            close = getattr(backend, "close", None)      # backends that hold connections
            if close is not None:
                await close()

    def not_ready(self) -> list[str]:
        """Why /readyz says 503; none when ready."""
        return self.readiness.reasons()

    # -- what the rebuilds made ----------------------------------------------------------------
    @property
    def inventory(self) -> Inventory | None:
        return self.rebuilder.inventory

    @property
    def rebuild_seconds(self) -> float:
        return self.rebuilder.rebuild_seconds

    @property
    def rebuilt_at(self) -> float:
        return self.rebuilder.rebuilt_at

    @property
    def rebuild_failures(self) -> int:
        return self.rebuilder.rebuild_failures

    @property
    def view(self) -> View:
        """The whole derived inventory as lists (tests, debugging): O(everything), not for the scrape path."""
        with self.rebuilder.lock:
            inv = self.rebuilder.inventory
            return inv.view() if inv is not None else View()

    @property
    def body(self) -> bytes:
        """The object metrics as plain text. Joined on each use, not kept: at 50,000 PVCs that is
        69 MB, and Prometheus asks for gzip."""
        return b"".join([p for p, _ in self.rebuilder.parts])

    def _backend_states(self) -> Iterator[tuple[str, TargetState]]:
        # From the rendered inventory, not the live backends: up/down always matches the bytes served.
        inv = self.rebuilder.inventory
        states = inv.states if inv is not None else {}
        for (backend, _), st in sorted(states.items()):
            yield backend, st

    # -- scrape -----------------------------------------------------------------------------
    def scrape(self, want_gzip: bool) -> bytes:
        return b"".join(self.gzip_pieces() if want_gzip else self.plain_pieces())

    def gzip_pieces(self) -> list[bytes]:
        """The gzip body as two members, written one after the other (not joined: that would copy
        the big one per scrape). Concatenated gzip members decode as one stream (RFC 1952); the
        big one is compressed once per update, the small dynamic part per scrape."""
        return [self.rebuilder.body_gz, gzip.compress(generate_latest(self.metrics), 6)]

    def plain_pieces(self) -> list[bytes]:
        """The uncompressed body as the pieces it is kept in: the server streams them rather than
        joining 69 MB (50k PVCs) for each plain scrape."""
        return [p for p, _ in self.rebuilder.parts] + [generate_latest(self.metrics)]
