"""Space no PV owns: each reason from the storage's facts and the clone chains (model.unclaimed), the
stage that keeps them up to date (inventory.unclaimed) and the lines the collector renders."""

import dataclasses
from pathlib import Path

import yaml

from exporter.backends.base import TargetState, Volume, VolumeRef
from exporter.backends.vmware.backend import VmwareBackend
from exporter.collectors import unclaimed as collector
from exporter.inventory import unclaimed as inventory_unclaimed
from exporter.inventory.dirty import Dirty
from exporter.inventory.pipeline import Inventory, everything
from exporter.kube.packed import pack
from exporter.kube.resources import PV, PVC, VOLUMESNAPSHOTCONTENT
from exporter.kube.store import slim
from exporter.model.unclaimed import RECLAIMABLE, UnclaimedRow, UnclaimedSettings, UnclaimedSum, reasons, request_uid
from exporter.summary.tables import render
from tests.support.inventory import objects

NOW = 1_800_000_000.0
HOUR = 3600.0


def vol(name: str, parent: str = "", own: int = 1, **kw) -> Volume:
    link = name.startswith("csi-snap-") or name.endswith("-temp")
    return Volume(f"p/{name}", "p", own, 64, parent=f"p/{parent}" if parent else "", link=link, **kw)


def vols(*vs: Volume) -> dict[str, Volume]:
    return {v.volume: v for v in vs}


def ids(*names: str) -> set[str]:
    return {f"p/{n}" for n in names}


def short(found: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("p/"): v for k, v in found.items()}


def test_each_reason_from_the_volumes_own_facts():
    v = vols(vol("claimed", made_by="csi", csi_kind="volume"),
             vol("leaked", made_by="csi", csi_kind="volume"),
             vol("other", made_by="foreign", csi_kind="volume"),
             vol("plain"),
             vol("csi-snap-1", made_by="csi", csi_kind="snapshot"),
             vol("csi-vol-2-temp", parent="claimed", made_by="csi", csi_kind="temp", created=NOW - 2 * HOUR),
             vol("csi-vol-3-temp", parent="claimed", made_by="csi", csi_kind="temp", created=NOW - 60),
             vol("gone", trashed=True, trash_expiry=NOW),
             vol("disk.vmdk", unreferenced="no-vm-references"))
    assert short(reasons(v, ids("claimed"), NOW)) == {
        "leaked": "leaked", "other": "foreign", "plain": "unknown", "csi-snap-1": "orphan-snapshot",
        "csi-vol-2-temp": "stale-temp", "csi-vol-3-temp": "clone-in-progress", "gone": "trash",
        "disk.vmdk": "no-vm-references"}


def test_the_temp_threshold_is_an_option_and_an_undated_temp_ages_from_when_it_was_first_seen():
    v = vols(vol("src"), vol("csi-vol-2-temp", parent="src", csi_kind="temp", created=NOW - 600),
             vol("csi-vol-4-temp", parent="src", csi_kind="temp"))
    quick = UnclaimedSettings(temp_age_seconds=300)
    assert short(reasons(v, ids("src"), NOW, quick, {"p/csi-vol-4-temp": NOW - 200})) == {
        "csi-vol-2-temp": "stale-temp", "csi-vol-4-temp": "clone-in-progress"}
    assert short(reasons(v, ids("src"), NOW, quick, {"p/csi-vol-4-temp": NOW - 400}))["csi-vol-4-temp"] == "stale-temp"


UID = "0f3c1c8e-6a47-4d0e-9a4e-2b1d5a7c9e01"


def test_a_volume_made_for_a_pvc_that_waits_is_provisioning_never_leaked():
    """ceph-csi makes the image (and a clone's temp) before the provisioner makes the PV, and holds a
    clone back until a deep chain is flattened: while the PVC its request names exists unbound, its
    volume is provisioning, its temp a clone in progress at any age, and the golden above them held."""
    req = f"pvc-{UID}"
    v = vols(vol("golden", made_by="csi", csi_kind="volume", trashed=True),
             vol("csi-vol-1-temp", parent="golden", made_by="csi", csi_kind="temp", created=NOW - 5 * HOUR, request=req),
             vol("csi-vol-1", parent="csi-vol-1-temp", made_by="csi", csi_kind="volume", request=req),
             vol("csi-vol-2-temp", parent="golden", made_by="csi", csi_kind="temp", created=NOW - 5 * HOUR, request=req),
             vol("other", made_by="csi", csi_kind="volume", request="pvc-11111111-2222-3333-4444-555555555555"))
    assert short(reasons(v, set(), NOW, waiting={UID})) == {
        "golden": "held-by-clones", "csi-vol-1": "provisioning", "csi-vol-2-temp": "clone-in-progress",
        "other": "leaked"}
    # The PVC gone (or bound elsewhere): what is left of its request is leaked, its old temp stale.
    assert short(reasons(v, set(), NOW)) == {
        "golden": "trash", "csi-vol-1": "leaked", "csi-vol-1-temp": "leaked", "csi-vol-2-temp": "stale-temp",
        "other": "leaked"}
    # Without the claims (native mode), whether a PVC waits decides nothing.
    assert "csi-vol-1" not in reasons(v, None, NOW, waiting={UID})
    assert request_uid(req) == request_uid(f"vol-{UID}") == UID
    assert request_uid(UID) == request_uid(f"pvc-{UID[:-1]}") == request_uid(f"pvc_{UID}") == ""


def test_the_stage_follows_the_pvcs_that_wait():
    """A PVC created (not bound yet) turns its volume from leaked to provisioning; bound to a PV that maps
    to it, claimed; a PVC deleted before any PV: leaked again. The stage reads the PVC's uid, which the
    watch cache keeps."""
    backend = FakeBackend(vols(vol("csi-vol-1", own=5, made_by="csi", csi_kind="volume", request=f"pvc-{UID}")))
    inv = Inventory([backend], kubernetes=True)
    states = backend.snapshot()
    inv.update(everything(objects()), states)
    assert [(r.volume.volume, r.reason) for r in inv.view().unclaimed] == [("p/csi-vol-1", "leaked")]
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "c", "namespace": "vms", "uid": UID, "resourceVersion": "1"},
             "spec": {"storageClassName": "rbd"}, "status": {"phase": "Pending"}}
    assert slim(claim, PVC.name)["metadata"]["uid"] == UID
    dirty = inv.update({(PVC.name, ("vms", "c")): pack(slim(claim, PVC.name))}, states)
    assert [(r.volume.volume, r.reason) for r in inv.view().unclaimed] == [("p/csi-vol-1", "provisioning")]
    assert dirty.unclaimed_sums == {("fake", "p", "leaked"), ("fake", "p", "provisioning")}
    bound = {**claim, "spec": {**claim["spec"], "volumeName": f"pvc-{UID}"}}
    inv.update({(PV.name, ("", f"pvc-{UID}")): pack(slim(pv(f"pvc-{UID}", "p/csi-vol-1"), PV.name)),
                (PVC.name, ("vms", "c")): pack(slim(bound, PVC.name))}, states)
    assert inv.view().unclaimed == []
    inv.update({(PV.name, ("", f"pvc-{UID}")): None, (PVC.name, ("vms", "c")): pack(slim(claim, PVC.name))}, states)
    assert [r.reason for r in inv.view().unclaimed] == ["provisioning"]
    inv.update({(PVC.name, ("vms", "c")): None}, states)
    assert [r.reason for r in inv.view().unclaimed] == ["leaked"]


def test_a_trashed_golden_with_live_clones_is_held_and_its_intermediates_are_claimed_through_them():
    v = vols(vol("golden", trashed=True, own=100, made_by="csi", csi_kind="volume"),
             vol("csi-snap-1", parent="golden", made_by="csi", csi_kind="snapshot"),
             vol("restore", parent="csi-snap-1", made_by="csi", csi_kind="volume"),
             vol("csi-vol-5-temp", parent="golden", made_by="csi", csi_kind="temp", created=NOW - 9 * HOUR),
             vol("clone", parent="csi-vol-5-temp", made_by="csi", csi_kind="volume"))
    assert short(reasons(v, ids("restore", "clone"), NOW)) == {"golden": "held-by-clones"}
    # The clones deleted too (their PVs gone, images in the trash): everything is reclaimable.
    gone = vols(*(dataclasses.replace(x, trashed=x.volume.endswith(("restore", "clone")) or x.trashed)
                  for x in v.values()))
    assert short(reasons(gone, set(), NOW)) == {"golden": "trash", "restore": "trash", "clone": "trash",
                                                "csi-snap-1": "orphan-snapshot", "csi-vol-5-temp": "stale-temp"}


def test_a_leaked_or_unknown_volume_above_what_must_stay_is_held_never_leaked():
    v = vols(vol("leaked-golden", made_by="csi", csi_kind="volume"),
             vol("clone", parent="leaked-golden", made_by="csi", csi_kind="volume"),
             vol("old", made_by="csi", csi_kind="volume"),
             vol("their-clone", parent="old", made_by="foreign"),
             vol("unmarked-base", made_by="csi", csi_kind="volume"),
             vol("unmarked", parent="unmarked-base"))
    assert short(reasons(v, ids("clone"), NOW)) == {
        "leaked-golden": "held-by-clones", "old": "held-by-clones", "their-clone": "foreign",
        "unmarked-base": "held-by-clones", "unmarked": "unknown"}


def test_storage_side_only_without_the_claims():
    v = vols(vol("golden", trashed=True), vol("clone", parent="golden"),
             vol("gone", trashed=True, trash_expiry=NOW + 60),
             vol("leaked", made_by="csi", csi_kind="volume"), vol("plain"),
             vol("csi-snap-1", made_by="csi", csi_kind="snapshot"),
             vol("theirs", made_by="foreign", trashed=True),
             vol("csi-vol-2-temp", parent="plain", csi_kind="temp", created=NOW - 2 * HOUR),
             vol("csi-vol-3-temp", parent="plain", csi_kind="temp", created=NOW - 2 * HOUR),
             vol("done", parent="csi-vol-3-temp"),
             vol("disk.vmdk", unreferenced="no-vm-references"))
    assert short(reasons(v, None, NOW)) == {"golden": "held-by-clones", "gone": "trash", "theirs": "foreign",
                                            "csi-vol-2-temp": "stale-temp", "disk.vmdk": "no-vm-references"}


def test_chains_with_a_cycle_or_a_missing_parent_end():
    v = vols(vol("a", parent="b", trashed=True), vol("b", parent="a", trashed=True),
             vol("orphan", parent="elsewhere", made_by="csi", csi_kind="volume"))
    assert short(reasons(v, set(), NOW)) == {"a": "trash", "b": "trash", "orphan": "leaked"}


# -- the inventory stage ------------------------------------------------------------------------
class FakeBackend:
    """One target whose PVs name their volume in the handle."""
    name, refresh_interval, unshared_reason = "fake", 60.0, "flattened"

    def __init__(self, volumes: dict[str, Volume]) -> None:
        self.volumes = volumes

    def map_pv(self, pv: dict) -> VolumeRef | None:
        return VolumeRef("fake", "p", pv["spec"]["csi"]["volumeHandle"])

    def map_snapshot_content(self, content: dict) -> VolumeRef | None:
        return VolumeRef("fake", "p", content["status"]["snapshotHandle"])

    def snapshot(self) -> dict[str, dict[str, TargetState]]:
        state = TargetState("p")
        state.succeeded(self.volumes, 0.1)
        return {"fake": {"p": state}}


def pv(name: str, image: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"csi": {"driver": "fake", "volumeHandle": image}}}


def content(name: str, image: str) -> dict:
    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent", "metadata": {"name": name},
            "spec": {"driver": "fake"}, "status": {"snapshotHandle": image}}


def test_the_stage_follows_pvs_and_reports_nothing_needing_them_while_they_are_not_all_known():
    backend = FakeBackend(vols(vol("a", own=5, made_by="csi", csi_kind="volume"),
                               vol("b", own=7, made_by="csi", csi_kind="volume"),
                               vol("csi-snap-1", own=3, made_by="csi", csi_kind="snapshot"),
                               vol("gone", own=11, trashed=True, trash_expiry=NOW)))
    inv = Inventory([backend], kubernetes=True)
    states = backend.snapshot()
    inv.update(everything(objects(pv("pv-a", "p/a"), pv("pv-b", "p/b"), content("c-1", "p/csi-snap-1"))), states)
    assert [(r.volume.volume, r.reason) for r in inv.view().unclaimed] == [("p/gone", "trash")]
    inv.update({(VOLUMESNAPSHOTCONTENT.name, ("", "c-1")): None}, states)
    assert [(r.volume.volume, r.reason) for r in inv.view().unclaimed] == [
        ("p/csi-snap-1", "orphan-snapshot"), ("p/gone", "trash")]
    dirty = inv.update({(PV.name, ("", "pv-b")): None}, states)
    assert dirty.unclaimed == {(0, "p/b")} and dirty.unclaimed_sums == {("fake", "p", "leaked")}
    assert inv.view().unclaimed_sums == [UnclaimedSum("fake", "p", "leaked", 7, 1),
                                         UnclaimedSum("fake", "p", "orphan-snapshot", 3, 1),
                                         UnclaimedSum("fake", "p", "trash", 11, 1)]
    # The PV watch failed: leaked is not told, the trash still is.
    inv.update({}, states, claims_complete=False)
    assert [(r.volume.volume, r.reason) for r in inv.view().unclaimed] == [("p/gone", "trash")]
    inv.update({}, states, claims_complete=True)
    assert len(inv.view().unclaimed) == 3


def test_a_refresh_that_moved_only_bytes_updates_rows_and_sums_without_redoing_the_reasons(monkeypatch):
    backend = FakeBackend(vols(vol("a", own=5, made_by="csi", csi_kind="volume"),
                               vol("b", own=7, made_by="csi", csi_kind="volume")))
    inv = Inventory([backend], kubernetes=True)
    inv.update(everything(objects(pv("pv-a", "p/a"))), backend.snapshot())
    assert inv.view().unclaimed_sums == [UnclaimedSum("fake", "p", "leaked", 7, 1)]
    calls = []
    monkeypatch.setattr(inventory_unclaimed, "reasons", lambda *a, **k: calls.append(a) or {})
    backend.volumes = {**backend.volumes, "p/a": vol("a", own=6, made_by="csi", csi_kind="volume"),
                       "p/b": vol("b", own=9, made_by="csi", csi_kind="volume")}
    dirty = inv.update({}, backend.snapshot())
    assert not calls, "only bytes moved: no reason is redone"
    assert dirty.unclaimed == {(0, "p/b")} and dirty.unclaimed_sums == {("fake", "p", "leaked")}
    assert [(r.volume.volume, r.volume.consumed_bytes) for r in inv.view().unclaimed] == [("p/b", 9)]
    assert inv.view().unclaimed_sums == [UnclaimedSum("fake", "p", "leaked", 9, 1)]
    # A fact a reason is drawn from moved (b went to the trash): redone.
    backend.volumes = {**backend.volumes, "p/b": vol("b", own=9, made_by="csi", csi_kind="volume", trashed=True)}
    inv.update({}, backend.snapshot())
    assert len(calls) == 1


def test_native_mode_gives_storage_side_reasons_only():
    backend = FakeBackend(vols(vol("a", made_by="csi", csi_kind="volume"), vol("gone", trashed=True)))
    inv = Inventory([backend], kubernetes=False)
    inv.update({}, backend.snapshot())
    assert [(r.volume.volume, r.reason) for r in inv.view().unclaimed] == [("p/gone", "trash")]


def test_a_backend_whose_volumes_no_pv_maps_to_gives_only_what_its_storage_says():
    # VMware: a VM's disk layers have no PV; only a disk file no VM names is space no one owns.
    backend = FakeBackend(vols(vol("[ds] vm1/vm1.vmdk", own=5), vol("[ds] old/old.vmdk", own=9, unreferenced="unreferenced-disk")))
    backend.pv_owned = False
    inv = Inventory([backend], kubernetes=True)
    inv.update(everything(objects(pv("pv-a", "p/elsewhere"))), backend.snapshot())
    assert [(r.volume.volume, r.reason) for r in inv.view().unclaimed] == [("p/[ds] old/old.vmdk", "unreferenced-disk")]
    assert VmwareBackend.pv_owned is False


def test_a_clone_in_progress_turns_stale_with_time_alone():
    backend = FakeBackend(vols(vol("src"), vol("csi-vol-1-temp", parent="src", csi_kind="temp", created=NOW)))
    inv = Inventory([backend], kubernetes=True, unclaimed=UnclaimedSettings(temp_age_seconds=60))
    states = backend.snapshot()
    inv.update(everything(objects(pv("pv-src", "p/src"))), states)
    inv.unclaimed.update(inv.objs, (), set(), True, Dirty(), now=NOW + 10)
    assert [r.reason for r in inv.unclaimed.rows.values()] == ["clone-in-progress"]
    dirty = Dirty()
    inv.unclaimed.update(inv.objs, (), set(), True, dirty, now=NOW + 61)
    assert [r.reason for r in inv.unclaimed.rows.values()] == ["stale-temp"]
    assert dirty.unclaimed == {(0, "p/csi-vol-1-temp")}


# -- the collector ------------------------------------------------------------------------------
def test_lines():
    trashed = UnclaimedRow("rbd", Volume("rbd/csi-vol-1", "rbd", 8, 64, trashed=True, trash_expiry=NOW), "trash")
    assert collector.VOLUME.lines(trashed) == {
        "clonewatch_volume_unclaimed_info":
            'clonewatch_volume_unclaimed_info{backend="rbd",target="rbd",volume="rbd/csi-vol-1",reason="trash"} 1\n',
        "clonewatch_volume_trash_expiry_timestamp_seconds":
            'clonewatch_volume_trash_expiry_timestamp_seconds{backend="rbd",target="rbd",volume="rbd/csi-vol-1"} '
            '1800000000\n'}
    leaked = UnclaimedRow("rbd", Volume("rbd/csi-vol-2", "rbd", 8, 64), "leaked")
    assert list(collector.VOLUME.lines(leaked)) == ["clonewatch_volume_unclaimed_info"]
    assert collector.BYTES.lines(UnclaimedSum("rbd", "rbd", "leaked", 4194304, 1)) == {
        "clonewatch_unclaimed_bytes": 'clonewatch_unclaimed_bytes{backend="rbd",target="rbd",reason="leaked"} 4194304\n'}


def test_the_summary_prints_the_unclaimed_table():
    vol = {"backend": "rbd", "target": "rbd", "volume": "rbd/csi-vol-1"}
    m = {"clonewatch_volume_unclaimed_info": [({**vol, "reason": "leaked"}, 1.0)],
         "clonewatch_volume_consumed_bytes": [(vol, 8.0 * 2**20)],
         "clonewatch_unclaimed_bytes": [({"backend": "rbd", "target": "rbd", "reason": "leaked"}, 8.0 * 2**20)]}
    assert render(m).splitlines()[-4:] == [
        "unclaimed volume  backend  target  reason  consumed",
        "----------------  -------  ------  ------  --------",
        "rbd/csi-vol-1     rbd      rbd     leaked  8.0 MiB",
        "(total)           rbd      rbd     leaked  8.0 MiB"]


def test_the_alert_sums_exactly_the_reclaimable_reasons():
    rules = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy/rules/clonewatch.rules.yml").read_text())
    (alert,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "CloneWatchUnclaimedStorage"]
    assert f'reason=~"{"|".join(RECLAIMABLE)}"' in alert["expr"]
