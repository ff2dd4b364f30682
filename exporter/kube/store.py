"""The watch cache: slimmed objects by resource and (namespace, name).

Mutated only on the event loop thread (watch threads hand batches over with
call_soon_threadsafe), read by the rebuild task. Every change bumps `generation`
so the rebuild knows whether there is anything new to render.
"""

import asyncio
from typing import Any, Iterable

from .resources import ALL, Resource

Key = tuple[str, str]   # (namespace or "", name)
_META_KEEP = ("name", "namespace", "annotations", "labels", "ownerReferences", "uid", "deletionTimestamp")


def slim(obj: Any) -> dict | None:
    """The parts of an object classification reads; None for something that is not an object.

    Dropping managedFields and the rest keeps 10k PVCs small in memory.
    """
    if not isinstance(obj, dict):
        return None
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return None
    out = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    out["metadata"] = {k: meta[k] for k in _META_KEEP if k in meta}
    return out


def key_of(obj: dict) -> Key:
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return (ns if isinstance(ns, str) else "", meta["name"])


class Store:
    def __init__(self, resources: Iterable[Resource] = ALL) -> None:
        self.resources = tuple(resources)
        self.objects: dict[str, dict[Key, dict]] = {r.name: {} for r in self.resources}
        self.present: dict[str, bool] = {r.name: False for r in self.resources}
        self.synced: dict[str, bool] = {r.name: False for r in self.resources}
        self.restarts: dict[str, int] = {r.name: 0 for r in self.resources}
        self.errors: dict[str, int] = {r.name: 0 for r in self.resources}
        self.generation = 0
        self.healthy: dict[str, bool] = {r.name: False for r in self.resources}
        self.changed = asyncio.Event()

    def _bump(self) -> None:
        self.generation += 1
        self.changed.set()

    def replace(self, resource: str, namespace: str | None, items: Iterable[Any]) -> int:
        """A full list result: the truth for that resource (and namespace, if filtered).

        Returns how many items were not objects and were dropped.
        """
        bucket = self.objects[resource]
        fresh: dict[Key, dict] = {}
        dropped = 0
        for item in items:
            obj = slim(item)
            if obj is None:
                dropped += 1
                continue
            fresh[key_of(obj)] = obj
        if namespace is None:
            bucket.clear()
        else:
            for k in [k for k in bucket if k[0] == namespace]:
                del bucket[k]
        bucket.update(fresh)
        self.present[resource] = True
        self.synced[resource] = True
        self._bump()
        return dropped

    def apply(self, resource: str, events: Iterable[tuple[str, Any]]) -> int:
        """Watch events (type, object). Returns how many could not be applied."""
        bucket = self.objects[resource]
        bad = 0
        for kind, raw in events:
            obj = slim(raw)
            if obj is None:
                bad += 1
                continue
            if kind in ("ADDED", "MODIFIED"):
                bucket[key_of(obj)] = obj
            elif kind == "DELETED":
                bucket.pop(key_of(obj), None)
            else:
                bad += 1
        self._bump()
        return bad

    def mark_absent(self, resource: str) -> None:
        """An optional CRD is not installed: nothing of it exists, and that is a complete answer."""
        had = bool(self.objects[resource]) or self.present[resource]
        self.objects[resource].clear()
        self.present[resource] = False
        self.synced[resource] = True
        if had:
            self._bump()

    def count_restart(self, resource: str) -> None:
        self.restarts[resource] += 1

    def count_error(self, resource: str) -> None:
        self.errors[resource] += 1

    @property
    def ready(self) -> bool:
        return all(self.synced.values())

    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        return self.objects[resource].get((namespace, name))

    def items(self, resource: str) -> dict[Key, dict]:
        return self.objects[resource]
