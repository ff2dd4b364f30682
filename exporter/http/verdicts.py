"""What the guard remembers about credentials, and what checking a new one may cost: bounded maps
of keyed digests to verdicts (least recently used out first), a token bucket, and a lane that
shares a budget so that a client checking for the first time is not starved by the clients that
check again and again. The password and token checks keep what they allowed and what they
refused in two Verdicts, apart, so refusals (all a flood without credentials can produce) only
ever push out other refusals."""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

FRESH_SECONDS = 600.0     # a key granted no check for this long is fresh again
LANE_WAIT = 2.0           # how long a fresh key's request waits for the fresh budget (a scrape times out at 10 s)
LANE_WAITING = 16         # fresh requests waiting at once; beyond, 429
LANE_KEYS = 4096          # keys whose last check is remembered


class Verdicts(Generic[V]):
    """At most `size` digests and their verdicts; a look-up or a put makes an entry the newest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class Budget:
    """A token bucket: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self) -> bool:
        self._refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def due(self) -> float:
        """Seconds until a token is there."""
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)


class Lane:
    """Checks of new credentials, at most `fresh` + `again` a second, shared by key (a client
    address, a service account). A key granted a check in the last FRESH_SECONDS shares the
    `again` budget with the other such keys, and gets False (429) beyond it. A fresh key has the
    `fresh` budget: when it is spent the request waits for its turn, up to LANE_WAIT, first come
    first served, one waiting request a key and at most LANE_WAITING. A flood from a few addresses
    then spends only the `again` budget, however fast it asks (each of its addresses is fresh once
    a FRESH_SECONDS), and a client that checks once, as Prometheus does after a restart, finds
    the fresh budget there or waits a fraction of a second for it. What it cannot tell apart:
    requests from the client's own address, and an attacker with more fresh addresses than the
    fresh budget grants (about 2 a second over FRESH_SECONDS: a thousand and more)."""

    def __init__(self, fresh: float, again: float, wait: float = LANE_WAIT, memory: float = FRESH_SECONDS,
                 keys: int = LANE_KEYS, waiting: int = LANE_WAITING) -> None:
        self.fresh, self.again = Budget(fresh, fresh), Budget(again, again)
        self.wait, self.memory, self.waiting = wait, memory, waiting
        self._granted: Verdicts[float] = Verdicts(keys)              # key -> when its last check was granted
        self._queue: OrderedDict[Hashable, asyncio.Future[bool]] = OrderedDict()
        self._timer: asyncio.TimerHandle | None = None

    def is_fresh(self, key: Hashable) -> bool:
        last = self._granted.get(key)
        return last is None or time.monotonic() - last >= self.memory

    async def take(self, key: Hashable) -> bool:
        """True when a check may go ahead for `key` (now, or after a wait), False for 429."""
        if not self.is_fresh(key):
            granted = self.again.take()
        elif not self._queue and self.fresh.take():
            granted = True
        else:
            return await self._queued(key)
        if granted:
            self._granted.put(key, time.monotonic())
        return granted

    async def _queued(self, key: Hashable) -> bool:
        if key in self._queue or len(self._queue) >= self.waiting:
            return False
        turn = asyncio.get_running_loop().create_future()
        self._queue[key] = turn
        self._schedule()
        try:
            await asyncio.wait({turn}, timeout=self.wait)
            return turn.done() and turn.result()     # granted, possibly as the wait ran out
        finally:
            if self._queue.get(key) is turn:
                del self._queue[key]

    def _schedule(self) -> None:
        if self._timer is None and self._queue:
            self._timer = asyncio.get_running_loop().call_later(self.fresh.due(), self._release)

    def _release(self) -> None:
        self._timer = None
        while self._queue and self.fresh.take():
            key, turn = self._queue.popitem(last=False)
            turn.set_result(True)
            self._granted.put(key, time.monotonic())
        self._schedule()
