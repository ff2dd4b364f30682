"""One collector per file. Object collectors keep their metric families as text (exposition.Section),
re-rendering only the rows an inventory update touched; status collectors (backend, kubernetes) are
client_python custom collectors built fresh each scrape."""

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from ..exposition.section import Lines, MetricDef, Part, Section
from ..inventory.pipeline import Dirty, Inventory

Row = TypeVar("Row", bound=Hashable)


class TextCollector(Protocol):
    """An object collector: takes in what an inventory update changed, hands out its body's pieces."""

    def update(self, inv: Inventory, dirty: Dirty) -> None: ...

    def parts(self) -> list[Part]: ...


class RowCollector(Generic[Row]):
    """An object collector over one kind of inventory row: puts the rows an update touched."""

    def __init__(self, defs: Sequence[MetricDef], render: Callable[[Row], Lines],
                 touched: Callable[[Dirty], Iterable[Any]], row: Callable[[Inventory, Any], Row | None]) -> None:
        self.section: Section[Row] = Section(defs, render)
        self._touched, self._row = touched, row

    def update(self, inv: Inventory, dirty: Dirty) -> None:
        self.section.fill((key, self._row(inv, key)) for key in self._touched(dirty))

    def parts(self) -> list[Part]:
        return self.section.parts()
