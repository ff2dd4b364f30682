"""List-then-watch against kmock's KubernetesEmulator over real HTTP with the real client."""

import asyncio
import threading
import time

from exporter.kube.client import load_api_client
from exporter.kube.resources import ALL, PVC, VMCLONE, VOLUMECLONESOURCE
from exporter.kube.store import Store
from exporter.kube.watch import Watcher, WatchSettings
from tests.support.objects import pvc

FAST = WatchSettings(read_timeout_seconds=2, backoff_initial_seconds=0.1, backoff_max_seconds=0.3,
                     absent_recheck_seconds=0.5, connect_timeout_seconds=1)


async def until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


class Running:
    def __init__(self, kube, tmp_path, resources=ALL, namespace=None):
        self.api = load_api_client(str(kube.write_kubeconfig(tmp_path / "kubeconfig")))
        self.store = Store(ALL, (namespace,) if namespace else ())
        self.stopping = threading.Event()
        loop = asyncio.get_running_loop()
        self.watchers = [Watcher(self.api, r, namespace, self.store, loop, FAST, self.stopping) for r in resources]
        for w in self.watchers:
            w.start()

    def stop(self):
        for w in self.watchers:
            w.stop()
        for w in self.watchers:
            w.join(5)
        assert not any(w.is_alive() for w in self.watchers), "watch threads must stop promptly"
        self.api.close()


async def test_list_then_watch_tracks_adds_updates_deletes(kube, tmp_path):
    kube.create(pvc("vms", "before", "sc"))
    run = Running(kube, tmp_path)
    try:
        await until(lambda: run.store.ready)
        pvcs = run.store.items(PVC.name)
        assert ("vms", "before") in pvcs
        assert run.store.present[VOLUMECLONESOURCE.name] is False      # CRD missing: absent, not an error
        kube.create(pvc("vms", "after", "sc"))
        await until(lambda: ("vms", "after") in run.store.items(PVC.name))
        kube.patch_pvc("vms", "after", {"metadata": {"annotations": {"cdi.kubevirt.io/cloneType": "copy"}}})
        await until(lambda: run.store.get(PVC.name, "vms", "after")["metadata"].get("annotations", {})
                    .get("cdi.kubevirt.io/cloneType") == "copy")
        kube.delete("PersistentVolumeClaim", "before", "vms")
        await until(lambda: ("vms", "before") not in run.store.items(PVC.name))
        assert run.store.watch(PVC.name).restarts == 0
    finally:
        run.stop()


async def test_410_gone_relists_and_counts_a_restart(kube, tmp_path):
    run = Running(kube, tmp_path, resources=[PVC])
    try:
        await until(lambda: run.store.watch(PVC.name).listed)
        kube.expire_next_watch("persistentvolumeclaims")
        # The current watch stream is still open: a new event makes us read, then the re-watch gets 410.
        kube.create(pvc("vms", "x", "sc"))
        await until(lambda: ("vms", "x") in run.store.items(PVC.name))
        # Force a re-watch: stop and restart the server (the stream breaks), the next watch answers 410.
        # Whether the break itself counts as an error depends on how the socket closed: wait for the
        # 410, not for a number of restarts.
        kube.stop_server()
        kube.start_server()
        await until(lambda: kube.emu.expired_served == 1)
        kube.create(pvc("vms", "y", "sc"))          # reachable only through the relist after the 410
        await until(lambda: ("vms", "y") in run.store.items(PVC.name) and run.store.watch(PVC.name).healthy)
        assert run.store.watch(PVC.name).restarts >= 1, "the 410 was counted as a restart"
    finally:
        run.stop()


async def test_api_outage_keeps_inventory_and_recovers_without_restart(kube, tmp_path):
    kube.create(pvc("vms", "a", "sc"))
    run = Running(kube, tmp_path, resources=[PVC])
    try:
        await until(lambda: ("vms", "a") in run.store.items(PVC.name))
        kube.stop_server()
        await until(lambda: run.store.watch(PVC.name).errors >= 2)
        assert ("vms", "a") in run.store.items(PVC.name), "the last inventory is kept while the API is down"
        assert run.store.watch(PVC.name).healthy is False
        kube.start_server()
        kube.create(pvc("vms", "b", "sc"))
        kube.delete("PersistentVolumeClaim", "a", "vms")
        await until(lambda: set(run.store.items(PVC.name)) == {("vms", "b")} and run.store.watch(PVC.name).healthy)
    finally:
        run.stop()


async def test_malformed_objects_are_dropped_not_fatal(kube, tmp_path):
    kube.raw_create("/api/v1/namespaces/vms/persistentvolumeclaims",
                    {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "odd", "namespace": "vms"},
                     "spec": "not-a-spec", "status": ["nope"]})
    kube.create(pvc("vms", "fine", "sc"))
    run = Running(kube, tmp_path, resources=[PVC])
    try:
        await until(lambda: len(run.store.items(PVC.name)) == 2)
    finally:
        run.stop()


async def test_namespace_filter(kube, tmp_path):
    kube.create(pvc("vms", "in", "sc"))
    kube.create(pvc("other", "out", "sc"))
    run = Running(kube, tmp_path, resources=[PVC], namespace="vms")
    try:
        await until(lambda: run.store.watch(PVC.name).listed)
        assert set(run.store.items(PVC.name)) == {("vms", "in")}
    finally:
        run.stop()


async def test_10k_event_burst_converges_without_restarts(kube, tmp_path):
    run = Running(kube, tmp_path, resources=[PVC])
    try:
        await until(lambda: run.store.watch(PVC.name).listed)
        kube.burst("v1/persistentvolumeclaims", [pvc("vms", f"b-{i}", "sc") for i in range(10000)])
        await until(lambda: len(run.store.items(PVC.name)) == 10000, timeout=60)
        assert run.store.watch(PVC.name).restarts == 0 and run.store.watch(PVC.name).errors == 0
    finally:
        run.stop()


async def test_a_paged_list_starts_over_when_its_continue_token_expires(kube, tmp_path):
    kube.burst("v1/persistentvolumeclaims", [pvc("vms", f"p-{i:04d}", "sc") for i in range(1100)])
    kube.emu.expire_continues = 1            # the first list's second page: 410 Expired
    run = Running(kube, tmp_path, resources=[PVC])
    try:
        await until(lambda: run.store.watch(PVC.name).listed)
        assert len(run.store.items(PVC.name)) == 1100, "every page of the list that started over"
        # 500 a page: the first list got one page and a 410 for its token; the second three pages.
        assert kube.emu.continues_expired == 1 and kube.emu.pages_served == 3
        assert run.store.watch(PVC.name).errors == 0 and run.store.watch(PVC.name).healthy
        kube.create(pvc("vms", "after", "sc"))           # and the watch runs after the paged list
        await until(lambda: ("vms", "after") in run.store.items(PVC.name))
    finally:
        run.stop()


async def test_garbage_in_the_watch_stream_relists_and_recovers(kube, tmp_path):
    kube.create(pvc("vms", "a", "sc"))
    run = Running(kube, tmp_path, resources=[PVC])
    try:
        await until(lambda: ("vms", "a") in run.store.items(PVC.name))
        kube.garbage_next_watch("persistentvolumeclaims")
        kube.stop_server()        # break the current stream; the next watch gets the garbage line
        kube.start_server()
        # Wait for the garbage itself, not for any error: the outage above already counts one, and
        # health is False for a moment after the garbage arrives, whenever that is.
        await until(lambda: kube.emu.garbage_served == 1)
        kube.create(pvc("vms", "b", "sc"))    # reachable only through a relist after the garbage
        await until(lambda: set(run.store.items(PVC.name)) == {("vms", "a"), ("vms", "b")}
                    and run.store.watch(PVC.name).healthy)
        assert ("vms", "x") not in run.store.items(PVC.name), "a cut-off object is never half-applied"
        assert run.store.watch(PVC.name).errors >= 1
    finally:
        run.stop()


async def test_slow_api_server_still_converges(kube, tmp_path):
    kube.emu.list_delay = 1.5
    kube.create(pvc("vms", "slow", "sc"))
    asked = len(kube.emu.lists_asked)
    run = Running(kube, tmp_path, resources=[PVC])
    try:
        # Once the API server holds the list request (1.5 s before it answers):
        await until(lambda: any(plural == PVC.name for plural, _, _ in kube.emu.lists_asked[asked:]))
        assert not run.store.watch(PVC.name).listed, "not ready before the first full list"
        await until(lambda: ("vms", "slow") in run.store.items(PVC.name))
        assert run.store.watch(PVC.name).errors == 0
    finally:
        kube.emu.list_delay = 0
        run.stop()


async def test_an_older_kubevirt_is_read_at_the_version_it_serves(tmp_path):
    """KubeVirt before 1.5 serves VirtualMachineClones as clone.kubevirt.io/v1alpha1 only: the watch lists
    v1beta1, gets 404, lists v1alpha1 and watches it; the store knows no difference."""
    from tests.support.kube import KubeAPI
    from tests.support.kubevirt import vm_clone

    old = KubeAPI(declare={"clone.kubevirt.io/v1beta1/virtualmachineclones": None,
                           "clone.kubevirt.io/v1alpha1/virtualmachineclones": True})
    run = None
    try:
        clone = vm_clone("vms", "c1", "src", "dst")
        old.create({**clone, "apiVersion": "clone.kubevirt.io/v1alpha1"})
        run = Running(old, tmp_path, resources=[VMCLONE])
        await until(lambda: ("vms", "c1") in run.store.items(VMCLONE.name))
        assert run.store.present[VMCLONE.name] and run.store.watch(VMCLONE.name).errors == 0
        old.create({**vm_clone("vms", "c2", "src", "dst2"), "apiVersion": "clone.kubevirt.io/v1alpha1"})
        await until(lambda: ("vms", "c2") in run.store.items(VMCLONE.name))     # the watch, at v1alpha1 too
        assert run.store.watch(VMCLONE.name).restarts == 0
    finally:
        if run is not None:
            run.stop()
        old.close()
