"""client_python's standard process, platform and garbage-collector metrics (process_*, python_*)."""

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.registry import Collector

from .base import CollectorSpec, Context


def _standard(ctx: Context) -> list[Collector]:
    # They insist on registering themselves somewhere (GCCollector takes no None): a scratch
    # registry, dropped here; the runtime registers them with the others in exposition order.
    scratch = CollectorRegistry(auto_describe=False)
    return [ProcessCollector(registry=scratch), PlatformCollector(registry=scratch), GCCollector(registry=scratch)]


SPEC = CollectorSpec("process", 40, "scrape", (), _standard)
