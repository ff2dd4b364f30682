"""Joining classification with backend volumes: families, absent-not-invented numbers."""

import pytest

from exporter.backends.base import TargetState, Volume
from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.inventory.pipeline import build_view
from tests.support.inventory import objects
from tests.support.objects import ODF_RBD, clone_annotations, datavolume, pv_rbd, pvc, storageclass

MiB = 2**20
SC = "rbd"


def state(*vols):
    st = TargetState("p")
    st.succeeded({v.volume: v for v in vols}, 0.1)
    return st


def backend_with(*vols):
    b = RbdBackend(RbdSettings())
    b._states = {"p": state(*vols)}   # what a refresh would have left
    b._by_image = {v.volume.rsplit("/", 1)[1]: v.volume for v in vols}
    return b


def clone(ns, name, src_ns, src, image=None, kind="pvc"):
    ann = clone_annotations("csi-clone" if kind == "pvc" else "snapshot")
    source = {kind: {"namespace": src_ns, "name": src}}
    items = [datavolume(ns, name, source=source, annotations=ann)]
    if image:
        items += [pv_rbd(f"pv-{name}", "p", image, storageclass_name=SC),
                  pvc(ns, name, SC, volume=f"pv-{name}", owner_dv=name, annotations=ann)]
    else:
        items += [pvc(ns, name, SC, owner_dv=name, annotations=ann)]
    return items


GOLDEN = [storageclass(SC, ODF_RBD), pv_rbd("pv-g", "p", "g", storageclass_name=SC), pvc("img", "g", SC, volume="pv-g")]
VOLS = [Volume("p/g", "p", 64 * MiB, 64 * MiB), Volume("p/c1", "p", 8 * MiB, 64 * MiB, "p/g", "base"),
        Volume("p/c2", "p", 0, 64 * MiB, "p/g", "base")]


def view_of(objs, b):
    return build_view(objs, [b], True, {b.name: b.states()})


def test_family_from_kubernetes_source():
    b = backend_with(*VOLS)
    v = view_of(objects(*GOLDEN, *clone("vms", "c1", "img", "g", "c1"), *clone("vms", "c2", "img", "g", "c2")), b)
    fam = {(f.source_namespace, f.source_name, f.backend): f for f in v.families}[("img", "g", "rbd")]
    assert fam.clones == 2
    assert fam.numbers.consumed_bytes == 72 * MiB and fam.numbers.full_copy_bytes == 64 * MiB * 3 + 8 * MiB
    assert v.pvcs[("vms", "c1")].consumed_bytes == 8 * MiB and v.pvcs[("vms", "c1")].depth == 1


def test_missing_clone_volume_makes_family_numbers_absent():
    b = backend_with(VOLS[0], VOLS[1])       # c2's image is not in the pool (yet)
    v = view_of(objects(*GOLDEN, *clone("vms", "c1", "img", "g", "c1"), *clone("vms", "c2", "img", "g", "c2")), b)
    fam = v.families[0]
    assert fam.clones == 2 and fam.numbers is None
    assert v.pvcs[("vms", "c2")].consumed_bytes is None and v.pvcs[("vms", "c2")].depth is None


def test_pending_clone_counts_but_does_not_block_numbers():
    b = backend_with(*VOLS[:2])
    v = view_of(objects(*GOLDEN, *clone("vms", "c1", "img", "g", "c1"), *clone("vms", "p", "img", "g")), b)
    fam = v.families[0]
    assert (fam.backend, fam.clones) == ("rbd", 2) and fam.numbers.consumed_bytes == 72 * MiB


def test_deleted_golden_pvc_falls_back_to_the_common_backend_parent():
    b = backend_with(*VOLS)
    v = view_of(objects(storageclass(SC, ODF_RBD), *clone("vms", "c1", "img", "gone", "c1"),
                        *clone("vms", "c2", "img", "gone", "c2")), b)
    assert v.families[0].numbers.consumed_bytes == 72 * MiB


def test_snapshot_source_measured_through_its_snapshot_content():
    snap_img = Volume("p/csi-snap-0b9a3b46-3f2c-11ef-9d7e-0a580a830017", "p", 64 * MiB, 64 * MiB)
    c = Volume("p/c1", "p", 4 * MiB, 64 * MiB, snap_img.volume, "snap")
    b = backend_with(snap_img, c)
    vs = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
          "metadata": {"name": "rhel9-snap", "namespace": "img"},
          "spec": {"source": {"persistentVolumeClaimName": "deleted"}},
          "status": {"boundVolumeSnapshotContentName": "snapcontent-1", "readyToUse": True}}
    vsc = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
           "metadata": {"name": "snapcontent-1"},
           "spec": {"driver": ODF_RBD, "deletionPolicy": "Delete"},
           "status": {"snapshotHandle": "0001-0011-openshift-storage-0000000000000001-"
                                        "0b9a3b46-3f2c-11ef-9d7e-0a580a830017"}}
    v = view_of(objects(storageclass(SC, ODF_RBD), vs, vsc,
                        *clone("vms", "c1", "img", "rhel9-snap", "c1", kind="snapshot")), b)
    fam = v.families[0]
    assert (fam.source_name, fam.numbers.consumed_bytes, fam.numbers.full_copy_bytes) == \
        ("rhel9-snap", 68 * MiB, 132 * MiB)
    assert b.map_snapshot_content(vsc).volume == snap_img.volume


def test_backend_down_means_no_bytes_anywhere():
    b = RbdBackend(RbdSettings())
    st = TargetState("p")
    st.failed("rbd du: exit 1", 0.1)
    b._states = {"p": st}
    v = view_of(objects(*GOLDEN, *clone("vms", "c1", "img", "g", "c1")), b)
    assert all(r.consumed_bytes is None for r in v.pvcs.values())
    assert v.families[0].numbers is None and v.volumes == []


@pytest.mark.parametrize("kubernetes", [False])
def test_native_families_by_root(kubernetes):
    b = backend_with(*VOLS, Volume("p/full", "p", 64 * MiB, 64 * MiB))
    v = build_view({}, [b], kubernetes, {b.name: b.states()})
    assert [(f.source_name, f.clones) for f in v.families] == [("p/g", 2)]
    assert v.families[0].numbers.efficiency_ratio == pytest.approx(1 - 72 / 200)


def test_vpc_restores_are_full_copies_and_their_family_saves_nothing():
    from exporter.backends.vpc.backend import VpcBackend
    from tests.support.objects import VPC_BLOCK, pv_vpc
    vpc = VpcBackend()
    golden_pv = pv_vpc("pv-g", "20Gi")
    golden_pv["spec"]["csi"]["volumeHandle"] = "r006-golden"
    clones = []
    for i in range(3):
        pv = pv_vpc(f"pv-c{i}", "20Gi")
        pv["spec"]["csi"]["volumeHandle"] = f"r006-clone-{i}"
        clones += [pv, pvc("vms", f"c{i}", "vpc-sc", volume=f"pv-c{i}", size="20Gi",
                           data_source={"kind": "PersistentVolumeClaim", "name": "g"})]
    items = [storageclass("vpc-sc", VPC_BLOCK), golden_pv, pvc("vms", "g", "vpc-sc", volume="pv-g", size="20Gi"),
             *clones]
    objs = objects(*items)
    vpc.want(objs["persistentvolumes"].values())
    import asyncio
    asyncio.run(vpc.refresh())
    v = build_view(objs, [vpc], True, {vpc.name: vpc.states()})
    fam = v.families[0]
    assert (fam.backend, fam.clones) == ("vpc", 3)
    assert fam.numbers.consumed_bytes == 4 * 20 * 2**30 == fam.numbers.full_copy_bytes
    assert fam.numbers.efficiency_ratio == 0
    assert v.pvcs[("vms", "c0")].consumed_bytes == 20 * 2**30 and v.pvcs[("vms", "c0")].record.expected_clone_type == "copy"


def test_a_moved_datasource_keeps_old_clones_with_the_golden_they_descend_from():
    """DataSource rhel9 now points at golden g2; c-old was cloned while it pointed at g1 (both PVCs
    live). The storage says c-old hangs from g1: it stays in g1's family, with g1's bytes."""
    from tests.support.objects import datasource_of
    objs = [storageclass(SC, ODF_RBD)]
    for g in ("g1", "g2"):
        objs += [pv_rbd(f"pv-{g}", "p", g, storageclass_name=SC), pvc("img", g, SC, volume=f"pv-{g}")]
    ann = clone_annotations("csi-clone")
    for name in ("c-old", "c-new"):
        objs += [datavolume("vms", name, source_ref={"kind": "DataSource", "name": "rhel9", "namespace": "img"},
                            annotations=ann),
                 pv_rbd(f"pv-{name}", "p", name, storageclass_name=SC),
                 pvc("vms", name, SC, volume=f"pv-{name}", owner_dv=name, annotations=ann)]
    objs.append(datasource_of("img", "rhel9", pvc_name="g2"))
    b = backend_with(Volume("p/g1", "p", 16 * MiB, 64 * MiB), Volume("p/g2", "p", 20 * MiB, 64 * MiB),
                     Volume("p/c-old", "p", 4 * MiB, 64 * MiB, "p/g1", "base"),
                     Volume("p/c-new", "p", 8 * MiB, 64 * MiB, "p/g2", "base"))
    v = view_of(objects(*objs), b)
    fams = {(f.source_namespace, f.source_name): f for f in v.families}
    assert {k: f.clones for k, f in fams.items()} == {("img", "g1"): 1, ("img", "g2"): 1}
    assert fams[("img", "g1")].numbers.consumed_bytes == 20 * MiB        # g1 + c-old's drift
    assert fams[("img", "g2")].numbers.consumed_bytes == 28 * MiB
    assert v.pvcs[("vms", "c-old")].record.source_name == "g1"
    # Without storage evidence (c-old not measured) the DataSource's current target is all we know.
    b2 = backend_with(Volume("p/g1", "p", 16 * MiB, 64 * MiB), Volume("p/g2", "p", 20 * MiB, 64 * MiB))
    v2 = view_of(objects(*objs), b2)
    assert v2.pvcs[("vms", "c-old")].record.source_name == "g2"
