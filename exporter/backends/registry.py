"""The backends there are: every module of this package that declares a `SPEC`.

Like node_exporter's collectors, a backend registers itself from its own file, so adding one
is adding a module; the exporter, its CLI and its readiness iterate this list and name none.
"""

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING, Any

from ..config.core import CoreOptions
from ..config.settings import Option, Settings, options_of
from .base import Backend, BackendSpec, Core

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@cache
def specs() -> tuple[BackendSpec[Any], ...]:
    found = []
    for module in pkgutil.iter_modules(_package_path()):
        spec = getattr(importlib.import_module(f"{__package__}.{module.name}"), "SPEC", None)
        if isinstance(spec, BackendSpec):
            found.append(spec)
    return tuple(sorted(found, key=lambda s: (s.order, s.name)))


def _package_path() -> list[str]:
    return list(importlib.import_module(__package__).__path__)


def groups() -> "tuple[type[DataclassInstance], ...]":
    """Each backend's options group, in registry order."""
    return tuple(spec.options for spec in specs())


def options() -> tuple[Option, ...]:
    return tuple(opt for spec in specs() for opt in options_of(spec.options))


def check(settings: Settings) -> None:
    for spec in specs():
        spec.check(settings.of(spec.options))


def prepare(settings: Settings) -> None:
    for spec in specs():
        spec.prepare(settings.of(spec.options))


def build(settings: Settings) -> list[Backend]:
    core = Core(kubernetes=settings.of(CoreOptions).kubernetes_enabled)
    return [b for spec in specs() if (b := spec.build(settings.of(spec.options), core)) is not None]
