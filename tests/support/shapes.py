"""Hypothesis strategies for what clonewatch parses, in the shapes the real producers write (field
names as in tests/support/objects.py and docs/field-facts.md) with fuzzed values: at every level a
field is now and then missing or of any JSON type instead. Random keys would almost never spell
"csi" or "images", and the parsers would return at their first check; these reach what they read."""

from functools import cache

from hypothesis import strategies as st

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                      st.text(max_size=12))
json_any = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=25)


@cache
def _die(sides):
    return st.integers(1, sides)


def sometimes(odd, usual, odds=4):
    """`usual`, and one time in `odds` `odd` instead (shrinks towards `usual`)."""
    die = _die(odds)

    @st.composite
    def one(draw):
        return draw(odd if draw(die) == odds else usual)
    return one()


def fuzzed(*real, size=12):
    """One of the values real objects hold, else any text."""
    return sometimes(st.text(max_size=size), st.sampled_from(real))


def shaped(fields, optional=None, odds=16):
    """A dict with these fields, each one time in `odds` absent and one time in `odds` any JSON
    value; `optional` fields are there half of the time; now and then keys nobody reads besides."""
    die, extra = _die(odds), sometimes(st.dictionaries(st.text(max_size=8), json_leaf, max_size=2), st.just(None), 8)
    optional = {key: sometimes(json_any, right, odds) for key, right in (optional or {}).items()}

    @st.composite
    def one(draw):
        out = dict(draw(extra) or {})
        for key, right in fields.items():
            roll = draw(die)
            if roll < odds:
                out[key] = draw(json_any if roll == odds - 1 else right)
        for key, right in optional.items():
            if draw(st.booleans()):
                out[key] = draw(right)
        return out
    return one()


def wrong_now_and_then(right, odds=16):
    return sometimes(json_any, right, odds)


# -- PersistentVolumes as ceph-csi, IBM block CSI and IBM VPC CSI write them -------------------
RBD_DRIVERS = ("rbd.csi.ceph.com", "openshift-storage.rbd.csi.ceph.com", "rook-ceph.rbd.csi.ceph.com")
IBM_BLOCK = "block.csi.ibm.com"
VPC_DRIVERS = ("vpc.block.csi.ibm.io", "vpc.file.csi.ibm.io")
OTHER_DRIVERS = ("cephfs.csi.ceph.com", "ebs.csi.aws.com", "kubernetes.io/no-provisioner")
ALL_DRIVERS = RBD_DRIVERS + (IBM_BLOCK,) + VPC_DRIVERS + OTHER_DRIVERS
CEPH_CLUSTERS = ("rook-ceph", "openshift-storage", "ceph-b")     # a test names ceph-b as a cluster
ARRAY_ADDRESSES = ("10.0.0.5", "10.0.0.6", "fs-b.example.com:7443", "FS-B.example.com")     # a test's two arrays

uuid = st.uuids().map(str)
quantity = sometimes(
    st.one_of(st.text(alphabet="0123456789.eEKMGTPikmnu+- ", max_size=10), st.integers(-2**40, 2**70), json_leaf),
    st.tuples(st.integers(0, 2**20), st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "k", "M", "G"])).map(
        lambda t: f"{t[0]}{t[1]}"))
timestamp = fuzzed("2026-11-30T10:00:00Z", "2026-11-30T10:05:00Z", "2026-11-30T10:05:00.5+01:00", "yesterday")


def driver(own):
    return sometimes(fuzzed(*ALL_DRIVERS), st.sampled_from(own), 8)


image_name = sometimes(st.text(max_size=12), uuid.map("csi-vol-{}".format))
rbd_handle = sometimes(st.text(max_size=12),
                       st.tuples(st.sampled_from(CEPH_CLUSTERS), uuid).map(lambda t: f"0001-0009-{t[0]}-0000000000000002-{t[1]}"))
rbd_common = {"clusterID": fuzzed(*CEPH_CLUSTERS), "pool": fuzzed("replicapool", "vms", "ocs-storagecluster-cephblockpool"),
              "imageFeatures": fuzzed("layering", "layering,deep-flatten,exclusive-lock,object-map,fast-diff")}
rbd_dynamic = shaped({**rbd_common, "imageName": image_name, "journalPool": fuzzed("replicapool")},
                     optional={"radosNamespace": fuzzed("", "tenant-a"), "staticVolume": fuzzed("false", "true")})
# A static PV names its image in the handle and says so (ceph-csi docs/static-pvc.md).
rbd_static = shaped({**rbd_common, "staticVolume": sometimes(fuzzed("True", "false"), st.just("true"))},
                    optional={"radosNamespace": fuzzed("tenant-a")})
rbd_csi = shaped({"driver": driver(RBD_DRIVERS), "volumeHandle": rbd_handle, "volumeAttributes": rbd_dynamic},
                 optional={"fsType": fuzzed("ext4", "xfs")})
rbd_static_csi = shaped({"driver": driver(RBD_DRIVERS), "volumeHandle": image_name, "volumeAttributes": rbd_static})

uid = st.text(alphabet="0123456789ABCDEFabcdef", min_size=1, max_size=32)
object_id = st.integers(0, 9999).map(str)
svc_handle = sometimes(st.text(max_size=16), st.one_of(
    uid.map("SVC:{}".format),                                             # old drivers
    st.tuples(object_id, uid).map(lambda t: f"SVC:{t[0]};{t[1]}"),
    st.tuples(st.text(alphabet="0123456789ABCDEF", max_size=16), object_id, uid).map(lambda t: f"SVC:{t[0]}:{t[1]};{t[2]}")), 8)
array_address = sometimes(st.one_of(st.text(max_size=16), st.lists(st.sampled_from(("192.0.2.1", " ", "") + ARRAY_ADDRESSES),
                                                                  max_size=3).map(",".join)),
                          st.lists(st.sampled_from(ARRAY_ADDRESSES), min_size=1, max_size=2).map(",".join), 8)
ibm_csi = shaped({"driver": driver((IBM_BLOCK,)), "volumeHandle": svc_handle,
                  "volumeAttributes": shaped({"array_address": array_address, "pool_name": fuzzed("pool_thin", "drp0"),
                                              "storage_type": fuzzed("SVC"), "volume_name": fuzzed("pvc-1")})})

vpc_handle = sometimes(st.text(max_size=16), uuid.map("r006-{}".format))
vpc_csi = shaped({"driver": driver(VPC_DRIVERS), "volumeHandle": vpc_handle},
                 optional={"volumeAttributes": shaped({"iops": fuzzed("3000"), "zone": fuzzed("us-south-1"),
                                                       "region": fuzzed("us-south")})})
other_csi = shaped({"driver": fuzzed(*OTHER_DRIVERS), "volumeHandle": st.text(max_size=12)},
                   optional={"volumeAttributes": st.dictionaries(st.text(max_size=8), json_leaf, max_size=3)})


def pv_spec(csi):
    return shaped({"csi": csi, "capacity": shaped({"storage": quantity}),
                   "storageClassName": fuzzed("rbd", "fs", "vpc", "x")},
                  optional={"accessModes": st.builds(list, st.just(["ReadWriteMany"])), "volumeMode": fuzzed("Block", "Filesystem")})


PV_SPECS = {"rbd": pv_spec(rbd_csi), "rbd-static": pv_spec(rbd_static_csi), "flashsystem": pv_spec(ibm_csi),
            "vpc": pv_spec(vpc_csi), "other": pv_spec(other_csi)}


def pv(spec=None):
    """A PersistentVolume of any of the drivers (or the one `spec` draws)."""
    return shaped({"spec": st.one_of(*PV_SPECS.values()) if spec is None else spec,
                   "status": shaped({"phase": fuzzed("Bound", "Released")})})


# -- what CDI, the binder and the snapshot controller write --------------------------------------
NAMESPACES = ("vms", "default")
NAMES = ("vm", "golden", "pv", "x")      # few, so that references find what they name
name = fuzzed(*NAMES, size=6)
namespace = fuzzed(*NAMESPACES, size=6)
CLONE_TYPES = ("csi-clone", "snapshot", "copy", "host-assisted")
# What CDI writes on a clone it made, on a host-assisted one, and nothing (a plain PVC, a CSI clone).
cdi_annotations = shaped({"cdi.kubevirt.io/cloneType": fuzzed(*CLONE_TYPES)},
                         optional={"cdi.kubevirt.io/cloneFallbackReason": fuzzed("NoVolumeSnapshotClass", "IncompatibleVolumeModes"),
                                   "cdi.kubevirt.io/clonePhase": fuzzed("Succeeded", "Pending", "CSIClone"),
                                   "cdi.kubevirt.io/storage.condition.running.reason": fuzzed("Pending", "CloneInProgress"),
                                   "cdi.kubevirt.io/storage.usePopulator": fuzzed("true")})
host_assisted = shaped({"k8s.io/CloneRequest": fuzzed("vms/golden", "vms/vm", "golden", "/x", "vms/")},
                       optional={"k8s.io/CloneOf": fuzzed("true"), "cdi.kubevirt.io/cloneType": fuzzed("copy")})
annotations = st.one_of(st.builds(dict), shaped({}, optional={"volume.kubernetes.io/storage-provisioner": fuzzed(*ALL_DRIVERS)}),
                        cdi_annotations, host_assisted,
                        st.dictionaries(st.text(max_size=8), json_leaf, max_size=3))
metadata = shaped({}, optional={"annotations": annotations, "creationTimestamp": timestamp,
                                "ownerReferences": st.lists(shaped({"kind": fuzzed("DataVolume", "VirtualMachine"), "name": name}),
                                                            max_size=2)})
source_kind = fuzzed("PersistentVolumeClaim", "VolumeSnapshot", "VolumeCloneSource", "DataSource", "VolumeImportSource")
typed_ref = shaped({"kind": source_kind, "name": name}, optional={"namespace": namespace, "apiGroup": fuzzed("", "cdi.kubevirt.io")})
named_ref = shaped({"name": name}, optional={"namespace": namespace})
sources = shaped({}, optional={"pvc": named_ref, "snapshot": named_ref})
condition = shaped({"type": fuzzed("Ready", "Running", "Bound"), "status": fuzzed("True", "False", "Unknown"),
                    "reason": fuzzed("Completed", "Pending", "CloneInProgress"), "lastTransitionTime": timestamp})

pvc = shaped({"metadata": metadata,
              "spec": shaped({"storageClassName": fuzzed("rbd", "fs", "vpc", "x"),
                              "resources": shaped({"requests": shaped({"storage": quantity})}), "volumeName": name},
                             optional={"dataSource": typed_ref, "dataSourceRef": typed_ref}),
              "status": shaped({"phase": sometimes(fuzzed("Pending", "Lost"), st.just("Bound"), 3)},
                               optional={"capacity": shaped({"storage": quantity})})})
datavolume = shaped({"metadata": shaped({}, optional={"annotations": sometimes(annotations, cdi_annotations, 2),
                                                       "creationTimestamp": timestamp}),
                     "spec": shaped({}, optional={"source": sources, "sourceRef": shaped({"kind": fuzzed("DataSource"), "name": name},
                                                                                         optional={"namespace": namespace})}),
                     "status": shaped({"phase": fuzzed("Succeeded", "CloneInProgress", "CSICloneInProgress", "Pending"),
                                       "conditions": st.lists(condition, max_size=3)})})
storageclass = shaped({"metadata": metadata, "provisioner": fuzzed(*ALL_DRIVERS)},
                      optional={"parameters": shaped({"clusterID": fuzzed(*CEPH_CLUSTERS), "pool": fuzzed("replicapool")})})
storageprofile = shaped({"status": shaped({}, optional={"cloneStrategy": fuzzed(*CLONE_TYPES)})})
datasource = shaped({"spec": shaped({"source": sources})})
volumeclonesource = shaped({"spec": shaped({"source": typed_ref})})
volumesnapshot = shaped({"spec": shaped({"source": shaped({}, optional={"persistentVolumeClaimName": name,
                                                                         "volumeSnapshotContentName": name})}),
                         "status": shaped({"boundVolumeSnapshotContentName": name, "readyToUse": st.booleans()})})
snapshot_handle = st.one_of(svc_handle, rbd_handle)
volumesnapshotcontent = shaped({"spec": shaped({"driver": fuzzed(*ALL_DRIVERS), "source": shaped({}, optional={"volumeHandle": rbd_handle})}),
                                "status": shaped({}, optional={"snapshotHandle": snapshot_handle})})
cdi = shaped({"spec": shaped({}, optional={"cloneStrategyOverride": fuzzed(*CLONE_TYPES)}),
              "status": shaped({"phase": fuzzed("Deployed", "Error")})})

# -- what KubeVirt writes (tests/support/kubevirt.py, docs/field-facts.md) --------------------------
kubevirt_snapshot = fuzzed("vmsnapshot-11111111-2222-3333-4444-555555555555-volume-vm", "vm", size=60)
restore_marks = shaped({"restore.kubevirt.io/name": fuzzed("tmp-restore-1"),
                        "restore.kubevirt.io/lastRestoreUID": fuzzed("tmp-restore-1-99999999-8888-7777-6666-555555555555",
                                                                     size=60)},
                       optional={"cdi.kubevirt.io/storage.contentType": fuzzed("kubevirt"),
                                 "cdi.kubevirt.io/storage.prePopulated": fuzzed("true")})
restore_labels = shaped({"restore.kubevirt.io/source-vm-name": name, "restore.kubevirt.io/source-vm-namespace": namespace})
restored_pvc = shaped({"metadata": shaped({"annotations": restore_marks}, optional={"labels": restore_labels}),
                       "spec": shaped({"storageClassName": fuzzed("rbd"), "volumeName": name,
                                       "dataSource": shaped({"kind": fuzzed("VolumeSnapshot"), "name": kubevirt_snapshot})}),
                       "status": shaped({"phase": fuzzed("Bound", "Pending")})})
vm_volume = st.one_of(shaped({"name": fuzzed("root", "data"), "dataVolume": shaped({"name": name})}),
                      shaped({"name": fuzzed("root", "data"), "persistentVolumeClaim": shaped({"claimName": name})}),
                      shaped({"name": fuzzed("cd"), "containerDisk": shaped({"image": fuzzed("quay.io/x")})}))
virtualmachine = shaped({"metadata": shaped({}, optional={"annotations": shaped({"restore.kubevirt.io/lastRestoreUID": fuzzed(
                             "tmp-restore-1-99999999-8888-7777-6666-555555555555", size=60)})}),
                         "spec": shaped({"template": shaped({"spec": shaped({"volumes": st.lists(vm_volume, max_size=3)})})},
                                        optional={"dataVolumeTemplates": st.lists(shaped({"metadata": shaped({"name": name})}),
                                                                                  max_size=2)})})
vm_ref = shaped({"kind": fuzzed("VirtualMachine", "VirtualMachineSnapshot"), "name": name})
vmclone = shaped({"metadata": shaped({}, optional={"creationTimestamp": timestamp}),
                  "spec": shaped({"source": vm_ref, "target": vm_ref}),
                  "status": shaped({}, optional={"phase": fuzzed("SnapshotInProgress", "Succeeded", "Failed"),
                                                 "targetName": name, "conditions": st.lists(condition, max_size=2)})})
vmsnapshot = shaped({"spec": shaped({"source": vm_ref})})
vmsnapshotcontent = shaped({"spec": shaped({"volumeBackups": st.lists(shaped({
    "volumeName": fuzzed("vm"), "volumeSnapshotName": kubevirt_snapshot,
    "persistentVolumeClaim": shaped({"metadata": shaped({"name": name})})}), max_size=2)})})
vmrestore = shaped({"spec": shaped({"virtualMachineSnapshotName": name, "target": vm_ref})})

OBJECTS = {"persistentvolumeclaims": st.one_of(pvc, restored_pvc), "persistentvolumes": pv(), "storageclasses": storageclass,
           "datavolumes": datavolume, "storageprofiles": storageprofile, "datasources": datasource,
           "volumeclonesources": volumeclonesource, "volumesnapshots": volumesnapshot,
           "volumesnapshotcontents": volumesnapshotcontent, "cdis": cdi, "virtualmachines": virtualmachine,
           "virtualmachineclones": vmclone, "virtualmachinesnapshots": vmsnapshot,
           "virtualmachinesnapshotcontents": vmsnapshotcontent, "virtualmachinerestores": vmrestore}
CLUSTER_SCOPED = {"persistentvolumes", "storageclasses", "storageprofiles", "volumesnapshotcontents", "cdis"}


# -- rbd's JSON (Ceph 16, tests/fixtures/ceph) ----------------------------------------------------
count = sometimes(st.one_of(st.integers(-2**64, -1), st.integers(2**63, 2**65), st.floats(), st.integers(0, 9).map(str), json_leaf),
                  st.integers(0, 2**40), 24)
rbd_image = sometimes(st.text(max_size=8), st.sampled_from(["golden", "vm-1", "csi-vol-00000000-0000-0000-0000-000000000001"]), 16)
du_row = st.one_of(
    shaped({"name": rbd_image, "id": fuzzed("10a2b3c4d5e6"), "provisioned_size": count, "used_size": count}, odds=40),
    shaped({"name": rbd_image, "id": fuzzed("10a2b3c4d5e6"), "provisioned_size": count, "used_size": count,
            "snapshot": fuzzed("base"), "snapshot_id": st.integers(0, 99)}, odds=40))
rbd_du = shaped({"images": sometimes(st.builds(list), st.lists(du_row, min_size=1, max_size=4), 8),
                 "total_provisioned_size": count, "total_used_size": count}, odds=30)
parent = shaped({"pool": fuzzed("vms", "replicapool"), "image": rbd_image, "snapshot": fuzzed("base")},
                optional={"pool_namespace": fuzzed("", "tenant-a")}, odds=40)
ls_row = st.one_of(
    shaped({"image": rbd_image, "id": fuzzed("10a2b3c4d5e6"), "size": count, "format": st.just(2)}, odds=40),
    shaped({"image": rbd_image, "id": fuzzed("10a2b3c4d5e6"), "size": count, "format": st.just(2), "parent": parent}, odds=40),
    shaped({"image": rbd_image, "snapshot": fuzzed("base"), "snapshot_id": st.integers(0, 99), "size": count,
            "protected": fuzzed("true", "false")}, odds=40))
rbd_ls = wrong_now_and_then(sometimes(st.builds(list), st.lists(ls_row, min_size=1, max_size=4), 8), 30)
