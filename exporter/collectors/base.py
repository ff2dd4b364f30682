"""What a collector is, what it may be built from, and how it declares itself.

Two kinds (`CollectorSpec.stage`):
- "rebuild": keeps its metric families as text (exposition.Section) and re-renders only the rows an
  inventory update touched; the scrape serves the text as it is.
- "scrape": a client_python custom collector built fresh each scrape from counters the exporter
  already holds (collect() never does I/O).
"""

import asyncio
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from prometheus_client.registry import Collector

from ..backends.base import TargetState
from ..exposition.metric import Metric, RowMetrics
from ..exposition.section import Part, Section
from ..http.serve import Security
from ..inventory.dirty import Dirty
from ..inventory.pipeline import Inventory
from ..kube.store import Store

Row = TypeVar("Row", bound=Hashable)
States = Callable[[], Iterable[tuple[str, TargetState]]]   # (backend name, state) as last rendered


class TextCollector(Protocol):
    """A "rebuild" collector: takes in what an inventory update changed, hands out its body's pieces."""

    def update(self, inv: Inventory, dirty: Dirty) -> None: ...

    def parts(self) -> list[Part]: ...


class Status(Protocol):
    """The exporter's own state, for its self-metrics."""

    @property
    def rebuild_seconds(self) -> float: ...

    @property
    def rebuilt_at(self) -> float: ...

    @property
    def rebuild_failures(self) -> int: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None: ...


@dataclass(frozen=True)
class Context:
    """What a collector may be built from."""
    kubernetes: bool
    store: Store
    states: States
    security: Security
    status: Status


@dataclass(frozen=True)
class CollectorSpec:
    name: str
    order: int                              # the exposition's order, within its stage
    stage: Literal["rebuild", "scrape"]
    metrics: tuple[Metric, ...]             # everything it may render (docs/metrics.md lists these)
    build: Callable[[Context], Sequence[Any]]   # its collectors; none where it does not apply


class RowCollector(Generic[Row]):
    """A "rebuild" collector over one kind of inventory row: puts the rows an update touched."""

    def __init__(self, metrics: RowMetrics[Row], touched: Callable[[Dirty], Iterable[Any]],
                 row: Callable[[Inventory, Any], Row | None]) -> None:
        self.section: Section[Row] = Section(metrics)
        self._touched, self._row = touched, row

    def update(self, inv: Inventory, dirty: Dirty) -> None:
        self.section.fill((key, self._row(inv, key)) for key in self._touched(dirty))

    def parts(self) -> list[Part]:
        return self.section.parts()


def rows(name: str, order: int, metrics: RowMetrics[Row], touched: Callable[[Dirty], Iterable[Any]],
         row: Callable[[Inventory, Any], Row | None]) -> CollectorSpec:
    """The spec of a collector over one kind of inventory row."""
    return CollectorSpec(name, order, "rebuild", metrics.metrics, lambda ctx: [RowCollector(metrics, touched, row)])


def scrape(name: str, order: int, metrics: Sequence[Metric], build: Callable[[Context], Collector | None]) -> CollectorSpec:
    """The spec of a scrape-time collector; `build` answers None where it does not apply."""
    def collectors(ctx: Context) -> list[Collector]:
        c = build(ctx)
        return [] if c is None else [c]
    return CollectorSpec(name, order, "scrape", tuple(metrics), collectors)
