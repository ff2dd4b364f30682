"""A Board in what the OpenShift console's legacy dashboards page draws (openshift/monitoring-plugin,
web/src/features/legacy-dashboards/): `graph`, `singlestat`, `table` and `grafana-piechart-panel` (drawn
as horizontal bars) in the Grafana 4 `rows` format, where width is `span` (of 12) and gridPos is
never read. Every other panel type is skipped without a word, so each kind maps to one of these.

What the page reads, and how it shapes what is written here:
- graph: one range query per target named by `legendFormat`, the unit from `yaxes[0].format`, which it
  formats only for bytes, Bps and s: other units are plain numbers (a ratio as `100 * (...)`), named
  in the title.
- singlestat: the first series of `targets[0]` only, so a stat with several queries becomes one
  singlestat each. Colours from `options.fieldOptions.thresholds`, which colour values strictly above
  a step (lodash sortedIndexBy); a step just below Grafana's value keeps Grafana's "from this value up".
- table: columns only from `styles` (a label by name, a target's value as `Value #<refId>`), rows keyed
  by all label values, so each query is reduced to exactly the shown labels (`max by`, which also
  keeps one row where two exporter replicas report the same series).
- bars: `targets[0]`, one bar per series labelled with all its label values, scaled to the first bar,
  so the query is reduced to the legend's labels and sorted largest first; no unit is formatted, so
  values are plain numbers (bytes in GiB, a ratio in %), named in the title.
- variables: `query` type with the query as a plain `label_values(selector, label)` string (an object
  blanks the page), `hide: 0` to show the dropdown; only `$name` is substituted, never `${name}`.
"""

import itertools
import math
import re
import sys
from typing import Any

from ..model import Bar, Board, Heatmap, Panel, Pie, Query, Stat, Table, TimeSeries, Unit, Variable

SPAN = 12                                   # the console's grid, PatternFly's
GRAPH_UNITS = ("bytes", "Bps", "s")         # what its graphs format, from OpenShift 4.17 on
BELOW_ANY = -sys.float_info.max             # JSON has no -Infinity


def board(b: Board) -> dict[str, Any]:
    ids = itertools.count(1)
    return {"uid": b.uid, "title": b.title, "description": b.description, "tags": ["clonewatch", "storage", "kubevirt"],
            "rows": [{"title": "", "showTitle": False, "collapse": False,
                      "panels": [{"id": next(ids)} | c for p, span in spans(row.panels) for c in panels(p, span)]}
                     for row in b.rows],
            "templating": {"list": [variable(v) for v in b.variables]}}


def spans(panels: tuple[Panel, ...]) -> list[tuple[Panel, int]]:
    """Widths of 24 as spans of 12, each at least 1, the row's total kept (largest remainders round up)."""
    exact = [p.width * SPAN / 24 for p in panels]
    out = [max(1, math.floor(e)) for e in exact]
    for i in sorted(range(len(exact)), key=lambda i: exact[i] - math.floor(exact[i]), reverse=True):
        if sum(out) >= round(sum(exact)):
            break
        out[i] += 1
    return list(zip(panels, out, strict=True))


def variable(v: Variable) -> dict[str, Any]:
    return {"name": v.name, "label": v.label, "type": "query", "query": f"label_values({v.selector}, {v.label_name})",
            "hide": 0, "includeAll": v.include_all, "multi": v.multi, "options": []}


def panels(p: Panel, span: int) -> list[dict[str, Any]]:
    common = {"title": p.title, "description": p.description, "span": span}
    if isinstance(p, TimeSeries | Heatmap):
        return [common | graph(p)]
    if isinstance(p, Stat):
        if len(p.queries) == 1:
            return [common | singlestat(p, p.queries[0])]
        each = max(1, span // len(p.queries))
        return [common | {"title": f"{p.title}: {q.legend}", "span": each} | singlestat(p, q) for q in p.queries]
    if isinstance(p, Table):
        return [common | table(p)]
    if isinstance(p, Bar | Pie):
        return [common | bars(p)]
    raise TypeError(f"no console rendering for {p.kind}")


def plain(title: str, q: Query, unit: Unit) -> tuple[str, Query]:
    """The title and query of a value drawn as a plain number."""
    if not unit.plain:
        return title, q
    return f"{title} ({unit.plain.name})", Query(unit.plain.expr.format(q.expr), q.legend)


def target(i: int, q: Query) -> dict[str, Any]:
    return {"refId": chr(65 + i), "expr": q.expr}


def graph(p: TimeSeries | Heatmap) -> dict[str, Any]:
    queries = p.quantile_queries() if isinstance(p, Heatmap) else p.queries
    title, formatted = p.title, p.unit.console in GRAPH_UNITS
    targets = []
    for i, q in enumerate(queries):
        if not formatted:
            title, q = plain(p.title, q, p.unit)
        targets.append(target(i, q) | {"legendFormat": q.legend})
    return {"type": "graph", "title": title, "targets": targets, "legend": {"show": True}, "stack": False,
            "yaxes": [{"format": p.unit.console if formatted else "short"}, {"format": "short"}]}


def singlestat(p: Stat, q: Query) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "singlestat", "targets": [target(0, q)], "format": p.unit.console}
    if p.unit.ratio:
        out["decimals"] = 1
    if p.thresholds:
        steps = [(BELOW_ANY, p.thresholds.base)] + [(math.nextafter(s.value, -math.inf), s.color) for s in p.thresholds.steps]
        out["options"] = {"fieldOptions": {"thresholds": [{"value": v, "color": c} for v, c in steps]}}
    return out


def table(p: Table) -> dict[str, Any]:
    styles: list[dict[str, Any]] = [{"pattern": label, "alias": header, "type": "string"} for label, header in p.columns]
    for i, q in enumerate(p.queries):
        if q.legend:
            unit = q.unit or p.unit
            styles.append({"pattern": f"Value #{chr(65 + i)}", "alias": q.legend, "type": "number", "unit": unit.console}
                          | ({"decimals": 1} if unit.ratio else {}))
    return {"type": "table", "styles": styles,
            "targets": [target(i, q) for i, q in enumerate(p.by_columns())]}


def bars(p: Bar | Pie) -> dict[str, Any]:
    [q] = p.queries
    title, q = plain(p.title, q, p.unit)
    labels = ", ".join(dict.fromkeys(re.findall(r"{{\s*(\w+)\s*}}", q.legend)))
    return {"type": "grafana-piechart-panel", "title": title, "targets": [target(0, Query(f"sort_desc(max by ({labels}) ({q.expr}))"))]}
