"""vmware backend package: its SPEC is what registry.specs() finds."""

from .backend import SPEC

__all__ = ["SPEC"]
