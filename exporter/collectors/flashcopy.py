"""Background copies (IBM FlashCopy mappings) per target volume: how far each has gone.

A FlashCopy clone with a copy rate above 0 turns into a full copy in the background; these
series show it happening, next to the family efficiency that decays with it.
"""

from ..exposition.metric import GAUGE, RowMetrics, Value
from ..inventory.pipeline import Inventory
from ..model.rows import VolumeRow
from .base import rows

COPY: RowMetrics[VolumeRow] = RowMetrics(("backend", "target", "volume"),
                                         lambda row: (row.backend, row.volume.target, row.volume.volume))


@COPY.metric("clonewatch_flashcopy_info", GAUGE,
             "A FlashCopy mapping feeding a volume from its source, with the array's status for it. Always 1.",
             ("source_volume", "mapping", "status"))
def _info(row: VolumeRow) -> Value:
    c = row.volume.copy
    return None if c is None else ((row.volume.parent, c.mapping, c.status), 1)


@COPY.metric("clonewatch_flashcopy_progress_ratio", GAUGE,
             "Part of the source's data the mapping has copied into the volume (0-1); at 1 the volume "
             "is a full copy and shares nothing with its source.")
def _progress(row: VolumeRow) -> Value:
    c = row.volume.copy
    return None if c is None else ((), c.progress_ratio)


@COPY.metric("clonewatch_flashcopy_copy_rate", GAUGE,
             "The mapping's background copy rate setting (0-150, the array's scale; 0 = copy-on-write only).")
def _rate(row: VolumeRow) -> Value:
    c = row.volume.copy
    return None if c is None else ((), c.copy_rate)


def _with_copy(inv: Inventory, key: tuple[int, str]) -> VolumeRow | None:
    row = inv.volume_rows.get(key)
    return row if row is not None and row.volume.copy is not None else None


SPEC = rows("flashcopy", 50, COPY, lambda d: d.volumes, _with_copy)
