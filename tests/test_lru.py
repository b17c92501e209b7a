"""notar._lru.LRUCache: the bounded cache the gateway, the web UI and the server share."""

from __future__ import annotations

import threading

import pytest

from notar._lru import LRUCache


def test_get_keeps_an_entry_peek_does_not() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert "b" not in cache and cache.peek("a") == 1 and cache.peek("c") == 3
    assert cache.peek("a") == 1  # no use: "a" is still the oldest
    cache.put("d", 4)
    assert "a" not in cache and len(cache) == 2


def test_put_makes_an_entry_the_newest_and_pop_forgets_it() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)
    cache.put("c", 3)
    assert cache.peek("a") == 10 and "b" not in cache
    assert cache.pop("a") == 10 and cache.pop("a") is None and cache.get("a") is None


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LRUCache(0)


def test_threads_never_overfill_it() -> None:
    cache: LRUCache[int, int] = LRUCache(50)

    def work(base: int) -> None:
        for i in range(2000):
            cache.put(base + i % 120, i)
            cache.get(base + (i * 7) % 120)

    threads = [threading.Thread(target=work, args=(n * 1000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50
