"""The whole /metrics of an in-process exporter, without Ceph: the e2e scenario's objects served by
the Kubernetes emulator over HTTP, the RBD backend fed the facts librbd gave for the same scenario.
Compared with a golden file (regenerate: --update-golden) and checked by promtool. The real-Ceph
golden file (tests/e2e/test_exporter_ceph.py) stays."""

import asyncio
import re
import subprocess
import textwrap
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

import exporter.collectors as collectors_package
from exporter.backends.rbd.backend import RbdBackend, RbdSettings
from exporter.backends.rbd.images import Image
from exporter.backends.vpc.backend import VpcBackend
from exporter.cli import load
from exporter.collectors import registry as collector_registry
from exporter.kube.client import load_api_client
from exporter.runtime import exporter as app
from exporter.runtime.exporter import Exporter
from tests.e2e import scenario
from tests.e2e.test_exporter_ceph import stable_lines

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "metrics.hermetic.golden.prom"
MiB = 2**20
POOL = "POOL"


class FixedReader:
    """librbd replaced by what it reported for the e2e scenario's pool (in-process, like librbd)."""

    def read(self, pool, namespace):
        size = 64 * MiB
        images = [Image("rhel9-img", "a0", False, size, scenario.GOLDEN_MIB * MiB, None, True)]
        images += [Image(f"{vm}-img", f"a{i + 1}", False, size, mib * MiB, (POOL, "", "rhel9-img", "base"), True)
                   for i, (vm, mib) in enumerate(scenario.DRIFT_MIB.items())]
        images += [Image("win-img", "b0", False, size, scenario.GOLDEN_MIB * MiB, None, True)]
        images += [Image(f"{vm}-img", f"b{i + 1}", False, size, scenario.GOLDEN_MIB * MiB, None, True)
                   for i, vm in enumerate(scenario.FULL)]
        return images

    def submit_read(self, pool, namespace) -> Future:
        done: Future = Future()
        done.set_result(self.read(pool, namespace))
        return done

    def close(self):
        pass


def fixed_rbd():
    backend = RbdBackend(RbdSettings(client="librbd"))
    backend.reader._readers[""] = FixedReader()         # the default cluster's reader
    return backend


async def _metrics(kube, tmp_path, monkeypatch) -> str:
    for obj in scenario.kubernetes_objects(POOL):
        kube.create(obj)
    settings = load([f"--kubeconfig={kube.write_kubeconfig(tmp_path / 'kubeconfig')}", "--rebuild.debounce=0.05"])
    monkeypatch.setattr(app.backend_registry, "build", lambda s: [fixed_rbd(), VpcBackend()])
    exporter = Exporter(settings)
    api = load_api_client(str(tmp_path / "kubeconfig"))
    await exporter.start(api)
    try:
        deadline = time.monotonic() + 20
        while exporter.not_ready() or len(exporter.view.families) < 3:
            assert time.monotonic() < deadline, exporter.not_ready()
            await asyncio.sleep(0.02)
        return exporter.scrape(False).decode()
    finally:
        await exporter.stop()
        api.close()


async def test_whole_metrics_against_the_golden_file(kube, tmp_path, monkeypatch, request):
    start = time.monotonic()
    text = await _metrics(kube, tmp_path, monkeypatch)
    took = time.monotonic() - start
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    got = stable_lines(text)
    if request.config.getoption("--update-golden"):
        GOLDEN.write_text(got)
    assert got == GOLDEN.read_text(), "regenerate with: scripts/test.sh tests/integration --update-golden"
    # The same families as the real-Ceph run: CoW 88 MiB for 3 clones, copies save nothing.
    assert 'clonewatch_source_efficiency_ratio{source_namespace="os-images",source_name="win",backend="rbd"} 0\n' in got
    assert 'clonewatch_source_consumed_bytes{source_namespace="os-images",source_name="rhel9",backend="rbd"} ' \
           f'{(64 + 8 + 16) * MiB}\n' in got
    # At least the rebuild loop and the backend's refresh loop are alive (volatile: not in the golden).
    assert int(re.search(r"^clonewatch_event_loop_tasks (\d+)", text, re.M).group(1)) >= 2
    print(f"hermetic /metrics in {took:.2f}s")


def test_the_hermetic_and_real_ceph_golden_files_agree():
    """Same scenario, same exposition: the fixed `rbd` documents say what real Ceph said."""
    real = (Path(__file__).resolve().parents[1] / "fixtures" / "metrics.golden.prom").read_text()
    assert GOLDEN.read_text() == real


BROKEN_COLLECTOR = textwrap.dedent('''
    """A collector with a bug: it declares one label of its own and renders two."""
    from exporter.collectors.base import rows
    from exporter.exposition.metric import GAUGE, RowMetrics

    BROKEN = RowMetrics(("namespace", "persistentvolumeclaim"), lambda row: (row.record.namespace, row.record.name))

    @BROKEN.metric("clonewatch_test_broken", GAUGE, "Declares the label a, renders a and b.", ("a",))
    def _broken(row):
        return ("x", "y"), 1

    SPEC = rows("broken", 99, BROKEN, lambda d: d.pvcs, lambda inv, k: inv.pvcs.get(k))
''')


@pytest.fixture
def broken_collector(tmp_path, monkeypatch):
    """The broken collector in a module of its own, found by the registry like the shipped ones."""
    folder = tmp_path / "more_collectors"
    folder.mkdir()
    (folder / "broken_example.py").write_text(BROKEN_COLLECTOR)
    monkeypatch.setattr(collectors_package, "__path__", [*collectors_package.__path__, str(folder)])
    collector_registry.specs.cache_clear()
    yield
    collector_registry.specs.cache_clear()


async def test_a_failed_rebuild_is_counted_and_the_last_metrics_stay(kube, tmp_path, monkeypatch, broken_collector):
    settings = load([f"--kubeconfig={kube.write_kubeconfig(tmp_path / 'kubeconfig')}", "--rebuild.debounce=0.05",
                     "--no-rbd.enabled", "--no-vpc.enabled"])
    exporter = Exporter(settings)
    api = load_api_client(str(tmp_path / "kubeconfig"))
    await exporter.start(api)
    try:
        deadline = time.monotonic() + 20
        while exporter.not_ready():
            assert time.monotonic() < deadline, exporter.not_ready()
            await asyncio.sleep(0.02)
        before = exporter.body
        assert "# TYPE clonewatch_test_broken gauge" in before.decode(), "the registry found the broken collector"
        assert exporter.rebuild_failures == 0, "no PVC yet: nothing rendered its bad line"
        pvc = next(o for o in scenario.kubernetes_objects(POOL) if o["kind"] == "PersistentVolumeClaim")
        kube.create(pvc)          # a PVC row: the broken metric renders, the rebuild fails
        while exporter.rebuild_failures == 0:
            assert time.monotonic() < deadline, "the rebuild did not fail"
            await asyncio.sleep(0.02)
        text = exporter.scrape(False).decode()
        failures = float(re.search(r"^clonewatch_rebuild_failures_total (\S+)$", text, re.M).group(1))
        assert failures >= 1 and "clonewatch_test_broken{" not in text
        assert exporter.body == before, "the last good object metrics keep being served"
    finally:
        await exporter.stop()
        api.close()
