"""End to end on IBM Cloud VPC with the VPC API check: a golden PVC, a VolumeSnapshot of it and two
PVCs restored from it (the only kind of "clone" the VPC driver has), the exporter as a process
asking the IAM + VPC API double about each volume."""

from tests.support.objects import VPC_BLOCK, pv_vpc, pvc, storageclass
from tests.support.process import ExporterProcess, one, pick
from tests.support.vpc_api import VpcApiDouble

SC = "ibmc-vpc-block-general-purpose"
SNAPSHOT_ID = "r006-7d7c6d8e-5a1b-4c1d-9e3f-0a1b2c3d4e5f"


def test_restores_confirmed_through_the_vpc_api_and_saving_nothing(kube, tmp_path):
    api = VpcApiDouble(tmp_path)
    objs = [storageclass(SC, VPC_BLOCK)]
    handles = {"golden": api.add_volume("pvc-golden", 10)}
    objs += [dict(pv_vpc("pv-vpc-golden"), spec={**pv_vpc("pv-vpc-golden")["spec"],
                                                  "csi": {"driver": VPC_BLOCK, "volumeHandle": handles["golden"]}}),
             pvc("vpc-images", "golden", SC, volume="pv-vpc-golden", size="10Gi"),
             {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
              "metadata": {"name": "golden-snap", "namespace": "vpc-images"},
              "spec": {"source": {"persistentVolumeClaimName": "golden"}},
              "status": {"boundVolumeSnapshotContentName": "snapcontent-vpc-1", "readyToUse": True}},
             {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
              "metadata": {"name": "snapcontent-vpc-1"},
              "spec": {"driver": VPC_BLOCK, "deletionPolicy": "Delete",
                       "volumeSnapshotRef": {"name": "golden-snap", "namespace": "vpc-images"}},
              "status": {"snapshotHandle": SNAPSHOT_ID, "readyToUse": True}}]
    for vm in ("vm-a", "vm-b"):
        handles[vm] = api.add_volume(f"pvc-{vm}", 10, source_snapshot=SNAPSHOT_ID)
        spec = {**pv_vpc(f"pv-vpc-{vm}")["spec"], "csi": {"driver": VPC_BLOCK, "volumeHandle": handles[vm]}}
        objs += [dict(pv_vpc(f"pv-vpc-{vm}"), spec=spec),
                 pvc("vpc-images", vm, SC, volume=f"pv-vpc-{vm}", size="10Gi",
                     data_source={"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                                  "name": "golden-snap"})]
    for obj in objs:
        kube.create(obj)
    (tmp_path / "apikey").write_text(api.api_key)
    proc = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp_path / 'kubeconfig')}", "--no-rbd.enabled",
                            "--kubernetes.namespaces=vpc-images", f"--vpc.api-url={api.url}",
                            f"--vpc.iam-url={api.url}", f"--vpc.api-key-file={tmp_path / 'apikey'}",
                            f"--vpc.ca-file={api.cert}", "--vpc.refresh-interval=1"], tmp_path / "exporter.log")
    try:
        proc.wait_ready()
        s = proc.wait_for(lambda s: len(pick(s, "clonewatch_volume_origin_info")) == 2, what="origins from the API")
        assert one(s, "clonewatch_backend_up", backend="vpc", target="vpc-block") == 1
        for vm in ("vm-a", "vm-b"):
            assert one(s, "clonewatch_volume_origin_info", volume=handles[vm], origin=SNAPSHOT_ID) == 1
            assert one(s, "clonewatch_pvc_clone_info", persistentvolumeclaim=vm, clone_type="snapshot",
                       source_name="golden-snap") == 1
            assert one(s, "clonewatch_pvc_clone_fallback", persistentvolumeclaim=vm) == 0
            assert one(s, "clonewatch_pvc_consumed_bytes", persistentvolumeclaim=vm) == 10 * 2**30
        family = dict(source_namespace="vpc-images", source_name="golden", backend="vpc")
        assert one(s, "clonewatch_source_clones", **family) == 2
        assert one(s, "clonewatch_source_efficiency_ratio", **family) == 0
        assert one(s, "clonewatch_source_consumed_bytes", **family) == 30 * 2**30
        # The API stops answering: the target goes down and its bytes go away.
        api.fail_next += [500] * 1000
        s = proc.wait_for(lambda s: one(s, "clonewatch_backend_up", backend="vpc", target="vpc-block") == 0,
                          what="VPC API down")
        assert not pick(s, "clonewatch_pvc_consumed_bytes", backend="vpc")
        assert api.api_key not in proc.logs()
    finally:
        proc.stop()
        api.close()
