"""Keeping glibc's heap from growing under churn, and handing freed pages back after a large update.

glibc's malloc keeps pages freed in the middle of its heap resident: after the first lists
(megabytes of JSON parsed a page at a time) and the first full build, ~20 MB of a 10k-PVC
exporter's RSS were such free pages. malloc_trim(0) returns them.

Under steady churn the heap grew instead: glibc raises its mmap threshold to the size of any
mmapped block freed (up to 32 MiB), so after start-up the buffers of ~1 MB an update or a scrape
makes (the joined gzip body, watch payloads, a refresh's output) are carved from the heap, and the
holes they leave are not reused well: in hour-long soaks at 10,000 PVCs malloc's free bytes grew
from 15-20 MB to 38-44 MB while its bytes in use stayed at 57-58 MB. Held at its 128 KiB default,
free bytes stayed at 3-7 MB and RSS within 179-183 MB for the hour, ~30 MB under the unheld run
beside it (bench/bench_soak.py --probe). Other C libraries (musl) have neither call and need neither.
"""

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any

LARGE_UPDATE = 1000     # objects changed in one update from which trimming is worth its few ms


MMAP_THRESHOLD = 128 * 1024  # glibc's starting value: blocks from here up are mapped and unmapped on their own
_M_MMAP_THRESHOLD = -3      # mallopt's parameter number (malloc.h)


def libc_function(name: str, argtypes: list[Any], restype: type) -> Callable[..., int] | None:
    try:
        fn = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = argtypes, restype
    return fn  # type: ignore[no-any-return]


_TRIM = libc_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)
_MALLOPT = libc_function("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)


def hold_mmap_threshold() -> bool:
    """Keep large blocks out of the heap for the life of the process (setting the threshold stops
    glibc moving it); False where the C library cannot. The price is a mmap, munmap and page faults
    per large buffer."""
    return _MALLOPT is not None and _MALLOPT(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def release_free_memory() -> bool:
    """Return free heap pages to the system; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
