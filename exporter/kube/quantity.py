"""Kubernetes resource quantities ("10Gi", "1.5G", "500M", "1e9") to bytes."""

from decimal import Decimal, InvalidOperation

_BINARY: dict[str, int | Decimal] = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, int | Decimal] = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def parse_bytes(value: object) -> int | None:
    """Bytes of a quantity, rounded up like the API server does; None when it is not a quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    for suffixes in (_BINARY, _DECIMAL):
        for suffix in sorted(suffixes, key=len, reverse=True):
            if suffix and text.endswith(suffix):
                number, factor = text[: -len(suffix)], suffixes[suffix]
                break
        else:
            continue
        break
    else:
        number, factor = text, Decimal(1)
    try:
        amount = Decimal(number) * Decimal(factor)
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount < 0 or amount > Decimal(2**70):
        return None
    return int(amount.to_integral_value(rounding="ROUND_CEILING"))
