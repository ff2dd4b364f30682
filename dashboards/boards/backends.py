"""Backends and watches: is clonewatch able to see? Storage backend refreshes and Kubernetes watches."""

from ..model import PER_SECOND, REQUESTS_PER_SECOND, SECONDS, Board, Query, Row, Table, TimeSeries, Variable

J = 'job=~"$job"'
TARGET = "{{backend}} {{target}}"

BOARD = Board(
    "clonewatch-backends", "clonewatch / Backends and watches",
    "Is clonewatch able to see? Storage backend refreshes and Kubernetes watches.",
    (Variable("job", "Job", "clonewatch_build_info", "job"),),
    (Row(Table(title="Backend targets up", queries=(Query(f"clonewatch_backend_up{{{J}}}", "up"),),
               columns=(("backend", "backend"), ("target", "target"))),
         TimeSeries(title="Refresh duration", queries=(Query(f"clonewatch_backend_refresh_duration_seconds{{{J}}}", TARGET),),
                    unit=SECONDS)),
     Row(TimeSeries(title="Age of the cached refresh", queries=(Query(f"clonewatch_backend_cache_age_seconds{{{J}}}", TARGET),),
                    unit=SECONDS),
         TimeSeries(title="Refresh failures",
                    queries=(Query(f"rate(clonewatch_backend_refresh_failures_total{{{J}}}[$__rate_interval])", TARGET),),
                    unit=PER_SECOND)),
     Row(TimeSeries(title="Volumes per target", queries=(Query(f"clonewatch_backend_volumes{{{J}}}", TARGET),)),
         TimeSeries(title="Kubernetes objects in the watch cache",
                    queries=(Query(f"clonewatch_kubernetes_objects{{{J}}}", "{{resource}}"),))),
     Row(TimeSeries(title="Watch restarts",
                    queries=(Query(f"increase(clonewatch_kubernetes_watch_restarts_total{{{J}}}[$__rate_interval])",
                                   "{{resource}}"),)),
         Table(title="Watches healthy", queries=(Query(f"clonewatch_kubernetes_watch_healthy{{{J}}}", "healthy"),),
               columns=(("resource", "resource"), ("namespace", "namespace")))),
     Row(TimeSeries(title="Exporter rebuild duration",
                    queries=(Query(f"clonewatch_rebuild_duration_seconds{{{J}}}", "{{instance}}"),), unit=SECONDS),
         TimeSeries(title="/metrics requests refused (401 credentials, 403 not allowed, 429 guessing, 503 authz down)",
                    queries=(Query(f"sum by (instance, code) (rate(clonewatch_web_requests_refused_total{{{J}}}"
                                   "[$__rate_interval]))", "{{instance}} {{code}}"),), unit=REQUESTS_PER_SECOND))))
