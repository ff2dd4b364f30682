"""The rebuild loop: gathers the store's changes and the backends' latest states (debounced), updates
the inventory and its collectors in a worker thread, and publishes the rendered pieces.

A rebuild that fails is counted and logged, the last good metrics keep being served, and the next
rebuild starts over from the whole store: a half-applied update cannot be trusted.
"""

import asyncio
import copy
import gc
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import structlog

from ..backends.base import Backend, TargetState
from ..collectors.base import TextCollector
from ..exposition.section import Part
from ..inventory.pipeline import Changes, Inventory, everything
from ..kube.resources import PV, PVC, VOLUMESNAPSHOTCONTENT
from ..kube.store import Store
from ..model.unclaimed import DEFAULTS, UnclaimedSettings
from .chains import BrokenChains
from .heap import LARGE_UPDATE, release_free_memory
from .readiness import Readiness

log = structlog.get_logger("clonewatch")
States = dict[str, dict[str, TargetState]]


class Rebuilder:
    def __init__(self, store: Store, backends: Sequence[Backend], kubernetes: bool, readiness: Readiness,
                 collectors: Callable[[], list[TextCollector]], debounce: float,
                 unclaimed: UnclaimedSettings = DEFAULTS) -> None:
        self._store, self._backends, self._kubernetes = store, list(backends), kubernetes
        self._unclaimed = unclaimed
        self._readiness, self._new_collectors, self._debounce = readiness, collectors, debounce
        self.dirty = asyncio.Event()            # set by backend refreshes; the store has its own
        self.lock = threading.Lock()            # held while the inventory changes
        self.inventory: Inventory | None = None     # None: the next rebuild starts from scratch
        self.collectors: list[TextCollector] = []
        self.parts: tuple[Part, ...] = ()
        self.body_gz = b""
        self.rebuild_seconds = 0.0
        self.rebuilt_at = 0.0
        self.rebuild_failures = 0
        self._chains = BrokenChains(self._backends)

    async def run(self) -> None:
        seen = -1
        while True:
            if seen == self._store.generation and not self.dirty.is_set():
                await self._changed()
                await asyncio.sleep(self._debounce)
            self.dirty.clear()
            seen = self._store.generation
            covered = self._readiness.coverage()
            changes = self._store.take_changes()
            if self.inventory is None:
                changes = everything(self._store.objects)
            states = {b.name: {t: copy.copy(st) for t, st in b.states().items()} for b in self._backends}
            try:
                await asyncio.to_thread(self._rebuild, changes, states, self._claims_complete())
            except Exception:
                self.inventory = None
                self.rebuild_failures += 1
                log.exception("rebuild_failed")
                await asyncio.sleep(1)
                continue
            self._readiness.rendered(covered)
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

    async def _changed(self) -> None:
        """Until the store changes or a refresh marks the inventory dirty."""
        self._store.changed.clear()
        waiters = [asyncio.create_task(self._store.changed.wait()), asyncio.create_task(self.dirty.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    def _claims_complete(self) -> bool:
        """Whether every PV, PVC and VolumeSnapshotContent is known: their first lists are in, and their
        watches did not fail since (a volume no PV maps to, made for no PVC that waits, is then really
        unclaimed)."""
        return all(w.listed and w.healthy for w in (self._store.watch(r.name) for r in (PV, PVC, VOLUMESNAPSHOTCONTENT)))

    def _rebuild(self, changes: Changes, states: Mapping[str, Mapping[str, TargetState]],
                 claims_complete: bool = True) -> None:
        with self.lock:
            start = time.perf_counter()
            inv, collectors = self.inventory, self.collectors
            if inv is None:
                inv, collectors = Inventory(self._backends, self._kubernetes, self._unclaimed), self._new_collectors()
            dirty = inv.update(changes, states, claims_complete)
            for c in collectors:
                c.update(inv, dirty)
            parts = tuple(p for c in collectors for p in c.parts())
            # Compressed here, off the event loop, per block of rows: Prometheus asks for gzip every scrape.
            gz = b"".join(g for _, g in parts)
            self.inventory, self.collectors, self.parts, self.body_gz = inv, collectors, parts, gz
            self._chains.note(inv, dirty)
            self.rebuild_seconds = time.perf_counter() - start
            self.rebuilt_at = time.time()
