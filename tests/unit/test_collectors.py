"""Each collector, row in -> exact exposition lines out (no Ceph, no Kubernetes)."""

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from exporter.backends.base import BackgroundCopy, TargetState, Volume, VolumeRef
from exporter.collectors import backend, flashcopy, kubernetes, pvc, source, storageclass, volume
from exporter.inventory.dirty import Dirty
from exporter.kube.resources import PVC, STORAGECLASS
from exporter.kube.store import Store
from exporter.model.classify import CloneRecord
from exporter.model.efficiency import FamilyNumbers
from exporter.model.rows import FamilyRow, PvcRow, StorageClassRow, VolumeRow

REF = VolumeRef("rbd", "pool", "pool/csi-vol-1")
CLONE = CloneRecord(namespace="vms", name="vm-1", storageclass="rbd-sc", provisioner="rbd.csi.ceph.com",
                    volume="pv-1", volume_ref=REF, provisioned_bytes=64 << 20, is_clone=True,
                    source_kind="PersistentVolumeClaim", source_namespace="os", source_name="rhel9",
                    family_kind="PersistentVolumeClaim", family_namespace="os", family_name="rhel9",
                    clone_type="copy", expected_clone_type="csi-clone", expected_from="storageprofile",
                    fallback_reason='No"Snap\\Class', fallback=True)
PLAIN = CloneRecord(namespace="vms", name="data", storageclass="", provisioner="", volume="",
                    volume_ref=None, provisioned_bytes=None, is_clone=False)


def lines(family, row):
    """A row rendered by a collector's declared metrics: metric name -> its line, for those it has."""
    return family.lines(row)


def test_pvc_clone_row():
    got = lines(pvc.PVC, PvcRow(CLONE, consumed_bytes=8 << 20, depth=1))
    who = 'namespace="vms",persistentvolumeclaim="vm-1"'
    assert got == {
        "clonewatch_pvc_info": f'clonewatch_pvc_info{{{who},storageclass="rbd-sc",provisioner="rbd.csi.ceph.com",'
                               f'volume="pv-1",backend="rbd"}} 1\n',
        "clonewatch_pvc_clone_info": f'clonewatch_pvc_clone_info{{{who},source_kind="PersistentVolumeClaim",'
                                     f'source_namespace="os",source_name="rhel9",clone_type="copy",'
                                     f'expected_clone_type="csi-clone",expected_from="storageprofile",'
                                     f'fallback_reason="No\\"Snap\\\\Class"}} 1\n',
        "clonewatch_pvc_clone_fallback": f"clonewatch_pvc_clone_fallback{{{who}}} 1\n",
        "clonewatch_pvc_provisioned_bytes": f"clonewatch_pvc_provisioned_bytes{{{who}}} 67108864\n",
        "clonewatch_pvc_consumed_bytes": f'clonewatch_pvc_consumed_bytes{{{who},backend="rbd"}} 8388608\n',
        "clonewatch_pvc_volume_info": f'clonewatch_pvc_volume_info{{{who},backend="rbd",target="pool",'
                                      f'backend_volume="pool/csi-vol-1"}} 1\n',
        "clonewatch_pvc_clone_depth": f"clonewatch_pvc_clone_depth{{{who}}} 1\n",
    }


def test_pvc_row_that_is_not_a_clone_nor_measured():
    got = lines(pvc.PVC, PvcRow(PLAIN, consumed_bytes=None, depth=None))
    assert got == {"clonewatch_pvc_info": 'clonewatch_pvc_info{namespace="vms",persistentvolumeclaim="data",'
                                          'storageclass="",provisioner="",volume="",backend="none"} 1\n'}


def test_family_rows_measured_and_not():
    who = 'source_namespace="os",source_name="rhel9",backend="rbd"'
    got = lines(source.FAMILY, FamilyRow("os", "rhel9", "rbd", 3, FamilyNumbers(100, 400, 300, 0.75)))
    assert got == {"clonewatch_source_clones": f"clonewatch_source_clones{{{who}}} 3\n",
                   "clonewatch_source_consumed_bytes": f"clonewatch_source_consumed_bytes{{{who}}} 100\n",
                   "clonewatch_source_full_copy_bytes": f"clonewatch_source_full_copy_bytes{{{who}}} 400\n",
                   "clonewatch_source_saved_bytes": f"clonewatch_source_saved_bytes{{{who}}} 300\n",
                   "clonewatch_source_efficiency_ratio": f"clonewatch_source_efficiency_ratio{{{who}}} 0.75\n"}
    unmeasured = lines(source.FAMILY, FamilyRow("os", "rhel9", "rbd", 3, None))
    assert unmeasured == {"clonewatch_source_clones": f"clonewatch_source_clones{{{who}}} 3\n"}, \
        "bytes are absent, not zero, while a member cannot be measured"


def test_storageclass_row():
    got = lines(storageclass.STORAGECLASS, StorageClassRow("rbd-sc", "rbd.csi.ceph.com", "csi-clone"))
    assert got == {"clonewatch_storageclass_clone_strategy_info":
                   'clonewatch_storageclass_clone_strategy_info{storageclass="rbd-sc",provisioner="rbd.csi.ceph.com",'
                   'expected_clone_type="csi-clone"} 1\n'}


def test_volume_rows_with_and_without_origin():
    who = 'backend="vpc",target="vpc-block",volume="r006-1"'
    got = lines(volume.VOLUME, VolumeRow("vpc", Volume("r006-1", "vpc-block", 10, 10, origin="snap-1"), 0))
    assert got == {"clonewatch_volume_info": f'clonewatch_volume_info{{{who},parent="",state="live"}} 1\n',
                   "clonewatch_volume_consumed_bytes": f"clonewatch_volume_consumed_bytes{{{who}}} 10\n",
                   "clonewatch_volume_provisioned_bytes": f"clonewatch_volume_provisioned_bytes{{{who}}} 10\n",
                   "clonewatch_volume_clone_depth": f"clonewatch_volume_clone_depth{{{who}}} 0\n",
                   "clonewatch_volume_origin_info": f'clonewatch_volume_origin_info{{{who},origin="snap-1"}} 1\n'}
    plain = lines(volume.VOLUME, VolumeRow("rbd", Volume("p/c", "p", 4, 8, parent="p/g"), 1))
    assert "clonewatch_volume_origin_info" not in plain
    assert plain["clonewatch_volume_info"] == \
        'clonewatch_volume_info{backend="rbd",target="p",volume="p/c",parent="p/g",state="live"} 1\n'
    trashed = lines(volume.VOLUME, VolumeRow("rbd", Volume("p/g", "p", 4, 8, trashed=True, fast_diff=False), 0))
    assert 'parent="",state="trash"} 1' in trashed["clonewatch_volume_info"]
    assert trashed["clonewatch_volume_fast_diff"] == \
        'clonewatch_volume_fast_diff{backend="rbd",target="p",volume="p/g"} 0\n'


def test_volume_row_with_a_broken_chain():
    row = VolumeRow("qcow2", Volume("/d/c.qcow2", "/d", 4, 8, parent="/gone/g.qcow2"), 1, broken="backing-file-missing")
    assert lines(volume.VOLUME, row)["clonewatch_volume_chain_broken_info"] == (
        'clonewatch_volume_chain_broken_info{backend="qcow2",target="/d",volume="/d/c.qcow2",parent="/gone/g.qcow2",'
        'reason="backing-file-missing"} 1\n')


def test_flashcopy_row():
    copy = BackgroundCopy("fcmap3", "copying", 0.25, 50)
    row = VolumeRow("flashsystem", Volume("fs1/T", "fs1", 1, 2, parent="fs1/S", copy=copy), 1)
    who = 'backend="flashsystem",target="fs1",volume="fs1/T"'
    assert lines(flashcopy.COPY, row) == {
        "clonewatch_flashcopy_info": f'clonewatch_flashcopy_info{{{who},source_volume="fs1/S",mapping="fcmap3",'
                                     f'status="copying"}} 1\n',
        "clonewatch_flashcopy_progress_ratio": f"clonewatch_flashcopy_progress_ratio{{{who}}} 0.25\n",
        "clonewatch_flashcopy_copy_rate": f"clonewatch_flashcopy_copy_rate{{{who}}} 50\n"}


def test_collector_text_has_headers_once_and_rows_sorted_by_key():
    [collector] = pvc.SPEC.build(None)
    section = collector.section
    section.replace({("vms", "vm-1"): PvcRow(CLONE, 1, 1), ("vms", "data"): PvcRow(PLAIN, None, None)}.items())
    text = section.text()
    assert text.count("# TYPE clonewatch_pvc_info gauge\n") == 1
    info = [line for line in text.splitlines() if line.startswith("clonewatch_pvc_info{")]
    assert len(info) == 2
    assert "# TYPE clonewatch_pvc_consumed_bytes gauge\nclonewatch_pvc_consumed_bytes{" in text


def _exposition(collector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def test_backend_collector_up_down_and_age():
    up = TargetState("pool", up=True, attempts=2, failures=1, last_success=1.0, duration_seconds=0.5,
                     volumes={"pool/a": Volume("pool/a", "pool", 1, 1)})
    down = TargetState("other", up=False, attempts=1, failures=1)
    text = _exposition(backend.BackendCollector(lambda: [("rbd", up), ("rbd", down)]))
    assert 'clonewatch_backend_up{backend="rbd",target="pool"} 1.0' in text
    assert 'clonewatch_backend_up{backend="rbd",target="other"} 0.0' in text
    assert 'clonewatch_backend_volumes{backend="rbd",target="pool"} 1.0' in text
    assert 'clonewatch_backend_refresh_failures_total{backend="rbd",target="other"} 1.0' in text
    assert 'clonewatch_backend_cache_age_seconds{backend="rbd",target="pool"}' in text
    assert 'clonewatch_backend_cache_age_seconds{backend="rbd",target="other"}' not in text, \
        "no age before the first success"


def test_kubernetes_collector_counts_per_resource():
    store = Store([PVC, STORAGECLASS])
    store.replace(PVC.name, None, [{"metadata": {"name": "a", "namespace": "vms"}}])
    store.count_error(PVC.name)
    store.set_healthy(PVC.name, None, True)
    text = _exposition(kubernetes.KubernetesCollector(store))
    assert 'clonewatch_kubernetes_objects{resource="persistentvolumeclaims"} 1.0' in text
    assert 'clonewatch_kubernetes_watch_errors_total{namespace="",resource="persistentvolumeclaims"} 1.0' in text
    assert 'clonewatch_kubernetes_watch_healthy{namespace="",resource="storageclasses"} 0.0' in text


def test_clone_duration_histogram_counts_each_done_clone_once():
    from dataclasses import replace

    from exporter.collectors.duration import DurationCollector
    rows = {}
    for i, took in enumerate((3.0, 40.0, 400.0)):
        rec = replace(CLONE, name=f"vm-{i}", clone_type="csi-clone", duration_seconds=took)
        rows[("vms", f"vm-{i}")] = PvcRow(rec, None, None)
    rows[("vms", "busy")] = PvcRow(replace(CLONE, name="busy", complete=False, phase="CSICloneInProgress"), None, None)
    collector = DurationCollector()
    inv = SimpleNamespace(pvcs=rows)      # what the collector reads of an inventory
    collector.update(inv, Dirty(pvcs=set(rows)))
    text = b"".join(p for p, _ in collector.parts()).decode()
    who = 'clone_type="csi-clone",storageclass="rbd-sc"'
    assert "# TYPE clonewatch_clone_duration_seconds histogram\n" in text
    assert f'clonewatch_clone_duration_seconds_bucket{{{who},le="5"}} 1\n' in text
    assert f'clonewatch_clone_duration_seconds_bucket{{{who},le="60"}} 2\n' in text
    assert f'clonewatch_clone_duration_seconds_bucket{{{who},le="600"}} 3\n' in text
    assert f'clonewatch_clone_duration_seconds_bucket{{{who},le="+Inf"}} 3\n' in text
    assert f"clonewatch_clone_duration_seconds_count{{{who}}} 3\n" in text
    assert f"clonewatch_clone_duration_seconds_sum{{{who}}} 443\n" in text
    # Incrementally: one clone deleted, one took longer, the busy one finished in 2 s.
    del rows[("vms", "vm-0")]
    rows[("vms", "vm-1")] = PvcRow(replace(rows[("vms", "vm-1")].record, duration_seconds=4000.0), None, None)
    rows[("vms", "busy")] = PvcRow(replace(CLONE, name="busy", clone_type="csi-clone", duration_seconds=2.0), None, None)
    collector.update(inv, Dirty(pvcs={("vms", "vm-0"), ("vms", "vm-1"), ("vms", "busy")}))
    text = b"".join(p for p, _ in collector.parts()).decode()
    assert f'clonewatch_clone_duration_seconds_bucket{{{who},le="5"}} 1\n' in text
    assert f'clonewatch_clone_duration_seconds_bucket{{{who},le="600"}} 2\n' in text
    assert f"clonewatch_clone_duration_seconds_sum{{{who}}} 4402\n" in text


def test_pvc_row_in_flight_has_status_and_since():
    from dataclasses import replace
    rec = replace(CLONE, complete=False, phase="CSICloneInProgress", phase_reason="Pending", pending_since=1.5e9)
    got = lines(pvc.PVC, PvcRow(rec, None, None))
    who = 'namespace="vms",persistentvolumeclaim="vm-1"'
    assert got["clonewatch_pvc_clone_status_info"] == (
        f'clonewatch_pvc_clone_status_info{{{who},phase="CSICloneInProgress",reason="Pending"}} 1\n')
    assert got["clonewatch_pvc_clone_pending_since_timestamp_seconds"] == (
        f"clonewatch_pvc_clone_pending_since_timestamp_seconds{{{who}}} 1500000000\n")
