"""List-then-watch of one resource in one namespace (or all), on its own thread.

The official client is synchronous, so each watch blocks a thread, never the event loop.
Events are parsed here and handed to the loop in batches (one per network read), where the
store is changed. Relist on 410 Gone or any broken stream, exponential back-off on errors,
optional CRDs that answer 404 are marked absent and looked for again later.
"""

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from .client import KubeError, get_json, open_request
from .packed import Packed
from .resources import Resource
from .store import Key, Store, pack_events, pack_items

log = structlog.get_logger("clonewatch.kube")


@dataclass(frozen=True)
class WatchSettings:
    list_page_size: int = 500
    watch_timeout_seconds: int = 300       # asked of the server; it then closes the stream
    read_timeout_seconds: float = 330.0    # our own guard against a silent, half-dead stream
    connect_timeout_seconds: float = 10.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    absent_recheck_seconds: float = 300.0


class _Expired(Exception):
    """410 Gone: our resourceVersion is too old; relist."""


class Watcher(threading.Thread):
    def __init__(self, api: Any, resource: Resource, namespace: str | None, store: Store,
                 loop: asyncio.AbstractEventLoop, settings: WatchSettings,
                 stopping: threading.Event) -> None:
        super().__init__(name=f"watch-{resource.name}-{namespace or 'all'}", daemon=True)
        self.api = api
        self.resource = resource
        self.namespace = namespace if resource.namespaced else None
        self.store = store
        self.loop = loop
        self.settings = settings
        self.stopping = stopping
        self._response = None
        self._version = resource.version     # the version the last list found served
        self._log = log.bind(resource=resource.name, namespace=self.namespace or "")

    # -- hand-over to the loop ------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:     # loop closed: we are shutting down
            self.stopping.set()

    def _set_health(self, ok: bool) -> None:
        self.store.set_healthy(self.resource.name, self.namespace, ok)

    # -- thread body ------------------------------------------------------------------------
    def run(self) -> None:
        s = self.settings
        delay = s.backoff_initial_seconds
        first = True
        while not self.stopping.is_set():
            try:
                rv = self._list()
                if rv is None:
                    self._call(self.store.mark_absent, self.resource.name, self.namespace)
                    self._call(self._set_health, True)
                    self.stopping.wait(s.absent_recheck_seconds)
                    continue
                if not first:
                    self._log.info("kubernetes_relisted")
                first = False
                delay = s.backoff_initial_seconds
                self._watch_until_broken(rv)
            except _Expired:
                self._log.info("kubernetes_watch_expired", reason="410 Gone, relisting")
                self._call(self.store.count_restart, self.resource.name, self.namespace)
                self.stopping.wait(s.backoff_initial_seconds)    # never a tight loop on a 410-happy server
            except Exception as exc:  # any failure: keep the last inventory, back off, retry
                if self.stopping.is_set():
                    break
                self._log.warning("kubernetes_watch_error", error=_describe(exc), retry_in_seconds=delay)
                self._call(self.store.count_error, self.resource.name, self.namespace)
                self._call(self.store.count_restart, self.resource.name, self.namespace)
                self._call(self._set_health, False)
                self.stopping.wait(delay)
                delay = min(delay * 2, s.backoff_max_seconds)

    def stop(self) -> None:
        self.stopping.set()
        resp = self._response
        if resp is not None:
            try:
                resp.shutdown()     # unblocks a read in progress on the watch thread
            except Exception:
                pass

    # -- list -------------------------------------------------------------------------------
    def _list(self) -> str | None:
        """Full list (paginated) of the newest version the API serves; hands the items to the store.
        None when an optional CRD is absent in every version we read."""
        for version in self.resource.versions:
            rv = self._list_version(version)
            if rv is not None:
                if version != self._version:
                    self._log.info("kubernetes_version_served", version=version)
                self._version = version
                return rv
        return None

    def _list_version(self, version: str) -> str | None:
        s = self.settings
        path = self.resource.path(self.namespace, version)
        items: dict[Key, Packed] = {}
        dropped = 0
        cont: str | None = None
        rv = ""
        while True:
            query: list[tuple[str, Any]] = [("limit", s.list_page_size)]
            if cont:
                query.append(("continue", cont))
            try:
                doc = get_json(self.api, path, query,
                               (s.connect_timeout_seconds, max(60.0, s.connect_timeout_seconds)))
            except KubeError as exc:
                if exc.status == 404 and self.resource.optional:
                    return None
                if exc.status == 410 and cont:
                    items, dropped, cont = {}, 0, None   # continue token expired: start over
                    continue
                raise
            page = doc.get("items")
            if isinstance(page, list):
                # Packed page by page: only one page is ever held as parsed JSON.
                packed, bad = pack_items(self.resource.name, page)
                items.update(packed)
                dropped += bad
            raw_meta = doc.get("metadata")
            meta = raw_meta if isinstance(raw_meta, dict) else {}
            rv = str(meta.get("resourceVersion") or "")
            cont = meta.get("continue") or None
            if not cont:
                break
        self._call(self._replace, items, dropped)
        return rv

    def _replace(self, items: dict[Key, Packed], dropped: int) -> None:
        # Inventory and health change in one callback: nobody sees the new list with the old health.
        self.store.replace_packed(self.resource.name, self.namespace, items)
        self._set_health(True)
        if dropped:
            self._log.warning("kubernetes_objects_dropped", count=dropped, reason="not an object with a name")

    # -- watch ------------------------------------------------------------------------------
    def _watch_until_broken(self, rv: str) -> None:
        """Watch from rv; re-watch after a normal close; raise to make the caller relist."""
        s = self.settings
        while not self.stopping.is_set():
            query: list[tuple[str, Any]] = [("watch", "true"), ("allowWatchBookmarks", "true"),
                                            ("timeoutSeconds", s.watch_timeout_seconds)]
            if rv:
                query.append(("resourceVersion", rv))
            resp = open_request(self.api, self.resource.path(self.namespace, self._version), query,
                                (s.connect_timeout_seconds, s.read_timeout_seconds))
            self._response = resp
            try:
                if resp.status == 410:
                    raise _Expired()
                if resp.status >= 300:
                    raise KubeError(resp.status, resp.data[:300].decode("utf-8", "replace"))
                rv = self._consume(resp, rv)
            except Exception as exc:
                if _is_read_timeout(exc) and not self.stopping.is_set():
                    continue    # quiet stream: simply watch again from where we are
                raise
            finally:
                self._response = None
                try:
                    resp.release_conn()
                except Exception:
                    pass

    def _consume(self, resp: Any, rv: str) -> str:
        buffer = b""
        for chunk in resp.stream(65536, decode_content=True):
            if self.stopping.is_set():
                return rv
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            batch: list[tuple[Any, Any]] = []     # (type, object) as sent: pack_events checks both
            for line in lines:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind = event.get("type") if isinstance(event, dict) else None
                obj = event.get("object") if isinstance(event, dict) else None
                if kind == "ERROR":
                    code = obj.get("code") if isinstance(obj, dict) else None
                    if code == 410:
                        raise _Expired()
                    raise KubeError(int(code or 500), str(obj)[:300])
                new_rv = _resource_version(obj)
                if new_rv:
                    rv = new_rv
                if kind == "BOOKMARK":
                    continue
                batch.append((kind, obj))
            if batch:
                # Slimmed and packed here, off the event loop, which only swaps the packed bytes in.
                packed, bad = pack_events(self.resource.name, batch)
                self._call(self._apply, packed, bad)
        return rv

    def _apply(self, packed: list[tuple[str, Key, Packed]], bad: int) -> None:
        self.store.apply_packed(self.resource.name, packed)
        if bad:
            self._log.warning("kubernetes_events_dropped", count=bad, reason="malformed watch event")


def _resource_version(obj: Any) -> str:
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        rv = obj["metadata"].get("resourceVersion")
        return rv if isinstance(rv, str) else ""
    return ""


def _is_read_timeout(exc: BaseException) -> bool:
    name = type(exc).__name__
    return "ReadTimeout" in name or (exc.__context__ is not None and "ReadTimeout" in type(exc.__context__).__name__)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
