"""The collectors there are: every module of this package that declares a `SPEC`.

As with backends (and node_exporter's collectors), a collector registers itself from its own file;
the runtime and the tests ask this registry and name none.
"""

import importlib
import pkgutil
from functools import cache
from typing import Any

from ..exposition.metric import Metric
from .base import CollectorSpec, Context, TextCollector


@cache
def specs() -> tuple[CollectorSpec, ...]:
    found = []
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(list(package.__path__)):
        spec = getattr(importlib.import_module(f"{__package__}.{module.name}"), "SPEC", None)
        if isinstance(spec, CollectorSpec):
            found.append(spec)
    return tuple(sorted(found, key=lambda s: (s.stage, s.order, s.name)))


def metrics() -> tuple[Metric, ...]:
    """Every metric any collector declares."""
    return tuple(m for spec in specs() for m in spec.metrics)


def text_collectors(ctx: Context) -> list[TextCollector]:
    return [c for spec in specs() if spec.stage == "rebuild" for c in spec.build(ctx)]


def scrape_collectors(ctx: Context) -> list[Any]:
    return [c for spec in specs() if spec.stage == "scrape" for c in spec.build(ctx)]
