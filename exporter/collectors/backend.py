"""Backend health: an up gauge per target instead of failing the scrape (built fresh each scrape)."""

import time
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..backends.base import TargetState

States = Callable[[], Iterable[tuple[str, TargetState]]]   # (backend name, state)


class BackendCollector(Collector):
    def __init__(self, states: States) -> None:
        self._states = states

    def collect(self):
        labels = ["backend", "target"]
        up = GaugeMetricFamily("clonewatch_backend_up",
                               "1 when the last refresh of this backend target succeeded, else 0.", labels=labels)
        duration = GaugeMetricFamily("clonewatch_backend_refresh_duration_seconds",
                                     "How long the last refresh of this target took.", labels=labels)
        last = GaugeMetricFamily("clonewatch_backend_last_success_timestamp_seconds",
                                 "Unix time of the last successful refresh (0 if none yet).", labels=labels)
        age = GaugeMetricFamily("clonewatch_backend_cache_age_seconds",
                                "Age of the cached refresh that this scrape's byte metrics come from: seconds "
                                "since the last successful refresh (absent before the first one).",
                                labels=labels)
        volumes = GaugeMetricFamily("clonewatch_backend_volumes",
                                    "Volumes seen on this target by the last successful refresh.", labels=labels)
        failures = CounterMetricFamily("clonewatch_backend_refresh_failures",
                                       "Failed refreshes of this target.", labels=labels)
        now = time.time()
        for backend, st in self._states():
            key = [backend, st.target]
            up.add_metric(key, 1 if st.up else 0)
            duration.add_metric(key, st.duration_seconds)
            last.add_metric(key, st.last_success)
            if st.last_success:
                age.add_metric(key, max(0.0, now - st.last_success))
            volumes.add_metric(key, len(st.volumes))
            failures.add_metric(key, st.failures)
        return [up, duration, last, age, volumes, failures]
