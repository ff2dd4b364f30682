"""Collectors register themselves: a module with a SPEC is found, built and rendered, and nothing else
names it (the runtime and these tests ask the registry)."""

import textwrap
from types import SimpleNamespace

import pytest

import exporter.collectors as package
from exporter.collectors import registry
from exporter.inventory.dirty import Dirty
from exporter.model.classify import CloneRecord
from exporter.model.rows import PvcRow


def test_every_collector_module_registers_once_in_exposition_order():
    by_stage = {stage: [s.name for s in registry.specs() if s.stage == stage] for stage in ("rebuild", "scrape")}
    assert by_stage == {"rebuild": ["pvc", "source", "storageclass", "volume", "flashcopy", "duration", "vm", "vm_volume",
                                    "vmclone", "unclaimed"],
                        "scrape": ["rebuild", "backend", "rbd_reads", "web", "process", "kubernetes"]}
    names = [m.name for m in registry.metrics()]
    assert len(names) == len(set(names)), "no metric is declared twice"
    assert all(n.startswith("clonewatch_") for n in names)
    assert all(m.help and m.type in ("gauge", "counter", "histogram") for m in registry.metrics())


@pytest.fixture
def extra_collector(tmp_path, monkeypatch):
    """A collector in a module of its own, found the way the shipped ones are."""
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "capacity_example.py").write_text(textwrap.dedent('''
        """Per PVC: its capacity in GiB, rounded down."""
        from exporter.collectors.base import rows
        from exporter.exposition.metric import GAUGE, RowMetrics

        GIB = RowMetrics(("namespace", "persistentvolumeclaim"), lambda row: (row.record.namespace, row.record.name))

        @GIB.metric("clonewatch_test_pvc_capacity_gibibytes", GAUGE, "A test collector's metric.", ("storageclass",))
        def _gib(row):
            size = row.record.provisioned_bytes
            return None if size is None else ((row.record.storageclass,), size >> 30)

        SPEC = rows("capacity", 15, GIB, lambda d: d.pvcs, lambda inv, k: inv.pvcs.get(k))
    '''))
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])
    registry.specs.cache_clear()
    yield
    registry.specs.cache_clear()


def test_a_new_collector_is_one_module(extra_collector):
    assert [s.name for s in registry.specs() if s.stage == "rebuild"][:3] == ["pvc", "capacity", "source"]
    assert "clonewatch_test_pvc_capacity_gibibytes" in [m.name for m in registry.metrics()]
    rec = CloneRecord("vms", "vm-1", "rbd-sc", "rbd.csi.ceph.com", "pv-1", None, 5 << 30, False)
    inv = SimpleNamespace(pvcs={("vms", "vm-1"): PvcRow(rec, None, None)}, families={}, storageclasses={},
                          volume_rows={})
    text = b""
    for collector in registry.text_collectors(None):
        collector.update(inv, Dirty(pvcs={("vms", "vm-1")}))
        text += b"".join(p for p, _ in collector.parts())
    body = text.decode()
    assert "# TYPE clonewatch_test_pvc_capacity_gibibytes gauge\n" in body
    assert ('clonewatch_test_pvc_capacity_gibibytes{namespace="vms",persistentvolumeclaim="vm-1",'
            'storageclass="rbd-sc"} 5\n') in body
    assert body.index("clonewatch_pvc_info{") < body.index("clonewatch_test_pvc_capacity_gibibytes{") \
        < body.index("# TYPE clonewatch_source_"), "rendered in its declared order"
