"""How long CDI took to clone, per clone type and StorageClass, as a histogram.

Derived from the inventory, not observed as events: every DataVolume clone that is done counts
once while it exists (creation -> its Ready condition turning True), so a restart re-derives the
same numbers instead of observing them twice, and a deleted clone drops out. Use
histogram_quantile() on the buckets as they are, not on rate(): the counts can go down.
"""

import bisect
import math

from ..exposition.metric import HISTOGRAM, Metric
from ..exposition.section import Part, gzip_member
from ..exposition.text import format_value
from ..inventory.dirty import Dirty
from ..inventory.pipeline import Inventory
from .base import CollectorSpec

DURATION = Metric("clonewatch_clone_duration_seconds", HISTOGRAM,
                  "Seconds from a DataVolume clone's creation to its Ready condition, for the completed "
                  "clones that exist now (each counted once; counts drop when clones are deleted).",
                  ("clone_type", "storageclass"))
BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
Group = tuple[str, str]         # (clone type, StorageClass)


def render(group: Group, values: list[float]) -> str:
    """values: sorted. The sum is exact (fsum), so it does not depend on the order clones came in."""
    out = [DURATION.line(group, bisect.bisect_right(values, bound), "_bucket", f'le="{format_value(bound)}"')
           for bound in BUCKETS]
    out.append(DURATION.line(group, len(values), "_bucket", 'le="+Inf"'))
    out.append(DURATION.line(group, round(math.fsum(values), 3), "_sum"))
    out.append(DURATION.line(group, len(values), "_count"))
    return "".join(out)


class DurationCollector:
    def __init__(self) -> None:
        self._of: dict[tuple[str, str], tuple[Group, float]] = {}     # PVC -> its group and duration
        self._groups: dict[Group, list[float]] = {}                   # sorted durations
        self._text: dict[Group, str] = {}
        self._part: Part | None = None

    def update(self, inv: Inventory, dirty: Dirty) -> None:
        touched: set[Group] = set()
        for key in dirty.pvcs:
            row = inv.pvcs.get(key)
            r = row.record if row is not None else None
            new = ((r.clone_type, r.storageclass), r.duration_seconds) \
                if r is not None and r.is_clone and r.duration_seconds is not None else None
            old = self._of.get(key)
            if old == new:
                continue
            if old is not None:
                values = self._groups[old[0]]
                del values[bisect.bisect_left(values, old[1])]
                touched.add(old[0])
                del self._of[key]
            if new is not None:
                bisect.insort(self._groups.setdefault(new[0], []), new[1])
                touched.add(new[0])
                self._of[key] = new
        for group in touched:
            if self._groups.get(group):
                self._text[group] = render(group, self._groups[group])
            else:
                self._groups.pop(group, None)
                self._text.pop(group, None)
        if touched or self._part is None:
            text = (DURATION.header() + "".join(self._text[g] for g in sorted(self._text))).encode()
            self._part = (text, gzip_member(text))

    def parts(self) -> list[Part]:
        return [self._part] if self._part is not None else []


SPEC = CollectorSpec("duration", 60, "rebuild", (DURATION,), lambda ctx: [DurationCollector()])
