"""The VMware backend through real pyvmomi against vcsim over TLS: login, certificate checks,
inventory scope, and VMs (snapshots, linked clones) showing up as volumes."""

import dataclasses
import secrets

import pytest

from exporter.backends.vmware.backend import VmwareBackend, VmwareSettings, load_vcenter
from tests.support.https import make_tls
from tests.support.vcsim import VCSim


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def vcsim(tls):
    sim = VCSim(*tls, username="clonewatch@vsphere.local", password=secrets.token_urlsafe(10))
    yield sim
    sim.stop()


def backend(sim, tmp_path, ca, timeout=20.0, **changes):
    access = load_vcenter("vc1", sim.write_secret_dir(tmp_path / "vc1", ca, changes.pop("password", None)))
    access = dataclasses.replace(access, **changes)
    return VmwareBackend(VmwareSettings(vcenters=(access,), timeout_seconds=timeout))


async def refreshed(b):
    await b.refresh()
    return b.states()["vc1"]


async def test_inventory_snapshots_and_linked_clones(vcsim, tls, tmp_path):
    from pyVim.connect import Disconnect
    from pyVim.task import WaitForTask
    from pyVmomi import vim
    si = vcsim.connect(tls[0])
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        vms = {v.name: v for v in view.view}
        golden = vms["DC0_H0_VM0"]
        WaitForTask(golden.CreateSnapshot_Task(name="base", description="", memory=False, quiesce=False))
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(diskMoveType="createNewChildDiskBacking"),
                                snapshot=golden.snapshot.currentSnapshot, powerOn=False, template=False)
        WaitForTask(golden.CloneVM_Task(folder=golden.parent, name="linked-1", spec=spec))
    finally:
        Disconnect(si)
    b = backend(vcsim, tmp_path, tls[0])
    st = await refreshed(b)
    assert st.up, st.error
    names = {v.volume for v in st.volumes.values()}
    assert {"vc1/DC0_H0_VM1", "vc1/DC0_C0_RP0_VM0", "vc1/DC0_C0_RP0_VM1", "vc1/linked-1"} <= names
    assert all(v.target == "vc1" and v.consumed_bytes == 0 for v in st.volumes.values())   # its default VMs have no files written
    # Scoped to folders.
    b = backend(vcsim, tmp_path, tls[0], folders=("DC0/vm/linked-1",))
    st = await refreshed(b)
    assert not st.up and "'DC0/vm/linked-1' is a VirtualMachine, not a folder" in st.error
    b = backend(vcsim, tmp_path, tls[0], folders=("DC0/vm",))
    assert len((await refreshed(b)).volumes) >= 5
    b = backend(vcsim, tmp_path, tls[0], folders=("DC9/vm",))
    st = await refreshed(b)
    assert not st.up and "no inventory path 'DC9/vm'" in st.error


async def test_wrong_password_untrusted_certificate_and_insecure_switch(vcsim, tls, tmp_path, capsys):
    st = await refreshed(backend(vcsim, tmp_path, tls[0], password="wrong-password-xyz"))
    assert not st.up and "login refused" in st.error
    assert "wrong-password-xyz" not in st.error + capsys.readouterr().out
    st = await refreshed(backend(vcsim, tmp_path, None))        # system CAs do not know our cert
    assert not st.up and "certificate not trusted" in st.error
    assert (await refreshed(backend(vcsim, tmp_path, None, insecure=True))).up


async def test_vcenter_going_away_takes_the_target_down_then_back(vcsim, tls, tmp_path):
    b = backend(vcsim, tmp_path, tls[0], timeout=5.0)
    assert (await refreshed(b)).up
    vcsim.stop()
    st = await refreshed(b)
    assert not st.up and "cannot connect" in st.error and st.volumes == {}


async def test_slow_vcenter_is_given_up_at_the_timeout(tls, tmp_path):
    import time
    sim = VCSim(*tls, username="u@vsphere.local", password="pw-" + secrets.token_hex(4), retrieve_delay_ms=3000)
    try:
        b = backend(sim, tmp_path, tls[0], timeout=1.0)
        start = time.monotonic()
        st = await refreshed(b)
        assert time.monotonic() - start < 2.0
        assert not st.up and "no answer within 1s" in st.error
    finally:
        sim.stop()


async def test_disk_files_no_vm_or_template_names_are_unreferenced_disks(vcsim, tls, tmp_path):
    """Zombie VMDKs in vcsim's datastore directory, found through SearchDatastoreSubFolders_Task: a VM
    removed from the inventory with its disk left behind, a disk copied in by hand, and what is not
    one (a template's disk, CNS's First Class Disks, a VM outside the folders looked in)."""
    import os

    from pyVim.connect import Disconnect

    from tests.support.vcsim import LinkedCloneEstate
    si = vcsim.connect(tls[0])
    try:
        est = LinkedCloneEstate(si, golden_mib=4, capacity_mib=16)
        est.linked_clone("vm-1", 1)
        est.linked_clone("vm-2", 2)
        est.vms["golden"].MarkAsTemplate()
        est.vms["vm-2"].UnregisterVM()                   # gone from the inventory, its files stay
        est.vms.pop("vm-2")
        for name, mib in (("stray/stray.vmdk", 3), ("fcd/_00a1.vmdk", 2)):
            path = est.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("# Disk DescriptorFile\n")
            path.with_name(path.name.replace(".vmdk", "-flat.vmdk")).write_bytes(os.urandom(mib * 2**20))
        content = si.RetrieveContent()
        content.rootFolder.childEntity[0].vmFolder.CreateFolder("scoped")
    finally:
        Disconnect(si)
    b = backend(vcsim, tmp_path, tls[0])
    st = await refreshed(b)
    assert st.up, st.error
    unref = {v: x.consumed_bytes for v, x in st.volumes.items() if x.unreferenced}
    assert unref == {"vc1/[LocalDS_0] vm-2/vm-2-000001.vmdk": est.disk_bytes("vm-2/vm-2-000001.vmdk"),
                     "vc1/[LocalDS_0] stray/stray.vmdk": est.disk_bytes("stray/stray.vmdk")}
    assert unref["vc1/[LocalDS_0] vm-2/vm-2-000001.vmdk"] > 2 * 2**20
    assert all(st.volumes[v].unreferenced == "unreferenced-disk" and st.volumes[v].made_by == ""
               for v in unref)
    assert {"vc1/vm-1", "vc1/golden@base"} <= set(st.volumes)           # the VMs' layers as before
    # Looking at an empty folder only: no VM is in scope, yet every VM's disks still count as named.
    scoped = backend(vcsim, tmp_path, tls[0], folders=("DC0/vm/scoped",))
    st = await refreshed(scoped)
    assert st.up, st.error
    assert set(st.volumes) == set(unref)
    # Switched off, no datastore is searched: the VMs' layers only.
    off = backend(vcsim, tmp_path, tls[0], search_datastores=False)
    st = await refreshed(off)
    assert st.up and {"vc1/vm-1", "vc1/golden@base"} <= set(st.volumes)
    assert not any(v.unreferenced for v in st.volumes.values())
