"""One-shot harness: baseline -> clone -> measure -> each drift level -> measure -> report.

Every byte figure comes from the storage (qcow2 allocation, rbd du) through the exporter's
backend code; the harness only decides what to create and when to look.
"""

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from .cloners.base import CloneFailed, NotOwned
from .cloners.factory import make_cloner
from .cloners.names import volume_name
from .measure import Point, measure
from .progress import Progress
from .report import write_all
from .scenario import Scenario, ScenarioError

log = structlog.get_logger("clonewatch.loadgen")
QCOW2_CLUSTER = 64 * 2**10
RBD_OBJECT = 4 * 2**20


def projected_bytes(sc: Scenario, golden_exists: bool) -> int:
    """Worst case the run may add to the storage, checked before anything is created."""
    top = max(sc.drift_levels[-1] if sc.drift_levels else 0, sc.drift_cap if sc.drift_rate else 0)
    if sc.drift_pattern == "random-4k":
        unit = QCOW2_CLUSTER if sc.backend == "qcow2" else RBD_OBJECT
        top = min(sc.golden_size, (top // 4096 + 1) * unit)     # copy-up of whole clusters/objects
    total = 0 if golden_exists else sc.golden_fill
    for g in sc.groups:
        per = sc.golden_size if g.method == "full-copy" else top
        total += g.count * per
    return total


def new_run_id() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime())


class Harness:
    def __init__(self, scenario: Scenario, out: Path, keep: bool = False, progress: Progress | None = None) -> None:
        self.sc, self.out, self.keep = scenario, out, keep
        self.run = new_run_id()
        self.cloner = make_cloner(scenario, self.run)
        self.progress = progress or Progress()
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.failures = 0
        self.members: dict[str, list[str]] = {g.name: [] for g in scenario.groups}
        self.methods = {g.name: g.method for g in scenario.groups}
        self.points: list[Point] = []

    def _check_caps(self, golden_exists: bool) -> None:
        need = projected_bytes(self.sc, golden_exists)
        if need > self.sc.limit_max_bytes:
            raise ScenarioError("limits.max_bytes", f"this run may write up to {need} bytes, over the cap of "
                                                    f"{self.sc.limit_max_bytes}; lower counts or drift, or raise the cap")

    def _parallel(self, phase: str, jobs: list, fn, before_batch=None) -> list:
        results, done = [], 0
        for start in range(0, len(jobs), self.sc.batch_size):
            batch = jobs[start:start + self.sc.batch_size]
            if before_batch is not None:
                before_batch(batch)
            with ThreadPoolExecutor(max_workers=self.sc.concurrency) as pool:
                for ok in pool.map(fn, batch):
                    results.append(ok)
                    done += 1
                    self.progress.update(phase, done, len(jobs))
        return results

    def _create(self, job: tuple[str, str, str]) -> bool:
        name, group, method = job
        t = time.monotonic()
        try:
            self.cloner.create(name, group, method)
        except CloneFailed as exc:
            self.failures += 1
            log.error("clone_failed", name=name, method=method, error=str(exc))
            return False
        self.durations[method].append(time.monotonic() - t)
        self.members[group].append(name)
        return True

    def _drift(self, job: tuple[str, int, int]) -> bool:
        name, start, end = job
        try:
            written = self.cloner.drift(name, start, end)
            self.cloner.record_drift(name, end)
            return written >= 0
        except (CloneFailed, NotOwned) as exc:
            self.failures += 1
            log.error("drift_failed", name=name, error=str(exc))
            return False

    def _point(self, label: str, drift: int) -> Point:
        p = measure(self.cloner, label, self.members, self.methods, drift)
        self.points.append(p)
        log.info("measured", point=label, consumed_bytes=p.consumed_bytes, full_copy_bytes=p.full_copy_bytes,
                 efficiency_ratio=round(p.efficiency_ratio, 4),
                 **{f"efficiency_{g}": round(n.efficiency_ratio, 4) for g, n in p.groups.items()})
        return p

    def remove_owned(self, why: str) -> int:
        """Remove every clone of this scenario that carries our mark (and nothing else)."""
        removed = 0
        for o in self.cloner.owned():
            self.cloner.delete(o.name)
            removed += 1
        if removed:
            log.info("owned_clones_removed", removed=removed, why=why)
        return removed

    def run_all(self) -> list[Point]:
        sc = self.sc
        golden_created = False
        try:
            self.remove_owned("left by an earlier run that did not finish")
            self._check_caps(self.cloner.golden_exists())
            t = time.monotonic()
            golden_created = self.cloner.ensure_golden()
            log.info("golden_ready", created=golden_created, seconds=round(time.monotonic() - t, 2))
            self._point("baseline", 0)
            jobs = [(volume_name(sc.name, g.name, i + 1), g.name, g.method) for g in sc.groups for i in range(g.count)]
            self._parallel("cloning", jobs, self._create, self.cloner.reserve)
            self._point("cloned", 0)
            previous = 0
            for level, label in zip(sc.drift_levels, sc.drift_labels, strict=True):
                names = [n for names in self.members.values() for n in names]
                self._parallel(f"drift {label}", [(n, previous, level) for n in names], self._drift)
                previous = level
                self._point(f"drift-{label}", level)
            write_all(sc, self.points, self.out, self.durations, self.failures)
            return self.points
        finally:
            if not self.keep:
                self.cleanup(golden_created)

    def cleanup(self, golden_created: bool) -> None:
        for names in self.members.values():
            for name in names:
                try:
                    self.cloner.delete(name)
                except (CloneFailed, NotOwned) as exc:
                    log.error("cleanup_failed", name=name, error=str(exc))
        if golden_created:
            try:
                self.cloner.remove_golden()
            except (CloneFailed, NotOwned) as exc:
                log.error("cleanup_failed", name=self.sc.golden_name, error=str(exc))
