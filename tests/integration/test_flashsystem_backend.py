"""The FlashSystem backend over real HTTPS against the array double (tests/support/flashsystem.py):
TLS verification, login and token expiry, bounded failures, and FlashCopy progress."""

import dataclasses
import time

import pytest

from exporter.backends.flashsystem.backend import FlashSystemBackend, FlashSystemSettings, load_array
from exporter.model.efficiency import family_numbers, logical_bytes
from tests.support.flashsystem import FlashSystemDouble, copy_rate_bytes_per_second

MiB = 2**20


@pytest.fixture
def array(tmp_path):
    fs = FlashSystemDouble(tmp_path)
    fs.create_vdisk("golden", 64 * MiB)
    fs.write("golden", 40 * MiB)
    yield fs
    fs.close()


def make_backend(fs, tmp_path, timeout=5.0, **access_changes):
    access = load_array("fs1", fs.write_secret_dir(tmp_path / "secret"))
    if access_changes:
        access = dataclasses.replace(access, **access_changes)
    return FlashSystemBackend(FlashSystemSettings(arrays=(access,), timeout_seconds=timeout))


async def refreshed(backend):
    await backend.refresh()
    return backend.states()["fs1"]


async def test_clone_progress_shows_as_growing_bytes_and_falling_efficiency(array, tmp_path):
    clone = array.clone_like_csi("golden", "vm-1", copy_rate=50)
    array.write("vm-1", 4 * MiB)
    b = make_backend(array, tmp_path)
    try:
        ratios, consumed = [], []
        for _ in range(4):
            st = await refreshed(b)
            assert st.up, st.error
            vols = st.volumes
            c = vols[f"fs1/{clone.uid}"]
            assert c.parent == f"fs1/{array.vdisks['0'].uid}" and c.copy.copy_rate == 50
            assert c.consumed_bytes == array.used_bytes(clone.id)
            consumed.append(c.consumed_bytes)
            logical = logical_bytes(vols)
            ratios.append(family_numbers((vols[v].consumed_bytes, logical[v])
                                         for v in (c.parent, c.volume)).efficiency_ratio)
            array.advance(64 * MiB / copy_rate_bytes_per_second(50) / 3)     # a third of the copy each time
        assert consumed == sorted(consumed) and consumed[0] == 4 * MiB and consumed[-1] == 44 * MiB
        assert ratios == sorted(ratios, reverse=True)
        assert ratios[0] > 0.45 and ratios[-1] == 0.0, ratios
        assert array.requests.count("lsfcmap") == 4 and "lsvdisk" in array.requests
    finally:
        await b.close()


async def test_tls_is_verified_unless_switched_off(array, tmp_path):
    b = make_backend(array, tmp_path, ca_file=None)          # system CAs: the array's cert is not among them
    try:
        st = await refreshed(b)
        assert not st.up and "certificate" in st.error and not st.volumes
    finally:
        await b.close()
    b = make_backend(array, tmp_path, ca_file=None, insecure=True)
    try:
        assert (await refreshed(b)).up
    finally:
        await b.close()


async def test_wrong_password_is_a_clean_error_and_never_logged(array, tmp_path, capsys):
    access = load_array("fs1", array.write_secret_dir(tmp_path / "s", password="not-the-password"))
    b = FlashSystemBackend(FlashSystemSettings(arrays=(access,), timeout_seconds=5))
    try:
        st = await refreshed(b)
        assert not st.up and st.error.startswith("authentication failed: HTTP 403")
        assert "not-the-password" not in st.error and "not-the-password" not in capsys.readouterr().out
        # The Secret is rotated to the right password: the next refresh reads it and logs in.
        (tmp_path / "s" / "password").write_text(array.password)
        assert (await refreshed(b)).up
    finally:
        await b.close()


async def test_expired_token_means_one_new_login(array, tmp_path):
    array.token_ttl = 60
    b = make_backend(array, tmp_path)
    try:
        assert (await refreshed(b)).up
        client = b._clients["fs1"]
        assert client.logins == 1
        assert (await refreshed(b)).up and client.logins == 1      # the token is reused
        array.advance(61)
        st = await refreshed(b)
        assert st.up and client.logins == 2
    finally:
        await b.close()


async def test_server_errors_garbage_and_missing_fields_take_the_array_down_until_it_answers(array, tmp_path):
    b = make_backend(array, tmp_path)
    try:
        assert (await refreshed(b)).up
        array.faults.errors.append((500, "CMMVC5700E The parameter list is not valid."))
        st = await refreshed(b)
        assert not st.up and "HTTP 500" in st.error and "CMMVC5700E" in st.error and st.volumes == {}
        assert (await refreshed(b)).up and st.failures == 1
        array.faults.garbage = 1
        st = await refreshed(b)
        assert not st.up and "not JSON" in st.error
        array.faults.fields_missing = 1
        st = await refreshed(b)
        assert not st.up and "capacity" in st.error
        assert (await refreshed(b)).up
    finally:
        await b.close()


async def test_rate_limit_gets_one_polite_retry(array, tmp_path):
    b = make_backend(array, tmp_path)
    try:
        array.faults.errors.append((429, "Too many requests"))
        assert (await refreshed(b)).up
        array.faults.errors += [(429, "Too many requests")] * 2
        st = await refreshed(b)
        assert not st.up and "HTTP 429" in st.error
    finally:
        await b.close()


async def test_slow_array_times_out_within_the_bound(array, tmp_path):
    b = make_backend(array, tmp_path, timeout=0.5)
    try:
        array.faults.delay = 2.0
        start = time.monotonic()
        st = await refreshed(b)
        assert time.monotonic() - start < 1.5
        assert not st.up and "no answer within 0.5s" in st.error
        array.faults.delay = 0
        assert (await refreshed(b)).up
    finally:
        await b.close()


async def test_unreachable_first_address_falls_back_to_the_next(array, tmp_path):
    from tests.support.process import free_port
    b = make_backend(array, tmp_path, addresses=(f"127.0.0.1:{free_port()}", array.address))
    try:
        assert (await refreshed(b)).up
    finally:
        await b.close()
    b = make_backend(array, tmp_path, addresses=(f"127.0.0.1:{free_port()}",))
    try:
        st = await refreshed(b)
        assert not st.up and "no management address reachable" in st.error
    finally:
        await b.close()


async def test_data_reduction_volumes_get_a_detailed_look_only_when_used(array, tmp_path):
    drp = array.create_vdisk("drp-golden", 64 * MiB, pool="drp")
    array.write("drp-golden", 24 * MiB)
    other = array.create_vdisk("unused-drp", 64 * MiB, pool="drp")
    b = make_backend(array, tmp_path)
    try:
        # Native mode (nothing from Kubernetes): every volume is wanted.
        st = await refreshed(b)
        assert st.volumes[f"fs1/{drp.uid}"].consumed_bytes == 24 * MiB
        assert f"fs1/{other.uid}" in st.volumes
        # With Kubernetes: only the volumes PVs use.
        from tests.support.objects import pv_flashsystem
        b.want([pv_flashsystem("pv-1", array.handle(drp), "127.0.0.1")])
        array.requests.clear()
        st = await refreshed(b)
        assert array.requests.count("lsvdisk") == 2                  # bulk + one detailed
        assert f"fs1/{drp.uid}" in st.volumes and f"fs1/{other.uid}" not in st.volumes
        # A restore from a snapshot of the golden: the whole chain gets its detailed look.
        snap = array.snapshot_like_csi("drp-golden", "drp-snap")
        restored = array.clone_like_csi("drp-snap", "drp-restored")
        b.want([pv_flashsystem("pv-2", array.handle(restored), "127.0.0.1")])
        array.requests.clear()
        st = await refreshed(b)
        assert array.requests.count("lsvdisk") == 4                  # bulk + restored, snapshot, golden
        assert {f"fs1/{v.uid}" for v in (drp, snap, restored)} <= set(st.volumes)
        assert st.volumes[f"fs1/{restored.uid}"].parent == f"fs1/{snap.uid}"
    finally:
        await b.close()


def test_any_http_reply_leaves_the_array_up_or_cleanly_down(tmp_path):
    """Hypothesis over the wire: whatever status and body the array sends to a command, the
    refresh ends with the target up or down with an error, never an exception, never stale bytes."""
    import asyncio
    import json as jsonlib

    from hypothesis import given, settings
    from hypothesis import strategies as st

    fs = FlashSystemDouble(tmp_path)
    fs.create_vdisk("golden", 64 * MiB)
    fs.write("golden", 8 * MiB)
    fs.clone_like_csi("golden", "vm-1")
    b = make_backend(fs, tmp_path)
    loop = asyncio.new_event_loop()
    leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.text(max_size=6))
    doc = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.sampled_from(
                                                         ["id", "vdisk_UID", "capacity", "progress", "copy_rate",
                                                          "source_vdisk_id", "target_vdisk_id", "status",
                                                          "vdisk_id", "used_capacity", "token"]), inner, max_size=6)),
                       max_leaves=15)
    body = st.one_of(doc.map(jsonlib.dumps), st.text(max_size=30))
    status = st.sampled_from([200, 200, 200, 400, 401, 403, 404, 409, 429, 500, 502, 503])

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(status, body), min_size=1, max_size=4))
    def check(replies):
        fs.faults.errors[:] = list(replies)
        loop.run_until_complete(b.refresh())
        st_ = b.states()["fs1"]
        assert st_.up or (st_.error and st_.volumes == {})
        fs.faults.errors.clear()

    try:
        check()
        loop.run_until_complete(b.refresh())
        assert b.states()["fs1"].up            # and it recovers once the array talks sense again
    finally:
        loop.run_until_complete(b.close())
        loop.close()
        fs.close()


async def test_what_the_driver_made_carries_its_mark_with_or_without_a_pv(array, tmp_path):
    """Every vdisk is in the state, claimed or not; the driver's naming (`<prefix>_pvc-<uuid>`,
    `<prefix>_snapshot-<uuid>`, CSI by default) is the only proof that our driver made one."""
    from exporter.backends.flashsystem.backend import CsiNaming
    from tests.support.objects import pv_flashsystem
    claimed = array.volume_like_csi(array.csi_name(), 64 * MiB)
    leaked = array.volume_like_csi(array.csi_name(), 64 * MiB)             # its PV deleted, the vdisk kept
    array.write(leaked.name, 6 * MiB)
    snap = array.snapshot_like_csi("golden", array.csi_name("snapshot"))     # its VolumeSnapshotContent gone
    team = array.clone_like_csi("golden", array.csi_name(prefix="team-a"))   # a class with volume_name_prefix
    other = array.volume_like_csi(array.csi_name(prefix="othercluster"), 64 * MiB)
    drp = array.volume_like_csi(array.csi_name(), 64 * MiB, pool="drp")     # leaked in a data reduction pool
    array.write(drp.name, 10 * MiB)
    odd = [array.create_vdisk(name, 64 * MiB) for name in (
        "CSI_pvc-not-a-uuid", "CSI_pvc-" + "A" * 8 + "-0000-0000-0000-" + "0" * 12, "pvc-" + str(leaked.uid),
        f"CSI_{array.csi_name()}x", "CSI_", "_pvc-00000000-0000-0000-0000-000000000000", "CSI_snapshot",
        "team-a_snapshot-00000000-0000-0000-0000-000000000000")]              # team-a names volumes only
    access = load_array("fs1", array.write_secret_dir(tmp_path / "secret"))
    b = FlashSystemBackend(FlashSystemSettings(arrays=(access,), timeout_seconds=5,
                                               naming=CsiNaming(("CSI", "team-a"), ("CSI",))))
    try:
        b.want([pv_flashsystem("pv-1", array.handle(claimed), "127.0.0.1")])     # Kubernetes knows one of them
        st = await refreshed(b)
        assert st.up, st.error
        mark = {vid: (v.made_by, v.csi_kind) for vid, v in st.volumes.items()}
        uid = {vd.name: f"fs1/{vd.uid}" for vd in array.vdisks.values()}
        assert mark[uid[claimed.name]] == mark[uid[leaked.name]] == mark[uid[drp.name]] == ("csi", "volume")
        assert mark[uid[snap.name]] == ("csi", "snapshot")
        assert mark[uid[team.name]] == ("csi", "volume")
        assert mark[uid["golden"]] == mark[uid[other.name]] == ("", "")
        assert all(mark[uid[vd.name]] == ("", "") for vd in odd)
        assert st.volumes[uid[leaked.name]].consumed_bytes == 6 * MiB
        # The data reduction pool's leak got its detailed look though no PV wants it.
        assert st.volumes[uid[drp.name]].consumed_bytes == 10 * MiB
        assert st.volumes[uid[snap.name]].parent == uid["golden"]
        assert all(v.created == 0.0 for v in st.volumes.values())        # the array does not say
        # With the driver's defaults only, team-a's clone proves nothing.
        b2 = make_backend(array, tmp_path)
        st2 = await refreshed(b2)
        assert (st2.volumes[uid[team.name]].made_by, st2.volumes[uid[snap.name]].csi_kind) == ("", "snapshot")
        await b2.close()
    finally:
        await b.close()


async def test_with_two_arrays_a_pv_naming_neither_address_is_mapped_by_its_vdisk_uid(array, tmp_path):
    """A PV's array_address may name an array otherwise than it is configured (a DNS name for an IP):
    with several arrays its vdisk is found by UID in the array whose last refresh holds it, so the
    vdisk is claimed, never leaked; until that refresh the PV maps to nothing and is tried again."""
    from exporter.inventory.pipeline import Inventory, everything
    from tests.support.inventory import objects
    from tests.support.objects import pv_flashsystem
    (tmp_path / "second").mkdir()
    second = FlashSystemDouble(tmp_path / "second")
    try:
        claimed = array.volume_like_csi(array.csi_name(), 64 * MiB)
        leaked = second.volume_like_csi(second.csi_name(), 64 * MiB)
        arrays = (load_array("fs1", array.write_secret_dir(tmp_path / "s1")),
                  load_array("fs2", second.write_secret_dir(tmp_path / "s2")))
        b = FlashSystemBackend(FlashSystemSettings(arrays=arrays, timeout_seconds=5))
        pv = pv_flashsystem("pv-1", array.handle(claimed), "flash-a.storage.example")
        assert b.map_pv(pv) is None                                 # nothing read yet: no array holds it
        inv = Inventory([b], kubernetes=True)
        inv.update(everything(objects(pv)), b.states())
        await b.refresh()
        assert all(st.up for st in b.states().values()), b.states()
        assert b.map_pv(pv).volume == f"fs1/{claimed.uid}"
        inv.update({}, {"flashsystem": {n: dataclasses.replace(st) for n, st in b.states().items()}})
        # The claimed vdisk is no row; the other array's CSI vdisk is leaked, fs1's golden (no mark) unknown.
        assert {(r.volume.volume, r.reason) for r in inv.view().unclaimed} == {
            (f"fs2/{leaked.uid}", "leaked"), (f"fs1/{array.vdisks['0'].uid}", "unknown")}
        await b.close()
    finally:
        second.close()
