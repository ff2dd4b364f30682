"""Fleet overview: are the VM disk clones copy-on-write? Families, efficiency, clone types, fallbacks."""

from ..model import BYTES, RATIO, SECONDS, Bar, Board, Pie, Query, Row, Stat, Step, Table, Thresholds, TimeSeries, Variable

J = 'job=~"$job"'
JN = f'{J},namespace=~"$namespace"'

BOARD = Board(
    "clonewatch-fleet", "clonewatch / Fleet overview",
    "Are the VM disk clones copy-on-write? Families, efficiency, clone types and fallbacks.",
    (Variable("job", "Job", "clonewatch_build_info", "job"),
     Variable("namespace", "Namespace", f"clonewatch_pvc_info{{{J}}}", "namespace")),
    (Row(Stat(title="Source families", queries=(Query(f"count(clonewatch_source_clones{{{J}}})"),), width=4, height=4),
         Stat(title="Clones", queries=(Query(f"sum(clonewatch_source_clones{{{J}}})"),), width=4, height=4),
         Stat(title="Saved by copy-on-write", queries=(Query(f"sum(clonewatch_source_saved_bytes{{{J}}})"),),
              width=4, height=4, unit=BYTES),
         Stat(title="Fleet efficiency", queries=(Query(f"sum(clonewatch_source_saved_bytes{{{J}}}) / "
                                                       f"sum(clonewatch_source_full_copy_bytes{{{J}}})"),),
              width=4, height=4, unit=RATIO),
         Stat(title="Clones that fell back to copy", queries=(Query(f"sum(clonewatch_pvc_clone_fallback{{{JN}}})"),),
              width=4, height=4, thresholds=Thresholds("green", (Step(1, "red"),))),
         Stat(title="Backends down", queries=(Query(f"count(clonewatch_backend_up{{{J}}} == 0) or vector(0)"),),
              width=4, height=4)),
     Row(TimeSeries(title="Efficiency per source family",
                    queries=(Query(f"clonewatch_source_efficiency_ratio{{{J}}}",
                                   "{{source_namespace}}/{{source_name}} ({{backend}})"),),
                    unit=RATIO, description="saved / full-copy bytes: ~1 for CoW clones, ~0 for full copies"),
         TimeSeries(title="Fleet bytes: consumed vs as full copies",
                    queries=(Query(f"sum(clonewatch_source_consumed_bytes{{{J}}})", "consumed"),
                             Query(f"sum(clonewatch_source_full_copy_bytes{{{J}}})", "as full copies")), unit=BYTES)),
     Row(Pie(title="Clone types", queries=(Query(f"count by (clone_type) (clonewatch_pvc_clone_info{{{JN}}})",
                                                 "{{clone_type}}"),), width=8),
         Bar(title="Saved bytes per family", queries=(Query(f"sort_desc(clonewatch_source_saved_bytes{{{J}}})",
                                                            "{{source_namespace}}/{{source_name}}"),),
             width=16, unit=BYTES)),
     Row(Table(title="Clones that fell back to copy, with CDI's reason",
               queries=(Query(f"clonewatch_pvc_clone_info{{{JN}}} * on (namespace, persistentvolumeclaim) "
                              f"group_left () (clonewatch_pvc_clone_fallback{{{J}}} == 1)"),),
               columns=(("namespace", "namespace"), ("persistentvolumeclaim", "PVC"), ("source_namespace", "source namespace"),
                        ("source_name", "source"), ("clone_type", "clone type"), ("expected_clone_type", "expected"),
                        ("fallback_reason", "CDI's reason")), width=24)),
     Row(Stat(title="Clones stuck over 15 min",
              queries=(Query(f'count((time() - clonewatch_pvc_clone_pending_since_timestamp_seconds{{{JN}}}) > 900)'
                             " or vector(0)"),), width=6,
              description="Clones whose DataVolume (or PVC) is not done 15 minutes after it was created: see the table."),
         Table(title="Clones not done yet: how long, CDI's phase and reason",
               queries=(Query(f"(time() - clonewatch_pvc_clone_pending_since_timestamp_seconds{{{JN}}}) "
                              f"* on (job, instance, namespace, persistentvolumeclaim) group_left (phase, reason) "
                              f"clonewatch_pvc_clone_status_info{{{J}}}", "waiting"),),
               columns=(("namespace", "namespace"), ("persistentvolumeclaim", "PVC"), ("phase", "phase"), ("reason", "reason")),
               width=18, unit=SECONDS)),
     Row(TimeSeries(title="Clone duration p50 / p90 by clone type (every CDI clone; loadgen's own: the Load generator board)",
                    queries=tuple(Query(f"histogram_quantile({q}, sum by (le, clone_type) "
                                        f"(clonewatch_clone_duration_seconds_bucket{{{J}}}))", f"p{p} {{{{clone_type}}}}")
                                  for q, p in ((0.5, 50), (0.9, 90))), width=24, unit=SECONDS,
                    description="From each DataVolume's creation to its Ready condition, over the completed clones that "
                                "exist: copy-on-write clones take seconds, full copies minutes.")),
     Row(Bar(title="Efficiency by platform (backend)",
             queries=(Query(f"sum by (backend) (clonewatch_source_saved_bytes{{{J}}}) / "
                            f"sum by (backend) (clonewatch_source_full_copy_bytes{{{J}}})", "{{backend}}"),),
             width=24, unit=RATIO, description="The same families measured on each storage platform: "
             "copy-on-write platforms near 1, full copies (IBM Cloud VPC restores, finished FlashCopy clones) near 0.")),
     Row(TimeSeries(title="FlashCopy background copies: progress (savings erode as it reaches 100%)",
                    queries=(Query(f"clonewatch_flashcopy_progress_ratio{{{J}}} and on (backend, target, volume) "
                                   f"clonewatch_flashcopy_copy_rate{{{J}}} > 0", "{{target}} {{volume}}"),),
                    width=24, unit=RATIO,
                    description="IBM FlashSystem clones are FlashCopy mappings; with a copy rate above 0 the array copies "
                                "the whole source in the background and the clone stops sharing anything."))))
