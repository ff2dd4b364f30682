"""A backend's refresh loop: refresh now, then every refresh_interval; each refresh marks the
inventory dirty. With Kubernetes, the backend is first told which PVs exist (they decide which pools
to read), and once the PVs are first listed it refreshes again at once so their pools are covered."""

import asyncio

import structlog

from ..backends.base import Backend
from ..kube.packed import unpack
from ..kube.resources import PV
from ..kube.store import Store
from .readiness import Readiness

log = structlog.get_logger("clonewatch")


async def refresh_forever(backend: Backend, store: Store, kubernetes: bool, readiness: Readiness,
                          dirty: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    pvs_known = not kubernetes
    while True:
        # Refresh right away (configured targets, and backend_up even while the API is away).
        covers_pvs = pvs_known or store.watch(PV.name).listed
        if kubernetes:
            # Unpacking and mapping every PV costs ms per 10k: done off the event loop (scrapes
            # wait on it), from a snapshot of the packed PVs (the store changes on this thread only).
            await asyncio.to_thread(backend.want, map(unpack, list(store.objects[PV.name].raw.values())))
        try:
            await backend.refresh()
        except Exception:       # a backend bug must not stop its refreshes for good
            log.exception("backend_refresh_crashed", backend=backend.name)
        if covers_pvs:
            pvs_known = True
            readiness.refreshed(backend.name)     # readiness counts only refreshes that knew the PVs
        dirty.set()
        deadline = loop.time() + backend.refresh_interval
        while loop.time() < deadline and (pvs_known or not store.watch(PV.name).listed):
            await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))
