"""loadgen in Kubernetes mode, end to end: kmock serves the API, the test plays CDI, ceph-csi and
the kubelet on the real Ceph cluster (tests/support/fake_cluster.py), the exporter runs as a
process and the harness reads its bytes from /metrics."""

import json

import pytest

from loadgen.harness import Harness
from loadgen.scenario import parse
from tests.support.fake_cluster import FakeCluster
from tests.support.objects import ODF_RBD, datavolume, pv_rbd, pvc, storageclass, storageprofile
from tests.support.process import ExporterProcess

MiB = 2**20
NS = "lg"


@pytest.fixture(scope="module")
def cluster(kube, pool, tmp_path_factory):
    pool.golden("gold-img", 64)
    for obj in (storageclass("rbd-sc", ODF_RBD), storageclass("copy-sc", ODF_RBD), storageprofile("rbd-sc", "csi-clone"),
                pv_rbd("pv-gold", pool.name, "gold-img", storageclass_name="rbd-sc"),
                pvc("img", "gold", "rbd-sc", volume="pv-gold")):
        kube.create(obj)
    # Someone else's objects in the same namespace, one of them named like ours.
    kube.create(datavolume(NS, "cwlg-kt-cow-00007", source={"pvc": {"namespace": "img", "name": "gold"}}))
    kube.create(pvc(NS, "other", "rbd-sc"))
    fake = FakeCluster(kube, pool, NS, "gold-img", smart={"rbd-sc"})
    fake.done_dvs.add("cwlg-kt-cow-00007")           # leave the foreign DataVolume alone
    fake.start()
    tmp = tmp_path_factory.mktemp("kube-exporter")
    exporter = ExporterProcess([f"--kubeconfig={kube.write_kubeconfig(tmp / 'kubeconfig')}",
                                f"--ceph.conf={pool.conf}", "--rbd.refresh-interval=0.5",
                                "--kubernetes.read-timeout=5"], tmp / "exporter.log")
    exporter.wait_ready()
    yield kube, pool, fake, exporter, tmp
    exporter.stop()
    fake.stop()
    assert not fake.errors, fake.errors


def scenario(exporter, tmp):
    return parse({
        "name": "kt", "backend": "kubernetes", "golden": {"size": "64MiB"},
        "kubernetes": {"namespace": NS, "golden": {"namespace": "img", "name": "gold"}, "volume_mode": "Block",
                       "exporter_url": exporter.url + "/metrics", "kubeconfig": str(tmp / "kubeconfig"),
                       "timeout": "60s", "poll": "0.1s"},
        "groups": [{"name": "cow", "method": "datavolume", "count": 3, "storage_class": "rbd-sc"},
                   {"name": "copy", "method": "datavolume", "count": 2, "storage_class": "copy-sc"}],
        "drift": {"levels": ["4MiB", "8MiB"]}, "concurrency": 3})


def ours(kube, plural):
    if plural == "datavolumes":
        items = kube.custom.list_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", NS, plural)["items"]
    elif plural == "jobs":
        items = kube.custom.list_namespaced_custom_object("batch", "v1", NS, plural)["items"]
    else:
        items = json.loads(kube.core.list_namespaced_persistent_volume_claim(NS, _preload_content=False).data)["items"]
    return sorted(o["metadata"]["name"] for o in items
                  if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "clonewatch-loadgen")


def test_kubernetes_harness_measures_through_the_exporter_and_cleans_up(cluster, tmp_path):
    kube, _pool, _fake, exporter, tmp = cluster
    harness = Harness(scenario(exporter, tmp), tmp_path / "out")
    points = harness.run_all()
    assert harness.failures == 0
    by = {p.label: p for p in points}
    assert list(by) == ["baseline", "cloned", "drift-4MiB", "drift-8MiB"]
    assert by["cloned"].clone_types == ["copy", "csi-clone"]
    g = 64 * MiB
    for label, drift in (("cloned", 0), ("drift-4MiB", 4 * MiB), ("drift-8MiB", 8 * MiB)):
        cow, copy = by[label].groups["cow"], by[label].groups["copy"]
        assert cow.measured == 3 and copy.measured == 2, by[label].missing
        assert cow.clones_consumed_bytes == pytest.approx(3 * drift, abs=0.02 * 3 * max(drift, 4 * MiB))
        assert cow.efficiency_ratio == pytest.approx(1 - (g + 3 * drift) / (g + 3 * (g + drift)), abs=0.02)
        assert copy.efficiency_ratio == pytest.approx(0, abs=0.01)
        assert copy.clones_consumed_bytes == 2 * g
    # Only what it created is gone; the foreign objects stay.
    assert ours(kube, "datavolumes") == [] and ours(kube, "persistentvolumeclaims") == [] and ours(kube, "jobs") == []
    dvs = kube.custom.list_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", NS, "datavolumes")["items"]
    assert [d["metadata"]["name"] for d in dvs] == ["cwlg-kt-cow-00007"]
    assert "other" in {p["metadata"]["name"] for p in json.loads(
        kube.core.list_namespaced_persistent_volume_claim(NS, _preload_content=False).data)["items"]}


def test_restart_adopts_leftovers_without_touching_foreign_objects(cluster, tmp_path):
    kube, _pool, _fake, exporter, tmp = cluster
    sc = scenario(exporter, tmp)
    first = Harness(sc, tmp_path / "o1", keep=True)
    first.run_all()
    assert first.failures == 0
    assert len(ours(kube, "datavolumes")) == 5
    second = Harness(sc, tmp_path / "o2")
    assert second.remove_owned("test") == 5
    assert ours(kube, "datavolumes") == [] and ours(kube, "persistentvolumeclaims") == []
    dvs = kube.custom.list_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", NS, "datavolumes")["items"]
    assert [d["metadata"]["name"] for d in dvs] == ["cwlg-kt-cow-00007"]
