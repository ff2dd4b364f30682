"""Handing freed heap memory back to the system after a large update.

glibc's malloc keeps pages freed in the middle of its heap resident: after the first lists
(megabytes of JSON parsed a page at a time) and the first full build, ~20 MB of a 10k-PVC
exporter's RSS were such free pages. malloc_trim(0) returns them. Other C libraries (musl) have no
malloc_trim and need nothing here.
"""

import ctypes
import ctypes.util
from collections.abc import Callable

LARGE_UPDATE = 1000     # objects changed in one update from which trimming is worth its few ms


def _trimmer() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _trimmer()


def release_free_memory() -> bool:
    """Return free heap pages to the system; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
