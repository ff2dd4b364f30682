"""A measurement point: what the storage holds for the golden and each group of clones, read
through the exporter's own backend code and efficiency arithmetic."""

import time
from dataclasses import asdict, dataclass, field

from exporter.public import family_numbers, logical_bytes

from .cloners.base import Cloner


@dataclass
class GroupNumbers:
    method: str
    clones: int
    measured: int
    consumed_bytes: int          # golden + this group's clones
    full_copy_bytes: int
    saved_bytes: int
    efficiency_ratio: float
    clones_consumed_bytes: int   # this group's clones alone


@dataclass
class Point:
    label: str
    timestamp: float
    drift_bytes_per_clone: int
    volumes: int
    provisioned_bytes: int
    consumed_bytes: int
    full_copy_bytes: int
    saved_bytes: int
    efficiency_ratio: float
    clone_types: list[str]
    groups: dict[str, GroupNumbers] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    volume_detail: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def measure(cloner: Cloner, label: str, members: dict[str, list[str]], methods: dict[str, str], drift: int) -> Point:
    volumes = cloner.measure()
    logical = logical_bytes(volumes)
    golden = cloner.golden_id()
    missing: list[str] = []

    def pair(vid: str) -> tuple[int, int] | None:
        vol, full = volumes.get(vid), logical.get(vid)
        if vol is None or full is None:
            missing.append(vid)
            return None
        return vol.consumed_bytes, full

    g = pair(golden)
    base = [g] if g else []
    groups, every, ids = {}, list(base), [golden]
    for group, names in members.items():
        pairs = [p for p in (pair(cloner.volume_id(n)) for n in names) if p]
        ids += [cloner.volume_id(n) for n in names]
        n = family_numbers(base + pairs)
        groups[group] = GroupNumbers(methods[group], len(names), len(pairs), n.consumed_bytes, n.full_copy_bytes,
                                     n.saved_bytes, n.efficiency_ratio, sum(own for own, _ in pairs))
        every += pairs
    total = family_numbers(every)
    present = [volumes[i] for i in ids if i in volumes]
    return Point(label=label, timestamp=time.time(), drift_bytes_per_clone=drift, volumes=len(present),
                 provisioned_bytes=sum(v.provisioned_bytes for v in present), consumed_bytes=total.consumed_bytes,
                 full_copy_bytes=total.full_copy_bytes, saved_bytes=total.saved_bytes,
                 efficiency_ratio=total.efficiency_ratio,
                 clone_types=cloner.clone_types([n for names in members.values() for n in names],
                                                [methods[g] for g, names in members.items() for _ in names]),
                 groups=groups, missing=sorted(set(missing)),
                 volume_detail={v.volume: {"consumed_bytes": v.consumed_bytes, "provisioned_bytes": v.provisioned_bytes,
                                           "parent": v.parent} for v in present})
