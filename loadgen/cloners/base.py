"""The contract every cloner keeps, the errors its verbs raise, and the record of a clone it owns.

The harness and the daemon speak only this protocol; a platform (qcow2 files, RBD images,
Kubernetes DataVolumes) is one class that implements it. Every verb that changes something
checks ownership first: a name without our mark raises NotOwned and nothing is touched.
"""

from dataclasses import dataclass
from typing import Protocol

from exporter.public import Volume


class NotOwned(Exception):
    """A resource without our ownership mark: loadgen never touches it."""


class CloneFailed(Exception):
    """A clone, copy or drift operation failed; counted and reported, the cycle goes on."""


@dataclass
class Owned:
    name: str
    group: str
    method: str
    created: float
    run: str
    drift_bytes: int = 0


class Cloner(Protocol):
    backend: str

    # -- the golden -----------------------------------------------------------------------------
    def golden_exists(self) -> bool: ...

    def ensure_golden(self) -> bool:
        """Create the golden when the scenario allows and it is missing; True if created."""
        ...

    def remove_golden(self) -> None:
        """Remove the golden, only if this scenario created it (else NotOwned)."""
        ...

    # -- clones ---------------------------------------------------------------------------------
    def reserve(self, jobs: list[tuple[str, str, str]]) -> None:
        """Record (name, group, method) of clones about to be created, before creating them, so a
        crash in between leaves marked leftovers, never unmarked ones. No-op where the mark travels
        with the object itself (Kubernetes labels)."""
        return None

    def create(self, name: str, group: str, method: str) -> None: ...

    def drift(self, name: str, start: int, end: int) -> int:
        """Write the clone's drift from byte `start` to `end`; returns bytes written."""
        ...

    def record_drift(self, name: str, total: int) -> None: ...

    def delete(self, name: str) -> None:
        """Delete one of our clones (NotOwned if it is not ours)."""
        ...

    def owned(self) -> list[Owned]:
        """Every clone of this scenario that carries our mark, from any run."""
        ...

    # -- measuring ------------------------------------------------------------------------------
    def measure(self) -> dict[str, Volume]: ...

    def volume_id(self, name: str) -> str: ...

    def golden_id(self) -> str: ...

    def clone_type(self, name: str, method: str) -> str:
        """How the platform says it made this clone; natively, the method asked for."""
        return method

    def clone_types(self, names: list[str], methods: list[str]) -> list[str]:
        """The distinct clone types of these clones (names[i] was made with methods[i])."""
        return sorted({self.clone_type(n, m) for n, m in zip(names, methods, strict=True)})
