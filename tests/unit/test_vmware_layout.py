"""VMware: disk layers from layoutEx as volumes, named by their owners, and the family arithmetic
on a recorded-shape fixture of what vCenter returns (real bytes through vcsim: tests/e2e/test_vmware_linked_clones.py)."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.backends.base import BackendError
from exporter.backends.vmware.layout import build_volumes, vm_facts
from exporter.inventory.pipeline import build_view
from exporter.model.efficiency import family_numbers, logical_bytes

FIXTURE = json.loads((Path(__file__).parent.parent / "fixtures" / "vmware" / "linked-clones.json").read_text())
GiB = 2**30
BASE = 612 + 6549825536


def volumes():
    return build_volumes("vc1", copy.deepcopy(FIXTURE["vms"]))


def test_layers_are_volumes_named_after_their_owners():
    v = volumes()
    assert set(v) == {"vc1/rhel9-template@base", "vc1/rhel9-template", "vc1/vm-linked-1", "vc1/vm-linked-2",
                      "vc1/vm-full-1"}
    base = v["vc1/rhel9-template@base"]
    assert (base.parent, base.consumed_bytes, base.provisioned_bytes) == ("", BASE, 20 * GiB)
    linked = v["vc1/vm-linked-2"]
    assert linked.parent == "vc1/rhel9-template@base" and linked.parent_snapshot == "base"
    assert linked.consumed_bytes == 420 + int(2.5 * GiB)                  # the delta layer's files only
    assert v["vc1/rhel9-template"].parent == "vc1/rhel9-template@base"   # the template's own delta
    assert v["vc1/vm-full-1"].parent == "" and v["vc1/vm-full-1"].consumed_bytes == BASE


def test_linked_clone_family_efficiency_against_full_clones():
    v = volumes()
    logical = logical_bytes(v)
    members = ["vc1/rhel9-template@base", "vc1/rhel9-template", "vc1/vm-linked-1", "vc1/vm-linked-2"]
    nums = family_numbers((v[m].consumed_bytes, logical[m]) for m in members)
    deltas = (400 + 4194304) + (420 + GiB) + (420 + int(2.5 * GiB))
    assert nums.consumed_bytes == BASE + deltas
    assert nums.full_copy_bytes == 4 * BASE + deltas
    assert nums.efficiency_ratio == pytest.approx(1 - (BASE + deltas) / (4 * BASE + deltas))
    assert nums.efficiency_ratio > 0.65       # vs 0 for three full clones
    # The native family view shows the template snapshot as the source, like "template@snapshot".
    view = build_view({}, [type("B", (), {"name": "vmware", "unshared_reason": "full-clone"})()], False,
                      {"vmware": {"vc1": type("S", (), {"volumes": v, "target": "vc1"})()}})
    [fam] = view.families
    assert (fam.source_name, fam.clones, fam.numbers.consumed_bytes) == ("vc1/rhel9-template@base", 3, BASE + deltas)


def test_unknown_sizes_leave_the_layer_out_and_a_missing_parent_file_breaks_only_that_chain():
    vms = copy.deepcopy(FIXTURE["vms"])
    vms[1]["file"][4]["size"] = None
    assert "vc1/vm-linked-1" not in build_volumes("vc1", vms)
    vms = copy.deepcopy(FIXTURE["vms"])
    vms[2]["disk"][0]["chain"][0]["fileKey"] = [99]     # vm-linked-2's base disk files are not listed
    vols = build_volumes("vc1", vms)
    broken = vols["vc1/vm-linked-2"]
    assert (broken.parent, broken.parent_problem) == ("vc1/<missing file keys 99>", "parent-file-missing")
    assert logical_bytes(vols)["vc1/vm-linked-2"] is None, "its full-copy size is unknown, not guessed"
    assert vols["vc1/vm-linked-1"].parent == "vc1/rhel9-template@base", "the other VMs are kept"
    view = build_view({}, [type("B", (), {"name": "vmware", "unshared_reason": "full-clone"})()], False,
                      {"vmware": {"vc1": type("S", (), {"volumes": vols, "target": "vc1"})()}})
    assert {r.volume.volume: r.broken for r in view.volumes if r.broken} == {"vc1/vm-linked-2": "parent-file-missing"}


def test_several_disks_get_their_key_in_the_name():
    vms = copy.deepcopy(FIXTURE["vms"][3:])
    vm = vms[0]
    vm["devices"].append({"key": 2001, "capacityInBytes": GiB})
    vm["file"].append({"key": 2, "name": "[ds] vm-full-1/vm-full-1_1.vmdk", "type": "diskDescriptor", "size": 500})
    vm["disk"].append({"key": 2001, "chain": [{"fileKey": [2]}]})
    assert set(build_volumes("vc1", vms)) == {"vc1/vm-full-1/2000", "vc1/vm-full-1/2001"}


def test_facts_from_pyvmomi_objects():
    from pyVmomi import vim
    disk = vim.vm.device.VirtualDisk(key=2000, capacityInBytes=GiB,
                                     backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName="[ds] a/a.vmdk"))
    nic = vim.vm.device.VirtualVmxnet3(key=4000)
    layout = vim.vm.FileLayoutEx(
        file=[vim.vm.FileLayoutEx.FileInfo(key=0, name="[ds] a/a.vmdk", type="diskDescriptor", size=100),
              vim.vm.FileLayoutEx.FileInfo(key=1, name="[ds] a/a-flat.vmdk", type="diskExtent", size=5000)],
        disk=[vim.vm.FileLayoutEx.DiskLayout(key=2000, chain=[vim.vm.FileLayoutEx.DiskUnit(fileKey=[0, 1])])])
    facts = vm_facts("vm-1", {"name": "a", "config.template": False, "config.hardware.device": [disk, nic],
                              "layoutEx": layout})
    assert facts["devices"] == [{"key": 2000, "capacityInBytes": GiB, "fileName": "[ds] a/a.vmdk"}]
    assert build_volumes("vc", [facts])["vc/a"].consumed_bytes == 5100


sizes = st.one_of(st.none(), st.integers(-5, 2**40), st.text(max_size=3))


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["diskDescriptor", "diskExtent", "log"]), sizes),
                max_size=6),
       st.lists(st.lists(st.lists(st.integers(0, 6), max_size=3), max_size=3), max_size=3))
def test_any_layout_gives_volumes_or_a_clean_error(files, chains):
    vm = {"moid": "vm-1", "name": "x", "template": False, "devices": [{"key": 0, "capacityInBytes": 1}],
          "file": [{"key": k, "name": f"[ds] f{k}", "type": t, "size": s} for k, t, s in files],
          "disk": [{"key": i, "chain": [{"fileKey": keys} for keys in chain]} for i, chain in enumerate(chains)],
          "snapshotLayout": [], "snapshots": []}
    try:
        vols = build_volumes("vc", [vm])
    except BackendError:
        return
    assert all(v.consumed_bytes >= 0 for v in vols.values())


def test_a_server_that_lists_chains_top_first_gives_the_same_volumes():
    """vcsim (govmomi 0.24) lists the running layer first; the disk's backing file says which end is the top."""
    base_first = copy.deepcopy(FIXTURE["vms"])
    top_first = copy.deepcopy(FIXTURE["vms"])
    for a, b in zip(base_first, top_first, strict=True):
        names = {f["key"]: f["name"] for f in a["file"]}
        for dev_a, dev_b, disk in zip(a["devices"], b["devices"], a["disk"], strict=True):
            top = next(names[k] for k in disk["chain"][-1]["fileKey"] if names[k].endswith(".vmdk")
                       and not names[k].endswith(("-flat.vmdk", "-delta.vmdk")))
            dev_a["fileName"] = dev_b["fileName"] = top
        for disk in b["disk"]:
            disk["chain"].reverse()
        for snap in b["snapshotLayout"]:
            for disk in snap["disk"]:
                disk["chain"].reverse()
    expected = build_volumes("vc1", base_first)
    assert expected == volumes(), "the device's file name changes nothing for a base-first server"
    assert build_volumes("vc1", top_first) == expected
    assert expected["vc1/vm-linked-1"].parent == "vc1/rhel9-template@base"


def search(folder, *files):
    """One datastore browser result as the search gives it: folderPath, files with path and fileSize."""
    return {"folderPath": folder, "file": [{"path": p, "fileSize": n} for p, n in files]}


def vm_naming(*names, layout_known=True):
    return {"name": "v", "file": [{"key": i, "name": n} for i, n in enumerate(names)], "layout_known": layout_known}


def test_disk_files_no_vm_names_are_unreferenced_disks_with_the_bytes_of_all_their_files():
    from exporter.backends.vmware.datastores import unreferenced_disks
    found = [search("[ds1]", ("stray.vmdk", 500), ("stray-flat.vmdk", 10_000), ("notes.txt", 9)),
             search("[ds1] a/", ("a.vmdk", 500), ("a-flat.vmdk", 7_000), ("a-ctk.vmdk", 64),
                    ("a-000001.vmdk", 400), ("a-000001-sesparse.vmdk", 3_000)),
             search("[ds1]/b", ("b.vmdk", 500), ("b-s001.vmdk", 2_000), ("b-s002.vmdk", 1_000)),
             search("[ds2] fcd", ("_00a1.vmdk", 500), ("_00a1-flat.vmdk", 9_000)),      # CNS's First Class Disks
             search("[ds2] .sdd.sf", ("x.vmdk", 1)), search("[ds2] contentlib-1f2e/item", ("t.vmdk", 1)),
             search("[ds2] c", ("c.vmdk", 500), ("c-flat.vmdk", 5_000))]
    vms = [vm_naming("[ds1] a/a.vmdk", "[ds1] a/a-flat.vmdk", "[ds1] a/a.vmx"),   # a's base is named
           vm_naming("[ds2] c/c-flat.vmdk")]                                        # a VM names c's extent only
    vols = unreferenced_disks("vc1", found, vms)
    assert {v: x.consumed_bytes for v, x in vols.items()} == {
        "vc1/[ds1] stray.vmdk": 10_500, "vc1/[ds1] a/a-000001.vmdk": 3_400, "vc1/[ds1] b/b.vmdk": 3_500}
    assert all(x.unreferenced == "unreferenced-disk" and x.made_by == "" and x.created == 0 and x.target == "vc1"
               and x.provisioned_bytes == 0 and x.parent == "" for x in vols.values())
    # A datastore not to judge (its name shared, its search failed) gives nothing.
    assert set(unreferenced_disks("vc1", found, vms, skipped=["ds1"])) == set()
    # A VM whose layout the server did not give could be using any of them: nothing at all.
    assert unreferenced_disks("vc1", found, [*vms, vm_naming(layout_known=False)]) == {}


@given(st.lists(st.fixed_dictionaries({"folderPath": st.one_of(st.none(), st.integers(), st.text(max_size=12),
                                                                  st.sampled_from(["[ds]", "[ds] a/", "[ds]/b"])),
                                         "file": st.one_of(st.none(), st.lists(st.fixed_dictionaries({
                                             "path": st.one_of(st.none(), st.text(max_size=8),
                                                               st.sampled_from(["a.vmdk", "a-flat.vmdk", "x/y.vmdk"])),
                                             "fileSize": st.one_of(st.none(), st.integers(-3, 2**40),
                                                                   st.text(max_size=3))}), max_size=4))}),
                max_size=5))
def test_any_search_result_gives_disks_or_nothing_never_a_crash(found):
    from exporter.backends.vmware.datastores import unreferenced_disks
    vols = unreferenced_disks("vc", found, [])
    assert all(v.consumed_bytes >= 0 and v.unreferenced == "unreferenced-disk" and v.volume.startswith("vc/[")
               for v in vols.values())


def test_a_layout_of_file_names_only_counts_as_known():
    """The whole-inventory retrieval (when folders narrow the first) asks for layoutEx.file only."""
    facts = vm_facts("vm-9", {"name": "elsewhere", "layoutEx.file": [{"key": 0, "name": "[ds] e/e.vmdk", "size": 1}]})
    assert facts["layout_known"] and facts["file"][0]["name"] == "[ds] e/e.vmdk"
    assert not vm_facts("vm-8", {"name": "orphaned"})["layout_known"]
