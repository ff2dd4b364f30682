"""Backends and watches: is clonewatch able to see? Storage backend refreshes and Kubernetes watches."""

from ..model import PER_SECOND, REQUESTS_PER_SECOND, SECONDS, Board, Query, Row, Table, TimeSeries, Variable
from .series import TARGET, WATCH, once, worst

J = 'job=~"$job"'
BACKEND = "{{backend}} {{target}}"
# Rows tall enough for a legend line per watched resource (fifteen, with CDI, snapshots and KubeVirt's):
# at 9 Perses showed eleven. Both panels of such a row get it, or the grids (Perses', Grafana's) float
# the shorter one's neighbour up.
WATCHED = 12


def target(expr: str) -> str:
    """Each backend target once: the slowest, oldest, most failing of the replicas' (each refreshes on its own)."""
    return once(TARGET, expr)


BOARD = Board(
    "clonewatch-backends", "clonewatch / Backends and watches",
    "Is clonewatch able to see? Storage backend refreshes and Kubernetes watches.",
    (Variable("job", "Job", "clonewatch_build_info", "job"),),
    (Row(Table(title="Backend targets up", queries=(Query(worst(TARGET, f"clonewatch_backend_up{{{J}}}"), "up"),),
               columns=(("backend", "backend"), ("target", "target")),
               description="0 when any exporter replica cannot read the target (the alerts' view)."),
         TimeSeries(title="Refresh duration", queries=(Query(target(f"clonewatch_backend_refresh_duration_seconds{{{J}}}"),
                                                             BACKEND),), unit=SECONDS)),
     Row(TimeSeries(title="Age of the cached refresh", queries=(Query(target(f"clonewatch_backend_cache_age_seconds{{{J}}}"),
                                                                      BACKEND),), unit=SECONDS),
         TimeSeries(title="Refresh failures",
                    queries=(Query(target(f"rate(clonewatch_backend_refresh_failures_total{{{J}}}[$__rate_interval])"),
                                   BACKEND),), unit=PER_SECOND)),
     Row(TimeSeries(title="Volumes per target", queries=(Query(target(f"clonewatch_backend_volumes{{{J}}}"), BACKEND),),
                    height=WATCHED),
         TimeSeries(title="Kubernetes objects in the watch cache",
                    queries=(Query(once("resource", f"clonewatch_kubernetes_objects{{{J}}}"), "{{resource}}"),), height=WATCHED)),
     Row(TimeSeries(title="Watch restarts",
                    queries=(Query(once(WATCH, f"increase(clonewatch_kubernetes_watch_restarts_total{{{J}}}"
                                                    "[$__rate_interval])"), "{{resource}}"),), height=WATCHED),
         Table(title="Watches healthy", queries=(Query(worst(WATCH, f"clonewatch_kubernetes_watch_healthy{{{J}}}"), "healthy"),),
               columns=(("resource", "resource"), ("namespace", "namespace")), height=WATCHED)),
     # The exporter processes themselves: a line per replica.
     Row(TimeSeries(title="Exporter rebuild duration",
                    queries=(Query(f"clonewatch_rebuild_duration_seconds{{{J}}}", "{{instance}}", per_target=True),),
                    unit=SECONDS),
         TimeSeries(title="/metrics requests refused (401 credentials, 403 not allowed, 429 guessing, 503 authz down)",
                    queries=(Query(f"sum by (job, instance, code) (rate(clonewatch_web_requests_refused_total{{{J}}}"
                                   "[$__rate_interval]))", "{{instance}} {{code}}", per_target=True),),
                    unit=REQUESTS_PER_SECOND))))
