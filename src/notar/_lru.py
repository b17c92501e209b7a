"""A small bounded LRU map: the one cache shape of the gateway and the web UI (stdlib only).

It stands at the top of the package, beside :mod:`notar.errors`, and imports nothing of notar, so every
layer may use it: its users sit side by side (``notar.gateway``, ``notar.web``, and the server's caches in
``notar.server`` fit it too), none below the others. :mod:`notar.encoding` would be low enough as well, but
that is the package of byte encodings, and a cache is none.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["LRUCache"]

_K = TypeVar("_K")
_V = TypeVar("_V")


class LRUCache(Generic[_K, _V]):
    """At most ``maxsize`` entries; storing one more drops the least recently used.

    :meth:`get` counts as a use, :meth:`peek` does not (for a cache that should forget the entries stored
    longest ago, whatever was read since); :meth:`put` makes its entry the newest. Thread-safe: each call
    holds the cache's own lock, so worker threads and the event loop may share one cache.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        """The value stored for *key* (now the most recently used), or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def peek(self, key: _K) -> _V | None:
        """The value stored for *key*, or None; its place in the order stays as it is."""
        with self._lock:
            return self._data.get(key)

    def put(self, key: _K, value: _V) -> None:
        """Store *value* for *key* as the newest entry, dropping the least recently used beyond ``maxsize``."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def pop(self, key: _K) -> _V | None:
        """Forget *key*; returns what was stored for it, or None."""
        with self._lock:
            return self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data
