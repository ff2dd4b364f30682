"""A clone's parent by name, as librbd's get_parent_image_spec gives it, from what a header holds (pool
id, namespace, image id, snapshot id): the pool's name from the cluster map, the image's from its
pool's listing (live, else the trash: a deleted golden keeps its name there), the snapshot's from the
parent's header (a trash-namespace snapshot is known by the UUID it was renamed to, as librbd reports).

The pool being read answers from the scan's own listing and headers; another pool or namespace (a
golden elsewhere) is listed once per read; a snapshot whose parent's header was not read whole (in
another pool, or with more snapshots than one read returns) is read by its key: rare and few.
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
        self._looked_up: dict[tuple[str, str, str, int], str | None] = {}     # snapshot records read by key
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
        snap = snapshots.get(parent.image_id, {}).get(parent.snap_id)
        if snap is None:        # a header not read whole (in another pool, or with too many snapshots)
            key = (pool, parent.namespace, parent.image_id, parent.snap_id)
            if key not in self._looked_up:
                self._looked_up[key] = self._snapshot(*key)
            snap = self._looked_up[key]
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

    def _snapshot(self, pool: str, namespace: str, image_id: str, snap_id: int) -> str | None:
        """The one snapshot's record, by its key (a listing of them all stops at the OSD's limit)."""
        try:
            with self._cluster.open_ioctx(pool) as ioctx, rados.ReadOpCtx() as op:
                ioctx.set_namespace(namespace)
                values, _ = ioctx.get_omap_vals_by_keys(op, (f"{SNAPSHOT_PREFIX}{snap_id:016x}",))
                ioctx.operate_read_op(op, f"rbd_header.{image_id}")
                snaps = [decode_snapshot(v or b"") for _k, v in values]
        except (rados.Error, ValueError):       # DecodeError is a ValueError
            return None
        return snaps[0].name if snaps else None
