"""The backends there are: every module of this package that declares a `SPEC`.

Like node_exporter's collectors, a backend registers itself from its own file, so adding one
is adding a module; the exporter, its CLI and its readiness iterate this list and name none.
"""

import importlib
import pkgutil
from functools import cache
from typing import Any

from ..config.settings import Option
from .base import Backend, BackendSpec


@cache
def specs() -> tuple[BackendSpec, ...]:
    found = []
    for module in pkgutil.iter_modules(_package_path()):
        spec = getattr(importlib.import_module(f"{__package__}.{module.name}"), "SPEC", None)
        if isinstance(spec, BackendSpec):
            found.append(spec)
    return tuple(sorted(found, key=lambda s: (s.order, s.name)))


def _package_path() -> list[str]:
    return list(importlib.import_module(__package__).__path__)


def options() -> tuple[Option, ...]:
    return tuple(opt for spec in specs() for opt in spec.options)


def check(settings: Any) -> None:
    for spec in specs():
        spec.check(settings)


def prepare(settings: Any) -> None:
    for spec in specs():
        spec.prepare(settings)


def build(settings: Any) -> list[Backend]:
    return [b for spec in specs() if (b := spec.build(settings)) is not None]
