"""The OpenShift console's dashboards page draws our ConfigMaps: held against what its legacy renderer
reads (openshift/monitoring-plugin, web/src/features/legacy-dashboards/, the same from OpenShift 4.17
on). That page skips without a word every panel type it does not know, a panel without targets, a
table column without an alias; it blanks the whole page on a panel without a title, a row without
panels or a variable query that is not a string; it substitutes only `$name`; it shows a variable's
dropdown only with `hide: 0`. Nothing of that shows in a test unless a test looks for it."""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from dashboards.boards import BOARDS
from dashboards.render import console, grafana

ROOT = Path(__file__).resolve().parents[2]
DRAWN = {"graph", "singlestat", "gauge", "table", "grafana-piechart-panel"}
# What formatNumber and the graphs' formatter know on every version (4.17 has no Bytes or bps).
UNITS = {"percentunit", "bytes", "Bps", "pps", "ms", "s", "short"}
COLORS = {f"{shade}{hue}" for shade in ("super-light-", "light-", "", "semi-dark-", "dark-")
          for hue in ("blue", "green", "orange", "purple", "red", "yellow")}
BUILTINS = {"__rate_interval", "__interval", "__range"}     # substituted; $__interval_ms, $__from, ... are not
LABEL_VALUES = re.compile(r"label_values\((.+), (\w+)\)")     # the page's own split, comma and one space


def configmaps() -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / "deploy/overlays/openshift/console-dashboards.yaml").read_text()) if d]


def panels_of(board: dict) -> tuple[list[dict], list[str]]:
    """The drawable panels, as useLegacyDashboards + LegacyDashboard walk them, and what would crash."""
    crash, rows = [], board.get("rows") or []
    if not rows:       # the `panels` format: a row panel starts a row, the rest join the last one
        rows = [{"panels": [p]} if p.get("type") != "row" else p for p in board.get("panels", [])]
    out = []
    for row in rows:
        if not isinstance(row.get("panels"), list):
            crash.append(f"a row without panels ({row.get('title')!r}) blanks the page")
            continue
        for p in row["panels"]:
            out.extend(p.get("panels", []) if p.get("type") == "row" else [p])
    return out, crash


def panel_problems(p: dict) -> list[str]:
    title = p.get("title")
    if not isinstance(title, str) or not title:
        return [f"panel {p.get('id')}: no title blanks the page"]
    name = f"panel {title!r}"
    if p.get("type") not in DRAWN:
        return [f"{name}: type {p.get('type')!r} is skipped"]
    targets = p.get("targets") or []
    if not targets or not all(isinstance(t.get("expr"), str) and t["expr"] for t in targets):
        return [f"{name}: no targets (or a target without expr): skipped"]
    out = []
    if isinstance(p.get("datasource"), dict) and "name" in p["datasource"]:
        out.append(f"{name}: a datasource with a name needs a console extension: 'Error loading card'")
    if not isinstance(p.get("span", 12), int) or not 1 <= p.get("span", 12) <= 12:
        out.append(f"{name}: span {p.get('span')!r} is not 1..12")
    if p["type"] == "graph":
        out += [f"{name}: target {t.get('refId')} has no legendFormat: its series have no name"
                for t in targets if not t.get("legendFormat")]
        if not (p.get("legend") or {}).get("show"):
            out.append(f"{name}: legend.show is off: the series are not named")
        if (p.get("yaxes") or [{}])[0].get("format", "short") not in UNITS:
            out.append(f"{name}: yaxes[0].format {p['yaxes'][0]['format']!r} is not formatted")
    if p["type"] in ("singlestat", "gauge"):
        if len(targets) > 1:
            out.append(f"{name}: only targets[0] is drawn, {len(targets) - 1} more are not")
        if p.get("format", "short") not in UNITS:
            out.append(f"{name}: format {p['format']!r} is not formatted")
        steps = ((p.get("options") or {}).get("fieldOptions") or {}).get("thresholds") or []
        out += [f"{name}: colour {s.get('color')!r} is not one the page knows" for s in steps if s.get("color") not in COLORS]
    if p["type"] == "grafana-piechart-panel" and len(targets) > 1:
        out.append(f"{name}: only targets[0] is drawn, {len(targets) - 1} more are not")
    if p["type"] == "table":
        out += table_problems(name, p, targets)
    return out


def table_problems(name: str, p: dict, targets: list[dict]) -> list[str]:
    styles = p.get("styles") or []
    if not styles:
        return [f"{name}: no styles: 'panel.styles attribute not found'"]
    if not all(isinstance(s.get("pattern"), str) for s in styles):
        return [f"{name}: a style without a pattern blanks the page"]
    refs = {t.get("refId") for t in targets}
    out = [f"{name}: style {s['pattern']!r} has no alias: not shown" for s in styles
           if not s.get("alias") and s.get("type") != "hidden" and not s["pattern"].startswith("/")]
    out += [f"{name}: a target without refId has no value column" for t in targets if not t.get("refId")]
    for s in styles:
        ref = "A" if s["pattern"] == "Value" else s["pattern"].removeprefix("Value #") if s["pattern"].startswith("Value #") else None
        if ref is not None and ref not in refs:
            out.append(f"{name}: style {s['pattern']!r} names no target")
        if s.get("type") == "number" and s.get("unit", "short") not in UNITS:
            out.append(f"{name}: unit {s['unit']!r} is not formatted")
    return out


def variable_problems(board: dict, exprs: list[str]) -> list[str]:
    variables = (board.get("templating") or {}).get("list") or []
    # $1 in label_replace's replacement is PromQL's group reference, no variable: the page leaves it be.
    used = {m for e in exprs for m in re.findall(r"\$([A-Za-z_]\w*)", e)}
    out = []
    for v in variables:
        name = f"variable {v.get('name')!r}"
        if v.get("type") not in ("query", "interval"):       # harmless where only datasource fields name it
            if v.get("name") in used:
                out.append(f"{name}: type {v.get('type')!r} is dropped: ${v.get('name')} stays in the queries")
            continue
        if v["type"] == "query":
            if not isinstance(v.get("query"), str):
                out.append(f"{name}: an object query blanks the page")
                continue
            if not LABEL_VALUES.fullmatch(v["query"]):
                out.append(f"{name}: {v['query']!r} is not label_values(selector, label): no options")
        if v.get("name") in used and v.get("hide") != 0:
            out.append(f"{name}: used by the queries but its dropdown is hidden (hide is not 0)")
    names = [v.get("name") for v in variables if v.get("type") in ("query", "interval")]
    out += [f"variable {a!r} is a prefix of {b!r}: 4.17-4.22 substitute it inside ${b}"
            for a in names for b in names if a != b and b.startswith(a)]
    out += [f"${u} is neither a variable the page substitutes nor a built-in it knows" for u in sorted(used - set(names) - BUILTINS)]
    return out


def problems(board: dict) -> list[str]:
    """Everything the console would not draw as written, or that would break the page."""
    if not isinstance(board.get("title"), str) or not board["title"]:
        return ["the board has no title"]
    panels, out = panels_of(board)
    for p in panels:
        out += panel_problems(p)
    exprs = [t["expr"] for p in panels for t in p.get("targets") or [] if isinstance(t.get("expr"), str)]
    queries = [v["query"] for v in (board.get("templating") or {}).get("list") or [] if isinstance(v.get("query"), str)]
    for text in exprs + queries:
        out += [f"{text[:60]!r}: {bad!r} is not substituted" for bad in re.findall(r"\$\{\w*[:}]?|\[\[\w+\]\]", text)]
    return out + variable_problems(board, exprs + queries)


def test_every_console_dashboard_is_drawn_whole():
    maps = configmaps()
    assert [m["metadata"]["name"] for m in maps] == [b.uid for b in BOARDS if not b.hub]
    for cm in maps:
        assert cm["metadata"]["namespace"] == "openshift-config-managed"
        assert cm["metadata"]["labels"]["console.openshift.io/dashboard"] == "true"
        [text] = cm["data"].values()       # the page reads the first value only
        board = json.loads(text)
        assert problems(board) == [], cm["metadata"]["name"]
        panels, _ = panels_of(board)
        assert len(panels) >= 8


def test_each_definition_panel_is_drawn_once_per_query_the_console_can_show():
    """Nothing is lost on the way: every panel of a definition is on the console board (a stat with
    several queries as one singlestat each)."""
    for b in (b for b in BOARDS if not b.hub):
        panels, _ = panels_of(console.board(b))
        want = sum(len(p.queries) if p.kind == "stat" else 1 for p in b.panels())
        assert len(panels) == want, b.uid
        assert all(p["type"] in DRAWN for p in panels)


def test_the_grafana_json_the_overlay_used_to_ship_is_mostly_not_drawn():
    """The overlay shipped the Grafana JSON as is: 37 of its 42 panels were of types the page skips, the
    5 tables had no styles, and every board's object-form variable query blanks the page. So it would
    be now: the boards' 40 other panels skipped, the 9 tables (with the VMs' three and the unclaimed
    volumes') without styles."""
    found = [problems(grafana.board(b)) for b in BOARDS if not b.hub]
    flat = [p for board in found for p in board]
    skipped = [p for p in flat if p.endswith("is skipped")]
    assert len(skipped) == 40
    assert sum(len(panels_of(grafana.board(b))[0]) for b in BOARDS if not b.hub) == 49
    assert len([p for p in flat if "'panel.styles attribute not found'" in p]) == 9
    assert all(any("an object query blanks the page" in p for p in board) for board in found)


def _fleet() -> dict:
    return console.board(BOARDS[0])


def _first(board: dict, kind: str) -> dict:
    return next(p for p in panels_of(board)[0] if p["type"] == kind)


BREAKS = {
    "a type the page skips": (lambda b: _first(b, "graph").update(type="timeseries"), "is skipped"),
    "a panel without a title": (lambda b: _first(b, "graph").pop("title"), "no title blanks the page"),
    "a panel without targets": (lambda b: _first(b, "singlestat").update(targets=[]), "no targets"),
    "a graph target without legendFormat": (lambda b: _first(b, "graph")["targets"][0].pop("legendFormat"), "no legendFormat"),
    "a table without styles": (lambda b: _first(b, "table").pop("styles"), "panel.styles attribute not found"),
    "a table column without alias": (lambda b: _first(b, "table")["styles"][0].pop("alias"), "has no alias"),
    "an object-form variable query": (lambda b: b["templating"]["list"][0].update(query={"query": "up", "refId": "A"}),
                                      "an object query blanks the page"),
    "a ${var} reference": (lambda b: _first(b, "graph")["targets"][0].update(expr='up{job=~"${job}"}'), "is not substituted"),
    "a variable the queries need, hidden": (lambda b: b["templating"]["list"][0].pop("hide"), "dropdown is hidden"),
    "a variable of a type the page drops": (lambda b: b["templating"]["list"][0].update(type="custom"), "is dropped"),
    "a row without panels": (lambda b: b["rows"][0].pop("panels"), "a row without panels"),
    "an unknown colour": (lambda b: next(p for p in panels_of(b)[0] if "options" in p)["options"]["fieldOptions"]["thresholds"][0]
                          .update(color="#00ff00"), "is not one the page knows"),
}


@pytest.mark.parametrize("what", BREAKS)
def test_the_check_finds(what):
    board = copy.deepcopy(_fleet())
    assert problems(board) == []
    breaking, says = BREAKS[what]
    breaking(board)
    found = problems(board)
    assert any(says in p for p in found), found
