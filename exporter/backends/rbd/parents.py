"""A clone's parent by name, as librbd's get_parent_image_spec gives it, from what a header holds (pool
id, namespace, image id, snapshot id): the pool's name from the cluster map, the image's from its
pool's listing (live, else the trash: a deleted golden keeps its name there), the snapshot's from the
parent's header (a trash-namespace snapshot is known by the UUID it was renamed to, as librbd reports).

The pool being read answers from the scan's own listing and headers; another pool or namespace (a
golden elsewhere) is listed once per read, and its parents' headers read one by one: rare and few.
"""

from typing import Any

from .header import SNAPSHOT_PREFIX, Parent, decode_snapshot

try:        # Ceph's bindings come from the distribution (python3-rbd), not from PyPI
    import rados
    import rbd
except ImportError:     # pragma: no cover - librbd.available() reports it
    rados = rbd = None

Names = tuple[str, str, str, str]       # (pool, namespace, image, snapshot)


class ParentNames:
    def __init__(self, cluster: Any, pool: str, namespace: str, names: dict[str, str],
                 snapshots: dict[str, dict[int, str]]) -> None:
        """names: image id -> name in the pool being read (live names over trashed ones);
        snapshots: image id -> snap id -> name, from the headers the scan read."""
        self._cluster = cluster
        self._pools: dict[int, str | None] = {}
        self._scopes: dict[tuple[str, str], tuple[dict[str, str], dict[str, dict[int, str]]]] = {
            (pool, namespace): (names, snapshots)}

    def of(self, parent: Parent) -> Names | None:
        """The parent's names; None when any of them cannot be found (librbd then says)."""
        if parent.pool_id not in self._pools:
            try:
                self._pools[parent.pool_id] = self._cluster.pool_reverse_lookup(parent.pool_id)
            except rados.Error:
                self._pools[parent.pool_id] = None
        pool = self._pools[parent.pool_id]
        if pool is None:
            return None
        scope = (pool, parent.namespace)
        if scope not in self._scopes:
            self._scopes[scope] = self._list(pool, parent.namespace)
        names, snapshots = self._scopes[scope]
        image = names.get(parent.image_id)
        if image is None:
            return None
        if parent.image_id not in snapshots:
            snapshots[parent.image_id] = self._snapshots(pool, parent.namespace, parent.image_id)
        snap = snapshots[parent.image_id].get(parent.snap_id)
        return None if snap is None else (pool, parent.namespace, image, snap)

    def _list(self, pool: str, namespace: str) -> tuple[dict[str, str], dict[str, dict[int, str]]]:
        try:
            with self._cluster.open_ioctx(pool) as ioctx:
                ioctx.set_namespace(namespace)
                api = rbd.RBD()
                names = {t["id"]: t["name"] for t in api.trash_list(ioctx)}
                names |= {e["id"]: e["name"] for e in api.list2(ioctx)}
        except (rados.Error, rbd.Error):
            names = {}
        return names, {}

    def _snapshots(self, pool: str, namespace: str, image_id: str) -> dict[int, str]:
        try:
            with self._cluster.open_ioctx(pool) as ioctx, rados.ReadOpCtx() as op:
                ioctx.set_namespace(namespace)
                values, _ = ioctx.get_omap_vals(op, "", SNAPSHOT_PREFIX, 100000)
                ioctx.operate_read_op(op, f"rbd_header.{image_id}")
                snaps = [decode_snapshot(v or b"") for _k, v in values]
        except (rados.Error, ValueError):       # DecodeError is a ValueError
            return {}
        return {s.snap_id: s.name for s in snaps}
