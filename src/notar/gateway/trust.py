"""Verified trust data per repository, through the client update workflow, cached for a short TTL.

:class:`TrustVerifier` runs the client's :class:`notar.client.Updater` (root -> timestamp -> snapshot ->
targets, every signature and hash checked, rollback protection through its own trust cache; without the
client's offline fallback to a cached timestamp, so a trust server that cannot be reached is a refusal) and turns
the result into a :class:`TrustView`: each signed tag resolved with docker's rule (``targets/releases``
wins over ``targets``). Results -- including "this repository has no trust data" -- are kept for
``ttl`` seconds; failures (trust server down, invalid data) are never cached, so they fail closed on
every request until the cause is fixed. Concurrent requests for one repository share one refresh.
Memory stays bounded whatever names clients ask for: views and locks are kept for the most recent
:data:`MAX_VIEWS` repositories, and nothing is left in the trust directory for names without trust data.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from notar.client import (
    NotSignedError,
    RepositoryNotFoundError,
    TrustCache,
    TrustDataInvalidError,
    TrustServer,
    TrustServerError,
    Updater,
)
from notar.errors import NotarError
from notar.gateway.errors import GatewayError

__all__ = ["MAX_VIEWS", "SignedTag", "TrustVerifier", "TrustView"]

MAX_VIEWS = 10_000

log = logging.getLogger("notar.gateway")


@dataclass(frozen=True, slots=True)
class SignedTag:
    digest: str  # sha256:<hex>
    size: int
    role: str


@dataclass(frozen=True)
class TrustView:
    """What the trust data of one GUN signs, as verified at ``verified_at`` (monotonic seconds)."""

    gun: str
    exists: bool  # False: the trust server has no trust data for the GUN
    tags: Mapping[str, SignedTag] = field(default_factory=dict)
    verified_at: float = 0.0

    @property
    def digests(self) -> frozenset[str]:
        return frozenset(t.digest for t in self.tags.values())

    def tags_for(self, digest: str) -> list[str]:
        return sorted(tag for tag, signed in self.tags.items() if signed.digest == digest)


class TrustVerifier:
    """Verifies trust data of GUNs against one trust server (thread-safe; async entry point :meth:`view`)."""

    def __init__(
        self,
        *,
        server: TrustServer,
        trust_dir: Path | None = None,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server = server
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if trust_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="notar-gateway-")
            trust_dir = Path(self._tmp.name)
        self.trust_dir = Path(trust_dir)
        self.cache = TrustCache(self.trust_dir)
        self.ttl = ttl
        self.clock = clock
        self._views: OrderedDict[str, TrustView] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self.refreshes = 0  # number of verifications run (for tests and metrics)

    def close(self) -> None:
        self.server.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- sync: the verification itself -------------------------------------------------------------
    def verify(self, gun: str) -> TrustView:
        """Run the TUF update for *gun*; raises :class:`GatewayError` (TRUST_UNAVAILABLE or DENIED)."""
        self.refreshes += 1
        started = self.clock()  # the view shows the server's state at some moment after this
        try:
            trusted = Updater(gun, self.server, self.cache, offline=False).refresh()
        except RepositoryNotFoundError:
            self.cache.forget_if_empty(gun)
            return TrustView(gun, exists=False, verified_at=started)
        except TrustDataInvalidError as e:
            raise GatewayError("DENIED", f"trust data for {gun} is invalid: {e}") from e
        except TrustServerError as e:
            raise GatewayError("TRUST_UNAVAILABLE", f"cannot verify trust data for {gun}: {e}") from e
        except NotarError as e:
            raise GatewayError("DENIED", f"trust data for {gun} is invalid: {e}") from e
        tags: dict[str, SignedTag] = {}
        for name in {t.name for t in trusted.all_targets()}:
            try:
                match = trusted.resolve(name)
            except NotSignedError:
                continue  # only in roles docker does not count, or without sha256
            tags[name] = SignedTag(
                "sha256:" + match.meta.hashes["sha256"].hex(), match.meta.length, match.role
            )
        return TrustView(gun, exists=True, tags=tags, verified_at=started)

    # -- async: cached, coalesced ----------------------------------------------------------------------
    def cached(
        self, gun: str, *, max_age: float | None = None, since: float | None = None
    ) -> TrustView | None:
        view = self._views.get(gun)
        if view is None:
            return None
        if since is not None:
            return view if view.verified_at >= since else None
        limit = self.ttl if max_age is None else min(max_age, self.ttl)
        return view if self.clock() - view.verified_at < limit else None

    async def view(self, gun: str, *, max_age: float | None = None, fresh: bool = False) -> TrustView:
        """The verified view of *gun*, at most ``max_age`` (default: ``ttl``) seconds old.

        ``fresh``: verified after this call was made (for pushes and deletes, which must see a tag signed a
        moment ago); concurrent fresh requests share one verification that started after all of them.
        """
        since = self.clock() if fresh else None
        view = self.cached(gun, max_age=max_age, since=since)
        if view is not None:
            return view
        lock = self._locks.get(gun)
        if lock is None:
            lock = self._locks[gun] = asyncio.Lock()
        try:
            async with lock:
                view = self.cached(gun, max_age=max_age, since=since)  # refreshed while this one waited?
                if view is not None:
                    return view
                try:
                    view = await run_in_threadpool(self.verify, gun)
                except GatewayError:
                    self._views.pop(gun, None)
                    raise
                self._views[gun] = view
                self._views.move_to_end(gun)
                while len(self._views) > MAX_VIEWS:
                    self._views.popitem(last=False)
                return view
        finally:
            if len(self._locks) > MAX_VIEWS:
                for name, idle in list(self._locks.items()):
                    if not idle.locked() and name != gun:
                        del self._locks[name]
