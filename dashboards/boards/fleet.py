"""Fleet overview: are the VM disk clones copy-on-write? Families, efficiency, clone types, fallbacks, VMs."""

from ..model import BAD_FROM_ONE, BYTES, LOW_BELOW_HALF, RATIO, SECONDS, Bar, Board, Pie, Query, Row, Stat, Table, TimeSeries, Variable
from .series import FAMILY, FLASHCOPY, PVC, TARGET, VM, named, once, within, worst

J = 'job=~"$job"'
JN = f'{J},namespace=~"$namespace"'


def family(metric: str) -> str:
    return once(FAMILY, f"{metric}{{{J}}}")


# The VMs that are full copies: a disk fell back where a clone was expected, or the VM's disks are copies.
FULL_VMS = (f"(clonewatch_vm_clone_info{{{JN}}} and {within(VM)} (clonewatch_vm_clone_fallback{{{J}}} == 1) "
            f'or clonewatch_vm_clone_info{{{JN},clone_type="copy"}})')


def full_vm(metric: str) -> str:
    return f"{metric}{{{J}}} * {within(VM)} group_left (source_namespace, source_name, clone_type) {FULL_VMS}"


BOARD = Board(
    "clonewatch-fleet", "clonewatch / Fleet overview",
    "Are the VM disk clones copy-on-write? Families, efficiency, clone types, fallbacks and VMs.",
    (Variable("job", "Job", "clonewatch_build_info", "job"),
     Variable("namespace", "Namespace", f"clonewatch_pvc_info{{{J}}}", "namespace")),
    (Row(Stat(title="Source families", queries=(Query(f"count({family('clonewatch_source_clones')})"),), width=4, height=4),
         Stat(title="Clones", queries=(Query(f"sum({family('clonewatch_source_clones')})"),), width=4, height=4),
         Stat(title="Saved by copy-on-write", queries=(Query(f"sum({family('clonewatch_source_saved_bytes')})"),),
              width=4, height=4, unit=BYTES),
         Stat(title="Fleet efficiency", queries=(Query(f"sum({family('clonewatch_source_saved_bytes')}) / "
                                                       f"sum({family('clonewatch_source_full_copy_bytes')})"),),
              width=4, height=4, unit=RATIO, thresholds=LOW_BELOW_HALF),
         Stat(title="Fell back to copy", queries=(Query(f"sum({once(PVC, f'clonewatch_pvc_clone_fallback{{{JN}}}')})"),),
              width=4, height=4, thresholds=BAD_FROM_ONE),
         Stat(title="Backends down", queries=(Query(f"count({worst(TARGET, f'clonewatch_backend_up{{{J}}}')} == 0) "
                                                    "or vector(0)"),),
              width=4, height=4, thresholds=BAD_FROM_ONE,
              description="Backend targets some replica cannot read: their volumes' bytes are missing.")),
     Row(TimeSeries(title="Efficiency per source family",
                    queries=(Query(named(family("clonewatch_source_efficiency_ratio")), "{{family}} ({{backend}})"),),
                    unit=RATIO, description="saved / full-copy bytes: ~1 for CoW clones, ~0 for full copies"),
         TimeSeries(title="Fleet bytes: consumed vs as full copies",
                    queries=(Query(f"sum({family('clonewatch_source_consumed_bytes')})", "consumed"),
                             Query(f"sum({family('clonewatch_source_full_copy_bytes')})", "as full copies")), unit=BYTES)),
     # A bar's name gets a third of the panel's width (Perses), and names of native families run long (a
     # FlashSystem volume's UID, a qcow2 path): the bars get 18 of 24 columns.
     Row(Pie(title="Clone types", queries=(Query(f"count by (clone_type) ({once(f'{PVC}, clone_type', f'clonewatch_pvc_clone_info{{{JN}}}')})",
                                                 "{{clone_type}}"),), width=6),
         Bar(title="Saved bytes per family", queries=(Query(f"sort_desc({named(family('clonewatch_source_saved_bytes'))})",
                                                            "{{family}} ({{backend}})"),),
             width=18, unit=BYTES)),
     Row(Table(title="Clones that fell back to copy, with CDI's reason",
               queries=(Query(f"clonewatch_pvc_clone_info{{{JN}}} * {within(PVC)} "
                              f"group_left () (clonewatch_pvc_clone_fallback{{{J}}} == 1)"),),
               columns=(("namespace", "namespace"), ("persistentvolumeclaim", "PVC"), ("source_namespace", "source namespace"),
                        ("source_name", "source"), ("clone_type", "clone type"), ("expected_clone_type", "expected"),
                        ("fallback_reason", "CDI's reason")), width=24)),
     # Tables get the whole width: Perses' table draws each column ~150 px wide and cuts off the rest.
     Row(Table(title="VMs", queries=(Query(f"clonewatch_vm_disks{{{JN}}}", "disks"),
                                     Query(f"clonewatch_vm_provisioned_bytes{{{JN}}}", "provisioned", BYTES),
                                     Query(f"clonewatch_vm_consumed_bytes{{{JN}}}", "consumed", BYTES),
                                     Query(f"clonewatch_vm_clone_fallback{{{JN}}}", "fell back")),
               columns=(("namespace", "namespace"), ("virtualmachine", "VM")), width=24,
               description="KubeVirt VirtualMachines and their disks' bytes: consumed is what the storage holds "
                           "of them; absent while a disk is missing or not measured.")),
     Row(Table(title="VMs that are full copies",
               queries=(Query(FULL_VMS), Query(full_vm("clonewatch_vm_consumed_bytes"), "consumed", BYTES),
                        Query(full_vm("clonewatch_vm_clone_fallback"), "fell back")),
               columns=(("namespace", "namespace"), ("virtualmachine", "VM"), ("source_namespace", "source namespace"),
                        ("source_name", "source"), ("clone_type", "clone type")), width=24,
               description="VMs cloned as full copies: a disk fell back to a copy where a copy-on-write clone was "
                           "expected (fell back 1), or the storage only copies (fell back 0).")),
     Row(Stat(title="Clones stuck over 15 min",
              queries=(Query(f"count({once(PVC, f'time() - clonewatch_pvc_clone_pending_since_timestamp_seconds{{{JN}}}')}"
                             " > 900) or vector(0)"),), width=6, thresholds=BAD_FROM_ONE,
              description="Clones whose DataVolume (or PVC) is not done 15 minutes after it was created: see the table."),
         Table(title="Clones not done yet: how long, CDI's phase and reason",
               queries=(Query(f"(time() - clonewatch_pvc_clone_pending_since_timestamp_seconds{{{JN}}}) "
                              f"* {within(PVC)} group_left (phase, reason) "
                              f"clonewatch_pvc_clone_status_info{{{J}}}", "waiting"),),
               columns=(("namespace", "namespace"), ("persistentvolumeclaim", "PVC"), ("phase", "phase"), ("reason", "reason")),
               width=18, unit=SECONDS)),
     Row(TimeSeries(title="Clone duration p50 / p90 by clone type (every CDI clone; loadgen's own: the Load generator board)",
                    queries=tuple(Query(f"histogram_quantile({q}, sum by (le, clone_type) "
                                        f"({once('le, clone_type, storageclass', f'clonewatch_clone_duration_seconds_bucket{{{J}}}')}))",
                                        f"p{p} {{{{clone_type}}}}")
                                  for q, p in ((0.5, 50), (0.9, 90))), width=24, unit=SECONDS,
                    description="From each DataVolume's creation to its Ready condition, over the completed clones that "
                                "exist: copy-on-write clones take seconds, full copies minutes.")),
     Row(Bar(title="Efficiency by platform (backend)",
             queries=(Query(f"sum by (backend) ({family('clonewatch_source_saved_bytes')}) / "
                            f"sum by (backend) ({family('clonewatch_source_full_copy_bytes')})", "{{backend}}"),),
             width=24, unit=RATIO, description="The same families measured on each storage platform: "
             "copy-on-write platforms near 1, full copies (IBM Cloud VPC restores, finished FlashCopy clones) near 0.")),
     Row(TimeSeries(title="FlashCopy background copies: progress (savings erode as it reaches 100%)",
                    queries=(Query(f"{once(FLASHCOPY, f'clonewatch_flashcopy_progress_ratio{{{J}}}')} and "
                                   f"{once(FLASHCOPY, f'clonewatch_flashcopy_copy_rate{{{J}}}')} > 0", "{{volume}}"),),
                    width=24, unit=RATIO,
                    description="IBM FlashSystem clones are FlashCopy mappings; with a copy rate above 0 the array copies "
                                "the whole source in the background and the clone stops sharing anything."))))
