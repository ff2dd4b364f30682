"""A Board as a Perses dashboard: the DashboardSpec the Cluster Observability Operator's
PersesDashboard carries in spec.config (perses.dev/v1alpha2), and the `{kind: Dashboard}` resource
a Perses page loads. Panels use only the plugin fields that the published npm plugins
(@perses-dev/*-plugin, tests/perses/package.json) type and COO's Perses server accepts; queries name
no datasource, so the project's (namespace's) default PrometheusDatasource answers them."""

import re
from typing import Any

from ..model import Bar, Board, Heatmap, Panel, Pie, Query, Stat, Table, TimeSeries, Unit, Variable

PROJECT = "clonewatch"                      # the Perses project: the namespace the CRs live in
COLORS = {"green": "#3e8635", "red": "#c9190b", "orange": "#ec7a08", "yellow": "#f0ab00", "blue": "#06c"}
CALCULATION = "last-number"                 # what the panel shows of each series: its last value, now


def resource(b: Board) -> dict[str, Any]:
    return {"kind": "Dashboard", "metadata": {"name": b.uid, "project": PROJECT}, "spec": spec(b)}


def spec(b: Board) -> dict[str, Any]:
    keys = panel_keys(b)
    return {"display": {"name": b.title, "description": b.description}, "duration": "24h", "refreshInterval": "1m",
            "variables": [variable(v) for v in b.variables],
            "panels": {keys[id(p)]: panel(p) for p in b.panels()},
            "layouts": [{"kind": "Grid", "spec": {"items": [
                {"x": x, "y": y, "width": p.width, "height": p.height, "content": {"$ref": f"#/spec/panels/{keys[id(p)]}"}}
                for p, x, y in b.placed()]}}]}


def panel_keys(b: Board) -> dict[int, str]:
    """Readable, unique panel keys from the titles (a page drawing the dashboard finds panels by them)."""
    keys: dict[int, str] = {}
    for p in b.panels():
        key = re.sub(r"[^a-z0-9]+", "-", p.title.lower()).strip("-")[:48].rstrip("-")
        while key in keys.values():
            key += "-2"
        keys[id(p)] = key
    return keys


def variable(v: Variable) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": v.name, "display": {"name": v.label}, "allowMultiple": v.multi,
                            "allowAllValue": v.include_all}
    if v.include_all:
        spec |= {"customAllValue": ".*", "defaultValue": "$__all"}
    spec |= {"sort": "alphabetical-asc",
             "plugin": {"kind": "PrometheusLabelValuesVariable", "spec": {"labelName": v.label_name, "matchers": [v.selector]}}}
    return {"kind": "ListVariable", "spec": spec}


def query(q: Query) -> dict[str, Any]:
    spec = {"query": q.expr} | ({"seriesNameFormat": q.legend} if q.legend else {})
    return {"kind": "TimeSeriesQuery", "spec": {"plugin": {"kind": "PrometheusTimeSeriesQuery", "spec": spec}}}


def fmt(unit: Unit) -> dict[str, str]:
    return {"unit": unit.perses}


def panel(p: Panel) -> dict[str, Any]:
    display = {"name": p.title} | ({"description": p.description} if p.description else {})
    kind, spec, queries = plugin(p)
    return {"kind": "Panel", "spec": {"display": display, "plugin": {"kind": kind, "spec": spec},
                                      "queries": [query(q) for q in queries]}}


def plugin(p: Panel) -> tuple[str, dict[str, Any], tuple[Query, ...]]:
    """The panel plugin's kind and spec, and the queries it draws."""
    if isinstance(p, Heatmap):              # no heatmap among the published plugins: its quantiles
        return "TimeSeriesChart", {"legend": {"position": "bottom"}, "yAxis": {"format": fmt(p.unit)}}, p.quantile_queries()
    if isinstance(p, TimeSeries):
        return "TimeSeriesChart", {"legend": {"position": "bottom"}, "yAxis": {"format": fmt(p.unit)}}, p.queries
    if isinstance(p, Stat):
        spec: dict[str, Any] = {"calculation": CALCULATION, "format": fmt(p.unit)}
        if p.thresholds:
            spec["thresholds"] = {"defaultColor": COLORS[p.thresholds.base], "steps": [
                {"value": s.value, "color": COLORS[s.color]} for s in p.thresholds.steps]}
        return "StatChart", spec, p.queries
    if isinstance(p, Bar):
        return "BarChart", {"calculation": CALCULATION, "format": fmt(p.unit), "sort": "desc", "mode": "value"}, p.queries
    if isinstance(p, Pie):
        return "PieChart", {"calculation": CALCULATION, "radius": 50, "format": fmt(p.unit), "legend": {"position": "right"}}, p.queries
    if isinstance(p, Table):
        return "Table", table(p), tuple(Query(q.expr) for q in p.by_columns())
    raise TypeError(f"no Perses rendering for {p.kind}")


def table(p: Table) -> dict[str, Any]:
    """The Table plugin shows every column it is given (0.8 cannot hide the ones it is not told of), so
    its queries ask for exactly the shown labels (Table.by_columns); several queries are joined on them
    (MergeSeries), their values named `value #1`, `value #2`, ... in query order."""
    columns: list[dict[str, Any]] = [{"name": label, "header": header} for label, header in p.columns]
    for i, q in enumerate(p.queries, 1):
        name = "value" if len(p.queries) == 1 else f"value #{i}"
        columns.append({"name": name, "header": q.legend, "format": fmt(q.unit or p.unit)} if q.legend else {"name": name, "hide": True})
    columns.append({"name": "timestamp", "hide": True})
    spec: dict[str, Any] = {"density": "compact", "columnSettings": columns}
    if len(p.queries) > 1:
        spec["transforms"] = [{"kind": "MergeSeries", "spec": {}}]
    return spec
