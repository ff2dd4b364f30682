"""The object metrics kept as text, rendered once per change.

Building fresh client_python families and calling generate_latest for every scrape costs over a
second at 10,000 PVCs (README, Benchmarks: bench/bench_scrape.py's "naive" line). Like
kube-state-metrics, we render each row's lines when the row changes and keep them, joined and
compressed per block of rows; a change re-renders its rows and re-compresses their blocks, and the
scrape serves the pieces.
"""

import bisect
import zlib
from array import array
from collections.abc import Hashable, Iterable
from itertools import accumulate
from typing import Any, Generic, TypeVar

from .metric import RowMetrics

Row = TypeVar("Row", bound=Hashable)


Part = tuple[bytes, bytes]          # a piece of the body: plain, and as one gzip member (b"" when empty)
BLOCK = 128                         # rows per block; a block splits in two at twice that
CHUNK = 32                          # rows per gzip member of a volatile metric


def gzip_member(data: bytes) -> bytes:
    """One gzip member (zlib's header: mtime 0, so the same text always gives the same bytes).

    Level 1, an 8 KiB window and a small hash table: a member is one block's lines for one metric
    (~14 KB) or a CHUNK-row stretch of them (~3 KB), where setting up level 6's 32 KiB tables costs
    more than compressing (measured per member: 31 us for 128 rows, 12 us for 32, vs 42 and 24 us
    with a 32 KiB window; 3x faster again than gzip.compress(data, 6)). The price, at 10,000 PVCs:
    a gzip body of 0.75 MB where level-6 members per block made 0.57 MB (0.67 MB is level and
    window, the rest the stretches of the volatile metrics)."""
    if not data:
        return b""
    z = zlib.compressobj(1, zlib.DEFLATED, 16 + 13, 3)
    return z.compress(data) + z.flush()


def _start(ends: "array[int]", j: int) -> int:
    """Where row j's lines begin in its metric's bytes."""
    return ends[j - 1] if j else 0


def _shift(ends: "array[int]", j: int, delta: int) -> None:
    ends[j:] = array("I", [end + delta for end in ends[j:]])


class _Block:
    """Up to 2 x BLOCK rows in key order. At rest, per metric, their lines as one bytes object and
    where each row's lines end in it (no string kept per row); while an update touches the block it
    is exploded into per-row pieces, and parts() joins it again. Per metric a gzip member, None when
    its lines changed; for a volatile metric the member is the CHUNK-row members joined, and `chunks`
    keeps those with None for a stretch whose rows changed."""

    __slots__ = ("chunks", "ends", "keys", "parts", "rows", "texts")

    def __init__(self, keys: list[Any], rows: list[list[bytes]]) -> None:
        self.keys = keys
        self.rows: list[list[bytes]] | None = rows
        self.texts: list[bytes] = []
        self.ends: list[array[int]] = []
        self.parts: list[bytes | None] = [None] * len(rows)
        self.chunks: dict[int, list[bytes | None]] = {}

    def explode(self) -> list[list[bytes]]:
        if self.rows is None:
            self.rows = []
            for text, ends in zip(self.texts, self.ends, strict=True):
                starts = [0, *ends[:-1]]
                self.rows.append([text[a:b] for a, b in zip(starts, ends, strict=True)])
            self.texts, self.ends = [], []
        return self.rows

    def _stale(self, m: int, j: int) -> None:
        self.parts[m] = None
        chunks = self.chunks.get(m)
        if chunks is not None:
            chunks[j // CHUNK] = None

    def change(self, j: int, texts: list[bytes]) -> None:
        if self.rows is not None:
            for m, (rows, text) in enumerate(zip(self.rows, texts, strict=True)):
                if rows[j] != text:
                    rows[j] = text
                    self._stale(m, j)
            return
        # At rest a change splices the metric's bytes where it differs: one copy of the block, no explode.
        for m, text in enumerate(texts):
            ends, old = self.ends[m], self.texts[m]
            a, b = _start(ends, j), ends[j]
            if b - a == len(text) and old.startswith(text, a):
                continue
            self.texts[m] = old[:a] + text + old[b:]
            if len(text) != b - a:
                _shift(ends, j, len(text) - (b - a))
            self._stale(m, j)

    def insert(self, j: int, texts: list[bytes]) -> None:
        for m, (rows, text) in enumerate(zip(self.explode(), texts, strict=True)):
            rows.insert(j, text)
            if text:
                self.parts[m] = None
                self.chunks.pop(m, None)         # rows after j moved to other stretches

    def remove(self, j: int) -> None:
        if self.rows is not None:
            for m, rows in enumerate(self.rows):
                if rows.pop(j):
                    self.parts[m] = None
                    self.chunks.pop(m, None)
            return
        for m, ends in enumerate(self.ends):
            a, b = _start(ends, j), ends[j]
            del ends[j]
            if b > a:
                self.texts[m] = self.texts[m][:a] + self.texts[m][b:]
                _shift(ends, j, a - b)
                self.parts[m] = None
                self.chunks.pop(m, None)

    def split(self, at: int) -> "_Block":
        rows = self.explode()
        half = _Block(self.keys[at:], [r[at:] for r in rows])
        self.keys, self.rows = self.keys[:at], [r[:at] for r in rows]
        self.parts = [None] * len(rows)
        self.chunks = {}
        return half

    def join(self) -> None:
        if self.rows is not None:
            self.texts = [b"".join(r) for r in self.rows]
            self.ends = [array("I", accumulate(map(len, r))) for r in self.rows]
            self.rows = None

    def member(self, m: int, volatile: bool) -> bytes:
        """Metric m's lines in this block as gzip (joined at rest), compressing what changed."""
        gz = self.parts[m]
        if gz is not None:
            return gz
        text = self.texts[m]
        if not volatile or len(self.keys) <= CHUNK:
            gz = self.parts[m] = gzip_member(text)
            return gz
        ends = self.ends[m]
        chunks = self.chunks.get(m)
        if chunks is None:
            chunks = self.chunks[m] = [None] * -(-len(ends) // CHUNK)
        for c, done in enumerate(chunks):
            if done is None:
                chunks[c] = gzip_member(text[_start(ends, c * CHUNK):ends[min(len(ends), (c + 1) * CHUNK) - 1]])
        gz = self.parts[m] = b"".join(chunks)        # type: ignore[arg-type]
        return gz


class Section(Generic[Row]):
    """A collector's metric families as text, kept per block of rows in key order.

    The body is, per metric, its HELP/TYPE header and then each block's lines for it. A row that
    changes re-renders its own lines and re-compresses only the block it sits in, for the metrics
    its lines changed in; concatenated gzip members are one valid stream (RFC 1952), so a scrape
    serves the members as they are.
    """

    def __init__(self, metrics: RowMetrics[Row]) -> None:
        self.defs = metrics.metrics
        self._metrics = metrics
        self._rows: dict[Hashable, Row] = {}
        self._blocks: list[_Block] = []
        self._firsts: list[Any] = []            # first key of each block, for bisect
        self._headers = [(d.header().encode(), gzip_member(d.header().encode())) for d in self.defs]
        self.rendered = 0                       # rows rendered since the last parts() (tests, benchmarks)

    def __len__(self) -> int:
        return len(self._rows)

    def put(self, key: Hashable, row: Row | None) -> None:
        """Set a row (None: remove it); an equal row is left alone."""
        if row is None:
            if key in self._rows:
                del self._rows[key]
                self._remove(key)
            return
        old = self._rows.get(key)
        if old is not None and old == row:
            return
        texts = self._texts(row)
        inserted = key not in self._rows
        self._rows[key] = row
        if inserted:
            self._insert(key, texts)
            return
        block = self._blocks[self._find(key)]
        block.change(bisect.bisect_left(block.keys, key), texts)

    def fill(self, rows: Iterable[tuple[Hashable, Row | None]]) -> None:
        """`put` each row (None: remove it). Into an empty section: in key order, a block at a time,
        each block joined as soon as it is full. A first build of 10,000 rows then never holds
        150,000 per-row pieces at once, whose holes the allocator keeps as resident memory."""
        if self._rows:
            for key, maybe in rows:
                self.put(key, maybe)
            return
        ordered: list[tuple[Any, Row]] = sorted(((k, r) for k, r in rows if r is not None), key=lambda kv: kv[0])
        for start in range(0, len(ordered), BLOCK):
            chunk = ordered[start:start + BLOCK]
            per_row = [self._texts(row) for _, row in chunk]
            self._rows.update(chunk)
            block = _Block([key for key, _ in chunk], [list(metric) for metric in zip(*per_row, strict=True)])
            block.join()
            self._blocks.append(block)
            self._firsts.append(block.keys[0])

    def _texts(self, row: Row) -> list[bytes]:
        """A row rendered: its lines per metric, in the section's metric order."""
        self.rendered += 1
        return [text.encode() for text in self._metrics.texts(row)]

    def replace(self, rows: Iterable[tuple[Hashable, Row]]) -> None:
        """Make the section hold exactly these rows."""
        fresh = dict(rows)
        for key in [k for k in self._rows if k not in fresh]:
            self.put(key, None)
        for key, row in fresh.items():
            self.put(key, row)

    def _find(self, key: Hashable) -> int:
        return max(0, bisect.bisect_right(self._firsts, key) - 1)

    def _insert(self, key: Hashable, texts: list[bytes]) -> None:
        if not self._blocks:
            self._blocks.append(_Block([key], [[t] for t in texts]))
            self._firsts.append(key)
            return
        i = self._find(key)
        block = self._blocks[i]
        j = bisect.bisect_left(block.keys, key)
        block.keys.insert(j, key)
        block.insert(j, texts)
        self._firsts[i] = block.keys[0]
        if len(block.keys) > 2 * BLOCK:
            half = block.split(BLOCK)
            self._blocks.insert(i + 1, half)
            self._firsts.insert(i + 1, half.keys[0])

    def _remove(self, key: Hashable) -> None:
        i = self._find(key)
        block = self._blocks[i]
        j = bisect.bisect_left(block.keys, key)
        del block.keys[j]
        if not block.keys:
            del self._blocks[i], self._firsts[i]
            return
        self._firsts[i] = block.keys[0]
        block.remove(j)

    def parts(self) -> list[Part]:
        out: list[Part] = []
        for block in self._blocks:
            block.join()
        for m, header in enumerate(self._headers):
            out.append(header)
            volatile = self.defs[m].volatile
            for block in self._blocks:
                text = block.texts[m]
                if text:
                    out.append((text, block.member(m, volatile)))
        self.rendered = 0
        return out

    def text(self) -> str:
        return b"".join(p for p, _ in self.parts()).decode()
