"""Where drift goes: the writes that take a clone from one cumulative drift level to the next.

Plans are deterministic (seeded) and cumulative, so level N covers level N-1 exactly and the
number of distinct bytes written into a clone equals its level.
"""

import random
from functools import lru_cache

BLOCK = 4096
CHUNK = 4 * 2**20     # sequential writes go in 4 MiB pieces (one RBD object each)


@lru_cache(maxsize=4)
def _shuffled_blocks(blocks: int, seed: int) -> tuple[int, ...]:
    order = list(range(blocks))
    random.Random(seed).shuffle(order)
    return tuple(order)


def plan(disk_size: int, start: int, end: int, pattern: str, seed: int) -> list[tuple[int, int]]:
    """(offset, length) writes covering drift bytes [start, end) of the cumulative sequence."""
    if end <= start:
        return []
    if pattern == "sequential":
        out, pos = [], start
        while pos < end:
            length = min(CHUNK - pos % CHUNK, end - pos)
            out.append((pos, length))
            pos += length
        return out
    if pattern == "random-4k":
        order = _shuffled_blocks(disk_size // BLOCK, seed)
        first, last = start // BLOCK, -(-end // BLOCK)
        return [(b * BLOCK, BLOCK) for b in order[first:last]]
    raise ValueError(f"unknown drift pattern {pattern!r}")


def compressible(index: int, total: int, fraction: float) -> bool:
    """The first `fraction` of a plan's writes carry a constant (compressible) pattern."""
    return index < round(total * fraction)
