"""One collector per file. Object collectors keep their metric families as text (exposition.Section),
re-rendering only the rows an inventory update touched; status collectors (backend, kubernetes) are
client_python custom collectors built fresh each scrape."""

from typing import Protocol

from ..exposition import Part
from ..inventory import Dirty, Inventory


class TextCollector(Protocol):
    """An object collector: takes in what an inventory update changed, hands out its body's pieces."""

    def update(self, inv: Inventory, dirty: Dirty) -> None: ...

    def parts(self) -> list[Part]: ...
