"""Background copies (IBM FlashCopy mappings) per target volume: how far each has gone.

A FlashCopy clone with a copy rate above 0 turns into a full copy in the background; these
series show it happening, next to the family efficiency that decays with it.
"""

from ..exposition.section import Lines, MetricDef, sample
from ..inventory.pipeline import Inventory
from ..model.rows import VolumeRow
from . import RowCollector

INFO = MetricDef("clonewatch_flashcopy_info", "gauge",
                 "A FlashCopy mapping feeding a volume from its source, with the array's status for it. Always 1.")
PROGRESS = MetricDef("clonewatch_flashcopy_progress_ratio", "gauge",
                     "Part of the source's data the mapping has copied into the volume (0-1); at 1 the volume "
                     "is a full copy and shares nothing with its source.")
RATE = MetricDef("clonewatch_flashcopy_copy_rate", "gauge",
                 "The mapping's background copy rate setting (0-150, the array's scale; 0 = copy-on-write only).")
DEFS = (INFO, PROGRESS, RATE)


def render(row: VolumeRow) -> Lines:
    v, c = row.volume, row.volume.copy
    if c is None:
        return {}           # only volumes with a background copy are handed here
    who = (("backend", row.backend), ("target", v.target), ("volume", v.volume))
    return {
        INFO.name: [sample(INFO.name, who + (("source_volume", v.parent), ("mapping", c.mapping),
                                             ("status", c.status)), 1)],
        PROGRESS.name: [sample(PROGRESS.name, who, c.progress_ratio)],
        RATE.name: [sample(RATE.name, who, c.copy_rate)],
    }


def _with_copy(inv: Inventory, key: tuple[int, str]) -> VolumeRow | None:
    row = inv.volume_rows.get(key)
    return row if row is not None and row.volume.copy is not None else None


class FlashCopyCollector(RowCollector[VolumeRow]):
    def __init__(self) -> None:
        super().__init__(DEFS, render, lambda d: d.volumes, _with_copy)
