"""Readiness that means what it says: /readyz answers 200 once the served metrics include every
watch's first full list (each resource in each watched namespace) and every backend's first refresh
that knew the PVs. Judged on what was rendered, not on the live state: a list that arrived after the
last rebuild does not count until a rebuild has rendered it (the store marks a first list as a change,
so that rebuild follows at once, even when the list changed no object)."""

from dataclasses import dataclass, field

from ..kube.store import Scope, Store


@dataclass(frozen=True)
class Coverage:
    """What a rebuild's input included, taken as it starts."""
    refreshes: dict[str, int] = field(default_factory=dict)     # backend -> refreshes that knew the PVs
    unlisted: tuple[Scope, ...] = ()                             # watches not listed yet


class Readiness:
    def __init__(self, store: Store, backends: list[str], kubernetes: bool) -> None:
        self._store = store
        self._kubernetes = kubernetes
        self.refreshes: dict[str, int] = dict.fromkeys(backends, 0)      # live counts, by the refresh loops
        self._rendered: Coverage | None = None

    def refreshed(self, backend: str) -> None:
        self.refreshes[backend] += 1

    def coverage(self) -> Coverage:
        return Coverage(dict(self.refreshes), tuple(self._store.unlisted()) if self._kubernetes else ())

    def rendered(self, covered: Coverage) -> None:
        self._rendered = covered

    def reasons(self) -> list[str]:
        """Why not ready; none when ready."""
        covered = self._rendered
        live = set(self._store.unlisted()) if self._kubernetes else set()
        waiting = live | set(covered.unlisted if covered is not None else ())
        out = [_waiting(scope, scope not in live) for scope in self._store.watches if scope in waiting]
        out += [f"backend {b} not refreshed yet" for b in self.refreshes
                if covered is None or not covered.refreshes.get(b)]
        if covered is None:
            out.append("metrics not rendered yet")
        return out


def _waiting(scope: Scope, listed: bool) -> str:
    resource, namespace = scope
    where = f" in namespace {namespace}" if namespace else ""
    return f"kubernetes {resource}{where} " + ("listed, not rendered yet" if listed else "not listed yet")
