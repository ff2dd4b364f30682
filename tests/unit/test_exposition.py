import gzip

import pytest

from exporter.exposition.metric import COUNTER, GAUGE, Metric, RowMetrics, UndeclaredLabel
from exporter.exposition.section import BLOCK, Section
from exporter.exposition.text import escape, format_value, label_text, sample


def test_label_values_are_escaped():
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert sample("m", (("l", 'x"y'),), 1) == 'm{l="x\\"y"} 1\n'


def test_values():
    assert format_value(3) == "3" and format_value(0.5) == "0.5" and format_value(2.0) == "2"
    assert format_value(float("nan")) == "NaN" and format_value(float("inf")) == "+Inf"


def test_section_renders_only_changed_rows_and_keeps_key_order():
    calls = []
    metrics = RowMetrics(("k",), lambda row: (row[0],))

    @metrics.metric("m", GAUGE, "help")
    def _m(row):
        calls.append(row)
        return (), row[1]

    section = Section(metrics)
    section.replace([("b", ("b", 2)), ("a", ("a", 1))])
    assert section.rendered == 2
    text1 = section.text()
    assert text1 == '# HELP m help\n# TYPE m gauge\nm{k="a"} 1\nm{k="b"} 2\n'
    section.replace([("a", ("a", 1)), ("b", ("b", 3))])
    assert section.rendered == 1 and calls[-1] == ("b", 3)
    assert 'm{k="b"} 3' in section.text()
    section.replace([("a", ("a", 1))])
    assert section.rendered == 0 and 'k="b"' not in section.text()


def two_metrics(every):
    """A row renders a line of m1, and of m2 when its value is a multiple of `every`."""
    metrics = RowMetrics(("k",), lambda row: (row[0],))
    metrics.metric("m1", GAUGE, "one")(lambda row: ((), row[1]))
    metrics.metric("m2", GAUGE, "two")(lambda row: ((), row[1]) if row[1] % every == 0 else None)
    return metrics


def test_section_gzip_members_are_one_stream_equal_to_the_text_across_block_splits():
    render = two_metrics(every=3)
    section = Section(render)
    keys = [f"k{i:05d}" for i in range(0, 3 * BLOCK * 2, 2)]
    for i, k in enumerate(reversed(keys)):
        section.put(k, (k, i))
    for i, k in enumerate(keys[::5]):       # change, remove and add rows after the blocks split
        section.put(k, (k, 1000 + i))
    for k in keys[1::7]:
        section.put(k, None)
    for i in range(1, 3 * BLOCK, 3):
        section.put(f"k{i:05d}", (f"k{i:05d}", i))
    want = dict(section._rows)
    fresh = Section(render)
    fresh.replace(sorted(want.items()))
    parts = section.parts()
    text = b"".join(p for p, _ in parts)
    assert text == b"".join(p for p, _ in fresh.parts())
    assert gzip.decompress(b"".join(g for _, g in parts)) == text
    body = text.decode()
    rows = [line.split('"')[1] for line in body.splitlines() if line.startswith("m1{")]
    assert rows == sorted(want) and body.count("# TYPE m2 gauge") == 1


def test_fill_builds_what_put_builds_and_takes_changes_after():
    render = two_metrics(every=4)
    rows = [(f"k{i:05d}", (f"k{i:05d}", i)) for i in range(5 * BLOCK + 3)]
    shuffled = rows[1::2] + rows[::2] + [("gone", None)]
    filled, put = Section(render), Section(render)
    filled.fill(iter(shuffled))
    for key, row in shuffled:
        put.put(key, row)
    assert filled.rendered == len(rows) and len(filled) == len(rows)
    assert all(not b.rows and len(b.keys) <= BLOCK for b in filled._blocks), "joined at rest, a block at a time"
    text = b"".join(p for p, _ in filled.parts())
    assert text == b"".join(p for p, _ in put.parts())
    # Later changes land in the filled blocks as in any others.
    for key, row in rows[::7]:
        filled.put(key, (key, row[1] + 1))
        put.put(key, (key, row[1] + 1))
    filled.put(rows[3][0], None)
    put.put(rows[3][0], None)
    parts = filled.parts()
    assert b"".join(p for p, _ in parts) == b"".join(p for p, _ in put.parts())
    assert gzip.decompress(b"".join(g for _, g in parts)) == b"".join(p for p, _ in parts)
    # A section that holds rows takes fill() as puts.
    filled.fill([(rows[5][0], None), ("zz", ("zz", 8))])
    assert rows[5][0] not in filled._rows and 'm2{k="zz"} 8' in filled.text()


def test_a_volatile_metric_recompresses_only_the_stretch_of_rows_that_changed(monkeypatch):
    import exporter.exposition.section as exposition
    render = RowMetrics(("k",), lambda row: (row[0],))
    render.metric("m1", GAUGE, "one")(lambda row: ((), 1))
    render.metric("bytes", GAUGE, "two", volatile=True)(lambda row: ((), row[1]))
    rows = {f"k{i:05d}": (f"k{i:05d}", i) for i in range(3 * BLOCK)}
    section = Section(render)
    section.fill(rows.items())
    section.parts()
    compressed: list[bytes] = []
    real = exposition.gzip_member
    monkeypatch.setattr(exposition, "gzip_member", lambda data: compressed.append(data) or real(data))
    for key in ("k00005", "k00200"):          # two rows, two blocks, one stretch of CHUNK rows each
        rows[key] = (key, rows[key][1] * 1000 + 7)
        section.put(key, rows[key])
    parts = section.parts()
    assert len(compressed) == 2 and all(data.count(b"\n") == exposition.CHUNK for data in compressed)
    assert b"bytes{k=\"k00005\"} 5007" in compressed[0] and b"m1{" not in b"".join(compressed)
    # Longer and shorter values, a removal and an insertion (which moves the stretches) in between.
    for i, key in enumerate(list(rows)[::37]):
        rows[key] = (key, 10 ** (i % 12))
        section.put(key, rows[key])
    del rows["k00100"]
    section.put("k00100", None)
    section.parts()
    rows["k00100x"] = ("k00100x", 3)
    section.put("k00100x", rows["k00100x"])
    parts = section.parts()
    fresh = Section(render)
    fresh.fill(rows.items())
    text = b"".join(p for p, _ in parts)
    assert text == b"".join(p for p, _ in fresh.parts())
    assert gzip.decompress(b"".join(g for _, g in parts)) == text


def test_label_text_renders_shared_labels_once():
    who = label_text((("namespace", "vms"), ("pvc", 'a"b')))
    assert who == 'namespace="vms",pvc="a\\"b"'
    assert sample("m", label_text((("backend", "rbd"),), who), 2) == 'm{namespace="vms",pvc="a\\"b",backend="rbd"} 2\n'
    assert sample("m", who, 1) == sample("m", (("namespace", "vms"), ("pvc", 'a"b')), 1)
    assert label_text((), who) == who and label_text((("a", "b"),)) == 'a="b"' and sample("m", "", 1) == "m 1\n"


def test_a_row_metric_renders_only_its_declared_labels():
    metrics = RowMetrics(("namespace", "persistentvolumeclaim"), lambda row: row[:2])

    @metrics.metric("m_info", GAUGE, "help", ("phase",))
    def _info(row):
        return row[2], 1

    assert metrics.metrics[0].labels == ("namespace", "persistentvolumeclaim", "phase")
    assert metrics.texts(("vms", "a", ("Bound",))) == ['m_info{namespace="vms",persistentvolumeclaim="a",phase="Bound"} 1\n']
    with pytest.raises(UndeclaredLabel, match="m_info"):
        metrics.texts(("vms", "a", ("Bound", "extra")))      # a label it never declared
    with pytest.raises(UndeclaredLabel, match="m_info"):
        metrics.texts(("vms", "a", ()))                       # a declared label left out
    short = RowMetrics(("namespace", "persistentvolumeclaim"), lambda row: row[:1])
    short.metric("m_other", GAUGE, "help")(lambda row: ((), 1))
    with pytest.raises(UndeclaredLabel):
        short.texts(("vms", "a"))                             # a shared label left out
    section = Section(metrics)
    with pytest.raises(UndeclaredLabel):
        section.put(("vms", "b"), ("vms", "b", ("x", "y")))


def test_a_scrape_time_family_refuses_undeclared_labels():
    m = Metric("m_total_things", COUNTER, "help", ("code",))
    family = m.family()
    family.add_metric(["401"], 3)
    assert [(s.name, s.labels, s.value) for s in family.samples] == [("m_total_things_total", {"code": "401"}, 3)]
    with pytest.raises(UndeclaredLabel):
        family.add_metric(["401", "extra"], 1)
    with pytest.raises(UndeclaredLabel):
        Metric("g", GAUGE, "help").family().add_metric(["x"], 1)
    assert m.samples == ("m_total_things_total",)


def test_a_histogram_line_takes_its_bucket_bound_after_the_declared_labels():
    m = Metric("h_seconds", "histogram", "help", ("clone_type",))
    assert m.line(("csi-clone",), 3, "_bucket", 'le="5"') == 'h_seconds_bucket{clone_type="csi-clone",le="5"} 3\n'
    assert m.line(("csi-clone",), 2.5, "_sum") == 'h_seconds_sum{clone_type="csi-clone"} 2.5\n'
    with pytest.raises(UndeclaredLabel):
        m.line((), 1, "_count")
