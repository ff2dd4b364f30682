"""Own bytes, logical bytes, chain depth and family efficiency (pure).

own(v)     = what the backend says v alone occupies.
logical(v) = what v would occupy as an independent full copy
           = own(v) + share(v) * logical(parent(v)), where share is the part of the parent's
             data v still reads through it (1 for a CoW clone; 1 - progress for a FlashCopy
             target whose background copy is under way; a full copy has no parent: logical = own).
Family (a source volume and every clone of it):
  consumed  = own(source) + sum own(clones)
  full copy = logical(source) + sum logical(clones)
  saved = full copy - consumed;  efficiency ratio = saved / full copy, in [0, 1].
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


class HasParent(Protocol):
    """What the arithmetic reads of a volume (read-only, so frozen dataclasses qualify)."""
    @property
    def consumed_bytes(self) -> int: ...
    @property
    def parent(self) -> str: ...


def walk(volumes: Mapping[str, HasParent], vid: str) -> list[str]:
    """vid and its ancestors, nearest first, stopping at a missing parent or a cycle."""
    chain, seen = [], set()
    while vid and vid in volumes and vid not in seen:
        seen.add(vid)
        chain.append(vid)
        vid = volumes[vid].parent
    return chain


def chain_numbers(volumes: Mapping[str, HasParent], vid: str) -> tuple[int | None, int]:
    """(logical bytes, depth) of one volume, from its own chain alone (so a change recomputes only
    the volumes below it). Logical is None where an ancestor is unknown (not refreshed, in the
    trash, a cycle); depth counts a parent we cannot see as one level."""
    chain = walk(volumes, vid)
    top = volumes[chain[-1]]
    total: int | None = 0 if not top.parent else None    # complete only if it ends without a parent
    if total is not None:
        for member in reversed(chain):
            share = getattr(volumes[member], "parent_share", 1.0)
            total = volumes[member].consumed_bytes + round(share * total)
    return total, len(chain) - 1 + (1 if top.parent else 0)


def logical_bytes(volumes: Mapping[str, HasParent]) -> dict[str, int | None]:
    return {vid: chain_numbers(volumes, vid)[0] for vid in volumes}


def root_of(volumes: Mapping[str, HasParent], vid: str) -> str:
    return walk(volumes, vid)[-1] if vid in volumes else vid


@dataclass(frozen=True)
class FamilyNumbers:
    consumed_bytes: int
    full_copy_bytes: int
    saved_bytes: int
    efficiency_ratio: float


def family_numbers(members: Iterable[tuple[int, int]], held: int = 0) -> FamilyNumbers:
    """members: (own, logical) of the source and of each clone. held: bytes the family occupies in
    volumes that are not members (a driver's intermediates, an ancestor of the source in the trash);
    they are already inside the members' logical sizes, so they add to consumed only."""
    consumed, full = held, 0
    for own, logical in members:
        consumed += own
        full += max(logical, own)
    saved = full - consumed
    ratio = saved / full if full > 0 else 0.0
    return FamilyNumbers(consumed, full, saved, min(1.0, max(0.0, ratio)))
