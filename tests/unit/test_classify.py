import pytest

from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.model.classify import classify, classify_all
from tests.support.inventory import objects
from tests.support.objects import (
    ODF_RBD,
    VPC_BLOCK,
    cdi_cr,
    clone_annotations,
    datavolume,
    pv_rbd,
    pv_vpc,
    pvc,
    storageclass,
    storageprofile,
)

RBD_SC = "ocs-storagecluster-ceph-rbd"
VPC_SC = "ibmc-vpc-block-10iops-tier"
mapper = RbdBackend(RbdSettings()).map_pv

BASE = [
    storageclass(RBD_SC, ODF_RBD),
    storageclass(VPC_SC, VPC_BLOCK),
    pv_rbd("pv-golden", "rbd", "golden"),
    pvc("os-images", "rhel9", RBD_SC, volume="pv-golden"),
]


def one(*extra, key=("vms", "vm")):
    objs = objects(*BASE, *extra)
    return classify(objs, objs["persistentvolumeclaims"][key], mapper)


def test_golden_itself_is_not_a_clone_and_maps_to_its_rbd_image():
    objs = objects(*BASE)
    rec = classify(objs, objs["persistentvolumeclaims"][("os-images", "rhel9")], mapper)
    assert not rec.is_clone
    assert rec.volume == "pv-golden" and rec.backend == "rbd"
    assert rec.volume_ref.volume == "rbd/golden" and rec.volume_ref.target == "rbd"
    assert rec.provisioned_bytes == 64 * 2**20 and rec.provisioner == ODF_RBD


@pytest.mark.parametrize("clone_type,reason,expected_fallback", [
    ("csi-clone", None, False),
    ("snapshot", None, False),
    ("copy", None, True),                        # smart clone expected on ODF, got a copy
    ("copy", "NoVolumeSnapshotClass", True),
    ("csi-clone", "IncompatibleVolumeModes", True),   # a recorded reason is a fallback whatever the type
    (None, None, False),
    ("bogus", None, False),
])
def test_datavolume_clone_of_pvc(clone_type, reason, expected_fallback):
    ann = clone_annotations(clone_type, reason)
    rec = one(datavolume("vms", "vm", source={"pvc": {"namespace": "os-images", "name": "rhel9"}}, annotations=ann),
              pvc("vms", "vm", RBD_SC, owner_dv="vm", annotations=ann))
    assert rec.is_clone
    assert (rec.source_kind, rec.source_namespace, rec.source_name) == ("PersistentVolumeClaim", "os-images", "rhel9")
    assert rec.clone_type == (clone_type if clone_type in ("csi-clone", "snapshot", "copy") else "unknown")
    assert rec.expected_clone_type == "csi-clone" and rec.expected_from == "provisioner"
    assert rec.fallback is expected_fallback
    assert rec.fallback_reason == (reason or "")


def test_clone_type_read_from_datavolume_when_pvc_lacks_it():
    rec = one(datavolume("vms", "vm", source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                         annotations=clone_annotations("copy", "NoProvisionerMatch")),
              pvc("vms", "vm", RBD_SC))
    assert rec.clone_type == "copy" and rec.fallback and rec.fallback_reason == "NoProvisionerMatch"


def test_source_namespace_defaults_to_the_datavolume_namespace():
    rec = one(datavolume("vms", "vm", source={"pvc": {"name": "local-golden"}}), pvc("vms", "vm", RBD_SC))
    assert (rec.source_namespace, rec.source_name) == ("vms", "local-golden")


def test_configured_copy_on_vpc_is_not_a_fallback():
    rec = one(pv_vpc("pv-vpc"),
              datavolume("vms", "vm", source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                         annotations=clone_annotations("copy")),
              pvc("vms", "vm", VPC_SC, volume="pv-vpc"))
    assert rec.clone_type == "copy" and rec.expected_clone_type == "copy" and not rec.fallback
    assert rec.backend == "none" and rec.provisioned_bytes == 10 * 2**30


def test_storageprofile_wins_over_annotation_and_provisioner_default():
    sc = storageclass("custom", ODF_RBD, {"cdi.kubevirt.io/clone-strategy": "snapshot"})
    rec = one(sc, storageprofile("custom", "copy"),
              datavolume("vms", "vm", source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                         annotations=clone_annotations("copy")),
              pvc("vms", "vm", "custom"))
    assert rec.expected_clone_type == "copy" and rec.expected_from == "storageprofile" and not rec.fallback
    rec = one(sc, datavolume("vms", "vm", source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                             annotations=clone_annotations("copy")), pvc("vms", "vm", "custom"))
    assert rec.expected_clone_type == "snapshot" and rec.expected_from == "storageclass" and rec.fallback


def _dv_clone(clone_type="copy", sc=RBD_SC):
    return (datavolume("vms", "vm", source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                       annotations=clone_annotations(clone_type)), pvc("vms", "vm", sc))


def test_cdi_override_wins_over_the_storageprofile():
    rec = one(cdi_cr("copy"), storageprofile(RBD_SC, "csi-clone"), *_dv_clone("copy"))
    assert (rec.expected_clone_type, rec.expected_from, rec.fallback) == ("copy", "cdi-override", False)
    rec = one(cdi_cr("csi-clone"), storageclass("custom", ODF_RBD), storageprofile("custom", "copy"),
              *_dv_clone("copy", "custom"))
    assert (rec.expected_clone_type, rec.expected_from, rec.fallback) == ("csi-clone", "cdi-override", True)
    rec = one(cdi_cr(None), storageprofile(RBD_SC, "csi-clone"), *_dv_clone("copy"))
    assert (rec.expected_from, rec.fallback) == ("storageprofile", True), "no override: the profile decides"


def test_the_active_cdi_cr_decides_as_cdi_picks_it():
    errored, active = cdi_cr("csi-clone", "old", phase="Error"), cdi_cr("copy", "cdi")
    assert one(errored, active, *_dv_clone()).expected_from == "cdi-override"
    assert one(errored, active, *_dv_clone()).expected_clone_type == "copy"
    two_active = one(cdi_cr("copy", "a"), cdi_cr("snapshot", "b"), *_dv_clone())
    assert two_active.expected_from == "provisioner", "several active CRs: CDI plans nothing, no override"
    bogus = one(cdi_cr("fast"), *_dv_clone())
    assert bogus.expected_from == "provisioner"


def test_the_override_governs_neither_snapshot_restores_nor_clones_without_cdi():
    rec = one(cdi_cr("copy"), pv_rbd("pv-vm", "rbd", "vm-img"),
              pvc("vms", "vm", RBD_SC, volume="pv-vm",
                  data_source_ref={"kind": "PersistentVolumeClaim", "name": "rhel9", "namespace": "os-images"}))
    assert rec.clone_type == "csi-clone" and rec.expected_from == "provisioner" and not rec.fallback


def test_unknown_provisioner_expects_cdi_default_snapshot():
    rec = one(storageclass("nfs", "example.com/nfs"),
              datavolume("vms", "vm", source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                         annotations=clone_annotations("copy")), pvc("vms", "vm", "nfs"))
    assert (rec.expected_clone_type, rec.expected_from, rec.fallback) == ("snapshot", "cdi-default", True)


def test_snapshot_source_joins_the_family_of_the_snapshotted_pvc():
    snap = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": "rhel9-snap", "namespace": "os-images"},
            "spec": {"source": {"persistentVolumeClaimName": "rhel9"}}}
    rec = one(snap, datavolume("vms", "vm", source={"snapshot": {"namespace": "os-images", "name": "rhel9-snap"}},
                               annotations=clone_annotations("snapshot")), pvc("vms", "vm", RBD_SC))
    assert (rec.source_kind, rec.source_name) == ("VolumeSnapshot", "rhel9-snap")
    assert (rec.family_kind, rec.family_namespace, rec.family_name) == ("PersistentVolumeClaim", "os-images", "rhel9")
    assert rec.expected_clone_type == "snapshot" and not rec.fallback


def test_snapshot_whose_pvc_is_gone_is_its_own_family():
    snap = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": "old", "namespace": "os-images"},
            "spec": {"source": {"persistentVolumeClaimName": "deleted-golden"}}}
    rec = one(snap, pvc("vms", "vm", RBD_SC, data_source={"kind": "VolumeSnapshot", "name": "old",
                                                          "apiGroup": "snapshot.storage.k8s.io"}))
    assert (rec.family_kind, rec.family_name) == ("VolumeSnapshot", "old")
    assert rec.source_namespace == "vms"     # dataSource is namespace-local


def test_datasource_reference_resolves_to_its_pvc():
    ds = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataSource",
          "metadata": {"name": "rhel9", "namespace": "os-images"},
          "spec": {"source": {"pvc": {"name": "rhel9", "namespace": "os-images"}}}}
    rec = one(ds, datavolume("vms", "vm", source_ref={"kind": "DataSource", "name": "rhel9",
                                                      "namespace": "os-images"},
                             annotations=clone_annotations("csi-clone")), pvc("vms", "vm", RBD_SC))
    assert (rec.source_kind, rec.source_namespace, rec.source_name) == ("PersistentVolumeClaim", "os-images", "rhel9")


def test_missing_datasource_is_still_a_clone_of_that_datasource():
    rec = one(datavolume("vms", "vm", source_ref={"kind": "DataSource", "name": "gone"}), pvc("vms", "vm", RBD_SC))
    assert rec.is_clone and (rec.source_kind, rec.source_name) == ("DataSource", "gone")


def test_volumeclonesource_populator():
    vcs = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "VolumeCloneSource",
           "metadata": {"name": "vcs-1", "namespace": "vms"},
           "spec": {"source": {"kind": "PersistentVolumeClaim", "name": "local-golden"}}}
    ref = {"apiGroup": "cdi.kubevirt.io", "kind": "VolumeCloneSource", "name": "vcs-1"}
    rec = one(vcs, pvc("vms", "vm", RBD_SC, data_source_ref=ref,
                       annotations=clone_annotations("csi-clone")))
    assert (rec.source_kind, rec.source_name, rec.clone_type) == ("PersistentVolumeClaim", "local-golden", "csi-clone")
    # Without the VolumeCloneSource object (CRD absent or not seen yet) it is a clone of that source.
    rec = one(pvc("vms", "vm", RBD_SC, data_source_ref=ref))
    assert (rec.source_kind, rec.source_name, rec.clone_type) == ("VolumeCloneSource", "vcs-1", "unknown")


def test_plain_csi_clone_without_cdi_is_inferred_once_bound():
    src = {"kind": "PersistentVolumeClaim", "name": "local-golden"}
    bound = one(pv_rbd("pv-x", "rbd", "x"), pvc("vms", "vm", RBD_SC, volume="pv-x", data_source=src))
    assert bound.clone_type == "csi-clone" and not bound.fallback
    pending = one(pvc("vms", "vm", RBD_SC, data_source=src))
    assert pending.is_clone and pending.clone_type == "unknown"


def test_cdi_clone_request_annotation():
    rec = one(pvc("vms", "vm", RBD_SC, annotations={"k8s.io/CloneRequest": "os-images/rhel9",
                                                     "k8s.io/CloneOf": "true"}))
    assert rec.is_clone and (rec.source_namespace, rec.source_name) == ("os-images", "rhel9")
    assert rec.clone_type == "unknown"


@pytest.mark.parametrize("request_value", ["", "no-slash", "/name", "ns/"])
def test_malformed_clone_request_is_not_a_source(request_value):
    rec = one(pvc("vms", "vm", RBD_SC, annotations={"k8s.io/CloneRequest": request_value}))
    assert not rec.is_clone


def test_import_datavolume_is_not_a_clone():
    rec = one(datavolume("vms", "vm", source={"http": {"url": "http://example.invalid/disk.img"}}),
              pvc("vms", "vm", RBD_SC))
    assert not rec.is_clone and rec.clone_type == ""


@pytest.mark.parametrize("broken", [
    {"spec": "garbage"},
    {"spec": {"dataSource": "x", "volumeName": 7, "storageClassName": ["a"]}},
    {"metadata": {"name": "vm", "namespace": "vms", "annotations": ["not", "a", "map"]}},
    {"metadata": {"name": "vm", "namespace": "vms", "ownerReferences": "x"}},
    {"status": {"capacity": {"storage": "lots"}}},
])
def test_odd_fields_never_raise(broken):
    obj = pvc("vms", "vm", RBD_SC)
    for k, v in broken.items():
        obj[k] = v
    rec = one(obj)
    assert rec.name == "vm" and not rec.is_clone


def test_classify_all_covers_every_pvc():
    objs = objects(*BASE, pvc("vms", "a", RBD_SC), pvc("vms", "b", RBD_SC))
    assert set(classify_all(objs, mapper)) == {("os-images", "rhel9"), ("vms", "a"), ("vms", "b")}


def _pvc_clone(**dv_args):
    return one(datavolume("vms", "vm", source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                          annotations=clone_annotations("csi-clone"), **dv_args),
               pvc("vms", "vm", RBD_SC, owner_dv="vm"))


def test_a_clone_in_flight_says_its_phase_reason_and_since_when():
    rec = _pvc_clone(phase="CSICloneInProgress", created="2026-11-30T10:00:00Z", running_reason="Pending")
    assert not rec.complete
    assert (rec.phase, rec.phase_reason) == ("CSICloneInProgress", "Pending")
    assert rec.pending_since == 1796032800.0 and rec.duration_seconds is None


def test_a_done_datavolume_clone_took_creation_to_ready():
    rec = _pvc_clone(created="2026-11-30T10:00:00Z", ready_at="2026-11-30T10:00:07Z")
    assert rec.complete and rec.duration_seconds == 7.0 and rec.pending_since is None
    assert _pvc_clone().duration_seconds is None, "no creation time: no duration, not a made-up one"
    odd = _pvc_clone(created="yesterday", ready_at="2026-11-30T10:00:07Z")
    assert odd.complete and odd.duration_seconds is None


def test_a_populator_clone_without_datavolume_waits_on_its_clone_phase():
    ann = {"cdi.kubevirt.io/cloneType": "csi-clone", "cdi.kubevirt.io/clonePhase": "CSIClone",
           "cdi.kubevirt.io/storage.condition.running.reason": "Populator is running"}
    claim = pvc("vms", "vm", RBD_SC, annotations=ann,
                data_source_ref={"apiGroup": "cdi.kubevirt.io", "kind": "VolumeCloneSource", "name": "src"})
    claim["metadata"]["creationTimestamp"] = "2026-11-30T10:00:00Z"
    rec = one(claim)
    assert (rec.complete, rec.phase, rec.phase_reason) == (False, "CSIClone", "Populator is running")
    done = dict(ann, **{"cdi.kubevirt.io/clonePhase": "Succeeded"})
    bound = pvc("vms", "vm", RBD_SC, volume="pv-vm", annotations=done,
                data_source_ref={"apiGroup": "cdi.kubevirt.io", "kind": "VolumeCloneSource", "name": "src"})
    assert one(bound).complete


# -- PVCs KubeVirt's restore made (a VM clone): docs/field-facts.md, KubeVirt -----------------------------
SNAP = "vmsnapshot-6aa03f83-3863-45f5-bc43-856f021bd77e-volume-rootdisk"
RESTORED = "restore-a6f4af67-14ef-4ddd-a767-a66acc3c3ba8-rootdisk"
MARKS = {"restore.kubevirt.io/name": "tmp-restore-1", "cdi.kubevirt.io/storage.contentType": "kubevirt",
         "restore.kubevirt.io/lastRestoreUID": "tmp-restore-1-a6f4af67-14ef-4ddd-a767-a66acc3c3ba8",
         "cdi.kubevirt.io/storage.populatedFor": RESTORED}
SOURCE_VM = {"restore.kubevirt.io/source-vm-name": "src", "restore.kubevirt.io/source-vm-namespace": "vms"}


def restored(phase="Bound", snapshot_exists=True, labels=True, *extra):
    """The restored root disk (PVC from the VolumeSnapshot, pre-populated DataVolume naming the golden),
    the source VM's disk it was snapshotted from, and what else the test adds."""
    ref = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": SNAP}
    claim = pvc("vms", RESTORED, RBD_SC, volume="pv-r" if phase == "Bound" else None, annotations=MARKS,
                data_source=ref, data_source_ref=ref, owner_dv=RESTORED)
    claim["metadata"]["labels"] = SOURCE_VM if labels else {}
    snap = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": SNAP, "namespace": "vms"}, "spec": {"source": {"persistentVolumeClaimName": "src-rootdisk"}}}
    dv = datavolume("vms", RESTORED, source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                    annotations={"restore.kubevirt.io/name": "tmp-restore-1", "cdi.kubevirt.io/storage.prePopulated": "true",
                                 "cdi.kubevirt.io/allowClaimAdoption": "true"})
    items = [claim, dv, pv_rbd("pv-r", "rbd", "csi-vol-r"), pvc("vms", "src-rootdisk", RBD_SC, volume="pv-golden"),
             cdi_cr("copy"), *extra]
    objs = objects(*BASE, *items, *([snap] if snapshot_exists else []))
    return classify(objs, objs["persistentvolumeclaims"][("vms", RESTORED)], mapper)


def test_a_restored_disk_is_a_snapshot_restore_not_a_cdi_clone_of_the_golden_its_datavolume_names():
    rec = restored()
    assert (rec.source_kind, rec.source_namespace, rec.source_name) == ("VolumeSnapshot", "vms", SNAP)
    assert (rec.family_kind, rec.family_name) == ("PersistentVolumeClaim", "src-rootdisk")
    # The CDI CR overrides to copy and the DataVolume names a PVC: neither governs a CSI restore.
    assert (rec.clone_type, rec.expected_clone_type, rec.expected_from) == ("snapshot", "snapshot", "source-kind")
    assert not rec.fallback and rec.fallback_reason == ""
    assert rec.complete and rec.duration_seconds is None


def test_a_restored_disk_not_bound_yet_is_in_flight_whatever_its_datavolume_says():
    rec = restored(phase="Pending")
    assert rec.clone_type == "unknown" and not rec.complete and rec.phase == "Pending"


def test_a_restored_disk_whose_snapshot_is_gone_names_what_the_snapshot_was_taken_of():
    content = {"apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshotContent",
               "metadata": {"name": "vmsnapshot-content-6aa03f83-3863-45f5-bc43-856f021bd77e", "namespace": "vms"},
               "spec": {"volumeBackups": [{"volumeName": "rootdisk", "volumeSnapshotName": SNAP,
                                           "persistentVolumeClaim": {"metadata": {"name": "src-rootdisk"}}}]}}
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "src", "namespace": "vms"},
          "spec": {"template": {"spec": {"volumes": [{"name": "rootdisk", "dataVolume": {"name": "src-rootdisk"}}]}}}}
    for extra, want in (((content,), ("PersistentVolumeClaim", "src-rootdisk")),      # the content's backup
                        ((vm,), ("PersistentVolumeClaim", "src-rootdisk")),           # the source VM's volume
                        ((), ("VirtualMachine", "src"))):                             # the source VM's name
        rec = restored("Bound", False, True, *extra)
        assert (rec.source_kind, rec.source_name) == want and (rec.family_kind, rec.family_name) == want
        assert (rec.clone_type, rec.expected_from) == ("snapshot", "source-kind")
    rec = restored("Bound", False, False)       # no marks: Kubernetes cannot tell more (the storage may)
    assert (rec.family_kind, rec.family_name) == ("VolumeSnapshot", SNAP)


def test_a_prepopulated_datavolume_made_nothing():
    """CDI marks a DataVolume pre-populated when it adopts a PVC populated for it: the PVC is no clone of
    what the DataVolume names unless the PVC itself says it was cloned."""
    rec = one(datavolume("vms", "vm", source={"pvc": {"namespace": "os-images", "name": "rhel9"}},
                         annotations={"cdi.kubevirt.io/storage.prePopulated": "vm"}),
              pvc("vms", "vm", RBD_SC, volume="pv-golden", owner_dv="vm"))
    assert not rec.is_clone
