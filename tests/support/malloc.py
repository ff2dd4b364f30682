"""glibc malloc's own statistics (mallinfo2, glibc >= 2.33), read by the heap test and bench/heap_probe.py."""

import ctypes


class Mallinfo2(ctypes.Structure):
    # arena: the sbrk heap and thread arenas; hblkhd: chunks mapped on their own; uordblks/fordblks:
    # bytes in use / free within the arenas.
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def mallinfo() -> Mallinfo2 | None:
    """None where the C library has no mallinfo2 (musl, older glibc)."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = Mallinfo2
    return fn()
