"""rbd JSON as a real Ceph Pacific cluster printed it (tests/fixtures/ceph, recorded samples)."""

import json
from pathlib import Path

import pytest

from exporter.backends.base import BackendError, TargetState
from exporter.backends.rbd.backend import RbdBackend, RbdSettings, load_cluster
from exporter.backends.rbd.cli import CliClient, build_volumes, crash_reason, parse_du, parse_ls, signal_name
from exporter.backends.rbd.librbd import LibrbdClient
from exporter.backends.rbd.naming import split_cluster, split_target
from exporter.backends.rbd.reader import CephCluster
from exporter.model.efficiency import logical_bytes
from tests.support.objects import pv_rbd

FIX = Path(__file__).parent.parent / "fixtures" / "ceph"
MiB, GiB = 2**20, 2**30


def load(name):
    return json.loads((FIX / name).read_text())


def test_golden_data_sits_in_its_snapshot_row_and_counts_as_its_own():
    du = parse_du(load("rbd-du-golden.json"))
    assert du == {"golden": (1 * GiB, 1 * GiB)}


def test_pool_sample_builds_volumes_with_parents():
    volumes = build_volumes("rbd", parse_du(load("rbd-du-pool.json")), parse_ls(load("rbd-ls-l-pool.json")))
    assert volumes["rbd/clone-01"].consumed_bytes == 54525952      # 13 whole 4 MiB objects
    assert volumes["rbd/clone-01"].parent == "rbd/golden"
    assert volumes["rbd/clone-01"].parent_snapshot == "base"
    assert volumes["rbd/clone-09"].consumed_bytes == 1 * GiB        # 4 KiB random writes copy up whole objects
    assert volumes["rbd/full-01"].parent == "" and volumes["rbd/full-01"].consumed_bytes == 1 * GiB
    assert volumes["rbd/golden"].consumed_bytes == 1 * GiB and volumes["rbd/golden"].parent == ""
    # The pool total that rbd du printed is the sum of what we assign to volumes.
    assert sum(v.consumed_bytes for v in volumes.values()) == load("rbd-du-pool.json")["total_used_size"]
    assert logical_bytes(volumes)["rbd/clone-01"] == 54525952 + 1 * GiB


def test_namespaced_target_ids():
    volumes = build_volumes("pool/ns", {"img": (4 * MiB, 8 * MiB)},
                            {"img": {"pool": "pool", "pool_namespace": "ns", "image": "gold", "snapshot": "s"}})
    assert set(volumes) == {"pool/ns/img"} and volumes["pool/ns/img"].parent == "pool/ns/gold"


def test_image_in_only_one_listing_waits_for_the_next_refresh():
    volumes = build_volumes("rbd", {"a": (1, 1), "b": (1, 1)}, {"a": None})
    assert set(volumes) == {"rbd/a"}


@pytest.mark.parametrize("doc", [
    None, [], {"images": "x"}, {"images": [{"name": "a"}]}, {"images": [{"name": "a", "used_size": -1,
                                                                          "provisioned_size": 1}]},
    {"images": [{"name": "a", "used_size": True, "provisioned_size": 1}]},
])
def test_du_garbage_is_a_backend_error(doc):
    with pytest.raises(BackendError):
        parse_du(doc)


@pytest.mark.parametrize("doc", [{}, [{"id": "x"}], [{"image": "a", "parent": "rbd/golden"}],
                                 [{"image": "a", "parent": {"pool": "rbd"}}]])
def test_ls_garbage_is_a_backend_error(doc):
    with pytest.raises(BackendError):
        parse_ls(doc)


def test_pv_mapping():
    b = RbdBackend(RbdSettings())
    ref = b.map_pv(pv_rbd("pv", "ocs-pool", "csi-vol-1", rados_namespace="tenant"))
    assert (ref.backend, ref.target, ref.volume) == ("rbd", "ocs-pool/tenant", "ocs-pool/tenant/csi-vol-1")
    assert b.map_pv(pv_rbd("pv", "p", "i", driver="rook-ceph.rbd.csi.ceph.com")).volume == "p/i"
    assert b.map_pv(pv_rbd("pv", "p", "i", driver="vpc.block.csi.ibm.io")) is None
    static = pv_rbd("pv", "p", "")
    static["spec"]["csi"]["volumeAttributes"]["staticVolume"] = "true"
    static["spec"]["csi"]["volumeHandle"] = "my-image"
    assert b.map_pv(static).volume == "p/my-image"
    assert b.map_pv(pv_rbd("pv", "", "i")) is None
    # ceph-csi 2.x put no imageName in a PV's volumeAttributes: the image is csi-vol-<the handle's uuid>.
    uid = "0206e500-79a8-4bca-b274-da6db48a5760"
    old = pv_rbd(f"pvc-{uid}", "p", "")
    del old["spec"]["csi"]["volumeAttributes"]["imageName"]
    old["spec"]["csi"]["volumeHandle"] = f"0001-0024-7635de36-ab1f-4a70-98a2-a1bd80ba77c4-0000000000000006-{uid}"
    assert b.map_pv(old).volume == f"p/csi-vol-{uid}"
    for handle in (f"0001-0009-7635de36-ab1f-4a70-98a2-a1bd80ba77c4-0000000000000006-{uid}",   # length lies
                   f"0002-0024-7635de36-ab1f-4a70-98a2-a1bd80ba77c4-0000000000000006-{uid}",   # another encoding
                   f"0001-0024-7635de36-ab1f-4a70-98a2-a1bd80ba77c4-0000000000000006-{uid}x", uid, ""):
        old["spec"]["csi"]["volumeHandle"] = handle
        assert b.map_pv(old) is None, handle


def test_the_backend_reads_through_the_client_rbd_client_names():
    from exporter.backends import registry
    from exporter.cli import load
    assert isinstance(RbdBackend(RbdSettings(client="cli")).reader, CliClient)
    assert isinstance(RbdBackend(RbdSettings(client="librbd")).reader, LibrbdClient)
    [backend] = registry.build(load(["--no-kubernetes.enabled", "--rbd.client=cli", "--rbd.binary=/x/rbd",
                                     "--rbd.timeout=7"]))
    assert isinstance(backend.reader, CliClient)
    assert (backend.reader.binary, backend.reader.timeout_seconds) == ("/x/rbd", 7.0)


def test_ceph_csi_intermediates_are_links():
    uid = "0206e500-79a8-4bca-b274-da6db48a5760"
    du = {f"csi-vol-{uid}-temp": (0, 1), f"csi-snap-{uid}": (0, 1), f"csi-vol-{uid}": (4, 1), "csi-vol-x-temp": (0, 1),
          f"my-csi-snap-{uid}": (0, 1)}
    vols = build_volumes("p", du, {name: None for name in du})
    assert {v.volume.split("/")[1] for v in vols.values() if v.link} == {f"csi-vol-{uid}-temp", f"csi-snap-{uid}"}


def test_pvs_route_to_the_cluster_their_clusterID_names():
    b = RbdBackend(RbdSettings(clusters=(CephCluster("east", "/e/ceph.conf"),)))
    east = b.map_pv(pv_rbd("pv", "pool", "img", cluster_id="east", rados_namespace="ns"))
    assert (east.target, east.volume) == ("east:pool/ns", "east:pool/ns/img")
    other = b.map_pv(pv_rbd("pv", "pool", "img", cluster_id="openshift-storage"))
    assert (other.target, other.volume) == ("pool", "pool/img"), "an unnamed clusterID goes to the default cluster"
    vols = build_volumes("east:pool", {"c": (4, 8), "g": (8, 8)},
                         {"c": {"pool": "pool", "image": "g", "snapshot": "s"}, "g": None})
    assert vols["east:pool/c"].parent == "east:pool/g", "a parent lives in its child's cluster"
    assert split_cluster("pool/img@trash:1a2b") == ("", "pool/img@trash:1a2b"), "a trashed id is not a cluster"
    assert split_target("east:pool/ns") == ("pool", "ns")


def test_cluster_directories_load_and_bad_ones_are_named(tmp_path):
    d = tmp_path / "east"
    d.mkdir()
    with pytest.raises(ValueError, match=r"ceph\.conf is missing"):
        load_cluster("east", d)
    (d / "ceph.conf").write_text("[global]\nmon host = 10.0.0.1\n")
    (d / "keyring").write_text("[client.clonewatch]\n\tkey = AQB=\n")
    c = load_cluster("east", d)
    assert (c.name, c.client_id, c.keyring) == ("east", "clonewatch", str(d / "keyring"))
    (d / "client-id").write_text("reader\n")
    assert load_cluster("east", d).client_id == "reader"
    with pytest.raises(ValueError, match="must not contain"):
        load_cluster("a:b", d)


def test_a_changed_failure_reason_is_news_a_repeated_one_is_not():
    st = TargetState("p")
    assert st.failed("timeout", 1.0)
    assert not st.failed("timeout", 1.0)
    assert st.failed("permission denied", 0.1)


def test_crash_reason_skips_the_event_dump_and_names_the_signal():
    dump = (b"--- begin dump of recent events ---\n -1> 2026-12-01T15:54:44.081+0000 7f3a -1 ./x.cc: 1: FAILED "
            b"ceph_assert(in the dump)\n--- end dump of recent events ---\n")
    assert crash_reason(b"*** Caught signal (Segmentation fault) **\n in thread 7f\n" + dump) == \
        "*** Caught signal (Segmentation fault) **"
    assert crash_reason(b"rbd: one plain line\n" + dump) == "rbd: one plain line"
    assert crash_reason(dump) == crash_reason(b"") == "no message"
    assert (signal_name(-6), signal_name(-11), signal_name(-99)) == ("SIGABRT", "SIGSEGV", "signal 99")
