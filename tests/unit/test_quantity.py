import pytest

from exporter.kube.quantity import parse_bytes


@pytest.mark.parametrize("text,expected", [
    ("64Mi", 64 * 2**20), ("10Gi", 10 * 2**30), ("1Ti", 2**40), ("1G", 10**9), ("500M", 5 * 10**8),
    ("1k", 1000), ("1.5Gi", 3 * 2**29), ("1e3", 1000), ("100", 100), ("1500m", 2), (" 2Ki ", 2048), (5, 5),
])
def test_parses(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "Gi", "lots", "-1Gi", "1.2.3", None, True, [], {}, -5, "1Qi", "nan", "inf"])
def test_rejects(text):
    assert parse_bytes(text) is None
