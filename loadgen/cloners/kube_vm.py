"""Kubernetes mode's vmclone method: a VM cloned by KubeVirt's VirtualMachineClone (clone.kubevirt.io).
KubeVirt snapshots the source VM, restores the snapshot into a new VM whose disks are PVCs restored
from VolumeSnapshots (and a DataVolume per template), then deletes the snapshot (docs/field-facts.md,
KubeVirt).

Only the VirtualMachineClone carries our labels: KubeVirt copies the source VM's labels onto the
target and marks nothing with the clone. The target VM and its disks are ours only as that clone's
work, proven from what KubeVirt writes on them: the VM's `restore.kubevirt.io/lastRestoreUID` is
`tmp-restore-<clone UID>-<restore UID>`, and each restored disk's PVC and DataVolume say
`restore.kubevirt.io/name: tmp-restore-<clone UID>`. A VM or disk that does not prove so is never
changed or deleted, whatever its name; the clone's UID, not its name, is what ties them.
"""

import time
from collections.abc import Callable
from typing import Any

import structlog

from ..scenario import KubeSettings
from .base import CloneFailed, NotOwned
from .kube_objects import A_CREATED, A_METHOD, exactly

log = structlog.get_logger("clonewatch.loadgen")

KUBEVIRT = "/apis/kubevirt.io/v1"
CLONE_VERSIONS = ("v1beta1", "v1alpha1")    # v1beta1 since KubeVirt 1.5, v1alpha1 before (same fields used)
CDI = "/apis/cdi.kubevirt.io/v1beta1"
A_DISK = "clonewatch.io/loadgen-disk"       # on our clone: the target's PVC drifted and measured
RESTORE_NAME = "restore.kubevirt.io/name"
LAST_RESTORE = "restore.kubevirt.io/lastRestoreUID"
SOURCE_VM_LABEL = "restore.kubevirt.io/source-vm-name"
DISK_KINDS = {"dataVolume": "name", "persistentVolumeClaim": "claimName"}     # the volumes with a PVC of their own

Request = Callable[..., tuple[int, Any]]


class NotServed(CloneFailed):
    """The cluster serves no VirtualMachineClone API: KubeVirt is not installed (or predates clones)."""


def vm_clone(name: str, api_version: str, k: KubeSettings, marks: dict, created: float) -> dict:
    """The VirtualMachineClone of the scenario's source VM into a VM named like the clone."""
    return {"apiVersion": f"clone.kubevirt.io/{api_version}", "kind": "VirtualMachineClone",
            "metadata": {"name": name, "namespace": k.namespace, "labels": marks,
                         "annotations": {A_CREATED: f"{created:.3f}", A_METHOD: "vmclone"}},
            "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": k.source_vm},
                     "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": name}}}


def status_reason(clone: dict) -> str:
    """Why a clone is where it is, as its Ready condition says (e.g. `Source doesnt exist: ...`)."""
    for cond in (clone.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") != "True":
            return ": ".join(p for p in (cond.get("reason"), cond.get("message")) if p) or "no reason given"
    return "no reason given"


def verdict(clone: dict) -> bool | str | None:
    """True at Succeeded, an error text at Failed, None on the way (or pending, with no phase)."""
    phase = (clone.get("status") or {}).get("phase")
    return True if phase == "Succeeded" else (f"phase Failed: {status_reason(clone)}" if phase == "Failed" else None)


def disk_claims(vm: dict) -> dict[str, str]:
    """The VM's volumes that are disks with a PVC of their own: volume name -> claim (DataVolume) name."""
    out = {}
    for vol in (((vm.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []:
        for kind, field in DISK_KINDS.items():
            claim = (vol.get(kind) or {}).get(field)
            if claim:
                out[vol.get("name", "")] = claim
    return out


def annotation(obj: dict | None, key: str) -> str:
    return ((obj or {}).get("metadata", {}).get("annotations") or {}).get(key, "")


def made_by(vm: dict | None, clone_uid: str) -> bool:
    """The VM was restored by this clone's restore (KubeVirt names the restore after the clone's UID)."""
    return bool(clone_uid) and annotation(vm, LAST_RESTORE).startswith(f"tmp-restore-{clone_uid}-")


def restored_by(obj: dict | None, clone_uid: str) -> bool:
    """A PVC or DataVolume made by this clone's restore."""
    return bool(clone_uid) and annotation(obj, RESTORE_NAME) == f"tmp-restore-{clone_uid}"


class VmClones:
    """The vmclone verbs, over the Kubernetes cloner's requests (`req` raises CloneFailed)."""

    def __init__(self, req: Request, k: KubeSettings, ours: Callable[[Any], bool]) -> None:
        self.req, self.k, self.ns, self.ours = req, k, k.namespace, ours
        self._version = ""

    # -- where things are --------------------------------------------------------------------------
    def version(self) -> str:
        """The VirtualMachineClone version the cluster serves, newest first (asked once)."""
        if not self._version:
            for version in CLONE_VERSIONS:
                status, _ = self.req("GET", f"{self._base(version)}?limit=1", ok=(200, 404))
                if status == 200:
                    self._version = version
                    break
            else:
                raise NotServed("the cluster serves no VirtualMachineClone API (clone.kubevirt.io): is KubeVirt installed?")
        return self._version

    def _base(self, version: str) -> str:
        return f"/apis/clone.kubevirt.io/{version}/namespaces/{self.ns}/virtualmachineclones"

    def clone_path(self, name: str) -> str:
        return f"{self._base(self.version())}/{name}"

    def get_clone(self, name: str) -> dict | None:
        status, doc = self.req("GET", self.clone_path(name), ok=(200, 404))
        return doc if status == 200 else None

    def _get(self, path: str) -> dict | None:
        status, doc = self.req("GET", path, ok=(200, 404))
        return doc if status == 200 else None

    def _vm(self, name: str) -> dict | None:
        return self._get(f"{KUBEVIRT}/namespaces/{self.ns}/virtualmachines/{name}")

    def list_clones(self, selector: str) -> list[dict]:
        try:
            version = self.version()
        except NotServed:
            return []           # no KubeVirt: no clones of ours either (any other failure is raised)
        _, doc = self.req("GET", f"{self._base(version)}?labelSelector={selector}", ok=(200, 404))
        return (doc or {}).get("items") or []

    # -- create ------------------------------------------------------------------------------------
    def create(self, name: str, marks: dict, created: float) -> str:
        """Clone the source VM into VM `name`; wait for Succeeded; answers the target's PVC that drift
        goes into. A Failed clone, or one not done in time, raises with the reason its status gives,
        and what it made is deleted."""
        if self._vm(name) is not None:
            # A clone onto an existing VM would restore over it: never.
            raise CloneFailed(f"VirtualMachine {self.ns}/{name} exists already; not cloning over it")
        version = self.version()
        self.req("POST", self._base(version), vm_clone(name, version, self.k, marks, created))
        try:
            done = self._wait(name)
            return self._adopt_disk(name, done)
        except CloneFailed:
            try:
                self.delete(name)
            except (CloneFailed, NotOwned) as exc:
                log.error("cleanup_failed", name=name, error=str(exc))
            raise

    def _wait(self, name: str) -> dict:
        deadline = time.monotonic() + self.k.timeout_seconds
        last: dict = {}
        while time.monotonic() < deadline:
            last = self.get_clone(name) or {}
            said = verdict(last)
            if said is True:
                return last
            if isinstance(said, str):
                raise CloneFailed(f"VirtualMachineClone {self.ns}/{name}: {said}")
            time.sleep(self.k.poll_seconds)
        phase = (last.get("status") or {}).get("phase") or "Pending"
        raise CloneFailed(f"VirtualMachineClone {self.ns}/{name}: not Succeeded within {self.k.timeout_seconds:g}s "
                          f"(phase {phase}: {status_reason(last)})")

    def _adopt_disk(self, name: str, clone: dict) -> str:
        """The target's disk that stands for the clone (the configured volume, else its first PVC
        disk), proven the clone's work; recorded on the clone for a later process."""
        uid = clone.get("metadata", {}).get("uid", "")
        target = (clone.get("status") or {}).get("targetName") or name
        vm = self._vm(target)
        if vm is None or not made_by(vm, uid):
            raise CloneFailed(f"VirtualMachineClone {self.ns}/{name} Succeeded but VirtualMachine {self.ns}/{target} "
                              "does not name its restore")
        claims = disk_claims(vm)
        wanted = self.k.source_vm_disk or next(iter(claims), "")
        claim = claims.get(wanted, "")
        if not claim:
            what = f"a PVC disk named {wanted!r}" if wanted else "any PVC disk"
            raise CloneFailed(f"VirtualMachine {self.ns}/{target} has no {what} to drift and measure")
        pvc = self._get(f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/{claim}")
        if not restored_by(pvc, uid):
            raise CloneFailed(f"PVC {self.ns}/{claim} of VirtualMachine {self.ns}/{target} is not the clone's restore")
        self.req("PATCH", self.clone_path(name), {"metadata": {"annotations": {A_DISK: claim}}},
                 content_type="application/merge-patch+json")
        return claim

    # -- the disk drift goes into ------------------------------------------------------------------
    def disk(self, name: str) -> tuple[dict, str]:
        """(our clone, the PVC drift goes into), the PVC proven its restore's; NotOwned otherwise."""
        clone = self.get_clone(name)
        if clone is None or not self.ours(clone):
            raise NotOwned(f"VirtualMachineClone {self.ns}/{name} is not ours")
        claim = annotation(clone, A_DISK)
        pvc = self._get(f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/{claim}") if claim else None
        if not restored_by(pvc, clone["metadata"].get("uid", "")):
            raise NotOwned(f"no disk of VirtualMachineClone {self.ns}/{name} is proven its own")
        return clone, claim

    # -- delete ------------------------------------------------------------------------------------
    def delete(self, name: str) -> None:
        """Our clone, the VM it made and that VM's disks its restore made; anything else under these
        names stays (logged). The clone goes last: it is the proof of the rest."""
        clone = self.get_clone(name)
        if clone is None:
            return
        if not self.ours(clone):
            raise NotOwned(f"VirtualMachineClone {self.ns}/{name} is not ours")
        uid = clone["metadata"].get("uid", "")
        target = (clone.get("status") or {}).get("targetName") or ((clone.get("spec") or {}).get("target") or {}).get("name") \
            or name
        vm = self._vm(target)
        if vm is not None and not made_by(vm, uid):
            log.warning("vm_left_alone", name=target, why="not made by our VirtualMachineClone", clone=name)
            vm = None
        for claim in self._claims(vm, clone):
            for path in (f"{CDI}/namespaces/{self.ns}/datavolumes/{claim}",
                         f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/{claim}"):
                obj = self._get(path)
                if obj is None:
                    continue
                if restored_by(obj, uid):
                    self._delete_exactly(path, obj)
                else:
                    log.warning("disk_left_alone", name=claim, vm=target, why="not made by our VirtualMachineClone")
        if vm is not None:
            self._delete_exactly(f"{KUBEVIRT}/namespaces/{self.ns}/virtualmachines/{target}", vm)
        self._delete_exactly(self.clone_path(name), clone)

    def _delete_exactly(self, path: str, obj: dict) -> None:
        """Delete the object as it was read and proven ours; one made under its name since stays."""
        status, _ = self.req("DELETE", path, exactly(obj), ok=(200, 202, 404, 409))
        if status == 409:
            log.warning("left_alone", path=path, why="made again since it was found ours (its uid changed)")

    def _claims(self, vm: dict | None, clone: dict) -> list[str]:
        """The target's disks: its volumes; without a VM (a clone that failed half way), the PVCs
        restored from the source VM by this clone's restore."""
        if vm is not None:
            return list(disk_claims(vm).values())
        source = ((clone.get("spec") or {}).get("source") or {}).get("name", "")
        _, doc = self.req("GET", f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims"
                                 f"?labelSelector={SOURCE_VM_LABEL}%3D{source}", ok=(200, 404))
        uid = clone["metadata"].get("uid", "")
        return [p["metadata"]["name"] for p in (doc or {}).get("items") or [] if restored_by(p, uid)]
