"""malloc_trim really hands freed heap pages back (glibc: this machine and CI run Debian)."""

import os

from exporter.heap import release_free_memory


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_freed_heap_pages_in_the_middle_of_the_heap_are_returned():
    # 64 KiB blocks come from malloc's heap (below its mmap threshold); a block kept after them pins
    # the heap's top, so free() alone cannot shrink it: the pages stay resident until trimmed.
    blocks = [bytes([i % 251]) * (64 * 1024 - 64) for i in range(800)]
    pin = bytes(64 * 1024 - 64)
    del blocks
    before = rss_bytes()
    assert release_free_memory() is True
    after = rss_bytes()
    assert before - after > 30 * 2**20, (before >> 20, after >> 20)
    assert pin[:1] == b"\0"
