"""The metrics endpoint's defences at work (webserve): requests the guard refused, by HTTP status,
and connections closed at the ceiling. A flood of guessed passwords or tokens, or of idle
connections, shows here as a rate, not only in the log. Counts kept by the server; collect()
reads them. Beside webserve, not in collectors/, because both daemons serve it (the loadgen
through exporter.public)."""

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from .serve import Security


class WebCollector(Collector):
    def __init__(self, sec: Security, prefix: str = "clonewatch") -> None:
        self._sec, self._prefix = sec, prefix

    def collect(self):
        sec, p = self._sec, self._prefix
        refused = CounterMetricFamily(
            f"{p}_web_requests_refused",
            "Requests answered with this status instead of the page: 401 no or wrong credentials, 403 not "
            "allowed (client certificate, Kubernetes authorization), 429 over the budget for checking new "
            "credentials (passwords, Kubernetes tokens), 503 Kubernetes authorization unreachable. /healthz and "
            "/readyz are never refused.",
            labels=["code"])
        for code, count in sorted(sec.refused_requests.items()):
            refused.add_metric([str(code)], count)
        dropped = CounterMetricFamily(
            f"{p}_web_connections_dropped",
            "Connections closed at the ceiling of open connections: evicted (the oldest that never sent a "
            "request, to make room) or refused (every open one had sent a request).",
            labels=["reason"])
        capped = sec.capped
        dropped.add_metric(["evicted"], capped.evicted if capped is not None else 0)
        dropped.add_metric(["refused"], capped.refused_connections if capped is not None else 0)
        return [refused, dropped]
