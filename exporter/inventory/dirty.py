"""What an inventory update changed, by row key: the collectors re-render these rows and nothing else."""

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class Dirty:
    pvcs: set[tuple[str, str]] = field(default_factory=set)
    families: set[Hashable] = field(default_factory=set)
    storageclasses: set[str] = field(default_factory=set)
    volumes: set[tuple[int, str]] = field(default_factory=set)
    vms: set[tuple[str, str]] = field(default_factory=set)
    vm_volumes: set[tuple[str, str, str, str]] = field(default_factory=set)
    vm_clones: set[tuple[str, str]] = field(default_factory=set)
    unclaimed: set[tuple[int, str]] = field(default_factory=set)            # volume rows, as `volumes`
    unclaimed_sums: set[tuple[str, str, str]] = field(default_factory=set)  # (backend, target, reason)

    def __bool__(self) -> bool:
        return bool(self.pvcs or self.families or self.storageclasses or self.volumes or self.vms
                    or self.vm_volumes or self.vm_clones or self.unclaimed or self.unclaimed_sums)
