"""Load generator: clones made on a schedule, how long each clone type takes, how much drift, how efficient."""

from ..model import BYTES_PER_SECOND, RATIO, SECONDS, Board, Heatmap, Query, Row, Stat, TimeSeries, Variable

L = 'job=~"$job"'
BUCKETS = f"clonewatch_loadgen_clone_duration_seconds_bucket{{{L}}}"

BOARD = Board(
    "clonewatch-loadgen", "clonewatch / Load generator",
    "Clones made on a schedule: how long each clone type takes, how much drift, how efficient.",
    (Variable("job", "Job", "clonewatch_loadgen_cycles_total", "job"),),
    (Row(Heatmap(title="Clone creation latency", buckets=BUCKETS, width=16, unit=SECONDS),
         Stat(title="Failed operations (1h)", queries=(Query(f"sum(increase(clonewatch_loadgen_clone_failures_total{{{L}}}[1h]))"),),
              width=8)),
     Row(TimeSeries(title="Clone latency p50 / p90 by clone type",
                    queries=tuple(Query(f"histogram_quantile({q}, sum by (le, clone_type) (rate({BUCKETS}[$__rate_interval])))",
                                        f"p{p} {{{{clone_type}}}}") for q, p in ((0.5, 50), (0.9, 90))), unit=SECONDS),
         TimeSeries(title="Clones created by clone type",
                    queries=(Query(f"sum by (clone_type) (increase(clonewatch_loadgen_clones_created_total{{{L}}}"
                                   "[$__rate_interval]))", "{{clone_type}}"),))),
     Row(TimeSeries(title="Drift written",
                    queries=(Query(f"rate(clonewatch_loadgen_drift_bytes_written_total{{{L}}}[$__rate_interval])", "{{instance}}"),),
                    unit=BYTES_PER_SECOND),
         TimeSeries(title="Efficiency per group", queries=(Query(f"clonewatch_loadgen_efficiency_ratio{{{L}}}", "{{group}}"),),
                    unit=RATIO)),
     Row(TimeSeries(title="Clones alive", queries=(Query(f"clonewatch_loadgen_clones_alive{{{L}}}", "{{group}}"),)),
         Stat(title="Since the last cycle", queries=(Query(f"time() - clonewatch_loadgen_last_cycle_timestamp_seconds{{{L}}}"),),
              width=12, unit=SECONDS))))
