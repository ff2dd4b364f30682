"""loadgen's vmclone method end to end: kmock serves the API, the test plays KubeVirt's clone controller
(tests/support/kubevirt.py: snapshot, content, restore, the new VM and its disks, snapshot and restore
deleted) over ceph-csi's own sequences on the real Ceph cluster, CDI and the kubelet as for the other
methods (tests/support/fake_cluster.py), and the harness reads its bytes from the exporter's /metrics.

  os-images/rhel9          golden, 16 MiB written
  lg/src                   the source VM: rootdisk (DataVolume template, a csi-clone of rhel9, 4 MiB
                           written), data (a blank PVC, 8 MiB), cloud-init
  lg/tpm                   a VM KubeVirt will not clone (persistent TPM: the clone goes Failed)
  someone else's           VM cwlg-kv-vm-00007 with its PVC cwlg-kv-vm-00007-rootdisk, a PVC named
                           like a restored disk, and a Succeeded VirtualMachineClone cwlg-kv-vm-00008
                           with the VM and disk it made: named like ours, none of them ours
"""

import json
import re
import threading
import uuid
from pathlib import Path

import pytest
import yaml

from exporter.public import rbd_volume_id
from loadgen.cloners.base import CloneFailed, NotOwned
from loadgen.cloners.kube import KubeCloner
from loadgen.cloners.kube_objects import our_labels
from loadgen.cloners.kube_vm import vm_clone as clone_body
from loadgen.daemon import Daemon
from loadgen.harness import Harness
from loadgen.scenario import parse
from tests.support.cephcsi import CephCsiDriver
from tests.support.fake_cluster import FakeCluster
from tests.support.kubevirt import (
    ApiWorld,
    Clone,
    CloneController,
    failed_status,
    golden,
    pending_status,
    pvc_object,
    virtual_machine,
    vm_clone,
    vm_from_golden,
    volume,
)
from tests.support.objects import ODF_RBD, pv_rbd, storageclass, storageprofile
from tests.support.process import ExporterProcess

MiB = 2**20
NS = "lg"
SC = "ocs-storagecluster-ceph-rbd"
RHEL9 = {"pvc": {"namespace": "os-images", "name": "rhel9"}}
BACKEND_STORAGE = "Clone of source with backendstorage is not supported: VM lg/tpm"


class KubeVirtCluster(FakeCluster):
    """FakeCluster's CDI, kubelet and reclaim, and KubeVirt's clone controller: a new
    VirtualMachineClone of `src` runs the whole sequence on the pool; of `tpm` goes Failed; of
    a VM that does not exist stays pending, as KubeVirt leaves it."""

    def __init__(self, kube, pool, csi, vm: dict, disks, golden_image: str) -> None:
        super().__init__(kube, pool, NS, golden_image, smart={SC})
        self.world, self.vm, self.disks = ApiWorld(kube), vm, disks
        self.controller = CloneController(self.world, csi, pool.name, SC)
        self.csi = csi
        self.restored: dict[str, str] = {}      # restored PVC -> its PV
        self.clones: list[Clone] = []
        self.seen: set[str] = set()             # the uids of the clones it has taken up

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._datavolumes()
                self._vmclones()
                self._jobs()
                self._reclaim()
            except Exception as exc:
                self.errors.append(repr(exc))
            self.stopping.wait(0.1)

    def _vmclones(self) -> None:
        for obj in self._list("clone.kubevirt.io", "v1beta1", "virtualmachineclones"):
            name, uid = obj["metadata"]["name"], obj["metadata"]["uid"]
            if uid in self.seen or (obj.get("status") or {}).get("phase"):
                continue       # seen already (a name comes back after a delete: the UID tells them apart)
            self.seen.add(uid)
            source = obj["spec"]["source"]["name"]
            if source == "tpm":
                self.world.patch("VirtualMachineClone", NS, name, {"status": failed_status(BACKEND_STORAGE)})
            elif source != "src":
                self.world.patch("VirtualMachineClone", NS, name, {"status": pending_status(
                    f"Source doesnt exist: VirtualMachine {NS}/{source}")})
            else:
                self._clone(Clone(name, uid, obj["spec"]["target"]["name"]))

    def _clone(self, clone: Clone) -> None:
        ctl = self.controller
        ctl.snapshot(clone, self.vm, self.disks)
        target = ctl.restore(clone, self.vm, self.disks)
        for volume_name, claim in clone.pvcs.items():
            self.images[claim] = clone.images[volume_name]
            pvc = self.kube.core.read_namespaced_persistent_volume_claim(claim, NS, _preload_content=False)
            self.restored[claim] = json.loads(pvc.data)["spec"]["volumeName"]
        ctl.datavolumes(clone, target, self.disks, RHEL9)
        ctl.succeeded(clone, NS)
        ctl.cleaned_up(clone, NS)
        self.clones.append(clone)

    def _reclaim(self) -> None:
        # A deleted PVC takes its PV and image: a restored disk's by ceph-csi's DeleteVolume (to the trash).
        pvcs = self._pvc_names()
        for name, image in [(n, i) for n, i in self.images.items() if n not in pvcs]:
            if name in self.restored:
                self.csi.delete_volume(image)
                self.kube.delete("PersistentVolume", self.restored.pop(name))
            else:
                self.pool.rbd("rm", "--no-progress", self.pool.spec(image))
                self.kube.delete("PersistentVolume", f"pv-{image}")
            del self.images[name]


@pytest.fixture(scope="module")
def cluster(kube, pool, tmp_path_factory):
    csi = CephCsiDriver(pool)
    world = ApiWorld(kube)
    world.create(storageclass(SC, ODF_RBD))
    world.create(storageprofile(SC, "csi-clone"))
    image = golden(world, csi, pool.name, SC)
    vm, disks = vm_from_golden(world, csi, pool.name, SC, NS, "src", image, 4, 8)
    world.create(virtual_machine(NS, "tpm", [volume("cloudinitdisk", cloudInitNoCloud={"userData": "#cloud-config\n"})]))
    foreign(world, csi, pool.name)
    fake = KubeVirtCluster(kube, pool, csi, vm, disks, image)
    fake.start()
    tmp = tmp_path_factory.mktemp("vmclone-loadgen")
    exporter = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}",
                                f"--ceph.conf={pool.conf}", "--rbd.refresh-interval=0.5",
                                "--kubernetes.read-timeout=5"], tmp / "exporter.log")
    exporter.wait_ready()
    yield kube, fake, exporter, tmp
    exporter.stop()
    fake.stop()
    assert not fake.errors, "\n".join(fake.errors)


FOREIGN_VMS = {"cwlg-kv-vm-00007", "cwlg-kv-vm-00008"}
FOREIGN_PVCS = {"cwlg-kv-vm-00007-rootdisk", "restore-00000000-0000-0000-0000-000000000007-rootdisk",
                "restore-00000000-0000-0000-0000-000000000008-rootdisk"}


def foreign(world, csi, pool_name) -> None:
    """Someone else's VMs, disks and clone in the loadgen's namespace, named like ours."""
    for claim in sorted(FOREIGN_PVCS):
        world.create(pv_rbd(f"pv-{claim}", pool_name, csi.create_volume(0), storageclass_name=SC))
    world.create(pvc_object(NS, "cwlg-kv-vm-00007-rootdisk", SC, "pv-cwlg-kv-vm-00007-rootdisk"))
    world.create(virtual_machine(NS, "cwlg-kv-vm-00007", [volume("rootdisk", persistentVolumeClaim={
        "claimName": "cwlg-kv-vm-00007-rootdisk"})]))
    # A restored disk of another restore, named as KubeVirt names them.
    other = "restore-00000000-0000-0000-0000-000000000007-rootdisk"
    world.create(pvc_object(NS, other, SC, f"pv-{other}", {"restore.kubevirt.io/name": "tmp-restore-someone-else"}))
    # A clone someone made (no labels of ours), Succeeded, with its VM and disk.
    uid, restore_uid = "00000000-0000-0000-0000-0000000000c8", str(uuid.uuid4())
    theirs = vm_clone(NS, "cwlg-kv-vm-00008", "src", "cwlg-kv-vm-00008", uid)
    theirs["status"] = {"phase": "Succeeded", "targetName": "cwlg-kv-vm-00008"}
    world.create(theirs)
    disk = "restore-00000000-0000-0000-0000-000000000008-rootdisk"
    world.create(pvc_object(NS, disk, SC, f"pv-{disk}", {"restore.kubevirt.io/name": f"tmp-restore-{uid}"}))
    world.create(virtual_machine(NS, "cwlg-kv-vm-00008", [volume("rootdisk", persistentVolumeClaim={"claimName": disk})],
                                 annotations={"restore.kubevirt.io/lastRestoreUID": f"tmp-restore-{uid}-{restore_uid}"}))


def scenario(exporter, tmp, source: str = "src", timeout: str = "60s", count: int = 2):
    return parse({
        "name": "kv", "backend": "kubernetes", "golden": {"size": "64MiB"},
        "kubernetes": {"namespace": NS, "golden": {"namespace": "os-images", "name": "rhel9"},
                       "source_vm": {"name": source, "disk": "rootdisk"}, "volume_mode": "Block",
                       "exporter_url": exporter.url + "/metrics", "kubeconfig": str(tmp / "kubeconfig"),
                       "timeout": timeout, "poll": "0.1s"},
        "groups": [{"name": "vm", "method": "vmclone", "count": count}],
        "drift": {"levels": ["4MiB", "8MiB"]}, "concurrency": 2})


def names(kube, group, version, plural) -> set[str]:
    if plural == "persistentvolumeclaims":
        items = json.loads(kube.core.list_namespaced_persistent_volume_claim(NS, _preload_content=False).data)["items"]
    else:
        items = kube.custom.list_namespaced_custom_object(group, version, NS, plural)["items"]
    return {o["metadata"]["name"] for o in items}


def vms(kube) -> set[str]:
    return names(kube, "kubevirt.io", "v1", "virtualmachines")


def clones(kube) -> set[str]:
    return names(kube, "clone.kubevirt.io", "v1beta1", "virtualmachineclones")


def pvcs(kube) -> set[str]:
    return names(kube, "", "v1", "persistentvolumeclaims")


def datavolumes(kube) -> set[str]:
    return names(kube, "cdi.kubevirt.io", "v1beta1", "datavolumes")


def before(kube) -> tuple[set[str], ...]:
    return vms(kube), clones(kube), pvcs(kube), datavolumes(kube)


DEPLOY = Path(__file__).parents[2] / "deploy" / "base"


def allowed(path: Path, kind: str) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for doc in yaml.safe_load_all(path.read_text()) if doc["kind"] == kind
            for rule in doc["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


@pytest.fixture
def requests_allowed(monkeypatch):
    """Every API request the loadgen makes, checked against its RBAC as deployed: the Role in its own
    namespace, the golden-access ClusterRole (bound in the golden's namespace) elsewhere."""
    import loadgen.cloners.kube as kube_cloner

    made: list[tuple[str, str]] = []
    real = kube_cloner.request_json

    def recorded(api, method, path, *args, **kwargs):
        made.append((method, path))
        return real(api, method, path, *args, **kwargs)

    monkeypatch.setattr(kube_cloner, "request_json", recorded)
    yield made
    role, golden = allowed(DEPLOY / "loadgen" / "rbac.yaml", "Role"), allowed(DEPLOY / "golden-access" / "rbac.yaml",
                                                                                "ClusterRole")
    asked = set()
    for method, path in made:
        parts = path.partition("?")[0].strip("/").split("/")
        group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
        assert rest[0] == "namespaces", path
        verb = {"GET": "get" if len(rest) > 3 else "list", "POST": "create", "PATCH": "patch", "DELETE": "delete"}[method]
        asked.add((rest[1], group, rest[2], verb))
    refused = [a for a in asked if a[1:] not in (role if a[0] == NS else golden)]
    assert not refused, f"requests the loadgen's RBAC does not allow: {sorted(refused)}"
    assert {(NS, "clone.kubevirt.io", "virtualmachineclones", "create"),
            (NS, "kubevirt.io", "virtualmachines", "delete")} <= asked, "the check saw the vmclone method at work"


def test_vmclone_harness_clones_drifts_measures_and_removes_only_what_it_made(cluster, tmp_path, requests_allowed):
    kube, fake, exporter, tmp = cluster
    start = before(kube)
    harness = Harness(scenario(exporter, tmp), tmp_path / "out")
    points = harness.run_all()
    assert harness.failures == 0
    assert len(harness.durations["vmclone"]) == 2 and all(d > 0 for d in harness.durations["vmclone"])
    by = {p.label: p for p in points}
    assert list(by) == ["baseline", "cloned", "drift-4MiB", "drift-8MiB"]
    assert by["cloned"].clone_types == ["snapshot"]
    made = fake.clones[-2:]
    assert {c.target for c in made} == {"cwlg-kv-vm-00001", "cwlg-kv-vm-00002"}
    # The golden 16 MiB; each clone's root disk reads through its trashed snapshot image into src's
    # root disk (4 MiB of its own) and on into the golden: 20 MiB it does not hold.
    g = 16 * MiB
    for label, drift in (("cloned", 0), ("drift-4MiB", 4 * MiB), ("drift-8MiB", 8 * MiB)):
        vm = by[label].groups["vm"]
        assert vm.measured == 2, by[label].missing
        assert vm.clones_consumed_bytes == pytest.approx(2 * drift, abs=0.02 * 2 * max(drift, 4 * MiB))
        assert vm.efficiency_ratio == pytest.approx(1 - (g + 2 * drift) / (g + 2 * (20 * MiB + drift)), abs=0.02)
    # Each clone's measured volume is its new VM's root disk, the one the drift Jobs wrote.
    roots = {rbd_volume_id(fake.pool.name, "", c.images["rootdisk"]) for c in made}
    assert roots <= set(by["drift-8MiB"].volume_detail)
    assert all(by["drift-8MiB"].volume_detail[r]["consumed_bytes"] == pytest.approx(8 * MiB, abs=0.1 * 8 * MiB)
               for r in roots)
    # Cleanup: every clone, VM, DataVolume and disk it made is gone; what was there before stays.
    assert before(kube) == start
    for c in made:
        assert not set(c.pvcs.values()) & pvcs(kube)
    assert FOREIGN_VMS <= vms(kube) and FOREIGN_PVCS <= pvcs(kube) and "cwlg-kv-vm-00008" in clones(kube)


def test_restart_adopts_vm_clones_and_cleanup_spares_look_alikes(cluster, tmp_path, requests_allowed):
    kube, fake, exporter, tmp = cluster
    start = before(kube)
    sc = scenario(exporter, tmp)
    first = Harness(sc, tmp_path / "o1", keep=True)
    first.run_all()
    assert first.failures == 0
    made = fake.clones[-2:]
    assert {"cwlg-kv-vm-00001", "cwlg-kv-vm-00002"} <= vms(kube) & clones(kube)
    disks = {claim for c in made for claim in c.pvcs.values()}
    assert disks <= pvcs(kube) and {c.pvcs["rootdisk"] for c in made} <= datavolumes(kube)

    # Someone plugs their own disk into one of our VMs; an earlier loadgen left a clone of ours that
    # never started, and someone has since made a VM of their own under its target's name.
    world = ApiWorld(kube)
    ours_vm = kube.custom.get_namespaced_custom_object("kubevirt.io", "v1", NS, "virtualmachines", "cwlg-kv-vm-00001")
    plugged = ours_vm["spec"]["template"]["spec"]["volumes"] + [
        volume("theirs", persistentVolumeClaim={"claimName": "cwlg-kv-vm-00007-rootdisk"})]
    world.patch("VirtualMachine", NS, "cwlg-kv-vm-00001", {"spec": {"template": {"spec": {"volumes": plugged}}}})
    earlier = scenario(exporter, tmp, source="gone").kube
    assert earlier is not None
    kube.create(clone_body("cwlg-kv-vm-00009", "v1beta1", earlier, our_labels("kv", "earlier", "vm", "clone"), 0.0))
    world.create(virtual_machine(NS, "cwlg-kv-vm-00009", [volume("rootdisk", persistentVolumeClaim={
        "claimName": "cwlg-kv-vm-00007-rootdisk"})]))

    second = Harness(sc, tmp_path / "o2")
    owned = second.cloner.owned()
    assert [(o.name, o.method, o.drift_bytes) for o in owned] == [
        ("cwlg-kv-vm-00001", "vmclone", 8 * MiB), ("cwlg-kv-vm-00002", "vmclone", 8 * MiB),
        ("cwlg-kv-vm-00009", "vmclone", 0)]
    cloner = second.cloner
    assert isinstance(cloner, KubeCloner)
    with pytest.raises(NotOwned):
        cloner.delete("cwlg-kv-vm-00008")            # someone else's clone, VM and disk
    cloner.delete("cwlg-kv-vm-00007")                # no clone of ours by that name: nothing to do
    assert second.remove_owned("test") == 3
    assert before(kube)[1:] == start[1:] and vms(kube) == start[0] | {"cwlg-kv-vm-00009"}
    assert not disks & pvcs(kube)
    world.delete("VirtualMachine", NS, "cwlg-kv-vm-00009")
    assert FOREIGN_VMS <= vms(kube) and FOREIGN_PVCS <= pvcs(kube) and "cwlg-kv-vm-00008" in clones(kube)


def test_a_vm_that_exists_is_never_cloned_over(cluster):
    kube, _fake, exporter, tmp = cluster
    start = before(kube)
    cloner = KubeCloner(scenario(exporter, tmp), "run")
    with pytest.raises(CloneFailed, match="cwlg-kv-vm-00007 exists already"):
        cloner.create("cwlg-kv-vm-00007", "vm", "vmclone")
    assert before(kube) == start


def test_failed_and_timed_out_clones_are_counted_failures_with_their_reason(cluster, tmp_path):
    kube, _fake, exporter, tmp = cluster
    start = before(kube)
    failed = KubeCloner(scenario(exporter, tmp, source="tpm"), "run")
    with pytest.raises(CloneFailed, match=f"phase Failed: {re.escape(BACKEND_STORAGE)}$"):
        failed.create("cwlg-kv-vm-00003", "vm", "vmclone")
    pending = KubeCloner(scenario(exporter, tmp, source="gone", timeout="1s"), "run")
    with pytest.raises(CloneFailed, match=r"not Succeeded within 1s \(phase Pending: "
                                          r"Source doesnt exist: VirtualMachine lg/gone\)"):
        pending.create("cwlg-kv-vm-00004", "vm", "vmclone")
    assert before(kube) == start, "a clone that failed is deleted"
    harness = Harness(scenario(exporter, tmp, source="gone", timeout="1s", count=1), tmp_path / "out")
    points = harness.run_all()
    assert harness.failures == 1 and not harness.durations["vmclone"]
    assert points[1].groups["vm"].clones == 0
    assert before(kube) == start


def test_the_daemon_times_vm_clones_as_it_times_the_other_methods(cluster, tmp_path):
    kube, _fake, exporter, tmp = cluster
    start = before(kube)
    daemon = Daemon(scenario(exporter, tmp))
    worker = threading.Thread(target=daemon.loop)
    worker.start()
    worker.join(120)
    assert not worker.is_alive()
    reg = daemon.metrics.registry
    assert reg.get_sample_value("clonewatch_loadgen_clone_duration_seconds_count", {"clone_type": "snapshot"}) == 2
    assert reg.get_sample_value("clonewatch_loadgen_clones_created_total", {"clone_type": "snapshot"}) == 2
    assert reg.get_sample_value("clonewatch_loadgen_clone_failures_total") == 0
    assert reg.get_sample_value("clonewatch_loadgen_clones_alive", {"group": "vm"}) == 2
    assert {"cwlg-kv-vm-00001", "cwlg-kv-vm-00002"} <= vms(kube)
    assert Harness(scenario(exporter, tmp), tmp_path).remove_owned("test") == 2
    assert before(kube) == start
