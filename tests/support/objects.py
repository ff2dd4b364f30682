"""Builders for the Kubernetes objects CDI, ceph-csi and the VPC driver produce (field names as
the real APIs have them: see docs/field-facts.md)."""

ODF_RBD = "openshift-storage.rbd.csi.ceph.com"
VPC_BLOCK = "vpc.block.csi.ibm.io"
IBM_BLOCK = "block.csi.ibm.com"
CDI = "cdi.kubevirt.io/v1beta1"


def storageclass(name: str, provisioner: str, annotations: dict | None = None) -> dict:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": annotations or {}},
            "provisioner": provisioner, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}


def storageprofile(name: str, clone_strategy: str | None) -> dict:
    status = {"storageClass": name}
    if clone_strategy:
        status["cloneStrategy"] = clone_strategy
    return {"apiVersion": CDI, "kind": "StorageProfile", "metadata": {"name": name}, "spec": {},
            "status": status}


def cdi_cr(override: str | None = None, name: str = "cdi", phase: str = "Deployed") -> dict:
    """The CDI CR (cluster-scoped, usually one, named cdi / kubevirt-hyperconverged's cdi-...)."""
    spec: dict = {"config": {"featureGates": ["HonorWaitForFirstConsumer"]}, "imagePullPolicy": "IfNotPresent"}
    if override:
        spec["cloneStrategyOverride"] = override
    return {"apiVersion": CDI, "kind": "CDI", "metadata": {"name": name}, "spec": spec,
            "status": {"phase": phase, "observedVersion": "v1.60.3"}}


def datasource_of(namespace: str, name: str, pvc_name: str | None = None, snapshot: str | None = None) -> dict:
    """A CDI DataSource pointing at a PVC or a VolumeSnapshot in its namespace (what DataImportCron moves)."""
    source = {"pvc": {"namespace": namespace, "name": pvc_name}} if pvc_name else \
        {"snapshot": {"namespace": namespace, "name": snapshot}}
    return {"apiVersion": CDI, "kind": "DataSource", "metadata": {"name": name, "namespace": namespace},
            "spec": {"source": source}}


def pv_rbd(name: str, pool: str, image: str, size: str = "64Mi", driver: str = ODF_RBD,
           storageclass_name: str = "ocs-storagecluster-ceph-rbd", rados_namespace: str = "",
           cluster_id: str = "openshift-storage") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteMany"], "volumeMode": "Block",
                     "storageClassName": storageclass_name, "persistentVolumeReclaimPolicy": "Delete",
                     "csi": {"driver": driver, "volumeHandle": f"0001-0009-openshift-storage-0000000000000001-{name}",
                             "volumeAttributes": {"clusterID": cluster_id, "imageFeatures": "layering",
                                                  "imageName": image, "journalPool": pool, "pool": pool,
                                                  "radosNamespace": rados_namespace}}},
            "status": {"phase": "Bound"}}


def pv_vpc(name: str, size: str = "10Gi") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "storageClassName": "ibmc-vpc-block-10iops-tier",
                     "csi": {"driver": VPC_BLOCK, "volumeHandle": "r006-0c4e1f3a-8a53-4d0e-b3a2-9d0b2f7a1c11"}},
            "status": {"phase": "Bound"}}


def pv_flashsystem(name: str, handle: str, array_address: str, size: str = "64Mi",
                   storageclass_name: str = "ibm-flashsystem-thin", pool: str = "pool_thin") -> dict:
    """A PV as the IBM block CSI driver creates it (volume context keys from its controller)."""
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteMany"], "volumeMode": "Block",
                     "storageClassName": storageclass_name, "persistentVolumeReclaimPolicy": "Delete",
                     "csi": {"driver": IBM_BLOCK, "volumeHandle": handle,
                             "volumeAttributes": {"array_address": array_address, "pool_name": pool,
                                                  "storage_type": "SVC", "volume_name": name}}},
            "status": {"phase": "Bound"}}


def pvc(namespace: str, name: str, storageclass_name: str, volume: str | None = None, size: str = "64Mi",
        annotations: dict | None = None, data_source: dict | None = None, data_source_ref: dict | None = None,
        owner_dv: str | None = None) -> dict:
    spec = {"accessModes": ["ReadWriteMany"], "volumeMode": "Block", "storageClassName": storageclass_name,
            "resources": {"requests": {"storage": size}}}
    if volume:
        spec["volumeName"] = volume
    if data_source:
        spec["dataSource"] = data_source
    if data_source_ref:
        spec["dataSourceRef"] = data_source_ref
    meta = {"name": name, "namespace": namespace, "annotations": annotations or {}}
    if owner_dv:
        meta["ownerReferences"] = [{"apiVersion": CDI, "kind": "DataVolume", "name": owner_dv,
                                    "uid": "00000000-0000-0000-0000-000000000000", "controller": True}]
    status = {"phase": "Bound", "capacity": {"storage": size}} if volume else {"phase": "Pending"}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec, "status": status}


def datavolume(namespace: str, name: str, source: dict | None = None, source_ref: dict | None = None,
               annotations: dict | None = None, phase: str = "Succeeded", created: str | None = None,
               ready_at: str | None = None, running_reason: str = "Pending") -> dict:
    """A DataVolume with the status CDI's controllers write (pkg/controller/datavolume/conditions.go):
    done -> Bound True, Ready True stamped when it turned Succeeded, Running False "Completed";
    in flight -> Bound False "Pending", Ready False, Running False with the clone's running reason."""
    spec: dict = {"storage": {"resources": {"requests": {"storage": "64Mi"}}}}
    if source is not None:
        spec["source"] = source
    if source_ref is not None:
        spec["sourceRef"] = source_ref
    meta = {"name": name, "namespace": namespace, "annotations": annotations or {}}
    if created:
        meta["creationTimestamp"] = created
    at = ready_at or created or "2026-11-30T10:00:00Z"

    def cond(kind, status, reason="", message=""):
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastTransitionTime": at, "lastHeartbeatTime": at}
    if phase == "Succeeded":
        conditions = [cond("Bound", "True", "Bound", f"PVC {name} Bound"), cond("Ready", "True"),
                      cond("Running", "False", "Completed", "Clone Complete")]
        progress = "100.0%"
    else:
        conditions = [cond("Bound", "False", "Pending", f"PVC {name} Pending"), cond("Ready", "False"),
                      cond("Running", "False", running_reason, "Clone Pending")]
        progress = "N/A"
    return {"apiVersion": CDI, "kind": "DataVolume", "metadata": meta, "spec": spec,
            "status": {"phase": phase, "progress": progress, "claimName": name, "conditions": conditions}}


def rbd_clone(namespace: str, name: str, pool: str, image: str, source_ns: str, source: str,
              storageclass_name: str, clone_type: str = "csi-clone", cluster_id: str = "openshift-storage") -> list[dict]:
    """A DataVolume clone of a PVC as CDI and ceph-csi leave it: the DataVolume, its PV, its PVC."""
    ann = clone_annotations(clone_type)
    return [datavolume(namespace, name, source={"pvc": {"namespace": source_ns, "name": source}}, annotations=ann),
            pv_rbd(f"pv-{name}", pool, image, cluster_id=cluster_id),
            pvc(namespace, name, storageclass_name, volume=f"pv-{name}", owner_dv=name, annotations=ann)]


def clone_annotations(clone_type: str | None, reason: str | None = None) -> dict:
    ann = {}
    if clone_type:
        ann["cdi.kubevirt.io/cloneType"] = clone_type
    if reason:
        ann["cdi.kubevirt.io/cloneFallbackReason"] = reason
    return ann
