"""What a dashboard is, in no renderer's words: panels in rows, queries with their legends, units,
thresholds, variables. dashboards/render/ turns one Board into Grafana JSON, the OpenShift console's
legacy dashboard JSON and a Perses dashboard; each board is written once, in dashboards/boards/.

A Row is one visual line: its panels' widths (of 24 columns, Grafana's and Perses' grid) add up to at
most 24, and a row is as tall as its tallest panel.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

GRID = 24


@dataclass(frozen=True)
class Plain:
    """A value as a plain number, for where a renderer formats no unit: `expr` rescales the query (`{}`
    is the query) and `name` says the unit in the title."""
    expr: str
    name: str


@dataclass(frozen=True)
class Unit:
    """One unit in each renderer's vocabulary."""
    grafana: str | None         # fieldConfig unit; None leaves Grafana's default
    console: str                # the console's formatNumber: bytes, Bps, s, percentunit, short
    perses: str                 # @perses-dev/core FormatOptions.unit
    plain: Plain | None = None

    @property
    def ratio(self) -> bool:
        return self.console == "percentunit"


COUNT = Unit(None, "short", "decimal")
BYTES = Unit("bytes", "bytes", "bytes", Plain("({}) / 1073741824", "GiB"))
BYTES_PER_SECOND = Unit("Bps", "Bps", "bytes/sec", Plain("({}) / 1048576", "MiB/s"))
SECONDS = Unit("s", "s", "seconds", Plain("{}", "s"))
PER_SECOND = Unit("ops", "short", "ops/sec", Plain("{}", "per second"))
REQUESTS_PER_SECOND = Unit("reqps", "short", "requests/sec", Plain("{}", "per second"))
RATIO = Unit("percentunit", "percentunit", "percent-decimal", Plain("100 * ({})", "%"))


@dataclass(frozen=True)
class Query:
    """A PromQL expression and the name of each series it returns ({{label}} templates). In a table
    the legend is the header of the query's value column; a table query without one hides its value."""
    expr: str
    legend: str = ""
    unit: Unit | None = None        # a table's value column, when it is not the panel's unit


@dataclass(frozen=True)
class Step:
    """From `value` up (Grafana's sense: value >= step), the panel's value is drawn in `color`."""
    value: float
    color: str                      # a Grafana colour name: the console knows only those


@dataclass(frozen=True)
class Thresholds:
    base: str                       # below the first step
    steps: tuple[Step, ...]


@dataclass(frozen=True, kw_only=True)
class Panel:
    kind: ClassVar[str]
    title: str
    queries: tuple[Query, ...]
    width: int = 12
    height: int = 8
    unit: Unit = COUNT
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class Stat(Panel):
    """One number per series, now."""
    kind = "stat"
    thresholds: Thresholds | None = None


@dataclass(frozen=True, kw_only=True)
class TimeSeries(Panel):
    kind = "timeseries"


@dataclass(frozen=True, kw_only=True)
class Bar(Panel):
    """One horizontal bar per series of its single query, now, named by the legend, largest first."""
    kind = "bar"

    def __post_init__(self) -> None:
        one_query(self)


@dataclass(frozen=True, kw_only=True)
class Pie(Panel):
    """Shares of a whole: one slice per series of its single query, now."""
    kind = "pie"

    def __post_init__(self) -> None:
        one_query(self)


def one_query(p: Panel) -> None:
    if len(p.queries) != 1:
        raise ValueError(f"{p.title!r}: a {p.kind} chart draws the series of one query")


@dataclass(frozen=True, kw_only=True)
class Table(Panel):
    """One row per label set, now: the label columns shown, then each query's value column (see Query)."""
    kind = "table"
    columns: tuple[tuple[str, str], ...]        # (label, header)

    def by_columns(self) -> tuple[Query, ...]:
        """Each query reduced to exactly the shown labels, for renderers that show every label they get or
        key rows by all of them (`max`: two exporter replicas reporting the same series make one row)."""
        labels = ", ".join(label for label, _ in self.columns)
        return tuple(Query(f"max by ({labels}) ({q.expr})", q.legend, q.unit) for q in self.queries)


@dataclass(frozen=True, kw_only=True)
class Heatmap(Panel):
    """How many observations fell in each bucket of a histogram, over time. Where no heatmap is drawn
    (the console, Perses' published plugins) the same histogram is drawn as quantile lines."""
    kind = "heatmap"
    buckets: str                                # the _bucket series selector
    quantiles: tuple[float, ...] = (0.5, 0.9, 0.99)
    queries: tuple[Query, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "queries", (Query(f"sum by (le) (increase({self.buckets}[$__rate_interval]))", "{{le}}"),))

    def quantile_queries(self) -> tuple[Query, ...]:
        return tuple(Query(f"histogram_quantile({q}, sum by (le) (rate({self.buckets}[$__rate_interval])))",
                           f"p{round(q * 100)}") for q in self.quantiles)


@dataclass(frozen=True, init=False)
class Row:
    panels: tuple[Panel, ...]

    def __init__(self, *panels: Panel) -> None:
        if sum(p.width for p in panels) > GRID:
            raise ValueError(f"row wider than {GRID}: {[p.title for p in panels]}")
        object.__setattr__(self, "panels", panels)

    @property
    def height(self) -> int:
        return max(p.height for p in self.panels)


@dataclass(frozen=True)
class Variable:
    """A dropdown of the values of `label` on the series `selector` matches; panels use it as
    `label=~"$name"` (a regex: several values, or all)."""
    name: str
    label: str                      # what the dropdown is called
    selector: str
    label_name: str
    multi: bool = True
    include_all: bool = True


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    rows: tuple[Row, ...]
    # For a hub (federation, Thanos, ACM observability), selecting clusters: not shipped to a cluster's console.
    hub: bool = False

    def panels(self) -> list[Panel]:
        return [p for row in self.rows for p in row.panels]

    def placed(self) -> Iterator[tuple[Panel, int, int]]:
        """Each panel with its grid position (x, y): rows stack, panels fill a row left to right."""
        y = 0
        for row in self.rows:
            x = 0
            for p in row.panels:
                yield p, x, y
                x += p.width
            y += row.height
