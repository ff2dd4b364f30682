"""malloc_trim really hands freed heap pages back, and a held mmap threshold keeps large buffers out of
the heap (glibc: this machine and CI run Debian)."""

import os
import subprocess
import sys
from pathlib import Path

from exporter.runtime.heap import release_free_memory

ROOT = Path(__file__).resolve().parents[2]


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


MAPPED_AFTER_A_BIG_FREE = """
import sys
from exporter.runtime.heap import hold_mmap_threshold
from tests.support.malloc import mallinfo as info
held = hold_mmap_threshold() if sys.argv[1] == "hold" else None
big = bytearray(8 * 2**20)      # mapped on its own; freeing it moves glibc's threshold up to 8 MiB
del big
before = info().hblkhd
buffer = bytearray(2**20)       # a body-sized buffer
print(held, info().hblkhd - before)
"""


def mapped_bytes_of_a_new_buffer(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", MAPPED_AFTER_A_BIG_FREE, mode], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    return out[0], int(out[1])


def test_large_buffers_stay_out_of_the_heap_once_the_threshold_is_held():
    # A fresh process each: the threshold glibc moved cannot be moved back within one.
    held, mapped = mapped_bytes_of_a_new_buffer("hold")
    assert held == "True"
    assert mapped >= 2**20                       # mapped on its own: unmapped, not left as a hole, when freed
    held, mapped = mapped_bytes_of_a_new_buffer("default")
    assert (held, mapped) == ("None", 0)         # glibc's own behaviour: carved from the heap
