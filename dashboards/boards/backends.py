"""Backends and watches: is clonewatch able to see? Storage backend refreshes and Kubernetes watches."""

from ..model import BYTES, PER_SECOND, REQUESTS_PER_SECOND, SECONDS, Board, Query, Row, Stat, Step, Table, Thresholds, TimeSeries, Variable
from .series import FLASHCOPY, TARGET, WATCH, once, within, worst

J = 'job=~"$job"'
BACKEND = "{{backend}} {{target}}"
# Rows tall enough for a legend line per watched resource (fifteen, with CDI, snapshots and KubeVirt's):
# at 9 Perses showed eleven. Both panels of such a row get it, or the grids (Perses', Grafana's) float
# the shorter one's neighbour up.
WATCHED = 12
# Space no PV owns, each target's figure once (as the fleet rule records it); red from the 1 GiB at
# which CloneWatchUnclaimedStorage fires.
UNCLAIMED = "backend, target, reason"
RECLAIMABLE = "leaked|stale-temp|orphan-snapshot"
FROM_ONE_GIB = Thresholds("green", (Step(2**30, "red"),))


VOLUME = FLASHCOPY     # a backend volume's labels


def unclaimed(reasons: str) -> str:
    """The bytes of the reasons matched; 0 when no volume has them (the series is then absent)."""
    selector = f'clonewatch_unclaimed_bytes{{{J},reason=~"{reasons}"}}'
    return f"sum({once(UNCLAIMED, selector)}) or vector(0)"


def target(expr: str) -> str:
    """Each backend target once: the slowest, oldest, most failing of the replicas' (each refreshes on its own)."""
    return once(TARGET, expr)


BOARD = Board(
    "clonewatch-backends", "clonewatch / Backends and watches",
    "Is clonewatch able to see? Storage backend refreshes and Kubernetes watches.",
    (Variable("job", "Job", "clonewatch_build_info", "job"),),
    (Row(Table(title="Backend targets up", queries=(Query(worst(TARGET, f"clonewatch_backend_up{{{J}}}"), "up"),),
               columns=(("backend", "backend"), ("target", "target")),
               description="0 when any exporter replica cannot read the target (the alerts' view)."),
         TimeSeries(title="Refresh duration", queries=(Query(target(f"clonewatch_backend_refresh_duration_seconds{{{J}}}"),
                                                             BACKEND),), unit=SECONDS)),
     Row(TimeSeries(title="Age of the cached refresh", queries=(Query(target(f"clonewatch_backend_cache_age_seconds{{{J}}}"),
                                                                      BACKEND),), unit=SECONDS),
         TimeSeries(title="Refresh failures",
                    queries=(Query(target(f"rate(clonewatch_backend_refresh_failures_total{{{J}}}[$__rate_interval])"),
                                   BACKEND),), unit=PER_SECOND)),
     Row(TimeSeries(title="Volumes per target", queries=(Query(target(f"clonewatch_backend_volumes{{{J}}}"), BACKEND),),
                    height=WATCHED),
         TimeSeries(title="Kubernetes objects in the watch cache",
                    queries=(Query(once("resource", f"clonewatch_kubernetes_objects{{{J}}}"), "{{resource}}"),), height=WATCHED)),
     Row(TimeSeries(title="Watch restarts",
                    queries=(Query(once(WATCH, f"increase(clonewatch_kubernetes_watch_restarts_total{{{J}}}"
                                                    "[$__rate_interval])"), "{{resource}}"),), height=WATCHED),
         Table(title="Watches healthy", queries=(Query(worst(WATCH, f"clonewatch_kubernetes_watch_healthy{{{J}}}"), "healthy"),),
               columns=(("resource", "resource"), ("namespace", "namespace")), height=WATCHED)),
     Row(Stat(title="Reclaimable", queries=(Query(unclaimed(RECLAIMABLE)),), width=6, unit=BYTES, thresholds=FROM_ONE_GIB,
              description="Leaked, stale temporary and orphaned snapshot volumes: no PV or VolumeSnapshotContent "
                          "maps to them, and removing them frees their bytes."),
         Stat(title="Held by clones (never purge)", queries=(Query(unclaimed("held-by-clones")),), width=6, unit=BYTES,
              description="Volumes nothing maps to that clones still read from: removing them breaks the clones."),
         TimeSeries(title="Space no PVC owns, by reason",
                    queries=(Query(f"sum by (reason) ({once(UNCLAIMED, f'clonewatch_unclaimed_bytes{{{J}}}')})",
                                   "{{reason}}"),), width=12, unit=BYTES)),
     # A volume by its name within its target (an RBD image without its pool, which is the target): a
     # ceph-csi image's whole name is wider than a table column, which Perses cuts off.
     Row(Table(title="Volumes no PVC owns",
               queries=(Query('label_replace(' f"clonewatch_volume_consumed_bytes{{{J}}} * {within(VOLUME)} group_left (reason) "
                              f'clonewatch_volume_unclaimed_info{{{J}}}, "volume", "$1", "volume", ".*/(.*)")', "bytes", BYTES),),
               columns=(("target", "target"), ("volume", "volume"), ("reason", "reason")),
               width=24)),
     # The exporter processes themselves: a line per replica.
     Row(TimeSeries(title="Exporter rebuild duration",
                    queries=(Query(f"clonewatch_rebuild_duration_seconds{{{J}}}", "{{instance}}", per_target=True),),
                    unit=SECONDS),
         TimeSeries(title="/metrics requests refused (401 credentials, 403 not allowed, 429 guessing, 503 authz down)",
                    queries=(Query(f"sum by (job, instance, code) (rate(clonewatch_web_requests_refused_total{{{J}}}"
                                   "[$__rate_interval]))", "{{instance}} {{code}}", per_target=True),),
                    unit=REQUESTS_PER_SECOND))))
