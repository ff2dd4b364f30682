"""`clonewatch-loadgen run`: the clone / drift / measure / retire cycle on a schedule.

Blocking storage commands run on one worker thread; the event loop serves /metrics and
/healthz and turns SIGTERM into a stop request that the cycle checks between operations.
On start it adopts the clones an earlier process of the same scenario left (they carry our
ownership mark), so a restart neither duplicates nor orphans anything.
"""

import asyncio
import signal
import threading
import time

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from exporter.public import Security, WebCollector, serve_app, web_application

from .cloners.base import CloneFailed, NotOwned, Owned
from .cloners.factory import make_cloner
from .cloners.names import parse_name, volume_name
from .cloners.native_run import terminate_all
from .harness import new_run_id, projected_bytes
from .measure import measure
from .scenario import Scenario, ScenarioError

log = structlog.get_logger("clonewatch.loadgen")
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.created = Counter("clonewatch_loadgen_clones_created", "Clones created, by clone type.",
                               ["clone_type"], registry=r)
        self.failures = Counter("clonewatch_loadgen_clone_failures", "Clone, drift or delete operations that failed.",
                                registry=r)
        self.duration = Histogram("clonewatch_loadgen_clone_duration_seconds",
                                  "Time from asking for a clone to having it, by clone type.", ["clone_type"],
                                  buckets=BUCKETS, registry=r)
        self.drift = Counter("clonewatch_loadgen_drift_bytes_written", "Drift bytes written into clones.", registry=r)
        self.cycles = Counter("clonewatch_loadgen_cycles", "Completed cycles.", registry=r)
        self.last_cycle = Gauge("clonewatch_loadgen_last_cycle_timestamp_seconds", "Unix time the last cycle ended.",
                                registry=r)
        self.deleted = Counter("clonewatch_loadgen_clones_deleted", "Clones retired by retention.", registry=r)
        self.alive = Gauge("clonewatch_loadgen_clones_alive", "Clones of this scenario that exist now, by group.",
                           ["group"], registry=r)
        self.efficiency = Gauge("clonewatch_loadgen_efficiency_ratio",
                                "Efficiency of each group with its golden at the end of the last cycle.", ["group"],
                                registry=r)


class Daemon:
    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.run = new_run_id()
        self.cloner = make_cloner(scenario, self.run)
        self.metrics = Metrics()
        self.stopping = threading.Event()
        self.alive: dict[str, Owned] = {}
        self.drift_written = 0          # this process's bytes, as the counter has them (logged at stop)
        self._seq = 0
        for g in scenario.groups:
            self.metrics.alive.labels(g.name).set(0)
            for t in ("clone", "full-copy"):
                self.metrics.created.labels(t)

    # -- cycle (worker thread) -----------------------------------------------------------------
    def adopt(self) -> None:
        for o in self.cloner.owned():
            self.alive[o.name] = o
            parsed = parse_name(self.sc.name, o.name)
            self._seq = max(self._seq, parsed[1] if parsed else 0)
        if self.alive:
            log.info("adopted", clones=len(self.alive), next_seq=self._seq + 1)

    def _retire(self) -> None:
        now = time.time()
        ordered = sorted(self.alive.values(), key=lambda o: (o.created, o.name))
        too_many = max(0, len(ordered) - self.sc.retention_max_clones)
        doomed = ordered[:too_many]
        if self.sc.retention_max_age_seconds:
            doomed += [o for o in ordered[too_many:] if now - o.created > self.sc.retention_max_age_seconds]
        for o in doomed:
            if self.stopping.is_set():
                return
            try:
                self.cloner.delete(o.name)
                self.metrics.deleted.inc()
                log.info("clone_retired", name=o.name, age_seconds=round(now - o.created, 1),
                         drift_bytes=o.drift_bytes)
            except (CloneFailed, NotOwned) as exc:
                self.metrics.failures.inc()
                log.error("delete_failed", name=o.name, error=str(exc))
                continue
            del self.alive[o.name]

    def cycle(self) -> None:
        self.cloner.ensure_golden()
        self._retire()
        top = self.sc.drift_levels[-1] if self.sc.drift_levels else 0
        if self.sc.drift_rate:
            top = min(top, self.sc.drift_cap)
        for g in self.sc.groups:
            have = sum(1 for o in self.alive.values() if o.group == g.name)
            room = min(g.count - have, self.sc.limit_max_clones - len(self.alive),
                       self.sc.retention_max_clones - len(self.alive))
            jobs = []
            for _ in range(max(0, room)):
                self._seq += 1
                jobs.append((volume_name(self.sc.name, g.name, self._seq), g.name, g.method))
            if jobs:
                self.cloner.reserve(jobs)          # one ownership write for the batch
            for name, _, _ in jobs:
                if self.stopping.is_set():
                    return
                t = time.monotonic()
                try:
                    self.cloner.create(name, g.name, g.method)
                except CloneFailed as exc:
                    self.metrics.failures.inc()
                    log.error("clone_failed", name=name, error=str(exc))
                    continue
                # In Kubernetes mode the clone type is what CDI recorded (csi-clone, snapshot, copy).
                clone_type = self.cloner.clone_type(name, g.method)
                self.metrics.duration.labels(clone_type).observe(time.monotonic() - t)
                self.metrics.created.labels(clone_type).inc()
                self.alive[name] = Owned(name, g.name, g.method, time.time(), self.run)
        for o in list(self.alive.values()):
            if self.stopping.is_set():
                return
            target = self.drift_target(o.drift_bytes, top)
            if o.drift_bytes >= target:
                continue
            try:
                written = self.cloner.drift(o.name, o.drift_bytes, target)
                self.cloner.record_drift(o.name, target)
            except (CloneFailed, NotOwned) as exc:
                self.metrics.failures.inc()
                log.error("drift_failed", name=o.name, error=str(exc))
                continue
            o.drift_bytes = target
            self.metrics.drift.inc(written)
            self.drift_written += written
        members = {g.name: [o.name for o in self.alive.values() if o.group == g.name] for g in self.sc.groups}
        drift = max((o.drift_bytes for o in self.alive.values()), default=top)
        point = measure(self.cloner, "cycle", members, {g.name: g.method for g in self.sc.groups}, drift)
        for group, n in point.groups.items():
            self.metrics.alive.labels(group).set(n.clones)
            self.metrics.efficiency.labels(group).set(n.efficiency_ratio)
        self.metrics.cycles.inc()
        self.metrics.last_cycle.set(time.time())
        log.info("cycle_done", alive=len(self.alive), efficiency={g: round(n.efficiency_ratio, 4)
                                                                  for g, n in point.groups.items()})

    def drift_target(self, now: int, top: int) -> int:
        """Where a clone's drift goes this cycle: the top level at once, then `rate` more each cycle
        (as a VM keeps writing), never past `cap`."""
        if not self.sc.drift_rate:
            return top
        return min(self.sc.drift_cap, max(top, now + self.sc.drift_rate if now >= top else top))

    def loop(self) -> None:
        try:
            need = projected_bytes(self.sc, self.cloner.golden_exists())
            if need > self.sc.limit_max_bytes:
                raise ScenarioError("limits.max_bytes", f"the scenario may write {need} bytes, over the cap")
            self.adopt()
            while not self.stopping.is_set():
                try:
                    self.cycle()
                except CloneFailed as exc:
                    self.metrics.failures.inc()
                    log.error("cycle_failed", error=str(exc))
                if not self.sc.interval_seconds:
                    break
                self.stopping.wait(self.sc.interval_seconds)
        finally:
            self.stopping.set()


async def serve(scenario: Scenario, host: str | None, port: int, sec: Security | None = None,
                listen: str = "") -> int:
    daemon = Daemon(scenario)
    app = _web_app(daemon)
    sec = sec or Security()
    daemon.metrics.registry.register(WebCollector(sec, "clonewatch_loadgen"))
    served = await serve_app(app, host, port, sec, listen or f"{host or ''}:{port}")
    log.info("loadgen_listening", port=port, scenario=scenario.name, run=daemon.run)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    finished, outcome = _start_cycle(daemon, loop)
    stop_task = asyncio.create_task(stop.wait())
    done_task = asyncio.create_task(finished.wait())
    await asyncio.wait([done_task, stop_task], return_when=asyncio.FIRST_COMPLETED)
    daemon.stopping.set()
    await _wind_down(finished)
    rc = _exit_code(outcome)
    stop_task.cancel()
    done_task.cancel()
    await served.close()
    log.info("loadgen_stopped", drift_bytes_written=daemon.drift_written, clones_alive=len(daemon.alive))
    return rc


def _web_app(daemon: Daemon) -> web.Application:
    """/metrics (the daemon's registry) and /healthz."""
    async def metrics(_request):
        return web.Response(body=generate_latest(daemon.metrics.registry),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def healthz(_request):
        return web.Response(text="ok\n")

    app = web_application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


def _start_cycle(daemon: Daemon, loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Event, list[BaseException]]:
    """The daemon's loop on a thread of its own. The event is set (on the event loop) when the loop
    ends; the list then holds what it raised, if anything."""
    finished = asyncio.Event()
    outcome: list[BaseException] = []

    def work() -> None:
        # A daemon thread, not the default executor: a slow storage command must not hold up exit.
        try:
            daemon.loop()
        except BaseException as exc:     # reported on the loop, by _exit_code
            outcome.append(exc)
        finally:
            loop.call_soon_threadsafe(finished.set)

    threading.Thread(target=work, name="loadgen-cycle", daemon=True).start()
    return finished, outcome


async def _wind_down(finished: asyncio.Event) -> None:
    """The cycle was asked to stop (or has ended): a second for it to notice, then its storage
    commands are stopped, and 3.5 s more before the process exits anyway."""
    try:
        await asyncio.wait_for(asyncio.shield(finished.wait()), 1.0)
    except TimeoutError:
        # A long storage command (a big drift write) is running: stop it rather than wait.
        stopped = terminate_all()
        log.info("loadgen_stopping_commands", commands=stopped)
    try:
        await asyncio.wait_for(finished.wait(), 3.5)
    except TimeoutError:
        log.warning("loadgen_stop_slow", note="an operation is still running; exiting anyway")


def _exit_code(outcome: list[BaseException]) -> int:
    """0, or what the cycle thread raised: 2 for a bad scenario (a cap it would break), 1 for the rest."""
    if outcome and isinstance(outcome[0], ScenarioError):
        log.error("bad_scenario", error=str(outcome[0]))
        return 2
    if outcome:
        log.error("loadgen_failed", error=repr(outcome[0]))
        return 1
    return 0
