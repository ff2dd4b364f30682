"""The hub's view of many clusters, built only on the recorded fleet series (docs/fleet.md)."""

from ..model import BAD_FROM_ONE, BYTES, LOW_BELOW_HALF, RATIO, Bar, Board, Query, Row, Stat, Table, TimeSeries, Variable
from .series import named

C = 'cluster=~"$cluster"'

BOARD = Board(
    "clonewatch-clusters", "clonewatch / Fleet of clusters",
    "Every cluster's clone savings, fallbacks and stuck clones, from the recorded series a hub "
    "(federation, Thanos, ACM observability) collects.",
    (Variable("cluster", "Cluster", ":clonewatch_source_saved_bytes:sum", "cluster"),),
    (Row(Stat(title="Clusters reporting", queries=(Query(f"count(:clonewatch_source_saved_bytes:sum{{{C}}})"),), width=4, height=4,
              description="A cluster whose Prometheus cannot be reached drops out of this count: missing, not zero."),
         Stat(title="Saved by copy-on-write, all clusters", queries=(Query(f"sum(:clonewatch_source_saved_bytes:sum{{{C}}})"),),
              width=5, height=4, unit=BYTES),
         Stat(title="Fleet efficiency", queries=(Query(f"sum(:clonewatch_source_saved_bytes:sum{{{C}}}) / "
                                                       f"sum(:clonewatch_source_full_copy_bytes:sum{{{C}}})"),),
              width=5, height=4, unit=RATIO, thresholds=LOW_BELOW_HALF),
         Stat(title="Clones", queries=(Query(f"sum(:clonewatch_pvc_clones:count{{{C}}})"),), width=3, height=4),
         Stat(title="Fell back to copy", queries=(Query(f"sum(:clonewatch_pvc_clone_fallbacks:count{{{C}}})"),), width=3, height=4,
              thresholds=BAD_FROM_ONE),
         Stat(title="Stuck over 15 min", queries=(Query(f"sum(:clonewatch_pvc_clones_stuck:count{{{C}}})"),), width=4, height=4,
              thresholds=BAD_FROM_ONE)),
     Row(Table(title="Clusters ranked by saved bytes",
               queries=(Query(f"sort_desc(:clonewatch_source_saved_bytes:sum{{{C}}})", "saved", BYTES),
                        Query(f":clonewatch_source_efficiency:ratio{{{C}}}", "efficiency", RATIO),
                        Query(f":clonewatch_pvc_clones:count{{{C}}}", "clones"),
                        Query(f":clonewatch_pvc_clone_fallbacks:count{{{C}}}", "fell back"),
                        Query(f":clonewatch_pvc_clones_stuck:count{{{C}}}", "stuck"),
                        Query(f":clonewatch_backend_targets_down:count{{{C}}}", "backends down")),
               columns=(("cluster", "cluster"),), width=24)),
     Row(TimeSeries(title="Saved bytes per cluster", queries=(Query(f":clonewatch_source_saved_bytes:sum{{{C}}}", "{{cluster}}"),),
                    unit=BYTES),
         TimeSeries(title="Efficiency per cluster", queries=(Query(f":clonewatch_source_efficiency:ratio{{{C}}}", "{{cluster}}"),),
                    unit=RATIO)),
     Row(Bar(title="Families with the lowest efficiency",
             queries=(Query(named(f"bottomk(10, source:clonewatch_source_efficiency_ratio:max{{{C}}} and on (cluster, "
                                  f"source_namespace, source_name, backend) source:clonewatch_source_clones:max{{{C}}} >= 2)"),
                            "{{cluster}} {{family}}"),), unit=RATIO),
         Table(title="Clone types and fallbacks per StorageClass",
               queries=(Query(f"storageclass_clone_type:clonewatch_pvc_clones:count{{{C}}}", "clones"),),
               columns=(("cluster", "cluster"), ("storageclass", "StorageClass"), ("clone_type", "clone type")))),
     Row(Table(title="Backend targets down", queries=(Query(f"backend_target:clonewatch_backend_up:max{{{C}}} == 0"),),
               columns=(("cluster", "cluster"), ("backend", "backend"), ("target", "target")), width=24)),
     Row(TimeSeries(title="Space no PVC owns per cluster, by reason",
                    queries=(Query(f"sum by (cluster, reason) (backend_reason:clonewatch_unclaimed_bytes:sum{{{C}}})",
                                   "{{cluster}} {{reason}}"),), width=24, unit=BYTES))),
     hub=True)
