"""Harness output: summary.csv (a row per measurement point), one JSON file per point, and a
self-contained HTML report with SVG charts (no scripts, no network)."""

import csv
import html
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from exporter.public import human

from .measure import Point

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
CSV_COLUMNS = ["label", "timestamp", "drift_bytes_per_clone", "volumes", "provisioned_bytes", "consumed_bytes",
               "full_copy_bytes", "efficiency_ratio", "saved_bytes", "clone_types"]


def write_csv(points: list[Point], path: Path) -> None:
    groups = list(points[0].groups) if points else []
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS + [f"efficiency_ratio_{g}" for g in groups] + [f"consumed_bytes_{g}" for g in groups])
        for p in points:
            w.writerow([p.label, f"{p.timestamp:.3f}", p.drift_bytes_per_clone, p.volumes, p.provisioned_bytes,
                        p.consumed_bytes, p.full_copy_bytes, f"{p.efficiency_ratio:.6f}", p.saved_bytes,
                        " ".join(p.clone_types)]
                       + [f"{p.groups[g].efficiency_ratio:.6f}" if g in p.groups else "" for g in groups]
                       + [p.groups[g].consumed_bytes if g in p.groups else "" for g in groups])


def write_points(points: list[Point], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(points):
        (directory / f"{i:02d}-{p.label}.json").write_text(json.dumps(p.to_json(), indent=1, sort_keys=True))


def nice_ticks(peak: float, about: int = 4) -> list[float]:
    """Round axis ticks from 0 past `peak`: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if peak <= 0:
        return [0.0, 1.0]
    raw = peak / about
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(math.ceil(peak / step - 1e-9) + 1)]


def byte_axis(peak: float) -> tuple[list[float], Callable[[float], str]]:
    """Ticks in bytes and their labels, all in one unit chosen by the peak (0 GiB, 10 GiB, ...)."""
    unit, name = next(((u, n) for u, n in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
                       if peak >= u), (1, "B"))
    ticks = [t * unit for t in nice_ticks(peak / unit)]
    return ticks, lambda v: f"{v / unit:g} {name}"


def _bars(title: str, categories: list[str], series: list[tuple[str, list[float]]], fmt, y_max: float | None = None,
          chart_id: str = "", axis: tuple[list[float], Callable[[float], str]] | None = None) -> str:
    """A grouped bar chart as inline SVG; `axis` gives round ticks and their labels."""
    width, height, left, bottom, top = 760, 300, 80, 60, 30
    plot_w, plot_h = width - left - 20, height - bottom - top
    peak = y_max if y_max is not None else max([v for _, vals in series for v in vals] + [1])
    ticks, tick_label = axis if axis else ([peak * i / 4 for i in range(5)], fmt)
    peak = ticks[-1] or peak
    n_cat, n_ser = max(1, len(categories)), max(1, len(series))
    slot = plot_w / n_cat
    bar_w = slot * 0.8 / n_ser
    out = [f'<svg id="{chart_id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{html.escape(title)}">',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>']
    for tick in ticks:
        y = top + plot_h - plot_h * (tick / peak if peak else 0)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{html.escape(tick_label(tick))}</text>')
    for ci, cat in enumerate(categories):
        x0 = left + slot * ci + slot * 0.1
        for si, (_, vals) in enumerate(series):
            v = vals[ci] if ci < len(vals) else 0
            h = plot_h * (v / peak if peak else 0)
            out.append(f'<rect class="bar" x="{x0 + si * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 2:.1f}" '
                       f'height="{h:.1f}" fill="{COLOURS[si % len(COLOURS)]}"><title>{html.escape(cat)}: '
                       f'{html.escape(fmt(v))}</title></rect>')
        out.append(f'<text x="{left + slot * ci + slot / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                   f'font-size="11">{html.escape(cat)}</text>')
    for si, (name, _) in enumerate(series):
        x = left + si * 190
        out.append(f'<rect x="{x}" y="{height - 22}" width="12" height="12" fill="{COLOURS[si % len(COLOURS)]}"/>'
                   f'<text x="{x + 16}" y="{height - 12}" font-size="12">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def render_html(scenario, points: list[Point], durations: dict[str, list[float]], failures: int) -> str:
    labels = [p.label for p in points]
    groups = list(points[-1].groups) if points else []
    charts = [
        _bars("Actual vs full-copy bytes per phase (golden + all clones)", labels,
              [("consumed (measured)", [p.consumed_bytes for p in points]),
               ("as full copies", [p.full_copy_bytes for p in points])], human, chart_id="bytes-per-phase",
              axis=byte_axis(max([p.full_copy_bytes for p in points] + [1]))),
        _bars("Efficiency per phase and group (saved / full-copy)", labels,
              [(g, [p.groups[g].efficiency_ratio if g in p.groups else 0 for p in points]) for g in groups],
              lambda v: f"{v:.2f}", y_max=1.0, chart_id="efficiency-per-phase",
              axis=([0.0, 0.25, 0.5, 0.75, 1.0], lambda v: f"{v:.2f}")),
    ]
    if points:
        last = points[-1]
        charts.append(_bars(f"Side by side at '{last.label}': each group with its golden", groups,
                            [("consumed (measured)", [last.groups[g].consumed_bytes for g in groups]),
                             ("as full copies", [last.groups[g].full_copy_bytes for g in groups])],
                            human, chart_id="groups-side-by-side",
                            axis=byte_axis(max([last.groups[g].full_copy_bytes for g in groups] + [1]))))
    rows = "".join(
        f"<tr><td>{html.escape(p.label)}</td><td>{human(p.drift_bytes_per_clone)}</td><td>{p.volumes}</td>"
        f"<td>{human(p.consumed_bytes)}</td><td>{human(p.full_copy_bytes)}</td><td>{human(p.saved_bytes)}</td>"
        f"<td>{p.efficiency_ratio:.3f}</td>"
        + "".join(f"<td>{p.groups[g].efficiency_ratio:.3f}</td>" for g in groups) + "</tr>" for p in points)
    timing = "".join(
        f"<tr><td>{html.escape(m)}</td><td>{len(d)}</td><td>{sorted(d)[len(d) // 2]:.3f} s</td><td>{max(d):.3f} s</td></tr>"
        for m, d in sorted(durations.items()) if d)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>clonewatch harness: {html.escape(scenario.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:900px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f4f4f4}}.chart{{display:block;margin:1.5em 0}}</style>
</head><body>
<h1>clonewatch harness: {html.escape(scenario.name)}</h1>
<p>Backend <b>{html.escape(scenario.backend)}</b>; golden {human(scenario.golden_size)} ({human(scenario.golden_fill)} written);
groups: {", ".join(f"{g.name} = {g.count} × {g.method}" for g in scenario.groups)};
drift pattern {html.escape(scenario.drift_pattern)}, compressible fraction {scenario.drift_compressible:g}.
Generated {time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}. Bytes are measured from the storage, not computed.</p>
{"".join(charts)}
<h2>Measurement points</h2>
<table><tr><th>point</th><th>drift / clone</th><th>volumes</th><th>consumed</th><th>as full copies</th><th>saved</th>
<th>efficiency</th>{"".join(f"<th>{html.escape(g)}</th>" for g in groups)}</tr>{rows}</table>
<h2>Clone creation time</h2>
<table><tr><th>method</th><th>clones</th><th>median</th><th>max</th></tr>{timing}</table>
<p>Failed operations: {failures}</p>
</body></html>
"""


def write_all(scenario, points: list[Point], out: Path, durations: dict[str, list[float]], failures: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(points, out / "summary.csv")
    write_points(points, out / "points")
    (out / "report.html").write_text(render_html(scenario, points, durations, failures))


def table(points: list[Point]) -> str:
    groups = list(points[-1].groups) if points else []
    head = ["point", "drift/clone", "consumed", "as full copies", "efficiency"] + [f"eff:{g}" for g in groups]
    rows = [[p.label, human(p.drift_bytes_per_clone), human(p.consumed_bytes), human(p.full_copy_bytes),
             f"{p.efficiency_ratio:.3f}"] + [f"{p.groups[g].efficiency_ratio:.3f}" for g in groups] for p in points]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])
