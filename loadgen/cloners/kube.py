"""Kubernetes mode: clones are CDI DataVolumes (or PVCs with a PVC dataSource), drift is written
by Kubernetes Jobs that mount the clone, and bytes are read from the clonewatch exporter.

Every object loadgen creates carries our labels (kube_objects.py builds the objects); before
changing or deleting anything it fetches the object and checks them (label selectors are not
trusted to have been applied). The golden PVC is never modified. The vmclone method (kube_vm.py)
clones a VM through KubeVirt; a clone's bytes and drift are then those of one of the new VM's disks.
"""

import threading
import time

from exporter.public import Volume, fetch_metrics, load_api_client, request_json

from ..drift import plan
from ..scenario import Scenario
from .base import CloneFailed, Cloner, NotOwned, Owned
from .kube_objects import (
    A_DRIFT,
    CDI,
    L_GROUP,
    L_SCENARIO,
    as_owned,
    clone,
    drift_job,
    exactly,
    job_done,
    our_labels,
    ours,
    phase,
    storage,
)
from .kube_vm import A_DISK, VmClones
from .names import parse_name


class KubeCloner(Cloner):
    backend = "kubernetes"

    def __init__(self, scenario: Scenario, run: str, api=None) -> None:
        self.sc, self.run = scenario, run
        if scenario.kube is None:
            raise ValueError("a Kubernetes cloner needs the scenario's kubernetes section")
        self.k = scenario.kube
        self.api = api or load_api_client(self.k.kubeconfig or None)
        self.ns = self.k.namespace
        self._changed_at = 0.0
        self._lock = threading.Lock()
        self.clone_types_seen: dict[str, str] = {}
        self._golden: dict | None = None
        self._pvc_volume: dict[tuple[str, str], str] = {}     # from the exporter, at each measure()
        self.vms = VmClones(self._req, self.k, self._ours)
        self._vmclone_groups = {g.name for g in scenario.groups if g.method == "vmclone"}
        self._disk_of: dict[str, str] = {}      # vmclone: clone name -> the target VM's PVC that stands for it

    # -- helpers --------------------------------------------------------------------------------
    def _req(self, method: str, path: str, body=None, ok=(200, 201, 202), content_type="application/json"):
        try:
            status, doc = request_json(self.api, method, path, body, content_type=content_type)
        except Exception as exc:          # connection errors: a failed operation, counted by the caller
            raise CloneFailed(f"{method} {path}: {exc}") from None
        if status not in ok:
            msg = doc.get("message") if isinstance(doc, dict) else ""
            raise CloneFailed(f"{method} {path}: HTTP {status} {msg}".strip())
        return status, doc

    def _touch(self) -> None:
        with self._lock:
            self._changed_at = time.time()

    def _ours(self, obj) -> bool:
        return ours(obj, self.sc.name)

    def _is_vmclone(self, name: str) -> bool:
        parsed = parse_name(self.sc.name, name)
        return parsed is not None and parsed[0] in self._vmclone_groups

    def _claim(self, name: str) -> str:
        """The PVC a clone's bytes are read from: its own, or a VM clone's disk."""
        return self._disk_of.get(name, name)

    def _wait(self, path: str, done, what: str) -> dict:
        deadline = time.monotonic() + self.k.timeout_seconds
        while time.monotonic() < deadline:
            status, doc = self._req("GET", path, ok=(200, 404))
            if status == 200:
                verdict = done(doc)
                if verdict is True:
                    return doc
                if isinstance(verdict, str):
                    raise CloneFailed(f"{what}: {verdict}")
            time.sleep(self.k.poll_seconds)
        raise CloneFailed(f"{what}: not done within {self.k.timeout_seconds:g}s")

    # -- golden -----------------------------------------------------------------------------------
    def golden(self) -> dict:
        if self._golden is None:
            status, doc = self._req("GET", f"/api/v1/namespaces/{self.k.golden_namespace}/persistentvolumeclaims/"
                                           f"{self.k.golden_name}", ok=(200, 404))
            if status == 404:
                raise CloneFailed(f"golden PVC {self.k.golden_namespace}/{self.k.golden_name} does not exist")
            self._golden = doc
        return self._golden

    def golden_exists(self) -> bool:
        try:
            self.golden()
            return True
        except CloneFailed:
            return False

    def ensure_golden(self) -> bool:
        self.golden()          # loadgen never creates (or changes) a golden in a cluster
        return False

    def remove_golden(self) -> None:
        raise NotOwned("a golden PVC is never removed by loadgen")

    # -- clones -------------------------------------------------------------------------------------
    def create(self, name: str, group: str, method: str) -> None:
        created = time.time()
        if method == "vmclone":
            self._touch()
            disk = self.vms.create(name, our_labels(self.sc.name, self.run, group, "clone"), created)
            self._disk_of[name] = disk
            # KubeVirt restores every disk from a VolumeSnapshot; the exporter then says the same.
            self.clone_types_seen[disk] = "snapshot"
            self._touch()
            return
        group_class = next((gr.storage_class for gr in self.sc.groups if gr.name == group), "")
        body = clone(name, method, self.k, our_labels(self.sc.name, self.run, group, "clone"),
                     storage(self.golden(), self.k, group_class), created)
        self._touch()
        if method == "datavolume":
            self._req("POST", f"{CDI}/namespaces/{self.ns}/datavolumes", body)
            made = self._wait(f"{CDI}/namespaces/{self.ns}/datavolumes/{name}", phase("Succeeded", "Failed"),
                              f"DataVolume {self.ns}/{name}")
        else:
            self._req("POST", f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims", body)
            made = self._wait(f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/{name}", phase("Bound", "Lost"),
                              f"PVC {self.ns}/{name}")
        ann = made.get("metadata", {}).get("annotations") or {}
        self.clone_types_seen[name] = ann.get("cdi.kubevirt.io/cloneType", "csi-clone" if method == "pvc" else "unknown")
        self._touch()

    def _get_clone(self, name: str) -> tuple[str, dict] | None:
        if self._is_vmclone(name):
            found = self.vms.get_clone(name)
            return None if found is None else (self.vms.clone_path(name), found)
        for path in (f"{CDI}/namespaces/{self.ns}/datavolumes/{name}",
                     f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/{name}"):
            status, doc = self._req("GET", path, ok=(200, 404))
            if status == 200:
                return path, doc
        return None

    def drift(self, name: str, start: int, end: int) -> int:
        if self._is_vmclone(name):
            found, claim = self.vms.disk(name)
            self._disk_of[name] = claim
        else:
            got, claim = self._get_clone(name), name
            if got is None or not self._ours(got[1]):
                raise NotOwned(f"{self.ns}/{name} is not ours")
            found = got[1]
        writes = plan(self.sc.golden_size, start, end, self.sc.drift_pattern, self.sc.drift_seed)
        if not writes:
            return 0
        group = found["metadata"].get("labels", {}).get(L_GROUP, "")
        job = drift_job(self.sc, self.k, our_labels(self.sc.name, self.run, group, "drift"), claim, start, end, writes,
                        name)
        job_name = job["metadata"]["name"]
        path = f"/apis/batch/v1/namespaces/{self.ns}/jobs"
        self._req("POST", path, job)
        try:
            self._wait(f"{path}/{job_name}", job_done, f"Job {self.ns}/{job_name}")
        finally:
            self._delete_if_ours(f"{path}/{job_name}")
        self._touch()
        return sum(length for _, length in writes)

    def record_drift(self, name: str, total: int) -> None:
        found = self._get_clone(name)
        if found and self._ours(found[1]):
            self._req("PATCH", found[0], {"metadata": {"annotations": {A_DRIFT: str(total)}}},
                      content_type="application/merge-patch+json")

    def _delete_if_ours(self, path: str) -> bool:
        status, doc = self._req("GET", path, ok=(200, 404))
        if status == 404:
            return False
        if not self._ours(doc):
            raise NotOwned(f"{path} is not ours")
        status, _ = self._req("DELETE", path, exactly(doc), ok=(200, 202, 404, 409))
        if status == 409:
            raise NotOwned(f"{path} was made again since it was found ours: left alone")
        return True

    def delete(self, name: str) -> None:
        if parse_name(self.sc.name, name) is None:
            raise NotOwned(f"{name} is not one of our names")
        if self._is_vmclone(name):
            self._touch()
            self.vms.delete(name)
            self._disk_of.pop(name, None)
            return
        found = self._get_clone(name)
        if found is None:
            return
        if not self._ours(found[1]):
            raise NotOwned(f"{self.ns}/{name} is not ours")
        self._touch()
        self._delete_if_ours(f"{CDI}/namespaces/{self.ns}/datavolumes/{name}")
        # The DataVolume's PVC goes with it in a real cluster; delete it explicitly when it is ours.
        try:
            self._delete_if_ours(f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/{name}")
        except NotOwned:
            pass

    def owned(self) -> list[Owned]:
        found: dict[str, Owned] = {}
        for path in (f"{CDI}/namespaces/{self.ns}/datavolumes", f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims"):
            _status, doc = self._req("GET", path + f"?labelSelector={L_SCENARIO}%3D{self.sc.name}", ok=(200, 404))
            for obj in (doc or {}).get("items") or []:
                record = as_owned(obj, self.sc.name)
                if record is not None:
                    found.setdefault(record.name, record)
        for obj in self.vms.list_clones(f"{L_SCENARIO}%3D{self.sc.name}") if self._vmclone_groups else ():
            record = as_owned(obj, self.sc.name)
            if record is not None:
                found.setdefault(record.name, record)
                disk = ((obj.get("metadata") or {}).get("annotations") or {}).get(A_DISK)
                if disk:
                    self._disk_of[record.name] = disk
        return sorted(found.values(), key=lambda o: o.name)

    # -- measuring, through the exporter ------------------------------------------------------------
    def _fresh(self, m) -> bool:
        since = self._changed_at
        rebuilt = [v for _, v in m.get("clonewatch_last_rebuild_timestamp_seconds", [])]
        backends = [v for _, v in m.get("clonewatch_backend_last_success_timestamp_seconds", [])]
        return bool(rebuilt) and rebuilt[0] > since and bool(backends) and min(backends) > since

    def measure(self) -> dict[str, Volume]:
        deadline = time.monotonic() + self.k.timeout_seconds
        while True:
            try:
                m = fetch_metrics(self.k.exporter_url)
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise CloneFailed(f"exporter {self.k.exporter_url} unreachable: {exc}") from None
                time.sleep(self.k.poll_seconds)
                continue
            if self._fresh(m) or time.monotonic() > deadline:
                break
            time.sleep(self.k.poll_seconds)
        consumed = {lb["volume"]: v for lb, v in m.get("clonewatch_volume_consumed_bytes", [])}
        provisioned = {lb["volume"]: v for lb, v in m.get("clonewatch_volume_provisioned_bytes", [])}
        volumes = {}
        for labels, _ in m.get("clonewatch_volume_info", []):
            vid = labels["volume"]
            if vid in consumed:
                volumes[vid] = Volume(vid, labels.get("target", ""), int(consumed[vid]), int(provisioned.get(vid, 0)),
                                      labels.get("parent", ""))
        self._pvc_volume = {(lb["namespace"], lb["persistentvolumeclaim"]): lb["backend_volume"]
                            for lb, _ in m.get("clonewatch_pvc_volume_info", [])}
        for labels, _ in m.get("clonewatch_pvc_clone_info", []):
            if labels.get("namespace") == self.ns:
                self.clone_types_seen[labels["persistentvolumeclaim"]] = labels.get("clone_type", "unknown")
        return volumes

    def volume_id(self, name: str) -> str:
        claim = self._claim(name)
        return self._pvc_volume.get((self.ns, claim), f"pvc:{self.ns}/{claim}")

    def golden_id(self) -> str:
        return self._pvc_volume.get((self.k.golden_namespace, self.k.golden_name),
                                    f"pvc:{self.k.golden_namespace}/{self.k.golden_name}")

    def clone_type(self, name: str, method: str) -> str:
        """What CDI recorded (csi-clone, snapshot, copy), or the exporter for a VM clone's disk;
        unknown until it was seen."""
        return self.clone_types_seen.get(self._claim(name), "unknown")
