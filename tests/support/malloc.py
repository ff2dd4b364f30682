"""glibc malloc's own statistics (mallinfo2, glibc >= 2.33), read by the heap test and bench/heap_probe.py."""

import ctypes

from exporter.runtime.heap import libc_function


class Mallinfo2(ctypes.Structure):
    # arena: the sbrk heap and thread arenas; hblkhd: chunks mapped on their own; uordblks/fordblks:
    # bytes in use / free within the arenas.
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


_MALLINFO2 = libc_function("mallinfo2", [], Mallinfo2)


def mallinfo() -> Mallinfo2 | None:
    """None where the C library has no mallinfo2 (musl, older glibc)."""
    return _MALLINFO2() if _MALLINFO2 is not None else None
