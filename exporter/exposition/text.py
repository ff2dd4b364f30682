"""The Prometheus text format's pieces: escaped label values, sample values, label lists, lines."""

import math
from collections.abc import Iterable


def escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:      # rare; three scans cost less than three copies
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def format_value(value: float) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def label_text(labels: Iterable[tuple[str, str]], before: str = "") -> str:
    """Label pairs as sample() writes them, after `before` (text from here): a row's labels that
    every line shares are written once, not once per line."""
    body = ",".join(f'{k}="{escape(v)}"' for k, v in labels)
    return f"{before},{body}" if before and body else before or body


def sample(name: str, labels: Iterable[tuple[str, str]] | str, value: float) -> str:
    """One line; `labels` as pairs, or as label_text() wrote them."""
    body = labels if isinstance(labels, str) else label_text(labels)
    return f"{name}{{{body}}} {format_value(value)}\n" if body else f"{name} {format_value(value)}\n"
