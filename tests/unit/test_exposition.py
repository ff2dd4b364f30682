from exporter.exposition import MetricDef, RowCache, escape, format_value, join, sample


def test_label_values_are_escaped():
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert sample("m", (("l", 'x"y'),), 1) == 'm{l="x\\"y"} 1\n'


def test_values():
    assert format_value(3) == "3" and format_value(0.5) == "0.5" and format_value(2.0) == "2"
    assert format_value(float("nan")) == "NaN" and format_value(float("inf")) == "+Inf"


def test_row_cache_renders_only_changed_rows():
    calls = []

    def render(row):
        calls.append(row)
        return {"m": [sample("m", (("k", row[0]),), row[1])]}

    cache = RowCache(render)
    d = MetricDef("m", "gauge", "help")
    text1 = join([d], cache.update([("a", ("a", 1)), ("b", ("b", 2))]))
    assert cache.rendered == 2
    text2 = join([d], cache.update([("a", ("a", 1)), ("b", ("b", 3))]))
    assert cache.rendered == 1 and calls[-1] == ("b", 3)
    assert text1 != text2 and 'm{k="b"} 3' in text2
    text3 = join([d], cache.update([("a", ("a", 1))]))
    assert cache.rendered == 0 and 'k="b"' not in text3
    assert text3.startswith("# HELP m help\n# TYPE m gauge\n")
