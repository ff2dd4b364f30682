"""Source family: one golden image and its clones, what they occupy, what full copies would, drift, depth, VMs."""

from ..model import BYTES, LOW_BELOW_HALF, RATIO, Bar, Board, Pie, Query, Row, Stat, Table, TimeSeries, Variable
from .series import FAMILY, PVC, VM, once, within

J = 'job=~"$job"'
S = f'{J},source_name=~"$source"'
CLONES = f"{within(PVC)} group_left () clonewatch_pvc_clone_info{{{S}}}"
# The family's VMs: those whose first cloned disk's chain ends in the source, with their clone type.
VMS = (f"{within(VM)} group_left (clone_type, backend) (clonewatch_vm_clone_info{{{J}}} "
       f"* {within(VM)} group_left (backend) clonewatch_vm_golden_info{{{S}}})")


def family(metric: str) -> str:
    return once(FAMILY, f"{metric}{{{S}}}")


def sharing(op: str, legend: str) -> Query:
    clones = f"clonewatch_pvc_clone_sharing{{{J}}} == {op} and {within(PVC)} clonewatch_pvc_clone_info{{{S}}}"
    return Query(f"count({once(PVC, clones)}) or vector(0)", legend)


def clone(metric: str) -> str:
    """A per-PVC metric of each clone in the family."""
    return once(PVC, f"{metric}{{{J}}} * {CLONES}")


BOARD = Board(
    "clonewatch-family", "clonewatch / Source family",
    "One golden image and its clones: what they occupy, what full copies would, per-clone drift, depth, the VMs.",
    (Variable("job", "Job", "clonewatch_build_info", "job"),
     Variable("source", "Source", f"clonewatch_source_clones{{{J}}}", "source_name", multi=False, include_all=False)),
    (Row(TimeSeries(title="Consumed vs as full copies",
                    queries=(Query(family("clonewatch_source_consumed_bytes"), "consumed {{backend}}"),
                             Query(family("clonewatch_source_full_copy_bytes"), "as full copies {{backend}}")),
                    width=16, unit=BYTES),
         Stat(title="Efficiency", queries=(Query(family("clonewatch_source_efficiency_ratio"), "{{backend}}"),),
              width=4, unit=RATIO, thresholds=LOW_BELOW_HALF),
         Stat(title="Clones", queries=(Query(family("clonewatch_source_clones"), "{{backend}}"),), width=4)),
     Row(Stat(title="Clones still sharing blocks with the source",
              queries=(sharing("1", "sharing"), sharing("0", "no longer sharing")), width=8,
              description="As the storage sees it now: first sharing, then no longer sharing "
                          "(flattened, background copy complete, ...)."),
         Bar(title="Top 10 clones by own bytes (drift)",
             queries=(Query(f"topk(10, {clone('clonewatch_pvc_consumed_bytes')})",
                            "{{namespace}}/{{persistentvolumeclaim}}"),), width=16, unit=BYTES)),
     Row(Table(title="Clone chain depth (ceph-csi flattens at 4, refuses at 8)",
               queries=(Query(f"clonewatch_pvc_clone_depth{{{J}}} * {within(PVC)} "
                              f"group_left (source_name, clone_type) clonewatch_pvc_clone_info{{{S}}}", "depth"),),
               columns=(("namespace", "namespace"), ("persistentvolumeclaim", "PVC"), ("clone_type", "clone type")), width=16),
         Pie(title="Clone types in this family",
             queries=(Query(f"count by (clone_type) ({once(f'{PVC}, clone_type', f'clonewatch_pvc_clone_info{{{S}}}')})",
                            "{{clone_type}}"),), width=8)),
     Row(TimeSeries(title="Consumed bytes of each clone",
                    queries=(Query(clone("clonewatch_pvc_consumed_bytes"), "{{namespace}}/{{persistentvolumeclaim}}"),),
                    width=24, unit=BYTES)),
     # The whole width: Perses' table draws each column ~150 px wide and cuts off the rest.
     Row(Table(title="VMs of this family",
               queries=(Query(f"clonewatch_vm_disks{{{J}}} * {VMS}", "disks"),
                        Query(f"clonewatch_vm_provisioned_bytes{{{J}}} * {VMS}", "provisioned", BYTES),
                        Query(f"clonewatch_vm_consumed_bytes{{{J}}} * {VMS}", "consumed", BYTES),
                        Query(f"clonewatch_vm_clone_fallback{{{J}}} * {VMS}", "fell back")),
               columns=(("namespace", "namespace"), ("virtualmachine", "VM"), ("backend", "backend"),
                        ("clone_type", "clone type")), width=24,
               description="KubeVirt VirtualMachines whose first cloned disk comes from this source (through any "
                           "clones of clones): their disks' bytes, and whether a disk fell back to a copy."))))
