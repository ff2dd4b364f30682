"""FlashSystem: volume handles, the array's string-typed replies, and what FlashCopy progress does
to a family's efficiency (pure; the REST path is tested against the double in integration)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.backends.base import BackendError
from exporter.backends.flashsystem.backend import (
    FlashSystemBackend,
    FlashSystemSettings,
    build_volumes,
    parse_detail_used,
    parse_fcmaps,
    parse_se_copies,
    parse_vdisks,
    parse_volume_handle,
)
from exporter.backends.flashsystem.rest import ArrayAccess, base_url
from exporter.model.efficiency import family_numbers, logical_bytes
from tests.support.objects import pv_flashsystem

MiB = 2**20


def vdisk(id_, uid, capacity, copies="1"):
    return {"id": id_, "name": f"v{id_}", "vdisk_UID": uid, "capacity": str(capacity), "copy_count": copies}


def fcmap(id_, source, target, progress, rate, status="copying", restoring="no"):
    return {"id": id_, "name": f"fcmap{id_}", "source_vdisk_id": source, "target_vdisk_id": target,
            "status": status, "progress": str(progress), "copy_rate": str(rate), "restoring": restoring}


def sev(vid, used):
    return {"vdisk_id": vid, "copy_id": "0", "used_capacity": used}


@pytest.mark.parametrize("handle,uid", [
    ("SVC:60050760718186998000000000005E93", "60050760718186998000000000005E93"),
    ("SVC:12;60050768108101c7c0000000000005d9", "60050768108101C7C0000000000005D9"),
    ("SVC:0000020420400000:12;60050768108101C7C0000000000005D9", "60050768108101C7C0000000000005D9"),
    ("DS8K:0001", None), ("SVC:", None), ("", None), ("60050768108101C7C0000000000005D9", None),
])
def test_volume_handle_forms(handle, uid):
    assert parse_volume_handle(handle) == uid


@pytest.mark.parametrize("address,url", [
    ("10.0.0.5", "https://10.0.0.5:7443/rest/v1"), ("fs.example.com:8443", "https://fs.example.com:8443/rest/v1"),
    ("[fd00::5]:7443", "https://[fd00::5]:7443/rest/v1"), ("fd00::5", "https://[fd00::5]:7443/rest/v1"),
])
def test_management_addresses(address, url):
    assert base_url(address) == url


def backend(*arrays):
    accesses = tuple(ArrayAccess(name, addrs, None, None) for name, addrs in arrays)
    return FlashSystemBackend(FlashSystemSettings(arrays=accesses))


def test_pv_maps_to_the_array_by_address_and_to_the_vdisk_uid():
    b = backend(("fs-a", ("10.0.0.5", "10.0.0.6")), ("fs-b", ("fs-b.example.com:7443",)))
    ref = b.map_pv(pv_flashsystem("pv-1", "SVC:7;60050768108101C7C0000000000005D9", "10.0.0.6"))
    assert (ref.backend, ref.target, ref.volume) == ("flashsystem", "fs-a", "fs-a/60050768108101C7C0000000000005D9")
    ref = b.map_pv(pv_flashsystem("pv-2", "SVC:8;600507681081AAAA", "FS-B.example.com"))
    assert ref.target == "fs-b"
    assert b.map_pv(pv_flashsystem("pv-3", "SVC:9;600507681081BBBB", "192.0.2.1")) is None   # unknown array
    assert backend(("only", ("10.0.0.5",))).map_pv(pv_flashsystem("p", "SVC:1;AB", "192.0.2.1")).target == "only"
    not_ibm = pv_flashsystem("pv-4", "SVC:1;AB", "10.0.0.5")
    not_ibm["spec"]["csi"]["driver"] = "rbd.csi.ceph.com"
    assert b.map_pv(not_ibm) is None
    assert b.serves_provisioner("block.csi.ibm.com") and not b.serves_provisioner("vpc.block.csi.ibm.io")
    content = {"spec": {"driver": "block.csi.ibm.com"}, "status": {"snapshotHandle": "SVC:3;600507681081CCCC"}}
    assert backend(("only", ("10.0.0.5",))).map_snapshot_content(content).volume == "only/600507681081CCCC"


def test_used_bytes_thick_thin_and_data_reduction_pools():
    vdisks = parse_vdisks([vdisk("0", "U0", 64 * MiB), vdisk("1", "U1", 64 * MiB),
                           vdisk("2", "U2", 64 * MiB, copies="2"), vdisk("3", "U3", 32 * MiB)])
    se = parse_se_copies([sev("1", str(5 * MiB)), sev("2", str(7 * MiB)), sev("3", "")])
    vols = build_volumes("fs", vdisks, se, [], detail={"3": 3 * MiB})
    assert vols["fs/U0"].consumed_bytes == 64 * MiB                  # fully allocated: its capacity
    assert vols["fs/U1"].consumed_bytes == 5 * MiB                   # thin: what the array says it uses
    assert vols["fs/U2"].consumed_bytes == 64 * MiB + 7 * MiB        # mirrored: one thick + one thin copy
    assert vols["fs/U3"].consumed_bytes == 3 * MiB                   # DRP: from the detailed view
    assert "fs/U3" not in build_volumes("fs", vdisks, se, [], detail={})   # blank, no detail: absent
    assert all(v.provisioned_bytes == vdisks[k[-1]].capacity for k, v in vols.items())


def test_detailed_view_of_a_data_reduction_copy():
    doc = [{"id": "3", "capacity": "33554432", "vdisk_UID": "U3"},
           {"copy_id": "0", "used_capacity": "", "used_capacity_before_reduction": "3145728"}]
    assert parse_detail_used(doc) == 3 * MiB
    assert parse_detail_used([doc[0], {"copy_id": "0", "used_capacity": "1048576"}]) == MiB
    assert parse_detail_used([doc[0], {"copy_id": "0", "used_capacity": ""}]) is None
    with pytest.raises(BackendError, match="without copies"):
        parse_detail_used([doc[0]])


@pytest.mark.parametrize("reply,error", [
    ({"id": "0"}, "not a list"),
    ([vdisk("0", "U0", 1) | {"capacity": "1.00GB"}], "capacity"),        # forgot {"bytes": true}
    ([vdisk("0", "U0", 1) | {"capacity": 1024}], "capacity"),            # a number, not the array's string
    ([{"id": "0", "capacity": "1"}], "vdisk_UID"),
    (["0"], "not a list of objects"),
])
def test_lsvdisk_replies_that_are_wrong(reply, error):
    with pytest.raises(BackendError, match=error):
        parse_vdisks(reply)


def test_lsfcmap_replies_that_are_wrong():
    with pytest.raises(BackendError, match="progress"):
        parse_fcmaps([fcmap("0", "0", "1", 101, 50)])
    with pytest.raises(BackendError, match="copy_rate"):
        parse_fcmaps([fcmap("0", "0", "1", 10, 50) | {"copy_rate": ""}])
    with pytest.raises(BackendError, match="target_vdisk_id"):
        parse_fcmaps([{k: v for k, v in fcmap("0", "0", "1", 10, 50).items() if k != "target_vdisk_id"}])


def family(progress, rate=50, drift=4 * MiB):
    """A 40 MiB golden (thin) and one clone whose background copy is `progress`% done."""
    vdisks = parse_vdisks([vdisk("0", "G", 64 * MiB), vdisk("1", "C", 64 * MiB)])
    copied = 40 * MiB * progress // 100
    se = parse_se_copies([sev("0", str(40 * MiB)), sev("1", str(drift + copied))])
    vols = build_volumes("fs", vdisks, se, parse_fcmaps([fcmap("0", "0", "1", progress, rate)]), {})
    logical = logical_bytes(vols)
    return vols, family_numbers((vols[v].consumed_bytes, logical[v]) for v in ("fs/G", "fs/C"))


def test_flashcopy_family_efficiency_decays_with_background_copy_progress():
    vols, at0 = family(0)
    assert vols["fs/C"].parent == "fs/G"
    assert vols["fs/C"].copy.copy_rate == 50 and vols["fs/C"].copy.progress_ratio == 0
    # At 0%: 44 MiB stored for what would be 40 + 44 MiB as full copies.
    assert at0.consumed_bytes == 44 * MiB and at0.full_copy_bytes == 84 * MiB
    ratios = [family(p)[1].efficiency_ratio for p in (0, 25, 50, 75, 100)]
    assert ratios == sorted(ratios, reverse=True) and ratios[0] > 0.45
    assert ratios[-1] == 0.0                     # fully copied: nothing shared any more
    assert family(50)[1].full_copy_bytes == 84 * MiB       # the full-copy yardstick does not move


def test_snapshot_mapping_stays_copy_on_write_and_restores_are_not_parents():
    vdisks = parse_vdisks([vdisk("0", "G", 64 * MiB), vdisk("1", "S", 64 * MiB), vdisk("2", "R", 64 * MiB)])
    se = parse_se_copies([sev("0", str(40 * MiB)), sev("1", "0"), sev("2", str(64 * MiB))])
    maps = parse_fcmaps([fcmap("0", "0", "1", 0, 0), fcmap("1", "2", "0", 30, 50, restoring="yes")])
    vols = build_volumes("fs", vdisks, se, maps, {})
    assert vols["fs/S"].parent == "fs/G" and logical_bytes(vols)["fs/S"] == 40 * MiB
    assert vols["fs/G"].parent == ""             # the restore mapping does not make R its parent


def test_a_mapping_whose_source_vdisk_is_gone_says_so():
    vdisks = parse_vdisks([vdisk("2", "T", MiB)])
    vols = build_volumes("fs", vdisks, {}, parse_fcmaps([fcmap("0", "7", "2", 40, 50)]), {})
    assert (vols["fs/T"].parent, vols["fs/T"].parent_problem) == ("fs/vdisk-id:7", "flashcopy-source-missing")
    assert logical_bytes(vols)["fs/T"] is None, "what it still reads through the source cannot be counted"


def test_an_active_mapping_wins_over_a_finished_one_for_the_same_target():
    vdisks = parse_vdisks([vdisk("0", "A", MiB), vdisk("1", "B", MiB), vdisk("2", "T", MiB)])
    maps = parse_fcmaps([fcmap("0", "0", "2", 100, 50, status="idle_or_copied"), fcmap("1", "1", "2", 20, 50)])
    vols = build_volumes("fs", vdisks, {}, maps, {})
    assert vols["fs/T"].parent == "fs/B" and vols["fs/T"].copy.progress_ratio == 0.2


strings = st.one_of(st.text(max_size=8), st.integers(0, 2**40).map(str), st.sampled_from(["", "many", "yes", "²", "-1", "1.5"]))
row = st.dictionaries(st.sampled_from(["id", "name", "vdisk_UID", "capacity", "copy_count", "vdisk_id",
                                       "used_capacity", "source_vdisk_id", "target_vdisk_id", "status",
                                       "progress", "copy_rate", "restoring", "copy_id",
                                       "used_capacity_before_reduction"]),
                      st.one_of(strings, st.none(), st.integers(), st.lists(strings, max_size=2)), max_size=12)
reply = st.one_of(st.lists(st.one_of(row, strings), max_size=5), row, strings, st.none())


@given(reply, reply, reply, reply)
def test_any_reply_gives_volumes_or_a_clean_error(vd, se, fc, det):
    try:
        vdisks, copies, maps = parse_vdisks(vd), parse_se_copies(se), parse_fcmaps(fc)
        detail = {vid: parse_detail_used(det) for vid in list(vdisks)[:1]}
        vols = build_volumes("fs", vdisks, copies, maps, detail)
    except BackendError:
        return
    for v in vols.values():
        assert v.consumed_bytes >= 0 and v.provisioned_bytes >= 0
        assert v.copy is None or 0 <= v.copy.progress_ratio <= 1


UUID = "0b6c3f5e-8a53-4d0e-b3a2-9d0b2f7a1c11"
HASHED = "843TbHsx2nUjNonXnDJWhtFYRn1nCr6wx2fTPt4FYNRh"    # base58(sha256("snapshot-" + UUID)), as the driver hashes


@pytest.mark.parametrize("name,cow,mark", [
    (f"CSI_pvc-{UUID}", False, ("csi", "volume")),
    (f"CSI_snapshot-{UUID}", True, ("csi", "snapshot")),
    (f"CSI_snapshot-{UUID}", False, ("csi", "snapshot")),        # the name says it, mapping or not
    (f"team_x_pvc-{UUID}", False, ("csi", "volume")),            # a prefix may hold "_"
    (f"CSI_{HASHED}", True, ("csi", "snapshot")), (f"CSI_{HASHED}", False, ("csi", "volume")),
    (f"other_pvc-{UUID}", False, ("", "")), (f"pvc-{UUID}", False, ("", "")), (f"_pvc-{UUID}", False, ("", "")),
    (f"CSI_pvc-{UUID.upper()}", False, ("", "")), (f"CSI_pvc-{UUID}-x", False, ("", "")), ("CSI_", False, ("", "")),
    (f"CSI_{HASHED}0OIl", False, ("", "")), ("", False, ("", "")), (f"CSI_volume-{UUID}", False, ("", "")),
])
def test_the_driver_naming_is_the_only_proof(name, cow, mark):
    from exporter.backends.flashsystem.backend import CsiNaming
    assert CsiNaming(("CSI", "team_x"), ("CSI",)).mark(name, cow) == mark


def test_a_prefix_proves_only_the_kind_it_is_configured_for():
    from exporter.backends.flashsystem.backend import CsiNaming
    naming = CsiNaming(volume_prefixes=("vol",), snapshot_prefixes=("snap",))
    assert naming.mark(f"vol_pvc-{UUID}", False) == ("csi", "volume")
    assert naming.mark(f"vol_snapshot-{UUID}", True) == ("", "")
    assert naming.mark(f"snap_{HASHED}", True) == ("csi", "snapshot")
    assert naming.mark(f"snap_{HASHED}", False) == ("", "")     # a hashed volume name under a snapshot prefix
    assert CsiNaming((), ()).mark(f"CSI_pvc-{UUID}", False) == ("", "")


@given(st.text(max_size=80), st.booleans())
def test_any_name_is_marked_only_when_it_is_prefix_and_request(name, cow):
    from exporter.backends.flashsystem.backend import CsiNaming
    made_by, kind = CsiNaming().mark(name, cow)
    if made_by:
        assert name.startswith("CSI_") and kind in ("volume", "snapshot")
    else:
        assert kind == ""


def test_build_volumes_marks_snapshots_and_leaves_unnamed_rows_unmarked():
    rows = [vdisk("0", "U0", 64 * MiB), {**vdisk("1", "U1", 64 * MiB), "name": f"CSI_{HASHED}"},
            {**vdisk("2", "U2", 64 * MiB), "name": f"CSI_pvc-{UUID}"}, {**vdisk("3", "U3", 64 * MiB), "name": None}]
    rows[0].pop("name")
    vols = build_volumes("fs", parse_vdisks(rows), {}, parse_fcmaps([fcmap("0", "0", "1", 0, 0)]), {})
    assert {v: (x.made_by, x.csi_kind) for v, x in vols.items()} == {
        "fs/U0": ("", ""), "fs/U1": ("csi", "snapshot"), "fs/U2": ("csi", "volume"), "fs/U3": ("", "")}
    # The driver names a volume after the PV it is made for, pvc-<PVC uid>: while that PVC waits for
    # it, the vdisk is being provisioned, not leaked (a hashed name no longer says).
    from exporter.model.unclaimed import reasons
    assert {v: x.request for v, x in vols.items()} == {"fs/U0": "", "fs/U1": "", "fs/U2": f"pvc-{UUID}", "fs/U3": ""}
    assert reasons(vols, set(), 0.0, waiting={UUID})["fs/U2"] == "provisioning"
    assert reasons(vols, set(), 0.0)["fs/U2"] == "leaked"


def test_a_snapshot_content_maps_to_the_array_holding_its_vdisk_when_there_are_several():
    from exporter.backends.base import Volume
    b = backend(("fs1", ("10.0.0.1",)), ("fs2", ("10.0.0.2",)))
    content = {"spec": {"driver": "block.csi.ibm.com"}, "status": {"snapshotHandle": "SVC:3;600507681081001d0000000000000003"}}
    assert b.map_snapshot_content(content) is None                  # no array says it holds it yet
    uid = "600507681081001D0000000000000003"
    b.states()["fs2"].volumes = {f"fs2/{uid}": Volume(f"fs2/{uid}", "fs2", 1, 1)}
    ref = b.map_snapshot_content(content)
    assert (ref.target, ref.volume) == ("fs2", f"fs2/{uid}")
    # A PV whose address no array is configured with (a DNS name for an IP) maps by its vdisk UID, which
    # is unique across arrays; one no array holds either is no array's.
    assert b.map_pv(pv_flashsystem("pv", "SVC:3;" + uid, "10.9.9.9")).volume == f"fs2/{uid}"
    assert b.map_pv(pv_flashsystem("pv", "SVC:3;600507681081001D0000000000000004", "10.9.9.9")) is None
