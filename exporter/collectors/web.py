"""The /metrics guard at work: requests refused by status, connections dropped at the ceiling
(exporter.http.metrics, which the loadgen serves under its own prefix)."""

from ..http.metrics import WebCollector
from .base import scrape

SPEC = scrape("web", 30, (), lambda ctx: WebCollector(ctx.security))
