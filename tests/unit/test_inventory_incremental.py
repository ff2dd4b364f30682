"""The incrementally kept inventory equals a full rebuild, byte for byte, after any sequence of changes.

A hypothesis state machine adds, modifies and deletes every watched resource (PVCs, PVs, DataVolumes,
StorageClasses, StorageProfiles, the CDI CR, DataSources, VolumeCloneSources, VolumeSnapshots and their
contents; KubeVirt's VMs, VirtualMachineClones, snapshots, snapshot contents and restores, and the marks
its restore leaves on PVCs and DataVolumes) and hands the RBD backend new refresh results (volumes appearing, vanishing, re-parented,
growing, a target going down, two targets naming the same volume). The names come from small pools so
that references hit: clones of clones, snapshots of goldens, DataSources moving, ceph-csi's snapshot
images found by name. After every step the exporter's way (store.take_changes() into one long-lived
Inventory and its collectors) must equal a fresh Inventory fed everything: the same view, the same
/metrics text, and gzip members that decode to that text.
"""

import copy
import gzip

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from exporter.backends.base import BackgroundCopy, TargetState, Volume
from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.collectors import registry
from exporter.inventory.pipeline import Inventory, everything
from exporter.kube.store import Store
from tests.support.objects import (
    ODF_RBD,
    cdi_cr,
    clone_annotations,
    datasource_of,
    datavolume,
    pv_rbd,
    pvc,
    storageclass,
    storageprofile,
)

NS = st.sampled_from(["img", "vms"])
PVC_NAMES = st.sampled_from(["g1", "g2", "c1", "c2", "c3"])
PV_NAMES = st.sampled_from([f"pv-{i}" for i in range(6)])
IMAGES = [f"img{i}" for i in range(6)]
UUIDS = ["11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"]
VOLUME_IDS = [f"p/{i}" for i in IMAGES] + [f"p/csi-snap-{u}" for u in UUIDS] + ["p/csi-vol-tmp"]
KUBEVIRT_SNAP = f"vmsnapshot-{'11111111-2222-3333-4444-555555555555'}-volume-root"    # as KubeVirt names one
SNAP_NAMES = st.sampled_from(["s1", "s2", KUBEVIRT_SNAP])
VM_NAMES = st.sampled_from(["vm1", "vm2"])
RESTORE_UID = "99999999-8888-7777-6666-555555555555"
CONTENTS = st.sampled_from(["content-1", "content-2"])
SCS = st.sampled_from(["rbd", "other"])
TIMES = st.sampled_from(["2026-11-30T10:00:00Z", "2026-11-30T10:00:07Z", "2026-11-30T10:09:00Z", None])


def collectors():
    """Every object collector the registry holds, as the exporter builds them (they read no context)."""
    return registry.text_collectors(None)


def body(cs) -> tuple[bytes, bytes]:
    parts = [p for c in cs for p in c.parts()]
    return b"".join(p for p, _ in parts), b"".join(g for _, g in parts)


source_choice = st.one_of(
    st.none(),
    st.builds(lambda ns, n: {"pvc": {"namespace": ns, "name": n}}, NS, PVC_NAMES),
    st.builds(lambda ns, n: {"snapshot": {"namespace": ns, "name": n}}, NS, SNAP_NAMES))
ref_choice = st.one_of(
    st.none(),
    st.builds(lambda n: {"kind": "DataSource", "name": n}, st.sampled_from(["ds", "ds2"])),
    st.builds(lambda n: {"kind": "PersistentVolumeClaim", "name": n}, PVC_NAMES),
    st.builds(lambda n: {"kind": "VolumeSnapshot", "name": n}, SNAP_NAMES),
    st.builds(lambda n: {"kind": "VolumeCloneSource", "name": n}, st.just("vcs")))
annotation_choice = st.one_of(
    st.just({}),
    st.builds(clone_annotations, st.sampled_from(["csi-clone", "snapshot", "copy", "bogus", None]),
              st.sampled_from([None, "NoVolumeSnapshotClass", "IncompatibleVolumeModes"])),
    st.just({"k8s.io/CloneRequest": "img/g1"}),
    st.just({"cdi.kubevirt.io/clonePhase": "CSIClone",
             "cdi.kubevirt.io/storage.condition.running.reason": "CSICloneInProgress"}),
    st.just({"restore.kubevirt.io/name": "r1", "restore.kubevirt.io/lastRestoreUID": f"r1-{RESTORE_UID}",
             "cdi.kubevirt.io/storage.contentType": "kubevirt"}))
vm_volume = st.tuples(st.sampled_from(["root", "data", "cd"]),
                      st.sampled_from(["dataVolume", "persistentVolumeClaim", "containerDisk", "cloudInitNoCloud"]),
                      PVC_NAMES)
volume_spec = st.tuples(
    st.sampled_from(VOLUME_IDS),
    st.integers(0, 64),                                   # MiB of its own
    st.sampled_from(["", "", "p/img0", "p/img1", f"p/csi-snap-{UUIDS[0]}", "p/csi-vol-tmp", "p/gone"]),
    st.booleans(),                                        # link (a ceph-csi intermediate)
    st.booleans(),                                        # trashed
    st.sampled_from([None, 0.0, 0.5, 1.0]))               # a background copy's progress


class IncrementalEqualsFull(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = Store()
        self.backend = RbdBackend(RbdSettings())
        self.targets: dict[str, dict[str, Volume]] = {"p": {}, "p2": {}}
        self.up = {"p": True, "p2": True}
        self.inv = Inventory([self.backend], True)
        self.cs = collectors()
        self.native = Inventory([self.backend], False)
        self.native_cs = collectors()

    def put(self, resource, obj):
        self.store.apply(resource, [("ADDED", obj)])

    # -- Kubernetes objects -----------------------------------------------------------------------
    @rule(ns=NS, name=PVC_NAMES, sc=SCS, pv=st.one_of(st.none(), PV_NAMES), ann=annotation_choice,
          ref=ref_choice, owner=st.booleans(), size=st.sampled_from(["64Mi", "1Gi"]))
    def put_pvc(self, ns, name, sc, pv, ann, ref, owner, size, marked=False):
        obj = pvc(ns, name, sc, volume=pv, size=size, annotations=ann, data_source_ref=ref,
                  owner_dv=name if owner else None)
        if marked:      # the source VM a KubeVirt restore names on the PVCs it makes
            obj["metadata"]["labels"] = {"restore.kubevirt.io/source-vm-name": "vm1",
                                         "restore.kubevirt.io/source-vm-namespace": ns}
        self.put("persistentvolumeclaims", obj)

    @rule(ns=NS, name=PVC_NAMES, sc=SCS, pv=st.one_of(st.none(), PV_NAMES), ann=annotation_choice,
          ref=ref_choice, owner=st.booleans())
    def put_marked_pvc(self, ns, name, sc, pv, ann, ref, owner):
        self.put_pvc(ns, name, sc, pv, ann, ref, owner, "64Mi", marked=True)

    @rule(name=PV_NAMES, image=st.sampled_from(IMAGES), sc=SCS, size=st.sampled_from(["64Mi", "2Gi"]))
    def put_pv(self, name, image, sc, size):
        self.put("persistentvolumes", pv_rbd(name, "p", image, size=size, storageclass_name=sc))

    @rule(ns=NS, name=PVC_NAMES, source=source_choice, ds=st.sampled_from([None, "ds", "ds2"]), ann=annotation_choice,
          phase=st.sampled_from(["Succeeded", "CSICloneInProgress", "Failed"]), created=TIMES, ready=TIMES)
    def put_dv(self, ns, name, source, ds, ann, phase, created, ready, prepopulated=False):
        source_ref = {"kind": "DataSource", "name": ds} if ds and source is None else None
        if prepopulated:
            ann = {**ann, "cdi.kubevirt.io/storage.prePopulated": "true", "restore.kubevirt.io/name": "r1"}
        self.put("datavolumes", datavolume(ns, name, source=source, source_ref=source_ref, annotations=ann,
                                           phase=phase, created=created, ready_at=ready))

    @rule(ns=NS, name=PVC_NAMES, source=source_choice)
    def put_restored_dv(self, ns, name, source):
        self.put_dv(ns, name, source, None, {}, "Succeeded", None, None, prepopulated=True)

    # -- KubeVirt -----------------------------------------------------------------------------------
    @rule(ns=NS, name=VM_NAMES, volumes=st.lists(vm_volume, max_size=3), templates=st.lists(PVC_NAMES, max_size=2),
          restored=st.booleans())
    def put_vm(self, ns, name, volumes, templates, restored):
        ann = {"restore.kubevirt.io/lastRestoreUID": f"r1-{RESTORE_UID}"} if restored else {}
        self.put("virtualmachines", {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                                     "metadata": {"name": name, "namespace": ns, "annotations": ann},
                                     "spec": {"dataVolumeTemplates": [{"metadata": {"name": t}} for t in templates],
                                              "template": {"spec": {"volumes": [
                                                  {"name": v, kind: {"name": c, "claimName": c}}
                                                  for v, kind, c in volumes]}}}})

    @rule(ns=NS, name=st.sampled_from(["vc1", "vc2"]), source=VM_NAMES, target_vm=VM_NAMES,
          phase=st.sampled_from([None, "SnapshotInProgress", "Succeeded", "Failed"]), created=TIMES)
    def put_vmclone(self, ns, name, source, target_vm, phase, created):
        status = {"phase": phase, "targetName": target_vm} if phase else {}
        status["conditions"] = [{"type": "Ready", "status": "True" if phase == "Succeeded" else "False",
                                 "reason": "Ready" if phase == "Succeeded" else "Still processing"}]
        self.put("virtualmachineclones", {"apiVersion": "clone.kubevirt.io/v1beta1", "kind": "VirtualMachineClone",
                                          "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
                                          "spec": {"source": {"kind": "VirtualMachine", "name": source},
                                                   "target": {"kind": "VirtualMachine", "name": target_vm}},
                                          "status": status})

    @rule(ns=NS, source=VM_NAMES)
    def put_vm_snapshot_and_restore(self, ns, source):
        self.put("virtualmachinesnapshots", {"apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshot",
                                             "metadata": {"name": "vms1", "namespace": ns},
                                             "spec": {"source": {"kind": "VirtualMachine", "name": source}}})
        self.put("virtualmachinerestores", {"apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineRestore",
                                            "metadata": {"name": "r1", "namespace": ns},
                                            "spec": {"virtualMachineSnapshotName": "vms1"}})

    @rule(ns=NS, claim=PVC_NAMES)
    def put_vm_snapshot_content(self, ns, claim):
        self.put("virtualmachinesnapshotcontents", {
            "apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshotContent",
            "metadata": {"name": f"vmsnapshot-content-{UUIDS[0]}", "namespace": ns},
            "spec": {"volumeBackups": [{"volumeName": "root", "volumeSnapshotName": KUBEVIRT_SNAP,
                                        "persistentVolumeClaim": {"metadata": {"name": claim}}}]}})

    @rule(ns=NS, name=st.sampled_from(["ds", "ds2"]), golden=PVC_NAMES, snapshot=st.one_of(st.none(), SNAP_NAMES))
    def put_datasource(self, ns, name, golden, snapshot):
        self.put("datasources", datasource_of(ns, name, None if snapshot else golden, snapshot))

    @rule(ns=NS, inner=st.sampled_from([("PersistentVolumeClaim", "g1"), ("VolumeSnapshot", "s1"), ("Foo", "x")]))
    def put_clone_source(self, ns, inner):
        self.put("volumeclonesources", {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "VolumeCloneSource",
                                        "metadata": {"name": "vcs", "namespace": ns},
                                        "spec": {"source": {"kind": inner[0], "name": inner[1]}}})

    @rule(ns=NS, name=SNAP_NAMES, source=PVC_NAMES, content=st.one_of(st.none(), CONTENTS))
    def put_snapshot(self, ns, name, source, content):
        status = {"boundVolumeSnapshotContentName": content, "readyToUse": True} if content else {}
        self.put("volumesnapshots", {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                                     "metadata": {"name": name, "namespace": ns},
                                     "spec": {"source": {"persistentVolumeClaimName": source}}, "status": status})

    @rule(name=CONTENTS, uuid=st.sampled_from(UUIDS))
    def put_content(self, name, uuid):
        self.put("volumesnapshotcontents", {
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent", "metadata": {"name": name},
            "spec": {"driver": ODF_RBD, "source": {"volumeHandle": "x"}},
            "status": {"snapshotHandle": f"0001-0011-openshift-storage-0000000000000001-{uuid}"}})

    @rule(name=SCS, provisioner=st.sampled_from([ODF_RBD, "example.com/nfs"]),
          strategy=st.sampled_from([None, "copy", "snapshot", "csi-clone"]))
    def put_storageclass(self, name, provisioner, strategy):
        ann = {"cdi.kubevirt.io/clone-strategy": strategy} if strategy else {}
        self.put("storageclasses", storageclass(name, provisioner, ann))

    @rule(name=SCS, strategy=st.sampled_from([None, "copy", "snapshot", "csi-clone"]))
    def put_profile(self, name, strategy):
        self.put("storageprofiles", storageprofile(name, strategy))

    @rule(override=st.sampled_from([None, "copy", "csi-clone"]))
    def put_cdi(self, override):
        self.put("cdis", cdi_cr(override))

    @rule(data=st.data())
    def delete(self, data):
        held = [(r, k) for r, bucket in self.store.objects.items() for k in bucket]
        if not held:
            return
        self.delete_key(*data.draw(st.sampled_from(sorted(held))))

    def delete_key(self, resource, key):
        ns, name = key
        self.store.apply(resource, [("DELETED", {"metadata": {"name": name, **({"namespace": ns} if ns else {})}})])

    @rule(resource=st.sampled_from(["persistentvolumeclaims", "datavolumes", "persistentvolumes", "virtualmachines",
                                    "virtualmachineclones"]))
    def relist_empty(self, resource):
        self.store.replace(resource, None, [])

    # -- backend refreshes ------------------------------------------------------------------------
    @rule(pool=st.sampled_from(["p", "p", "p2"]), specs=st.lists(volume_spec, max_size=8), keep=st.booleans())
    def refresh(self, pool, specs, keep):
        # keep: the untouched volumes stay the very same objects (what the librbd reader reuses).
        vols = dict(self.targets[pool]) if keep else {}
        for vid, own, parent, link, trashed, progress in specs:
            copy_ = BackgroundCopy("fcmap0", "copying", progress, 50) if progress is not None else None
            # Who made it, as ceph-csi's journal would say (for the reasons of space no PV owns).
            kind = "temp" if vid.endswith("-tmp") else "snapshot" if "csi-snap-" in vid else "volume"
            vols[vid] = Volume(vid, "p", own << 20, 64 << 20, parent if parent != vid else "", "base" if parent else "",
                               copy=copy_, link=link, trashed=trashed, made_by=("csi", "foreign", "")[own % 3],
                               csi_kind=kind)
        self.targets[pool] = vols
        self.up[pool] = True

    @rule(pool=st.sampled_from(["p", "p2"]))
    def target_down(self, pool):
        self.up[pool] = False

    @rule(pool=st.sampled_from(["p", "p2"]), data=st.data())
    def volume_gone(self, pool, data):
        if self.targets[pool]:
            vid = data.draw(st.sampled_from(sorted(self.targets[pool])))
            self.targets[pool] = {k: v for k, v in self.targets[pool].items() if k != vid}

    # -- the check --------------------------------------------------------------------------------
    def states(self):
        out = {}
        for target, vols in self.targets.items():
            state = TargetState(target)
            if self.up[target]:
                state.succeeded(vols, 0.1)
            else:
                state.failed("down", 0.1)
            out[target] = copy.copy(state)
        self.backend._states = out
        self.backend._by_image = {vid.rsplit("/", 1)[1]: vid for s in out.values() for vid in s.volumes}
        return {self.backend.name: out}

    @invariant()
    def incremental_equals_full(self):
        states = self.states()
        changes = self.store.take_changes()
        for inv, cs, native_changes in ((self.inv, self.cs, changes), (self.native, self.native_cs, {})):
            dirty = inv.update(native_changes, states)
            for c in cs:
                c.update(inv, dirty)
            fresh = Inventory([self.backend], inv.kubernetes)
            fresh_dirty = fresh.update(everything(self.store.objects) if inv.kubernetes else {}, states)
            fresh_cs = collectors()
            for c in fresh_cs:
                c.update(fresh, fresh_dirty)
            assert inv.view() == fresh.view()
            text, gz = body(cs)
            assert text == body(fresh_cs)[0]
            assert gzip.decompress(gz) == text


TestIncrementalEqualsFull = IncrementalEqualsFull.TestCase
TestIncrementalEqualsFull.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                              suppress_health_check=[HealthCheck.too_slow])


# -- scenarios the random walk reaches only rarely: each step checked the same way ------------------
def _machine() -> IncrementalEqualsFull:
    m = IncrementalEqualsFull()
    m.put_storageclass("rbd", ODF_RBD, None)
    return m


def _clone(m, name, source, pv):
    m.put_dv("vms", name, {"pvc": {"namespace": "img", "name": source}}, None, clone_annotations("csi-clone"),
             "Succeeded", None, None)
    m.put_pvc("vms", name, "rbd", pv, clone_annotations("csi-clone"), None, True, "64Mi")


def _volumes(m, *specs):
    m.refresh("p", [(vid, own, parent, False, False, None) for vid, own, parent in specs], False)


def test_an_ancestor_gaining_an_owner_moves_the_clone_to_that_family():
    """The clone says it came from img/g1, but its volume hangs below img0, which no PVC holds yet
    (a family named after the volume); once img/g2 binds img0 the clone is g2's, then g1's... only
    by the owner of img0 changing, nothing about the clone itself."""
    m = _machine()
    m.put_pv("pv-0", "img0", "rbd", "64Mi")
    m.put_pv("pv-2", "img2", "rbd", "64Mi")
    m.put_pv("pv-3", "img3", "rbd", "64Mi")
    m.put_pvc("img", "g1", "rbd", "pv-3", {}, None, False, "64Mi")
    _clone(m, "c1", "g1", "pv-2")
    _volumes(m, ("p/img0", 10, ""), ("p/img2", 1, "p/img0"), ("p/img3", 10, ""))
    m.incremental_equals_full()
    assert m.inv.pvcs[("vms", "c1")].record.family_kind == "BackendVolume"
    m.put_pvc("img", "g2", "rbd", "pv-0", {}, None, False, "64Mi")
    m.incremental_equals_full()
    assert m.inv.pvcs[("vms", "c1")].record.family_name == "g2"
    m.put_pvc("img", "g2", "rbd", None, {}, None, False, "64Mi")       # g2 let go of img0
    m.incremental_equals_full()
    assert m.inv.pvcs[("vms", "c1")].record.family_kind == "BackendVolume"


def test_a_snapshot_image_appearing_in_a_refresh_maps_its_snapshot_family():
    m = _machine()
    m.put_pv("pv-1", "img1", "rbd", "64Mi")
    m.put_pvc("img", "g1", "rbd", "pv-1", {}, None, False, "64Mi")
    m.put_snapshot("img", "s1", "g1", "content-1")
    m.put_content("content-1", UUIDS[0])
    m.put_pv("pv-2", "img2", "rbd", "64Mi")
    m.put_dv("vms", "c1", {"snapshot": {"namespace": "img", "name": "s1"}}, None, clone_annotations("snapshot"),
             "Succeeded", None, None)
    m.put_pvc("vms", "c1", "rbd", "pv-2", clone_annotations("snapshot"), None, True, "64Mi")
    _volumes(m, ("p/img1", 20, ""), ("p/img2", 2, "p/img1"))
    m.incremental_equals_full()
    snap = f"p/csi-snap-{UUIDS[0]}"
    _volumes(m, ("p/img1", 20, ""), (snap, 0, "p/img1"), ("p/img2", 2, snap))
    m.incremental_equals_full()
    fam = m.inv.families[("PersistentVolumeClaim", "img", "g1", "rbd")]
    assert fam.numbers is not None and fam.numbers.consumed_bytes == 22 << 20


def test_bytes_above_two_families_are_charged_to_neither_then_to_the_one_left():
    m = _machine()
    for i in (1, 2, 3, 4):
        m.put_pv(f"pv-{i}", f"img{i}", "rbd", "64Mi")
    m.put_pvc("img", "g1", "rbd", "pv-1", {}, None, False, "64Mi")
    m.put_pvc("img", "g2", "rbd", "pv-2", {}, None, False, "64Mi")
    _clone(m, "c1", "g1", "pv-3")
    _clone(m, "c2", "g2", "pv-4")
    # Both goldens are clones of the trashed img0: its 30 MiB serve two families.
    _volumes(m, ("p/img0", 30, ""), ("p/img1", 1, "p/img0"), ("p/img2", 1, "p/img0"),
             ("p/img3", 1, "p/img1"), ("p/img4", 1, "p/img2"))
    m.incremental_equals_full()
    g1 = ("PersistentVolumeClaim", "img", "g1", "rbd")
    assert m.inv.families[g1].numbers.consumed_bytes == 2 << 20
    m.delete_key("persistentvolumeclaims", ("vms", "c2"))      # g2's family is gone: img0 serves g1 alone
    m.incremental_equals_full()
    assert m.inv.families[g1].numbers.consumed_bytes == 32 << 20


def test_a_golden_bound_to_another_volume_changes_its_family_with_no_clone_touched():
    m = _machine()
    m.put_pv("pv-1", "img1", "rbd", "64Mi")
    m.put_pv("pv-3", "img3", "rbd", "64Mi")
    m.put_pvc("img", "g1", "rbd", "pv-1", {}, None, False, "64Mi")
    _clone(m, "c1", "g1", None)         # not bound yet: in g1's family, measured by g1's volume alone
    _volumes(m, ("p/img1", 10, ""), ("p/img3", 30, ""))
    m.incremental_equals_full()
    g1 = ("PersistentVolumeClaim", "img", "g1", "rbd")
    assert m.inv.families[g1].numbers.consumed_bytes == 10 << 20
    m.put_pvc("img", "g1", "rbd", "pv-3", {}, None, False, "64Mi")
    m.incremental_equals_full()
    assert m.inv.families[g1].numbers.consumed_bytes == 30 << 20


def test_a_snapshot_bound_to_its_content_later_gives_its_family_a_source():
    m = _machine()
    m.put_pv("pv-2", "img2", "rbd", "64Mi")
    snap = f"p/csi-snap-{UUIDS[1]}"
    m.put_snapshot("img", "s2", "gone", "content-2")        # taken from a PVC deleted since
    for name, pv in (("c1", None), ("c2", None)):      # not bound yet: nothing of theirs hangs below the image
        m.put_dv("vms", name, {"snapshot": {"namespace": "img", "name": "s2"}}, None, clone_annotations("snapshot"),
                 "Succeeded", None, None)
        m.put_pvc("vms", name, "rbd", pv, clone_annotations("snapshot"), None, True, "64Mi")
    _volumes(m, (snap, 40, ""), ("p/img2", 2, snap))
    m.incremental_equals_full()
    fam = ("VolumeSnapshot", "img", "s2", "rbd")
    assert m.inv.families[fam].numbers is None
    m.put_content("content-2", UUIDS[1])
    m.incremental_equals_full()
    assert m.inv.families[fam].numbers.consumed_bytes == 40 << 20


def test_dep_index_one_reader_many_readers_and_back():
    from exporter.inventory.tokens import DepIndex
    idx = DepIndex()
    idx.note("a", [("obj", "pvcs", 1), ("all", "cdis")])
    idx.note("b", [("all", "cdis")])
    assert idx.readers([("all", "cdis")]) == {"a", "b"} and idx.readers([("obj", "pvcs", 1)]) == {"a"}
    idx.note("a", [("obj", "pvcs", 2)])        # a no longer reads the CDI CR nor object 1
    assert idx.readers([("all", "cdis")]) == {"b"} and idx.readers([("obj", "pvcs", 1)]) == set()
    idx.drop("b")
    assert idx.readers([("all", "cdis"), ("obj", "pvcs", 2), ("nothing",)]) == {"a"} and len(idx) == 1
    idx.drop("a")
    assert len(idx) == 0 and idx._by == {}


def test_a_vms_golden_follows_its_disks_source_becoming_a_clone_with_nothing_of_the_vm_touched():
    """vm1's disk c1 is a clone of g1; once g1 turns out to be a clone of g2, the VM's golden is g2:
    only g1's row changed, neither the VM nor c1's row."""
    m = _machine()
    m.put_pv("pv-1", "img1", "rbd", "64Mi")
    m.put_pv("pv-2", "img2", "rbd", "64Mi")
    m.put_pvc("img", "g1", "rbd", "pv-1", {}, None, False, "64Mi")
    _clone(m, "c1", "g1", "pv-2")
    m.put_vm("vms", "vm1", [("root", "persistentVolumeClaim", "c1")], [], False)
    m.incremental_equals_full()
    assert m.inv.vms[("vms", "vm1")].golden == ("PersistentVolumeClaim", "img", "g1", "rbd")
    m.put_pvc("img", "g1", "rbd", "pv-1", {}, {"kind": "PersistentVolumeClaim", "name": "g2"}, False, "64Mi")
    m.incremental_equals_full()
    assert m.inv.vms[("vms", "vm1")].golden == ("PersistentVolumeClaim", "img", "g2", "rbd")


def test_a_vm_clone_finishing_names_its_target_vm_with_nothing_of_the_vm_touched():
    m = _machine()
    m.put_vm("vms", "vm2", [], [], False)
    m.incremental_equals_full()
    assert m.inv.vms[("vms", "vm2")].source is None
    m.put_vmclone("vms", "vc1", "vm1", "vm2", None, None)
    m.incremental_equals_full()
    assert m.inv.vms[("vms", "vm2")].source == ("VirtualMachine", "vms", "vm1")
    m.put_vmclone("vms", "vc1", "vm1", "vm1", "Succeeded", None)     # its status names another target
    m.incremental_equals_full()
    assert m.inv.vms[("vms", "vm2")].source is None
