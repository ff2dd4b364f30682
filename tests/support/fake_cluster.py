"""The controllers kmock does not have, played by the test over the real client, doing real
storage work on the local Ceph cluster:

- CDI + ceph-csi: a new DataVolume becomes an RBD clone (`rbd clone`) on StorageClasses whose
  name is in `smart`, or a host-assisted full copy (`rbd cp`) with a fallback reason elsewhere;
  then a PV, a PVC (with the DataVolume's labels, as CDI copies them) and DataVolume status
  Succeeded with `cdi.kubevirt.io/cloneType`, as CDI writes them. A deleted PVC takes its PV and
  image with it (reclaimPolicy Delete).
- kubelet + the Job controller: a drift Job writes, into the image behind its claim, the bytes
  its annotations describe (`rbd bench`, sequential from 0 or random 4 KiB), then succeeds.
"""

import json
import threading
import time

from tests.support.objects import clone_annotations, pv_rbd

CDI = ("cdi.kubevirt.io", "v1beta1")


class FakeCluster(threading.Thread):
    def __init__(self, kube, pool, namespace: str, golden_image: str, smart: set[str]) -> None:
        super().__init__(daemon=True, name="fake-cluster")
        self.kube, self.pool, self.ns = kube, pool, namespace
        self.golden_image, self.smart = golden_image, smart
        self.stopping = threading.Event()
        self.done_dvs: set[str] = set()
        self.done_jobs: set[str] = set()
        self.images: dict[str, str] = {}       # PVC name -> image
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._datavolumes()
                self._jobs()
                self._reclaim()
            except Exception as exc:
                self.errors.append(repr(exc))
            time.sleep(0.1)

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)

    def _list(self, group, version, plural):
        return self.kube.custom.list_namespaced_custom_object(group, version, self.ns, plural).get("items", [])

    def _datavolumes(self) -> None:
        dvs = self._list(*CDI, "datavolumes")
        self.done_dvs &= {dv["metadata"]["name"] for dv in dvs}     # a name can come back after a delete
        for dv in dvs:
            name = dv["metadata"]["name"]
            if name in self.done_dvs or (dv.get("status") or {}).get("phase") == "Succeeded":
                continue
            self.done_dvs.add(name)
            sc = dv["spec"]["storage"].get("storageClassName", "")
            image = f"{self.ns}-{name}"
            src = f"{self.pool.spec(self.golden_image)}@base"
            if sc in self.smart:
                self.pool.rbd("clone", src, self.pool.spec(image))
                ann = clone_annotations("csi-clone")
            else:
                self.pool.rbd("cp", "--no-progress", src, self.pool.spec(image))
                ann = clone_annotations("copy", "NoVolumeSnapshotClass")
            self.images[name] = image
            size = dv["spec"]["storage"]["resources"]["requests"]["storage"]
            self.kube.create(pv_rbd(f"pv-{image}", self.pool.name, image, size=size, storageclass_name=sc))
            pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": name, "namespace": self.ns, "labels": dv["metadata"].get("labels", {}),
                                "annotations": ann,
                                "ownerReferences": [{"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                                                     "name": name, "uid": "0", "controller": True}]},
                   "spec": {"storageClassName": sc, "volumeName": f"pv-{image}", "volumeMode": "Block",
                            "accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": size}}},
                   "status": {"phase": "Bound", "capacity": {"storage": size}}}
            self.kube.create(pvc)
            self.kube.custom.patch_namespaced_custom_object(
                *CDI, self.ns, "datavolumes", name,
                {"metadata": {"annotations": ann}, "status": {"phase": "Succeeded", "progress": "100.0%"}})

    def _jobs(self) -> None:
        jobs = self.kube.custom.list_namespaced_custom_object("batch", "v1", self.ns, "jobs").get("items", [])
        self.done_jobs &= {j["metadata"]["name"] for j in jobs}
        for job in jobs:
            name = job["metadata"]["name"]
            if name in self.done_jobs:
                continue
            self.done_jobs.add(name)
            ann = job["metadata"]["annotations"]
            image = self.images[ann["clonewatch.io/claim"]]
            start, end = int(ann["clonewatch.io/drift-start"]), int(ann["clonewatch.io/drift-end"])
            if ann["clonewatch.io/drift-pattern"] == "sequential":
                size, total, pattern = "4M", end, "seq"      # from offset 0 up to the cumulative level
            else:
                size, total, pattern = "4K", end - start, "rand"
            self.pool.rbd("bench", "--io-type", "write", "--io-size", size, "--io-total", str(total),
                          "--io-pattern", pattern, "--io-threads", "1", self.pool.spec(image))
            self.kube.custom.patch_namespaced_custom_object("batch", "v1", self.ns, "jobs", name,
                                                            {"status": {"succeeded": 1}})

    def _reclaim(self) -> None:
        pvcs = self._pvc_names()
        for name, image in list(self.images.items()):
            if name not in pvcs:
                self.pool.rbd("rm", "--no-progress", self.pool.spec(image))
                self.kube.delete("PersistentVolume", f"pv-{image}")
                del self.images[name]

    def _pvc_names(self) -> set[str]:
        resp = self.kube.core.list_namespaced_persistent_volume_claim(self.ns, _preload_content=False)
        return {p["metadata"]["name"] for p in json.loads(resp.data).get("items", [])}
