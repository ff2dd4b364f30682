"""Metrics declared once: name, type, help, label names, and for row metrics the function that gives
a row's value (kube-state-metrics' family generators are the model).

A collector cannot render a metric it did not declare (it hands out values, never names) nor a label
it did not declare (the names come from the declaration; a wrong number of values raises
UndeclaredLabel at once, in the rebuild or the scrape, where tests see it).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .text import escape, format_value, label_text

GAUGE, COUNTER, HISTOGRAM = "gauge", "counter", "histogram"
Row = TypeVar("Row")
# A row's sample of one metric: the values of the metric's own labels and the value; None = absent.
Value = tuple[tuple[str, ...], float] | None


class UndeclaredLabel(ValueError):
    """Label values that do not match the labels the metric declared."""


@dataclass(frozen=True, eq=False)
class Metric:
    name: str
    type: str                       # GAUGE | COUNTER | HISTOGRAM
    help: str
    labels: tuple[str, ...] = ()
    # Values a backend refresh keeps changing (bytes consumed): compressed per CHUNK rows, so a refresh
    # that changes a few rows of a block recompresses those rows' stretch, not the block's.
    volatile: bool = False

    def header(self) -> str:
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.type}\n"

    @property
    def samples(self) -> tuple[str, ...]:
        """The names its samples carry in the exposition."""
        if self.type == COUNTER:
            return (f"{self.name}_total",)
        if self.type == HISTOGRAM:
            return tuple(f"{self.name}_{s}" for s in ("bucket", "sum", "count"))
        return (self.name,)

    def check(self, values: Sequence[str], skip: int = 0) -> None:
        if len(values) != len(self.labels) - skip:
            raise UndeclaredLabel(f"{self.name}: {len(values)} label values for {self.labels[skip:]}")

    def line(self, values: Sequence[str], value: float, suffix: str = "", extra: str = "") -> str:
        """One sample line with the declared labels' values (`extra`: pre-rendered labels after them,
        such as a histogram bucket's le)."""
        self.check(values)
        body = label_text(zip(self.labels, values, strict=True))
        body = f"{body},{extra}" if body and extra else body or extra
        name = self.name + suffix
        return f"{name}{{{body}}} {format_value(value)}\n" if body else f"{name} {format_value(value)}\n"

    def family(self) -> "GaugeMetricFamily | CounterMetricFamily":
        """A client_python family for a scrape-time collector, with the declared labels; add_metric
        with the wrong number of label values raises instead of zipping them short."""
        if self.type == COUNTER:
            return _Counter(self.name, self.help, labels=self.labels)
        if self.type == GAUGE:
            return _Gauge(self.name, self.help, labels=self.labels)
        raise ValueError(f"{self.name}: no scrape-time family for type {self.type}")


def _checked(family: Any, labels: Sequence[str]) -> None:
    if len(labels) != len(family._labelnames):
        raise UndeclaredLabel(f"{family.name}: {len(labels)} label values for {family._labelnames}")


class _Gauge(GaugeMetricFamily):
    def add_metric(self, labels: Sequence[str], value: float, timestamp: Any = None) -> None:
        _checked(self, labels)
        super().add_metric(labels, value, timestamp)


class _Counter(CounterMetricFamily):
    def add_metric(self, labels: Sequence[str], value: float, created: float | None = None,
                   timestamp: Any = None, exemplar: Any = None) -> None:
        _checked(self, labels)
        super().add_metric(labels, value, created, timestamp, exemplar)


@dataclass(frozen=True, eq=False)
class RowMetric(Generic[Row]):
    metric: Metric
    shared: int                             # how many of its labels are the row's shared ones
    produce: Callable[[Row], Value]
    # Pre-rendered pieces of its lines: "name{", "name ", and its own labels as a format string
    # ('a="{}",b="{}"'), which fills them in one call.
    head: str = ""
    bare: str = ""
    own: str = ""
    count: int = 0


class RowMetrics(Generic[Row]):
    """The metrics one kind of row renders, declared together, in exposition order: the labels every
    line of a row starts with and how to read their values from a row, then each metric with its own
    labels and the function that gives the row's value (`metric`, a decorator).

    A row's shared labels are rendered once and reused by each of its lines."""

    def __init__(self, shared: tuple[str, ...], values: Callable[[Row], tuple[str, ...]]) -> None:
        self.shared = shared
        self._values = values
        self._who = ",".join(f'{k}="{{}}"' for k in shared)     # filled in one call per row
        self._declared: list[RowMetric[Row]] = []

    def metric(self, name: str, type: str, help: str, labels: tuple[str, ...] = (),
               volatile: bool = False) -> Callable[[Callable[[Row], Value]], Callable[[Row], Value]]:
        def declare(produce: Callable[[Row], Value]) -> Callable[[Row], Value]:
            m = Metric(name, type, help, self.shared + labels, volatile)
            own = ",".join(f'{k}="{{}}"' for k in labels)
            self._declared.append(RowMetric(m, len(self.shared), produce, f"{name}{{", f"{name} ", own, len(labels)))
            return produce
        return declare

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return tuple(d.metric for d in self._declared)

    def texts(self, row: Row) -> list[str]:
        """The row's lines per metric, in declaration order ("" where absent)."""
        shared = self._values(row)
        if len(shared) != len(self.shared):
            raise UndeclaredLabel(f"{len(shared)} shared label values for {self.shared}")
        who = self._who.format(*map(escape, shared))
        out = []
        for d in self._declared:
            got = d.produce(row)
            if got is None:
                out.append("")
                continue
            values, value = got
            if len(values) != d.count:
                raise UndeclaredLabel(f"{d.metric.name}: {len(values)} label values for {d.metric.labels[d.shared:]}")
            if values:
                own = d.own.format(*map(escape, values))
                body = f"{who},{own}" if who else own
            else:
                body = who
            out.append(f"{d.head}{body}}} {format_value(value)}\n" if body else f"{d.bare}{format_value(value)}\n")
        return out

    def lines(self, row: Row) -> dict[str, str]:
        """metric name -> the row's line, for the metrics it has (tests, debugging)."""
        return {m.name: t for m, t in zip(self.metrics, self.texts(row), strict=True) if t}
