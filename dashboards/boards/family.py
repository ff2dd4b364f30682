"""Source family: one golden image and its clones, what they occupy, what full copies would, drift, depth."""

from ..model import BYTES, RATIO, Bar, Board, Pie, Query, Row, Stat, Table, TimeSeries, Variable

J = 'job=~"$job"'
S = f'{J},source_name=~"$source"'
CLONES = f"on (namespace, persistentvolumeclaim) group_left (source_name) clonewatch_pvc_clone_info{{{S}}}"


def sharing(op: str, legend: str) -> Query:
    return Query(f"count(clonewatch_pvc_clone_sharing{{{J}}} == {op} and on (job, instance, namespace, persistentvolumeclaim) "
                 f"clonewatch_pvc_clone_info{{{S}}}) or vector(0)", legend)


BOARD = Board(
    "clonewatch-family", "clonewatch / Source family",
    "One golden image and its clones: what they occupy, what full copies would, per-clone drift, depth.",
    (Variable("job", "Job", "clonewatch_build_info", "job"),
     Variable("source", "Source", f"clonewatch_source_clones{{{J}}}", "source_name", multi=False, include_all=False)),
    (Row(TimeSeries(title="Consumed vs as full copies",
                    queries=(Query(f"clonewatch_source_consumed_bytes{{{S}}}", "consumed {{backend}}"),
                             Query(f"clonewatch_source_full_copy_bytes{{{S}}}", "as full copies {{backend}}")),
                    width=16, unit=BYTES),
         Stat(title="Efficiency", queries=(Query(f"clonewatch_source_efficiency_ratio{{{S}}}", "{{backend}}"),),
              width=4, unit=RATIO),
         Stat(title="Clones", queries=(Query(f"clonewatch_source_clones{{{S}}}", "{{backend}}"),), width=4)),
     Row(Stat(title="Clones still sharing blocks with the source",
              queries=(sharing("1", "sharing"), sharing("0", "no longer sharing")), width=8,
              description="As the storage sees it now: first sharing, then no longer sharing "
                          "(flattened, background copy complete, ...)."),
         Bar(title="Top 10 clones by own bytes (drift)",
             queries=(Query(f"topk(10, clonewatch_pvc_consumed_bytes{{{J}}} * {CLONES})",
                            "{{namespace}}/{{persistentvolumeclaim}}"),), unit=BYTES)),
     Row(Table(title="Clone chain depth (ceph-csi flattens at 4, refuses at 8)",
               queries=(Query(f"clonewatch_pvc_clone_depth{{{J}}} * on (namespace, persistentvolumeclaim) "
                              f"group_left (source_name, clone_type) clonewatch_pvc_clone_info{{{S}}}", "depth"),),
               columns=(("namespace", "namespace"), ("persistentvolumeclaim", "PVC"), ("clone_type", "clone type"))),
         Pie(title="Clone types in this family",
             queries=(Query(f"count by (clone_type) (clonewatch_pvc_clone_info{{{S}}})", "{{clone_type}}"),), width=8)),
     Row(TimeSeries(title="Consumed bytes of each clone",
                    queries=(Query(f"clonewatch_pvc_consumed_bytes{{{J}}} * {CLONES}", "{{namespace}}/{{persistentvolumeclaim}}"),),
                    width=16, unit=BYTES))))
