"""Safe reads of Kubernetes JSON objects: a missing or mistyped field reads as None or ""."""

from typing import Any


def get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def annotations(obj: Any) -> dict[str, str]:
    ann = get(obj, "metadata", "annotations")
    if not isinstance(ann, dict):
        return {}
    return {k: v for k, v in ann.items() if isinstance(k, str) and isinstance(v, str)}
