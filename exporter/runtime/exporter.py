"""The running exporter: watches and backend refreshes feed the inventory; a rebuild re-derives and
re-renders what they changed.

Nothing in the scrape path waits on Kubernetes or storage: /metrics serves the last rendered
body plus a few status metrics built fresh.
"""

import asyncio
import copy
import gc
import gzip
import threading
import time

import structlog
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .. import __version__
from ..backends import registry
from ..collectors import TextCollector
from ..collectors.backend import BackendCollector
from ..collectors.duration import DurationCollector
from ..collectors.flashcopy import FlashCopyCollector
from ..collectors.kubernetes import KubernetesCollector
from ..collectors.pvc import PvcCollector
from ..collectors.source import SourceCollector
from ..collectors.storageclass import StorageClassCollector
from ..collectors.volume import VolumeCollector
from ..config.core import CoreOptions
from ..config.settings import Settings
from ..exposition.section import Part
from ..http.metrics import WebCollector
from ..http.serve import Security
from ..inventory.pipeline import Inventory, everything
from ..kube.packed import unpack
from ..kube.resources import ALL, PV
from ..kube.store import Store
from ..kube.watch import Watcher, WatchSettings
from ..model.rows import View
from .heap import LARGE_UPDATE, release_free_memory

log = structlog.get_logger("clonewatch")


class _SelfCollector(Collector):
    def __init__(self, exporter: "Exporter") -> None:
        self._e = exporter

    def collect(self):
        e = self._e
        info = GaugeMetricFamily("clonewatch_build_info", "clonewatch version. Always 1.", labels=["version"])
        info.add_metric([__version__], 1)
        rebuild = GaugeMetricFamily("clonewatch_rebuild_duration_seconds",
                                    "How long the last inventory update took (re-deriving and re-rendering what changed).")
        rebuild.add_metric([], e.rebuild_seconds)
        last = GaugeMetricFamily("clonewatch_last_rebuild_timestamp_seconds",
                                 "Unix time the served object metrics were last rendered.")
        last.add_metric([], e.rebuilt_at)
        failures = CounterMetricFamily("clonewatch_rebuild_failures",
                                       "Rebuilds of the object metrics that failed (a bug: the last good "
                                       "metrics keep being served; see the log's rebuild_failed).")
        failures.add_metric([], e.rebuild_failures)
        tasks = GaugeMetricFamily("clonewatch_event_loop_tasks",
                                  "asyncio tasks alive on the exporter's event loop (watchers, backend "
                                  "refreshes, the rebuild, requests in flight); steady growth is a leak.")
        tasks.add_metric([], len(asyncio.all_tasks(e.loop)) if e.loop is not None else 0)
        return [info, rebuild, last, failures, tasks]


class Exporter:
    def __init__(self, settings: Settings, web: Security | None = None) -> None:
        self.settings = settings
        self.kubernetes = settings.of(CoreOptions).kubernetes_enabled
        self.store = Store(ALL)
        self.backends = registry.build(settings)
        self.inventory: Inventory | None = None     # None: the next rebuild starts from scratch
        self.loop: asyncio.AbstractEventLoop | None = None
        self.collectors: list[TextCollector] = []
        self._parts: tuple[Part, ...] = ()
        self._body_gz = b""
        self.rebuild_seconds = 0.0
        self.rebuild_failures = 0
        self._broken: dict[tuple[str, str], tuple[str, str]] = {}
        self.rebuilt_at = 0.0
        self.refreshed: dict[str, int] = {b.name: 0 for b in self.backends}
        self.registry = CollectorRegistry(auto_describe=False)
        for c in (_SelfCollector(self), BackendCollector(self._backend_states), WebCollector(web or Security())):
            self.registry.register(c)
        for standard in (ProcessCollector, PlatformCollector, GCCollector):
            standard(registry=self.registry)
        if self.kubernetes:
            self.registry.register(KubernetesCollector(self.store))
        self._dirty = asyncio.Event()
        self._stopping = threading.Event()
        self._rebuilding = threading.Lock()
        self._watchers: list[Watcher] = []
        self._tasks: list[asyncio.Task] = []
        # What the served metrics include: per backend the refresh count, and whether every
        # resource had been listed. Readiness is judged on this, not on the live state.
        self._rendered_refreshes: dict[str, int] = {}
        self._rendered_synced = False
        self._rendered_once = False

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, api_client=None) -> None:
        loop = self.loop = asyncio.get_running_loop()
        if self.kubernetes:
            s = self.settings.of(CoreOptions)
            ws = WatchSettings(watch_timeout_seconds=s.kubernetes_watch_timeout,
                               read_timeout_seconds=s.kubernetes_read_timeout,
                               backoff_max_seconds=s.kubernetes_backoff_max,
                               absent_recheck_seconds=s.kubernetes_absent_recheck)
            namespaces: list[str | None] = list(s.kubernetes_namespaces) or [None]
            for resource in self.store.resources:
                for ns in (namespaces if resource.namespaced else [None]):
                    w = Watcher(api_client, resource, ns, self.store, loop, ws, self._stopping)
                    self._watchers.append(w)
                    w.start()
        for backend in self.backends:
            self._tasks.append(asyncio.create_task(self._backend_loop(backend), name=f"refresh-{backend.name}"))
        self._tasks.append(asyncio.create_task(self._rebuild_loop(), name="rebuild"))

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

    @property
    def view(self) -> View:
        """The whole derived inventory as lists (tests, debugging): O(everything), not for the scrape path."""
        with self._rebuilding:
            return self.inventory.view() if self.inventory is not None else View()

    @property
    def body(self) -> bytes:
        """The object metrics as plain text. Joined on each use, not kept: at 50,000 PVCs that is
        69 MB, and Prometheus asks for gzip."""
        return b"".join([p for p, _ in self._parts])

    # -- readiness --------------------------------------------------------------------------
    def not_ready(self) -> list[str]:
        reasons = []
        if self.kubernetes and not self._rendered_synced:
            reasons += [f"kubernetes {name} not listed yet" for name, ok in self.store.synced.items() if not ok]
            reasons += [] if reasons else ["kubernetes inventory not rendered yet"]
        reasons += [f"backend {name} not refreshed yet" for name in self.refreshed
                    if not self._rendered_refreshes.get(name)]
        if not self._rendered_once:
            reasons.append("metrics not rendered yet")
        return reasons

    # -- background work --------------------------------------------------------------------
    def _backend_states(self):
        # From the rendered inventory, not the live backends: up/down always matches the bytes served.
        states = self.inventory.states if self.inventory is not None else {}
        for (backend, _), st in sorted(states.items()):
            yield backend, st

    async def _backend_loop(self, backend) -> None:
        loop = asyncio.get_running_loop()
        pvs_known = not self.kubernetes
        while True:
            # Refresh right away (configured targets, and backend_up even while the API is away);
            # once PVs are first listed, refresh again at once so their pools are covered.
            covers_pvs = pvs_known or self.store.synced[PV.name]
            if self.kubernetes:
                # Unpacking and mapping every PV costs ms per 10k: done off the event loop (scrapes
                # wait on it), from a snapshot of the packed PVs (the store changes on this thread only).
                await asyncio.to_thread(backend.want, map(unpack, list(self.store.objects[PV.name].raw.values())))
            try:
                await backend.refresh()
            except Exception:       # a backend bug must not stop its refreshes for good
                log.exception("backend_refresh_crashed", backend=backend.name)
            if covers_pvs:
                pvs_known = True
                self.refreshed[backend.name] += 1     # readiness counts only refreshes that knew the PVs
            self._dirty.set()
            deadline = loop.time() + backend.refresh_interval
            while loop.time() < deadline and (pvs_known or not self.store.synced[PV.name]):
                await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))

    async def _rebuild_loop(self) -> None:
        seen = -1
        while True:
            if seen == self.store.generation and not self._dirty.is_set():
                self.store.changed.clear()
                waiters = [asyncio.create_task(self.store.changed.wait()), asyncio.create_task(self._dirty.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
                await asyncio.sleep(self.settings.of(CoreOptions).rebuild_debounce)
            self._dirty.clear()
            seen = self.store.generation
            covers = (dict(self.refreshed), self.store.ready)
            changes = self.store.take_changes()
            if self.inventory is None:
                changes = everything(self.store.objects)
            states = {b.name: {t: copy.copy(st) for t, st in b.states().items()} for b in self.backends}
            try:
                await asyncio.to_thread(self._rebuild, changes, states)
            except Exception:
                # A half-applied update cannot be trusted: start over from the whole store next time,
                # serving the last good metrics meanwhile.
                self.inventory = None
                self.rebuild_failures += 1
                log.exception("rebuild_failed")
                await asyncio.sleep(1)
                continue
            self._rendered_refreshes, self._rendered_synced = covers
            self._rendered_once = True
            large = len(changes) >= LARGE_UPDATE
            del changes, states
            # The inventory is long-lived and acyclic: keep it out of the cyclic GC's full
            # collections, which otherwise stall the process (and scrapes) for 100s of ms at 10k PVCs.
            gc.freeze()
            if large:
                # Start-up and relists free megabytes of parsed lists and build temporaries; glibc
                # keeps those pages resident (~20 MB at 10k PVCs) unless told. Trimmed once the
                # update and its inputs are dropped, from a thread: it takes ms on a big heap.
                await asyncio.to_thread(release_free_memory)

    def _rebuild(self, changes, states) -> None:
        with self._rebuilding:
            self._update(changes, states)

    def _update(self, changes, states) -> None:
        start = time.perf_counter()
        inv, collectors = self.inventory, self.collectors
        if inv is None:
            inv = Inventory(self.backends, self.kubernetes)
            collectors = [PvcCollector(), SourceCollector(), StorageClassCollector(), VolumeCollector(),
                          FlashCopyCollector(), DurationCollector()]
        dirty = inv.update(changes, states)
        for c in collectors:
            c.update(inv, dirty)
        parts = tuple(p for c in collectors for p in c.parts())
        # Compressed here, off the event loop, per block of rows: Prometheus asks for gzip every scrape.
        gz = b"".join(g for _, g in parts)
        self.inventory, self.collectors, self._parts, self._body_gz = inv, collectors, parts, gz
        for backend, volume in dirty.volumes:
            row = inv.volume_rows.get((backend, volume))
            now = (row.volume.parent, row.broken) if row is not None and row.broken else None
            key = (self.backends[backend].name, volume)
            if now is not None and self._broken.get(key) != now:
                log.warning("volume_chain_broken", backend=key[0], volume=volume, parent=now[0], reason=now[1])
            if now is None:
                self._broken.pop(key, None)     # logged once when it breaks, again only if it breaks anew
            else:
                self._broken[key] = now
        self.rebuild_seconds = time.perf_counter() - start
        self.rebuilt_at = time.time()

    # -- scrape -----------------------------------------------------------------------------
    def scrape(self, want_gzip: bool) -> bytes:
        return b"".join(self.gzip_pieces() if want_gzip else self.plain_pieces())

    def gzip_pieces(self) -> list[bytes]:
        """The gzip body as two members, written one after the other (not joined: that would copy
        the big one per scrape). Concatenated gzip members decode as one stream (RFC 1952); the
        big one is compressed once per update, the small dynamic part per scrape."""
        return [self._body_gz, gzip.compress(generate_latest(self.registry), 6)]

    def plain_pieces(self) -> list[bytes]:
        """The uncompressed body as the pieces it is kept in: the server streams them rather than
        joining 69 MB (50k PVCs) for each plain scrape."""
        return [p for p, _ in self._parts] + [generate_latest(self.registry)]
