"""The alert rules as data, runbook anchors, and promtool tests rewritten as if two exporters answered."""

import re
from pathlib import Path

import yaml

# What every alert's runbook_url starts with until an overlay sets its own base (the project names no
# repository host to point at): a name that says what to do, under a top-level domain that never resolves.
PLACEHOLDER_BASE = "https://runbook-base-not-set.invalid/docs/runbook.md"

# Series that belong to a scrape target, not to a cluster object: Prometheus's own `up`, each endpoint's
# refusal counter, and the load generator's (which runs once: exporter replicas do not duplicate it).
PER_TARGET = re.compile(r"up|clonewatch_web_requests_refused_total|clonewatch_loadgen_\w+")
_SERIES = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?")
_LABEL = re.compile(r'\s*([a-zA-Z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def alerts(path: Path) -> list[dict]:
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "alert" in r]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub (and GitLab) give a document's headings: lower case, punctuation dropped,
    spaces as hyphens. Lines in code fences are not headings."""
    anchors, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def _parse(series: str) -> tuple[str, dict[str, str]]:
    m = _SERIES.fullmatch(series.strip())
    assert m, series
    text = m.group("labels") or ""
    labels = dict(_LABEL.findall(text))
    assert len(_LABEL.sub("", text).strip()) == 0, series
    return m.group("name"), labels


def _format(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _copies(labels: dict[str, str], how: str) -> list[dict[str, str]]:
    job = labels.get("job", "clonewatch-exporter")
    if how == "replicas":       # an HA Deployment: one job, a target per pod
        instance = labels.get("instance", "exporter")
        return [{**labels, "job": job, "instance": f"{instance}-{i}"} for i in (1, 2)]
    assert how == "jobs"        # two scrape jobs on one exporter: one instance, two jobs
    instance = labels.get("instance", "10.0.0.1:9753")
    return [{**labels, "job": j, "instance": instance} for j in (job, f"{job}-again")]


def replicated(source: Path, how: str, dest: Path) -> Path:
    """A copy of the promtool test file `source` in which every cluster object's series comes twice,
    from two replicas (how="replicas") or from two jobs on one exporter (how="jobs"), with the same
    expectations: the rules must not tell one exporter from two."""
    doc = yaml.safe_load(source.read_text())
    doc["rule_files"] = [str((source.parent / f).resolve()) for f in doc["rule_files"]]
    for test in doc["tests"]:
        series = []
        for s in test["input_series"]:
            name, labels = _parse(s["series"])
            if PER_TARGET.fullmatch(name):
                series.append(s)
            else:
                series += [{**s, "series": _format(name, copy)} for copy in _copies(labels, how)]
        test["input_series"] = series
    dest.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    return dest
