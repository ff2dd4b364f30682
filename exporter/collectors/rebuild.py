"""The exporter's own state: its version, its rebuilds, its event loop (built fresh each scrape)."""

import asyncio
from collections.abc import Iterable

from prometheus_client.core import Metric as Family
from prometheus_client.registry import Collector

from .. import __version__
from ..exposition.metric import COUNTER, GAUGE, Metric
from .base import Status, scrape

BUILD = Metric("clonewatch_build_info", GAUGE, "clonewatch version. Always 1.", ("version",))
DURATION = Metric("clonewatch_rebuild_duration_seconds", GAUGE,
                  "How long the last inventory update took (re-deriving and re-rendering what changed).")
LAST = Metric("clonewatch_last_rebuild_timestamp_seconds", GAUGE, "Unix time the served object metrics were last rendered.")
FAILURES = Metric("clonewatch_rebuild_failures", COUNTER,
                  "Rebuilds of the object metrics that failed (a bug: the last good "
                  "metrics keep being served; see the log's rebuild_failed).")
TASKS = Metric("clonewatch_event_loop_tasks", GAUGE,
               "asyncio tasks alive on the exporter's event loop (watchers, backend "
               "refreshes, the rebuild, requests in flight); steady growth is a leak.")
METRICS = (BUILD, DURATION, LAST, FAILURES, TASKS)


class RebuildCollector(Collector):
    def __init__(self, status: Status) -> None:
        self._status = status

    def collect(self) -> Iterable[Family]:
        s = self._status
        info, rebuild, last, failures, tasks = (m.family() for m in METRICS)
        info.add_metric([__version__], 1)
        rebuild.add_metric([], s.rebuild_seconds)
        last.add_metric([], s.rebuilt_at)
        failures.add_metric([], s.rebuild_failures)
        tasks.add_metric([], len(asyncio.all_tasks(s.loop)) if s.loop is not None else 0)
        return [info, rebuild, last, failures, tasks]


SPEC = scrape("rebuild", 10, METRICS, lambda ctx: RebuildCollector(ctx.status))
