"""An image's own bytes from its object maps, as `rbd du` counts them with fast-diff.

`rbd du` (src/tools/rbd/action/DiskUsage.cc) prints a row per user-namespace snapshot in id order and
one for the head; each row is a whole-object diff_iterate (parent excluded) from the user snapshot
before it, or from the beginning for the first. With fast-diff, librbd's object_map::DiffRequest
computes the diff from the object maps (Pacific 16.2.15, Quincy 17.2.8, Squid):
- from the beginning: every object that exists in the row's own map;
- from user snapshot A to B: the maps of A, of every snapshot of any namespace between them, and of
  B, in id order, through the state machine in `_step`; the row counts the objects left
  DATA_UPDATED.
A row's bytes are those of its objects within that version's size. The image's own bytes are the
sum of its rows. Snapshots of other namespaces (trash, group, mirror) are never rows: what only they
hold is counted nowhere, by `rbd du` and by us alike.
"""

from .encoding import CEPH_NOSNAP, DecodeError
from .header import USER, Header
from .objectmap import EXISTS_CLEAN, NONEXISTENT, PENDING, num_objects, object_lengths

HOLE, DATA, HOLE_UPDATED, DATA_UPDATED = 0, 1, 2, 3     # DiffRequest's diff states

Chain = tuple[int, ...]     # versions (snap ids, CEPH_NOSNAP last) read for one row; the first is its start


def rows(h: Header) -> list[tuple[bool, Chain]]:
    """Per `rbd du` row: (whether it diffs from a start snapshot, the versions whose maps it reads)."""
    users = [s.snap_id for s in h.snapshots if s.namespace == USER]
    out: list[tuple[bool, Chain]] = []
    start: int | None = None
    for end in [*users, CEPH_NOSNAP]:
        if start is None:
            out.append((False, (end,)))
        else:
            between = tuple(s.snap_id for s in h.snapshots if start < s.snap_id < end)
            out.append((True, (start, *between, end)))
        start = end
    return out


def versions(h: Header) -> set[int]:
    """Every version whose object map some row reads."""
    return {v for _, chain in rows(h) for v in chain}


def object_count(h: Header, snap_id: int) -> int:
    size, _flags = h.version(snap_id)
    return num_objects(size, h.object_size, h.stripe_unit, h.stripe_count)


def own_bytes(h: Header, maps: dict[int, bytes]) -> int:
    """The sum of the image's `rbd du` rows; `maps`: version -> its states (objectmap.states), at
    least object_count(h, version) of them (a longer map counts only that far, as in librbd)."""
    total = 0
    for from_start, chain in rows(h):
        end = chain[-1]
        size, _flags = h.version(end)
        lengths = object_lengths(size, h.object_size, h.stripe_unit, h.stripe_count)
        if not from_start:
            found = maps[end][:len(lengths)]
            total += sum(length for length, state in zip(lengths, found, strict=True) if state != NONEXISTENT)
            continue
        diff = _diff([maps[v][:object_count(h, v)] for v in chain])
        total += sum(length for length, state in zip(lengths, diff, strict=True) if state == DATA_UPDATED)
    return total


def head_bytes(h: Header, found: bytes | bytearray) -> int:
    """The one row of an image without user snapshots from which of its head's objects hold data
    (`found`, one flag per object)."""
    lengths = object_lengths(h.size, h.object_size, h.stripe_unit, h.stripe_count)
    if len(found) != len(lengths):
        raise DecodeError(f"{len(found)} objects looked up for {len(lengths)}")
    return sum(length for length, data in zip(lengths, found, strict=True) if data)


def _diff(chain: list[bytes]) -> list[int]:
    """DiffRequest over the maps of a start snapshot, the snapshots between, and the end version."""
    first = chain[0]
    diff = [HOLE if s == NONEXISTENT else DATA_UPDATED if s == PENDING else DATA for s in first]
    for index, states in enumerate(chain[1:], start=1):
        diff = _step(diff, states, index == len(chain) - 1)
    if len(diff) != len(chain[-1]):
        raise DecodeError("the diff does not cover the end version")
    return diff


def _step(diff: list[int], states: bytes, is_end: bool) -> list[int]:
    """One more map: objects changed since the start become DATA_UPDATED (or HOLE_UPDATED when gone).
    The diff takes this map's object count: a shrink drops the tail, objects beyond the previous
    count (grown) are new data at the end version and holes before it."""
    overlap = min(len(diff), len(states))
    out = diff[:overlap]
    for i in range(overlap):
        state, before = states[i], out[i]
        if state == NONEXISTENT:
            if before in (DATA, DATA_UPDATED):
                out[i] = HOLE_UPDATED
        elif before == HOLE:
            if is_end:
                out[i] = DATA_UPDATED
        elif before == HOLE_UPDATED or (before == DATA and state != EXISTS_CLEAN):
            out[i] = DATA_UPDATED
    out += [HOLE if s == NONEXISTENT or not is_end else DATA_UPDATED for s in states[overlap:]]
    return out
