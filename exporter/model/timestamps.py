"""Kubernetes timestamps as Unix time (pure)."""

from datetime import datetime
from functools import lru_cache
from typing import Any


def timestamp(value: Any) -> float | None:
    """Unix time of a Kubernetes RFC 3339 timestamp, None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    return _parse_time(value)


@lru_cache(maxsize=1 << 16)     # an object's timestamps do not change: parse each once
def _parse_time(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
