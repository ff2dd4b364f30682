"""/readyz means what it says: with --kubernetes.namespaces=a,b and namespace b's lists answered
seconds late, the exporter is not ready until b's objects are in /metrics, and it is ready within
one rebuild of b's last list, also when that list changed nothing (an empty namespace, an absent
CRD). Through the exporter process against the emulator, with every CDI and snapshot CRD installed
and with none."""

import time

import pytest

from tests.support.kube import KubeAPI
from tests.support.objects import pvc
from tests.support.process import ExporterProcess

SLOW = 3.0          # seconds namespace b's lists take
DEBOUNCE = 0.2      # the exporter's --rebuild.debounce


@pytest.fixture(params=[True, False], ids=["every-crd", "no-crd"])
def kube(request):
    api = KubeAPI(crds=request.param)
    yield api
    api.close()


def _watch_readiness(exporter: ExporterProcess, timeout: float = 30) -> tuple[float, list[str], str]:
    """Poll /readyz until 200: (when it turned 200, the reasons it gave before, /metrics right then)."""
    reasons: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, body, _ = exporter.get("/readyz")
        except OSError:
            time.sleep(0.05)
            continue
        if status == 200:
            return time.time(), reasons, exporter.metrics_text()
        reasons.append(body.decode())
        time.sleep(0.05)
    raise AssertionError(f"not ready in {timeout}s: {reasons[-1:]}\n{exporter.logs()[-2000:]}")


def _start(kube, tmp_path) -> ExporterProcess:
    return ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp_path / 'kubeconfig')}",
                            "--kubernetes.namespaces=a,b", f"--rebuild.debounce={DEBOUNCE}",
                            "--no-rbd.enabled", "--no-vpc.enabled"], tmp_path / "exporter.log")


def _last_list(kube, namespace: str) -> float:
    """When the emulator answered the namespace's last list (inf: none yet)."""
    return max((at for _, ns, at in kube.emu.lists_served if ns == namespace), default=float("inf"))


def test_not_ready_before_the_slow_namespace_is_rendered(kube, tmp_path):
    kube.create(pvc("a", "disk-a", "sc"))
    kube.create(pvc("b", "disk-b", "sc"))
    kube.emu.namespace_list_delay["b"] = SLOW
    exporter = _start(kube, tmp_path)
    try:
        ready_at, before, text = _watch_readiness(exporter)
        assert 'persistentvolumeclaim="disk-b"' in text, "ready before namespace b's PVC was rendered"
        assert 'persistentvolumeclaim="disk-a"' in text
        assert any("persistentvolumeclaims in namespace b not listed yet" in r for r in before), before[-3:]
        assert ready_at - _last_list(kube, "b") < 1.5, "ready more than one rebuild after b's last list"
        assert 'clonewatch_kubernetes_watch_healthy{namespace="b",resource="persistentvolumeclaims"} 1.0' in text
        assert 'clonewatch_kubernetes_watch_healthy{namespace="",resource="persistentvolumes"} 1.0' in text
    finally:
        exporter.stop()


def test_ready_within_a_rebuild_of_a_last_list_that_changed_nothing(kube, tmp_path):
    """Namespace b holds nothing (and with no CRDs installed its lists answer 404): its late lists
    change no object, and readiness must follow them at once, not wait for an unrelated event."""
    kube.create(pvc("a", "disk-a", "sc"))
    kube.emu.namespace_list_delay["b"] = SLOW
    exporter = _start(kube, tmp_path)
    try:
        ready_at, before, text = _watch_readiness(exporter)
        last_b = _last_list(kube, "b")
        assert before, "never reported not ready"
        assert ready_at >= last_b, "ready before namespace b was listed"
        assert ready_at - last_b < 1.5, f"ready {ready_at - last_b:.1f}s after b's last list"
        assert 'persistentvolumeclaim="disk-a"' in text
    finally:
        exporter.stop()
