#!/usr/bin/env python3
"""Generate the Grafana dashboards (dashboards/*.json), the PrometheusRule (from
deploy/rules/clonewatch.rules.yml) and the OpenShift console dashboard ConfigMaps.

    python3 scripts/gen-manifests.py           # write
    python3 scripts/gen-manifests.py --check   # exit 1 if anything is out of date (tests run this)
"""

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
J = 'job=~"$job"'


def var_datasource():
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "options": []}


def var_query(name, label, query, multi=True, include_all=True):
    return {"name": name, "label": label, "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "definition": query, "refresh": 2, "multi": multi, "includeAll": include_all, "allValue": ".*",
            "current": {}, "options": [], "sort": 1, "hide": 0}


class Board:
    def __init__(self, uid, title, description, variables):
        self.uid, self.title, self.description, self.variables = uid, title, description, variables
        self.panels, self._id, self._x, self._y, self._row_h = [], 0, 0, 0, 0

    def panel(self, kind, title, targets, w=12, h=8, unit=None, description="", **extra):
        if self._x + w > 24:
            self._x, self._y = 0, self._y + self._row_h
            self._row_h = 0
        self._id += 1
        p = {"id": self._id, "type": kind, "title": title, "description": description,
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "gridPos": {"x": self._x, "y": self._y, "w": w, "h": h},
             "targets": [dict({"refId": chr(65 + i), "datasource": {"type": "prometheus", "uid": "${datasource}"}}, **t)
                         for i, t in enumerate(targets)],
             "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
             "options": {}}
        p.update(extra)
        self.panels.append(p)
        self._x += w
        self._row_h = max(self._row_h, h)
        return p

    def json(self):
        return {"uid": self.uid, "title": self.title, "description": self.description, "editable": True,
                "schemaVersion": 39, "version": 1, "tags": ["clonewatch", "storage", "kubevirt"],
                "time": {"from": "now-24h", "to": "now"}, "refresh": "1m", "timezone": "browser",
                "graphTooltip": 1, "templating": {"list": self.variables}, "annotations": {"list": []},
                "links": [{"title": "clonewatch", "type": "dashboards", "tags": ["clonewatch"], "asDropdown": True}],
                "panels": self.panels}


def t(expr, legend="", instant=False, fmt="time_series"):
    out = {"expr": expr, "legendFormat": legend, "format": fmt}
    if instant:
        out["instant"], out["range"] = True, False
    return out


def fleet():
    b = Board("clonewatch-fleet", "clonewatch / Fleet overview",
              "Are the VM disk clones copy-on-write? Families, efficiency, clone types and fallbacks.",
              [var_datasource(), var_query("job", "Job", "label_values(clonewatch_build_info, job)"),
               var_query("namespace", "Namespace", f'label_values(clonewatch_pvc_info{{{J}}}, namespace)')])
    b.panel("stat", "Source families", [t(f"count(clonewatch_source_clones{{{J}}})", instant=True)], w=4, h=4)
    b.panel("stat", "Clones", [t(f"sum(clonewatch_source_clones{{{J}}})", instant=True)], w=4, h=4)
    b.panel("stat", "Saved by copy-on-write", [t(f"sum(clonewatch_source_saved_bytes{{{J}}})", instant=True)],
            w=4, h=4, unit="bytes")
    b.panel("stat", "Fleet efficiency", [t(f"sum(clonewatch_source_saved_bytes{{{J}}}) / "
                                           f"sum(clonewatch_source_full_copy_bytes{{{J}}})", instant=True)],
            w=4, h=4, unit="percentunit")
    b.panel("stat", "Clones that fell back to copy",
            [t(f'sum(clonewatch_pvc_clone_fallback{{{J},namespace=~"$namespace"}})', instant=True)], w=4, h=4,
            fieldConfig={"defaults": {"thresholds": {"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": "red", "value": 1}]}}, "overrides": []})
    b.panel("stat", "Backends down", [t(f"count(clonewatch_backend_up{{{J}}} == 0) or vector(0)", instant=True)],
            w=4, h=4)
    b.panel("timeseries", "Efficiency per source family",
            [t(f"clonewatch_source_efficiency_ratio{{{J}}}", "{{source_namespace}}/{{source_name}} ({{backend}})")],
            unit="percentunit", description="saved / full-copy bytes: ~1 for CoW clones, ~0 for full copies")
    b.panel("timeseries", "Fleet bytes: consumed vs as full copies",
            [t(f"sum(clonewatch_source_consumed_bytes{{{J}}})", "consumed"),
             t(f"sum(clonewatch_source_full_copy_bytes{{{J}}})", "as full copies")], unit="bytes")
    b.panel("piechart", "Clone types", [t(f'count by (clone_type) (clonewatch_pvc_clone_info{{{J},namespace=~"$namespace"}})',
                                          "{{clone_type}}", instant=True)], w=8)
    b.panel("bargauge", "Saved bytes per family",
            [t(f"sort_desc(clonewatch_source_saved_bytes{{{J}}})", "{{source_namespace}}/{{source_name}}", instant=True)],
            w=16, unit="bytes", options={"orientation": "horizontal", "displayMode": "gradient"})
    b.panel("table", "Clones that fell back to copy, with CDI's reason",
            [t(f'clonewatch_pvc_clone_info{{{J},namespace=~"$namespace"}} * on (namespace, persistentvolumeclaim) '
               f'group_left () (clonewatch_pvc_clone_fallback{{{J}}} == 1)', instant=True, fmt="table")], w=24,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True,
                                                                              "__name__": True}}}])
    b.panel("stat", "Clones stuck over 15 min",
            [t(f"count((time() - clonewatch_pvc_clone_pending_since_timestamp_seconds{{{J},namespace=~\"$namespace\"}}) > 900)"
               " or vector(0)", instant=True)], w=6,
            description="Clones whose DataVolume (or PVC) is not done 15 minutes after it was created: see the table.")
    b.panel("table", "Clones not done yet: how long, CDI's phase and reason",
            [t(f"(time() - clonewatch_pvc_clone_pending_since_timestamp_seconds{{{J},namespace=~\"$namespace\"}}) "
               f"* on (job, instance, namespace, persistentvolumeclaim) group_left (phase, reason) "
               f"clonewatch_pvc_clone_status_info{{{J}}}",
               instant=True, fmt="table")], w=18, unit="s",
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True},
                                                             "renameByName": {"Value": "waiting"}}}])
    b.panel("timeseries", "Clone duration p50 / p90 by clone type (every CDI clone; loadgen's own: the Load generator board)",
            [t(f"histogram_quantile(0.5, sum by (le, clone_type) (clonewatch_clone_duration_seconds_bucket{{{J}}}))",
               "p50 {{clone_type}}"),
             t(f"histogram_quantile(0.9, sum by (le, clone_type) (clonewatch_clone_duration_seconds_bucket{{{J}}}))",
               "p90 {{clone_type}}")], w=24, unit="s",
            description="From each DataVolume's creation to its Ready condition, over the completed clones that exist: "
                        "copy-on-write clones take seconds, full copies minutes.")
    b.panel("bargauge", "Efficiency by platform (backend)",
            [t(f"sum by (backend) (clonewatch_source_saved_bytes{{{J}}}) / "
               f"sum by (backend) (clonewatch_source_full_copy_bytes{{{J}}})", "{{backend}}", instant=True)],
            w=24, unit="percentunit", description="The same families measured on each storage platform: "
            "copy-on-write platforms near 1, full copies (IBM Cloud VPC restores, finished FlashCopy clones) near 0.",
            options={"orientation": "horizontal", "displayMode": "gradient"})
    b.panel("timeseries", "FlashCopy background copies: progress (savings erode as it reaches 100%)",
            [t(f"clonewatch_flashcopy_progress_ratio{{{J}}} and on (backend, target, volume) "
               f"clonewatch_flashcopy_copy_rate{{{J}}} > 0", "{{target}} {{volume}}")], w=24, unit="percentunit",
            description="IBM FlashSystem clones are FlashCopy mappings; with a copy rate above 0 the array copies "
                        "the whole source in the background and the clone stops sharing anything.")
    return b


def family():
    b = Board("clonewatch-family", "clonewatch / Source family",
              "One golden image and its clones: what they occupy, what full copies would, per-clone drift, depth.",
              [var_datasource(), var_query("job", "Job", "label_values(clonewatch_build_info, job)"),
               var_query("source", "Source", f"label_values(clonewatch_source_clones{{{J}}}, source_name)",
                         multi=False, include_all=False)])
    s = f'{J},source_name=~"$source"'
    b.panel("timeseries", "Consumed vs as full copies", [t(f"clonewatch_source_consumed_bytes{{{s}}}", "consumed {{backend}}"),
                                                         t(f"clonewatch_source_full_copy_bytes{{{s}}}", "as full copies {{backend}}")],
            w=16, unit="bytes")
    b.panel("stat", "Efficiency", [t(f"clonewatch_source_efficiency_ratio{{{s}}}", "{{backend}}", instant=True)],
            w=4, unit="percentunit")
    b.panel("stat", "Clones", [t(f"clonewatch_source_clones{{{s}}}", "{{backend}}", instant=True)], w=4)
    b.panel("stat", "Clones still sharing blocks with the source",
            [t(f"count(clonewatch_pvc_clone_sharing{{{J}}} == 1 and on (job, instance, namespace, persistentvolumeclaim) "
               f"clonewatch_pvc_clone_info{{{s}}}) or vector(0)", "sharing", instant=True),
             t(f"count(clonewatch_pvc_clone_sharing{{{J}}} == 0 and on (job, instance, namespace, persistentvolumeclaim) "
               f"clonewatch_pvc_clone_info{{{s}}}) or vector(0)", "no longer sharing", instant=True)], w=8,
            description="As the storage sees it now: first sharing, then no longer sharing "
                        "(flattened, background copy complete, ...).")
    b.panel("bargauge", "Top 10 clones by own bytes (drift)",
            [t(f"topk(10, clonewatch_pvc_consumed_bytes{{{J}}} * on (namespace, persistentvolumeclaim) "
               f'group_left (source_name) clonewatch_pvc_clone_info{{{s}}})',
               "{{namespace}}/{{persistentvolumeclaim}}", instant=True)], unit="bytes",
            options={"orientation": "horizontal", "displayMode": "gradient"})
    b.panel("table", "Clone chain depth (ceph-csi flattens at 4, refuses at 8)",
            [t(f"clonewatch_pvc_clone_depth{{{J}}} * on (namespace, persistentvolumeclaim) "
               f'group_left (source_name, clone_type) clonewatch_pvc_clone_info{{{s}}}', instant=True, fmt="table")])
    b.panel("piechart", "Clone types in this family",
            [t(f'count by (clone_type) (clonewatch_pvc_clone_info{{{s}}})', "{{clone_type}}", instant=True)], w=8)
    b.panel("timeseries", "Consumed bytes of each clone",
            [t(f"clonewatch_pvc_consumed_bytes{{{J}}} * on (namespace, persistentvolumeclaim) "
               f'group_left (source_name) clonewatch_pvc_clone_info{{{s}}}', "{{namespace}}/{{persistentvolumeclaim}}")],
            w=16, unit="bytes")
    return b


def backends():
    b = Board("clonewatch-backends", "clonewatch / Backends and watches",
              "Is clonewatch able to see? Storage backend refreshes and Kubernetes watches.",
              [var_datasource(), var_query("job", "Job", "label_values(clonewatch_build_info, job)")])
    b.panel("table", "Backend targets up", [t(f"clonewatch_backend_up{{{J}}}", instant=True, fmt="table")], w=12)
    b.panel("timeseries", "Refresh duration", [t(f"clonewatch_backend_refresh_duration_seconds{{{J}}}", "{{backend}} {{target}}")],
            unit="s")
    b.panel("timeseries", "Age of the cached refresh", [t(f"clonewatch_backend_cache_age_seconds{{{J}}}", "{{backend}} {{target}}")],
            unit="s")
    b.panel("timeseries", "Refresh failures", [t(f"rate(clonewatch_backend_refresh_failures_total{{{J}}}[$__rate_interval])",
                                                 "{{backend}} {{target}}")], unit="ops")
    b.panel("timeseries", "Volumes per target", [t(f"clonewatch_backend_volumes{{{J}}}", "{{backend}} {{target}}")])
    b.panel("timeseries", "Kubernetes objects in the watch cache", [t(f"clonewatch_kubernetes_objects{{{J}}}", "{{resource}}")])
    b.panel("timeseries", "Watch restarts", [t(f"increase(clonewatch_kubernetes_watch_restarts_total{{{J}}}[$__rate_interval])",
                                               "{{resource}}")])
    b.panel("table", "Watches healthy", [t(f"clonewatch_kubernetes_watch_healthy{{{J}}}", instant=True, fmt="table")])
    b.panel("timeseries", "Exporter rebuild duration", [t(f"clonewatch_rebuild_duration_seconds{{{J}}}", "{{instance}}")],
            unit="s")
    b.panel("timeseries", "/metrics requests refused (401 credentials, 403 not allowed, 429 guessing, 503 authz down)",
            [t(f"sum by (instance, code) (rate(clonewatch_web_requests_refused_total{{{J}}}[$__rate_interval]))",
               "{{instance}} {{code}}")], unit="reqps")
    return b


def loadgen():
    L = 'job=~"$job"'
    b = Board("clonewatch-loadgen", "clonewatch / Load generator",
              "Clones made on a schedule: how long each clone type takes, how much drift, how efficient.",
              [var_datasource(), var_query("job", "Job", "label_values(clonewatch_loadgen_cycles_total, job)")])
    b.panel("heatmap", "Clone creation latency",
            [t(f"sum by (le) (increase(clonewatch_loadgen_clone_duration_seconds_bucket{{{L}}}[$__rate_interval]))",
               "{{le}}", fmt="heatmap")], w=16, options={"calculate": False, "yAxis": {"unit": "s"}})
    b.panel("stat", "Failed operations (1h)", [t(f"sum(increase(clonewatch_loadgen_clone_failures_total{{{L}}}[1h]))",
                                                 instant=True)], w=8)
    b.panel("timeseries", "Clone latency p50 / p90 by clone type",
            [t(f"histogram_quantile(0.5, sum by (le, clone_type) (rate(clonewatch_loadgen_clone_duration_seconds_bucket{{{L}}}[$__rate_interval])))",
               "p50 {{clone_type}}"),
             t(f"histogram_quantile(0.9, sum by (le, clone_type) (rate(clonewatch_loadgen_clone_duration_seconds_bucket{{{L}}}[$__rate_interval])))",
               "p90 {{clone_type}}")], unit="s")
    b.panel("timeseries", "Clones created by clone type",
            [t(f"sum by (clone_type) (increase(clonewatch_loadgen_clones_created_total{{{L}}}[$__rate_interval]))",
               "{{clone_type}}")])
    b.panel("timeseries", "Drift written", [t(f"rate(clonewatch_loadgen_drift_bytes_written_total{{{L}}}[$__rate_interval])",
                                              "{{instance}}")], unit="Bps")
    b.panel("timeseries", "Efficiency per group", [t(f"clonewatch_loadgen_efficiency_ratio{{{L}}}", "{{group}}")],
            unit="percentunit")
    b.panel("timeseries", "Clones alive", [t(f"clonewatch_loadgen_clones_alive{{{L}}}", "{{group}}")], w=12)
    b.panel("stat", "Since the last cycle", [t(f"time() - clonewatch_loadgen_last_cycle_timestamp_seconds{{{L}}}",
                                               instant=True)], w=12, unit="s")
    return b


def clusters():
    """The hub's view of many clusters, built only on the recorded fleet series (docs/fleet.md)."""
    C = 'cluster=~"$cluster"'
    b = Board("clonewatch-clusters", "clonewatch / Fleet of clusters",
              "Every cluster's clone savings, fallbacks and stuck clones, from the recorded series a hub "
              "(federation, Thanos, ACM observability) collects.",
              [var_datasource(), var_query("cluster", "Cluster", "label_values(:clonewatch_source_saved_bytes:sum, cluster)")])
    b.panel("stat", "Clusters reporting", [t(f"count(:clonewatch_source_saved_bytes:sum{{{C}}})", instant=True)], w=4, h=4,
            description="A cluster whose Prometheus cannot be reached drops out of this count: missing, not zero.")
    b.panel("stat", "Saved by copy-on-write, all clusters", [t(f"sum(:clonewatch_source_saved_bytes:sum{{{C}}})",
                                                               instant=True)], w=5, h=4, unit="bytes")
    b.panel("stat", "Fleet efficiency", [t(f"sum(:clonewatch_source_saved_bytes:sum{{{C}}}) / "
                                           f"sum(:clonewatch_source_full_copy_bytes:sum{{{C}}})", instant=True)],
            w=5, h=4, unit="percentunit")
    b.panel("stat", "Clones", [t(f"sum(:clonewatch_pvc_clones:count{{{C}}})", instant=True)], w=3, h=4)
    b.panel("stat", "Fell back to copy", [t(f"sum(:clonewatch_pvc_clone_fallbacks:count{{{C}}})", instant=True)], w=3, h=4)
    b.panel("stat", "Stuck over 15 min", [t(f"sum(:clonewatch_pvc_clones_stuck:count{{{C}}})", instant=True)], w=4, h=4)
    b.panel("table", "Clusters ranked by saved bytes",
            [t(f"sort_desc(:clonewatch_source_saved_bytes:sum{{{C}}})", instant=True, fmt="table"),
             t(f":clonewatch_source_efficiency:ratio{{{C}}}", instant=True, fmt="table"),
             t(f":clonewatch_pvc_clones:count{{{C}}}", instant=True, fmt="table"),
             t(f":clonewatch_pvc_clone_fallbacks:count{{{C}}}", instant=True, fmt="table"),
             t(f":clonewatch_pvc_clones_stuck:count{{{C}}}", instant=True, fmt="table"),
             t(f":clonewatch_backend_targets_down:count{{{C}}}", instant=True, fmt="table")], w=24,
            transformations=[{"id": "merge", "options": {}},
                             {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": {
                                 "Value #A": "saved", "Value #B": "efficiency", "Value #C": "clones",
                                 "Value #D": "fell back", "Value #E": "stuck", "Value #F": "backends down"}}}])
    b.panel("timeseries", "Saved bytes per cluster", [t(f":clonewatch_source_saved_bytes:sum{{{C}}}", "{{cluster}}")],
            unit="bytes")
    b.panel("timeseries", "Efficiency per cluster", [t(f":clonewatch_source_efficiency:ratio{{{C}}}", "{{cluster}}")],
            unit="percentunit")
    b.panel("bargauge", "Families with the lowest efficiency",
            [t(f"bottomk(10, source:clonewatch_source_efficiency_ratio:max{{{C}}} and on (cluster, source_namespace, "
               f"source_name, backend) source:clonewatch_source_clones:max{{{C}}} >= 2)",
               "{{cluster}} {{source_namespace}}/{{source_name}}", instant=True)], unit="percentunit",
            options={"orientation": "horizontal", "displayMode": "gradient"})
    b.panel("table", "Clone types and fallbacks per StorageClass",
            [t(f"storageclass_clone_type:clonewatch_pvc_clones:count{{{C}}}", instant=True, fmt="table")],
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}])
    b.panel("table", "Backend targets down", [t(f"backend_target:clonewatch_backend_up:max{{{C}}} == 0", instant=True,
                                                fmt="table")], w=24)
    return b


BOARDS = {"clonewatch-fleet.json": fleet, "clonewatch-family.json": family,
          "clonewatch-backends.json": backends, "clonewatch-loadgen.json": loadgen,
          "clonewatch-clusters.json": clusters}
HUB_BOARDS = {"clonewatch-clusters.json"}        # for a hub (federation, Thanos, ACM): a `cluster` variable, no `job`


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (embedded YAML, PromQL) as literal blocks, readable in review."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def dump_yaml(doc) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120)


def outputs() -> dict[Path, str]:
    out = {}
    for name, make in BOARDS.items():
        out[ROOT / "dashboards" / name] = json.dumps(make().json(), indent=2) + "\n"
    rules = yaml.safe_load((ROOT / "deploy/rules/clonewatch.rules.yml").read_text())
    fleet_rules = yaml.safe_load((ROOT / "deploy/rules/clonewatch.fleet.rules.yml").read_text())
    out[ROOT / "deploy/base/exporter/prometheusrule.yaml"] = (
        "# Generated by scripts/gen-manifests.py from deploy/rules/clonewatch.rules.yml (alerts) and\n"
        "# deploy/rules/clonewatch.fleet.rules.yml (recording rules for fleets): edit those files.\n"
        + dump_yaml({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                     "metadata": {"name": "clonewatch", "labels": {"app.kubernetes.io/name": "clonewatch",
                                                                   "prometheus": "k8s", "role": "alert-rules"}},
                     "spec": {"groups": rules["groups"] + fleet_rules["groups"]}}))
    recorded = [r["record"] for g in fleet_rules["groups"] for r in g["rules"]]
    allowlist = dump_yaml({"names": recorded})
    out[ROOT / "deploy/components/acm-observability/allowlist.yaml"] = (
        "# Generated by scripts/gen-manifests.py from deploy/rules/clonewatch.fleet.rules.yml.\n"
        "# Red Hat ACM observability collects only allowlisted metrics from managed clusters: these are\n"
        "# clonewatch's recorded fleet series (docs/fleet.md). metrics_list.yaml serves platform monitoring\n"
        "# (the exporter in openshift-storage, a cluster-monitoring namespace); uwl_metrics_list.yaml user\n"
        "# workload monitoring (ACM 2.9 and later), should the exporter run in a namespace of its own.\n"
        + dump_yaml({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "observability-metrics-custom-allowlist",
                                  "namespace": "open-cluster-management-observability"},
                     "data": {"metrics_list.yaml": allowlist, "uwl_metrics_list.yaml": allowlist}}))
    cms = []
    for name in (n for n in BOARDS if n not in HUB_BOARDS):     # the hub's board belongs on the hub
        cms.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name.removesuffix(".json"), "namespace": "openshift-config-managed",
                                 "labels": {"console.openshift.io/dashboard": "true",
                                            "app.kubernetes.io/name": "clonewatch"}},
                    "data": {name: out[ROOT / "dashboards" / name]}})
    out[ROOT / "deploy/overlays/openshift/console-dashboards.yaml"] = (
        "# Generated by scripts/gen-manifests.py from the Grafana dashboards: the OpenShift console shows\n"
        "# ConfigMaps labelled console.openshift.io/dashboard in openshift-config-managed.\n"
        + "---\n".join(dump_yaml(cm) for cm in cms))
    return out


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for path, text in outputs().items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run scripts/gen-manifests.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
