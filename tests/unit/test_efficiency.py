import pytest

from exporter.backends.base import Volume
from exporter.model.efficiency import chain_numbers, family_numbers, logical_bytes, root_of


def chain_depth(v):
    return {vid: chain_numbers(v, vid)[1] for vid in v}

GiB = 2**30


def vols(*rows):
    return {vid: Volume(vid, "t", own, own, parent) for vid, own, parent in rows}


def test_issue_check_100_cow_clones_of_20g_with_1g_drift():
    v = vols(("golden", 20 * GiB, ""), *[(f"c{i}", 1 * GiB, "golden") for i in range(100)])
    lg = logical_bytes(v)
    n = family_numbers([(v["golden"].consumed_bytes, lg["golden"])] +
                       [(v[f"c{i}"].consumed_bytes, lg[f"c{i}"]) for i in range(100)])
    assert n.consumed_bytes == 120 * GiB and n.full_copy_bytes == 2120 * GiB
    assert n.saved_bytes == 2000 * GiB
    assert n.efficiency_ratio == pytest.approx(0.943, abs=5e-4)


def test_family_of_full_copies_saves_nothing():
    v = vols(("golden", 20 * GiB, ""), *[(f"f{i}", 20 * GiB, "") for i in range(10)])
    lg = logical_bytes(v)
    n = family_numbers([(v[k].consumed_bytes, lg[k]) for k in v])
    assert n.efficiency_ratio == 0 and n.saved_bytes == 0 and n.consumed_bytes == 220 * GiB


def test_logical_is_recursive_along_the_chain_and_depth_counts_parents():
    v = vols(("g", 100, ""), ("tmp", 1, "g"), ("c", 10, "tmp"), ("cc", 5, "c"))
    assert logical_bytes(v) == {"g": 100, "tmp": 101, "c": 111, "cc": 116}
    assert chain_depth(v) == {"g": 0, "tmp": 1, "c": 2, "cc": 3}
    assert root_of(v, "cc") == "g"


def test_missing_parent_makes_logical_unknown_but_depth_still_counts_it():
    v = vols(("c", 10, "gone"), ("cc", 5, "c"))
    assert logical_bytes(v) == {"c": None, "cc": None}
    assert chain_depth(v) == {"c": 1, "cc": 2}


def test_cycle_does_not_hang_and_is_unknown():
    v = vols(("a", 1, "b"), ("b", 2, "a"))
    assert logical_bytes(v) == {"a": None, "b": None}


def test_empty_family_ratio_is_zero():
    assert family_numbers([]).efficiency_ratio == 0.0
