"""The harness on real storage: qcow2 files made by qemu-img/qemu-io, and RBD images on the
local Ceph cluster. Expected bytes come from what was written, compared with what the storage
reports through the exporter's backends."""

import json
import subprocess
import sys
import tempfile

import pytest

from loadgen.cloners.names import volume_name
from loadgen.harness import Harness
from loadgen.scenario import parse
from tests.support.ceph import Pool, ceph_conf

MiB = 2**20
QCOW2_SLACK = 512 * 1024      # L2 tables and refcount blocks a clone allocates as it grows


def scenario(backend, where, pattern="sequential", levels=("1MiB", "4MiB"), cow=4, full=2, golden="32MiB"):
    doc = {"name": "t", "backend": backend, "golden": {"name": "gold", "size": golden},
           "groups": [{"name": "cow", "method": "clone", "count": cow},
                      {"name": "full", "method": "full-copy", "count": full}],
           "drift": {"levels": list(levels), "pattern": pattern}, "concurrency": 2, "batch_size": 3}
    if backend == "qcow2":
        doc["qcow2"] = {"dir": str(where)}
    else:
        doc["rbd"] = {"pool": where.name, "ceph_conf": where.conf}
    return parse(doc)


def expected_cow_ratio(golden, n, drift):
    return 1 - (golden + n * drift) / (golden + n * (golden + drift))


def test_qcow2_harness_measures_what_was_written(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    images = tmp_path / "images"
    sc = scenario("qcow2", images)
    points = Harness(sc, tmp_path / "out").run_all()
    by = {p.label: p for p in points}
    assert list(by) == ["baseline", "cloned", "drift-1MiB", "drift-4MiB"]
    g = 32 * MiB
    # The golden holds its 32 MiB (+ qcow2 metadata).
    assert g <= by["baseline"].consumed_bytes <= g + QCOW2_SLACK
    for label, drift in (("cloned", 0), ("drift-1MiB", MiB), ("drift-4MiB", 4 * MiB)):
        cow, full = by[label].groups["cow"], by[label].groups["full"]
        per_clone = (cow.clones_consumed_bytes) / 4
        assert drift <= per_clone <= drift + QCOW2_SLACK, (label, per_clone)
        assert cow.efficiency_ratio == pytest.approx(expected_cow_ratio(g, 4, drift), abs=0.02)
        assert full.efficiency_ratio == pytest.approx(0, abs=0.01)
        assert full.clones_consumed_bytes >= 2 * g
    # Outputs.
    out = tmp_path / "out"
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("label,timestamp,drift_bytes_per_clone,volumes,provisioned_bytes,consumed_bytes,"
                              "full_copy_bytes,efficiency_ratio,saved_bytes,clone_types")
    assert len(rows) == 5
    detail = json.loads(sorted((out / "points").iterdir())[-1].read_text())
    assert detail["label"] == "drift-4MiB" and detail["groups"]["cow"]["clones"] == 4
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 3 and 'class="bar"' in html
    # Cleanup: everything it created is gone (the golden too: this run made it).
    assert sorted(p.name for p in images.iterdir()) == [".clonewatch-loadgen.json"]
    # The random bytes its incompressible writes repeat were written to a temporary file: gone too.
    assert list(scratch.iterdir()) == []


def test_qcow2_random_4k_drift_copies_up_whole_clusters(tmp_path):
    sc = scenario("qcow2", tmp_path / "images", pattern="random-4k", levels=("1MiB",), cow=2, full=1)
    points = Harness(sc, tmp_path / "out").run_all()
    cow = points[-1].groups["cow"]
    per_clone = cow.clones_consumed_bytes / 2
    # 256 random 4 KiB writes land in up to 256 distinct 64 KiB clusters: many times the bytes written.
    assert per_clone >= 8 * MiB, per_clone
    assert per_clone <= 16 * MiB + QCOW2_SLACK


def test_loadgen_never_touches_foreign_files_and_adopts_its_leftovers(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(images / "foreign.qcow2"), "8M"], check=True)
    lookalike = images / f"{volume_name('t', 'cow', 99)}.qcow2"      # our naming, but not ours
    lookalike.write_bytes(b"not created by loadgen")
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in images.iterdir()}
    sc = scenario("qcow2", images, levels=("1MiB",), cow=2, full=1)
    Harness(sc, tmp_path / "o1", keep=True).run_all()          # "crashes" leaving its clones
    leftovers = sorted(p.name for p in images.glob("cwlg-*"))
    assert len(leftovers) == 4   # 3 ours + the lookalike
    h = Harness(sc, tmp_path / "o2")
    h.run_all()                                                 # adopts and removes the leftovers first
    after = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in images.iterdir() if p.name in before}
    assert after == before, "foreign files untouched"
    assert sorted(p.name for p in images.glob("cwlg-*")) == [lookalike.name]
    # The golden made by the first run stays until asked for explicitly.
    assert (images / "gold.qcow2").exists()
    proc = subprocess.run([sys.executable, "-m", "loadgen", "cleanup", "--scenario", str(_write(tmp_path, sc)),
                           "--golden"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not (images / "gold.qcow2").exists() and (images / "foreign.qcow2").exists() and lookalike.exists()


def test_a_foreign_file_where_a_clone_would_go_is_refused_not_overwritten(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    foreign = images / f"{volume_name('t', 'cow', 2)}.qcow2"
    foreign.write_bytes(b"someone else's disk")
    h = Harness(scenario("qcow2", images, levels=("1MiB",), cow=3, full=1), tmp_path / "out")
    h.run_all()
    assert h.failures == 1
    assert foreign.read_bytes() == b"someone else's disk"
    assert sorted(p.name for p in images.iterdir()) == [".clonewatch-loadgen.json", foreign.name]


def test_rbd_foreign_image_where_a_clone_would_go_is_refused(pool, tmp_path):
    pool.create(volume_name("t", "cow", 1), 4)
    sc = scenario("rbd", pool, levels=(), cow=2, full=1, golden="16MiB")
    h = Harness(sc, tmp_path / "out")
    h.run_all()
    assert h.failures == 1
    names = json.loads(pool.rbd("ls", "-p", pool.name, "--format", "json"))
    assert names == [volume_name("t", "cow", 1)], "the foreign image stays, everything of ours is gone"
    pool.rbd("rm", "--no-progress", pool.spec(volume_name("t", "cow", 1)))


def _write(tmp_path, sc):
    import yaml
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"name": sc.name, "backend": "qcow2", "qcow2": {"dir": sc.qcow2_dir},
                                 "golden": {"name": sc.golden_name, "size": sc.golden_size},
                                 "groups": [{"name": g.name, "method": g.method, "count": g.count} for g in sc.groups]}))
    return f


def test_byte_cap_is_enforced_before_anything_is_created(tmp_path):
    sc = scenario("qcow2", tmp_path / "images", cow=2, full=30)
    sc = sc.__class__(**{**sc.__dict__, "limit_max_bytes": 256 * MiB})
    with pytest.raises(Exception) as err:
        Harness(sc, tmp_path / "out").run_all()
    assert getattr(err.value, "key", "") == "limits.max_bytes"
    assert not (tmp_path / "images" / "gold.qcow2").exists()


@pytest.fixture(scope="module")
def pool():
    p = Pool(ceph_conf(), prefix="lg")
    yield p
    p.remove()


def test_rbd_harness_sequential_drift_is_exact_at_object_granularity(pool, tmp_path):
    sc = scenario("rbd", pool, levels=("4MiB", "8MiB"), cow=3, full=1, golden="64MiB")
    points = Harness(sc, tmp_path / "out").run_all()
    by = {p.label: p for p in points}
    g = 64 * MiB
    assert by["baseline"].consumed_bytes == g
    for label, drift in (("cloned", 0), ("drift-4MiB", 4 * MiB), ("drift-8MiB", 8 * MiB)):
        cow = by[label].groups["cow"]
        assert cow.clones_consumed_bytes == 3 * drift, label
        assert cow.efficiency_ratio == pytest.approx(expected_cow_ratio(g, 3, drift), abs=0.01)
        assert by[label].groups["full"].efficiency_ratio == pytest.approx(0, abs=0.01)
    names = json.loads(pool.rbd("ls", "-p", pool.name, "--format", "json"))
    assert names == [], "clones and the golden it created are removed"


def test_rbd_random_4k_drift_copies_up_whole_objects(pool, tmp_path):
    sc = scenario("rbd", pool, pattern="random-4k", levels=("1MiB",), cow=2, full=1, golden="64MiB")
    points = Harness(sc, tmp_path / "out").run_all()
    per_clone = points[-1].groups["cow"].clones_consumed_bytes / 2
    # 256 writes of 4 KiB over 16 objects of 4 MiB: nearly every object is copied up whole.
    assert per_clone >= 32 * MiB, per_clone
    (tmp_path / "rbd-random.txt").write_text(str(per_clone))
