"""How long CDI took to clone, per clone type and StorageClass, as a histogram.

Derived from the inventory, not observed as events: every DataVolume clone that is done counts
once while it exists (creation -> its Ready condition turning True), so a restart re-derives the
same numbers instead of observing them twice, and a deleted clone drops out. Use
histogram_quantile() on the buckets as they are, not on rate(): the counts can go down.
"""

from collections import defaultdict

from ..exposition import MetricDef, format_value, sample
from ..view import View

DURATION = MetricDef("clonewatch_clone_duration_seconds", "histogram",
                     "Seconds from a DataVolume clone's creation to its Ready condition, for the completed "
                     "clones that exist now (each counted once; counts drop when clones are deleted).")
BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)


class DurationCollector:
    def text(self, view: View) -> str:
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        for row in view.pvcs.values():
            r = row.record
            if r.is_clone and r.duration_seconds is not None:
                groups[(r.clone_type, r.storageclass)].append(r.duration_seconds)
        out = [DURATION.header()]
        for (clone_type, storageclass), values in sorted(groups.items()):
            who = (("clone_type", clone_type), ("storageclass", storageclass))
            for bound in BUCKETS:
                out.append(sample(f"{DURATION.name}_bucket", who + (("le", format_value(bound)),),
                                  sum(1 for v in values if v <= bound)))
            out.append(sample(f"{DURATION.name}_bucket", who + (("le", "+Inf"),), len(values)))
            out.append(sample(f"{DURATION.name}_sum", who, round(sum(values), 3)))
            out.append(sample(f"{DURATION.name}_count", who, len(values)))
        return "".join(out)
