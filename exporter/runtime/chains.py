"""A volume whose parent chain breaks is logged once when it breaks, and again only if it breaks
anew (its row says so on every scrape: clonewatch_volume_chain_broken_info)."""

from collections.abc import Sequence

import structlog

from ..backends.base import Backend
from ..inventory.dirty import Dirty
from ..inventory.pipeline import Inventory

log = structlog.get_logger("clonewatch")


class BrokenChains:
    def __init__(self, backends: Sequence[Backend]) -> None:
        self._names = [b.name for b in backends]
        self._broken: dict[tuple[str, str], tuple[str, str]] = {}      # (backend, volume) -> (parent, why)

    def note(self, inv: Inventory, dirty: Dirty) -> None:
        for position, volume in dirty.volumes:
            row = inv.volume_rows.get((position, volume))
            now = (row.volume.parent, row.broken) if row is not None and row.broken else None
            key = (self._names[position], volume)
            if now is not None and self._broken.get(key) != now:
                log.warning("volume_chain_broken", backend=key[0], volume=volume, parent=now[0], reason=now[1])
            if now is None:
                self._broken.pop(key, None)
            else:
                self._broken[key] = now
