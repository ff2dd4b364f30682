"""Kubernetes watch health and cache size (built fresh each scrape from the store's counters)."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..kube.store import Store


class KubernetesCollector(Collector):
    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self):
        s = self._store
        restarts = CounterMetricFamily("clonewatch_kubernetes_watch_restarts",
                                       "Times a watch had to start over (410 Gone, broken stream, API error).",
                                       labels=["resource"])
        errors = CounterMetricFamily("clonewatch_kubernetes_watch_errors",
                                     "List or watch requests that failed.", labels=["resource"])
        objects = GaugeMetricFamily("clonewatch_kubernetes_objects", "Objects in the watch cache.",
                                    labels=["resource"])
        healthy = GaugeMetricFamily("clonewatch_kubernetes_watch_healthy",
                                    "1 while the last list/watch of this resource worked; 0 while failing "
                                    "(the last good inventory keeps being served).", labels=["resource"])
        present = GaugeMetricFamily("clonewatch_kubernetes_resource_present",
                                    "1 when the API serves this resource; 0 for a CRD that is not installed.",
                                    labels=["resource"])
        for r in s.resources:
            key = [r.name]
            restarts.add_metric(key, s.restarts[r.name])
            errors.add_metric(key, s.errors[r.name])
            objects.add_metric(key, len(s.objects[r.name]))
            healthy.add_metric(key, 1 if s.healthy[r.name] else 0)
            present.add_metric(key, 1 if s.present[r.name] else 0)
        return [restarts, errors, objects, healthy, present]
