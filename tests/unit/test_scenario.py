import subprocess
import sys

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.drift import plan
from loadgen.harness import projected_bytes
from loadgen.scenario import ScenarioError, parse

GOOD = {"name": "t", "backend": "qcow2", "qcow2": {"dir": "/tmp/x"},
        "golden": {"size": "64MiB"}, "groups": [{"name": "cow", "method": "clone", "count": 3},
                                                  {"name": "full", "method": "full-copy", "count": 1}],
        "drift": {"levels": ["1%", "8MiB"], "pattern": "random-4k"}}


def with_(path, value):
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return doc


def test_good_scenario():
    sc = parse(GOOD)
    assert sc.golden_size == 64 * 2**20 and sc.golden_fill == sc.golden_size
    assert sc.drift_levels == (int(64 * 2**20 * 0.01), 8 * 2**20) and sc.clone_count == 4


@pytest.mark.parametrize("path,value,key", [
    ("backend", "tape", "backend"),
    ("golden.size", "huge", "golden.size"),
    ("golden.fill", "128MiB", "golden.fill"),
    ("golden.colour", "red", "golden.colour"),
    ("drift.levels", ["8MiB", "1MiB"], "drift.levels"),
    ("drift.levels", ["120%"], "drift.levels[0]"),
    ("drift.pattern", "zigzag", "drift.pattern"),
    ("drift.compressible", 2, "drift.compressible"),
    ("groups", [], "groups"),
    ("groups", [{"name": "a", "method": "clone", "count": 0}], "groups[0].count"),
    ("groups", [{"name": "a", "method": "teleport"}], "groups[0].method"),
    ("groups", [{"name": "a", "method": "clone", "extra": 1}], "groups[0].extra"),
    ("limits.max_clones", 2, "limits.max_clones"),
    ("schedule.interval", "soon", "schedule.interval"),
    ("qcow2.dir", "", "qcow2.dir"),
    ("name", "Not OK", "name"),
    ("typo", 1, "typo"),
])
def test_bad_key_is_named(path, value, key):
    with pytest.raises(ScenarioError) as err:
        parse(with_(path, value))
    assert err.value.key == key


def test_cli_exits_2_naming_the_key(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(with_("drift.pattern", "zigzag")))
    proc = subprocess.run([sys.executable, "-m", "loadgen", "harness", "--scenario", str(f), "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "drift.pattern" in proc.stderr


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                              st.sampled_from(["1GiB", "5%", "clone", "qcow2", "sequential"])),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.sampled_from(
                                                ["name", "backend", "golden", "groups", "drift", "size", "levels",
                                                 "count", "method", "qcow2", "dir", "limits", "x"]), inner,
                                                max_size=5)), max_leaves=20))
def test_fuzzed_scenarios_parse_or_name_a_key(doc):
    try:
        parse(doc)
    except ScenarioError as err:
        assert err.key


def test_drift_plans_are_cumulative_and_exact():
    size = 64 * 2**20
    for pattern in ("sequential", "random-4k"):
        a = plan(size, 0, 1 * 2**20, pattern, 7)
        b = plan(size, 1 * 2**20, 3 * 2**20, pattern, 7)
        blocks = [(o, n) for o, n in a + b]
        covered = set()
        for off, n in blocks:
            for x in range(off, off + n, 4096):
                assert x not in covered, "no byte is written twice across levels"
                covered.add(x)
        assert len(covered) * 4096 == 3 * 2**20
        assert all(off + n <= size for off, n in blocks)
    seq = plan(size, 0, 9 * 2**20, "sequential", 0)
    assert seq[0] == (0, 4 * 2**20) and seq[-1] == (8 * 2**20, 2**20)


def test_projected_bytes_counts_copy_up_for_random_writes():
    sc = parse(GOOD)
    # 3 clones: 8 MiB of 4 KiB random writes copy up whole 64 KiB clusters (capped at the disk);
    # 1 full copy: the whole disk; the golden: its fill.
    assert projected_bytes(sc, golden_exists=False) == 64 * 2**20 + 3 * 64 * 2**20 + 64 * 2**20
    seq = parse(with_("drift.pattern", "sequential"))
    assert projected_bytes(seq, golden_exists=True) == 3 * 8 * 2**20 + 64 * 2**20


def test_every_example_scenario_is_valid():
    from pathlib import Path

    from loadgen.scenario import load
    examples = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
    assert len(examples) >= 3
    for path in examples:
        sc = load(str(path))
        assert sc.groups and sc.name


def test_drift_that_keeps_coming_is_capped_and_counted():
    sc = parse(with_("drift", {"levels": ["1MiB"], "rate": "2MiB", "cap": "10MiB", "pattern": "sequential"}))
    assert (sc.drift_rate, sc.drift_cap) == (2 * 2**20, 10 * 2**20)
    assert projected_bytes(sc, golden_exists=True) == 3 * 10 * 2**20 + 64 * 2**20, "every clone at the cap"
    assert parse(with_("drift", {"levels": [], "rate": "1%"})).drift_cap == 32 * 2**20, "cap defaults to half"
    for bad, key in (({"rate": "1MiB", "cap": 0}, "drift.cap"), ({"rate": "1MiB", "cap": "1GiB"}, "drift.cap"),
                     ({"rate": "lots"}, "drift.rate")):
        with pytest.raises(ScenarioError) as err:
            parse(with_("drift", bad))
        assert err.value.key == key


def test_the_daemon_drifts_a_clone_to_the_top_level_then_by_the_rate_up_to_the_cap():
    from loadgen.daemon import Daemon
    sc = parse(with_("drift", {"levels": ["1MiB"], "rate": "2MiB", "cap": "6MiB", "pattern": "sequential"}))
    d = Daemon.__new__(Daemon)       # the arithmetic only: no cloner, no storage
    d.sc = sc
    MiB, top = 2**20, 1 * 2**20
    steps, now = [], 0
    for _ in range(5):
        now = d.drift_target(now, top)
        steps.append(now // MiB)
    assert steps == [1, 3, 5, 6, 6]
    plain = parse(with_("drift.pattern", "sequential"))
    d.sc = plain
    assert d.drift_target(0, 8 * MiB) == 8 * MiB and d.drift_target(8 * MiB, 8 * MiB) == 8 * MiB


KUBE = {"name": "k", "backend": "kubernetes", "golden": {"size": "64MiB"},
        "kubernetes": {"namespace": "lg", "golden": {"namespace": "img", "name": "gold"},
                       "source_vm": {"name": "rhel9-src", "disk": "rootdisk"},
                       "exporter_url": "http://exporter:9753/metrics"},
        "groups": [{"name": "vm", "method": "vmclone", "count": 2}, {"name": "dv", "method": "datavolume"}]}


def test_a_vmclone_group_clones_the_configured_source_vm():
    sc = parse(KUBE)
    assert sc.kube is not None and (sc.kube.source_vm, sc.kube.source_vm_disk) == ("rhel9-src", "rootdisk")
    assert [g.method for g in sc.groups] == ["vmclone", "datavolume"]
    assert projected_bytes(sc, golden_exists=True) == 0, "no drift: a VM clone's disks share all they read"
    first_disk = yaml.safe_load(yaml.safe_dump(KUBE))
    first_disk["kubernetes"]["source_vm"] = {"name": "rhel9-src"}
    assert parse(first_disk).kube.source_vm_disk == ""


@pytest.mark.parametrize("change,key", [
    ({"source_vm": None}, "kubernetes.source_vm"),
    ({"source_vm": {"disk": "rootdisk"}}, "kubernetes.source_vm.name"),
    ({"source_vm": {"name": "x", "colour": "red"}}, "kubernetes.source_vm.colour"),
    ({"source_vm": "rhel9-src"}, "kubernetes.source_vm"),
])
def test_a_bad_source_vm_is_named(change, key):
    doc = yaml.safe_load(yaml.safe_dump(KUBE))
    doc["kubernetes"].update(change)
    doc["kubernetes"] = {k: v for k, v in doc["kubernetes"].items() if v is not None}
    with pytest.raises(ScenarioError) as err:
        parse(doc)
    assert err.value.key == key


def test_a_vmclone_group_takes_no_storage_class_and_native_backends_no_source_vm():
    doc = yaml.safe_load(yaml.safe_dump(KUBE))
    doc["groups"][0]["storage_class"] = "fast"
    with pytest.raises(ScenarioError) as err:
        parse(doc)
    assert err.value.key == "groups[0].storage_class"
    with pytest.raises(ScenarioError) as err:
        parse(with_("groups", [{"name": "vm", "method": "vmclone"}]))
    assert err.value.key == "groups[0].method", "vmclone is a Kubernetes method"
