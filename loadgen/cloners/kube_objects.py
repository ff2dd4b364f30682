"""The Kubernetes objects loadgen creates, as request bodies: a clone of the golden PVC (a CDI
DataVolume, or a PVC with a dataSourceRef) and the Job that writes a clone's drift; how to tell
from its status that each is done; and a clone's record, read back from its labels.

Every one carries the labels below: they are how loadgen later knows an object is its own.
"""

from typing import Any

from ..drift import compressible
from ..scenario import KubeSettings, Scenario
from .base import Owned
from .names import OWNER, parse_name

CDI = "/apis/cdi.kubevirt.io/v1beta1"
MANAGED_BY = "app.kubernetes.io/managed-by"
L_SCENARIO, L_RUN, L_GROUP, L_ROLE = ("clonewatch.io/loadgen-scenario", "clonewatch.io/loadgen-run",
                                      "clonewatch.io/loadgen-group", "clonewatch.io/loadgen-role")
A_CREATED, A_DRIFT, A_METHOD = ("clonewatch.io/loadgen-created", "clonewatch.io/loadgen-drift-bytes",
                                "clonewatch.io/loadgen-method")
A_DRIFT_START, A_DRIFT_END, A_DRIFT_PATTERN = ("clonewatch.io/drift-start", "clonewatch.io/drift-end",
                                               "clonewatch.io/drift-pattern")
DEVICE = "/dev/clonewatch-disk"
DRIFT_FILE = "/data/clonewatch-drift.bin"

DRIFT_SCRIPT = """set -eu
while read off len kind; do
  if [ "$kind" = c ]; then src="yes clonewatch-drift"; else src="cat /dev/urandom"; fi
  $src | dd of="$TARGET" bs=4096 seek=$((off / 4096)) count=$((len / 4096)) iflag=fullblock conv=notrunc,fsync \\
    2>/dev/null
done <<'PLAN'
{plan}
PLAN
sync
"""


def our_labels(scenario: str, run: str, group: str, role: str) -> dict:
    return {MANAGED_BY: OWNER, L_SCENARIO: scenario, L_RUN: run, L_GROUP: group, L_ROLE: role}


def exactly(obj: dict) -> dict | None:
    """DeleteOptions that delete this very object and no other made under its name since it was read
    (the API server answers 409 when the uid differs); None for an object without a uid."""
    uid = (obj.get("metadata") or {}).get("uid")
    return {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}} if uid else None


def ours(obj, scenario: str) -> bool:
    """Whether an object as fetched carries our mark for this scenario."""
    found = (obj or {}).get("metadata", {}).get("labels") or {}
    return found.get(MANAGED_BY) == OWNER and found.get(L_SCENARIO) == scenario


def as_owned(obj: dict, scenario: str) -> Owned | None:
    """A clone of ours as its labels and annotations record it; None for anything else (not ours,
    a drift Job, a name loadgen would not give)."""
    meta = obj.get("metadata") or {}
    marks, ann = meta.get("labels") or {}, meta.get("annotations") or {}
    name = meta.get("name", "")
    if not ours(obj, scenario) or marks.get(L_ROLE) != "clone" or parse_name(scenario, name) is None:
        return None
    return Owned(name, marks.get(L_GROUP, ""), ann.get(A_METHOD, ""), float(ann.get(A_CREATED, 0) or 0),
                 marks.get(L_RUN, ""), int(ann.get(A_DRIFT, 0) or 0))


def storage(golden: dict, k: KubeSettings, group_class: str) -> dict:
    """A clone's size, volume mode, access modes and class: the scenario's where it names them, else the golden's."""
    size = k.size or ((golden.get("status") or {}).get("capacity") or {}).get("storage") \
        or golden.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")
    spec = {"resources": {"requests": {"storage": size}}, "volumeMode": k.volume_mode,
            "accessModes": golden.get("spec", {}).get("accessModes") or ["ReadWriteOnce"]}
    sc = group_class or k.storage_class or golden.get("spec", {}).get("storageClassName")
    if sc:
        spec["storageClassName"] = sc
    return spec


def clone(name: str, method: str, k: KubeSettings, marks: dict, disk: dict, created: float) -> dict:
    """The DataVolume (method datavolume) or PVC (method pvc) that clones the golden; `marks` are
    its labels, `disk` what storage() gave."""
    meta: dict[str, Any] = {"name": name, "namespace": k.namespace, "labels": marks,
                            "annotations": {A_CREATED: f"{created:.3f}", A_METHOD: method}}
    if method == "datavolume":
        meta["annotations"]["cdi.kubevirt.io/storage.bind.immediate.requested"] = "true"
        return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": meta,
                "spec": {"source": {"pvc": {"namespace": k.golden_namespace, "name": k.golden_name}},
                         "storage": disk}}
    ref = {"kind": "PersistentVolumeClaim", "name": k.golden_name}
    if k.golden_namespace != k.namespace:
        ref["namespace"] = k.golden_namespace
    spec = {"accessModes": disk["accessModes"], "volumeMode": disk["volumeMode"],
            "resources": disk["resources"], "dataSourceRef": ref}
    if "storageClassName" in disk:
        spec["storageClassName"] = disk["storageClassName"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def drift_job(sc: Scenario, k: KubeSettings, marks: dict, claim: str, start: int, end: int,
              writes: list[tuple[int, int]], clone_name: str = "") -> dict:
    """The Job that writes `writes` (drift.plan's (offset, length) pairs, from `start` to `end`)
    into the clone `claim`, through its block device or a file on its filesystem; named after the
    clone (`clone_name`, a VM clone's, where the claim is KubeVirt's long restore name)."""
    lines = "\n".join(f"{off} {length} {'c' if compressible(i, len(writes), sc.drift_compressible) else 'r'}"
                      for i, (off, length) in enumerate(writes))
    block = k.volume_mode == "Block"
    container = {"name": "drift", "image": k.drift_image, "command": ["sh", "-c",
                 DRIFT_SCRIPT.format(plan=lines)],
                 "env": [{"name": "TARGET", "value": DEVICE if block else DRIFT_FILE}],
                 "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                 "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}}
    if block:
        container["volumeDevices"] = [{"name": "disk", "devicePath": DEVICE}]
    else:
        container["volumeMounts"] = [{"name": "disk", "mountPath": "/data"}]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"{clone_name or claim}-drift-{end}"[:63], "namespace": k.namespace, "labels": marks,
                         "annotations": {A_DRIFT_START: str(start), A_DRIFT_END: str(end),
                                         A_DRIFT_PATTERN: sc.drift_pattern, "clonewatch.io/claim": claim}},
            "spec": {"backoffLimit": 1, "ttlSecondsAfterFinished": 600, "template": {
                "metadata": {"labels": {MANAGED_BY: OWNER, L_SCENARIO: sc.name}},
                "spec": {"restartPolicy": "Never", "containers": [container],
                         "securityContext": {"runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}},
                         "volumes": [{"name": "disk", "persistentVolumeClaim": {"claimName": claim}}]}}}}


# Verdicts on an object as fetched, for KubeCloner._wait: True when done, an error text when it
# never will be, None while it is still on its way.

def phase(done: str, broken: str):
    """A verdict on status.phase: done at `done` (Succeeded, Bound), broken at `broken` (Failed, Lost)."""
    def verdict(obj: dict):
        now = (obj.get("status") or {}).get("phase")
        return True if now == done else (f"phase {broken}" if now == broken else None)
    return verdict


def job_done(job: dict):
    """A drift Job: done at one success; broken at two failures (backoffLimit 1: no retry is left)."""
    status = job.get("status") or {}
    return True if (status.get("succeeded") or 0) >= 1 else ("drift Job failed" if (status.get("failed") or 0) >= 2 else None)
