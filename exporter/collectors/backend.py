"""Backend health: an up gauge per target instead of failing the scrape (built fresh each scrape)."""

import time
from collections.abc import Iterable

from prometheus_client.core import Metric as Family
from prometheus_client.registry import Collector

from ..exposition.metric import COUNTER, GAUGE, Metric
from .base import States, scrape

LABELS = ("backend", "target")
UP = Metric("clonewatch_backend_up", GAUGE, "1 when the last refresh of this backend target succeeded, else 0.", LABELS)
DURATION = Metric("clonewatch_backend_refresh_duration_seconds", GAUGE, "How long the last refresh of this target took.",
                  LABELS)
LAST = Metric("clonewatch_backend_last_success_timestamp_seconds", GAUGE,
              "Unix time of the last successful refresh (0 if none yet).", LABELS)
AGE = Metric("clonewatch_backend_cache_age_seconds", GAUGE,
             "Age of the cached refresh that this scrape's byte metrics come from: seconds "
             "since the last successful refresh (absent before the first one).", LABELS)
VOLUMES = Metric("clonewatch_backend_volumes", GAUGE, "Volumes seen on this target by the last successful refresh.",
                 LABELS)
FAILURES = Metric("clonewatch_backend_refresh_failures", COUNTER, "Failed refreshes of this target.", LABELS)
METRICS = (UP, DURATION, LAST, AGE, VOLUMES, FAILURES)


class BackendCollector(Collector):
    def __init__(self, states: States) -> None:
        self._states = states

    def collect(self) -> Iterable[Family]:
        up, duration, last, age, volumes, failures = (m.family() for m in METRICS)
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


SPEC = scrape("backend", 20, METRICS, lambda ctx: BackendCollector(ctx.states))
