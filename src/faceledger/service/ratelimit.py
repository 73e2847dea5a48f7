"""Token buckets, several taken from at once, kept in memory with a bounded number of keys.

Why not a library: the one that fits, ``limits``, is not a dependency of faceledger, and what the
service needs is narrower than what it offers: take one token from *every* bucket a request
touches (its address, its key prefix, all requests) or from none, and give them back when the
request turns out not to count. That is one lock and a dict, here.

A bucket of kind ``k`` holds at most ``per_period[k]`` tokens and gains as many every ``period``
seconds. Buckets live in an LRU dict of at most ``max_keys`` entries, dropping the least recently
used first (by then most likely full again, and a full bucket is the same as none), so a caller
naming endless keys costs bounded memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

__all__ = ["TokenBuckets", "BucketKey", "retry_after"]

#: (kind, name): the kind gives the bucket's size, e.g. ("address", "127.0.0.2").
BucketKey = tuple[str, str]


class TokenBuckets:
    """Named token buckets, taken from all together or not at all."""

    def __init__(
        self,
        per_period: Mapping[str, float],
        period: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.per_period = dict(per_period)
        self.period = period
        self.max_keys = max_keys
        self.clock = clock
        self._lock = threading.Lock()
        # key -> (tokens, when they were counted)
        self._buckets: OrderedDict[BucketKey, tuple[float, float]] = OrderedDict()

    def _level(self, key: BucketKey, now: float) -> float:
        capacity = self.per_period[key[0]]
        tokens, then = self._buckets.get(key, (capacity, now))
        return min(capacity, tokens + (now - then) * capacity / self.period)

    def take(self, keys: Sequence[BucketKey]) -> float:
        """Take one token from each bucket in ``keys``: 0.0 if taken, else seconds to wait.

        When any bucket is empty nothing is taken, so a refused request costs no other bucket.
        """
        with self._lock:
            now = self.clock()
            levels = [self._level(k, now) for k in keys]
            waits = [
                (1.0 - level) * self.period / self.per_period[key[0]]
                for key, level in zip(keys, levels, strict=True)
                if level < 1.0
            ]
            if waits:
                return max(waits)
            for key, level in zip(keys, levels, strict=True):
                self._buckets[key] = (level - 1.0, now)
                self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return 0.0

    def give_back(self, keys: Sequence[BucketKey]) -> None:
        """Return the tokens a successful :meth:`take` took (the request did not count)."""
        with self._lock:
            now = self.clock()
            for key in keys:
                if key in self._buckets:
                    capacity = self.per_period[key[0]]
                    self._buckets[key] = (min(capacity, self._level(key, now) + 1.0), now)


def retry_after(seconds: float) -> str:
    """``seconds`` as a Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
