"""Print what a running exporter sees, as tables: `python -m exporter.summary.tables [URL]`."""

import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

GiB, MiB = 2**30, 2**20


def human(n: float) -> str:
    return f"{n / GiB:.2f} GiB" if abs(n) >= GiB else f"{n / MiB:.1f} MiB"


def fetch(url: str) -> dict[str, list[tuple[dict, float]]]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, list[tuple[dict, float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name].append((s.labels, s.value))
    return out


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def render(m: dict[str, list[tuple[dict, float]]]) -> str:
    parts = []
    fams: dict[tuple, dict] = defaultdict(dict)
    for metric in ("consumed_bytes", "full_copy_bytes", "saved_bytes", "efficiency_ratio", "clones"):
        for labels, value in m.get(f"clonewatch_source_{metric}", []):
            key = (labels["source_namespace"], labels["source_name"], labels["backend"])
            fams[key][metric] = value
    rows = []
    for (ns, name, backend), v in sorted(fams.items()):
        src = f"{ns}/{name}" if ns else name
        measured = "efficiency_ratio" in v
        rows.append([src, backend, int(v.get("clones", 0)),
                     human(v["consumed_bytes"]) if measured else "-",
                     human(v["full_copy_bytes"]) if measured else "-",
                     human(v["saved_bytes"]) if measured else "-",
                     f"{v['efficiency_ratio']:.3f}" if measured else "unmeasured"])
    if rows:
        parts.append(table(rows, ["source", "backend", "clones", "consumed", "as full copies", "saved", "efficiency"]))
    clones = {(lb["namespace"], lb["persistentvolumeclaim"]): lb for lb, _ in m.get("clonewatch_pvc_clone_info", [])}
    consumed = {(lb["namespace"], lb["persistentvolumeclaim"]): v for lb, v in m.get("clonewatch_pvc_consumed_bytes", [])}
    if clones:
        rows = [[f"{k[0]}/{k[1]}", f"{lb['source_namespace']}/{lb['source_name']}", lb["clone_type"],
                 lb["expected_clone_type"], lb["fallback_reason"] or "-",
                 human(consumed[k]) if k in consumed else "-"] for k, lb in sorted(clones.items())]
        parts.append(table(rows, ["clone", "source", "clone type", "expected", "fallback reason", "consumed"]))
    vols = {(lb["backend"], lb["volume"]): lb for lb, _ in m.get("clonewatch_volume_info", [])}
    used = {(lb["backend"], lb["volume"]): v for lb, v in m.get("clonewatch_volume_consumed_bytes", [])}
    if vols and not clones:
        rows = [[b, v, lb["parent"] or "-", human(used.get((b, v), 0))] for (b, v), lb in sorted(vols.items())]
        parts.append(table(rows, ["backend", "volume", "parent", "consumed"]))
    progress = {(lb["backend"], lb["volume"]): v for lb, v in m.get("clonewatch_flashcopy_progress_ratio", [])}
    rate = {(lb["backend"], lb["volume"]): v for lb, v in m.get("clonewatch_flashcopy_copy_rate", [])}
    copies = [[lb["volume"], lb["source_volume"], lb["status"], f"{progress.get((lb['backend'], lb['volume']), 0):.0%}",
               int(rate.get((lb["backend"], lb["volume"]), 0))]
              for lb, _ in sorted(m.get("clonewatch_flashcopy_info", []), key=lambda lv: lv[0]["volume"])]
    if copies:
        parts.append(table(copies, ["FlashCopy target", "source", "status", "copied", "copy rate"]))
    unclaimed = unclaimed_rows(m, used)
    if unclaimed:
        parts.append(table(unclaimed, ["unclaimed volume", "backend", "target", "reason", "consumed"]))
    down = [f"{lb['backend']}/{lb['target']}" for lb, v in m.get("clonewatch_backend_up", []) if v == 0]
    if down:
        parts.append("backends down: " + ", ".join(down))
    return "\n\n".join(parts) if parts else "(no clone families or volumes seen yet)"


def unclaimed_rows(m: dict[str, list[tuple[dict, float]]], used: dict[tuple[str, str], float]) -> list[list[str]]:
    """Space no PV owns: each volume with its reason and bytes, then each target's total per reason."""
    rows = [[lb["volume"], lb["backend"], lb["target"], lb["reason"], human(used.get((lb["backend"], lb["volume"]), 0))]
            for lb, _ in sorted(m.get("clonewatch_volume_unclaimed_info", []),
                                key=lambda lv: (lv[0]["backend"], lv[0]["target"], lv[0]["reason"], lv[0]["volume"]))]
    rows += [["(total)", lb["backend"], lb["target"], lb["reason"], human(v)]
             for lb, v in sorted(m.get("clonewatch_unclaimed_bytes", []),
                                 key=lambda lv: (lv[0]["backend"], lv[0]["target"], lv[0]["reason"]))]
    return rows
