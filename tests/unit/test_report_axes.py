"""The report's charts tick at round values in one unit."""

import pytest

from loadgen.report import _bars, byte_axis, nice_ticks

GiB, MiB = 2**30, 2**20


@pytest.mark.parametrize("peak,ticks", [
    (27.01, [0, 10, 20, 30]),
    (1.0, [0, 0.25, 0.5, 0.75, 1.0]),
    (7.3, [0, 2, 4, 6, 8]),
    (100, [0, 25, 50, 75, 100]),
    (0, [0, 1]),
])
def test_nice_ticks(peak, ticks):
    assert nice_ticks(peak) == pytest.approx(ticks)


def test_byte_axis_uses_one_unit_and_round_numbers():
    ticks, label = byte_axis(27.01 * GiB)
    assert [label(t) for t in ticks] == ["0 GiB", "10 GiB", "20 GiB", "30 GiB"]
    ticks, label = byte_axis(600 * MiB)
    assert [label(t) for t in ticks] == ["0 MiB", "200 MiB", "400 MiB", "600 MiB"]


def test_chart_labels_are_the_ticks_and_bars_scale_to_the_top_tick():
    svg = _bars("t", ["a"], [("s", [27.01 * GiB])], str, axis=byte_axis(27.01 * GiB))
    assert ">30 GiB</text>" in svg and ">0 GiB</text>" in svg and "MiB" not in svg
    assert "27.01" not in svg.split("<rect")[0], "no tick at the data's own maximum"
