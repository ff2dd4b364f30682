"""Kubernetes watch health and cache size (built fresh each scrape from the store's counters)."""

from collections.abc import Iterable

from prometheus_client.core import Metric as Family
from prometheus_client.registry import Collector

from ..exposition.metric import COUNTER, GAUGE, Metric
from ..kube.store import Store
from .base import scrape

# A watch is a resource in one namespace (--kubernetes.namespaces), or cluster-wide: namespace "".
WATCH = ("resource", "namespace")
RESTARTS = Metric("clonewatch_kubernetes_watch_restarts", COUNTER,
                  "Times a watch had to start over (410 Gone, broken stream, API error).", WATCH)
ERRORS = Metric("clonewatch_kubernetes_watch_errors", COUNTER, "List or watch requests that failed.", WATCH)
OBJECTS = Metric("clonewatch_kubernetes_objects", GAUGE, "Objects in the watch cache.", ("resource",))
HEALTHY = Metric("clonewatch_kubernetes_watch_healthy", GAUGE,
                 "1 while the last list/watch of this resource in this namespace (\"\": cluster-wide or all "
                 "namespaces) worked; 0 while failing (the last good inventory keeps being served).", WATCH)
PRESENT = Metric("clonewatch_kubernetes_resource_present", GAUGE,
                 "1 when the API serves this resource; 0 for a CRD that is not installed.", ("resource",))
METRICS = (RESTARTS, ERRORS, OBJECTS, HEALTHY, PRESENT)


class KubernetesCollector(Collector):
    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterable[Family]:
        s = self._store
        restarts, errors, objects, healthy, present = (m.family() for m in METRICS)
        for (resource, namespace), w in s.watches.items():
            restarts.add_metric([resource, namespace], w.restarts)
            errors.add_metric([resource, namespace], w.errors)
            healthy.add_metric([resource, namespace], 1 if w.healthy else 0)
        for r in s.resources:
            objects.add_metric([r.name], len(s.objects[r.name]))
            present.add_metric([r.name], 1 if s.present[r.name] else 0)
        return [restarts, errors, objects, healthy, present]


SPEC = scrape("kubernetes", 50, METRICS, lambda ctx: KubernetesCollector(ctx.store) if ctx.kubernetes else None)
