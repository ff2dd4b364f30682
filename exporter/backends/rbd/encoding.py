"""Ceph's binary encoding as librbd and cls_rbd write it (src/include/encoding.h, denc.h): little-endian
integers, strings and bufferlists with a u32 length, and versioned structs (ENCODE_START: u8 version,
u8 oldest compatible version, u32 length).

A struct newer than this code knows is refused (DecodeError), not skipped: Ceph's own decoder skips
appended fields, but a field we do not know could change what the old ones mean, and the caller then
asks librbd instead.
"""

import struct

CEPH_NOSNAP = 0xFFFF_FFFF_FFFF_FFFE     # (uint64_t)-2: the head of an image, not a snapshot


class DecodeError(ValueError):
    """Bytes this code cannot stand behind: truncated, or of an encoding version it does not know."""


class Decoder:
    """Reads one buffer front to back."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.end = data, 0, len(data)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise DecodeError(f"{n} bytes wanted at {self.pos}, the buffer ends at {self.end}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack("<Q", self.take(8))[0]
        return value

    def s64(self) -> int:
        value: int = struct.unpack("<q", self.take(8))[0]
        return value

    def string(self) -> str:
        """std::string: u32 length, then the bytes (no NUL)."""
        return self.take(self.u32()).decode("utf-8", "surrogateescape")

    def blob(self) -> bytes:
        """bufferlist: u32 length, then the bytes."""
        return self.take(self.u32())

    def optional_u64(self) -> int | None:
        """std::optional<uint64_t>: u8 present, then the value if present."""
        return self.u64() if self.u8() else None

    def begin(self, known: int) -> tuple[int, int]:
        """DECODE_START of a struct this code knows up to version `known`: (version, where it ends)."""
        version, compat, length = self.u8(), self.u8(), self.u32()
        if version > known or compat > known:
            raise DecodeError(f"encoding version {version} (compat {compat}); this code knows up to {known}")
        end = self.pos + length
        if end > self.end:
            raise DecodeError("a struct runs past the end of its buffer")
        return version, end

    def finish(self, end: int) -> None:
        """DECODE_FINISH: the struct's fields must end where its length says."""
        if self.pos > end:
            raise DecodeError("a struct's fields run past its length")
        self.pos = end


def u64_value(value: bytes) -> int:
    """A raw little-endian u64 omap value, as cls_rbd stores sizes, features and flags."""
    if len(value) != 8:
        raise DecodeError(f"a u64 value of {len(value)} bytes")
    return Decoder(value).u64()


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC = _crc_table()


def crc32c(data: bytes, seed: int = 0) -> int:
    """Ceph's bufferlist::crc32c(seed): Castagnoli with no inversion before or after (a standard
    CRC-32C of d is crc32c(d, 0xFFFFFFFF) ^ 0xFFFFFFFF)."""
    crc = seed
    for byte in data:
        crc = _CRC[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc
