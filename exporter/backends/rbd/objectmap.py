"""RBD object maps and where an image's bytes sit in its RADOS objects.

An object map (`rbd_object_map.<image id>` for the head, `….<snap id as %016x>` per snapshot) is a
BitVector<2> (src/common/bit_vector.hpp): a header {u8 version 1, u8 compat 1, u32 length, u64 element
count} in a bufferlist, ceil(count / 4) data bytes with element 0 in the two most significant bits of
byte 0, then a footer bufferlist with a CRC of the header and one per 4 KiB of data (empty when
cls_rbd's `object_map_load` returns it: the OSD checked the CRCs). Element states
(include/rbd/object_map_types.h): 0 nonexistent, 1 exists, 2 pending removal, 3 exists and clean
(unchanged since the snapshot before).

Which objects hold which bytes of an image is Ceph's Striper (src/osdc/Striper.cc).
"""

from .encoding import CEPH_NOSNAP, DecodeError, Decoder, crc32c

NONEXISTENT, EXISTS, PENDING, EXISTS_CLEAN = 0, 1, 2, 3
BLOCK = 4096            # BitVector::BLOCK_SIZE: data bytes per data CRC


def object_map_name(image_id: str, snap_id: int = CEPH_NOSNAP) -> str:
    """librbd's ObjectMap::object_map_name."""
    return f"rbd_object_map.{image_id}" if snap_id == CEPH_NOSNAP else f"rbd_object_map.{image_id}.{snap_id:016x}"


def encoded_length(count: int) -> int:
    """Bytes of a map of `count` elements as object_map_load returns it (no CRCs): header bufferlist,
    data, an empty footer bufferlist."""
    return 4 + 14 + (count + 3) // 4 + 4


def decode_bit_vector(raw: bytes) -> tuple[int, bytes]:
    """(element count, data bytes) of an encoded BitVector<2>; CRCs checked where it has them."""
    d = Decoder(raw)
    head = d.blob()
    h = Decoder(head)
    _version, end = h.begin(1)
    count = h.u64()
    h.finish(end)
    data = d.take((count + 3) // 4)
    footer = d.blob()
    if footer:
        _check_crcs(head, data, Decoder(footer))
    return count, data


def _check_crcs(head: bytes, data: bytes, f: Decoder) -> None:
    if f.u32() != crc32c(head):
        raise DecodeError("object map header CRC mismatch")
    blocks = f.u32()
    if blocks != (len(data) + BLOCK - 1) // BLOCK:
        raise DecodeError(f"{blocks} data CRCs for {len(data)} bytes")
    for i in range(blocks):
        if f.u32() != crc32c(data[i * BLOCK:(i + 1) * BLOCK]):
            raise DecodeError(f"object map data CRC mismatch in block {i}")


# byte -> its four 2-bit elements, most significant first, one byte each
_EXPAND = tuple(bytes(((b >> 6) & 3, (b >> 4) & 3, (b >> 2) & 3, b & 3)) for b in range(256))


def states(data: bytes, count: int) -> bytes:
    """The first `count` elements, one byte (0..3) each."""
    if count > len(data) * 4:
        raise DecodeError(f"{count} states wanted from a map of {len(data) * 4}")
    return b"".join(map(_EXPAND.__getitem__, data[:(count + 3) // 4]))[:count]


def num_objects(size: int, object_size: int, stripe_unit: int, stripe_count: int) -> int:
    """Striper::get_num_objects: the objects an image of `size` bytes spans."""
    period = object_size * stripe_count
    objects = (size + period - 1) // period * stripe_count
    rest = size % period
    if 0 < rest < stripe_count * stripe_unit:
        objects -= stripe_count - (rest + stripe_unit - 1) // stripe_unit
    return objects


def object_lengths(size: int, object_size: int, stripe_unit: int, stripe_count: int) -> list[int]:
    """How many bytes of [0, size) each object holds (Striper::file_to_extents): whole objects but
    the last, which ends with the image; striped images fill their objects a stripe unit at a time."""
    n = num_objects(size, object_size, stripe_unit, stripe_count)
    if stripe_count == 1:
        return [object_size] * (n - 1) + [size - (n - 1) * object_size] if n else []
    period = object_size * stripe_count
    sets, rest = divmod(size, period)
    out = [object_size] * (sets * stripe_count) + [0] * (n - sets * stripe_count)
    full, tail = divmod(rest, stripe_unit)      # the last, partial object set: a stripe unit at a time
    for block in range(full + (1 if tail else 0)):
        out[sets * stripe_count + block % stripe_count] += stripe_unit if block < full else tail
    return out
