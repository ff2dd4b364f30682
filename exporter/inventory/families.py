"""Stage 4, families: which volumes a family is made of (`_plan`), then its numbers. Bytes above a
family's source that serve only it are charged to it (a count of the families each such volume
serves, shared by all of them). Native mode (no Kubernetes) has a family per root volume instead."""

from collections import Counter
from collections.abc import Hashable, Iterable

from ..backends.base import VolumeRef
from ..model.classify import VOLUME_KIND
from ..model.efficiency import walk
from ..model.rows import FamilyRow, measured, native_families
from . import tokens
from .dirty import Dirty
from .records import Records
from .rows import FamilyKey, PvcRows
from .tokens import DepIndex, Token
from .volumes import VolumeGraph

Plan = tuple[VolumeRef | None, list[VolumeRef]] | None


class FamilyRows:
    def __init__(self, graph: VolumeGraph, records: Records, rows: PvcRows) -> None:
        self._graph, self._records, self._rows = graph, records, rows
        self._plans: dict[FamilyKey, Plan] = {}
        self._above: dict[FamilyKey, list[str]] = {}
        self._serving: Counter[tuple[str, str]] = Counter()
        self.plan_deps = DepIndex()
        self._serving_deps = DepIndex()
        self.rows: dict[Hashable, FamilyRow] = {}

    def update(self, fkeys: Iterable[FamilyKey], dirty: Dirty) -> None:
        """Re-plan these families, then renumber them and every family whose shared volumes moved."""
        fkeys = set(fkeys)
        touched: set[Token] = set()
        for fkey in fkeys:
            touched |= self._replan(fkey)
        for fkey in fkeys | self._serving_deps.readers(touched):
            row = self._numbers(fkey)
            if row is None:
                if self.rows.pop(fkey, None) is not None:
                    dirty.families.add(fkey)
            elif self.rows.get(fkey) != row:
                self.rows[fkey] = row
                dirty.families.add(fkey)

    def _replan(self, fkey: FamilyKey) -> set[Token]:
        """Plan one family again; answer the volumes whose count of served families changed."""
        before = set(self._above.pop(fkey, ()))
        self._plans.pop(fkey, None)
        if fkey not in self._rows.members:
            self.plan_deps.drop(fkey)
            self._serving_deps.drop(fkey)
        else:
            read: set[Token] = set()
            plan = self._plan(fkey, read)
            self.plan_deps.note(fkey, read)
            self._plans[fkey] = plan
            if plan is not None and plan[0] is not None:
                top = plan[0]
                self._above[fkey] = walk(self._graph.volumes[top.backend], top.volume)[1:]
        after = set(self._above.get(fkey, ()))
        b = fkey[3]
        touched: set[Token] = set()
        for a in before - after:
            self._serving[(b, a)] -= 1
            if not self._serving[(b, a)]:
                del self._serving[(b, a)]
            touched.add(tokens.serving(b, a))
        for a in after - before:
            self._serving[(b, a)] += 1
            touched.add(tokens.serving(b, a))
        return touched

    def _plan(self, fkey: FamilyKey, read: set[Token]) -> Plan:
        """Which volumes a family's numbers are made of; None when that cannot be told."""
        kind, ns, name, backend = fkey
        if backend not in self._graph.volumes:
            return None
        vols = self._graph.volumes[backend]
        pvcs = self._rows.pvcs
        refs = [r for r in (pvcs[k].record.volume_ref for k in sorted(self._rows.members[fkey])) if r is not None]
        source_ref = self._records.source_volume(kind, ns, name, read)
        if kind == VOLUME_KIND:     # "<source>@<volume>": the chain's top volume is the source
            source_ref = VolumeRef(backend, "", name.partition("@")[2])
        if source_ref is not None and source_ref.backend == backend:
            self._graph.chain(backend, source_ref.volume, read)
            return source_ref, refs
        # The source is not measurable through Kubernetes (deleted golden PVC, unmapped snapshot):
        # the clones' common backend ancestor is the data they share.
        roots = {walk(vols, r.volume)[-1] if r.volume in vols else r.volume for r in refs}
        own_ids = {r.volume for r in refs}
        if refs and roots == own_ids:
            # Every clone is an independent volume (a restore or a copy onto other storage): the
            # family is just those copies, and saves nothing.
            return None, refs
        if len(roots) != 1:
            return None
        root = roots.pop()
        if root in own_ids:
            return None
        self._graph.chain(backend, root, read)
        return VolumeRef(backend, "", root), refs

    def _numbers(self, fkey: FamilyKey) -> FamilyRow | None:
        members = self._rows.members.get(fkey)
        if not members:
            return None
        _, ns, name, backend = fkey
        plan = self._plans.get(fkey)
        numbers = None
        read: set[Token] = set()
        if plan is not None:
            src, refs = plan
            use = self._graph.use
            uses = ([use(src)] if src else []) + [use(r) for r in refs if src is None or r.volume != src.volume]
            held = 0
            for a in self._above.get(fkey, ()):
                read.add(tokens.serving(backend, a))
                if self._serving[(backend, a)] == 1:
                    held += self._graph.volumes[backend][a].consumed_bytes
            numbers = measured(uses, held)
        self._serving_deps.note(fkey, read)
        return FamilyRow(ns, name, backend, len(members), numbers)

    def native(self, dirty: Dirty) -> None:
        """Native mode: a family per root volume with clones, redone whole on any volume change."""
        fresh: dict[Hashable, FamilyRow] = {(r.backend, r.source_name): r
                                            for r in native_families(self._graph.volumes, self._graph.logical)}
        for key in self.rows.keys() | fresh.keys():
            if self.rows.get(key) != fresh.get(key):
                dirty.families.add(key)
        self.rows = fresh
