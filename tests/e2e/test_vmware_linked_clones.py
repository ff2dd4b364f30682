"""VMware linked clones measured end to end with real bytes: an estate built in vcsim with real files
in its datastore directory (tests/support/vcsim.py LinkedCloneEstate: a thin golden frozen by a
snapshot, linked clones as deltas on it, a thick full clone), the exporter as a process reading it
over verified TLS. Every figure is compared with the sizes of the files written; a drift step and a
deleted VM show in the next refresh."""

import secrets

import pytest

from tests.support.https import make_tls
from tests.support.process import ExporterProcess, one, pick
from tests.support.vcsim import LinkedCloneEstate, VCSim

MiB = 2**20
GOLDEN_MIB, CAPACITY_MIB = 16, 64
DRIFT = {"vm-1": 4, "vm-2": 8, "vm-3": 12}
FAM = dict(backend="vmware", source_name="vc1/golden@base")


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vsphere")
    cert, key = make_tls(tmp)
    sim = VCSim(cert, key, username="monitor@vsphere.local", password=secrets.token_urlsafe(10))
    si = sim.connect(cert)
    est = LinkedCloneEstate(si, GOLDEN_MIB, CAPACITY_MIB)
    for vm, mib in DRIFT.items():
        est.linked_clone(vm, mib)
    est.full_clone("vm-full", GOLDEN_MIB)
    proc = ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled",
                            f"--vmware.vcenters=vc1={sim.write_secret_dir(tmp / 'vc1', cert)}",
                            "--vmware.refresh-interval=1", "--vmware.timeout=10"], tmp / "exporter.log")
    try:
        proc.wait_ready()
        yield est, proc
    finally:
        proc.stop()
        sim.stop()


def layers(est: LinkedCloneEstate) -> dict[str, int]:
    """Each volume's bytes as written on disk, by the exporter's volume names."""
    out = {"vc1/golden@base": est.disk_bytes("golden/golden.vmdk"),
           "vc1/golden": est.disk_bytes("golden/golden-000001.vmdk")}
    for vm in est.vms:
        if vm.startswith("vm-"):
            out[f"vc1/{vm}"] = est.disk_bytes(f"{vm}/{vm}.vmdk" if vm == "vm-full" else f"{vm}/{vm}-000001.vmdk")
    return out


def expected_family(est: LinkedCloneEstate) -> tuple[int, int, int]:
    """(consumed, as full copies, clones) by hand: the base, the golden's delta and each clone's
    delta once; as copies, every member with the base under it."""
    on_disk = layers(est)
    base = on_disk["vc1/golden@base"]
    members = [v for k, v in on_disk.items() if k not in ("vc1/golden@base", "vc1/vm-full")]
    return base + sum(members), base + sum(m + base for m in members), len(members)


def test_every_layer_is_the_bytes_written_and_the_family_adds_up(estate):
    est, proc = estate
    s = proc.wait_for(lambda s: pick(s, "clonewatch_source_consumed_bytes", **FAM), what="the linked-clone family")
    on_disk = layers(est)
    measured = {v: one(s, "clonewatch_volume_consumed_bytes", volume=v) for v in on_disk}
    assert measured == on_disk
    assert on_disk["vc1/vm-2"] - on_disk["vc1/vm-1"] == 4 * MiB, "a delta is its drift (plus its descriptor)"
    assert on_disk["vc1/vm-full"] > CAPACITY_MIB * MiB, "a thick full clone counts its whole capacity"
    assert one(s, "clonewatch_volume_provisioned_bytes", volume="vc1/vm-1") == CAPACITY_MIB * MiB
    for vm in DRIFT:
        assert one(s, "clonewatch_volume_clone_depth", volume=f"vc1/{vm}") == 1
    consumed, full_copy, clones = expected_family(est)
    assert one(s, "clonewatch_source_consumed_bytes", **FAM) == consumed
    assert one(s, "clonewatch_source_full_copy_bytes", **FAM) == full_copy
    assert one(s, "clonewatch_source_clones", **FAM) == clones == 4          # the golden's own delta + 3 VMs
    assert one(s, "clonewatch_source_efficiency_ratio", **FAM) == pytest.approx(1 - consumed / full_copy, abs=1e-9)
    print(f"\nvcsim family golden@base: consumed {consumed} B ({consumed / MiB:.2f} MiB), as full copies {full_copy} B "
          f"({full_copy / MiB:.2f} MiB), efficiency {1 - consumed / full_copy:.4f}; bytes written per layer: {on_disk}")


def test_a_drift_step_and_a_deleted_vm_show_in_the_next_refresh(estate):
    est, proc = estate
    proc.wait_for(lambda s: pick(s, "clonewatch_source_consumed_bytes", **FAM), what="the family")
    before = one(proc.samples(), "clonewatch_volume_consumed_bytes", volume="vc1/vm-1")
    est.grow("vm-1", 8)
    s = proc.wait_for(lambda s: pick(s, "clonewatch_volume_consumed_bytes", volume="vc1/vm-1") == [before + 8 * MiB],
                      what="vm-1 grown by 8 MiB")
    assert one(s, "clonewatch_source_consumed_bytes", **FAM) == expected_family(est)[0]
    est.destroy("vm-3")
    s = proc.wait_for(lambda s: not pick(s, "clonewatch_volume_consumed_bytes", volume="vc1/vm-3"), what="vm-3 gone")
    consumed, full_copy, clones = expected_family(est)
    assert one(s, "clonewatch_source_clones", **FAM) == clones == 3
    assert one(s, "clonewatch_source_consumed_bytes", **FAM) == consumed
    assert one(s, "clonewatch_source_full_copy_bytes", **FAM) == full_copy
