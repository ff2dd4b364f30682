"""A Board as Grafana dashboard JSON (schemaVersion 39): what dashboards/*.json hold."""

from typing import Any

from ..model import Board, Heatmap, Panel, Query, Stat, Table, TimeSeries, Variable

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TYPES = {"stat": "stat", "timeseries": "timeseries", "bar": "bargauge", "pie": "piechart", "table": "table",
         "heatmap": "heatmap"}
BARS = {"orientation": "horizontal", "displayMode": "gradient"}


def board(b: Board) -> dict[str, Any]:
    datasource = {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
                  "current": {}, "hide": 0, "refresh": 1, "options": []}
    return {"uid": b.uid, "title": b.title, "description": b.description, "editable": True,
            "schemaVersion": 39, "version": 1, "tags": ["clonewatch", "storage", "kubevirt"],
            "time": {"from": "now-24h", "to": "now"}, "refresh": "1m", "timezone": "browser",
            "graphTooltip": 1, "templating": {"list": [datasource, *map(variable, b.variables)]},
            "annotations": {"list": []},
            "links": [{"title": "clonewatch", "type": "dashboards", "tags": ["clonewatch"], "asDropdown": True}],
            "panels": [panel(p, i, x, y) for i, (p, x, y) in enumerate(b.placed(), 1)]}


def variable(v: Variable) -> dict[str, Any]:
    query = f"label_values({v.selector}, {v.label_name})"
    return {"name": v.name, "label": v.label, "type": "query", "datasource": DATASOURCE,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "definition": query, "refresh": 2, "multi": v.multi, "includeAll": v.include_all, "allValue": ".*",
            "current": {}, "options": [], "sort": 1, "hide": 0}


def panel(p: Panel, id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit.grafana} if p.unit.grafana and not isinstance(p, Heatmap) else {}
    if isinstance(p, Stat) and p.thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": p.thresholds.base, "value": None}] + [
            {"color": s.color, "value": s.value} for s in p.thresholds.steps]}
    out = {"id": id, "type": TYPES[p.kind], "title": p.title, "description": p.description, "datasource": DATASOURCE,
           "gridPos": {"x": x, "y": y, "w": p.width, "h": p.height},
           "targets": [dict({"refId": ref(i), "datasource": DATASOURCE}, **target(p, q)) for i, q in enumerate(p.queries)],
           "fieldConfig": {"defaults": defaults, "overrides": overrides(p) if isinstance(p, Table) else []},
           "options": dict(BARS) if p.kind == "bar" else {}}
    if isinstance(p, Heatmap):
        out["options"] = {"calculate": False, "yAxis": {"unit": p.unit.grafana}}
    if isinstance(p, Table):
        out["transformations"] = transformations(p)
    return out


def ref(i: int) -> str:
    return chr(65 + i)


def target(p: Panel, q: Query) -> dict[str, Any]:
    fmt = "table" if isinstance(p, Table) else "heatmap" if isinstance(p, Heatmap) else "time_series"
    out: dict[str, Any] = {"expr": q.expr, "legendFormat": "" if isinstance(p, Table) else q.legend, "format": fmt}
    if not isinstance(p, TimeSeries | Heatmap):
        out["instant"], out["range"] = True, False
    return out


def value_fields(p: Table) -> list[tuple[str, Query]]:
    """Grafana's name for each shown value column: `Value`, or `Value #<refId>` once frames are merged."""
    if len(p.queries) == 1:
        return [("Value", q) for q in p.queries if q.legend]
    return [(f"Value #{ref(i)}", q) for i, q in enumerate(p.queries) if q.legend]


def transformations(p: Table) -> list[dict[str, Any]]:
    """Only the columns the definition names, in its order, under its headers (as the console and Perses
    show them), not every label of the series."""
    shown = [(label, header) for label, header in p.columns] + [(name, q.legend) for name, q in value_fields(p)]
    steps: list[dict[str, Any]] = [{"id": "merge", "options": {}}] if len(p.queries) > 1 else []
    return steps + [
        {"id": "filterFieldsByName", "options": {"include": {"names": [name for name, _ in shown]}}},
        {"id": "organize", "options": {"indexByName": {name: i for i, (name, _) in enumerate(shown)},
                                       "renameByName": dict(shown)}}]


def overrides(p: Table) -> list[dict[str, Any]]:
    return [{"matcher": {"id": "byName", "options": q.legend}, "properties": [{"id": "unit", "value": q.unit.grafana}]}
            for _, q in value_fields(p) if q.unit and q.unit != p.unit and q.unit.grafana]
