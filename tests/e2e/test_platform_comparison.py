"""The comparison table of the seed, measured: one golden disk and N clones on every platform,
each measured by clonewatch's own backend and efficiency code, side by side in one run.

- Ceph RBD: a real pool (rbd clone of a protected snapshot = what ceph-csi does for a CSI clone).
- qcow2: real images (qemu-img backing files), the local default.
- IBM FlashSystem: the REST double, cloned the way the IBM block CSI driver clones (mkvdisk +
  mkfcmap at the default copy rate 50 + startfcmap), measured again after the background copy.
- IBM Cloud VPC: PVs restored from a snapshot (the only "clone" there), measured from the PVs.
- VMware: linked clones built in vcsim with real delta files (tests/support/vcsim.py), read through
  pyvmomi; each layer also carries its descriptor file's few hundred bytes.

Set CLONEWATCH_COMPARISON_OUT=<file> to keep the markdown table, and CLONEWATCH_COMPARISON_CLONES
for more clones than CI's 10 (docs/platform-comparison.md is a run with 100).
"""

import asyncio
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from exporter.backends.flashsystem.backend import FlashSystemBackend, FlashSystemSettings, load_array
from exporter.backends.qcow2 import Qcow2Backend, Qcow2Settings
from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.backends.rbd.reader import CephCluster
from exporter.backends.vmware.backend import VmwareBackend, VmwareSettings, load_vcenter
from exporter.backends.vpc.backend import VpcBackend
from exporter.model.efficiency import FamilyNumbers, family_numbers, logical_bytes
from tests.support.flashsystem import FlashSystemDouble, copy_rate_bytes_per_second
from tests.support.https import make_tls
from tests.support.objects import pv_vpc
from tests.support.vcsim import LinkedCloneEstate, VCSim

MiB = 2**20
N = int(os.environ.get("CLONEWATCH_COMPARISON_CLONES", "10"))
GOLDEN_MIB = 64         # written, = capacity
DRIFT_MIB = 4           # per clone


def numbers(volumes: dict, members: list[str]) -> FamilyNumbers:
    logical = logical_bytes(volumes)
    return family_numbers((volumes[m].consumed_bytes, logical[m]) for m in members)


async def refreshed(backend) -> dict:
    await backend.refresh()
    vols = {}
    for st in backend.states().values():
        assert st.up, st.error
        vols.update(st.volumes)
    return vols


async def rbd_rows(pool):
    pool.golden("golden", GOLDEN_MIB)
    for i in range(N):
        pool.clone("golden", f"c{i}")
    b = RbdBackend(RbdSettings(pools=(pool.name,), default=CephCluster(conf=pool.conf)))
    members = [f"{pool.name}/golden"] + [f"{pool.name}/c{i}" for i in range(N)]
    at_creation = numbers(await refreshed(b), members)
    for i in range(N):
        pool.write(f"c{i}", DRIFT_MIB)
    return at_creation, numbers(await refreshed(b), members), None


def qemu(*args, stdin=None):
    subprocess.run(list(args), check=True, capture_output=True, text=True, input=stdin)


async def qcow2_rows(d: Path):
    qemu("qemu-img", "create", "-q", "-f", "qcow2", str(d / "golden.qcow2"), f"{GOLDEN_MIB}M")
    qemu("qemu-io", "-f", "qcow2", str(d / "golden.qcow2"), stdin=f"write -q -P 0x5a 0 {GOLDEN_MIB}M\n")
    for i in range(N):
        qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", "golden.qcow2", "-F", "qcow2", str(d / f"c{i}.qcow2"))
    b = Qcow2Backend(Qcow2Settings(dirs=(str(d),)))
    members = [str(d / "golden.qcow2")] + [str(d / f"c{i}.qcow2") for i in range(N)]
    at_creation = numbers(await refreshed(b), members)
    for i in range(N):
        qemu("qemu-io", "-f", "qcow2", str(d / f"c{i}.qcow2"), stdin=f"write -q -P 0xab 0 {DRIFT_MIB}M\n")
    return at_creation, numbers(await refreshed(b), members), None


async def flashsystem_rows(d: Path):
    fs = FlashSystemDouble(d)
    try:
        golden = fs.create_vdisk("golden", GOLDEN_MIB * MiB)
        fs.write("golden", GOLDEN_MIB * MiB)
        clones = [fs.clone_like_csi("golden", f"c{i}", copy_rate=50) for i in range(N)]
        b = FlashSystemBackend(FlashSystemSettings(arrays=(load_array("fs1", fs.write_secret_dir(d / "s")),)))
        members = [f"fs1/{golden.uid}"] + [f"fs1/{c.uid}" for c in clones]
        try:
            at_creation = numbers(await refreshed(b), members)
            for i in range(N):
                fs.write(f"c{i}", DRIFT_MIB * MiB)
            after_drift = numbers(await refreshed(b), members)
            fs.advance(GOLDEN_MIB * MiB / copy_rate_bytes_per_second(50))   # 32 s at rate 50 (2 MiB/s)
            return at_creation, after_drift, numbers(await refreshed(b), members)
        finally:
            await b.close()
    finally:
        fs.close()


async def vpc_rows():
    b = VpcBackend()
    pvs = [pv_vpc(f"pv-{i}", size=f"{GOLDEN_MIB}Mi") for i in range(N + 1)]
    for i, pv in enumerate(pvs):
        pv["spec"]["csi"]["volumeHandle"] = f"r006-golden-restore-{i:04d}"
    b.want(pvs)
    vols = await refreshed(b)
    members = sorted(vols)
    assert len(members) == N + 1
    same = numbers(vols, members)          # a restore is a full copy at once: drift changes nothing billed
    return same, same, None


async def vmware_rows(tmp_path: Path):
    """A real estate in vcsim (files written in its datastore directory), read by the VMware backend
    through pyvmomi over TLS, before and after each clone's delta grows by the drift."""
    cert, key = make_tls(tmp_path)
    sim = VCSim(cert, key, username="monitor@vsphere.local", password=secrets.token_urlsafe(10))
    try:
        estate = LinkedCloneEstate(sim.connect(cert), GOLDEN_MIB, GOLDEN_MIB)
        for i in range(N):
            estate.linked_clone(f"c{i}", 0)
        b = VmwareBackend(VmwareSettings(vcenters=(load_vcenter("vc1", sim.write_secret_dir(tmp_path / "vc1", cert)),)))
        members = ["vc1/golden@base"] + [f"vc1/c{i}" for i in range(N)]
        at_creation = numbers(await refreshed(b), members)
        for i in range(N):
            estate.grow(f"c{i}", DRIFT_MIB)
        return at_creation, numbers(await refreshed(b), members), None
    finally:
        sim.stop()


def pct(n: FamilyNumbers | None) -> str:
    return "–" if n is None else f"{n.efficiency_ratio:.1%}"


def mib(n: FamilyNumbers) -> str:
    return f"{n.consumed_bytes / MiB:,.1f} MiB"


PLATFORMS = [
    ("Ceph RBD (ODF)", "CSI clone = RBD snapshot + CoW child image", "yes", "real one-node Ceph"),
    ("qcow2 (local default)", "backing file + CoW overlay", "yes", "real qemu-img images"),
    ("IBM FlashSystem", "FlashCopy mapping, copy rate 50 (CSI default)", "at first; full copy later",
     "REST double (IBM shapes)"),
    ("IBM Cloud VPC block", "restore from a VolumeSnapshot", "no", "PVs (consumed = provisioned)"),
    ("VMware linked clone", "delta disk on a template snapshot", "yes", "vcsim, real delta files"),
]


def test_platforms_side_by_side(pool, tmp_path):
    async def run():
        (tmp_path / "qcow2").mkdir()
        return [await rbd_rows(pool), await qcow2_rows(tmp_path / "qcow2"),
                await flashsystem_rows(tmp_path), await vpc_rows(), await vmware_rows(tmp_path)]
    rows = asyncio.run(run())
    full = (N + 1) * GOLDEN_MIB * MiB
    lines = [f"One {GOLDEN_MIB} MiB golden disk (fully written) and {N} clones; then {DRIFT_MIB} MiB of "
             f"drift written to each clone. Full copies would store {full / MiB:,.0f} MiB at creation.",
             "",
             "| platform | how a clone is made | CoW | stored at creation | efficiency at creation | "
             "efficiency after drift | after background copy | measured on |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (name, how, cow, where), (creation, drift, copied) in zip(PLATFORMS, rows, strict=True):
        lines.append(f"| {name} | {how} | {cow} | {mib(creation)} | {pct(creation)} | {pct(drift)} | "
                     f"{pct(copied)} | {where} |")
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    if os.environ.get("CLONEWATCH_COMPARISON_OUT"):
        Path(os.environ["CLONEWATCH_COMPARISON_OUT"]).write_text(table)

    (rbd_c, rbd_d, _), (q_c, q_d, _), (fs_c, fs_d, fs_full), (vpc_c, _vpc_d, _), (vm_c, vm_d, _) = rows
    cow_at_creation = 1 - 1 / (N + 1)                       # only the golden is stored
    cow_after_drift = 1 - (GOLDEN_MIB + N * DRIFT_MIB) / (GOLDEN_MIB + N * (GOLDEN_MIB + DRIFT_MIB))
    assert rbd_c.efficiency_ratio == pytest.approx(cow_at_creation, abs=0.005)
    assert rbd_d.efficiency_ratio == pytest.approx(cow_after_drift, abs=0.01)
    assert fs_c.efficiency_ratio == pytest.approx(cow_at_creation, abs=1e-9)
    assert fs_d.efficiency_ratio == pytest.approx(cow_after_drift, abs=1e-9)
    assert fs_full.efficiency_ratio == 0                      # the background copy made them full copies
    assert vm_c.efficiency_ratio == pytest.approx(cow_at_creation, abs=1e-4)     # descriptors: ~300 B a layer
    assert vm_d.efficiency_ratio == pytest.approx(cow_after_drift, abs=1e-4)
    assert q_c.efficiency_ratio > cow_at_creation - 0.02 and q_d.efficiency_ratio > cow_after_drift - 0.03
    assert vpc_c.efficiency_ratio == 0 and vpc_c.consumed_bytes == full   # "0% gain on VPC"
